//! Writes this server proposed and waits on until their entry is applied: a client's request
//! (parked, answered on its connection) or a txn of the server's own whose result a caller
//! awaits (the admin API's restore). Numbered by proposal, the number the command carries back.

use crate::clock::now_ms;
use crate::session::ConnId;
use crate::state::command::TraceParent;
use crate::state::writes::ReplyShape;
use std::collections::HashMap;
use std::time::Instant;
use tokio::sync::oneshot;
use zooid_proto::ErrorCode;
use zooid_proto::OpCode;
use zooid_tree::OpOutput;

/// What an awaited txn's caller is told: the txn's result once applied here.
pub type Awaited = oneshot::Receiver<Result<OpOutput, ErrorCode>>;

/// Who waits for a proposal applied here.
pub enum Waiter {
    Client(Origin),
    Caller(oneshot::Sender<Result<OpOutput, ErrorCode>>),
}

/// Where the reply to an ordered write goes once it is applied.
#[derive(Debug, Clone)]
pub struct Origin {
    pub conn: ConnId,
    pub xid: i32,
    pub shape: ReplyShape,
    /// The request's opcode and arrival, for its latency once answered.
    pub op: OpCode,
    pub received: Instant,
    /// The request's trace span, ended when it is answered.
    pub span: tracing::Span,
    /// The trace context its command carries to the other members, if it is sampled.
    pub trace: Option<TraceParent>,
}

pub struct Proposals {
    next: u64,
    parked: HashMap<u64, Origin>,
    awaited: HashMap<u64, oneshot::Sender<Result<OpOutput, ErrorCode>>>,
}

impl Default for Proposals {
    fn default() -> Self {
        Self::new()
    }
}

impl Proposals {
    pub fn new() -> Self {
        // Numbers start from this start's time: a command an earlier run of this server
        // proposed (and the log still applies after a restart) can never match a request
        // waiting in this run.
        let incarnation = (now_ms().max(1) as u64) << 20;
        Proposals {
            next: incarnation,
            parked: HashMap::new(),
            awaited: HashMap::new(),
        }
    }

    fn number(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        n
    }

    /// Parks a client's write; its number goes into the command.
    pub fn park(&mut self, origin: Origin) -> u64 {
        let n = self.number();
        self.parked.insert(n, origin);
        n
    }

    /// Numbers a txn of the server's own whose result the returned receiver gets.
    pub fn await_result(&mut self) -> (u64, Awaited) {
        let n = self.number();
        let (tx, rx) = oneshot::channel();
        self.awaited.insert(n, tx);
        (n, rx)
    }

    /// Whoever waits for `proposal`, which is being applied (or will never be): no longer
    /// waiting here.
    pub fn take(&mut self, proposal: u64) -> Option<Waiter> {
        if let Some(o) = self.parked.remove(&proposal) {
            return Some(Waiter::Client(o));
        }
        self.awaited.remove(&proposal).map(Waiter::Caller)
    }

    /// Nothing proposed so far will be answered here (the leader or the quorum is gone, the
    /// state was replaced): the parked clients, to be let go. Awaiting callers hear that their
    /// txn may be lost.
    pub fn drain(&mut self) -> Vec<Origin> {
        self.awaited.clear();
        self.parked.drain().map(|(_, o)| o).collect()
    }

    /// Client writes parked.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }
}
