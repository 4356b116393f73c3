//! Deletes the WAL's purged chunk files off its flush thread.
//!
//! After a snapshot, raft-log unlinks every chunk the snapshot covers from its flush worker,
//! the thread every fsync waits on. Unlinking a 32 MiB file frees its blocks and page cache
//! there and then (about 25 ms each on ext4), so a purge of eight chunks stalled every write
//! for 200 ms. Before each purge we hard-link the closed chunks into `log.trash/`: raft-log's
//! unlink then only drops a name, and this reaper's own thread frees the data later, when a
//! chunk's name is gone from the log directory. A link costs no space while both names exist.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

/// How often the reaper looks for chunks the WAL has let go, when not woken sooner.
const SCAN_EVERY: Duration = Duration::from_secs(1);

pub struct ChunkReaper {
    log_dir: PathBuf,
    trash_dir: PathBuf,
    /// Dropping the sender (with the reaper) ends the thread.
    wake: Mutex<mpsc::Sender<()>>,
}

impl ChunkReaper {
    /// Starts the reaper for the WAL in `log_dir`; its links live in `trash_dir`, which must be
    /// on the same file system. Links left by an earlier run are reaped first.
    pub fn start(log_dir: &Path, trash_dir: &Path) -> io::Result<ChunkReaper> {
        std::fs::create_dir_all(trash_dir)?;
        let (tx, rx) = mpsc::channel::<()>();
        let (log, trash) = (log_dir.to_path_buf(), trash_dir.to_path_buf());
        reap(&log, &trash);
        std::thread::Builder::new()
            .name("wal-reaper".into())
            .spawn(move || loop {
                match rx.recv_timeout(SCAN_EVERY) {
                    Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => reap(&log, &trash),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(ChunkReaper {
            log_dir: log_dir.to_path_buf(),
            trash_dir: trash_dir.to_path_buf(),
            wake: Mutex::new(tx),
        })
    }

    /// Links every closed chunk (all but the newest, which is being written) into the trash,
    /// so that whichever of them the coming purge removes is freed by the reaper. A chunk that
    /// cannot be linked is simply freed by raft-log itself, as without the reaper.
    pub fn before_purge(&self) {
        let mut chunks = wal_chunks(&self.log_dir);
        chunks.sort();
        chunks.pop();
        for name in chunks {
            let link = self.trash_dir.join(&name);
            if !link.exists() {
                if let Err(e) = std::fs::hard_link(self.log_dir.join(&name), &link) {
                    tracing::debug!("could not link WAL chunk {name} for deferred delete: {e}");
                }
            }
        }
        let _ = self.wake.lock().unwrap_or_else(|e| e.into_inner()).send(());
    }
}

/// Names of the WAL's chunk files in `dir`.
fn wal_chunks(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wal"))
        .collect()
}

/// Frees every trash link whose chunk the WAL no longer has.
fn reap(log_dir: &Path, trash_dir: &Path) {
    for name in wal_chunks(trash_dir) {
        if !log_dir.join(&name).exists() {
            if let Err(e) = free_gradually(&trash_dir.join(&name)) {
                tracing::warn!("could not delete purged WAL chunk {name}: {e}");
            }
        }
    }
}

/// How much of a chunk one truncation frees, and the pause between two.
const FREE_STEP: u64 = 2 << 20;
const FREE_PAUSE: Duration = Duration::from_millis(2);

/// Shrinks the file a few MiB at a time before unlinking it. Freeing 32 MiB at once took
/// 19–25 ms on ext4, and the WAL's fsyncs waited behind it: mounted with `discard`, the file
/// system discards freed blocks synchronously, at 0.6–1 ms of disk time per MiB. A 2 MiB step
/// keeps each stall near 1.5 ms. Smaller steps or an idle I/O class did not lower the total
/// cost (docs/benchmarks-notebook.md).
fn free_gradually(path: &Path) -> io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let mut len = file.metadata()?.len();
    while len > 0 {
        len = len.saturating_sub(FREE_STEP);
        file.set_len(len)?;
        std::thread::sleep(FREE_PAUSE);
    }
    drop(file);
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frees_only_chunks_the_wal_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (log, trash) = (dir.path().join("log"), dir.path().join("trash"));
        std::fs::create_dir_all(&log).unwrap();
        for n in ["a.wal", "b.wal", "c.wal"] {
            std::fs::write(log.join(n), n).unwrap();
        }
        let reaper = ChunkReaper::start(&log, &trash).unwrap();
        reaper.before_purge();
        let mut linked = wal_chunks(&trash);
        linked.sort();
        assert_eq!(
            linked,
            ["a.wal", "b.wal"],
            "the newest chunk is never linked"
        );
        std::fs::remove_file(log.join("a.wal")).unwrap();
        reap(&log, &trash);
        assert_eq!(wal_chunks(&trash), ["b.wal"]);
        assert_eq!(std::fs::read(trash.join("b.wal")).unwrap(), b"b.wal");
    }
}
