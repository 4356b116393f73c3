//! Duty: notice that consensus failed (say, the log's disk failed), after which no write can
//! be ordered: every connection closes and the server reports why ([`crate::Server::failed`]).

use crate::runtime::Node;
use std::sync::Arc;
use tracing::error;
use zooid_replication::Consensus;

pub async fn watch_consensus(node: Arc<Node>, consensus: Consensus) {
    let reason = consensus.failed().await;
    error!("cannot order writes any more ({reason}); closing every connection");
    node.fail(reason);
}
