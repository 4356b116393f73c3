//! Fixed jute records shared by many messages: Stat, ACLs, headers, the handshake, notifications.

use crate::jute::{DecodeError, Reader, Writer};

/// Node metadata as sent to clients (68 bytes on the wire, in this field order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Stat {
    pub const WIRE_LEN: usize = 68;

    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jlong(self.czxid);
        b.put_jlong(self.mzxid);
        b.put_jlong(self.ctime);
        b.put_jlong(self.mtime);
        b.put_jint(self.version);
        b.put_jint(self.cversion);
        b.put_jint(self.aversion);
        b.put_jlong(self.ephemeral_owner);
        b.put_jint(self.data_length);
        b.put_jint(self.num_children);
        b.put_jlong(self.pzxid);
    }

    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: r.i64()?,
            mzxid: r.i64()?,
            ctime: r.i64()?,
            mtime: r.i64()?,
            version: r.i32()?,
            cversion: r.i32()?,
            aversion: r.i32()?,
            ephemeral_owner: r.i64()?,
            data_length: r.i32()?,
            num_children: r.i32()?,
            pzxid: r.i64()?,
        })
    }
}

/// ZooKeeper's `StatPersisted`: a node's Stat as its snapshots keep it, without the two
/// figures a server derives (data length, number of children).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl StatPersisted {
    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jlong(self.czxid);
        b.put_jlong(self.mzxid);
        b.put_jlong(self.ctime);
        b.put_jlong(self.mtime);
        b.put_jint(self.version);
        b.put_jint(self.cversion);
        b.put_jint(self.aversion);
        b.put_jlong(self.ephemeral_owner);
        b.put_jlong(self.pzxid);
    }

    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(StatPersisted {
            czxid: r.i64()?,
            mzxid: r.i64()?,
            ctime: r.i64()?,
            mtime: r.i64()?,
            version: r.i32()?,
            cversion: r.i32()?,
            aversion: r.i32()?,
            ephemeral_owner: r.i64()?,
            pzxid: r.i64()?,
        })
    }
}

/// An identity: scheme plus id (`world:anyone`, `digest:user:hash`, `ip:10.0.0.0/8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    /// The identity ZooKeeper's `digest` scheme gives `user:password`:
    /// `digest:user:base64(SHA-1(user:password))` (what `addauth digest` proves, and what a
    /// `digest` ACL entry or the super user's digest names).
    pub fn digest(user_password: &[u8]) -> Id {
        use base64::Engine;
        use sha1::Digest;
        let text = String::from_utf8_lossy(user_password);
        let user = text.split(':').next().unwrap_or("");
        let hash =
            base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(user_password));
        Id {
            scheme: "digest".into(),
            id: format!("{user}:{hash}"),
        }
    }
}

/// One ACL entry: permission bits granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    /// `OPEN_ACL_UNSAFE`: everything for everyone.
    pub fn open() -> Vec<Acl> {
        vec![Acl {
            perms: crate::perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    /// `READ_ACL_UNSAFE`: read-only for everyone.
    pub fn read_only() -> Vec<Acl> {
        vec![Acl {
            perms: crate::perms::READ,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Acl {
            perms: r.i32()?,
            id: Id {
                scheme: r.string()?,
                id: r.string()?,
            },
        })
    }

    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jint(self.perms);
        b.put_jstring(&self.id.scheme);
        b.put_jstring(&self.id.id);
    }

    pub fn decode_list(r: &mut Reader) -> Result<Vec<Acl>, DecodeError> {
        r.vector(Acl::decode)
    }

    pub fn encode_list<W: Writer + ?Sized>(acls: &[Acl], b: &mut W) {
        b.put_jint(acls.len() as i32);
        for a in acls {
            a.encode(b);
        }
    }
}

/// The first frame a client sends. `read_only` is `None` when the client omitted the trailing
/// byte (pre-3.4 style clients); the reply must then omit it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let req = ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.unwrap_or_default(),
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        };
        Ok(req)
    }

    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jint(self.protocol_version);
        b.put_jlong(self.last_zxid_seen);
        b.put_jint(self.timeout_ms);
        b.put_jlong(self.session_id);
        b.put_jbuffer(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            b.put_jbool(ro);
        }
    }
}

/// The server's answer to [`ConnectRequest`]. A timeout of 0 tells the client its session expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: [u8; 16],
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// The reply to a session that cannot be resumed.
    pub fn expired(read_only: Option<bool>) -> Self {
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: [0; 16],
            read_only: read_only.map(|_| false),
        }
    }

    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jint(self.protocol_version);
        b.put_jint(self.timeout_ms);
        b.put_jlong(self.session_id);
        b.put_jbuffer(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            b.put_jbool(ro);
        }
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let protocol_version = r.i32()?;
        let timeout_ms = r.i32()?;
        let session_id = r.i64()?;
        let p = r.buffer()?.unwrap_or_default();
        let mut passwd = [0u8; 16];
        let n = p.len().min(16);
        passwd[..n].copy_from_slice(&p[..n]);
        let read_only = if r.remaining() > 0 {
            Some(r.bool()?)
        } else {
            None
        };
        Ok(ConnectResponse {
            protocol_version,
            timeout_ms,
            session_id,
            passwd,
            read_only,
        })
    }
}

/// Header of every request after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    pub op: i32,
}

impl RequestHeader {
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            xid: r.i32()?,
            op: r.i32()?,
        })
    }

    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jint(self.xid);
        b.put_jint(self.op);
    }
}

/// Header of every server frame after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl ReplyHeader {
    pub const WIRE_LEN: usize = 16;

    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jint(self.xid);
        b.put_jlong(self.zxid);
        b.put_jint(self.err);
    }

    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ReplyHeader {
            xid: r.i32()?,
            zxid: r.i64()?,
            err: r.i32()?,
        })
    }
}

/// A watch notification body (after a [`ReplyHeader`] with xid -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
}

impl WatcherEvent {
    pub fn encode<W: Writer + ?Sized>(&self, b: &mut W) {
        b.put_jint(self.event_type);
        b.put_jint(self.state);
        b.put_jstring(&self.path);
    }

    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(WatcherEvent {
            event_type: r.i32()?,
            state: r.i32()?,
            path: r.string()?,
        })
    }
}
