//! Duty: watch whether this member is in a working quorum. Cut off for longer than the grace
//! period, it lets its clients go (they move to members that can serve them) and refuses new
//! ones, or serves read-only clients if read-only mode is on; back in a quorum, it serves
//! again.

use crate::runtime::Node;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use zooid_replication::Consensus;

/// How often a member checks that it is in a quorum.
const QUORUM_CHECK_EVERY: Duration = Duration::from_millis(250);

pub async fn watch_quorum(node: Arc<Node>, consensus: Consensus) {
    let mut cut_off_since: Option<Instant> = None;
    let mut leader = consensus.leader();
    // How long a member may be without a working quorum before it closes its clients'
    // connections: ZooKeeper's syncLimit ticks, as a ZooKeeper leader gives up its followers
    // (at least two election timeouts, so that a leader change alone, which starts the grace
    // again, does not disconnect every client). A check may take an election timeout.
    let timing = consensus.timing();
    let grace = timing.sync_limit;
    let mut iv = tokio::time::interval(QUORUM_CHECK_EVERY);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        iv.tick().await;
        // A leader change starts the grace period again: an election is not a lost quorum,
        // and the checks that failed while the old leader was gone say nothing of the new
        // one (a member made leader just before its followers stopped lost its clients at
        // once, not after the grace).
        let now = consensus.leader();
        if now != leader {
            leader = now;
            cut_off_since = None;
        }
        if consensus.in_quorum(timing.election_timeout).await {
            if cut_off_since.take().is_some() && !node.state().serving() {
                info!("back in a quorum: serving clients again");
            }
            node.state().quorum_regained();
            continue;
        }
        let since = *cut_off_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= grace && node.state().serving() {
            warn!(
                "no working quorum for {grace:?} (syncLimit ticks): closing client connections \
                 until it is back"
            );
            node.state().quorum_lost();
        }
    }
}
