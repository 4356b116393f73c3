//! Writes this server proposed and waits on until their entry is applied: a client's request
//! (parked, answered on its connection) or a txn of the server's own whose result a caller
//! awaits (the admin API's restore). Numbered by proposal, the number the command carries back.

use crate::limits::Outstanding;
use crate::state::{now_ms, Origin};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;
use zooid_proto::ErrorCode;
use zooid_tree::OpOutput;

/// What an awaited txn's caller is told: the txn's result once applied here.
pub type Awaited = oneshot::Receiver<Result<OpOutput, ErrorCode>>;

/// Who waits for a proposal applied here.
pub enum Waiter {
    Client(Origin),
    Caller(oneshot::Sender<Result<OpOutput, ErrorCode>>),
}

pub struct Proposals {
    next: u64,
    parked: HashMap<u64, Origin>,
    awaited: HashMap<u64, oneshot::Sender<Result<OpOutput, ErrorCode>>>,
    /// The number of parked client writes, readable without the state's lock, against the
    /// global outstanding limit: kept equal to `parked.len()` by every method here.
    outstanding: Arc<Outstanding>,
}

impl Proposals {
    pub fn new(outstanding: Arc<Outstanding>) -> Self {
        // Numbers start from this start's time: a command an earlier run of this server
        // proposed (and the log still applies after a restart) can never match a request
        // waiting in this run.
        let incarnation = (now_ms().max(1) as u64) << 20;
        Proposals {
            next: incarnation,
            parked: HashMap::new(),
            awaited: HashMap::new(),
            outstanding,
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
        self.outstanding.set(self.parked.len());
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
            self.outstanding.set(self.parked.len());
            return Some(Waiter::Client(o));
        }
        self.awaited.remove(&proposal).map(Waiter::Caller)
    }

    /// Nothing proposed so far will be answered here (the leader or the quorum is gone, the
    /// state was replaced): the parked clients, to be let go. Awaiting callers hear that their
    /// txn may be lost.
    pub fn drain(&mut self) -> Vec<Origin> {
        self.awaited.clear();
        self.outstanding.set(0);
        self.parked.drain().map(|(_, o)| o).collect()
    }

    /// Client writes parked.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }
}
