//! The reply to a read, as taken under the state lock and encoded after it.
//!
//! A read looks the node up under the lock and keeps it shared (an `Arc` clone of the tree's
//! node, O(1)): whatever the node holds (1 MiB of data, 100,000 children, a long ACL), the
//! lock is held for the lookup only. The connection's writer encodes the reply, in the order
//! it was queued among the connection's other replies and notifications, so a watch event
//! never overtakes the reply that set the watch.

use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use zooid_proto::*;
use zooid_tree::{Node, Subtree};

/// What a read answers, before it is encoded.
pub enum Answer {
    /// Small answers, made whole under the lock.
    Ready(Response),
    /// getData.
    Data(Arc<Node>),
    /// getChildren.
    Children(Arc<Node>),
    /// getChildren2.
    Children2(Arc<Node>),
    /// getACL.
    Acl(Arc<Node>),
    /// getAllChildrenNumber: the subtree is counted by the writer.
    Descendants(Subtree),
    /// multiRead: refused with MARSHALLINGERROR if its reply would exceed `max_bytes`,
    /// measured before anything is encoded.
    MultiRead { parts: Vec<Part>, max_bytes: usize },
}

/// One read of a multiRead.
pub enum Part {
    Data(Arc<Node>),
    Children(Arc<Node>),
    Error(ErrorCode),
}

/// A read's reply: header fields and its answer or error.
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub answer: Result<Answer, ErrorCode>,
}

/// Node data this large is written to the socket from the node's own buffer; smaller data is
/// copied into the writer's batch, which costs less than a write of its own. A 3 MiB multiRead
/// copied whole held a worker thread long enough to show in other clients' p99 (the "large
/// multiReads" row in docs/benchmarks.md).
pub const SHARED_DATA_BYTES: usize = 16 * 1024;

/// The same over TLS, whose records take a copy of every byte anyway: data this large is
/// handed to them from the node's buffer; below it, a copy costs less than keeping the
/// buffer shared (a reference count taken and given back).
pub const SHARED_DATA_BYTES_TLS: usize = 256;

/// Bytes of a reply frame's length prefix and header.
const HEADER: usize = 4 + 16;
/// A Stat's encoded size.
const STAT: usize = 68;
/// A multi result's header (type, done, err).
const PART_HEADER: usize = 12;
/// What one child name costs as counted before encoding: its length prefix plus a typical
/// name (sequential nodes' names are 10 digits and a prefix). The writer corrects the charge
/// once the real size is known.
const TYPICAL_CHILD: usize = 4 + 16;

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("xid", &self.xid)
            .field("zxid", &self.zxid)
            .field("error", &self.answer.as_ref().err())
            .finish_non_exhaustive()
    }
}

impl Reply {
    /// Bytes this reply is charged against its connection's outbound budget while queued: the
    /// exact size for data, an estimate in O(1) for lists of children.
    pub fn estimate(&self) -> usize {
        HEADER
            + match &self.answer {
                Err(_) | Ok(Answer::Ready(_)) | Ok(Answer::Descendants(_)) => 64,
                Ok(Answer::Data(n)) => 4 + data_len(n) + STAT,
                Ok(Answer::Children(n)) | Ok(Answer::Children2(n)) => {
                    4 + n.children.len() * TYPICAL_CHILD + STAT
                }
                Ok(Answer::Acl(n)) => 4 + n.acl.len() * 64 + STAT,
                // Never more than the cap: a bigger reply is refused, not sent.
                Ok(Answer::MultiRead { parts, max_bytes }) => parts
                    .iter()
                    .map(|p| match p {
                        Part::Data(n) => PART_HEADER + 4 + data_len(n) + STAT,
                        Part::Children(n) => PART_HEADER + 4 + n.children.len() * TYPICAL_CHILD,
                        Part::Error(_) => PART_HEADER + 4,
                    })
                    .sum::<usize>()
                    .min(*max_bytes),
            }
    }

    /// Appends the reply frame: the bytes to send are `pieces`, then `out` (node data of
    /// `min_shared` bytes or more is sent from the node's own buffer, not copied).
    pub fn encode(self, out: &mut BytesMut, pieces: &mut Vec<Bytes>, min_shared: usize) {
        let response = match self.answer {
            Err(e) => Err(e),
            Ok(a) => a.into_response(),
        };
        encode_reply_spliced(
            out,
            pieces,
            min_shared,
            self.xid,
            self.zxid,
            response.as_ref().map_err(|e| *e),
        );
    }
}

impl Answer {
    fn into_response(self) -> Result<Response, ErrorCode> {
        Ok(match self {
            Answer::Ready(r) => r,
            Answer::Data(n) => Response::GetData {
                data: n.data.clone(),
                stat: n.stat(),
            },
            Answer::Children(n) => Response::Children(n.children.iter().cloned().collect()),
            Answer::Children2(n) => Response::Children2 {
                children: n.children.iter().cloned().collect(),
                stat: n.stat(),
            },
            Answer::Acl(n) => Response::GetAcl {
                acl: n.acl.to_vec(),
                stat: n.stat(),
            },
            Answer::Descendants(s) => Response::Int(s.descendant_count() as i32),
            Answer::MultiRead { parts, max_bytes } => {
                if multi_read_size(&parts) > max_bytes {
                    // Refused before anything is copied: one small request must not make the
                    // server build a reply of any size.
                    return Err(ErrorCode::MarshallingError);
                }
                Response::Multi(
                    parts
                        .into_iter()
                        .map(|p| match p {
                            Part::Data(n) => OpResult::GetData {
                                data: n.data.clone(),
                                stat: n.stat(),
                            },
                            Part::Children(n) => {
                                OpResult::GetChildren(n.children.iter().cloned().collect())
                            }
                            Part::Error(e) => OpResult::Error(e.code()),
                        })
                        .collect(),
                )
            }
        })
    }
}

fn data_len(n: &Node) -> usize {
    n.data.as_ref().map_or(0, |d| d.len())
}

/// Bytes a multiRead's reply would take, from the sizes of what it reads.
fn multi_read_size(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|p| {
            PART_HEADER
                + match p {
                    Part::Data(n) => 4 + data_len(n) + STAT,
                    Part::Children(n) => 4 + n.children.iter().map(|c| 4 + c.len()).sum::<usize>(),
                    Part::Error(_) => 4,
                }
        })
        .sum()
}
