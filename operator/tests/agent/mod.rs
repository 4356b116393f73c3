//! A test node agent: plays kubelet (and scheduler, and volume provisioner) for one fake node
//! on the test's control plane, running each pod's containers as local processes.
//!
//! - Pods no scheduler placed are bound to the node unless it is cordoned; pods bound to it
//!   are started.
//! - Each pod gets a network namespace with an address of its own (`network.rs`), its
//!   containers a root of their own (`sandbox.sh`): the image's binaries from this repo at
//!   /usr/local/bin, the pod's volumes at their mount paths, and /etc/hosts from the agent,
//!   which names every pod (`<hostname>.<subdomain>.<namespace>.svc.cluster.local`) and every
//!   Service with a selector (one ready pod's address: there is no kube-proxy).
//! - Persistent volume claims are directories that outlive pods and go with their claim;
//!   config maps and secrets are files, kept up to date as a kubelet keeps them.
//! - Readiness and liveness probes run for real; status is reported as a kubelet reports it;
//!   exited containers restart per `restartPolicy`; a deleted pod gets SIGTERM, its grace
//!   period, then SIGKILL, and is then removed from the API.
//!
//! The test process itself resolves the same names: the agent binds its hosts file over
//! /etc/hosts for as long as it runs.
//!
//! It needs the powers of a network and mount namespace's root: scripts/e2e-operator.sh runs
//! the tests in namespaces of their own (unshare). A test fixture; the product uses none of it.

mod network;
mod pod;
mod probe;

use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod as KubePod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use pod::Pod;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The node's name.
pub const NODE: &str = "zooid-e2e-node";

/// Which binaries an image runs: an image's repository (the reference without its tag) maps
/// to a directory that becomes the container's /usr/local/bin, and the entrypoint used when
/// a container names no command.
#[derive(Clone, Default)]
pub struct Images {
    map: HashMap<String, (PathBuf, Vec<String>)>,
}

impl Images {
    pub fn with(mut self, repository: &str, bin: PathBuf, entrypoint: &[&str]) -> Images {
        self.map.insert(
            repository.to_string(),
            (bin, entrypoint.iter().map(|s| s.to_string()).collect()),
        );
        self
    }

    fn resolve(&self, image: &str) -> Option<(PathBuf, Vec<String>)> {
        let repository = image.split('@').next().unwrap_or(image);
        let repository = match repository.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r,
            _ => repository,
        };
        self.map.get(repository).cloned()
    }
}

pub struct Agent {
    stop: Arc<AtomicBool>,
    pods: Arc<Mutex<BTreeMap<String, Pod>>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub work: PathBuf,
}

struct Loop {
    client: kube::Client,
    http: reqwest::Client,
    work: PathBuf,
    images: Images,
    sandbox_sh: PathBuf,
    pods: Arc<Mutex<BTreeMap<String, Pod>>>,
    next: u32,
    hosts: String,
    waiting: HashMap<String, String>,
}

impl Agent {
    /// Registers the node and starts serving it; `work` holds volumes, pods and logs.
    pub async fn start(client: kube::Client, work: &Path, images: Images) -> Agent {
        network::bridge().expect("the agent's bridge (run under scripts/e2e-operator.sh)");
        for d in ["pods", "volumes", "logs"] {
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
        std::fs::write(work.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        // The test process resolves pod names as pods do: the same file over its /etc/hosts
        // (in the mount namespace scripts/e2e-operator.sh gives the tests), until dropped.
        let bound = std::process::Command::new("mount")
            .arg("--bind")
            .arg(work.join("hosts"))
            .arg("/etc/hosts")
            .status()
            .is_ok_and(|s| s.success());
        assert!(bound, "binding the agent's hosts file over /etc/hosts");
        register_node(&client).await;
        let pods = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut l = Loop {
            client,
            http: reqwest::Client::new(),
            work: work.to_path_buf(),
            images,
            sandbox_sh: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/sandbox.sh"),
            pods: pods.clone(),
            next: next_sandbox(),
            hosts: String::new(),
            waiting: HashMap::new(),
        };
        let s = stop.clone();
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Err(e) = l.turn().await {
                    eprintln!("agent: {e}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Agent {
            stop,
            pods,
            task: Some(task),
            work: work.to_path_buf(),
        }
    }

    /// Sends `sig` (`STOP`, `CONT`, ...) to a running container's processes, as a fault a
    /// test inflicts (a process that hangs); false if there is no such container running.
    pub fn signal(&self, namespace: &str, pod: &str, container: &str, sig: &str) -> bool {
        let pods = self.pods.lock().unwrap();
        pods.values()
            .find(|p| p.namespace == namespace && p.name == pod)
            .is_some_and(|p| p.signal(container, sig))
    }

    /// The log of a pod's container, for a failing test to show.
    pub fn log(&self, namespace: &str, pod: &str, container: &str) -> String {
        std::fs::read_to_string(
            self.work
                .join("logs")
                .join(format!("{namespace}_{pod}_{container}.log")),
        )
        .unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Ok(mut pods) = self.pods.lock() {
            for p in pods.values_mut() {
                p.kill();
            }
            pods.clear();
        }
        let _ = std::process::Command::new("umount")
            .arg("/etc/hosts")
            .status();
    }
}

/// The number of the next pod sandbox (its network namespace, veth pair and address): one
/// count for the whole test process, so that an agent never reuses the names or the address
/// of a previous test's pod, whose namespace the kernel may still be tearing down.
fn next_sandbox() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn register_node(client: &kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
    }))
    .unwrap();
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("registering the node: {e}"),
    }
    let status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        "addresses": [{"type": "InternalIP", "address": network::GATEWAY.to_string()},
                      {"type": "Hostname", "address": NODE}],
        "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
        "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
    }});
    nodes
        .patch_status(NODE, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

impl Loop {
    async fn turn(&mut self) -> Result<(), kube::Error> {
        let api: Api<KubePod> = Api::all(self.client.clone());
        let listed = api.list(&ListParams::default()).await?;
        // A cordoned node (`kubectl cordon`, the first step of a drain) takes no new pods.
        let nodes: Api<Node> = Api::all(self.client.clone());
        let cordoned = nodes
            .get(NODE)
            .await?
            .spec
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        let mut seen = BTreeSet::new();
        for kp in &listed {
            let uid = kp.uid().unwrap_or_default();
            let ns = kp.namespace().unwrap_or_default();
            let name = kp.name_any();
            let node = kp.spec.as_ref().and_then(|s| s.node_name.clone());
            let deleting = kp.metadata.deletion_timestamp.is_some();
            match node.as_deref() {
                None if !deleting => {
                    if !cordoned {
                        self.bind(&ns, &name).await;
                    }
                    continue;
                }
                Some(NODE) => {}
                _ => continue,
            }
            seen.insert(uid.clone());
            let running = self.pods.lock().unwrap().contains_key(&uid);
            if deleting {
                let grace = kp
                    .metadata
                    .deletion_grace_period_seconds
                    .unwrap_or(30)
                    .max(0) as u64;
                let done = {
                    let mut pods = self.pods.lock().unwrap();
                    match pods.get_mut(&uid) {
                        Some(p) => {
                            p.terminate(Duration::from_secs(grace));
                            let done = p.terminated();
                            if done {
                                pods.remove(&uid);
                            }
                            done
                        }
                        None => true,
                    }
                };
                if done {
                    // As a kubelet does once the containers are gone: the final delete.
                    let pods: Api<KubePod> = Api::namespaced(self.client.clone(), &ns);
                    let dp = DeleteParams::default().grace_period(0);
                    let _ = pods.delete(&name, &dp).await;
                }
                continue;
            }
            if !running {
                match Pod::start(&self.client, &self.work, &self.images, kp, self.next).await {
                    Ok(p) => {
                        self.next = next_sandbox();
                        self.waiting.remove(&uid);
                        self.pods.lock().unwrap().insert(uid.clone(), p);
                    }
                    Err(why) => {
                        if self.waiting.insert(uid.clone(), why.clone()).as_ref() != Some(&why) {
                            eprintln!("agent: {ns}/{name} waits: {why}");
                        }
                        continue;
                    }
                }
            }
        }
        // Pods removed from the API without a graceful end (force deletes): killed.
        {
            let mut pods = self.pods.lock().unwrap();
            let gone: Vec<String> = pods
                .keys()
                .filter(|u| !seen.contains(*u))
                .cloned()
                .collect();
            for u in gone {
                if let Some(mut p) = pods.remove(&u) {
                    p.kill();
                }
            }
        }
        // Names before the new pods' containers start: a member resolves its own at once.
        self.hosts(&listed.items).await?;
        let uids: Vec<String> = self.pods.lock().unwrap().keys().cloned().collect();
        for uid in uids {
            // One turn of the pod, outside the lock (probes take time).
            let Some(mut p) = self.pods.lock().unwrap().remove(&uid) else {
                continue;
            };
            let (ns, name) = (p.namespace.clone(), p.name.clone());
            p.turn(&self.client, &self.http, &self.sandbox_sh).await;
            let status = p.status_change();
            self.pods.lock().unwrap().insert(uid.clone(), p);
            if let Some(status) = status {
                let pods: Api<KubePod> = Api::namespaced(self.client.clone(), &ns);
                let patch = Patch::Merge(json!({"status": status}));
                if let Err(e) = pods
                    .patch_status(&name, &PatchParams::default(), &patch)
                    .await
                {
                    eprintln!("agent: status of {ns}/{name}: {e}");
                    // Reported again next turn.
                    if let Some(p) = self.pods.lock().unwrap().get_mut(&uid) {
                        p.forget_status();
                    }
                }
            }
        }
        self.volumes().await?;
        Ok(())
    }

    async fn bind(&self, ns: &str, name: &str) {
        let pods: Api<KubePod> = Api::namespaced(self.client.clone(), ns);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
        });
        if let Err(e) = pods
            .create_subresource::<_, serde_json::Value>(
                "binding",
                name,
                &PostParams::default(),
                &binding,
            )
            .await
        {
            eprintln!("agent: binding {ns}/{name}: {e}");
        }
    }

    /// Volumes whose claim is gone are deleted (a `Delete` reclaim policy).
    async fn volumes(&self) -> Result<(), kube::Error> {
        let claims: Api<PersistentVolumeClaim> = Api::all(self.client.clone());
        let live: BTreeSet<String> = claims
            .list(&ListParams::default())
            .await?
            .iter()
            .filter_map(|c| c.uid())
            .collect();
        if let Ok(dir) = std::fs::read_dir(self.work.join("volumes")) {
            for e in dir.flatten() {
                if !live.contains(&e.file_name().to_string_lossy().to_string()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    /// Writes /etc/hosts for every pod when the names change. Written in place: containers
    /// see it through a bind mount of the file, which a rename would leave behind.
    async fn hosts(&mut self, listed: &[KubePod]) -> Result<(), kube::Error> {
        let mut lines = vec!["127.0.0.1 localhost".to_string()];
        let mut ready: Vec<(BTreeMap<String, String>, String, String)> = Vec::new();
        for p in self.pods.lock().unwrap().values() {
            let short = p.hostname.clone();
            let full = match &p.subdomain {
                Some(sub) => format!("{short}.{sub}.{}.svc.cluster.local", p.namespace),
                None => format!(
                    "{}.{}.pod.cluster.local",
                    p.sandbox.addr.to_string().replace('.', "-"),
                    p.namespace
                ),
            };
            lines.push(format!("{} {full} {short}", p.sandbox.addr));
            if p.ready() {
                if let Some(kp) = listed.iter().find(|k| k.uid().as_deref() == Some(&p.uid)) {
                    let labels = kp.labels().clone();
                    ready.push((labels, p.namespace.clone(), p.sandbox.addr.to_string()));
                }
            }
        }
        let services: Api<Service> = Api::all(self.client.clone());
        for s in services.list(&ListParams::default()).await? {
            let Some(selector) = s.spec.as_ref().and_then(|s| s.selector.clone()) else {
                continue;
            };
            if s.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
                continue;
            }
            let ns = s.namespace().unwrap_or_default();
            if let Some((_, _, ip)) = ready.iter().find(|(labels, pns, _)| {
                *pns == ns && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            }) {
                lines.push(format!("{ip} {}.{ns}.svc.cluster.local", s.name_any()));
            }
        }
        let text = lines.join("\n") + "\n";
        if text != self.hosts {
            std::fs::write(self.work.join("hosts"), &text).unwrap();
            self.hosts = text;
        }
        Ok(())
    }
}
