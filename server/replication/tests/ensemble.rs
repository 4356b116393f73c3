//! Three members over the peer transport on loopback: they elect a leader, every member
//! applies the same commands in the same order, a leader that stops is replaced, and a member
//! that comes back catches up.
#![allow(clippy::unwrap_used)]

mod common;

use common::Record;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zooid_e2e::wait::wait_for_async;
use zooid_replication::*;

/// Another member's index than `i`.
fn rest_of(i: usize) -> usize {
    (i + 1) % 3
}

fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

async fn start(id: u64, dir: &Path, voters: &BTreeMap<u64, String>, rec: Arc<Record>) -> Consensus {
    Consensus::start(
        ConsensusConfig {
            node_id: id,
            dir: dir.into(),
            snapshot_every: 100_000,
            snapshot_every_bytes: 1 << 30,
            catch_up_within: Duration::from_secs(5),
            // The e2e ensembles' tickTime=200, syncLimit=5: elections after 0.5-1 s.
            timing: Timing::from_ticks(Duration::from_millis(200), 5),
            peers: Some(Peers {
                cluster: "test".into(),
                listen: voters[&id].parse().unwrap(),
                voters: voters.clone(),
                learners: BTreeMap::new(),
                security: Default::default(),
            }),
            ..ConsensusConfig::default()
        },
        rec,
    )
    .await
    .unwrap()
}

/// Waits until every node in `nodes` names the same leader, one of them; returns its id.
async fn agreed_leader(nodes: &[&Consensus], ids: &[u64], within: Duration) -> u64 {
    wait_for_async("a leader every node names", within, || {
        let seen: Vec<_> = nodes.iter().map(|c| c.leader()).collect();
        let l = (*seen.first()?)?;
        (seen.iter().all(|s| *s == Some(l)) && ids.contains(&l)).then_some(l)
    })
    .await
}

async fn applied(recs: &[&Record], n: usize, within: Duration) {
    let what = format!("{n} commands applied by each node");
    wait_for_async(&what, within, || {
        recs.iter().all(|r| r.len() >= n).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_agree_replace_a_stopped_leader_and_catch_up() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("zooid_replication=info,openraft=warn")
        .with_test_writer()
        .try_init();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs = free_addrs(3);
    let voters: BTreeMap<u64, String> = (1..=3)
        .map(|i| (i, addrs[i as usize - 1].to_string()))
        .collect();
    let recs: Vec<Arc<Record>> = (0..3).map(|_| Arc::default()).collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(start(i as u64 + 1, dirs[i].path(), &voters, recs[i].clone()).await);
    }
    let all: Vec<&Consensus> = nodes.iter().collect();
    let leader = agreed_leader(&all, &[1, 2, 3], Duration::from_secs(10)).await;
    let li = leader as usize - 1;
    for i in 0u32..100 {
        nodes[li].propose(i.to_be_bytes().to_vec());
    }
    applied(
        &[&recs[0], &recs[1], &recs[2]],
        100,
        Duration::from_secs(10),
    )
    .await;
    let first = recs[0].all();
    assert_eq!(first.len(), 100);
    for (i, (_, c)) in first.iter().enumerate() {
        assert_eq!(c, &(i as u32).to_be_bytes().to_vec(), "out of order");
    }
    assert_eq!(recs[1].all(), first, "members applied different histories");
    assert_eq!(recs[2].all(), first, "members applied different histories");

    // A member that does not lead forwards what is proposed to it.
    let follower = rest_of(li);
    for i in 100u32..200 {
        nodes[follower].propose(i.to_be_bytes().to_vec());
    }
    applied(
        &[&recs[0], &recs[1], &recs[2]],
        200,
        Duration::from_secs(10),
    )
    .await;
    let got = recs[follower].all();
    for (i, (_, c)) in got.iter().enumerate() {
        assert_eq!(c, &(i as u32).to_be_bytes().to_vec(), "out of order");
    }
    assert_eq!(recs[li].all(), got, "members applied different histories");

    // The leader stops; the other two elect one of themselves and go on.
    drop(all);
    nodes[li].shutdown().await;
    // Its handles go too: the log stays locked while any is held.
    nodes[li] = nodes[rest_of(li)].clone();
    let stopped_at = Instant::now();
    let rest: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    let rest_ids: Vec<u64> = rest.iter().map(|i| *i as u64 + 1).collect();
    let new_leader = agreed_leader(
        &[&nodes[rest[0]], &nodes[rest[1]]],
        &rest_ids,
        Duration::from_secs(10),
    )
    .await;
    eprintln!("new leader {new_leader} after {:?}", stopped_at.elapsed());
    for i in 200u32..300 {
        nodes[new_leader as usize - 1].propose(i.to_be_bytes().to_vec());
    }
    let other = rest
        .iter()
        .copied()
        .find(|i| *i as u64 + 1 != new_leader)
        .unwrap();
    for i in 300u32..400 {
        nodes[other].propose(i.to_be_bytes().to_vec());
    }
    applied(
        &[&recs[rest[0]], &recs[rest[1]]],
        400,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(recs[rest[0]].all(), recs[rest[1]].all());

    // The old leader comes back on its data and catches up with what it missed.
    let back = Arc::new(Record::default());
    let revived = start(leader, dirs[li].path(), &voters, back.clone()).await;
    applied(&[&back], 400, Duration::from_secs(10)).await;
    assert_eq!(
        back.all(),
        recs[rest[0]].all(),
        "the returning member's history differs"
    );
    revived.shutdown().await;
    for i in rest {
        nodes[i].shutdown().await;
    }
    drop(nodes);
}
