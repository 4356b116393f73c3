//! One pod on the test node: its network namespace, its volumes as directories, each
//! container as a process (`sandbox.sh` gives it the pod's root), probes, restarts, and the
//! SIGTERM-then-grace-then-SIGKILL of a deletion.

use super::network::{Sandbox, GATEWAY};
use super::probe::{Probe, Verdict};
use super::Images;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container as KubeContainer, PersistentVolumeClaim, Pod as KubePod, Secret,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::ResourceExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Why a pod cannot start yet (as a kubelet's ContainerCreating): tried again next turn.
pub type NotYet = String;

fn now() -> String {
    serde_json::to_value(Time(k8s_openapi::jiff::Timestamp::now()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A volume whose files the agent keeps up to date from the API (configMap and secret).
struct Synced {
    dir: PathBuf,
    source: Source,
}

enum Source {
    ConfigMap {
        name: String,
        items: Option<BTreeMap<String, String>>,
    },
    Secret {
        name: String,
        items: Option<BTreeMap<String, String>>,
    },
    /// The service account volume the API server adds to every pod: a token of the pod's
    /// service account (asked for once per pod), the cluster's CA and the namespace.
    Projected {
        sources: Vec<k8s_openapi::api::core::v1::VolumeProjection>,
        account: String,
    },
}

struct Container {
    name: String,
    image: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    mounts: PathBuf,
    scratch: PathBuf,
    log: PathBuf,
    child: Option<tokio::process::Child>,
    /// When a container that exited may start again (a short back-off: 1, 2, 4 s ... 10 s).
    restart_at: Option<Instant>,
    restarts: u32,
    started_at: String,
    ready: bool,
    readiness: Option<Probe>,
    liveness: Option<Probe>,
    spec: KubeContainer,
    last_exit: Option<i32>,
}

pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub hostname: String,
    pub subdomain: Option<String>,
    pub sandbox: Sandbox,
    containers: Vec<Container>,
    synced: Vec<Synced>,
    started: String,
    restart_policy: String,
    /// Set once the pod is being deleted: when the grace period runs out.
    pub deadline: Option<Instant>,
    last_status: Option<serde_json::Value>,
    last_sync: Instant,
}

impl Pod {
    /// Sets up and starts `pod` in sandbox number `n`; `Err` names what it still waits for.
    pub async fn start(
        client: &kube::Client,
        work: &Path,
        images: &Images,
        pod: &KubePod,
        n: u32,
    ) -> Result<Pod, NotYet> {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let uid = pod.uid().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let dir = work.join("pods").join(&uid);
        // Volumes first: a claim or a map that does not exist yet keeps the pod waiting.
        let mut volumes = BTreeMap::new();
        let mut synced = Vec::new();
        for v in spec.volumes.iter().flatten() {
            let items_of = |items: &Option<Vec<k8s_openapi::api::core::v1::KeyToPath>>| {
                items
                    .as_ref()
                    .map(|i| i.iter().map(|i| (i.key.clone(), i.path.clone())).collect())
            };
            let source = if let Some(c) = &v.config_map {
                Some(Source::ConfigMap {
                    name: c.name.clone(),
                    items: items_of(&c.items),
                })
            } else if let Some(s) = &v.secret {
                Some(Source::Secret {
                    name: s.secret_name.clone().unwrap_or_default(),
                    items: items_of(&s.items),
                })
            } else {
                v.projected.as_ref().map(|p| Source::Projected {
                    sources: p.sources.clone().unwrap_or_default(),
                    account: spec
                        .service_account_name
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                })
            };
            let path = if let Some(source) = source {
                let d = dir.join("volumes").join(&v.name);
                synced.push(Synced {
                    dir: d.clone(),
                    source,
                });
                d
            } else if let Some(c) = &v.persistent_volume_claim {
                let claim: PersistentVolumeClaim =
                    fetch(client, &namespace, &c.claim_name, "claim").await?;
                // Keyed by the claim's uid: a claim deleted and made again is a new volume.
                work.join("volumes").join(claim.uid().unwrap_or_default())
            } else if v.empty_dir.is_some() {
                dir.join("volumes").join(&v.name)
            } else {
                return Err(format!(
                    "volume {}: a kind the test agent does not serve",
                    v.name
                ));
            };
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            volumes.insert(v.name.clone(), path);
        }
        for s in &synced {
            s.sync(client, &namespace).await?;
        }
        let hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
        let mut containers = Vec::new();
        for c in &spec.containers {
            let image = c.image.clone().unwrap_or_default();
            let (bin, entrypoint) = images
                .resolve(&image)
                .ok_or_else(|| format!("image {image}: not one the test agent runs"))?;
            let mut argv = match &c.command {
                Some(command) if !command.is_empty() => command.clone(),
                _ => entrypoint,
            };
            argv.extend(c.args.iter().flatten().cloned());
            let cdir = dir.join("containers").join(&c.name);
            std::fs::create_dir_all(cdir.join("scratch")).map_err(|e| e.to_string())?;
            let mut mounts = format!(
                "{} /usr/local/bin\n{} /etc/hosts\n",
                bin.display(),
                work.join("hosts").display()
            );
            for m in c.volume_mounts.iter().flatten() {
                let mut source = volumes
                    .get(&m.name)
                    .ok_or_else(|| format!("mount {}: no such volume", m.name))?
                    .clone();
                if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                    source = source.join(sub);
                }
                mounts.push_str(&format!("{} {}\n", source.display(), m.mount_path));
            }
            let mounts_file = cdir.join("mounts");
            std::fs::write(&mounts_file, mounts).map_err(|e| e.to_string())?;
            containers.push(Container {
                name: c.name.clone(),
                image,
                argv,
                env: Vec::new(),
                mounts: mounts_file,
                scratch: cdir.join("scratch"),
                log: work
                    .join("logs")
                    .join(format!("{namespace}_{name}_{}.log", c.name)),
                child: None,
                restart_at: Some(Instant::now()),
                restarts: 0,
                started_at: String::new(),
                ready: false,
                readiness: None,
                liveness: None,
                spec: c.clone(),
                last_exit: None,
            });
        }
        let sandbox = Sandbox::create(n)?;
        let mut p = Pod {
            namespace,
            name,
            uid,
            hostname,
            subdomain: spec.subdomain.clone(),
            sandbox,
            containers,
            synced,
            started: now(),
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into()),
            deadline: None,
            last_status: None,
            last_sync: Instant::now(),
        };
        for c in &mut p.containers {
            c.env = env(client, pod, &c.spec, &p.sandbox).await?;
        }
        Ok(p)
    }

    /// One turn: starts containers that are due, notices exits, runs probes, refreshes the
    /// config and secret volumes every 2 s.
    pub async fn turn(&mut self, client: &kube::Client, http: &reqwest::Client, sandbox_sh: &Path) {
        if self.last_sync.elapsed() > Duration::from_secs(2) {
            self.last_sync = Instant::now();
            for s in &self.synced {
                let _ = s.sync(client, &self.namespace).await;
            }
        }
        let terminating = self.deadline.is_some();
        for c in &mut self.containers {
            if let Some(child) = &mut c.child {
                if let Ok(Some(status)) = child.try_wait() {
                    c.child = None;
                    c.ready = false;
                    c.last_exit = Some(status.code().unwrap_or(137));
                    let again = match self.restart_policy.as_str() {
                        "Never" => false,
                        "OnFailure" => !status.success(),
                        _ => true,
                    };
                    if again && !terminating {
                        let backoff = Duration::from_secs(1 << c.restarts.min(3))
                            .min(Duration::from_secs(10));
                        c.restart_at = Some(Instant::now() + backoff);
                        c.restarts += 1;
                    }
                }
            }
            if c.child.is_none() && !terminating {
                if let Some(at) = c.restart_at {
                    if Instant::now() >= at {
                        c.restart_at = None;
                        c.spawn(&self.sandbox, &self.hostname, sandbox_sh);
                    }
                }
            }
            if c.child.is_some() && !terminating {
                if let Some(p) = &mut c.readiness {
                    match p.run(http, self.sandbox.addr).await {
                        Some(Verdict::Passing) => c.ready = true,
                        Some(Verdict::Failing) => c.ready = false,
                        None => {}
                    }
                } else {
                    c.ready = true;
                }
                if let Some(p) = &mut c.liveness {
                    if p.run(http, self.sandbox.addr).await == Some(Verdict::Failing) {
                        // Restarted as a kubelet restarts it: stopped, then started again.
                        c.signal("TERM");
                    }
                }
            }
        }
    }

    /// Starts the pod's deletion: SIGTERM to every container, the grace period from now.
    pub fn terminate(&mut self, grace: Duration) {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + grace);
            for c in &mut self.containers {
                c.ready = false;
                c.signal("TERM");
            }
        }
    }

    /// Whether a deletion has finished: every container gone, SIGKILLed at the deadline.
    pub fn terminated(&mut self) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        let late = Instant::now() >= deadline;
        let mut all = true;
        for c in &mut self.containers {
            if let Some(child) = &mut c.child {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    c.child = None;
                } else {
                    if late {
                        c.signal("KILL");
                    }
                    all = false;
                }
            }
        }
        all
    }

    /// Kills every container at once (the agent stopping).
    /// Sends `sig` to container `name`'s processes; false if it is not running.
    pub fn signal(&self, name: &str, sig: &str) -> bool {
        self.containers
            .iter()
            .find(|c| c.name == name && c.child.is_some())
            .map(|c| c.signal(sig))
            .is_some()
    }

    pub fn kill(&mut self) {
        for c in &mut self.containers {
            c.signal("KILL");
        }
    }

    /// Makes the next `status_change` report the status again (the last report failed).
    pub fn forget_status(&mut self) {
        self.last_status = None;
    }

    pub fn ready(&self) -> bool {
        self.deadline.is_none() && self.containers.iter().all(|c| c.child.is_some() && c.ready)
    }

    /// The status a kubelet would report, when it differs from the last one reported.
    pub fn status_change(&mut self) -> Option<serde_json::Value> {
        let ready = if self.ready() { "True" } else { "False" };
        let statuses: Vec<_> = self
            .containers
            .iter()
            .map(|c| {
                let state = match (&c.child, c.last_exit) {
                    (Some(_), _) => json!({"running": {"startedAt": c.started_at}}),
                    (None, Some(code)) => json!({"terminated": {"exitCode": code}}),
                    (None, None) => json!({"waiting": {"reason": "ContainerCreating"}}),
                };
                json!({
                    "name": c.name,
                    "image": c.image,
                    "imageID": "",
                    "ready": c.ready && c.child.is_some(),
                    "started": c.child.is_some(),
                    "restartCount": c.restarts,
                    "state": state,
                })
            })
            .collect();
        let ip = self.sandbox.addr.to_string();
        let status = json!({
            "phase": "Running",
            "hostIP": GATEWAY.to_string(),
            "hostIPs": [{"ip": GATEWAY.to_string()}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": self.started,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": ready},
                {"type": "Ready", "status": ready},
            ],
            "containerStatuses": statuses,
        });
        if self.last_status.as_ref() == Some(&status) {
            return None;
        }
        self.last_status = Some(status.clone());
        Some(status)
    }
}

impl Container {
    fn spawn(&mut self, sandbox: &Sandbox, hostname: &str, sandbox_sh: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log);
        let (Ok(out), Ok(err)) = (
            log.as_ref().map(|f| f.try_clone()),
            log.as_ref().map(|f| f.try_clone()),
        ) else {
            return;
        };
        let (Ok(out), Ok(err)) = (out, err) else {
            return;
        };
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &sandbox.name, "unshare", "--uts"])
            .arg(sandbox_sh)
            .arg(&self.scratch)
            .arg(hostname)
            .arg(&self.mounts)
            .arg("--")
            .args(self.argv.iter().map(|a| expand(a, &self.env)))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        match cmd.spawn() {
            Ok(child) => {
                let started = Instant::now();
                self.readiness = self
                    .spec
                    .readiness_probe
                    .as_ref()
                    .map(|p| Probe::new(&self.spec, p, started));
                self.liveness = self
                    .spec
                    .liveness_probe
                    .as_ref()
                    .map(|p| Probe::new(&self.spec, p, started));
                self.started_at = now();
                self.child = Some(child);
            }
            Err(e) => {
                eprintln!("agent: container {}: {e}", self.name);
                self.restart_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// Sends SIGTERM or SIGKILL to the container's process group.
    fn signal(&self, sig: &str) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = std::process::Command::new("kill")
                .arg(format!("-{sig}"))
                .arg("--")
                .arg(format!("-{pid}"))
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A container's processes never outlive it, whoever drops it (the agent's loop is aborted
/// mid-turn when a test ends, a pod out of its map): a process left running would keep its
/// pod's network namespace, and the veth pair on the bridge, alive into the next test.
impl Drop for Container {
    fn drop(&mut self) {
        self.signal("KILL");
    }
}

impl Synced {
    /// Writes the volume's files from the API: each through a temporary file and a rename,
    /// so that a reader sees the old file or the new one, never half of one.
    async fn sync(&self, client: &kube::Client, namespace: &str) -> Result<(), NotYet> {
        let (data, items) = match &self.source {
            Source::Projected { sources, account } => {
                return self.project(client, namespace, sources, account).await;
            }
            Source::ConfigMap { name, items } => {
                let map: ConfigMap = fetch(client, namespace, name, "config map").await?;
                let mut data: BTreeMap<String, Vec<u8>> = map
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                for (k, v) in map.binary_data.unwrap_or_default() {
                    data.insert(k, v.0);
                }
                (data, items)
            }
            Source::Secret { name, items } => {
                let secret: Secret = fetch(client, namespace, name, "secret").await?;
                let mut data: BTreeMap<String, Vec<u8>> = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                for (k, v) in secret.string_data.unwrap_or_default() {
                    data.insert(k, v.into_bytes());
                }
                (data, items)
            }
        };
        self.write(&data, items.as_ref())
    }

    /// The projected volume's files; the token once (it outlives the tests' pods).
    async fn project(
        &self,
        client: &kube::Client,
        namespace: &str,
        sources: &[k8s_openapi::api::core::v1::VolumeProjection],
        account: &str,
    ) -> Result<(), NotYet> {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        let mut data = BTreeMap::new();
        for source in sources {
            if let Some(t) = &source.service_account_token {
                if self.dir.join(&t.path).exists() {
                    continue;
                }
                let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
                let request: TokenRequest = serde_json::from_value(json!({
                    "spec": {"audiences": t.audience.iter().collect::<Vec<_>>(),
                             "expirationSeconds": t.expiration_seconds.unwrap_or(3607)},
                }))
                .map_err(|e| e.to_string())?;
                let token = api
                    .create_token_request(account, &Default::default(), &request)
                    .await
                    .map_err(|e| format!("a token for service account {account}: {e}"))?;
                let token = token.status.and_then(|s| s.token).unwrap_or_default();
                data.insert(t.path.clone(), token.into_bytes());
            } else if let Some(c) = &source.config_map {
                let map: ConfigMap = fetch(client, namespace, &c.name, "config map").await?;
                let values = map.data.unwrap_or_default();
                for i in c.items.iter().flatten() {
                    if let Some(v) = values.get(&i.key) {
                        data.insert(i.path.clone(), v.clone().into_bytes());
                    }
                }
            } else if let Some(d) = &source.downward_api {
                for i in d.items.iter().flatten() {
                    if i.field_ref.as_ref().map(|f| f.field_path.as_str())
                        == Some("metadata.namespace")
                    {
                        data.insert(i.path.clone(), namespace.as_bytes().to_vec());
                    }
                }
            }
        }
        self.write(&data, None)
    }

    fn write(
        &self,
        data: &BTreeMap<String, Vec<u8>>,
        items: Option<&BTreeMap<String, String>>,
    ) -> Result<(), NotYet> {
        for (key, bytes) in data {
            let path = match items {
                Some(items) => match items.get(key) {
                    Some(p) => p.clone(),
                    None => continue,
                },
                None => key.clone(),
            };
            let target = self.dir.join(&path);
            if std::fs::read(&target).ok().as_ref() == Some(bytes) {
                continue;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let tmp = self.dir.join(format!(".{}.tmp", path.replace('/', "_")));
            std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The container's environment as a kubelet gives it: PATH, HOSTNAME, HOME, then
/// the spec's `env` (values, secret and config map keys, pod fields).
async fn env(
    client: &kube::Client,
    pod: &KubePod,
    c: &KubeContainer,
    sandbox: &Sandbox,
) -> Result<Vec<(String, String)>, NotYet> {
    let namespace = pod.namespace().unwrap_or_default();
    let mut env = vec![
        (
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("HOSTNAME".to_string(), pod.name_any()),
        ("HOME".to_string(), "/root".to_string()),
    ];
    // The API server, as a kubelet names it to every container (in-cluster clients read
    // these): the `kubernetes` Service's endpoint, since no proxy serves its cluster IP here.
    if let Some((host, port)) = api_server(client).await {
        env.push(("KUBERNETES_SERVICE_HOST".to_string(), host));
        env.push(("KUBERNETES_SERVICE_PORT".to_string(), port.to_string()));
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            v.clone()
        } else if let Some(from) = &e.value_from {
            if let Some(k) = &from.secret_key_ref {
                let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
                let s = api.get_opt(&k.name).await.map_err(|e| e.to_string())?;
                let v = s.and_then(|s| s.data).and_then(|d| d.get(&k.key).cloned());
                match v {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if k.optional == Some(true) => continue,
                    None => return Err(format!("secret {} has no key {}", k.name, k.key)),
                }
            } else if let Some(k) = &from.config_map_key_ref {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
                let m = api.get_opt(&k.name).await.map_err(|e| e.to_string())?;
                match m.and_then(|m| m.data).and_then(|d| d.get(&k.key).cloned()) {
                    Some(v) => v,
                    None if k.optional == Some(true) => continue,
                    None => return Err(format!("config map {} has no key {}", k.name, k.key)),
                }
            } else if let Some(f) = &from.field_ref {
                match f.field_path.as_str() {
                    "metadata.name" => pod.name_any(),
                    "metadata.namespace" => namespace.clone(),
                    "metadata.uid" => pod.uid().unwrap_or_default(),
                    "status.podIP" => sandbox.addr.to_string(),
                    "status.hostIP" => GATEWAY.to_string(),
                    "spec.nodeName" => super::NODE.to_string(),
                    "spec.serviceAccountName" => pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.service_account_name.clone())
                        .unwrap_or_default(),
                    other => return Err(format!("field {other}: not served by the test agent")),
                }
            } else {
                return Err(format!(
                    "env {}: a source the test agent does not serve",
                    e.name
                ));
            }
        } else {
            String::new()
        };
        env.push((e.name.clone(), value));
    }
    Ok(env)
}

/// `$(NAME)` in a command or argument replaced by the container's variable NAME, as a
/// kubelet does (`$$` is a `$`; an unknown name stays as it is written).
fn expand(arg: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The address and port the API server advertises (the `kubernetes` Service's endpoint).
async fn api_server(client: &kube::Client) -> Option<(String, i32)> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let list = slices
        .list(&kube::api::ListParams::default().labels("kubernetes.io/service-name=kubernetes"))
        .await
        .ok()?;
    let slice = list.items.into_iter().next()?;
    let host = slice.endpoints?.first()?.addresses.first()?.clone();
    let port = slice.ports?.first()?.port?;
    Some((host, port))
}

/// A namespaced object the pod needs; a missing one is a reason to wait, as a kubelet waits.
async fn fetch<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    what: &str,
) -> Result<K, NotYet>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{what} {name} does not exist"))
}
