//! ZooKeeper 3.9's `snapshot` admin command: a backup, in Zooid's format or ZooKeeper's.

use super::listener::AdminPeer;
use super::{answer, authorized};
use crate::runtime::Node;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// ZooKeeper 3.9's `snapshot`: a consistent snapshot of everything this server has applied,
/// streamed in Zooid's checked snapshot format (a backup; the `last_zxid` header says how far
/// it goes), or with `?format=zookeeper` in Apache ZooKeeper's. Needs the admin token: it
/// holds all the data.
pub async fn snapshot(
    State(node): State<Arc<Node>>,
    Query(params): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<AdminPeer>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorized(&node, &peer, &headers) {
        return refused;
    }
    match params.get("format").map(String::as_str) {
        None | Some("zooid") => {}
        Some("zookeeper") => return zookeeper(&node),
        Some(other) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({ "command": "snapshot",
                        "error": format!("format {other:?}: zooid (the default) or zookeeper") }),
            )
        }
    }
    let Some(consensus) = node.consensus().cloned() else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "command": "snapshot", "error": "not started" }),
        );
    };
    let backup = match consensus.backup(SNAPSHOT_WITHIN).await {
        Ok(b) => b,
        Err(e) => {
            node.metrics.snapshot_errors.inc();
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "command": "snapshot", "error": format!("taking the snapshot: {e}") }),
            );
        }
    };
    let len = backup.len;
    // The state's own last zxid, from the head of the file's state (a snapshot's zxid is
    // finer than its log index: several writes can share an entry). The file was checked
    // when the backup found it: only its first bytes are read here.
    let head = backup
        .checked
        .state(&backup.path)
        .ok()
        .and_then(|mut state| zooid_tree::DataTree::snapshot_head(&mut state).ok());
    let Some(head) = head else {
        node.metrics.snapshot_errors.inc();
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "command": "snapshot", "error": "the snapshot file could not be read back" }),
        );
    };
    let file = tokio::fs::File::from_std(backup.file);
    let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = bytes::BytesMut::with_capacity(256 << 10);
        match file.read_buf(&mut buf).await? {
            0 => Ok::<_, std::io::Error>(None),
            _ => Ok(Some((buf.freeze(), file))),
        }
    });
    let last_zxid = head.last_zxid;
    download(
        &format!("zooid-{last_zxid:x}.zsnap"),
        last_zxid,
        head.digest,
        Some(len),
        Body::from_stream(chunks),
    )
}

/// A snapshot's answer: the file's suggested name, how far it goes (`last_zxid`, as
/// ZooKeeper's header names it), its tree's digest when known (`digest`, as the `hash`
/// command gives it: the digest a restore of it gives) and its length when known before it
/// is sent.
fn download(
    name: &str,
    last_zxid: i64,
    digest: Option<u64>,
    len: Option<u64>,
    body: Body,
) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    let value = |v: String| {
        header::HeaderValue::from_str(&v)
            .unwrap_or_else(|e| unreachable!("a file name and numbers are header values: {e}"))
    };
    h.insert(
        header::CONTENT_TYPE,
        value("application/octet-stream".into()),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        value(format!("attachment; filename=\"{name}\"")),
    );
    h.insert(
        header::HeaderName::from_static("last_zxid"),
        value(format!("0x{last_zxid:x}")),
    );
    if let Some(digest) = digest {
        h.insert(
            header::HeaderName::from_static("digest"),
            value(digest.to_string()),
        );
    }
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, value(len.to_string()));
    }
    r
}

/// How long a backup may wait for its snapshot to be built.
const SNAPSHOT_WITHIN: std::time::Duration = std::time::Duration::from_secs(300);

/// The state this server has applied now, in Apache ZooKeeper's snapshot format, streamed as
/// it is encoded (from a frozen copy of the tree, taken in O(1) under the lock): a file that
/// an Apache ZooKeeper server starts from as `version-2/snapshot.<last zxid in hex>` of its
/// data dir, which is how data moves back from Zooid to ZooKeeper.
fn zookeeper(node: &Node) -> Response {
    let frozen = node.state().tree().freeze();
    let last_zxid = frozen.last_zxid();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let errors = node.metrics.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Pieces {
            tx: &tx,
            buf: BytesMut::new(),
        };
        let written = zooid_tree::write_zookeeper_snapshot(&frozen, &mut out).and_then(|()| {
            let rest = out.buf.split().freeze();
            send(&tx, rest)
        });
        if let Err(e) = written {
            errors.snapshot_errors.inc();
            tracing::warn!("streaming a ZooKeeper snapshot: {e}");
            let _ = tx.blocking_send(Err(e));
        }
    });
    let pieces = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    download(
        &format!("snapshot.{last_zxid:x}"),
        last_zxid,
        None,
        None,
        Body::from_stream(pieces),
    )
}

/// Gathers what is written into pieces of [`PIECE_BYTES`] for the response body.
struct Pieces<'a> {
    tx: &'a tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: BytesMut,
}

const PIECE_BYTES: usize = 256 << 10;

fn send(
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    piece: Bytes,
) -> std::io::Result<()> {
    if piece.is_empty() {
        return Ok(());
    }
    tx.blocking_send(Ok(piece))
        .map_err(|_| std::io::Error::other("the client went away"))
}

impl std::io::Write for Pieces<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE_BYTES {
            let piece = self.buf.split().freeze();
            send(self.tx, piece)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
