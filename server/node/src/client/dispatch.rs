//! One request frame of an established session: pings, auth, writes proposed for ordering,
//! reads answered from the local state.

use crate::config::Config;
use crate::observe::telemetry::{trace_parent, TRACE_TARGET};
use crate::session::ConnId;
use crate::state::effect::Answered;
use crate::state::proposals::Origin;
use crate::state::reply::{Answer, Reply};
use crate::state::writes::{ReplyShape, WriteContext};
use crate::state::State;
use std::sync::Arc;
use std::time::Instant;
use zooid_proto::*;

/// Handles one decoded request of `session` on `conn`, under the state's lock. Returns false
/// when the connection must close.
pub(super) fn request(
    state: &mut State,
    config: &Config,
    conn: ConnId,
    session: i64,
    req: ClientRequest,
) -> bool {
    let start = Instant::now();
    let ClientRequest {
        xid,
        opcode,
        request: req,
    } = req;
    // Pings are not traced: they would drown the requests.
    let span = if xid == XID_PING {
        tracing::Span::none()
    } else {
        tracing::debug_span!(
            target: TRACE_TARGET,
            "zooid.request",
            op = opcode.name(),
            session = format_args!("0x{session:x}"),
            xid,
            zxid = tracing::field::Empty,
        )
    };
    let entered = span.enter();
    let is_auth = opcode == OpCode::Auth;
    let mut keep_open = true;
    let read_only = state.conn_read_only(conn);
    let refused_read_only = read_only && opcode.needs_quorum();
    let result: Result<Answer, ErrorCode> = match req {
        // A read-only session changes nothing and cannot sync.
        Ok(_) if refused_read_only => Err(ErrorCode::NotReadOnly),
        Ok(Request::CloseSession) if read_only => {
            state.expire_local(session);
            keep_open = false;
            Ok(Answer::Ready(Response::Empty))
        }
        Err(RequestError::Unimplemented(_)) => {
            keep_open = false;
            Err(ErrorCode::Unimplemented)
        }
        // An auth packet that does not decode is a failed authentication: answered so, and
        // the connection closed (ZooKeeper closes it too; its other requests' are answered
        // MARSHALLINGERROR and the connection goes on).
        Err(RequestError::Malformed(_)) if matches!(opcode, OpCode::Auth | OpCode::Sasl) => {
            keep_open = false;
            Err(ErrorCode::AuthFailed)
        }
        Err(RequestError::Malformed(_)) => Err(ErrorCode::MarshallingError),
        Ok(Request::Ping) => Ok(Answer::Ready(Response::Empty)),
        Ok(Request::Auth { scheme, auth, .. }) => {
            let remote = state.conns().get(conn).map(|c| c.remote);
            let super_digest = config.super_digest.as_deref();
            match remote.and_then(|r| super::auth::authenticate(&scheme, &auth, r, super_digest)) {
                Some(ids) => {
                    for id in ids {
                        state.add_auth(conn, id);
                    }
                    Ok(Answer::Ready(Response::Empty))
                }
                None => {
                    keep_open = false;
                    Err(ErrorCode::AuthFailed)
                }
            }
        }
        Ok(Request::Sasl { token }) => match state.sasl_step(conn, &token) {
            Ok(reply) => Ok(Answer::Ready(Response::Sasl(reply))),
            Err(why) => {
                tracing::info!(conn, "SASL authentication failed: {why}");
                keep_open = false;
                Err(ErrorCode::AuthFailed)
            }
        },
        Ok(req) if opcode.is_write() => {
            let auth_ids = state
                .conns()
                .get(conn)
                .map(|h| h.auth_ids.clone())
                .unwrap_or_else(|| Arc::from([]));
            let ctx = WriteContext {
                auth_ids: &auth_ids,
                extended_types: config.extended_types,
            };
            let (op, shape) = ctx.to_txn(req);
            if shape == ReplyShape::CloseSession {
                state.closing(session);
            }
            state.propose(
                session,
                op,
                Some(Origin {
                    conn,
                    xid,
                    shape,
                    op: opcode,
                    received: start,
                    trace: trace_parent(&span),
                    span: span.clone(),
                }),
            );
            return true;
        }
        Ok(req) => crate::state::reads::execute(state, conn, session, req, config.max_reply_bytes),
    };
    // ZooKeeper stamps auth replies with zxid 0 and UNIMPLEMENTED ones with -1.
    let zxid = match &result {
        _ if is_auth => 0,
        Err(ErrorCode::Unimplemented) => -1,
        _ => state.last_zxid(),
    };
    state.send_reply(
        conn,
        Reply {
            xid,
            zxid,
            answer: result,
        },
    );
    drop(entered);
    if xid != XID_PING {
        state.answered(Answered {
            op: opcode,
            write: false,
            received: start,
            span,
            zxid,
        });
    }
    if !keep_open {
        state.close_conn(conn);
    }
    keep_open
}
