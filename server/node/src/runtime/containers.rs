//! Duty: the leader (or a standalone server) deletes empty containers and expired TTL nodes,
//! by its own clock, through the log.

use crate::clock::now_ms;
use crate::runtime::Node;
use std::sync::Arc;
use std::time::Duration;
use zooid_tree::TxnOp;

pub async fn collect_containers(node: Arc<Node>, every: Duration) {
    let mut iv = tokio::time::interval(every);
    loop {
        iv.tick().await;
        if !node.state().leads() {
            continue;
        }
        // Taken in O(1) under the lock and searched outside it; each delete is checked again
        // when it applies.
        let view = node.state().tree().collection_view();
        let expired = view.expired(now_ms());
        drop(view);
        if expired.is_empty() {
            continue;
        }
        let mut st = node.state();
        for path in expired {
            st.propose(0, TxnOp::DeleteContainer { path }, None);
        }
    }
}
