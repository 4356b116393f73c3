//! The Raft log in `raft-log`'s chunked, CRC-checked WAL, adapted to openraft's
//! `RaftLogStorage`. An append hands its entries to raft-log's flush worker and asks for one
//! fsync, reported through openraft's callback. openraft 0.9 waits for that callback before it
//! appends again, so group commit happens a level up: each entry carries every command queued
//! meanwhile (see `proposer`).

use crate::chunk_reaper::ChunkReaper;
use crate::proposer::Proposer;
use crate::types::*;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, LogState, RaftLogReader};
use raft_log::api::raft_log_writer::RaftLogWriter;
use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// raft-log's view of our types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalTypes;

/// openraft's log id in the WAL: term, leader node, index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalLogId(pub LogId);

/// openraft's vote in the WAL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd)]
pub struct WalVote(pub Vote);

/// An entry payload in the WAL: a tag byte, then the command or the membership (JSON).
#[derive(Debug, Clone)]
pub struct WalPayload(pub EntryPayload<TypeConfig>);

/// Who is told when a flush reaches the disk.
pub enum FlushCallback {
    /// openraft's append callback, and the proposer if the append carried commands.
    Log(LogFlushed<TypeConfig>, Option<Arc<Proposer>>),
    /// A caller that awaits durability (vote, truncate).
    Wait(oneshot::Sender<io::Result<()>>),
}

impl raft_log::Types for WalTypes {
    type LogId = WalLogId;
    type LogPayload = WalPayload;
    type Vote = WalVote;
    type UserData = ();
    type Callback = FlushCallback;

    fn log_index(log_id: &WalLogId) -> u64 {
        log_id.0.index
    }

    fn payload_size(payload: &WalPayload) -> u64 {
        match &payload.0 {
            EntryPayload::Normal(c) => c.0.len() as u64,
            _ => 64,
        }
    }
}

impl raft_log::Callback for FlushCallback {
    fn send(self, res: io::Result<()>) {
        match self {
            FlushCallback::Log(cb, proposer) => {
                // The next entry goes into openraft's queue before openraft learns that this
                // one is on disk, so its core finds it there as soon as it wakes.
                if let (Ok(()), Some(p)) = (&res, proposer) {
                    p.flushed();
                }
                cb.log_io_completed(res)
            }
            FlushCallback::Wait(tx) => {
                let _ = tx.send(res);
            }
        }
    }
}

fn read_u64<R: Read>(mut r: R) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

impl raft_log::codeq::Encode for WalLogId {
    fn encode<W: Write>(&self, mut w: W) -> io::Result<usize> {
        w.write_all(&self.0.leader_id.term.to_be_bytes())?;
        w.write_all(&self.0.leader_id.node_id.to_be_bytes())?;
        w.write_all(&self.0.index.to_be_bytes())?;
        Ok(24)
    }
}

impl raft_log::codeq::Decode for WalLogId {
    fn decode<R: Read>(mut r: R) -> io::Result<Self> {
        let term = read_u64(&mut r)?;
        let node = read_u64(&mut r)?;
        let index = read_u64(&mut r)?;
        Ok(WalLogId(LogId::new(
            openraft::CommittedLeaderId::new(term, node),
            index,
        )))
    }
}

impl raft_log::codeq::Encode for WalVote {
    fn encode<W: Write>(&self, mut w: W) -> io::Result<usize> {
        w.write_all(&self.0.leader_id.term.to_be_bytes())?;
        w.write_all(&self.0.leader_id.node_id.to_be_bytes())?;
        w.write_all(&[self.0.committed as u8])?;
        Ok(17)
    }
}

impl raft_log::codeq::Decode for WalVote {
    fn decode<R: Read>(mut r: R) -> io::Result<Self> {
        let term = read_u64(&mut r)?;
        let node = read_u64(&mut r)?;
        let mut c = [0u8; 1];
        r.read_exact(&mut c)?;
        Ok(WalVote(if c[0] != 0 {
            Vote::new_committed(term, node)
        } else {
            Vote::new(term, node)
        }))
    }
}

impl raft_log::codeq::Encode for WalPayload {
    fn encode<W: Write>(&self, mut w: W) -> io::Result<usize> {
        let json;
        let (tag, body): (u8, &[u8]) = match &self.0 {
            EntryPayload::Blank => (0, &[]),
            EntryPayload::Normal(c) => (1, &c.0),
            EntryPayload::Membership(m) => {
                json = serde_json::to_vec(m).map_err(io::Error::other)?;
                (2, &json)
            }
        };
        w.write_all(&[tag])?;
        w.write_all(&(body.len() as u32).to_be_bytes())?;
        w.write_all(body)?;
        Ok(5 + body.len())
    }
}

impl raft_log::codeq::Decode for WalPayload {
    fn decode<R: Read>(mut r: R) -> io::Result<Self> {
        let mut head = [0u8; 5];
        r.read_exact(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as u64;
        let mut body = Vec::new();
        r.take(len).read_to_end(&mut body)?;
        if body.len() as u64 != len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(WalPayload(match head[0] {
            0 => EntryPayload::Blank,
            1 => EntryPayload::Normal(Command(body.into())),
            2 => EntryPayload::Membership(
                serde_json::from_slice(&body)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            ),
            t => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown payload tag {t}"),
                ))
            }
        }))
    }
}

/// The WAL's fsyncs since start: what ZooKeeper reports as `fsynctime`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fsyncs {
    pub count: u64,
    pub total_us: u64,
    pub max_us: u64,
}

/// The log store; cheap to clone (openraft asks for a separate reader).
#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Mutex<raft_log::RaftLog<WalTypes>>>,
    proposer: Arc<Proposer>,
    reaper: Arc<ChunkReaper>,
    /// The purge openraft asked for last, carried out only at the next one (see `purge`).
    deferred_purge: Arc<Mutex<Option<LogId>>>,
}

impl LogStore {
    /// Opens (or creates) the WAL in `dir`. A torn last record from a crash is cut off.
    /// `group_wait` is how long the flush worker waits to gather more appends into one fsync;
    /// `chunk_bytes` is the size at which a chunk file is closed and a new one begun;
    /// `proposer` hears when each entry carrying commands is on disk.
    pub fn open(
        dir: &Path,
        group_wait: Duration,
        chunk_bytes: usize,
        proposer: Arc<Proposer>,
    ) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let mut config = raft_log::Config::new(dir.display().to_string());
        config.wal.truncate_incomplete_record = Some(true);
        config.wal.flush_batch_wait = Some(group_wait);
        // raft-log caches payloads it has written (1 GiB by default). Entries are read back
        // once, right after they are written, to be applied: a small cache does. A follower
        // that lags further behind is served from the chunk files. Every cached byte is a
        // second copy of state the tree holds already (64 MiB cost 81 MiB of RSS after 5 s
        // of 1 KiB writes to 100,000 nodes, with no change in throughput).
        config.log_cache_capacity = Some(8 << 20);
        config.log_cache_max_items = Some(10_000);
        // Only entries of closed chunks leave the cache, and only whole chunks are removed
        // after a snapshot: keep chunks small (the default is 1 GiB).
        config.wal.chunk_max_size = Some(chunk_bytes);
        let wal = raft_log::RaftLog::<WalTypes>::open(Arc::new(config))?;
        let reaper = ChunkReaper::start(dir, &dir.with_extension("trash"))?;
        let wal = Arc::new(Mutex::new(wal));
        Ok(LogStore {
            wal,
            proposer,
            reaper: Arc::new(reaper),
            deferred_purge: Arc::new(Mutex::new(None)),
        })
    }

    /// The index of the last entry purged from the log, if any was.
    pub fn purged_index(&self) -> Option<u64> {
        self.wal().log_state().purged().map(|l| l.0.index)
    }

    /// The index of the last entry in the log (appended, whether or not openraft's metrics
    /// have caught up with it yet).
    pub fn last_index(&self) -> Option<u64> {
        self.wal().log_state().last().map(|l| l.0.index)
    }

    /// The WAL's fsyncs since start.
    pub fn fsyncs(&self) -> Fsyncs {
        let m = self.wal().stat().flush_metrics;
        Fsyncs {
            count: m.sync_batch_count,
            total_us: m.sync_us,
            max_us: m.sync_max_us,
        }
    }

    fn wal(&self) -> MutexGuard<'_, raft_log::RaftLog<WalTypes>> {
        // A panic while holding the lock leaves raft-log's in-memory state as consistent as
        // its last completed call; continuing is what every other caller would do anyway.
        self.wal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a flush and waits until it is on disk.
    async fn flush_and_wait(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.wal().flush(true, Some(FlushCallback::Wait(tx)))?;
        rx.await
            .map_err(|_| io::Error::other("raft-log flush worker went away"))?
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<openraft::Entry<TypeConfig>>, StorageError> {
        let from = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(x) => x + 1,
            Bound::Excluded(x) => *x,
            Bound::Unbounded => u64::MAX,
        };
        let wal = self.wal();
        wal.read(from, to)
            .map(|r| {
                r.map(|(id, payload)| openraft::Entry {
                    log_id: id.0,
                    payload: payload.0,
                })
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let wal = self.wal();
        let st = wal.log_state();
        let last_purged_log_id = st.purged().map(|l| l.0);
        let last_log_id = st.last().map(|l| l.0).or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let io = |e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e);
        self.wal().save_vote(WalVote(*vote)).map_err(io)?;
        self.flush_and_wait().await.map_err(io)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.wal().log_state().vote().map(|v| v.0))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(c) = committed {
            // Made durable by the next flush; losing it only means replaying a little less
            // locally after a crash, never applying something uncommitted.
            self.wal()
                .commit(WalLogId(c))
                .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.wal().log_state().committed().map(|l| l.0))
    }

    // Spans of the replication steps go to the trace exporter (`zooid::trace`), not the log.
    #[tracing::instrument(
        target = "zooid::trace",
        name = "zooid.log.append",
        level = "debug",
        skip_all
    )]
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let io = |e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e);
        let mut commands = false;
        let mut wal = self.wal();
        wal.append(entries.into_iter().map(|e| {
            commands |= matches!(e.payload, EntryPayload::Normal(_));
            (WalLogId(e.log_id), WalPayload(e.payload))
        }))
        .map_err(io)?;
        wal.flush(
            true,
            Some(FlushCallback::Log(
                callback,
                commands.then(|| self.proposer.clone()),
            )),
        )
        .map_err(io)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let io = |e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e);
        self.wal().truncate(log_id.index).map_err(io)?;
        self.flush_and_wait().await.map_err(io)
    }

    /// openraft purges after each snapshot, up to (nearly) that snapshot. Purging only up to
    /// what it asked for the time before keeps the log behind the previous snapshot too, so
    /// that if the newest snapshot file is found damaged at start, the older one plus the log
    /// still restore the whole state. openraft never reads what it purged, so entries kept
    /// longer are only disk space: the log spans two snapshot intervals instead of one.
    ///
    /// A purge that reaches past the log's last entry comes after a snapshot installed from
    /// the leader, newer than anything in the log: the log is purged to it at once (its next
    /// entry follows the snapshot, and raft-log only appends consecutive entries).
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let io = |e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let past_the_end = {
            let wal = self.wal();
            let st = wal.log_state();
            st.last()
                .or(st.purged())
                .is_none_or(|last| last.0.index < log_id.index)
        };
        let upto = if past_the_end {
            *self
                .deferred_purge
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
            log_id
        } else {
            let Some(upto) = self
                .deferred_purge
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .replace(log_id)
            else {
                return Ok(());
            };
            upto
        };
        self.reaper.before_purge();
        let mut wal = self.wal();
        wal.purge(WalLogId(upto)).map_err(io)?;
        wal.flush(false, None).map_err(io)
    }
}
