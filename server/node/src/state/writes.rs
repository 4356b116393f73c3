//! Translation between wire requests and tree transactions: how a write request becomes a
//! [`TxnOp`] (which requests are writes is a fact of their opcode, `OpCode::is_write`), and
//! how a txn's output becomes the reply the client expects.

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
    /// A new session: the handshake is answered once its createSession entry is applied.
    Connect {
        timeout_ms: i32,
        read_only: Option<bool>,
    },
}

/// What the server checks before ordering a write: flags, TTL availability, and `auth` ACL
/// expansion (which needs the connection's identities, known only here).
pub struct WriteContext<'a> {
    pub auth_ids: &'a [Id],
    pub extended_types: bool,
}

impl WriteContext<'_> {
    /// Turns a write request into a txn op and the reply shape. A request refused by the
    /// checks becomes [`TxnOp::Error`]: as in ZooKeeper it is still ordered (and takes a zxid),
    /// and inside a multi it fails that op, so the multi reports it at the right index.
    pub fn to_txn(&self, req: Request) -> (TxnOp, ReplyShape) {
        let Request::Multi(ops) = req else {
            let shape = match &req {
                Request::Create(c) => ReplyShape::Create(c.op),
                Request::SetData { .. } | Request::SetAcl { .. } => ReplyShape::Stat,
                Request::CloseSession => ReplyShape::CloseSession,
                _ => ReplyShape::Delete,
            };
            return (self.single(req).unwrap_or_else(TxnOp::Error), shape);
        };
        let shapes: Vec<OpCode> = ops.iter().map(Request::opcode).collect();
        let txn_ops = ops
            .into_iter()
            .map(|op| match op {
                Request::Check { path, version } => TxnOp::Check { path, version },
                other => self.single(other).unwrap_or_else(TxnOp::Error),
            })
            .collect();
        (TxnOp::Multi(txn_ops), ReplyShape::Multi(shapes))
    }

    fn single(&self, req: Request) -> Result<TxnOp, ErrorCode> {
        Ok(match req {
            Request::Create(c) => {
                let mode = CreateMode::from_flags(c.flags).ok_or(ErrorCode::BadArguments)?;
                let kind = match c.op {
                    // The opcode, not the flags, makes a container (as in ZooKeeper).
                    OpCode::CreateContainer => CreateKind::Container,
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
                TxnOp::Create(Create {
                    path: c.path,
                    data: c.data.map(Into::into),
                    acl,
                    kind,
                    sequential: mode.is_sequential(),
                })
            }
            Request::Delete { path, version } => TxnOp::Delete { path, version },
            // Only the server collects containers; ZooKeeper 3.8 answers clients BADARGUMENTS.
            Request::DeleteContainer { .. } => return Err(ErrorCode::BadArguments),
            Request::SetData {
                path,
                data,
                version,
            } => TxnOp::SetData {
                path,
                data: data.map(Into::into),
                version,
            },
            Request::SetAcl { path, acl, version } => TxnOp::SetAcl {
                path,
                acl: self.expand_acl(acl)?,
                version,
            },
            Request::CloseSession => TxnOp::CloseSession,
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
                    // ZooKeeper 3.8 answers create2 inside a multi with a plain create result;
                    // only containers and TTL nodes carry a Stat there.
                    OpOutput::Created { path, stat } => match op {
                        OpCode::Create | OpCode::Create2 => OpResult::Create { path },
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
