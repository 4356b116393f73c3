//! ZooKeeper's `hash` admin command: the digest of the applied tree.

use super::answer;
use crate::runtime::Node;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

/// ZooKeeper's `hash`: the digest of the tree this server has applied, at its last zxid, as
/// `{"digests": [{"zxid", "digestVersion", "digest"}]}` (ZooKeeper lists its recent ones;
/// Zooid computes the one of now). Taken from a frozen copy (O(1) under the lock) and computed
/// off it, so that a large tree does not hold up clients. Two members that have applied the
/// same zxid give the same digest, and a restore gives its backup's.
pub async fn hash(State(node): State<Arc<Node>>) -> Response {
    let frozen = {
        let state = node.state();
        if !state.serving() && !state.read_only() {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "command": "hash",
                        "error": super::commands::CommandError::NotServing.to_string() }),
            );
        }
        state.tree().freeze()
    };
    let zxid = frozen.last_zxid();
    match tokio::task::spawn_blocking(move || frozen.digest()).await {
        Ok(digest) => answer(
            StatusCode::OK,
            json!({ "command": "hash", "error": null, "digests": [{
                "zxid": zxid,
                "digestVersion": zooid_tree::DIGEST_VERSION,
                "digest": digest,
            }] }),
        ),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "command": "hash", "error": format!("computing the digest: {e}") }),
        ),
    }
}
