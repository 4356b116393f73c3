//! Client requests, decoded from an opcode and the bytes after the [`RequestHeader`].

use crate::codes::OpCode;
use crate::jute::{DecodeError, Reader, Writer};
use crate::records::{Acl, RequestHeader};
use bytes::BytesMut;

/// Every kind of create shares one record; `op` keeps which opcode sent it because the opcode
/// decides the reply shape (create vs create2) and, for containers and TTL nodes, the node type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub op: OpCode,
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    /// Only for [`OpCode::CreateTtl`].
    pub ttl: i64,
}

/// Watches a reconnecting client asks the server to restore (SetWatches / SetWatches2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetWatches {
    pub relative_zxid: i64,
    pub data: Vec<String>,
    pub exist: Vec<String>,
    pub child: Vec<String>,
    pub persistent: Vec<String>,
    pub persistent_recursive: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    GetChildren2 {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<Request>),
    MultiRead(Vec<Request>),
    /// Comma-separated server specs that join, ids that leave, or the whole new membership
    /// (instead of the other two); `cur_config_id` -1 for any version.
    Reconfig {
        joining: Option<String>,
        leaving: Option<String>,
        new_members: Option<String>,
        cur_config_id: i64,
    },
    CheckWatches {
        path: String,
        watcher_type: i32,
    },
    RemoveWatches {
        path: String,
        watcher_type: i32,
    },
    DeleteContainer {
        path: String,
    },
    Auth {
        auth_type: i32,
        scheme: String,
        auth: Vec<u8>,
    },
    SetWatches(SetWatches),
    Sasl {
        token: Vec<u8>,
    },
    GetEphemerals {
        prefix: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: i32,
    },
    WhoAmI,
    CloseSession,
}

/// Appends one whole request frame: the length prefix, the header (`xid`, `op`) and `body`
/// as it is. The one place a request is framed: [`Request::encode_frame`] and every tool and
/// test that sends a body encoded once, or made malformed on purpose, go through it.
pub fn encode_request_frame(b: &mut BytesMut, xid: i32, op: i32, body: impl FnOnce(&mut BytesMut)) {
    crate::response::encode_frame(b, |b| {
        RequestHeader { xid, op }.encode(b);
        body(b);
    });
}

/// A client's request frame, decoded once: its header, its opcode and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRequest {
    pub xid: i32,
    /// The opcode as sent; [`OpCode::Error`] if it names none.
    pub opcode: OpCode,
    /// The body, or why it is not a request ZooKeeper would take.
    pub request: Result<Request, RequestError>,
}

impl ClientRequest {
    /// Decodes a frame's body (without its length prefix). `Err` when even the header is
    /// missing: there is then no xid to answer, and the connection closes.
    pub fn decode(frame: &[u8]) -> Result<ClientRequest, DecodeError> {
        let mut r = Reader::new(frame);
        let hdr = RequestHeader::decode(&mut r)?;
        Ok(ClientRequest {
            xid: hdr.xid,
            opcode: OpCode::from_i32(hdr.op).unwrap_or(OpCode::Error),
            request: Request::decode(hdr.op, &frame[8..]),
        })
    }
}

/// Why a request could not be turned into a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// ZooKeeper answers UNIMPLEMENTED and closes the connection.
    #[error("opcode {0} is not a valid request")]
    Unimplemented(i32),
    /// ZooKeeper answers MARSHALLINGERROR and keeps the connection.
    #[error("malformed request body: {0}")]
    Malformed(#[from] DecodeError),
}

impl Request {
    /// Appends this request as one whole frame with `xid` (see [`encode_request_frame`]).
    pub fn encode_frame(&self, b: &mut BytesMut, xid: i32) {
        encode_request_frame(b, xid, self.opcode() as i32, |b| self.encode(b));
    }

    /// Decodes a request body. A top-level `check` or `notification` is not a request.
    pub fn decode(op: i32, body: &[u8]) -> Result<Request, RequestError> {
        let code = OpCode::from_i32(op).ok_or(RequestError::Unimplemented(op))?;
        if matches!(
            code,
            OpCode::Check | OpCode::Notification | OpCode::Error | OpCode::CreateSession
        ) {
            return Err(RequestError::Unimplemented(op));
        }
        let mut r = Reader::new(body);
        Ok(Self::decode_op(code, &mut r)?)
    }

    fn decode_op(code: OpCode, r: &mut Reader) -> Result<Request, DecodeError> {
        use OpCode as O;
        Ok(match code {
            O::Create | O::Create2 | O::CreateContainer | O::CreateTtl => {
                Request::Create(CreateRequest {
                    op: code,
                    path: r.string()?,
                    data: r.buffer()?,
                    acl: Acl::decode_list(r)?,
                    flags: r.i32()?,
                    ttl: if code == O::CreateTtl { r.i64()? } else { -1 },
                })
            }
            O::Delete => Request::Delete {
                path: r.string()?,
                version: r.i32()?,
            },
            O::Exists => Request::Exists {
                path: r.string()?,
                watch: r.bool()?,
            },
            O::GetData => Request::GetData {
                path: r.string()?,
                watch: r.bool()?,
            },
            O::SetData => Request::SetData {
                path: r.string()?,
                data: r.buffer()?,
                version: r.i32()?,
            },
            O::GetAcl => Request::GetAcl { path: r.string()? },
            O::SetAcl => Request::SetAcl {
                path: r.string()?,
                acl: Acl::decode_list(r)?,
                version: r.i32()?,
            },
            O::GetChildren => Request::GetChildren {
                path: r.string()?,
                watch: r.bool()?,
            },
            O::GetChildren2 => Request::GetChildren2 {
                path: r.string()?,
                watch: r.bool()?,
            },
            O::Sync => Request::Sync { path: r.string()? },
            O::Ping => Request::Ping,
            O::Check => Request::Check {
                path: r.string()?,
                version: r.i32()?,
            },
            O::Multi => Request::Multi(Self::decode_multi(r, false)?),
            O::MultiRead => Request::MultiRead(Self::decode_multi(r, true)?),
            O::Reconfig => Request::Reconfig {
                joining: r.ustring()?,
                leaving: r.ustring()?,
                new_members: r.ustring()?,
                cur_config_id: r.i64()?,
            },
            O::CheckWatches => Request::CheckWatches {
                path: r.string()?,
                watcher_type: r.i32()?,
            },
            O::RemoveWatches => Request::RemoveWatches {
                path: r.string()?,
                watcher_type: r.i32()?,
            },
            O::DeleteContainer => Request::DeleteContainer { path: r.string()? },
            O::Auth => Request::Auth {
                auth_type: r.i32()?,
                scheme: r.string()?,
                auth: r.buffer()?.unwrap_or_default(),
            },
            O::SetWatches | O::SetWatches2 => {
                let mut w = SetWatches {
                    relative_zxid: r.i64()?,
                    data: r.vector(Reader::string)?,
                    exist: r.vector(Reader::string)?,
                    child: r.vector(Reader::string)?,
                    ..Default::default()
                };
                if code == O::SetWatches2 {
                    w.persistent = r.vector(Reader::string)?;
                    w.persistent_recursive = r.vector(Reader::string)?;
                }
                Request::SetWatches(w)
            }
            O::Sasl => Request::Sasl {
                token: r.buffer()?.unwrap_or_default(),
            },
            O::GetEphemerals => Request::GetEphemerals {
                prefix: r.string()?,
            },
            O::GetAllChildrenNumber => Request::GetAllChildrenNumber { path: r.string()? },
            O::AddWatch => Request::AddWatch {
                path: r.string()?,
                mode: r.i32()?,
            },
            O::WhoAmI => Request::WhoAmI,
            O::CloseSession => Request::CloseSession,
            O::Notification | O::Error | O::CreateSession => {
                return Err(DecodeError::BadValue {
                    field: "opcode",
                    value: code as i64,
                })
            }
        })
    }

    /// Multi and multiRead bodies: `MultiHeader{type, done, err}` + op, ended by a header with
    /// done = true. Only write ops (multi) or only reads (multiRead) are allowed.
    fn decode_multi(r: &mut Reader, read: bool) -> Result<Vec<Request>, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let op = r.i32()?;
            let done = r.bool()?;
            let _err = r.i32()?;
            if done {
                return Ok(ops);
            }
            let code = OpCode::from_i32(op);
            let allowed = match code {
                Some(OpCode::GetChildren | OpCode::GetData) => read,
                Some(
                    OpCode::Create
                    | OpCode::Create2
                    | OpCode::CreateContainer
                    | OpCode::CreateTtl
                    | OpCode::Delete
                    | OpCode::SetData
                    | OpCode::Check,
                ) => !read,
                _ => false,
            };
            match code {
                Some(c) if allowed => ops.push(Self::decode_op(c, r)?),
                _ => {
                    return Err(DecodeError::BadValue {
                        field: "multi op type",
                        value: op as i64,
                    })
                }
            }
        }
    }

    /// The opcode this request is sent with (create keeps its own variant).
    pub fn opcode(&self) -> OpCode {
        use Request as R;
        match self {
            R::Create(c) => c.op,
            R::Delete { .. } => OpCode::Delete,
            R::Exists { .. } => OpCode::Exists,
            R::GetData { .. } => OpCode::GetData,
            R::SetData { .. } => OpCode::SetData,
            R::GetAcl { .. } => OpCode::GetAcl,
            R::SetAcl { .. } => OpCode::SetAcl,
            R::GetChildren { .. } => OpCode::GetChildren,
            R::GetChildren2 { .. } => OpCode::GetChildren2,
            R::Sync { .. } => OpCode::Sync,
            R::Ping => OpCode::Ping,
            R::Check { .. } => OpCode::Check,
            R::Multi(_) => OpCode::Multi,
            R::MultiRead(_) => OpCode::MultiRead,
            R::Reconfig { .. } => OpCode::Reconfig,
            R::CheckWatches { .. } => OpCode::CheckWatches,
            R::RemoveWatches { .. } => OpCode::RemoveWatches,
            R::DeleteContainer { .. } => OpCode::DeleteContainer,
            R::Auth { .. } => OpCode::Auth,
            R::SetWatches(w) => {
                if w.persistent.is_empty() && w.persistent_recursive.is_empty() {
                    OpCode::SetWatches
                } else {
                    OpCode::SetWatches2
                }
            }
            R::Sasl { .. } => OpCode::Sasl,
            R::GetEphemerals { .. } => OpCode::GetEphemerals,
            R::GetAllChildrenNumber { .. } => OpCode::GetAllChildrenNumber,
            R::AddWatch { .. } => OpCode::AddWatch,
            R::WhoAmI => OpCode::WhoAmI,
            R::CloseSession => OpCode::CloseSession,
        }
    }

    /// Encodes the request body (without header): what a client sends. Used by our own tools
    /// and tests; the server only decodes.
    pub fn encode(&self, b: &mut BytesMut) {
        use Request as R;
        match self {
            R::Create(c) => {
                b.put_jstring(&c.path);
                b.put_jbuffer(c.data.as_deref());
                Acl::encode_list(&c.acl, b);
                b.put_jint(c.flags);
                if c.op == OpCode::CreateTtl {
                    b.put_jlong(c.ttl);
                }
            }
            R::Delete { path, version } | R::Check { path, version } => {
                b.put_jstring(path);
                b.put_jint(*version);
            }
            R::Exists { path, watch }
            | R::GetData { path, watch }
            | R::GetChildren { path, watch }
            | R::GetChildren2 { path, watch } => {
                b.put_jstring(path);
                b.put_jbool(*watch);
            }
            R::SetData {
                path,
                data,
                version,
            } => {
                b.put_jstring(path);
                b.put_jbuffer(data.as_deref());
                b.put_jint(*version);
            }
            R::GetAcl { path }
            | R::Sync { path }
            | R::DeleteContainer { path }
            | R::GetAllChildrenNumber { path }
            | R::GetEphemerals { prefix: path } => b.put_jstring(path),
            R::SetAcl { path, acl, version } => {
                b.put_jstring(path);
                Acl::encode_list(acl, b);
                b.put_jint(*version);
            }
            R::Multi(ops) | R::MultiRead(ops) => {
                for op in ops {
                    b.put_jint(op.opcode() as i32);
                    b.put_jbool(false);
                    b.put_jint(-1);
                    op.encode(b);
                }
                b.put_jint(-1);
                b.put_jbool(true);
                b.put_jint(-1);
            }
            R::CheckWatches { path, watcher_type } | R::RemoveWatches { path, watcher_type } => {
                b.put_jstring(path);
                b.put_jint(*watcher_type);
            }
            R::Auth {
                auth_type,
                scheme,
                auth,
            } => {
                b.put_jint(*auth_type);
                b.put_jstring(scheme);
                b.put_jbuffer(Some(auth));
            }
            R::SetWatches(w) => {
                b.put_jlong(w.relative_zxid);
                b.put_jstrings(&w.data);
                b.put_jstrings(&w.exist);
                b.put_jstrings(&w.child);
                if self.opcode() == OpCode::SetWatches2 {
                    b.put_jstrings(&w.persistent);
                    b.put_jstrings(&w.persistent_recursive);
                }
            }
            R::Sasl { token } => b.put_jbuffer(Some(token)),
            R::AddWatch { path, mode } => {
                b.put_jstring(path);
                b.put_jint(*mode);
            }
            R::Reconfig {
                joining,
                leaving,
                new_members,
                cur_config_id,
            } => {
                for s in [joining, leaving, new_members] {
                    match s {
                        Some(s) => b.put_jstring(s),
                        None => b.put_jint(-1),
                    }
                }
                b.put_jlong(*cur_config_id);
            }
            R::Ping | R::WhoAmI | R::CloseSession => {}
        }
    }
}
