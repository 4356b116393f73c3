//! Prometheus metrics. Figures the state already holds (node counts, sessions, the log's
//! fsyncs, the leader's view of its followers) are read when scraped, under the names of
//! ZooKeeper's Prometheus provider, so that dashboards built for ZooKeeper keep working; what
//! only happens in passing (a request's latency, a connection refused or closed by a limit) is
//! recorded here as it happens.

use crate::observe::monitor::View;
use hdrhistogram::Histogram as Hdr;
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latency of one request kind over a sliding window, reported as ZooKeeper's Prometheus
/// provider reports its summaries: quantiles (of the last one to two minutes), with a count
/// and a sum since start.
pub struct WindowedSummary {
    inner: Mutex<Window>,
}

struct Window {
    current: Hdr<u64>,
    previous: Hdr<u64>,
    rotated: Instant,
    count: u64,
    sum: f64,
}

/// How long a window lasts; quantiles cover the current and the previous one.
const WINDOW: Duration = Duration::from_secs(60);

/// The quantiles reported, as ZooKeeper's summaries do.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

impl Default for WindowedSummary {
    fn default() -> Self {
        // Three significant figures, auto-resizing: a few KiB, whatever the values.
        let hdr = || Hdr::new(3).unwrap_or_else(|_| unreachable!("3 significant figures"));
        WindowedSummary {
            inner: Mutex::new(Window {
                current: hdr(),
                previous: hdr(),
                rotated: Instant::now(),
                count: 0,
                sum: 0.0,
            }),
        }
    }
}

impl WindowedSummary {
    /// Records one value (in the summary's unit).
    pub fn record(&self, value: f64) {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        w.rotate(Instant::now());
        // Kept in thousandths, so that sub-unit values (fractions of a millisecond) count.
        let _ = w.current.record((value.max(0.0) * 1000.0) as u64);
        w.count += 1;
        w.sum += value;
    }

    fn family(&self, name: &str, help: &str) -> MetricFamily {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        w.rotate(Instant::now());
        let mut both = w.previous.clone();
        let _ = both.add(&w.current);
        let quantiles = QUANTILES
            .iter()
            .map(|q| {
                let mut out = proto::Quantile::default();
                out.set_quantile(*q);
                let v = if both.is_empty() {
                    f64::NAN
                } else {
                    both.value_at_quantile(*q) as f64 / 1000.0
                };
                out.set_value(v);
                out
            })
            .collect();
        let mut s = proto::Summary::default();
        s.set_sample_count(w.count);
        s.set_sample_sum(w.sum);
        s.set_quantile(quantiles);
        let mut m = proto::Metric::default();
        m.set_summary(s);
        family(name, help, MetricType::SUMMARY, vec![m])
    }
}

impl Window {
    fn rotate(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.rotated);
        if age < WINDOW {
            return;
        }
        if age >= 2 * WINDOW {
            self.previous.reset();
        } else {
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        self.current.reset();
        self.rotated = now;
    }
}

/// What the server records as it runs.
pub struct Metrics {
    registry: Registry,
    /// Per opcode, from the request's arrival to its reply being queued (a write's when it
    /// is applied here).
    request_seconds: HistogramVec,
    /// Connections refused or closed by a limit, by limit.
    limited: IntCounterVec,
    /// TLS material read again after its files changed, by result.
    tls_reloads: IntCounterVec,
    /// ZooKeeper's `readlatency` and `updatelatency`, in milliseconds.
    pub read_latency: WindowedSummary,
    pub update_latency: WindowedSummary,
    /// ZooKeeper's `election_time`: milliseconds from losing a leader to knowing the next.
    pub election_time: WindowedSummary,
    /// ZooKeeper's `looking_count`: times this member was left without a leader.
    pub looking: prometheus::IntCounter,
    /// Leaders this member came to know, by cause.
    leader_changes: IntCounterVec,
    /// ZooKeeper's `restore_time`: milliseconds the admin API's restores took, upload included.
    pub restore_time: WindowedSummary,
    /// ZooKeeper's `restore_error_count` and `snapshot_error_count`: admin `restore` and
    /// `snapshot` commands that failed (refused for their token not counted).
    pub restore_errors: prometheus::IntCounter,
    pub snapshot_errors: prometheus::IntCounter,
    started: Instant,
}

/// Why a connection was refused or closed by a limit (the `limit` label).
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// `maxClientCnxns`: too many connections from one address.
    ClientConnections,
    /// `maxCnxns`, or the ceiling the open-files limit sets: too many connections in all.
    ServerConnections,
    /// No ConnectRequest within the handshake timeout.
    Handshake,
    /// The client's unread replies grew past the outbound limit.
    Outbound,
    /// The client read nothing for the slow-client timeout.
    SlowClient,
    /// A new session waited past the handshake timeout for room under
    /// `globalOutstandingLimit`.
    GlobalOutstanding,
}

impl Limit {
    fn label(self) -> &'static str {
        match self {
            Limit::ClientConnections => "max_client_cnxns",
            Limit::ServerConnections => "max_cnxns",
            Limit::Handshake => "handshake_timeout",
            Limit::Outbound => "max_conn_outbound_bytes",
            Limit::SlowClient => "slow_client_timeout",
            Limit::GlobalOutstanding => "global_outstanding_limit",
        }
    }
}

/// Why this member's leader changed (the `cause` label).
#[derive(Debug, Clone, Copy)]
pub enum LeaderChange {
    Election,
    HandOver,
    Lost,
}

impl LeaderChange {
    const ALL: [LeaderChange; 3] = [
        LeaderChange::Election,
        LeaderChange::HandOver,
        LeaderChange::Lost,
    ];

    fn label(self) -> &'static str {
        match self {
            LeaderChange::Election => "election",
            LeaderChange::HandOver => "hand_over",
            LeaderChange::Lost => "lost",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        // From 50 µs (a local read) to 10 s (a write waiting out an election).
        let buckets = vec![
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
            0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "zooid_request_duration_seconds",
                "Time from a request's arrival to its reply, by opcode",
            )
            .buckets(buckets),
            &["op"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let limited = IntCounterVec::new(
            Opts::new(
                "zooid_connections_limited_total",
                "Client connections refused or closed by a limit, by limit",
            ),
            &["limit"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let looking = prometheus::IntCounter::new(
            "looking_count",
            "Times this member was left without a leader",
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let leader_changes = IntCounterVec::new(
            Opts::new(
                "zooid_leader_changes_total",
                "Leader changes this member saw, by cause: election (a member stood after the \
                 leader went silent), hand_over (a leader stopping handed over), lost (this \
                 member was left without a leader)",
            ),
            &["cause"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "zooid_tls_reloads_total",
                "TLS key and trust stores read again after their files changed, by port \
                 (client, quorum, admin) and result: loaded (new connections use them) or \
                 refused (the old material stays; the log says why)",
            ),
            &["port", "result"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let counter = |name: &str, help: &str| {
            prometheus::IntCounter::new(name, help)
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"))
        };
        let restore_errors = counter(
            "restore_error_count",
            "Admin restore commands that failed (nothing was restored)",
        );
        let snapshot_errors = counter(
            "snapshot_error_count",
            "Admin snapshot commands that failed",
        );
        for c in [
            Box::new(request_seconds.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(limited.clone()),
            Box::new(looking.clone()),
            Box::new(leader_changes.clone()),
            Box::new(restore_errors.clone()),
            Box::new(snapshot_errors.clone()),
            Box::new(tls_reloads.clone()),
        ] {
            registry
                .register(c)
                .unwrap_or_else(|e| unreachable!("distinct metric names: {e}"));
        }
        // Every limit's series exists from the start, at 0, so that rate() sees the first.
        for l in [
            Limit::ClientConnections,
            Limit::ServerConnections,
            Limit::Handshake,
            Limit::Outbound,
            Limit::SlowClient,
            Limit::GlobalOutstanding,
        ] {
            limited.with_label_values(&[l.label()]);
        }
        for cause in LeaderChange::ALL {
            leader_changes.with_label_values(&[cause.label()]);
        }
        for port in ["client", "quorum", "admin"] {
            for result in ["loaded", "refused"] {
                tls_reloads.with_label_values(&[port, result]);
            }
        }
        Metrics {
            registry,
            request_seconds,
            limited,
            tls_reloads,
            read_latency: WindowedSummary::default(),
            update_latency: WindowedSummary::default(),
            election_time: WindowedSummary::default(),
            looking,
            leader_changes,
            restore_time: WindowedSummary::default(),
            restore_errors,
            snapshot_errors,
            started: Instant::now(),
        }
    }

    pub fn leader_changed(&self, cause: LeaderChange) {
        self.leader_changes
            .with_label_values(&[cause.label()])
            .inc();
    }

    /// A request answered `elapsed` after it arrived.
    pub fn request(&self, op: &str, write: bool, elapsed: Duration) {
        self.request_seconds
            .with_label_values(&[op])
            .observe(elapsed.as_secs_f64());
        let ms = elapsed.as_secs_f64() * 1000.0;
        if write {
            self.update_latency.record(ms);
        } else {
            self.read_latency.record(ms);
        }
    }

    /// `port`'s TLS material read again: `loaded` or not.
    pub fn tls_reloaded(&self, port: &str, loaded: bool) {
        let result = if loaded { "loaded" } else { "refused" };
        self.tls_reloads.with_label_values(&[port, result]).inc();
    }

    /// A connection refused or closed by `limit`.
    pub fn limited(&self, limit: Limit) {
        self.limited.with_label_values(&[limit.label()]).inc();
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The families recorded here, with `gauges` read from the state, in Prometheus's text
    /// format.
    pub fn render(&self, mut families: Vec<MetricFamily>) -> String {
        families.extend(self.registry.gather());
        families.push(
            self.read_latency
                .family("readlatency", "Read request latency (ms)"),
        );
        families.push(
            self.update_latency
                .family("updatelatency", "Write request latency (ms), to the reply"),
        );
        families.push(self.election_time.family(
            "election_time",
            "Time without a leader before the next one was known (ms)",
        ));
        families.push(self.restore_time.family(
            "restore_time",
            "Time admin restores took, upload included (ms)",
        ));
        // The encoder refuses a family without samples (a leader's per-follower lag on a
        // single server).
        families.retain(|f| !f.get_metric().is_empty());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&families, &mut out) {
            tracing::error!("encoding the metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

/// A gauge family with one unlabelled sample.
pub fn gauge(name: &str, help: &str, value: f64) -> MetricFamily {
    gauge_with(name, help, "", vec![(String::new(), value)])
}

/// A gauge family with one sample per value of `label` (none if `values` is empty).
pub fn gauge_with(name: &str, help: &str, label: &str, values: Vec<(String, f64)>) -> MetricFamily {
    labelled(name, help, MetricType::GAUGE, label, values)
}

/// A counter family with one unlabelled sample (a total the state keeps).
pub fn counter(name: &str, help: &str, value: f64) -> MetricFamily {
    counter_with(name, help, "", vec![(String::new(), value)])
}

/// A counter family with one sample per value of `label`.
pub fn counter_with(
    name: &str,
    help: &str,
    label: &str,
    values: Vec<(String, f64)>,
) -> MetricFamily {
    labelled(name, help, MetricType::COUNTER, label, values)
}

fn labelled(
    name: &str,
    help: &str,
    kind: MetricType,
    label: &str,
    values: Vec<(String, f64)>,
) -> MetricFamily {
    let metrics = values
        .into_iter()
        .map(|(l, v)| {
            let mut m = proto::Metric::default();
            if kind == MetricType::COUNTER {
                let mut c = proto::Counter::default();
                c.set_value(v);
                m.set_counter(c);
            } else {
                let mut g = proto::Gauge::default();
                g.set_value(v);
                m.set_gauge(g);
            }
            if !label.is_empty() {
                let mut pair = proto::LabelPair::default();
                pair.set_name(label.to_string());
                pair.set_value(l);
                m.set_label(vec![pair]);
            }
            m
        })
        .collect();
    family(name, help, kind, metrics)
}

/// The figures the state holds, read at scrape time: ZooKeeper's gauges (the numeric `mntr`
/// values but the log's, under the same names without `zk_`), its summaries of the log's fsyncs and batch
/// sizes, and Zooid's own figures of Raft, the limits and the process.
pub fn state_families(view: &View) -> Vec<MetricFamily> {
    let state = view.state;
    let mut out = Vec::new();
    for (name, value) in crate::observe::monitor::gauges(view) {
        if let Some(v) = value.as_f64() {
            out.push(gauge(name, &format!("ZooKeeper's {name}"), v));
        }
    }
    if let Some(log) = view.consensus.map(|c| c.log_stats()) {
        out.push(summary_totals(
            "fsynctime",
            "Log fsync time (ms)",
            log.fsyncs.count,
            log.fsyncs.total_us as f64 / 1000.0,
        ));
        out.push(summary_totals(
            "sync_processor_batch_size",
            "Commands per log entry written",
            log.batches.entries,
            log.batches.commands as f64,
        ));
    }
    out.push(gauge(
        "uptime",
        "Milliseconds since the server started",
        view.uptime.as_millis() as f64,
    ));
    if let Some(t) = state.leading_for() {
        out.push(gauge(
            "leader_uptime",
            "Milliseconds since this member became leader",
            t.as_millis() as f64,
        ));
    }
    if let Some(members) = view.replicated().map(|c| c.members()) {
        let voters = members.members.iter().filter(|m| m.voter).count();
        out.push(gauge("quorum_size", "Voting members", voters as f64));
    }
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    out.push(gauge(
        "zooid_serving",
        "1 while this member serves clients (in a quorum, or read-only)",
        flag(state.serving() || state.read_only()),
    ));
    out.push(gauge(
        "zooid_ready",
        "1 while /readyz says ready: in a quorum, caught up, read-write",
        flag(view.ready),
    ));
    out.push(gauge(
        "zooid_read_only",
        "1 while serving read-only clients only",
        flag(state.read_only()),
    ));
    out.push(gauge(
        "zooid_is_leader",
        "1 on the member that orders writes",
        flag(state.leads()),
    ));
    if let Some(f) = view.consensus.map(|c| c.figures()) {
        out.push(gauge("zooid_raft_term", "Current Raft term", f.term as f64));
        out.push(gauge(
            "zooid_raft_last_log_index",
            "Index of the last entry in this member's log",
            f.last_log_index as f64,
        ));
        out.push(gauge(
            "zooid_raft_applied_index",
            "Index of the last entry applied here",
            f.applied_index as f64,
        ));
        out.push(gauge(
            "zooid_raft_commit_index",
            "Commit index a quorum last confirmed to this member",
            f.quorum_index.max(f.applied_index) as f64,
        ));
        out.push(gauge(
            "zooid_raft_snapshot_index",
            "Index the newest snapshot covers",
            f.snapshot_index as f64,
        ));
        out.push(gauge(
            "zooid_apply_lag",
            "Committed entries not applied here yet",
            f.apply_lag() as f64,
        ));
        // Only the leader knows every member's progress.
        out.push(gauge_with(
            "zooid_follower_lag",
            "Entries of the leader's log a member has not replicated (on the leader)",
            "server_id",
            f.matched
                .iter()
                .map(|(id, m)| (id.to_string(), f.last_log_index.saturating_sub(*m) as f64))
                .collect(),
        ));
    }
    if let Some(c) = view.replicated() {
        let e = c.election_stats();
        for (name, help, value) in [
            (
                "zooid_elections_started_total",
                "Elections this member started (its term raised), hand-overs included",
                e.elections_started,
            ),
            (
                "zooid_pre_votes_won_total",
                "Pre-votes a quorum granted this member (each followed by an election)",
                e.pre_votes_won,
            ),
            (
                "zooid_pre_votes_lost_total",
                "Pre-votes of this member without a quorum (its term left alone)",
                e.pre_votes_lost,
            ),
            (
                "zooid_pre_votes_refused_total",
                "Other members' pre-votes this member refused (it heard from a live leader, or its log was ahead)",
                e.pre_votes_refused,
            ),
            (
                "zooid_votes_withheld_total",
                "Votes and pre-votes refused because this member started without data among members that went on, and had not caught up with a leader yet",
                e.votes_withheld,
            ),
        ] {
            out.push(counter(name, help, value as f64));
        }
        out.push(counter_with(
            "zooid_peer_deadline_misses_total",
            "Requests to another member (heartbeats, appends, votes, read-index confirmations, forwards) that got no answer within their deadline",
            "server_id",
            c.peer_deadline_misses()
                .into_iter()
                .map(|(id, n)| (id.to_string(), n as f64))
                .collect(),
        ));
    }
    out.push(counter(
        "zooid_sessions_expired_total",
        "Sessions this member expired (as the leader, or read-only ones it held) since start",
        state.sessions_expired() as f64,
    ));
    out.push(gauge(
        "zooid_restore_staged_bytes",
        "Bytes of a backup being restored that this member holds until the swap (0 when none)",
        state.tree().staged_restore().map_or(0, |s| s.len()) as f64,
    ));
    out.push(gauge(
        "zooid_outbound_queued_bytes",
        "Reply bytes queued for clients that have not read them yet",
        view.queued_bytes as f64,
    ));
    if let Some(n) = open_fds() {
        out.push(gauge(
            "open_file_descriptor_count",
            "File descriptors open",
            n as f64,
        ));
    }
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        out.push(gauge(
            "max_file_descriptor_count",
            "File descriptors the process may open",
            soft as f64,
        ));
    }
    out
}

/// The data disk: what the data and log directories hold, and the room left on their
/// file systems (read without the state's lock: it walks the directories).
pub fn disk_families(config: &crate::config::Config) -> Vec<MetricFamily> {
    let log_dir = config.data_log_dir.as_ref().unwrap_or(&config.data_dir);
    let mut dirs = vec![("data", config.data_dir.as_path())];
    if log_dir != &config.data_dir {
        dirs.push(("log", log_dir.as_path()));
    }
    let mut size = Vec::new();
    let mut free = Vec::new();
    let mut total = Vec::new();
    for (name, dir) in dirs {
        size.push((name.to_string(), dir_size(dir) as f64));
        if let Ok(fs) = rustix::fs::statvfs(dir) {
            let block = fs.f_frsize as f64;
            free.push((name.to_string(), fs.f_bavail as f64 * block));
            total.push((name.to_string(), fs.f_blocks as f64 * block));
        }
    }
    vec![
        gauge_with(
            "zooid_dir_size_bytes",
            "Bytes of the files in the data (snapshots) and log directories",
            "dir",
            size,
        ),
        gauge_with(
            "zooid_dir_free_bytes",
            "Bytes left to unprivileged writers on the directory's file system",
            "dir",
            free,
        ),
        gauge_with(
            "zooid_dir_total_bytes",
            "Size of the directory's file system",
            "dir",
            total,
        ),
    ]
}

/// Bytes of the files in `dir` and below (0 if it cannot be read).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// A summary with only its totals (the state keeps no window to take quantiles from).
fn summary_totals(name: &str, help: &str, count: u64, sum: f64) -> MetricFamily {
    let mut s = proto::Summary::default();
    s.set_sample_count(count);
    s.set_sample_sum(sum);
    let mut m = proto::Metric::default();
    m.set_summary(s);
    family(name, help, MetricType::SUMMARY, vec![m])
}

/// Open file descriptors, where the system says (Linux's /proc).
fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_report_quantiles_of_the_window_and_totals_since_start() {
        let s = WindowedSummary::default();
        for v in 1..=100 {
            s.record(v as f64);
        }
        let f = s.family("readlatency", "x");
        let summary = f.get_metric()[0].get_summary();
        assert_eq!(summary.sample_count(), 100);
        assert_eq!(summary.sample_sum(), 5050.0);
        let q: Vec<f64> = summary.get_quantile().iter().map(|q| q.value()).collect();
        assert!((q[0] - 50.0).abs() < 0.5, "{q:?}");
        assert!((q[2] - 99.0).abs() < 0.5, "{q:?}");
        // Two windows later, the quantiles have nothing to show; the totals stay.
        s.inner.lock().unwrap().rotate(Instant::now() + 2 * WINDOW);
        let f = s.family("readlatency", "x");
        let summary = f.get_metric()[0].get_summary();
        assert_eq!(summary.sample_count(), 100);
        assert!(summary.get_quantile()[0].value().is_nan());
    }

    #[test]
    fn rendering_names_every_family_once() {
        let m = Metrics::new();
        m.request("create", true, Duration::from_millis(3));
        m.request("getData", false, Duration::from_micros(200));
        m.limited(Limit::Outbound);
        let text = m.render(vec![gauge("znode_count", "Nodes", 5.0)]);
        assert!(text.contains("\nznode_count 5\n"), "{text}");
        assert!(
            text.contains("zooid_request_duration_seconds_count{op=\"create\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("zooid_connections_limited_total{limit=\"max_conn_outbound_bytes\"} 1"),
            "{text}"
        );
        assert!(text.contains("updatelatency_count 1"), "{text}");
        assert!(text.contains("readlatency{quantile=\"0.5\"} 0.2"), "{text}");
        // A family without samples is left out rather than failing the whole page.
        let text = m.render(vec![gauge_with(
            "zooid_follower_lag",
            "x",
            "server_id",
            vec![],
        )]);
        assert!(!text.contains("zooid_follower_lag"), "{text}");
        assert!(
            text.contains("zooid_request_duration_seconds_count"),
            "{text}"
        );
    }
}
