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
use crate::state::reply::{self, Reply};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;
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

/// Most buffers handed to the socket in one vectored write.
const WRITE_SLICE_BUFFERS: usize = 64;

/// What carries a connection's bytes, which decides how its writer batches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A TCP socket: node data below [`reply::SHARED_DATA_BYTES`] is copied into the batch,
    /// which the kernel takes in one system call.
    Plain,
    /// TLS: the TLS layer copies every byte once into its records as it encrypts them, so
    /// node data is handed to it from the node's own buffer; gathering it into a batch first
    /// would copy it twice.
    Tls,
}

impl Carrier {
    /// Node data at least this large is written from the node's own buffer, not copied.
    fn min_shared(self) -> usize {
        match self {
            Carrier::Plain => reply::SHARED_DATA_BYTES,
            Carrier::Tls => reply::SHARED_DATA_BYTES_TLS,
        }
    }
}

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
    /// What carries the bytes.
    pub carrier: Carrier,
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
        tokio::spawn(write_loop(wr, shared.clone(), limits, closed));
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

/// How far a batch of pieces is written: the first piece not written whole, and how much of
/// it is.
#[derive(Default)]
struct Progress {
    first: usize,
    offset: usize,
}

impl Progress {
    /// Whether every piece is written (empty pieces need no write).
    fn done(&mut self, pieces: &[Bytes]) -> bool {
        while self.first < pieces.len() && self.offset == pieces[self.first].len() {
            self.first += 1;
            self.offset = 0;
        }
        self.first == pieces.len()
    }

    /// Fills `slices` with what comes next, at most [`WRITE_SLICE_BYTES`] in all; how many.
    fn next<'a>(&self, pieces: &'a [Bytes], slices: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        let mut total = 0;
        for (i, piece) in pieces[self.first..].iter().enumerate() {
            if count == slices.len() || total == WRITE_SLICE_BYTES {
                break;
            }
            let from = if i == 0 { self.offset } else { 0 };
            let take = (piece.len() - from).min(WRITE_SLICE_BYTES - total);
            if take > 0 {
                slices[count] = IoSlice::new(&piece[from..from + take]);
                count += 1;
                total += take;
            }
        }
        count
    }

    /// Counts `written` more bytes as written.
    fn advance(&mut self, pieces: &[Bytes], mut written: usize) {
        while written > 0 {
            let left = pieces[self.first].len() - self.offset;
            if written < left {
                self.offset += written;
                return;
            }
            written -= left;
            self.first += 1;
            self.offset = 0;
        }
    }
}

/// Writes `pieces` in order, in writes of at most [`WRITE_SLICE_BYTES`], letting other
/// connections run between them: one socket write of megabytes would hold a worker thread
/// while the kernel copies it, and every other client's reply would wait behind it (the
/// "large multiReads" row in docs/benchmarks.md). A write making no progress for
/// `stall_timeout` gives up. What the writer buffers (TLS's records) is flushed at the end.
async fn write_fairly<W: AsyncWrite + Unpin>(
    wr: &mut W,
    pieces: &[Bytes],
    stall_timeout: Duration,
    kill: &Notify,
) -> Written {
    let mut progress = Progress::default();
    while !progress.done(pieces) {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICE_BUFFERS];
        let count = progress.next(pieces, &mut slices);
        // One buffer goes by write (send(2) on a socket), several by one vectored write.
        let write = async {
            if count == 1 {
                wr.write(&slices[0]).await
            } else {
                wr.write_vectored(&slices[..count]).await
            }
        };
        let result = tokio::select! {
            r = tokio::time::timeout(stall_timeout, write) => r,
            _ = kill.notified() => return Written::Killed,
        };
        match result {
            Ok(Ok(0)) => return Written::Failed(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => progress.advance(pieces, n),
            Ok(Err(e)) => return Written::Failed(e),
            Err(_) => return Written::Stalled,
        }
        if !progress.done(pieces) {
            tokio::task::yield_now().await;
        }
    }
    // A TLS stream may take the last bytes into its records and keep them when the socket is
    // full; they must reach the client now, not with the next batch (there may be none).
    let result = tokio::select! {
        r = tokio::time::timeout(stall_timeout, wr.flush()) => r,
        _ = kill.notified() => return Written::Killed,
    };
    match result {
        Ok(Ok(())) => Written::All,
        Ok(Err(e)) => Written::Failed(e),
        Err(_) => Written::Stalled,
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    shared: Arc<Shared>,
    limits: Limits,
    closed: Arc<Notify>,
) {
    let stall_timeout = limits.stall_timeout;
    let min_shared = limits.carrier.min_shared();
    // A batch is `pieces` (what was copied so far, then node data shared from the node,
    // alternating) followed by `out` (what was copied since); `pieces_bytes` is their length.
    // `out` is held only while there is something to write: an idle connection (most of a
    // service registry's sessions) keeps no buffer, and the next batch's is sized like the
    // last one's.
    let mut out = BytesMut::new();
    let mut last_batch = BATCH_BUF_MIN;
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut pieces_bytes = 0;
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
                    // Measured by what it added: over TLS a batch holds two pieces per reply.
                    let before = out.len() + pieces_bytes;
                    let had = pieces.len();
                    r.encode(&mut out, &mut pieces, min_shared);
                    pieces_bytes += pieces[had..].iter().map(Bytes::len).sum::<usize>();
                    let actual = out.len() + pieces_bytes - before;
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
            pieces.push(out.split().freeze());
            let result = write_fairly(&mut wr, &pieces, stall_timeout, &shared.kill).await;
            pieces.clear();
            pieces_bytes = 0;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A writer like a TLS stream over a full socket: it takes every byte at once and keeps
    /// them until flushed.
    #[derive(Clone, Default)]
    struct Holding {
        held: Arc<Mutex<Vec<u8>>>,
        delivered: Arc<Mutex<Vec<u8>>>,
        flushed: Arc<Notify>,
    }

    impl AsyncWrite for Holding {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.held.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            let held = std::mem::take(&mut *self.held.lock().unwrap());
            self.delivered.lock().unwrap().extend_from_slice(&held);
            self.flushed.notify_one();
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    fn limits(carrier: Carrier) -> Limits {
        Limits {
            budget: 1 << 20,
            hard_limit: 2 << 20,
            stall_timeout: Duration::from_secs(5),
            metrics: Arc::new(Metrics::new()),
            carrier,
        }
    }

    /// Writes taking any part of what they are handed put every byte through once, in order,
    /// each write within the slice bounds, empty pieces skipped.
    #[test]
    fn progress_hands_out_every_byte_once_in_order() {
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let pieces: Vec<Bytes> = vec![
            Bytes::new(),
            Bytes::from_static(b"header"),
            Bytes::from(big.clone()),
            Bytes::new(),
            Bytes::from_static(b"stat"),
        ];
        let expected: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
        // Writes take all they are handed, or parts that end inside pieces.
        for take in [usize::MAX, 7, 1000, 65_535] {
            let mut progress = Progress::default();
            let mut sent = Vec::new();
            while !progress.done(&pieces) {
                let mut slices = [IoSlice::new(&[]); WRITE_SLICE_BUFFERS];
                let count = progress.next(&pieces, &mut slices);
                let offered: usize = slices[..count].iter().map(|s| s.len()).sum();
                assert!(count > 0 && offered <= WRITE_SLICE_BYTES, "take {take}");
                let mut n = offered.min(take);
                let written = n;
                for slice in &slices[..count] {
                    let part = n.min(slice.len());
                    sent.extend_from_slice(&slice[..part]);
                    n -= part;
                }
                progress.advance(&pieces, written);
            }
            assert_eq!(sent, expected, "take {take}");
        }
    }

    /// Each batch is flushed: a reply must not wait in the writer for the next one, which may
    /// never come (its client is waiting for this one).
    #[tokio::test]
    async fn every_batch_reaches_the_socket_without_a_next_one() {
        for carrier in [Carrier::Plain, Carrier::Tls] {
            let wire = Holding::default();
            let remote = SocketAddr::from(([127, 0, 0, 1], 1));
            let outbox = Outbox::start(wire.clone(), remote, limits(carrier), Arc::default());
            outbox.send(Bytes::from_static(b"first reply"));
            let flushed = tokio::time::timeout(Duration::from_secs(5), wire.flushed.notified());
            assert!(
                flushed.await.is_ok(),
                "{carrier:?}: the reply stayed in the writer"
            );
            assert_eq!(&wire.delivered.lock().unwrap()[..], b"first reply");
        }
    }
}
