//! What the operator's control-plane tests stand on: a control plane per test (or the
//! cluster `ZOOID_TEST_KUBECONFIG` names), the operator running from its binary, the image
//! the node agent runs, and waiting on conditions.

use kube::api::{Api, PostParams};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use zooid_operator::crd::Ensemble;

use crate::agent;

pub mod s3;

/// A control plane for one test (stopped when dropped), or the cluster
/// `ZOOID_TEST_KUBECONFIG` names.
pub struct ControlPlane {
    pub dir: tempfile::TempDir,
    pub kubeconfig: std::path::PathBuf,
    /// Started here, so stopped here.
    pub owned: bool,
}

impl ControlPlane {
    /// A tool (`kubectl`, `helm`) from the control plane's build, or from PATH on a cluster
    /// named by `ZOOID_TEST_KUBECONFIG`.
    pub fn tool(&self, name: &str) -> String {
        if !self.owned {
            return name.to_string();
        }
        let out = Command::new(script()).arg("bin").output().unwrap();
        format!("{}/{name}", String::from_utf8(out.stdout).unwrap().trim())
    }

    pub fn start() -> ControlPlane {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(k) = std::env::var("ZOOID_TEST_KUBECONFIG") {
            return ControlPlane {
                dir,
                kubeconfig: k.into(),
                owned: false,
            };
        }
        let ok = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "the control plane did not start (build it once with `scripts/kube-testenv.sh build`)"
        );
        let kubeconfig = dir.path().join("kubeconfig");
        ControlPlane {
            dir,
            kubeconfig,
            owned: true,
        }
    }

    pub async fn client(&self) -> kube::Client {
        self.client_retrying(true).await
    }

    /// A client that retries 429, 503 and 504 answers or not. kube's default retries a 429
    /// up to 15 times, as long as the server's Retry-After says: a refused eviction (the PDB)
    /// then takes minutes to come back, where `kubectl drain` sees it at once.
    pub async fn client_retrying(&self, retry: bool) -> kube::Client {
        zooid_operator::use_ring_for_tls();
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        config.default_retry = retry;
        kube::Client::try_from(config).unwrap()
    }

    /// A namespace of this test's own.
    pub async fn namespace(&self, client: &kube::Client, name: &str) -> String {
        use k8s_openapi::api::core::v1::Namespace;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("namespace {name}: {e}"),
        }
        name.to_string()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script())
                .arg("stop")
                .arg(self.dir.path())
                .status();
        }
    }
}

pub fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kube-testenv.sh")
}

/// Waits for `f` to give `Some`, within `secs`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operator running as users run it (its binary, watching every namespace), for as long
/// as this lives; its log kept for a failing test to show.
pub struct Operator {
    child: std::process::Child,
    launch: Launch,
    /// How many times it was killed and started again.
    pub kills: u32,
}

/// How an operator process is started (again, after a kill).
struct Launch {
    log: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
    /// Arguments beyond `--listen`, environment, and the pod name it runs as (`POD_NAME`).
    args: Vec<String>,
    env: Vec<(String, String)>,
    name: String,
}

impl Launch {
    fn spawn(&self) -> std::process::Child {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_zooid-operator"))
            .args(["--listen", "127.0.0.1:0"])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("POD_NAME", &self.name)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,zookeeper_client=warn")
            .env("NO_COLOR", "1")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap()
    }
}

impl Operator {
    pub fn start(cp: &ControlPlane) -> Operator {
        Self::start_as(cp, "operator", &[], &[])
    }

    /// An operator running as pod `name` with more arguments (`--lease-namespace NS`, say)
    /// and environment; its log in `<name>.log`.
    pub fn start_as(
        cp: &ControlPlane,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let launch = Launch {
            log: cp.dir.path().join(format!("{name}.log")),
            kubeconfig: cp.kubeconfig.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            name: name.to_string(),
        };
        Operator {
            child: launch.spawn(),
            launch,
            kills: 0,
        }
    }

    /// Kills the operator (SIGKILL: no chance to finish what it was doing) and starts a new
    /// one, which must pick up from the Ensemble's status and the live state.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.kills += 1;
        self.child = self.launch.spawn();
    }

    /// SIGTERM (a pod deleted in a rolling update), and waits for the process to end.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }

    /// SIGKILL (a node lost): no chance to release anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.launch.log).unwrap_or_default()
    }

    /// Its process id (for a benchmark's reading of its memory and CPU).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binaries the node agent runs: the image `zooid` (built by scripts/e2e-operator.sh;
/// `ZOOID_TEST_ZOOID` names another; also as the examples name it) with `zooid` and `zooctl`,
/// `zooid-operator` (the chart's Deployment), and `nginx` (the examples' application, a
/// process that waits).
pub fn zooid_image(work: &Path) -> agent::Images {
    let zooid = std::env::var("ZOOID_TEST_ZOOID").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/zooid"),
        std::path::PathBuf::from,
    );
    assert!(
        zooid.exists(),
        "{} (cargo build -p zooid-node --bin zooid)",
        zooid.display()
    );
    let bin = work.join("image-zooid");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(zooid.canonicalize().unwrap(), bin.join("zooid")).unwrap();
    // The image carries zooctl too (the discovery sidecar's), built beside zooid.
    let zooctl = zooid.with_file_name("zooctl");
    if zooctl.exists() {
        std::os::unix::fs::symlink(zooctl.canonicalize().unwrap(), bin.join("zooctl")).unwrap();
    }
    // The operator's image, for the chart's Deployment.
    let operator = work.join("image-zooid-operator");
    std::fs::create_dir_all(&operator).unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_BIN_EXE_zooid-operator")),
        operator.join("zooid-operator"),
    )
    .unwrap();
    // An application container for the examples (theirs is nginx): it waits to be stopped.
    let app = work.join("image-app");
    std::fs::create_dir_all(&app).unwrap();
    let nginx = app.join("nginx");
    std::fs::write(&nginx, "#!/bin/sh\nexec sleep 100000\n").unwrap();
    std::fs::set_permissions(&nginx, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    agent::Images::default()
        .with("zooid", bin.clone(), &["zooid"])
        // The image the examples name.
        .with("ghcr.io/zooid/zooid", bin, &["zooid"])
        .with("zooid-operator", operator, &["zooid-operator"])
        .with("nginx", app, &["nginx"])
}

pub fn condition(ens: &Ensemble, type_: &str) -> Option<String> {
    ens.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// An Ensemble's life on the control plane: the node agent running its pods, the operator
/// running from its binary. Dropped in this order: the operator, the agent's pods, then the
/// control plane.
pub struct Scenario {
    /// Dropped first: the watchdog stands down.
    _watchdog: std::sync::mpsc::Sender<()>,
    pub operator: Operator,
    pub agent: agent::Agent,
    pub client: kube::Client,
    pub ensembles: Api<Ensemble>,
    pub ns: String,
    /// Kept until the scenario ends (stopped last).
    _control_plane: ControlPlane,
}

impl Scenario {
    /// The CRD installed, the agent and the operator started, a namespace `ns`; `None` on a
    /// cluster named by `ZOOID_TEST_KUBECONFIG`, whose pods this process cannot reach.
    pub async fn start(ns: &str) -> Option<Scenario> {
        let cp = ControlPlane::start();
        if !cp.owned {
            return None;
        }
        let client = cp.client().await;
        install_crd(&client).await;
        let work = cp.dir.path().join("node");
        let agent = agent::Agent::start(client.clone(), &work, zooid_image(&work)).await;
        let operator = Operator::start(&cp);
        let ns = cp.namespace(&client, ns).await;
        let ensembles = Api::namespaced(client.clone(), &ns);
        // A hang is a failure: a scenario still running after 15 minutes ends the process
        // (the tests' runtime has one thread, which a stuck call would hold).
        let (watchdog, stand_down) = std::sync::mpsc::channel::<()>();
        let which = ns.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stand_down.recv_timeout(Duration::from_secs(900))
            {
                eprintln!("scenario {which}: still running after 15 minutes: a hang, failed");
                std::process::exit(101);
            }
        });
        Some(Scenario {
            _watchdog: watchdog,
            operator,
            agent,
            client,
            ensembles,
            ns,
            _control_plane: cp,
        })
    }

    /// A scenario in namespace `ns` with a 3-member Ensemble `coord` settled and a write load
    /// on it (three clients, through the members' DNS names).
    pub async fn three_members_under_load(ns: &str) -> Option<(Scenario, crate::load::Load)> {
        let mut s = Scenario::start(ns).await?;
        s.create(
            "coord",
            serde_json::json!({"image": "zooid:test", "replicas": 3}),
        )
        .await;
        s.wait("coord", "3 members Available", 120, false, |e| {
            settled(e, 3)
        })
        .await;
        let load = crate::load::Load::start(&s.servers("coord", 3), 3).await;
        Some((s, load))
    }

    /// A client that takes a 429 as the answer (see [`ControlPlane::client_retrying`]).
    pub async fn client_without_retries(&self) -> kube::Client {
        self._control_plane.client_retrying(false).await
    }

    /// The control plane, for more processes of the scenario's own.
    pub fn control_plane(&self) -> &ControlPlane {
        &self._control_plane
    }

    /// `kubectl` in the scenario's namespace, as a user runs it; its output, or a failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new(self._control_plane.tool("kubectl"))
            .env("KUBECONFIG", &self._control_plane.kubeconfig)
            .args(["--namespace", &self.ns])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A folder of this scenario's own (removed with the control plane's).
    pub fn dir(&self) -> &Path {
        self._control_plane.dir.path()
    }

    /// Sets an annotation on the Ensemble.
    pub async fn annotate(&self, name: &str, key: &str, value: &str) {
        use kube::api::{Patch, PatchParams};
        let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
        self.ensembles
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Creates the Ensemble `name` with `spec` (once the API server serves the CRD).
    pub async fn create(&self, name: &str, spec: serde_json::Value) {
        let e: Ensemble = serde_json::from_value(serde_json::json!({
            "apiVersion": "zooid.io/v1alpha1",
            "kind": "Ensemble",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap();
        eventually("the CRD served", 30, || {
            let (ensembles, e) = (self.ensembles.clone(), e.clone());
            async move { ensembles.create(&PostParams::default(), &e).await.ok() }
        })
        .await;
    }

    /// Merges `spec` into the Ensemble's spec, as `kubectl patch --type merge` does.
    pub async fn patch(&self, name: &str, spec: serde_json::Value) {
        use kube::api::{Patch, PatchParams};
        self.ensembles
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .unwrap();
    }

    /// Waits until `done` holds for the Ensemble, within `secs`. With `kill_at_each_step`,
    /// the operator is SIGKILLed and started again whenever the status shows a new step:
    /// each step is then finished by an operator that did not start it.
    pub async fn wait(
        &mut self,
        name: &str,
        what: &str,
        secs: u64,
        kill_at_each_step: bool,
        mut done: impl FnMut(&Ensemble) -> bool,
    ) -> Ensemble {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut last_step = None;
        loop {
            let e = self.ensembles.get(name).await.unwrap();
            if done(&e) {
                return e;
            }
            // The step under way: the pending operation and the planned step the Progressing
            // condition names (Apply, Join, Promote, Remove, DeleteVolume, Restart ...).
            let step = e.status.as_ref().and_then(|s| {
                let progressing = s
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Progressing" && c.status == "True")?;
                Some((s.pending.clone(), progressing.message.clone()))
            });
            if kill_at_each_step && step.is_some() && step != last_step {
                self.operator.kill_and_restart();
            }
            last_step = step;
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{what}: not within {secs} s\n{}",
                    self.diagnostics(name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The connection string of members `name-0` .. `name-(n-1)` by their stable DNS names
    /// (a pod's address changes when it is recreated).
    pub fn servers(&self, name: &str, n: usize) -> String {
        (0..n)
            .map(|i| format!("{name}-{i}.{name}-peers.{}.svc.cluster.local:2181", self.ns))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The addresses of pods `name-0` .. `name-(n-1)`.
    pub async fn pod_ips(&self, name: &str, n: usize) -> Vec<String> {
        use k8s_openapi::api::core::v1::Pod;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let mut ips = Vec::new();
        for i in 0..n {
            let p = pods.get(&format!("{name}-{i}")).await.unwrap();
            ips.push(p.status.unwrap().pod_ip.unwrap());
        }
        ips
    }

    /// The status, the operator's log and each member's log's tail: what a failing test
    /// shows.
    pub async fn diagnostics(&self, name: &str) -> String {
        let status = self.ensembles.get(name).await.map(|e| e.status);
        let tail = |text: String, n: usize| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        let mut out = format!(
            "status: {status:?}\n--- operator (killed {} times)\n{}\n",
            self.operator.kills,
            tail(self.operator.log(), 40)
        );
        let voters = (0..7).map(|i| format!("{name}-{i}"));
        let observers = (0..3).map(|i| format!("{name}-observer-{i}"));
        for pod in voters.chain(observers) {
            let log = self.agent.log(&self.ns, &pod, "zooid");
            if !log.is_empty() {
                out.push_str(&format!("--- {pod}\n{}\n", tail(log, 15)));
            }
        }
        out
    }
}

/// Whether the Ensemble has settled at `n` members: Available, nothing pending, the spec's
/// generation observed, and every member ready and voting.
pub fn settled(e: &Ensemble, n: usize) -> bool {
    let Some(s) = &e.status else { return false };
    condition(e, "Available").as_deref() == Some("True")
        && s.pending.is_none()
        && s.observed_generation == e.metadata.generation
        && s.members.len() == n
        && s.members
            .iter()
            .all(|m| m.ready && (m.role == "leader" || m.role == "follower"))
}

/// Installs the Ensemble CRD (server-side apply).
pub async fn install_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    use kube::CustomResourceExt;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "ensembles.zooid.io",
        &PatchParams::apply("zooid-operator-test").force(),
        &Patch::Apply(Ensemble::crd()),
    )
    .await
    .unwrap();
}
