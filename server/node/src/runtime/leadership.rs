//! Duty: follow leader changes. Writes parked for a leader that is gone are let go, a new
//! leader gives every session a fresh deadline, and the time spent without a leader is
//! recorded (ZooKeeper's `election_time` and `looking_count`).

use crate::observe::metrics::LeaderChange;
use crate::runtime::Node;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};
use zooid_replication::Consensus;

pub async fn follow_leader(node: Arc<Node>, consensus: Consensus, me: u64) {
    let mut known = None;
    // Since when this member has had no leader (ZooKeeper's LOOKING state).
    let mut looking_since = Some(Instant::now());
    let mut hand_overs = consensus.election_stats().hand_overs;
    let mut known_one = false;
    while let Some(now) = consensus.leader_changed(known).await {
        {
            let mut st = node.state();
            // An observer by its start-up config, or since a reconfig made it one.
            st.set_observer(node.configured_observer() || consensus.is_learner());
            st.leader_changed(known, now);
        }
        known = now;
        let seen = consensus.election_stats().hand_overs;
        let cause = match now {
            None => LeaderChange::Lost,
            Some(_) if seen > hand_overs => LeaderChange::HandOver,
            Some(_) => LeaderChange::Election,
        };
        hand_overs = seen;
        // Learning the first leader after start is no change.
        if known_one || now.is_none() {
            node.metrics.leader_changed(cause);
        }
        known_one |= now.is_some();
        match now {
            Some(_) => {
                if let Some(since) = looking_since.take() {
                    let ms = since.elapsed().as_secs_f64() * 1000.0;
                    node.metrics.election_time.record(ms);
                }
            }
            None => {
                looking_since.get_or_insert_with(Instant::now);
                node.metrics.looking.inc();
            }
        }
        match now {
            Some(l) if l == me => info!("leading the ensemble"),
            Some(l) => info!("following server {l}"),
            None => warn!("no leader"),
        }
    }
}
