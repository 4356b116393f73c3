//! openraft's state machine: hands committed commands to the server's [`Applier`] in log
//! order, and turns the applier's state into snapshot files and back.

use crate::snapshot_file::{self, SnapshotDir};
use crate::types::*;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use std::path::PathBuf;
use std::sync::Arc;

/// Why an [`Applier`] could not take a snapshot's state (the application's own error, with
/// its sources).
pub type RestoreError = Box<dyn std::error::Error + Send + Sync>;

/// What the server provides: the replicated state, changed only through `apply`.
pub trait Applier: Send + Sync + 'static {
    /// Applies committed commands in order, each with its zxid: its position in the total
    /// order, `log index << 16 | position in the entry` (see [`crate::batch`]), increasing with
    /// every command and the same on every replica. One call per entry, so the applier can
    /// take its locks once for the whole batch.
    fn apply(&self, commands: &[(u64, &[u8])]);
    /// Freezes the whole state as it is now (between two applies) and returns how to encode
    /// it. Freezing must be cheap: it runs on the apply path. The encoding runs later on a
    /// blocking thread while applies go on.
    fn snapshot(&self) -> StateEncoder;
    /// Replaces the whole state by a snapshot's, read from a stream (decompressed as it is
    /// read, so that the state never sits in memory whole next to the tree built from it).
    fn restore(&self, state: &mut dyn std::io::Read) -> Result<(), RestoreError>;
    /// Commands proposed here that will not be applied (see [`crate::proposer`]): whoever
    /// waits for them should stop waiting. They may still have been ordered (a leader that
    /// lost its leadership after appending cannot tell), exactly as a ZooKeeper client that
    /// loses its connection cannot tell whether its last write was applied.
    fn lost(&self, _commands: &[&[u8]]) {}
    /// On the leader: another member's clients of these sessions are alive.
    fn touched(&self, _sessions: &[i64]) {}
    /// A membership entry was applied: from now on, these are the members (ZooKeeper's
    /// `/zookeeper/config`).
    fn membership(&self, _members: &crate::members::Members) {}
}

/// Writes a state frozen by [`Applier::snapshot`] (streamed into the compressor).
pub type StateEncoder = Box<dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()> + Send + Sync>;

pub struct StateMachine {
    applier: Arc<dyn Applier>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    dir: SnapshotDir,
    built: u64,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    io_err(
        ErrorSubject::StateMachine,
        ErrorVerb::Read,
        std::io::Error::other(e.to_string()),
    )
}

impl StateMachine {
    /// Opens the snapshot directory and restores the newest valid snapshot into the applier.
    pub fn open(dir: SnapshotDir, applier: Arc<dyn Applier>) -> Result<StateMachine, StorageError> {
        let mut sm = StateMachine {
            applier,
            last_applied: None,
            membership: StoredMembership::default(),
            dir,
            built: 0,
        };
        if let Some(s) = sm.dir.latest().map_err(sm_err)? {
            let mut state = s.state().map_err(sm_err)?;
            sm.applier.restore(&mut state).map_err(sm_err)?;
            sm.last_applied = s.checked.meta.last_log_id;
            sm.membership = s.checked.meta.last_membership.clone();
        }
        Ok(sm)
    }

    /// The index of the last entry the restored state holds.
    pub fn last_applied_index(&self) -> Option<u64> {
        self.last_applied.map(|l| l.index)
    }
}

/// Writes a snapshot file, retrying until it succeeds. A snapshot that cannot be written (the
/// disk is full, say) must not stop the server: the log still holds everything, and only grows
/// meanwhile. openraft builds snapshots on a task of their own, so applies go on.
fn build_retrying(dir: &SnapshotDir, meta: &SnapshotMeta, encode: &StateEncoder) -> PathBuf {
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        match dir.build(meta, encode) {
            Ok(path) => return path,
            Err(e) => {
                tracing::error!(
                    "writing snapshot {} failed: {e}; retrying in {pause:?}",
                    meta.snapshot_id
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// Builds one snapshot from state frozen when the builder was made.
pub struct Builder {
    meta: SnapshotMeta,
    state: Option<StateEncoder>,
    dir: SnapshotDir,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    #[tracing::instrument(
        target = "zooid::trace",
        name = "zooid.snapshot.build",
        level = "debug",
        skip_all
    )]
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let werr = |e: std::io::Error| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e);
        let encode_state = self
            .state
            .take()
            .ok_or_else(|| werr(std::io::Error::other("snapshot already built")))?;
        let (dir, meta) = (self.dir.clone(), self.meta.clone());
        // Encoding, compressing and writing a large tree takes a while: a blocking thread
        // does it, and applies continue meanwhile on the live tree.
        let path = tokio::task::spawn_blocking(move || build_retrying(&dir, &meta, &encode_state))
            .await
            .map_err(|e| werr(std::io::Error::other(e.to_string())))?;
        let file = tokio::fs::File::open(&path).await.map_err(werr)?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(file),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for e in entries {
            self.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(cmd) => match crate::batch::decode(&cmd.0) {
                    Ok(commands) => {
                        let numbered: Vec<(u64, &[u8])> = commands
                            .into_iter()
                            .enumerate()
                            .map(|(i, c)| (crate::batch::zxid(e.log_id.index, i), c))
                            .collect();
                        self.applier.apply(&numbered);
                    }
                    // Every replica reads the same bytes: skipping keeps them identical.
                    Err(err) => tracing::error!("undecodable entry {}: {err}", e.log_id),
                },
                EntryPayload::Membership(m) => {
                    self.applier
                        .membership(&crate::members::Members::of(Some(&e.log_id), &m));
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                }
            }
            out.push(());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.built += 1;
        let last = self.last_applied;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.built),
            None => format!("0-0-{}", self.built),
        };
        Builder {
            meta: SnapshotMeta {
                last_log_id: last,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
            state: Some(self.applier.snapshot()),
            dir: self.dir.clone(),
        }
    }

    /// The leader's snapshot arrives in chunks straight into a file of the snapshot dir.
    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.dir.receiving_path();
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        Ok(Box::new(file))
    }

    #[tracing::instrument(target = "zooid::trace", name = "zooid.snapshot.install", level = "debug", skip_all, fields(index = meta.last_log_id.map_or(0, |l| l.index)))]
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        use tokio::io::AsyncWriteExt;
        let werr = |e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e);
        snapshot.flush().await.map_err(werr)?;
        snapshot.sync_all().await.map_err(werr)?;
        drop(snapshot);
        let path = self.dir.receiving_path();
        let checked = snapshot_file::check(&path).map_err(sm_err)?;
        if checked.meta.last_log_id != meta.last_log_id {
            return Err(sm_err("snapshot file does not match its meta"));
        }
        let mut state = checked.state(&path).map_err(sm_err)?;
        self.applier.restore(&mut state).map_err(sm_err)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.dir.adopt(meta, &path).map_err(sm_err)?;
        tracing::info!(
            "installed a snapshot from the leader, up to entry {}",
            meta.last_log_id.map_or(0, |l| l.index)
        );
        Ok(())
    }

    /// Read back from disk: snapshots are only needed to catch up a follower, and keeping the
    /// newest one in memory would double the memory a large tree needs.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(s) = self.dir.latest().map_err(sm_err)? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(&s.path).await.map_err(sm_err)?;
        Ok(Some(Snapshot {
            meta: s.checked.meta,
            snapshot: Box::new(file),
        }))
    }
}
