//! The server's monitoring figures under ZooKeeper's names, gathered once from the state and
//! shown three ways: `mntr` on the client port (with the `zk_` prefix), the admin API's
//! `monitor` command (JSON, without it, as ZooKeeper's AdminServer does) and `/metrics`
//! (Prometheus gauges named as ZooKeeper's Prometheus provider names them).

use crate::fourlw::VERSION;
use crate::state::State;

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
pub fn latency(state: &State) -> (u64, f64, u64) {
    let c = &state.counters;
    let avg = if c.latency_count == 0 {
        0.0
    } else {
        c.latency_total_ms as f64 / c.latency_count as f64
    };
    (c.latency_min_ms, avg, c.latency_max_ms)
}

/// Every figure, in `mntr`'s order, named without the `zk_` prefix.
pub fn values(state: &State) -> Vec<(&'static str, Value)> {
    let mut v = server(state);
    v.extend(log(state));
    v.extend(ensemble(state));
    v
}

/// The figures that are one value each (Prometheus gauges): all but the log's, which `mntr`
/// spells as the avg/min/max/cnt/sum of a summary.
pub fn gauges(state: &State) -> Vec<(&'static str, Value)> {
    let mut v = server(state);
    v.extend(ensemble(state));
    v
}

/// The server's own figures.
fn server(state: &State) -> Vec<(&'static str, Value)> {
    let (min, avg, max) = latency(state);
    vec![
        (
            "version",
            Value::Text(format!("{VERSION}, built on unknown")),
        ),
        ("server_state", Value::Text(state.mode().into())),
        ("avg_latency", Value::Float(avg)),
        ("max_latency", int(max)),
        ("min_latency", int(min)),
        ("packets_received", int(state.conns.packets_received())),
        ("packets_sent", int(state.conns.packets_sent())),
        ("num_alive_connections", int(state.conns.len())),
        ("outstanding_requests", int(state.outstanding())),
        ("znode_count", int(state.tree.node_count())),
        ("watch_count", int(state.watches.count())),
        ("ephemerals_count", int(state.tree.ephemeral_count())),
        (
            "approximate_data_size",
            int(state.tree.approximate_data_size()),
        ),
        ("global_sessions", int(state.sessions.count())),
    ]
}

/// The log's fsyncs and batch sizes, as ZooKeeper's summaries.
fn log(state: &State) -> Vec<(&'static str, Value)> {
    let mut v = Vec::new();
    if let Some(log) = state.log_stats() {
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
fn ensemble(state: &State) -> Vec<(&'static str, Value)> {
    let mut v = Vec::new();
    if let Some(f) = state.followers() {
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
