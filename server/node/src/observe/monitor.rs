//! The server's monitoring figures under ZooKeeper's names, gathered once from the state and
//! shown three ways: `mntr` on the client port (with the `zk_` prefix), the admin API's
//! `monitor` command (JSON, without it, as ZooKeeper's AdminServer does) and `/metrics`
//! (Prometheus gauges named as ZooKeeper's Prometheus provider names them).

use crate::state::role::Role;
use crate::state::State;
use std::time::Duration;
use zooid_replication::Consensus;

/// Request latency since start in whole milliseconds, as `srvr`, `stat` and `mntr` report
/// it (min / avg / max). Kept under the state's lock by the runtime, which records each
/// answered request there: no atomic shared by every request.
#[derive(Debug, Default)]
pub struct Latency {
    total_ms: u64,
    count: u64,
    min_ms: u64,
    max_ms: u64,
}

impl Latency {
    pub fn record(&mut self, elapsed: Duration) {
        let ms = elapsed.as_millis() as u64;
        if self.count == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        self.count += 1;
    }

    /// (min, avg, max) in milliseconds; all 0 before the first request.
    pub fn figures(&self) -> (u64, f64, u64) {
        if self.count == 0 {
            return (0, 0.0, 0);
        }
        (
            self.min_ms,
            self.total_ms as f64 / self.count as f64,
            self.max_ms,
        )
    }
}

/// What the figures are read from, at one moment: the state (locked), the consensus layer and
/// what was recorded as it happened.
pub struct View<'a> {
    pub state: &'a State,
    pub consensus: Option<&'a Consensus>,
    /// Request latency since start.
    pub latency: &'a Latency,
    /// Since when the server runs.
    pub uptime: Duration,
    /// `/readyz`'s answer, taken just before.
    pub ready: bool,
    /// Reply bytes queued for clients that have not read them yet.
    pub queued_bytes: usize,
}

impl View<'_> {
    /// The consensus layer, in an ensemble (a standalone server has one of its own, which no
    /// figure of ZooKeeper's shows).
    pub fn replicated(&self) -> Option<&Consensus> {
        self.consensus
            .filter(|_| self.state.position().role() != Role::Standalone)
    }
}

/// The version clients see; kazoo and monitoring tools parse the leading `x.y.z`.
pub const VERSION: &str = concat!("3.9.0-zooid-", env!("CARGO_PKG_VERSION"));

/// One figure's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    /// The value as a Prometheus sample; text has none.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(_) => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:.4}"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Text(t) => s.serialize_str(t),
        }
    }
}

fn int(n: impl TryInto<i64>) -> Value {
    Value::Int(n.try_into().unwrap_or(i64::MAX))
}

/// Request latency since start, in milliseconds: (min, avg, max).
pub fn latency(view: &View) -> (u64, f64, u64) {
    view.latency.figures()
}

/// Every figure, in `mntr`'s order, named without the `zk_` prefix.
pub fn values(view: &View) -> Vec<(&'static str, Value)> {
    let mut v = server(view);
    v.extend(log(view));
    v.extend(ensemble(view));
    v
}

/// The figures that are one value each (Prometheus gauges): all but the log's, which `mntr`
/// spells as the avg/min/max/cnt/sum of a summary.
pub fn gauges(view: &View) -> Vec<(&'static str, Value)> {
    let mut v = server(view);
    v.extend(ensemble(view));
    v
}

/// The server's own figures.
fn server(view: &View) -> Vec<(&'static str, Value)> {
    let state = view.state;
    let (min, avg, max) = latency(view);
    vec![
        (
            "version",
            Value::Text(format!("{VERSION}, built on unknown")),
        ),
        ("server_state", Value::Text(state.mode().into())),
        ("avg_latency", Value::Float(avg)),
        ("max_latency", int(max)),
        ("min_latency", int(min)),
        ("packets_received", int(state.conns().packets_received())),
        ("packets_sent", int(state.conns().packets_sent())),
        ("num_alive_connections", int(state.conns().len())),
        ("outstanding_requests", int(state.outstanding())),
        ("znode_count", int(state.tree().node_count())),
        ("watch_count", int(state.watches().count())),
        ("ephemerals_count", int(state.tree().ephemeral_count())),
        (
            "approximate_data_size",
            int(state.tree().approximate_data_size()),
        ),
        ("global_sessions", int(state.sessions().count())),
    ]
}

/// The log's fsyncs and batch sizes, as ZooKeeper's summaries.
fn log(view: &View) -> Vec<(&'static str, Value)> {
    let mut v = Vec::new();
    if let Some(log) = view.consensus.map(|c| c.log_stats()) {
        let f = &log.fsyncs;
        let b = &log.batches;
        let avg = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        // Milliseconds, as ZooKeeper reports them. raft-log keeps no minimum fsync time, so
        // `min_fsynctime` is left out rather than made up.
        v.extend([
            (
                "avg_fsynctime",
                Value::Float(avg(f.total_us as f64 / 1000.0, f.count)),
            ),
            ("max_fsynctime", int(f.max_us / 1000)),
            ("cnt_fsynctime", int(f.count)),
            ("sum_fsynctime", int(f.total_us / 1000)),
            (
                "avg_sync_processor_batch_size",
                Value::Float(avg(b.commands as f64, b.entries)),
            ),
            ("min_sync_processor_batch_size", int(b.min)),
            ("max_sync_processor_batch_size", int(b.max)),
            ("cnt_sync_processor_batch_size", int(b.entries)),
            ("sum_sync_processor_batch_size", int(b.commands)),
        ]);
    }
    v
}

/// The leader's view of the ensemble (a leader's only, as in ZooKeeper).
fn ensemble(view: &View) -> Vec<(&'static str, Value)> {
    let mut v = Vec::new();
    if let Some(f) = view.replicated().and_then(|c| c.followers()) {
        v.extend([
            ("learners", int(f.followers + f.observers)),
            ("followers", int(f.followers)),
            ("synced_followers", int(f.synced_followers)),
            ("synced_observers", int(f.synced_observers)),
            // Zooid has no sync phase: a follower catches up through the log or a snapshot.
            ("pending_syncs", int(0)),
        ]);
    }
    v
}
