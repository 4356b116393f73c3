//! What a user asks of an `Ensemble`.

use k8s_openapi::api::core::v1::{
    Affinity, PodTemplateSpec, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::status::EnsembleStatus;

/// A Zooid ensemble: its voting members, observers, server settings, storage, TLS, services
/// and backups. The operator reconciles it into a StatefulSet, Services, a PodDisruptionBudget
/// and a discovery ConfigMap, and changes its membership through ZooKeeper's reconfig.
// clippy reads the printer columns' repeated `type_` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zooid.io",
    version = "v1alpha1",
    kind = "Ensemble",
    namespaced,
    shortname = "ens",
    status = "EnsembleStatus",
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Observers",
        type_ = "integer",
        json_path = ".spec.observers",
        priority = 1
    ),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyMembers"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader"),
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EnsembleSpec {
    /// Voting members (ZooKeeper's participants). An even count is served, with a Warning
    /// condition: it tolerates no more failures than one member fewer.
    #[serde(default = "default_replicas")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 15").message("replicas must be 1 to 15"))]
    pub replicas: i32,
    /// Members that replicate and serve clients but never vote (ZooKeeper's observers): a
    /// StatefulSet of their own (`<name>-observer`, server ids from 101), each added and
    /// removed by reconfig, rolled before the voters. They add read capacity without
    /// slowing writes or counting towards the quorum.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 100").message("observers must be 0 to 100"))]
    pub observers: i32,
    /// The `zooid` image.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Server settings, rendered into each member's zoo.cfg (a change rolls the members).
    #[serde(default)]
    pub config: ServerConfig,
    #[serde(default)]
    pub storage: Storage,
    /// TLS material from Secrets; certificates replaced in the Secrets are reloaded by the
    /// members without a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// The super user's `user:password`, from a Secret: the operator's identity for reconfig
    /// and the admin API, and ZooKeeper's `DigestAuthenticationProvider.superDigest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_user: Option<SecretKeyRef>,
    #[serde(default)]
    pub pod: PodSettings,
    #[serde(default)]
    pub services: Services,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSchedule>,
    /// A new Ensemble starts from this backup: restored once, when its members first have a
    /// quorum and hold no data yet (an ensemble that holds data is never overwritten by it;
    /// the annotation `zooid.io/restore-from` restores in place, on request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
    /// Stop changing anything (status is still observed and written).
    #[serde(default)]
    pub paused: bool,
    /// How long one step of a membership change or a roll (a member added, removed or
    /// restarted, until it is ready and caught up) may take before the Ensemble is marked
    /// Degraded (reason `StepTimedOut`). The operator never moves on past a step that has not
    /// completed; this only says so.
    #[serde(default = "default_step_timeout")]
    #[x_kube(validation = Rule::new("self >= 10").message("stepTimeoutSeconds must be at least 10"))]
    pub step_timeout_seconds: i64,
}

fn default_step_timeout() -> i64 {
    600
}

fn default_replicas() -> i32 {
    3
}

/// Server settings under ZooKeeper's names.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerConfig {
    /// ZooKeeper's `tickTime`, in milliseconds.
    #[serde(default = "default_tick")]
    #[x_kube(validation = Rule::new("self >= 10").message("tickTime must be at least 10 ms"))]
    pub tick_time: i32,
    #[serde(default = "default_init_limit")]
    pub init_limit: i32,
    #[serde(default = "default_sync_limit")]
    pub sync_limit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_session_timeout: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_timeout: Option<i32>,
    /// ZooKeeper's `snapCount`: entries between snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snap_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_client_cnxns: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_outstanding_limit: Option<i32>,
    /// Further zoo.cfg lines, `key: value`; the operator's own keys (server lines, ports,
    /// dataDir) cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tick_time: default_tick(),
            init_limit: default_init_limit(),
            sync_limit: default_sync_limit(),
            min_session_timeout: None,
            max_session_timeout: None,
            snap_count: None,
            max_client_cnxns: None,
            global_outstanding_limit: None,
            overrides: BTreeMap::new(),
        }
    }
}

fn default_tick() -> i32 {
    2000
}
fn default_init_limit() -> i32 {
    10
}
fn default_sync_limit() -> i32 {
    5
}

/// Each member's volume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// A quantity, `10Gi`.
    #[serde(default = "default_size")]
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storageClassName is immutable"))]
    pub storage_class_name: Option<String>,
    /// What happens to a removed member's volume: `Delete` it, or `Retain` it (never reused:
    /// a member that comes back at that ordinal starts from an empty volume).
    #[serde(default)]
    pub on_scale_down: VolumePolicy,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            size: default_size(),
            storage_class_name: None,
            on_scale_down: VolumePolicy::default(),
        }
    }
}

fn default_size() -> String {
    "10Gi".into()
}

#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum VolumePolicy {
    #[default]
    Delete,
    Retain,
}

/// A key of a Secret in the Ensemble's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// TLS from Secrets of type `kubernetes.io/tls` (with `ca.crt`), as cert-manager writes them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// A TLS Secret (`tls.crt`, `tls.key`, `ca.crt`) for the client port: `secureClientPort`
    /// 2281 beside the plain port; `ca.crt` vouches for client certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Whether clients must show a certificate (ZooKeeper's `ssl.clientAuth`).
    #[serde(default = "default_client_auth")]
    #[x_kube(validation = Rule::new("self in ['need', 'want', 'none']").message("clientAuth is need, want or none"))]
    pub client_auth: String,
    /// A TLS Secret for the members (`sslQuorum`): each member's certificate must be valid for
    /// its DNS name (`*.<name>-peers.<namespace>.svc.cluster.local`), `ca.crt` vouches for
    /// the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_secret: Option<String>,
}

fn default_client_auth() -> String {
    "need".into()
}

/// What the member pods get beyond the operator's own settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Without one, members prefer distinct nodes (soft anti-affinity on the hostname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// A pod template merged over the operator's last (labels, annotations, sidecars, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub overrides: Option<PodTemplateSpec>,
}

/// An object the API server keeps as given (a pod template is too large a schema to embed).
fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Services {
    /// The client Service's type (`ClusterIP` unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_annotations: BTreeMap<String, String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Make a PodMonitor (Prometheus operator) for the members' `/metrics`.
    #[serde(default)]
    pub pod_monitor: bool,
}

/// Backups: snapshots taken through a member's admin API (`/commands/snapshot`) on a
/// schedule, or on request with the annotation `zooid.io/backup-request` (any new value takes
/// one backup), kept in S3-compatible storage or a folder.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSchedule {
    /// Cron, five fields (or six, seconds first), in UTC. Without one, backups are taken only
    /// on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Backups kept; older ones are deleted after each new one.
    #[serde(default = "default_retain")]
    #[x_kube(validation = Rule::new("self >= 1").message("retain must be at least 1"))]
    pub retain: i32,
    /// `s3://bucket/prefix`, or `file:///path`: a folder of the operator's pod (a volume the
    /// chart mounts there). Backups go under `<namespace>/<name>/` in it.
    #[x_kube(validation = Rule::new("self.startsWith('s3://') || self.startsWith('file:///')").message("target must be s3://bucket/prefix or file:///path"))]
    pub target: String,
    /// For S3: a Secret in the Ensemble's namespace with `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, and optionally `AWS_REGION` and `AWS_ENDPOINT_URL` (an
    /// S3-compatible server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// Where a restore comes from: one backup, by the URL the status's `lastBackup.location`
/// shows.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// `s3://bucket/key.zsnap` or `file:///path/key.zsnap`.
    #[x_kube(validation = Rule::new("self.startsWith('s3://') || self.startsWith('file:///')").message("from must be s3://bucket/key or file:///path"))]
    pub from: String,
    /// For S3: a Secret with the keys `backup.credentialsSecret` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

fn default_retain() -> i32 {
    7
}
