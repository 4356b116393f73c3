//! A replicated command: the txn op plus what the proposer stamps on it (time, session, and
//! which server's parked request it answers). The log index it lands at becomes its zxid.

use bytes::BytesMut;
use std::collections::HashMap;
use std::sync::Arc;
use zooid_proto::{DecodeError, Id, Reader, Writer};
use zooid_tree::{decode_op, encode_op, Checks, TxnOp};

/// Version of this encoding, first in every command. Version 2 added the trace context at the
/// end, version 3 the checks after it (the client's identities, the quota setting); commands
/// of earlier versions (in logs written before) are still read, and checked for nothing.
const VERSION: i32 = 3;

/// The trace a command belongs to (W3C trace context: trace id, parent span id, flags), so
/// that every member applying it records its span in the client request's trace. Carried
/// only by requests that are traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Proposer's wall clock, ms since the epoch: ctime / mtime of what it creates.
    pub time: i64,
    pub session: i64,
    /// The server that proposed it; only that server has a client waiting for the reply.
    pub origin_node: u64,
    /// Which parked request on `origin_node` it answers; 0 for none.
    pub proposal: u64,
    pub op: TxnOp,
    pub trace: Option<TraceParent>,
    /// What the apply checks ([`zooid_tree::Txn::checks`]).
    pub checks: Checks,
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        // Header, path and data dominate; sized once so a 1 KiB setData is one allocation.
        let mut b = BytesMut::with_capacity(64 + self.op.payload_len_hint());
        b.put_jint(VERSION);
        b.put_jlong(self.time);
        b.put_jlong(self.session);
        b.put_jlong(self.origin_node as i64);
        b.put_jlong(self.proposal as i64);
        encode_op(&self.op, &mut b);
        match &self.trace {
            None => b.put_jbool(false),
            Some(t) => {
                b.put_jbool(true);
                b.extend_from_slice(&t.trace_id);
                b.extend_from_slice(&t.span_id);
                b.extend_from_slice(&[t.flags]);
            }
        }
        match &self.checks.ids {
            None => b.put_jbool(false),
            Some(ids) => {
                b.put_jbool(true);
                b.put_jint(ids.len() as i32);
                for id in ids.iter() {
                    b.put_jstring(&id.scheme);
                    b.put_jstring(&id.id);
                }
            }
        }
        b.put_jbool(self.checks.quota);
        Vec::from(b)
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        Self::decode_with(bytes, &mut IdsCache::default())
    }

    /// [`Command::decode`], taking the client identities from `cache` when it has them: every
    /// write carries its client's, and most come from few clients.
    pub fn decode_with(bytes: &[u8], cache: &mut IdsCache) -> Result<Command, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.i32()?;
        if !(1..=VERSION).contains(&version) {
            return Err(DecodeError::BadValue {
                field: "command version",
                value: version as i64,
            });
        }
        let mut cmd = Command {
            time: r.i64()?,
            session: r.i64()?,
            origin_node: r.i64()? as u64,
            proposal: r.i64()? as u64,
            op: decode_op(&mut r)?,
            trace: None,
            checks: Checks::default(),
        };
        if version >= 2 && r.bool()? {
            let bytes = r.take(16 + 8 + 1)?;
            let mut t = TraceParent {
                trace_id: [0; 16],
                span_id: [0; 8],
                flags: bytes[24],
            };
            t.trace_id.copy_from_slice(&bytes[..16]);
            t.span_id.copy_from_slice(&bytes[16..24]);
            cmd.trace = Some(t);
        }
        if version >= 3 {
            if r.bool()? {
                cmd.checks.ids = Some(cache.read(&mut r)?);
            }
            cmd.checks.quota = r.bool()?;
        }
        if r.remaining() != 0 {
            return Err(DecodeError::BadValue {
                field: "trailing command bytes",
                value: r.remaining() as i64,
            });
        }
        Ok(cmd)
    }
}

/// Identity lists already decoded, by their encoded bytes; bounded (emptied when full).
#[derive(Default)]
pub struct IdsCache(HashMap<Box<[u8]>, Arc<[Id]>>);

impl IdsCache {
    const MAX: usize = 1024;

    /// Reads an encoded list of identities (a count, then scheme and id of each).
    fn read(&mut self, r: &mut Reader) -> Result<Arc<[Id]>, DecodeError> {
        let start = r.position();
        // Measured first without allocating: the bytes are the cache's key.
        let mut probe = r.clone();
        let count = probe.i32()?;
        for _ in 0..u64::from(count.max(0).unsigned_abs()) * 2 {
            let len = probe.i32()?;
            probe.take(len.max(0) as usize)?;
        }
        let encoded = r.take(probe.position() - start)?;
        if let Some(ids) = self.0.get(encoded) {
            return Ok(ids.clone());
        }
        let ids: Arc<[Id]> = Reader::new(encoded)
            .vector(|r| {
                Ok(Id {
                    scheme: r.string()?,
                    id: r.string()?,
                })
            })?
            .into();
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(encoded.into(), ids.clone());
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Command {
            time: 1_700_000_000_000,
            session: 0x0100_0000_0000_0001,
            origin_node: 1,
            proposal: 42,
            op: TxnOp::Delete {
                path: "/a".into(),
                version: 3,
            },
            trace: None,
            checks: Checks::default(),
        };
        assert_eq!(Command::decode(&c.encode()).unwrap(), c);
        let mut bytes = c.encode();
        bytes.push(0);
        assert!(Command::decode(&bytes).is_err());
        let traced = Command {
            trace: Some(TraceParent {
                trace_id: [7; 16],
                span_id: [9; 8],
                flags: 1,
            }),
            ..c.clone()
        };
        assert_eq!(Command::decode(&traced.encode()).unwrap(), traced);
        let checked = Command {
            checks: Checks {
                ids: Some(
                    vec![
                        Id {
                            scheme: "ip".into(),
                            id: "127.0.0.1".into(),
                        },
                        Id {
                            scheme: "digest".into(),
                            id: "alice:hash".into(),
                        },
                    ]
                    .into(),
                ),
                quota: true,
            },
            ..traced.clone()
        };
        assert_eq!(Command::decode(&checked.encode()).unwrap(), checked);
        // Decoded through a cache, twice: the same identities, shared the second time.
        let mut cache = IdsCache::default();
        let first = Command::decode_with(&checked.encode(), &mut cache).unwrap();
        let second = Command::decode_with(&checked.encode(), &mut cache).unwrap();
        assert_eq!(first, checked);
        let (a, b) = (first.checks.ids.unwrap(), second.checks.ids.unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        // Version 2, as logs written before hold it: no checks.
        let mut v2 = traced.encode();
        v2[..4].copy_from_slice(&2i32.to_be_bytes());
        v2.truncate(v2.len() - 2);
        assert_eq!(Command::decode(&v2).unwrap(), traced);
        // Version 1: no trace context either.
        let mut v1 = c.encode();
        v1[..4].copy_from_slice(&1i32.to_be_bytes());
        v1.truncate(v1.len() - 3);
        assert_eq!(Command::decode(&v1).unwrap(), c);
    }
}
