//! Duty: expire the sessions whose deadline passed (the leader, or a standalone server,
//! closes them through the log; the others keep them until the leader does), and tell the
//! leader which sessions this member heard from.

use crate::runtime::Node;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;
use zooid_replication::Consensus;

pub async fn expire_sessions(node: Arc<Node>, consensus: Consensus, every: Duration) {
    let mut iv = tokio::time::interval(every);
    loop {
        iv.tick().await;
        let touched = node.state().expire_due(Instant::now());
        if !touched.is_empty() {
            let c = consensus.clone();
            tokio::spawn(async move {
                if let Err(e) = c.touch_leader(touched).await {
                    // The next round carries them again once a leader answers.
                    debug!("touches not delivered to the leader: {e}");
                }
            });
        }
    }
}
