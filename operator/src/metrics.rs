//! The operator's own metrics: reconciles by Ensemble and result, and how long they took.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::time::Duration;

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    reconciles: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
    has_quorum: IntGaugeVec,
    voters: IntGaugeVec,
    backups: IntCounterVec,
    last_backup: IntGaugeVec,
    restores: IntCounterVec,
    leader: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new("zooid_operator_reconciles_total", "Reconciles, by Ensemble"),
            &["ensemble"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let failures = IntCounterVec::new(
            Opts::new(
                "zooid_operator_reconcile_errors_total",
                "Reconciles that failed, by Ensemble and kind of error",
            ),
            &["ensemble", "error"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "zooid_operator_reconcile_duration_seconds",
                "Time a reconcile took, by Ensemble",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["ensemble"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let has_quorum = IntGaugeVec::new(
            Opts::new(
                "zooid_operator_ensemble_has_quorum",
                "1 while a quorum of the Ensemble's voters is ready, by Ensemble",
            ),
            &["ensemble"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let voters = IntGaugeVec::new(
            Opts::new(
                "zooid_operator_ensemble_voters",
                "Voting members in the live membership, by Ensemble",
            ),
            &["ensemble"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let backups = IntCounterVec::new(
            Opts::new(
                "zooid_operator_backups_total",
                "Backups tried, by Ensemble and result (success, failure)",
            ),
            &["ensemble", "result"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let last_backup = IntGaugeVec::new(
            Opts::new(
                "zooid_operator_backup_last_success_timestamp_seconds",
                "When the Ensemble's last successful backup was taken (Unix time)",
            ),
            &["ensemble"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let restores = IntCounterVec::new(
            Opts::new(
                "zooid_operator_restores_total",
                "Restores tried, by Ensemble and result (success, failure)",
            ),
            &["ensemble", "result"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let leader = IntGauge::new(
            "zooid_operator_leader",
            "1 while this replica holds the Lease and reconciles (always 1 without leader \
             election)",
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        for c in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(has_quorum.clone()),
            Box::new(voters.clone()),
            Box::new(backups.clone()),
            Box::new(last_backup.clone()),
            Box::new(restores.clone()),
            Box::new(leader.clone()),
        ] {
            registry
                .register(c)
                .unwrap_or_else(|e| unreachable!("metrics registered once: {e}"));
        }
        Metrics {
            registry,
            reconciles,
            failures,
            duration,
            has_quorum,
            voters,
            backups,
            last_backup,
            restores,
            leader,
        }
    }

    /// Whether this replica reconciles now.
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A backup of `ensemble` tried: taken at `unix_time` if it succeeded.
    pub fn backup(&self, ensemble: &str, taken_at: Option<i64>) {
        let result = if taken_at.is_some() {
            "success"
        } else {
            "failure"
        };
        self.backups.with_label_values(&[ensemble, result]).inc();
        if let Some(t) = taken_at {
            self.last_backup.with_label_values(&[ensemble]).set(t);
        }
    }

    /// A restore of `ensemble` tried.
    pub fn restore(&self, ensemble: &str, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.restores.with_label_values(&[ensemble, result]).inc();
    }

    /// A reconcile of `ensemble` that took `took`, failed with an error of kind `error` if
    /// given.
    pub fn reconciled(&self, ensemble: &str, took: Duration, error: Option<&str>) {
        self.reconciles.with_label_values(&[ensemble]).inc();
        self.duration
            .with_label_values(&[ensemble])
            .observe(took.as_secs_f64());
        if let Some(kind) = error {
            self.failures.with_label_values(&[ensemble, kind]).inc();
        }
    }

    /// What the last reconcile saw of `ensemble`.
    pub fn ensemble(&self, ensemble: &str, has_quorum: bool, voters: i32) {
        self.has_quorum
            .with_label_values(&[ensemble])
            .set(i64::from(has_quorum));
        self.voters
            .with_label_values(&[ensemble])
            .set(i64::from(voters));
    }

    /// The registry in Prometheus's text format.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}
