//! Commands proposed in a burst are applied once each, in proposal order, with increasing
//! zxids, and share log entries (group commit).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use zooid_replication::*;

#[derive(Default)]
struct Record(Mutex<Vec<(u64, Vec<u8>)>>);

impl Applier for Record {
    fn apply(&self, commands: &[(u64, &[u8])]) {
        let mut v = self.0.lock().unwrap();
        for (zxid, command) in commands {
            v.push((*zxid, command.to_vec()));
        }
    }
    fn snapshot(&self) -> StateEncoder {
        Box::new(|_| Ok(()))
    }
    fn restore(&self, _state: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_is_ordered_and_batched() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Record::default());
    let c = Consensus::start(
        ConsensusConfig {
            node_id: 1,
            dir: dir.path().into(),
            group_commit_wait: Duration::ZERO,
            snapshot_every: 100_000,
            snapshot_every_bytes: 1 << 30,
        },
        rec.clone(),
    )
    .await
    .unwrap();
    for i in 0u32..2000 {
        c.propose(i.to_be_bytes().to_vec());
    }
    for _ in 0..10_000 {
        if rec.0.lock().unwrap().len() >= 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got = rec.0.lock().unwrap().clone();
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
