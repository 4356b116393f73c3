//! ZooKeeper 3.9's `restore`: the whole state replaced by a backup (what `snapshot` streams),
//! or by an Apache ZooKeeper snapshot (a `snapshot.<zxid>` file of its data dir, or what its
//! own `snapshot` command streams), which is how an ensemble's data moves to Zooid.
//!
//! ZooKeeper restores the one server it is sent to, and asks the operator to restore every
//! member from the same file. Here the backup goes through the log instead (see
//! `zooid_tree::restore`), so one request restores the whole ensemble and every member swaps
//! to the backup at the same zxid: the upload is kept in a file of the data dir, checked
//! whole, then its state is proposed in chunks, each applied before the next is sent, and one
//! last txn swaps it in. Until then nothing changes; an upload that fails half-way is
//! cancelled.

use super::listener::AdminPeer;
use super::{answer, authorized};
use crate::runtime::Node;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use zooid_proto::ErrorCode;
use zooid_replication::snapshot_file::{self, SnapshotFileError};
use zooid_tree::restore::compress_chunk;
use zooid_tree::{DataTree, OpOutput, SnapshotError, TxnOp, ZooKeeperSnapshotError};

/// Bytes of state per chunk, before compression: small against the log's batches
/// (`MAX_BATCH_BYTES` in `zooid_replication::proposer`), so client writes still get through
/// between chunks, and well under what a member decompresses at most
/// (`zooid_tree::restore::MAX_CHUNK_STATE`).
const CHUNK_BYTES: usize = 1 << 20;

/// How long one chunk may take to be applied here before the restore gives up. A leader
/// change or a lost quorum ends the wait sooner (see `State::propose_awaited`).
const CHUNK_WITHIN: Duration = Duration::from_secs(30);

/// The upload, in the data dir (the one disk that is sure to be there), until it is proposed.
const UPLOAD_FILE: &str = "restore.upload";

/// Why a restore did not happen. Nothing was changed, whichever it is.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the backup is larger than this server takes ({limit} bytes; --max-restore-bytes)")]
    TooLarge { limit: u64 },
    #[error("receiving the backup: {0}")]
    Receive(#[source] axum::Error),
    #[error("keeping the upload in {path}: {source}")]
    Keep {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a Zooid backup: {0}")]
    NotABackup(#[from] SnapshotFileError),
    #[error("not a Zooid backup: {0}")]
    State(#[from] SnapshotError),
    #[error("not a readable ZooKeeper snapshot: {0}")]
    ZooKeeper(#[from] ZooKeeperSnapshotError),
    #[error(
        "a compressed ZooKeeper snapshot (zookeeper.snapshot.compression.method): decompress it \
         first (gunzip, or snappy's tools)"
    )]
    Compressed,
    #[error("neither a Zooid backup nor a ZooKeeper snapshot")]
    UnknownFormat,
    #[error("reading the upload stopped unexpectedly (see the server's log)")]
    ReaderDied,
    #[error("this server is not serving (not in a working quorum, or stopping)")]
    NotServing,
    #[error(
        "the ensemble lost its leader or its quorum during the restore; nothing was restored, \
         try again"
    )]
    Lost,
    #[error(
        "the ensemble lost its leader or its quorum as the swap was ordered: it may or may not \
         have been applied (the nodes show which); a retry restores the backup either way"
    )]
    SwapLost,
    #[error("the ensemble refused the restore ({0:?}): the backup's state does not decode")]
    Refused(ErrorCode),
}

impl RestoreError {
    fn status(&self) -> StatusCode {
        match self {
            RestoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RestoreError::Receive(_)
            | RestoreError::NotABackup(_)
            | RestoreError::State(_)
            | RestoreError::ZooKeeper(_)
            | RestoreError::UnknownFormat
            | RestoreError::Refused(_) => StatusCode::BAD_REQUEST,
            RestoreError::Compressed => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RestoreError::Keep { .. } | RestoreError::ReaderDied => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            RestoreError::NotServing | RestoreError::Lost | RestoreError::SwapLost => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

/// `POST /commands/restore` with the backup as the body, behind the admin token.
pub async fn restore(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<AdminPeer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = authorized(&node, &peer, &headers) {
        return refused;
    }
    // One at a time: two uploads would cancel each other's staged chunks.
    let Ok(_one) = node.restoring.try_lock() else {
        return answer(
            StatusCode::CONFLICT,
            json!({ "command": "restore", "error": "a restore is already running on this server" }),
        );
    };
    let upload = Upload(node.config.data_dir.join(UPLOAD_FILE));
    let started = std::time::Instant::now();
    let result = run(&node, body, &upload.0).await;
    drop(upload);
    match result {
        Ok(done) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            node.metrics.restore_time.record(ms);
            tracing::info!(
                "restored a backup up to zxid 0x{:x}: {} nodes",
                done.last_zxid,
                done.nodes
            );
            answer(
                StatusCode::OK,
                json!({
                    "command": "restore",
                    "error": null,
                    "last_zxid": done.last_zxid,
                    "nodes": done.nodes,
                    "digest": done.digest,
                    "staged_bytes": done.staged_bytes,
                }),
            )
        }
        Err(e) => {
            node.metrics.restore_errors.inc();
            tracing::warn!("restore refused: {e}");
            answer(
                e.status(),
                json!({ "command": "restore", "error": e.to_string() }),
            )
        }
    }
}

/// The upload's file, removed when the restore ends, whichever way (the client hanging up
/// included: the handler is then dropped where it waits).
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a restore did.
struct Restored {
    /// The zxid the backup went up to.
    last_zxid: i64,
    nodes: usize,
    /// The restored tree's digest (the backup's, which the members checked as they read it).
    digest: u64,
    /// Bytes that went through the log (the state, compressed chunk by chunk).
    staged_bytes: u64,
}

async fn run(node: &Arc<Node>, body: Body, upload: &Path) -> Result<Restored, RestoreError> {
    if !node.state().serving() {
        return Err(RestoreError::NotServing);
    }
    let limit = node.config.max_restore_bytes;
    receive(body, upload, limit).await?;
    let (tx, mut chunks) = tokio::sync::mpsc::channel(2);
    let path = upload.to_path_buf();
    // Checking and decompressing are blocking reads of the file.
    tokio::task::spawn_blocking(move || read_state(&path, limit, &tx));
    let mut staging = Staging {
        node: node.clone(),
        id: rand::random::<i64>() & i64::MAX,
        staged: false,
    };
    let result = stage_and_swap(node, &mut chunks, &mut staging).await;
    if staging.staged {
        cancel(node, staging.id).await;
        staging.staged = false;
    }
    result
}

/// Proposes the state's chunks one after the other, then the swap.
async fn stage_and_swap(
    node: &Node,
    chunks: &mut tokio::sync::mpsc::Receiver<Result<Reading, RestoreError>>,
    staging: &mut Staging,
) -> Result<Restored, RestoreError> {
    let mut offset = 0u64;
    loop {
        let chunk = match chunks.recv().await.ok_or(RestoreError::ReaderDied)?? {
            Reading::Chunk(c) => c,
            Reading::End => break,
        };
        let len = chunk.len() as u64;
        let op = TxnOp::RestoreChunk {
            id: staging.id,
            offset: offset as i64,
            bytes: chunk,
        };
        staging.staged = true;
        match ordered(node, op).await? {
            OpOutput::RestoreStaged { .. } => offset += len,
            _ => return Err(RestoreError::Lost),
        }
    }
    let swap = TxnOp::Restore {
        id: staging.id,
        len: offset as i64,
    };
    let out = ordered(node, swap).await;
    // Applied or refused, the staged chunks are gone; only a lost swap leaves them to cancel.
    staging.staged = matches!(out, Err(RestoreError::Lost));
    match out {
        Ok(OpOutput::Restored {
            last_zxid,
            nodes,
            digest,
        }) => Ok(Restored {
            last_zxid,
            nodes,
            digest,
            staged_bytes: offset,
        }),
        Err(RestoreError::Lost) | Ok(_) => Err(RestoreError::SwapLost),
        Err(e) => Err(e),
    }
}

/// Drops restore `id`'s staged chunks on every member, trying again while the ensemble has no
/// leader to order the cancel (a leader change is what usually ends a restore half-way), for
/// up to [`CHUNK_WITHIN`]; the leader's check for abandoned restores is the last resort.
async fn cancel(node: &Node, id: i64) {
    let deadline = tokio::time::Instant::now() + CHUNK_WITHIN;
    while tokio::time::Instant::now() < deadline {
        match ordered(node, TxnOp::CancelRestore { id }).await {
            Err(RestoreError::Lost) => tokio::time::sleep(CANCEL_RETRY).await,
            // Cancelled; or nothing is staged under `id` any more (the swap took it); or the
            // server stops, and the leader's check takes over.
            _ => return,
        }
    }
    tracing::warn!("restore {id:x} could not be cancelled; the leader drops it in time");
}

/// Wait before proposing a cancel again: about what an election takes to begin.
const CANCEL_RETRY: Duration = Duration::from_millis(100);

/// Streams the request body into `path`, up to `limit` bytes.
async fn receive(body: Body, path: &Path, limit: u64) -> Result<(), RestoreError> {
    let keep = |source| RestoreError::Keep {
        path: path.to_path_buf(),
        source,
    };
    let mut file = tokio::io::BufWriter::with_capacity(
        256 << 10,
        tokio::fs::File::create(path).await.map_err(keep)?,
    );
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(RestoreError::Receive)?;
        received += piece.len() as u64;
        if received > limit {
            return Err(RestoreError::TooLarge { limit });
        }
        file.write_all(&piece).await.map_err(keep)?;
    }
    file.flush().await.map_err(keep)
}

/// What the reader of the upload sends: chunks of state, then the end (or the error that ended
/// it). A channel closed before either means the reader died.
enum Reading {
    Chunk(Bytes),
    End,
}

type ReadingTx = tokio::sync::mpsc::Sender<Result<Reading, RestoreError>>;

/// Checks the upload whole, then sends its state (the snapshot encoding of a tree) to `tx` in
/// chunks of [`CHUNK_BYTES`], then [`Reading::End`]: the first error ends it instead. A Zooid
/// backup's state is decompressed as it is read; a ZooKeeper snapshot is read into a tree first
/// (checked to its last seal), and that tree is encoded.
fn read_state(path: &Path, limit: u64, tx: &ReadingTx) {
    let mut chunks = Chunks {
        tx,
        pending: Vec::with_capacity(CHUNK_BYTES),
        total: 0,
        limit,
        stopped: None,
    };
    let copied = match Format::of(path) {
        Ok(Format::Zooid) => zooid_state(path, &mut chunks),
        Ok(Format::ZooKeeper) => zookeeper_state(path, &mut chunks),
        Err(e) => Err(e),
    };
    let sent = copied.and_then(|()| chunks.flush_chunk());
    let last = match sent {
        Ok(()) => Ok(Reading::End),
        // A chunk refused by its limit or by a receiver gone says so itself.
        Err(e) => Err(chunks.stopped.take().unwrap_or(e)),
    };
    let _ = tx.blocking_send(last);
}

/// What an upload holds, from its first bytes.
enum Format {
    /// What Zooid's `snapshot` streams.
    Zooid,
    /// An Apache ZooKeeper snapshot, uncompressed.
    ZooKeeper,
}

impl Format {
    fn of(path: &Path) -> Result<Format, RestoreError> {
        let mut head = [0u8; 8];
        let mut file = std::fs::File::open(path).map_err(SnapshotFileError::Io)?;
        let n = file.read(&mut head).map_err(SnapshotFileError::Io)?;
        match &head[..n] {
            h if h.starts_with(b"ZOOIDSNP") => Ok(Format::Zooid),
            h if h.starts_with(b"ZKSN") => Ok(Format::ZooKeeper),
            // ZooKeeper's `zookeeper.snapshot.compression.method`: gz or snappy.
            h if h.starts_with(&[0x1f, 0x8b]) || h.starts_with(b"\x82SNAPPY") => {
                Err(RestoreError::Compressed)
            }
            _ => Err(RestoreError::UnknownFormat),
        }
    }
}

fn zooid_state(path: &Path, chunks: &mut Chunks) -> Result<(), RestoreError> {
    let checked = snapshot_file::check(path)?;
    // The head says which encoding follows: one this server cannot read is refused before
    // anything is proposed.
    DataTree::snapshot_last_zxid(&mut checked.state(path)?)?;
    let mut state = checked.state(path)?;
    std::io::copy(&mut state, chunks).map_err(SnapshotFileError::Io)?;
    Ok(())
}

fn zookeeper_state(path: &Path, chunks: &mut Chunks) -> Result<(), RestoreError> {
    let file = std::fs::File::open(path).map_err(SnapshotFileError::Io)?;
    let mut src = std::io::BufReader::with_capacity(256 << 10, file);
    let tree = zooid_tree::read_zookeeper_snapshot(&mut src)?;
    tree.freeze()
        .encode_to(chunks)
        .map_err(|e| SnapshotFileError::Io(e).into())
}

/// Gathers the state's bytes into chunks and sends each as it fills, up to the limit.
struct Chunks<'a> {
    tx: &'a ReadingTx,
    pending: Vec<u8>,
    total: u64,
    limit: u64,
    /// Why writing stopped, when it was not the reader's doing.
    stopped: Option<RestoreError>,
}

impl Chunks<'_> {
    /// Sends what is pending as one chunk.
    fn flush_chunk(&mut self) -> Result<(), RestoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = compress_chunk(&self.pending);
        self.pending.clear();
        // The receiver is gone only when the restore already ended: nothing is left to say.
        self.tx
            .blocking_send(Ok(Reading::Chunk(chunk)))
            .map_err(|_| RestoreError::Lost)
    }
}

impl std::io::Write for Chunks<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.total += buf.len() as u64;
        if self.total > self.limit {
            self.stopped = Some(RestoreError::TooLarge { limit: self.limit });
            return Err(std::io::Error::other("over the restore limit"));
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let room = CHUNK_BYTES - self.pending.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.pending.extend_from_slice(now);
            rest = later;
            if self.pending.len() == CHUNK_BYTES {
                if let Err(e) = self.flush_chunk() {
                    self.stopped = Some(e);
                    return Err(std::io::Error::other("the restore ended"));
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Proposes `op` and waits until it is applied here: its result.
async fn ordered(node: &Node, op: TxnOp) -> Result<OpOutput, RestoreError> {
    let waiting = node
        .state()
        .propose_awaited(op)
        .ok_or(RestoreError::NotServing)?;
    match tokio::time::timeout(CHUNK_WITHIN, waiting).await {
        Ok(Ok(Ok(out))) => Ok(out),
        Ok(Ok(Err(code))) => Err(RestoreError::Refused(code)),
        Ok(Err(_)) | Err(_) => Err(RestoreError::Lost),
    }
}

/// A staged restore that nobody has added to for this long was abandoned: its uploader's
/// server died with it (a server that lives on cancels its own, see [`Staging`]). Longer than
/// one chunk may take ([`CHUNK_WITHIN`]), so a live upload is never taken for one.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// How often the leader looks for an abandoned restore.
const ABANDONED_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Watches the staged restore, as the leader sees it, for one that stopped moving.
#[derive(Default)]
struct Abandoned {
    /// The staged restore last seen (id and length), and since when it has not changed.
    seen: Option<((i64, u64), Instant)>,
}

impl Abandoned {
    /// Given what is staged now, the id of a restore to cancel, if it has stood still for
    /// [`ABANDONED_AFTER`].
    fn observe(&mut self, staged: Option<(i64, u64)>, now: Instant) -> Option<i64> {
        match (staged, self.seen) {
            (None, _) => {
                self.seen = None;
                None
            }
            (Some(s), Some((seen, since))) if s == seen => {
                (now.duration_since(since) >= ABANDONED_AFTER).then_some(s.0)
            }
            (Some(s), _) => {
                self.seen = Some((s, now));
                None
            }
        }
    }
}

/// Runs for as long as the server: the leader cancels restores abandoned half-way, so that no
/// member keeps their chunks in memory until the next restore.
pub async fn cancel_abandoned(node: Arc<Node>) {
    let mut abandoned = Abandoned::default();
    let mut every = tokio::time::interval(ABANDONED_CHECK_EVERY);
    loop {
        every.tick().await;
        let mut state = node.state();
        if !state.leads() {
            abandoned = Abandoned::default();
            continue;
        }
        let staged = state.tree().staged_restore().map(|s| (s.id(), s.len()));
        if let Some(id) = abandoned.observe(staged, Instant::now()) {
            tracing::warn!(
                "cancelling restore {id:x}: no chunk for {ABANDONED_AFTER:?}, its upload was \
                 abandoned"
            );
            let _ = state.propose_awaited(TxnOp::CancelRestore { id });
        }
    }
}

/// A restore whose chunks are being staged: unless it finished, its chunks are cancelled
/// when it ends (an error, or the client hanging up), so no member keeps them in memory.
struct Staging {
    node: Arc<Node>,
    id: i64,
    /// Chunks may be staged under `id` on the members.
    staged: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.staged {
            let _ = self
                .node
                .state()
                .propose_awaited(TxnOp::CancelRestore { id: self.id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_standing_still_is_abandoned_one_that_moves_is_not() {
        let mut a = Abandoned::default();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(a.observe(None, at(0)), None);
        assert_eq!(a.observe(Some((7, 100)), at(0)), None);
        assert_eq!(a.observe(Some((7, 200)), at(50)), None, "it moved");
        assert_eq!(a.observe(Some((7, 200)), at(100)), None);
        assert_eq!(a.observe(Some((7, 200)), at(110)), Some(7));
        // Another restore starts the count again; none staged forgets.
        assert_eq!(a.observe(Some((8, 200)), at(120)), None);
        assert_eq!(a.observe(None, at(200)), None);
        assert_eq!(a.observe(Some((8, 200)), at(210)), None);
    }
}
