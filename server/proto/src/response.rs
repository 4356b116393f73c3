//! Reply bodies and whole reply frames.

use crate::codes::{ErrorCode, OpCode, XID_NOTIFICATION};
use crate::jute::{DecodeError, Reader, Writer};
use crate::records::{Acl, ReplyHeader, Stat, WatcherEvent};
use bytes::{Bytes, BytesMut};

/// The body of a successful reply. Error replies carry no body at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Header only: delete, setWatches, auth, sync-less ops, removeWatches, closeSession, ping.
    Empty,
    Create {
        path: String,
    },
    Create2 {
        path: String,
        stat: Stat,
    },
    /// exists, setData, setACL.
    Stat(Stat),
    GetData {
        /// Shared with the node it was read from: a reply does not copy the data.
        data: Option<Bytes>,
        stat: Stat,
    },
    GetAcl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    Children(Vec<String>),
    Children2 {
        children: Vec<String>,
        stat: Stat,
    },
    Sync {
        path: String,
    },
    Multi(Vec<OpResult>),
    /// getAllChildrenNumber's count, and addWatch's `ErrorResponse{0}`.
    Int(i32),
    /// getEphemerals.
    Paths(Vec<String>),
    WhoAmI(Vec<ClientInfo>),
    /// A SASL exchange's next token (`SetSASLResponse`).
    Sasl(Vec<u8>),
}

/// One entry of whoAmI: an authenticated identity of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub scheme: String,
    pub user: String,
}

/// The result of one operation inside multi / multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create {
        path: String,
    },
    /// Also what create2, createContainer and createTTL return inside multi (type 15).
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData {
        /// Shared with the node it was read from: a reply does not copy the data.
        data: Option<Bytes>,
        stat: Stat,
    },
    /// Failure, or the 0 / -2 placeholders around a failed op.
    Error(i32),
}

impl Response {
    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        match self {
            Response::Empty => {}
            Response::Create { path } | Response::Sync { path } => b.put_jstring(path),
            Response::Create2 { path, stat } => {
                b.put_jstring(path);
                stat.encode(b);
            }
            Response::Stat(s) => s.encode(b),
            Response::GetData { data, stat } => {
                b.put_jbytes(data.as_ref());
                stat.encode(b);
            }
            Response::GetAcl { acl, stat } => {
                Acl::encode_list(acl, b);
                stat.encode(b);
            }
            Response::Children(c) | Response::Paths(c) => b.put_jstrings(c),
            Response::Children2 { children, stat } => {
                b.put_jstrings(children);
                stat.encode(b);
            }
            Response::Multi(results) => {
                for r in results {
                    r.encode(b);
                }
                b.put_jint(-1);
                b.put_jbool(true);
                b.put_jint(-1);
            }
            Response::Int(n) => b.put_jint(*n),
            Response::WhoAmI(infos) => {
                b.put_jint(infos.len() as i32);
                for i in infos {
                    b.put_jstring(&i.scheme);
                    b.put_jstring(&i.user);
                }
            }
            Response::Sasl(token) => b.put_jbuffer(Some(token)),
        }
    }
}

impl OpResult {
    fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        let header = |b: &mut W, op: OpCode, err: i32| {
            b.put_jint(op as i32);
            b.put_jbool(false);
            b.put_jint(err);
        };
        match self {
            OpResult::Create { path } => {
                header(b, OpCode::Create, 0);
                b.put_jstring(path);
            }
            OpResult::Create2 { path, stat } => {
                header(b, OpCode::Create2, 0);
                b.put_jstring(path);
                stat.encode(b);
            }
            OpResult::Delete => header(b, OpCode::Delete, 0),
            OpResult::SetData(stat) => {
                header(b, OpCode::SetData, 0);
                stat.encode(b);
            }
            OpResult::Check => header(b, OpCode::Check, 0),
            OpResult::GetChildren(c) => {
                header(b, OpCode::GetChildren, 0);
                b.put_jstrings(c);
            }
            OpResult::GetData { data, stat } => {
                header(b, OpCode::GetData, 0);
                b.put_jbytes(data.as_ref());
                stat.encode(b);
            }
            OpResult::Error(err) => {
                header(b, OpCode::Error, *err);
                b.put_jint(*err);
            }
        }
    }

    /// Decodes a multi / multiRead reply body (used by tools and tests).
    pub fn decode_all(body: &[u8]) -> Result<Vec<OpResult>, DecodeError> {
        let mut r = Reader::new(body);
        let mut out = Vec::new();
        loop {
            let op = r.i32()?;
            let done = r.bool()?;
            let err = r.i32()?;
            if done {
                return Ok(out);
            }
            let res = match OpCode::from_i32(op) {
                Some(OpCode::Create) => OpResult::Create { path: r.string()? },
                Some(OpCode::Create2) => OpResult::Create2 {
                    path: r.string()?,
                    stat: Stat::decode(&mut r)?,
                },
                Some(OpCode::Delete) => OpResult::Delete,
                Some(OpCode::SetData) => OpResult::SetData(Stat::decode(&mut r)?),
                Some(OpCode::Check) => OpResult::Check,
                Some(OpCode::GetChildren) => OpResult::GetChildren(r.vector(Reader::string)?),
                Some(OpCode::GetData) => OpResult::GetData {
                    data: r.buffer()?.map(Bytes::from),
                    stat: Stat::decode(&mut r)?,
                },
                Some(OpCode::Error) => {
                    r.i32()?;
                    OpResult::Error(err)
                }
                _ => {
                    return Err(DecodeError::BadValue {
                        field: "multi result type",
                        value: op as i64,
                    })
                }
            };
            out.push(res);
        }
    }
}

/// Appends one whole reply frame (length prefix, header, body). Errors carry no body.
pub fn encode_reply(b: &mut BytesMut, xid: i32, zxid: i64, result: Result<&Response, ErrorCode>) {
    let start = b.len();
    b.put_jint(0);
    encode_reply_body(b, xid, zxid, result);
    patch_len(b, start);
}

/// Appends the same frame as [`encode_reply`] without copying node data of `min_shared` bytes
/// or more: the bytes to send are the `pieces` in order, then `out`. A large buffer moves what
/// `out` holds so far into `pieces`, followed by the buffer itself (shared, not copied).
pub fn encode_reply_spliced(
    out: &mut BytesMut,
    pieces: &mut Vec<Bytes>,
    min_shared: usize,
    xid: i32,
    zxid: i64,
    result: Result<&Response, ErrorCode>,
) {
    // The length prefix comes first, so the body is measured before it is written.
    let mut len = Measure(0);
    encode_reply_body(&mut len, xid, zxid, result);
    out.put_jint(len.0 as i32);
    encode_reply_body(
        &mut Spliced {
            out,
            pieces,
            min_shared,
        },
        xid,
        zxid,
        result,
    );
}

fn encode_reply_body<W: Writer + ?Sized>(
    b: &mut W,
    xid: i32,
    zxid: i64,
    result: Result<&Response, ErrorCode>,
) {
    match result {
        Ok(resp) => {
            ReplyHeader { xid, zxid, err: 0 }.encode(b);
            resp.encode(b);
        }
        Err(e) => ReplyHeader {
            xid,
            zxid,
            err: e.code(),
        }
        .encode(b),
    }
}

/// Counts the bytes an encoding would take.
struct Measure(usize);

impl Writer for Measure {
    fn put_jint(&mut self, _: i32) {
        self.0 += 4;
    }
    fn put_jlong(&mut self, _: i64) {
        self.0 += 8;
    }
    fn put_jbool(&mut self, _: bool) {
        self.0 += 1;
    }
    fn put_jbuffer(&mut self, v: Option<&[u8]>) {
        self.0 += 4 + v.map_or(0, <[u8]>::len);
    }
    fn put_jstring(&mut self, v: &str) {
        self.0 += 4 + v.len();
    }
    fn put_jstrings(&mut self, v: &[String]) {
        self.0 += 4 + v.iter().map(|s| 4 + s.len()).sum::<usize>();
    }
}

/// Copies small fields into `out`, keeps large buffers by reference (see [`encode_reply_spliced`]).
struct Spliced<'a> {
    out: &'a mut BytesMut,
    pieces: &'a mut Vec<Bytes>,
    min_shared: usize,
}

impl Writer for Spliced<'_> {
    fn put_jint(&mut self, v: i32) {
        self.out.put_jint(v);
    }
    fn put_jlong(&mut self, v: i64) {
        self.out.put_jlong(v);
    }
    fn put_jbool(&mut self, v: bool) {
        self.out.put_jbool(v);
    }
    fn put_jbuffer(&mut self, v: Option<&[u8]>) {
        self.out.put_jbuffer(v);
    }
    fn put_jstring(&mut self, v: &str) {
        self.out.put_jstring(v);
    }
    fn put_jstrings(&mut self, v: &[String]) {
        self.out.put_jstrings(v);
    }
    fn put_jbytes(&mut self, v: Option<&Bytes>) {
        match v {
            Some(data) if data.len() >= self.min_shared => {
                self.out.put_jint(data.len() as i32);
                self.pieces.push(self.out.split().freeze());
                self.pieces.push(data.clone());
            }
            _ => self.out.put_jbytes(v),
        }
    }
}

/// Appends one notification frame.
pub fn encode_notification(b: &mut BytesMut, zxid: i64, event: &WatcherEvent) {
    let start = b.len();
    b.put_jint(0);
    ReplyHeader {
        xid: XID_NOTIFICATION,
        zxid,
        err: 0,
    }
    .encode(b);
    event.encode(b);
    patch_len(b, start);
}

/// Appends a frame holding just `body` (the handshake reply).
pub fn encode_frame(b: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = b.len();
    b.put_jint(0);
    body(b);
    patch_len(b, start);
}

fn patch_len(b: &mut BytesMut, start: usize) {
    let len = (b.len() - start - 4) as i32;
    b[start..start + 4].copy_from_slice(&len.to_be_bytes());
}
