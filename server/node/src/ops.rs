//! Translation between wire requests and tree transactions: which requests are writes, how a
//! request becomes a [`TxnOp`], and how a txn's output becomes the reply the client expects.

use zooid_proto::{Acl, CreateMode, ErrorCode, Id, OpCode, OpResult, Request, Response};
use zooid_tree::{Create, CreateKind, MultiOutput, OpOutput, TxnOp};

/// The shape of the reply a write expects, remembered while its txn is ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyShape {
    Create(OpCode),
    Delete,
    /// setData and setACL.
    Stat,
    Multi(Vec<OpCode>),
    CloseSession,
}

/// True for requests that change replicated state and so go through ordering.
pub fn is_write(req: &Request) -> bool {
    matches!(
        req,
        Request::Create(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Multi(_)
            | Request::DeleteContainer { .. }
            | Request::CloseSession
    )
}

/// What the server checks before ordering a write: flags, TTL availability, and `auth` ACL
/// expansion (which needs the connection's identities, known only here).
pub struct WriteContext<'a> {
    pub auth_ids: &'a [Id],
    pub extended_types: bool,
}

/// Why a write is answered without being ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// A plain error reply.
    Error(ErrorCode),
    /// A multi whose op failed the checks: answered as a failed multi (header err 0).
    Multi(Response),
}

impl WriteContext<'_> {
    /// Turns a write request into a txn op and the reply shape, or says how to answer at once.
    pub fn to_txn(&self, req: Request) -> Result<(TxnOp, ReplyShape), Rejected> {
        let Request::Multi(ops) = req else {
            return self.single(req).map_err(Rejected::Error);
        };
        let shapes: Vec<OpCode> = ops.iter().map(Request::opcode).collect();
        let mut txn_ops = Vec::with_capacity(ops.len());
        for (index, op) in ops.into_iter().enumerate() {
            let converted = match op {
                Request::Check { path, version } => Ok(TxnOp::Check { path, version }),
                other => self.single(other).map(|(t, _)| t),
            };
            match converted {
                Ok(t) => txn_ops.push(t),
                Err(code) => {
                    return Err(Rejected::Multi(multi_response(
                        &shapes,
                        MultiOutput::Aborted { index, code },
                    )))
                }
            }
        }
        Ok((TxnOp::Multi(txn_ops), ReplyShape::Multi(shapes)))
    }

    fn single(&self, req: Request) -> Result<(TxnOp, ReplyShape), ErrorCode> {
        Ok(match req {
            Request::Create(c) => {
                let mode = CreateMode::from_flags(c.flags).ok_or(ErrorCode::BadArguments)?;
                let kind = match c.op {
                    OpCode::CreateContainer => {
                        if mode != CreateMode::Container {
                            return Err(ErrorCode::BadArguments);
                        }
                        CreateKind::Container
                    }
                    OpCode::CreateTtl => {
                        if !self.extended_types {
                            return Err(ErrorCode::Unimplemented);
                        }
                        if !mode.is_ttl() {
                            return Err(ErrorCode::BadArguments);
                        }
                        CreateKind::Ttl(c.ttl)
                    }
                    _ => {
                        if mode.is_ttl() {
                            return Err(if self.extended_types {
                                ErrorCode::BadArguments
                            } else {
                                ErrorCode::Unimplemented
                            });
                        }
                        if mode.is_ephemeral() {
                            CreateKind::Ephemeral
                        } else {
                            // As in ZooKeeper, create/create2 with the container flag makes
                            // a plain persistent node: only opcode 19 makes containers.
                            CreateKind::Persistent
                        }
                    }
                };
                let acl = self.expand_acl(c.acl)?;
                (
                    TxnOp::Create(Create {
                        path: c.path,
                        data: c.data.map(Into::into),
                        acl,
                        kind,
                        sequential: mode.is_sequential(),
                    }),
                    ReplyShape::Create(c.op),
                )
            }
            Request::Delete { path, version } => {
                (TxnOp::Delete { path, version }, ReplyShape::Delete)
            }
            Request::DeleteContainer { path } => {
                (TxnOp::DeleteContainer { path }, ReplyShape::Delete)
            }
            Request::SetData {
                path,
                data,
                version,
            } => (
                TxnOp::SetData {
                    path,
                    data: data.map(Into::into),
                    version,
                },
                ReplyShape::Stat,
            ),
            Request::SetAcl { path, acl, version } => (
                TxnOp::SetAcl {
                    path,
                    acl: self.expand_acl(acl)?,
                    version,
                },
                ReplyShape::Stat,
            ),
            Request::CloseSession => (TxnOp::CloseSession, ReplyShape::CloseSession),
            _ => return Err(ErrorCode::MarshallingError),
        })
    }

    /// Replaces `auth` entries with the connection's authenticated identities (not `ip`).
    fn expand_acl(&self, acl: Vec<Acl>) -> Result<Vec<Acl>, ErrorCode> {
        if !acl.iter().any(|a| a.id.scheme == "auth") {
            return Ok(acl);
        }
        let mut out = Vec::with_capacity(acl.len());
        for a in acl {
            if a.id.scheme != "auth" {
                out.push(a);
                continue;
            }
            let mut found = false;
            for id in self.auth_ids.iter().filter(|i| i.scheme != "ip") {
                found = true;
                out.push(Acl {
                    perms: a.perms,
                    id: id.clone(),
                });
            }
            if !found {
                return Err(ErrorCode::InvalidAcl);
            }
        }
        Ok(out)
    }
}

/// The reply to a write, from the applied txn's output.
pub fn reply_for(shape: &ReplyShape, out: OpOutput) -> Response {
    match (shape, out) {
        (ReplyShape::Create(op), OpOutput::Created { path, stat }) => match op {
            OpCode::Create => Response::Create { path },
            _ => Response::Create2 { path, stat },
        },
        (ReplyShape::Stat, OpOutput::Stat(s)) => Response::Stat(s),
        (ReplyShape::Multi(ops), OpOutput::Multi(m)) => multi_response(ops, m),
        _ => Response::Empty,
    }
}

/// Multi results as ZooKeeper encodes them; a failed multi is 0 before, the code at, and
/// RUNTIMEINCONSISTENCY after the failing op.
pub fn multi_response(ops: &[OpCode], out: MultiOutput) -> Response {
    match out {
        MultiOutput::Committed(outs) => Response::Multi(
            ops.iter()
                .zip(outs)
                .map(|(op, o)| match o {
                    OpOutput::Created { path, stat } => match op {
                        OpCode::Create => OpResult::Create { path },
                        _ => OpResult::Create2 { path, stat },
                    },
                    OpOutput::Stat(s) => OpResult::SetData(s),
                    OpOutput::Checked => OpResult::Check,
                    _ => OpResult::Delete,
                })
                .collect(),
        ),
        MultiOutput::Aborted { index, code } => Response::Multi(
            (0..ops.len())
                .map(|i| {
                    OpResult::Error(match i.cmp(&index) {
                        std::cmp::Ordering::Less => 0,
                        std::cmp::Ordering::Equal => code.code(),
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency.code(),
                    })
                })
                .collect(),
        ),
    }
}
