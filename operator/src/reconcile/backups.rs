//! Backups and restores carried out: a member's `/commands/snapshot` streamed into the
//! storage, a stored backup streamed into a member's `/commands/restore` (which restores the
//! whole ensemble through its log). The decisions are in [`crate::plan::backup`].

use super::ensemble::{Reachable, SuperUser};
use crate::backup::{store, BackupError, Location};
use crate::build::names::ADMIN_PORT;
use crate::crd::BackupRecord;
use k8s_openapi::jiff::Timestamp;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a snapshot or a restore may take, end to end.
const TRANSFER_WITHIN: Duration = Duration::from_secs(600);

fn admin_url(member: &Reachable, command: &str) -> String {
    format!("http://{}:{ADMIN_PORT}/commands/{command}", member.ip)
}

/// The admin API's error message from a refused answer.
async fn refused(command: &str, answer: reqwest::Response) -> BackupError {
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    let why = body["error"].as_str().unwrap_or("no reason given");
    BackupError::Admin(format!("{command}: {status}: {why}"))
}

/// Takes a backup from `member` into `<target>/<namespace>/<name>/`, then keeps only the
/// newest `retain` there.
#[allow(clippy::too_many_arguments)]
pub async fn take(
    http: &reqwest::Client,
    target: &Location,
    credentials: Option<&BTreeMap<String, String>>,
    namespace: &str,
    name: &str,
    retain: usize,
    member: &Reachable,
    super_user: &SuperUser,
    now: Timestamp,
) -> Result<BackupRecord, BackupError> {
    let storage = store::open(target, credentials)?;
    let answer = http
        .get(admin_url(member, "snapshot"))
        .header(AUTHORIZATION, format!("digest {super_user}"))
        .timeout(TRANSFER_WITHIN)
        .send()
        .await
        .map_err(|e| BackupError::Admin(format!("snapshot: {e}")))?;
    if !answer.status().is_success() {
        return Err(refused("snapshot", answer).await);
    }
    let zxid = answer
        .headers()
        .get("last_zxid")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| BackupError::Admin("snapshot: no last_zxid header".into()))?
        .to_string();
    let digest = answer
        .headers()
        .get("digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let folder = target.join(namespace).join(name);
    let file = format!(
        "{}-{}{}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        zxid.trim_start_matches("0x"),
        store::SUFFIX
    );
    let at = folder.join(&file);
    let written = store::upload(storage.as_ref(), &at, answer.bytes_stream()).await?;
    let pruned = store::prune(storage.as_ref(), &folder, retain).await?;
    if !pruned.is_empty() {
        tracing::info!(?pruned, "backups beyond the {retain} kept deleted");
    }
    Ok(BackupRecord {
        time: now.to_string(),
        location: at.url(),
        sha256: written.sha256,
        zxid,
        digest,
        size_bytes: i64::try_from(written.bytes).unwrap_or(i64::MAX),
    })
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The last zxid the backup held, hex.
    pub zxid: String,
    /// The restored tree's digest, decimal (none from a server that does not say).
    pub digest: Option<String>,
}

/// Sends the backup at `source` to `member`'s `/commands/restore`.
pub async fn restore(
    http: &reqwest::Client,
    source: &Location,
    credentials: Option<&BTreeMap<String, String>>,
    member: &Reachable,
    super_user: &SuperUser,
) -> Result<Restored, BackupError> {
    let storage = store::open(source, credentials)?;
    let (len, body) = store::download(storage.as_ref(), source).await?;
    let answer = http
        .post(admin_url(member, "restore"))
        .header(AUTHORIZATION, format!("digest {super_user}"))
        .header(CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(body))
        .timeout(TRANSFER_WITHIN)
        .send()
        .await
        .map_err(|e| BackupError::Admin(format!("restore: {e}")))?;
    if !answer.status().is_success() {
        return Err(refused("restore", answer).await);
    }
    let body: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| BackupError::Admin(format!("restore: its answer: {e}")))?;
    let zxid = body["last_zxid"]
        .as_i64()
        .ok_or_else(|| BackupError::Admin("restore: no last_zxid in the answer".into()))?;
    Ok(Restored {
        zxid: format!("0x{zxid:x}"),
        digest: body["digest"].as_u64().map(|d| d.to_string()),
    })
}
