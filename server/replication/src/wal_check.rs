//! Checks the WAL before raft-log opens it, so that damage is never taken for a torn tail.
//!
//! raft-log cuts the last chunk at the first record it cannot read to its end, which is right
//! for a record torn by a crash, and wrong for a record whose length field was damaged: that
//! also reads past the end of the file, and cutting there drops every intact record after it
//! (acknowledged writes). A torn record is the last thing in the file, so nothing valid starts
//! after it; a damaged one is followed by intact records. This check looks for one, and refuses
//! to start (naming the file and offset) if it finds any, and for any unreadable record that
//! is not in the last chunk. It changes no file.

use crate::log_store::WalTypes;
use raft_log::codeq::Decode;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

type Record = raft_log::WALRecord<raft_log::RaftWalTypes<WalTypes>>;

/// Largest record looked for after a damaged one: an entry is at most a batch of commands
/// (4 MiB) or one command larger than that (a request frame), with room to spare.
const MAX_RECORD_BYTES: usize = 64 << 20;

/// Damage in the WAL that is not a torn final record.
#[derive(Debug, thiserror::Error)]
#[error(
    "{file}: unreadable record at offset {offset} ({reason}), and intact records follow it \
     (at offset {next_valid:?}); refusing to start rather than drop them. Restore the data \
     directory from a backup, or from another member"
)]
pub struct WalDamage {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
    /// Where the first intact record after the damage starts, if one was looked for.
    pub next_valid: Option<u64>,
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalHealth {
    /// Every record reads whole.
    Intact,
    /// The last chunk ends in a record that is incomplete or unreadable with nothing valid
    /// after it: a write torn by a crash, which raft-log cuts off when it opens.
    TornTail { file: PathBuf, offset: u64 },
}

/// Checks every chunk file in `dir` (raft-log's `r-*.wal`).
pub fn check(dir: &Path) -> Result<WalHealth, CheckError> {
    let mut chunks: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("r-") && n.ends_with(".wal"))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(WalHealth::Intact),
        Err(e) => return Err(CheckError::Io(dir.to_path_buf(), e)),
    };
    // Names carry the chunk's zero-padded starting offset: they sort in log order.
    chunks.sort();
    let last = chunks.len().saturating_sub(1);
    for (i, file) in chunks.iter().enumerate() {
        let bytes = std::fs::read(file).map_err(|e| CheckError::Io(file.clone(), e))?;
        let Some((offset, reason)) = first_unreadable(&bytes) else {
            continue;
        };
        let next_valid = next_record_after(&bytes, offset);
        if i != last || next_valid.is_some() {
            return Err(CheckError::Damaged(WalDamage {
                file: file.clone(),
                offset: offset as u64,
                reason,
                next_valid: next_valid.map(|n| n as u64),
            }));
        }
        return Ok(WalHealth::TornTail {
            file: file.clone(),
            offset: offset as u64,
        });
    }
    Ok(WalHealth::Intact)
}

/// Why the WAL could not be checked or is refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("reading {0}")]
    Io(PathBuf, #[source] io::Error),
    #[error(transparent)]
    Damaged(#[from] WalDamage),
}

/// One whole record of a chunk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    pub offset: usize,
    pub len: usize,
    /// An appended log entry (as opposed to a vote, commit, purge or checkpoint record).
    pub is_append: bool,
}

/// Where each whole record of a chunk file's bytes lies, up to the first unreadable one (for
/// inspection and tests).
pub fn records(bytes: &[u8]) -> Vec<RecordSpan> {
    let mut r = Counting { bytes, at: 0 };
    let mut out = Vec::new();
    while r.at < bytes.len() {
        let offset = r.at;
        match Record::decode(&mut r) {
            Ok(rec) => out.push(RecordSpan {
                offset,
                len: r.at - offset,
                is_append: matches!(
                    rec,
                    raft_log::WALRecord::Action(raft_log::RaftLogAction::Append(..))
                ),
            }),
            Err(_) => break,
        }
    }
    out
}

/// Where the first record that does not read whole starts, and why.
fn first_unreadable(bytes: &[u8]) -> Option<(usize, String)> {
    let mut r = Counting { bytes, at: 0 };
    while r.at < bytes.len() {
        let start = r.at;
        if let Err(e) = Record::decode(&mut r) {
            return Some((start, e.to_string()));
        }
    }
    None
}

/// The first offset after `damaged` at which a whole record with a good checksum starts.
fn next_record_after(bytes: &[u8], damaged: usize) -> Option<usize> {
    (damaged + 1..bytes.len()).find(|&at| {
        let end = bytes.len().min(at + MAX_RECORD_BYTES);
        // Cheap filter first: a record begins with a small big-endian type id (0..=5).
        bytes[at..end].len() >= 8
            && bytes[at..at + 3] == [0, 0, 0]
            && bytes[at + 3] <= 5
            && Record::decode(&bytes[at..end]).is_ok()
    })
}

/// A reader over a slice that knows how far it has read.
struct Counting<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&self.bytes[self.at..]).read(buf)?;
        self.at += n;
        Ok(n)
    }
}
