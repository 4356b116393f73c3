//! A client's reconfig: ZooKeeper's incremental or whole-membership change, carried out by
//! the leader; the connection waits for this member to apply it before answering.

use crate::runtime::Node;
use crate::session::ConnId;
use crate::state::effect::Answered;
use crate::state::reply::{Answer, Reply};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};
use zooid_proto::*;

/// Answers a reconfig: `/zookeeper/config` as it is after the change, or ZooKeeper's error
/// for it. Returns false when the connection is closed instead, because the outcome is not
/// known (no leader took it, or the leader failed part-way).
pub(super) async fn answer(node: &Node, conn: ConnId, req: ClientRequest) -> bool {
    let start = Instant::now();
    let consensus = node.replicated_consensus().cloned();
    let answer = match reconfigure(node, conn, consensus, req.request).await {
        Ok(answer) => answer,
        Err(Unknown) => {
            node.state().close_conn(conn);
            return false;
        }
    };
    let mut state = node.state();
    let answer = answer.and_then(|()| {
        state
            .tree()
            .get_shared("/zookeeper/config")
            .map(Answer::Data)
            .ok_or(ErrorCode::NoNode)
    });
    let zxid = state.last_zxid();
    state.send_reply(
        conn,
        Reply {
            xid: req.xid,
            zxid,
            answer,
        },
    );
    state.answered(Answered {
        op: OpCode::Reconfig,
        write: true,
        received: start,
        span: tracing::Span::none(),
        zxid,
    });
    true
}

/// The outcome of a reconfig could not be known (no leader took it, or the leader failed
/// part-way): the connection closes, as after ZooKeeper's CONNECTIONLOSS.
struct Unknown;

/// Carries out a decoded reconfig request: `Ok(Ok(()))` once this member applied the new
/// membership, `Ok(Err(code))` for ZooKeeper's refusal.
async fn reconfigure(
    node: &Node,
    conn: ConnId,
    consensus: Option<zooid_replication::Consensus>,
    req: Result<Request, RequestError>,
) -> Result<Result<(), ErrorCode>, Unknown> {
    let Ok(Request::Reconfig {
        joining,
        leaving,
        new_members,
        cur_config_id,
    }) = req
    else {
        return Ok(Err(ErrorCode::MarshallingError));
    };
    // ZooKeeper's order: disabled first, then a server that is not in an ensemble.
    let enabled = node
        .config
        .ensemble
        .as_ref()
        .is_some_and(|e| e.reconfig_enabled);
    if !enabled {
        return Ok(Err(ErrorCode::ReconfigDisabled));
    }
    let Some(consensus) = consensus else {
        return Ok(Err(ErrorCode::Unimplemented));
    };
    let change = match crate::state::membership::change(
        joining.as_deref(),
        leaving.as_deref(),
        new_members.as_deref(),
    ) {
        Ok(change) => change,
        Err(why) => {
            debug!(conn, "reconfig refused: {why}");
            return Ok(Err(ErrorCode::BadArguments));
        }
    };
    if !node.state().may_reconfig(conn) {
        info!(
            conn,
            "reconfig refused: no WRITE on /zookeeper/config (the super user's)"
        );
        return Ok(Err(ErrorCode::NoAuth));
    }
    let req = zooid_replication::Reconfig {
        change,
        from_version: (cur_config_id != -1).then_some(cur_config_id as u64),
    };
    let within = Duration::from_millis(u64::from(node.config.max_session_timeout()));
    match consensus.reconfig(req, within).await {
        Ok(version) => {
            info!(conn, "membership changed, now at version {version:#x}");
            Ok(Ok(()))
        }
        Err(e) => match crate::state::membership::error_code(&e) {
            Some(code) => {
                info!(conn, "reconfig refused: {e}");
                Ok(Err(code))
            }
            None => {
                warn!(conn, "reconfig: {e}; closing the connection");
                Err(Unknown)
            }
        },
    }
}
