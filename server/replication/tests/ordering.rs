//! Commands proposed in a burst are applied once each, in proposal order, with increasing
//! zxids, and share log entries (group commit); snapshots purge the log and its space is
//! given back.
#![allow(clippy::unwrap_used)]

mod common;

use common::Record;
use std::sync::Arc;
use std::time::Duration;
use zooid_e2e::wait::wait_for_async_every;
use zooid_replication::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_is_ordered_and_batched() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Record::default());
    let c = Consensus::start(
        ConsensusConfig {
            dir: dir.path().into(),
            snapshot_every: 100_000,
            snapshot_every_bytes: 1 << 30,
            ..ConsensusConfig::default()
        },
        rec.clone(),
    )
    .await
    .unwrap();
    for i in 0u32..2000 {
        c.propose(i.to_be_bytes().to_vec());
    }
    for _ in 0..10_000 {
        if rec.len() >= 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got = rec.all();
    assert_eq!(got.len(), 2000);
    for (i, (_, cmd)) in got.iter().enumerate() {
        assert_eq!(
            cmd,
            &(i as u32).to_be_bytes().to_vec(),
            "applied out of order"
        );
    }
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "zxids must increase"
    );
    let entries: std::collections::BTreeSet<u64> =
        got.iter().map(|(z, _)| z >> batch::POSITION_BITS).collect();
    assert!(
        entries.len() < 100,
        "2000 commands took {} entries",
        entries.len()
    );
    c.shutdown().await;
}

/// Chunk files of the WAL in `dir`, by the WAL offset each begins at (raft-log names them
/// `r-<offset with _ separators>.wal`).
fn chunks(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(dir).map_or(Vec::new(), |d| {
        d.filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let digits: String = name
                    .strip_suffix(".wal")?
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_purge_the_log_and_its_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let config = ConsensusConfig {
        dir: dir.path().into(),
        snapshot_every: 1_000_000,
        snapshot_every_bytes: 1 << 20,
        wal_chunk_bytes: 256 << 10,
        ..ConsensusConfig::default()
    };
    let rec = Arc::new(Record::default());
    let c = Consensus::start(config.clone(), rec.clone()).await.unwrap();
    // 8 MiB of commands, one at a time as a synchronous client sends them (one command per
    // entry, so that openraft's 100 entries kept after a snapshot are 400 KiB): 32 chunks'
    // worth, 8 snapshots' worth.
    let total = 2048;
    for i in 0..total {
        let mut cmd = vec![0u8; 4096];
        cmd[..4].copy_from_slice(&(i as u32).to_be_bytes());
        c.propose(cmd);
        let applied = || (rec.len() > i).then_some(());
        let what = format!("command {i} applied");
        let poll = Duration::from_micros(200);
        wait_for_async_every(&what, Duration::from_secs(10), poll, applied, String::new).await;
    }
    let (log, trash) = (dir.path().join("log"), dir.path().join("log.trash"));
    // raft-log unlinks purged chunks at its next fsync: a few more writes bring it about.
    // Then the purged chunks are gone from the log, and the reaper frees their links.
    wait_for_async_every(
        "the log purged and the purged chunks' space freed",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || {
            c.propose(vec![1]);
            let live = chunks(&log);
            let oldest = live.iter().min().copied().unwrap_or(0);
            // The log spans two snapshot intervals (2 MiB here: see `LogStore::purge`); the
            // trash holds links only to chunks still in the log, so a purged chunk's space
            // is freed.
            let freed = chunks(&trash).iter().all(|c| live.contains(c));
            (oldest >= 4 << 20 && freed).then_some(())
        },
        || {
            let live = chunks(&log);
            format!(
                "after 8 MiB and several snapshots the log holds chunks {live:?} and the trash \
                 {:?}",
                chunks(&trash)
            )
        },
    )
    .await;
    assert!(
        std::fs::read_dir(dir.path().join("snapshots"))
            .unwrap()
            .count()
            >= 1,
        "no snapshot was written"
    );
    c.shutdown().await;
    drop(c);
    // What is left restarts cleanly and still holds the tail of the log.
    let again = Consensus::start(config, Arc::new(Record::default())).await;
    assert!(
        again.is_ok(),
        "restart after purges failed: {:?}",
        again.err()
    );
}
