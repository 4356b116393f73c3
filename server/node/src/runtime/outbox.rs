//! A connection's outbound queue: replies and notifications in the order they were made,
//! drained by one writer task that batches whatever is queued into one socket write.
//!
//! The queue is bounded in bytes, because a client that stops reading its socket must not
//! make the server hold memory for it without end:
//! - above the budget (`max-conn-outbound-bytes`) the connection's requests are no longer
//!   read, so it makes no new replies ([`Outbox::has_room`], [`Outbox::room`]);
//! - notifications still come; past the hard limit (budget + one reply) the connection is
//!   closed at once and what it queued is dropped;
//! - a socket write that makes no progress for `slow-client-timeout-ms` closes it too.
//!
//! [`Outbox::kill`] closes a connection at once, whatever it has queued (an expired session's
//! connection must go even when its client never reads).

use crate::observe::metrics::{Limit, Metrics};
use crate::state::reply::Reply;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tracing::{debug, info};

/// Largest batch the writer gathers into one socket write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// The bounds of the buffer a batch starts with (the last batch's size within them).
const BATCH_BUF_MIN: usize = 256;
const BATCH_BUF_MAX: usize = 16 * 1024;

/// Most bytes handed to the socket in one write before other tasks get to run.
const WRITE_SLICE_BYTES: usize = 64 * 1024;

enum Outbound {
    Frame(Bytes),
    /// Encoded by the writer (see [`crate::state::reply`]); charged its estimate until then.
    Reply(Reply),
    /// Flush what was queued, then close the socket.
    Close,
}

/// The sending side, held by the state for each live connection. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
    /// Dropped with the last handle: the writer flushes what is queued and closes the socket.
    _senders: Arc<Senders>,
}

/// Held by every [`Outbox`] handle; when the last goes, nothing more can be queued.
struct Senders(Arc<Shared>);

impl Drop for Senders {
    fn drop(&mut self) {
        self.0.queue.senders_gone();
    }
}

/// The messages between the senders and the writer. It holds memory only while it holds
/// messages: a tokio channel keeps a block of 32 slots (4 KiB here) for a connection's whole
/// life, and most of a service registry's connections are idle.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the writer (a permit is kept if it is not waiting yet).
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Outbound>,
    /// The writer is gone: nothing more is taken.
    closed: bool,
    /// Every sender is gone: once empty, the writer stops.
    senders_gone: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg`; false (and `msg` dropped) if the writer is gone.
    fn push(&self, msg: Outbound) -> bool {
        {
            let mut q = self.lock();
            if q.closed {
                return false;
            }
            q.items.push_back(msg);
        }
        self.ready.notify_one();
        true
    }

    fn try_pop(&self) -> Option<Outbound> {
        let mut q = self.lock();
        let msg = q.items.pop_front();
        if q.items.is_empty() && q.items.capacity() > 0 {
            q.items = VecDeque::new();
        }
        msg
    }

    /// The next message, waiting for one; `None` once closed, or empty with every sender
    /// gone.
    async fn pop(&self) -> Option<Outbound> {
        loop {
            if let Some(msg) = self.try_pop() {
                return Some(msg);
            }
            {
                let q = self.lock();
                if q.closed || q.senders_gone {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    fn senders_gone(&self) {
        self.lock().senders_gone = true;
        self.ready.notify_one();
    }

    fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// Takes nothing more and drops what is queued.
    fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.items = VecDeque::new();
    }
}

/// What the sending side and the writer task share.
struct Shared {
    queue: Queue,
    /// Bytes queued and not yet written to the socket.
    queued: AtomicUsize,
    budget: usize,
    hard_limit: usize,
    /// Set once the connection must close without flushing.
    killed: AtomicBool,
    /// Wakes the writer to close now.
    kill: Notify,
    /// Told when the queue shrinks to the budget or the connection closes.
    room: Notify,
    remote: SocketAddr,
    metrics: Arc<Metrics>,
}

/// Bounds of one connection's queue.
#[derive(Clone)]
pub struct Limits {
    /// Above this many queued bytes the connection's requests are not read.
    pub budget: usize,
    /// Above this many the connection is closed.
    pub hard_limit: usize,
    /// A socket write making no progress for this long closes the connection.
    pub stall_timeout: Duration,
    /// Where closes by these limits are counted.
    pub metrics: Arc<Metrics>,
}

impl Outbox {
    /// Starts the writer task on `wr`. `closed` is told when the writer has stopped (the
    /// socket is closed), so the reading side can stop too.
    pub fn start<W>(wr: W, remote: SocketAddr, limits: Limits, closed: Arc<Notify>) -> Outbox
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            queue: Queue::default(),
            queued: AtomicUsize::new(0),
            budget: limits.budget,
            hard_limit: limits.hard_limit,
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            room: Notify::new(),
            remote,
            metrics: limits.metrics.clone(),
        });
        tokio::spawn(write_loop(wr, shared.clone(), limits.stall_timeout, closed));
        Outbox {
            _senders: Arc::new(Senders(shared.clone())),
            shared,
        }
    }

    /// Queues a frame. A frame that would take the queue past the hard limit closes the
    /// connection instead: its client has stopped reading.
    pub fn send(&self, frame: Bytes) {
        let len = frame.len();
        self.enqueue(len, Outbound::Frame(frame));
    }

    /// Queues a read's reply, to be encoded by the writer.
    pub fn send_reply(&self, reply: Reply) {
        self.enqueue(reply.estimate(), Outbound::Reply(reply));
    }

    fn enqueue(&self, len: usize, msg: Outbound) {
        if self.shared.killed.load(Ordering::Relaxed) {
            return;
        }
        let queued = self.shared.queued.fetch_add(len, Ordering::Relaxed) + len;
        if queued > self.shared.hard_limit {
            info!(
                remote = %self.shared.remote,
                queued,
                "closing a connection whose client does not read its replies"
            );
            self.shared.metrics.limited(Limit::Outbound);
            self.kill();
            return;
        }
        if !self.shared.queue.push(msg) {
            // The writer is gone: the connection is closing and nothing can be delivered.
            self.shared.queued.fetch_sub(len, Ordering::Relaxed);
        }
    }

    /// Flushes what is queued, then closes.
    pub fn close(&self) {
        self.shared.queue.push(Outbound::Close);
    }

    /// Closes now, dropping whatever is queued.
    pub fn kill(&self) {
        self.shared.killed.store(true, Ordering::Relaxed);
        self.shared.kill.notify_one();
        self.shared.room.notify_one();
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Whether the connection may take another request: its queue is within budget.
    pub fn has_room(&self) -> bool {
        self.queued() <= self.shared.budget
    }

    /// Resolves once the queue may have shrunk to the budget or the connection closed
    /// (callers check [`Outbox::has_room`] again).
    pub async fn room(&self) {
        self.shared.room.notified().await
    }
}

enum Written {
    All,
    Killed,
    Failed(std::io::Error),
    Stalled,
}

/// Writes `out` in slices of at most [`WRITE_SLICE_BYTES`], letting other connections run
/// between slices: one socket write of megabytes would hold a worker thread while the kernel
/// copies it, and every other client's reply would wait behind it (the "large multiReads" row
/// in docs/benchmarks.md). A slice making no progress for `stall_timeout` gives up.
async fn write_fairly<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &[u8],
    stall_timeout: Duration,
    kill: &Notify,
) -> Written {
    let mut pos = 0;
    while pos < out.len() {
        let end = (pos + WRITE_SLICE_BYTES).min(out.len());
        let result = tokio::select! {
            r = tokio::time::timeout(stall_timeout, wr.write(&out[pos..end])) => r,
            _ = kill.notified() => return Written::Killed,
        };
        match result {
            Ok(Ok(0)) => return Written::Failed(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => pos += n,
            Ok(Err(e)) => return Written::Failed(e),
            Err(_) => return Written::Stalled,
        }
        if pos < out.len() {
            tokio::task::yield_now().await;
        }
    }
    Written::All
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    shared: Arc<Shared>,
    stall_timeout: Duration,
    closed: Arc<Notify>,
) {
    // A batch is `pieces` (large node data, shared) followed by `out` (everything copied).
    // `out` is held only while there is something to write: an idle connection (most of a
    // service registry's sessions) keeps no buffer, and the next batch's is sized like the
    // last one's.
    let mut out = BytesMut::new();
    let mut last_batch = BATCH_BUF_MIN;
    let mut pieces: Vec<Bytes> = Vec::new();
    'outer: loop {
        if shared.queue.is_empty() && out.capacity() > 0 {
            out = BytesMut::new();
        }
        let first = tokio::select! {
            m = shared.queue.pop() => m,
            _ = shared.kill.notified() => break,
        };
        let Some(first) = first else { break };
        if out.capacity() == 0 {
            out.reserve(last_batch);
        }
        let mut close = false;
        let mut next = Some(first);
        let mut batch = 0;
        while let Some(msg) = next {
            match msg {
                Outbound::Frame(f) => {
                    out.extend_from_slice(&f);
                    batch += f.len();
                }
                Outbound::Reply(r) => {
                    // Charged its estimate when queued; from now on its real size.
                    let estimate = r.estimate();
                    let before = out.len() + pieces.iter().map(Bytes::len).sum::<usize>();
                    r.encode(&mut out, &mut pieces);
                    let actual = out.len() + pieces.iter().map(Bytes::len).sum::<usize>() - before;
                    batch += actual;
                    if actual >= estimate {
                        shared
                            .queued
                            .fetch_add(actual - estimate, Ordering::Relaxed);
                    } else {
                        shared
                            .queued
                            .fetch_sub(estimate - actual, Ordering::Relaxed);
                    }
                }
                Outbound::Close => {
                    close = true;
                    break;
                }
            }
            next = if batch < WRITE_BATCH_BYTES {
                shared.queue.try_pop()
            } else {
                None
            };
        }
        if batch > 0 {
            let mut result = Written::All;
            for piece in pieces
                .drain(..)
                .chain(std::iter::once(out.split().freeze()))
            {
                result = write_fairly(&mut wr, &piece, stall_timeout, &shared.kill).await;
                if !matches!(result, Written::All) {
                    break;
                }
            }
            match result {
                Written::All => {}
                Written::Killed => break 'outer,
                Written::Failed(e) => {
                    debug!(remote = %shared.remote, "write failed: {e}");
                    break;
                }
                Written::Stalled => {
                    info!(
                        remote = %shared.remote,
                        queued = shared.queued.load(Ordering::Relaxed),
                        "closing a connection whose client read nothing for {stall_timeout:?}"
                    );
                    shared.metrics.limited(Limit::SlowClient);
                    break;
                }
            }
            last_batch = batch.clamp(BATCH_BUF_MIN, BATCH_BUF_MAX);
            let left = shared.queued.fetch_sub(batch, Ordering::Relaxed) - batch;
            if left <= shared.budget {
                shared.room.notify_one();
            }
        }
        if close {
            break;
        }
    }
    // Whatever is still queued is dropped; nothing is queued any more.
    shared.killed.store(true, Ordering::Relaxed);
    shared.queue.close();
    shared.queued.store(0, Ordering::Relaxed);
    let _ = wr.shutdown().await;
    shared.room.notify_one();
    closed.notify_one();
}
