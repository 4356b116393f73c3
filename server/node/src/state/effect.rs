//! What the state decides and the runtime carries out: the state changes only itself and says
//! what must happen on sockets, in consensus and in the metrics, in the order it must happen
//! (a watch event before the reply of the write that caused it).

use crate::session::ConnId;
use crate::state::reply::Reply;
use bytes::Bytes;
use std::time::Instant;
use zooid_proto::OpCode;

#[derive(Debug)]
pub enum Effect {
    /// Queue a frame on a connection: a write's reply, a watch event, a handshake's answer.
    Frame { conn: ConnId, frame: Bytes },
    /// Queue a read's reply, encoded by the connection's writer.
    Reply { conn: ConnId, reply: Reply },
    /// Flush what the connection has queued, then close it.
    Close(ConnId),
    /// Close the connection now, dropping what it has queued.
    Kill(ConnId),
    /// One of the connection's writes was applied: requests waiting for it may go on.
    WriteDone(ConnId),
    /// Order this command through consensus.
    Propose(Vec<u8>),
    /// A request was answered: its latency is recorded, its trace span gets the zxid.
    Answered(Answered),
}

/// A request answered, for the latency figures and its trace.
#[derive(Debug)]
pub struct Answered {
    pub op: OpCode,
    pub write: bool,
    pub received: Instant,
    pub span: tracing::Span,
    pub zxid: i64,
}
