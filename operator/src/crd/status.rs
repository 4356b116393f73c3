//! What the operator observed of an `Ensemble`, and what it is doing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EnsembleStatus {
    /// The spec generation this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Available`, `Progressing`, `Degraded` (and `Warning` for an even member count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The leading member's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The zxid of the membership in force (`/zookeeper/config`'s version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
    #[serde(default)]
    pub ready_members: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// The membership change or roll step under way, written before it starts, so that an
    /// operator that restarts finishes or undoes it from live state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingOperation>,
    /// The last backup that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupRecord>,
    /// The last backup tried, whether it succeeded or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_attempt: Option<BackupAttempt>,
    /// The last restore: under way, done or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub name: String,
    pub server_id: i64,
    /// `leader`, `follower`, `observer`, `joining` (not yet in the configuration), or
    /// `unknown` (not answering).
    pub role: String,
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<String>,
    /// Entries behind the leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
}

/// One step of a membership change or a roll. (A struct with a kind, not a tagged enum: the
/// API server wants a structural schema.)
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PendingOperation {
    pub kind: OperationKind,
    pub server_id: i64,
    /// For a restart: the pod template revision the member is restarted onto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// When it was recorded (RFC 3339): how long it has taken shows against
    /// `spec.stepTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    /// A new member is being added: created as a non-voter, promoted by a reconfig once
    /// caught up.
    AddMember,
    /// A member is being reconfigured out, then its pod and volume removed.
    RemoveMember,
    /// A member is being restarted onto a new pod template.
    Restart,
    /// An observer is being added: created, then joined by a reconfig as a non-voter.
    AddObserver,
    /// An observer is being reconfigured out, then its pod and volume removed.
    RemoveObserver,
}

impl PendingOperation {
    pub fn add(server_id: i64) -> Self {
        PendingOperation {
            kind: OperationKind::AddMember,
            server_id,
            revision: None,
            since: None,
        }
    }

    pub fn remove(server_id: i64) -> Self {
        PendingOperation {
            kind: OperationKind::RemoveMember,
            server_id,
            revision: None,
            since: None,
        }
    }

    pub fn add_observer(server_id: i64) -> Self {
        PendingOperation {
            kind: OperationKind::AddObserver,
            ..Self::add(server_id)
        }
    }

    pub fn remove_observer(server_id: i64) -> Self {
        PendingOperation {
            kind: OperationKind::RemoveObserver,
            ..Self::remove(server_id)
        }
    }

    pub fn restart(server_id: i64, revision: &str) -> Self {
        PendingOperation {
            kind: OperationKind::Restart,
            server_id,
            revision: Some(revision.to_string()),
            since: None,
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// When it was taken (RFC 3339).
    pub time: String,
    /// Its URL, as `spec.restore.from` takes it.
    pub location: String,
    /// The snapshot's SHA-256, hex.
    pub sha256: String,
    /// The last zxid it holds.
    pub zxid: String,
    /// Its tree's digest (decimal), as the server's `hash` admin command gives it: a restore
    /// of it gives the same. None from a server that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub size_bytes: i64,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupAttempt {
    /// When it started (RFC 3339).
    pub time: String,
    /// The `zooid.io/backup-request` annotation's value it answered, if it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Why it failed; none if it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// The backup's URL.
    pub source: String,
    /// The `zooid.io/restore-from` annotation's value it answered, or none for
    /// `spec.restore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    pub phase: RestorePhase,
    /// When the phase was entered (RFC 3339).
    pub time: String,
    /// The last zxid the backup held, once restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<String>,
    /// The restored tree's digest (decimal), once restored: the backup's (the members check
    /// it as they read the backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePhase {
    /// Written before the backup is sent: an operator that stops meanwhile finds it and never
    /// restores a second time over writes made since.
    Restoring,
    Restored,
    Failed,
}
