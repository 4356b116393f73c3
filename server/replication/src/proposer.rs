//! Group commit: packs queued commands into Raft entries.
//!
//! openraft 0.9 waits for each entry's fsync inside its core loop, so one entry per command
//! would cost one fsync per command. Instead exactly one entry is between "proposed" and "on
//! disk" at a time, and every command queued meanwhile joins the next entry.
//!
//! The next entry is handed to openraft by the WAL's flush thread, the moment the previous one
//! is on disk and before openraft is told so. When openraft's core wakes up from that fsync, the
//! next entry is already waiting in its queue: no task has to be scheduled in between (on a busy
//! 2-core machine an append used to wait ~75 µs for the flush thread to pick it up, now ~20 µs).
//!
//! In an ensemble only the leader appends. A member that does not lead forwards each entry's
//! commands to the leader (whose proposer queues them with its own) and sends the next once the
//! leader has taken them; while no leader is known the entry waits. Commands that cannot be
//! ordered (the leader refused them, the link failed, leadership moved before they were
//! appended) are handed back to the applier as lost, so that their clients are told at once
//! (their connections close, as ZooKeeper's do when a server loses its leader) rather than
//! waiting for a reply that will never come.

use crate::batch;
use crate::failure::{Failure, LeaderError};
use crate::network::{ForwardError, PeerNetwork};
use crate::state_machine::Applier;
use crate::types::{Command, NodeId, TypeConfig};
use bytes::Bytes;
use openraft::Raft;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use tokio::sync::watch;

/// Wait before sending again an entry that did not reach the leader (it was down, or no
/// longer led): about what an election takes to begin.
const FORWARD_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Upper bounds of one entry.
const MAX_BATCH_COMMANDS: usize = batch::MAX_COMMANDS;
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Queues commands and proposes them in batches, one entry in flight at a time.
pub struct Proposer {
    me: NodeId,
    pending: Mutex<Pending>,
    /// Set once openraft runs; commands queued before then wait for it.
    running: OnceLock<Running>,
    /// Told when openraft stops: nothing proposed afterwards would be applied.
    failure: watch::Sender<Option<Failure>>,
    /// A snapshot is asked for after this many bytes of commands.
    snapshot_every_bytes: u64,
    /// Set while a leader hands over (see [`crate::Consensus::hand_over`]): forwarded entries
    /// are turned away, and their senders hold them for the next leader.
    resigning: std::sync::atomic::AtomicBool,
}

/// What the proposer sends through, once started.
struct Running {
    raft: Raft<TypeConfig>,
    network: PeerNetwork,
    applier: Arc<dyn Applier>,
    /// Entries are watched and forwarded from tasks; `send` also runs on the WAL's thread.
    runtime: tokio::runtime::Handle,
}

/// The entry between "taken off the queue" and "done with".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum InFlight {
    #[default]
    None,
    /// Taken, its route not chosen yet.
    Sending,
    /// Appended here; done once on disk ([`Proposer::flushed`]).
    Local(u64),
    /// Forwarded to the leader; done once the leader took it.
    Forwarded(u64),
    /// No leader known: it waits in `Pending::held`.
    Held,
}

/// Where an entry goes.
enum Route {
    Here,
    Leader(NodeId, String),
    Nowhere,
}

#[derive(Default)]
struct Pending {
    /// Commands waiting, already framed as the entries they will be: each builder is at most
    /// one entry, so that closing it on the flush thread costs no copy.
    queue: VecDeque<batch::Builder>,
    /// The entry being proposed, if any.
    in_flight: InFlight,
    /// Numbers the entries sent, to match their outcomes.
    next_seq: u64,
    /// The entry waiting for a leader.
    held: Option<Bytes>,
    /// Bytes of commands proposed since the last snapshot request.
    since_snapshot: u64,
    /// openraft refused a proposal; nothing more is sent.
    stopped: bool,
    /// Commands per entry since start.
    batches: BatchSizes,
}

/// How many commands the entries proposed since start carried: what ZooKeeper reports as
/// `sync_processor_batch_size`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSizes {
    pub entries: u64,
    pub commands: u64,
    pub min: u64,
    pub max: u64,
}

impl BatchSizes {
    fn record(&mut self, commands: u64) {
        self.min = if self.entries == 0 {
            commands
        } else {
            self.min.min(commands)
        };
        self.max = self.max.max(commands);
        self.entries += 1;
        self.commands += commands;
    }
}

/// One entry, taken off the queue.
struct Batch {
    entry: Bytes,
    snapshot_first: bool,
}

impl Pending {
    /// Queues a command behind the others, in the last entry if it still has room.
    fn push(&mut self, command: &[u8]) {
        let fits = self.queue.back().is_some_and(|b| {
            b.commands() < MAX_BATCH_COMMANDS && b.bytes() + 4 + command.len() <= MAX_BATCH_BYTES
        });
        if !fits {
            self.queue.push_back(batch::Builder::default());
        }
        if let Some(b) = self.queue.back_mut() {
            b.push(command);
        }
    }

    /// Takes the next entry's commands and marks it in flight, or returns `None` if there is
    /// nothing to send.
    fn take(&mut self, snapshot_every_bytes: u64) -> Option<Batch> {
        let next = if self.stopped {
            None
        } else {
            self.queue.pop_front()
        };
        self.in_flight = if next.is_some() {
            InFlight::Sending
        } else {
            InFlight::None
        };
        let next = next?;
        self.batches.record(next.commands() as u64);
        self.since_snapshot += next.bytes() as u64;
        let snapshot_first = self.since_snapshot >= snapshot_every_bytes;
        if snapshot_first {
            self.since_snapshot = 0;
        }
        Some(Batch {
            entry: next.finish(),
            snapshot_first,
        })
    }
}

impl Proposer {
    pub fn new(
        me: NodeId,
        snapshot_every_bytes: u64,
        failure: watch::Sender<Option<Failure>>,
    ) -> Self {
        Proposer {
            me,
            pending: Mutex::new(Pending::default()),
            running: OnceLock::new(),
            failure,
            snapshot_every_bytes,
            resigning: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // The guarded state is a queue, flags and counters, consistent after every statement.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts proposing through `raft` (from within the tokio runtime).
    pub fn start(
        self: &Arc<Self>,
        raft: Raft<TypeConfig>,
        network: PeerNetwork,
        applier: Arc<dyn Applier>,
    ) {
        let runtime = tokio::runtime::Handle::current();
        let mut metrics = raft.metrics();
        let running = Running {
            raft,
            network,
            applier,
            runtime: runtime.clone(),
        };
        if self.running.set(running).is_err() {
            return;
        }
        // An entry held for want of a leader goes as soon as one is known.
        let me = Arc::downgrade(self);
        runtime.spawn(async move {
            while metrics.changed().await.is_ok() {
                let has_leader = metrics.borrow_and_update().current_leader.is_some();
                let Some(p) = me.upgrade() else { return };
                if has_leader {
                    p.release_held();
                }
            }
        });
        self.next();
    }

    /// Commands per entry since start.
    pub fn batch_sizes(&self) -> BatchSizes {
        self.pending().batches
    }

    /// Queues a command. Sends it at once if no entry is in flight.
    pub fn propose(self: &Arc<Self>, command: Vec<u8>) {
        let batch = {
            let mut p = self.pending();
            p.push(&command);
            if p.in_flight != InFlight::None || self.running.get().is_none() {
                return;
            }
            p.take(self.snapshot_every_bytes)
        };
        self.send(batch);
    }

    /// Queues the commands of an entry another member forwarded. `false` if this member
    /// does not lead (the sender then knows they were not taken).
    pub fn propose_forwarded(self: &Arc<Self>, entry: &[u8]) -> bool {
        if self.resigning.load(std::sync::atomic::Ordering::Relaxed)
            || !matches!(self.route(), Some(Route::Here))
        {
            return false;
        }
        let Ok(commands) = batch::decode(entry) else {
            tracing::warn!("a forwarded entry was malformed; dropped");
            return true;
        };
        let batch = {
            let mut p = self.pending();
            for c in commands {
                p.push(c);
            }
            if p.in_flight != InFlight::None {
                return true;
            }
            p.take(self.snapshot_every_bytes)
        };
        self.send(batch);
        true
    }

    /// Touches sent to this member; `false` if it does not lead.
    pub fn touched(&self, sessions: &[i64]) -> bool {
        if !matches!(self.route(), Some(Route::Here)) {
            return false;
        }
        if let Some(r) = self.running.get() {
            r.applier.touched(sessions);
        }
        true
    }

    /// Sends touches to the leader, if another member leads.
    pub async fn touch_leader(&self, sessions: Vec<i64>) -> Result<(), LeaderError> {
        match self.route() {
            Some(Route::Leader(leader, addr)) => match self.running.get() {
                Some(r) => r.network.touch(leader, &addr, sessions).await,
                None => Ok(()),
            },
            Some(Route::Here) => {
                self.touched(&sessions);
                Ok(())
            }
            _ => Err(LeaderError::NoLeader),
        }
    }

    /// An index every write acknowledged anywhere before this call is at or below, from the
    /// leader, once it has confirmed with a quorum that it still leads.
    pub async fn read_index(&self) -> Result<Option<u64>, LeaderError> {
        let Some(r) = self.running.get() else {
            return Err(LeaderError::NotStarted);
        };
        match self.route() {
            Some(Route::Here) => r
                .raft
                .get_read_log_id()
                .await
                .map(|(read, _)| read.map(|l| l.index))
                .map_err(|e| LeaderError::NotConfirmed(Arc::new(e))),
            Some(Route::Leader(leader, addr)) => r.network.read_index(leader, &addr).await,
            _ => Err(LeaderError::NoLeader),
        }
    }

    /// Whether nothing waits to be proposed and nothing is being proposed.
    pub fn is_idle(&self) -> bool {
        let p = self.pending();
        p.queue.is_empty() && p.in_flight == InFlight::None && p.held.is_none()
    }

    /// Turns away forwarded entries from now on: this member is handing its leadership over.
    pub fn resign(&self) {
        self.resigning
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sends the next entry if none is in flight.
    fn next(self: &Arc<Self>) {
        let batch = {
            let mut p = self.pending();
            if p.in_flight != InFlight::None {
                return;
            }
            p.take(self.snapshot_every_bytes)
        };
        self.send(batch);
    }

    /// The entry in flight is done with: sends the one after it.
    fn done(self: &Arc<Self>, was: InFlight) {
        let batch = {
            let mut p = self.pending();
            if p.in_flight != was {
                return;
            }
            p.take(self.snapshot_every_bytes)
        };
        self.send(batch);
    }

    /// An entry appended here is on disk (called on the WAL's flush thread, before openraft is
    /// told): sends the commands queued meanwhile as the next entry. Appends of entries a
    /// leader replicated here are no concern of the proposer's.
    pub(crate) fn flushed(self: &Arc<Self>) {
        let was = self.pending().in_flight;
        if matches!(was, InFlight::Local(_)) {
            self.done(was);
        }
    }

    /// Puts the entry in flight back, to wait for a leader that takes it.
    fn hold(&self, was: InFlight, entry: Bytes) {
        let mut p = self.pending();
        if p.in_flight == was {
            p.in_flight = InFlight::Held;
            p.held = Some(entry);
        }
    }

    fn release_held(self: &Arc<Self>) {
        let held = {
            let mut p = self.pending();
            if p.in_flight != InFlight::Held {
                return;
            }
            p.in_flight = InFlight::Sending;
            p.held.take()
        };
        if let Some(entry) = held {
            self.route_entry(entry);
        }
    }

    /// Where entries go now: here if this member leads, else to the leader.
    fn route(&self) -> Option<Route> {
        let running = self.running.get()?;
        let metrics = running.raft.metrics();
        let m = metrics.borrow();
        Some(match m.current_leader {
            Some(l) if l == self.me => Route::Here,
            Some(l) => match m.membership_config.membership().get_node(&l) {
                Some(node) => Route::Leader(l, node.addr.clone()),
                None => Route::Nowhere,
            },
            None => Route::Nowhere,
        })
    }

    fn send(self: &Arc<Self>, batch: Option<Batch>) {
        let Some(batch) = batch else { return };
        if batch.snapshot_first {
            if let Some(r) = self.running.get() {
                if let Poll::Ready(Err(e)) = poll_once(r.raft.trigger().snapshot()) {
                    tracing::warn!("could not trigger a snapshot: {e}");
                }
            }
        }
        self.route_entry(batch.entry);
    }

    fn route_entry(self: &Arc<Self>, entry: Bytes) {
        let (Some(running), Some(route)) = (self.running.get(), self.route()) else {
            return;
        };
        let seq = {
            let mut p = self.pending();
            p.next_seq += 1;
            p.next_seq
        };
        match route {
            Route::Here => {
                self.pending().in_flight = InFlight::Local(seq);
                match poll_once(running.raft.client_write_ff(Command(entry.clone()))) {
                    Poll::Ready(Ok(answer)) => {
                        // The reply to each command comes from the applier; the answer only
                        // says whether the entry was appended and committed.
                        let me = self.clone();
                        running.runtime.spawn(async move {
                            if let Ok(Ok(_)) = answer.await {
                                return;
                            }
                            me.lost(&entry, "leadership moved before it was committed");
                            me.done(InFlight::Local(seq));
                        });
                    }
                    Poll::Ready(Err(e)) => self.fail(Failure::Refused(Arc::new(e))),
                    Poll::Pending => self.fail(Failure::StoppedMidProposal),
                }
            }
            Route::Leader(leader, addr) => {
                self.pending().in_flight = InFlight::Forwarded(seq);
                let (me, network) = (self.clone(), running.network.clone());
                running.runtime.spawn(async move {
                    match network.forward(leader, &addr, entry.clone()).await {
                        Ok(()) => me.done(InFlight::Forwarded(seq)),
                        Err(ForwardError::NotTaken(why)) => {
                            // Held and sent again shortly, or as soon as the leader changes.
                            tracing::debug!("forwarding to server {leader}: {why}; retrying");
                            me.hold(InFlight::Forwarded(seq), entry);
                            tokio::time::sleep(FORWARD_RETRY).await;
                            me.release_held();
                        }
                        Err(e @ ForwardError::Lost(_)) => {
                            me.lost(&entry, &e.to_string());
                            me.done(InFlight::Forwarded(seq));
                        }
                    }
                });
            }
            Route::Nowhere => {
                let mut p = self.pending();
                p.in_flight = InFlight::Held;
                p.held = Some(entry);
            }
        }
    }

    /// Hands commands that will not be ordered back to the applier.
    fn lost(&self, entry: &[u8], why: &str) {
        let Some(running) = self.running.get() else {
            return;
        };
        match batch::decode(entry) {
            Ok(commands) => {
                tracing::info!("{} commands not ordered: {why}", commands.len());
                running.applier.lost(&commands);
            }
            Err(e) => tracing::error!("an entry that was not ordered is malformed: {e:?}"),
        }
    }

    fn fail(&self, reason: Failure) {
        tracing::error!("{reason}");
        let mut p = self.pending();
        p.stopped = true;
        p.queue.clear();
        drop(p);
        let _ = self.failure.send(Some(reason));
    }
}

/// Polls a future once. openraft's proposal calls complete on their first poll unless its core
/// has stopped (they only put a message on an unbounded channel), so this never blocks the
/// flush thread or a connection.
fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = std::pin::pin!(fut);
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(sizes: &[usize]) -> Pending {
        let mut p = Pending::default();
        for &n in sizes {
            p.push(&vec![7u8; n]);
        }
        p
    }

    /// The sizes of the commands an entry carries, decoded back from its bytes.
    fn carried(b: &Batch) -> Vec<usize> {
        batch::decode(&b.entry)
            .expect("a well-formed batch")
            .iter()
            .map(|c| c.len())
            .collect()
    }

    #[test]
    fn an_entry_takes_everything_queued_up_to_its_byte_limit() {
        let mut p = queued(&[10, 20, 30]);
        let b = p.take(u64::MAX).expect("a batch");
        assert_eq!(carried(&b), [10, 20, 30]);
        assert!(p.in_flight == InFlight::Sending && p.queue.is_empty());

        let mut p = queued(&[MAX_BATCH_BYTES - 10, 20, 5]);
        assert_eq!(carried(&p.take(u64::MAX).expect("a batch")).len(), 1);
        let rest = p
            .take(u64::MAX)
            .expect("what did not fit makes the next entry");
        assert_eq!(carried(&rest), [20, 5]);
    }

    #[test]
    fn a_command_larger_than_the_limit_still_goes_alone() {
        let mut p = queued(&[MAX_BATCH_BYTES + 1, 1]);
        assert_eq!(
            carried(&p.take(u64::MAX).expect("a batch")),
            [MAX_BATCH_BYTES + 1]
        );
        assert_eq!(p.queue.len(), 1);
    }

    #[test]
    fn nothing_queued_means_nothing_in_flight() {
        let mut p = queued(&[]);
        p.in_flight = InFlight::Local(1);
        assert!(p.take(u64::MAX).is_none());
        assert_eq!(
            p.in_flight,
            InFlight::None,
            "the next command must be sent at once"
        );
    }

    #[test]
    fn a_snapshot_is_asked_for_once_per_threshold() {
        let mut p = queued(&[60]);
        assert!(!p.take(100).expect("a batch").snapshot_first);
        p.push(&[0; 60]);
        assert!(p.take(100).expect("a batch").snapshot_first);
        assert_eq!(p.since_snapshot, 0);
    }

    #[test]
    fn batch_sizes_are_counted_per_entry() {
        let mut p = queued(&[1, 1, 1]);
        p.take(u64::MAX);
        p.push(&[1]);
        p.take(u64::MAX);
        assert!(p.take(u64::MAX).is_none(), "an empty queue makes no entry");
        assert_eq!(
            p.batches,
            BatchSizes {
                entries: 2,
                commands: 4,
                min: 1,
                max: 3
            }
        );
    }

    #[test]
    fn a_stopped_proposer_sends_nothing() {
        let mut p = queued(&[1]);
        p.stopped = true;
        assert!(p.take(u64::MAX).is_none());
    }
}
