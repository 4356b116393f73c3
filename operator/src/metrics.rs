//! The operator's own metrics: reconciles by Ensemble and result and how long they took, what
//! the last reconcile saw of each Ensemble (quorum, voters, ready members, leader, each
//! member's lag), backups and restores, and whether this replica leads. Every per-Ensemble
//! series is labelled `namespace` and `ensemble`.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An Ensemble, as its series are labelled.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub namespace: &'a str,
    pub ensemble: &'a str,
}

/// What the last reconcile saw of an Ensemble.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub has_quorum: bool,
    pub voters: i32,
    pub ready_members: i32,
    /// The leader's server id.
    pub leader: Option<i64>,
    /// Member pod -> entries behind the leader.
    pub lag: BTreeMap<String, i64>,
    /// Backups are configured.
    pub backups: bool,
}

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    reconciles: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
    has_quorum: IntGaugeVec,
    voters: IntGaugeVec,
    ready: IntGaugeVec,
    leader: IntGaugeVec,
    lag: IntGaugeVec,
    backups: IntCounterVec,
    last_backup: IntGaugeVec,
    restores: IntCounterVec,
    leading: IntGauge,
    /// The members each Ensemble's lag series were last set for: the series of members
    /// that left are removed, not left at their last value.
    lagging: Arc<Mutex<MembersByEnsemble>>,
}

/// (namespace, ensemble) -> member pods.
type MembersByEnsemble = BTreeMap<(String, String), BTreeSet<String>>;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const ENSEMBLE: &[&str] = &["namespace", "ensemble"];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let register = |c: Box<dyn prometheus::core::Collector>| {
            registry
                .register(c)
                .unwrap_or_else(|e| unreachable!("metrics registered once: {e}"));
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
            register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
            register(Box::new(g.clone()));
            g
        };
        let reconciles = counter(
            "zooid_operator_reconciles_total",
            "Reconciles, by Ensemble",
            ENSEMBLE,
        );
        let failures = counter(
            "zooid_operator_reconcile_errors_total",
            "Reconciles that failed, by Ensemble and kind of error",
            &["namespace", "ensemble", "error"],
        );
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "zooid_operator_reconcile_duration_seconds",
                "Time a reconcile took, by Ensemble",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            ENSEMBLE,
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        register(Box::new(duration.clone()));
        let has_quorum = gauge(
            "zooid_operator_ensemble_has_quorum",
            "1 while a quorum of the Ensemble's voters is ready",
            ENSEMBLE,
        );
        let voters = gauge(
            "zooid_operator_ensemble_voters",
            "Voting members in the live membership",
            ENSEMBLE,
        );
        let ready = gauge(
            "zooid_operator_ensemble_ready_members",
            "Member pods passing their readiness probe",
            ENSEMBLE,
        );
        let leader = gauge(
            "zooid_operator_ensemble_leader_server_id",
            "The leading member's server id (0: none leads)",
            ENSEMBLE,
        );
        let lag = gauge(
            "zooid_operator_member_lag",
            "Entries a member is behind its leader, by member pod",
            &["namespace", "ensemble", "member"],
        );
        let backups = counter(
            "zooid_operator_backups_total",
            "Backups tried, by Ensemble and result (success, failure)",
            &["namespace", "ensemble", "result"],
        );
        let last_backup = gauge(
            "zooid_operator_backup_last_success_timestamp_seconds",
            "When the Ensemble's last successful backup was taken (Unix time)",
            ENSEMBLE,
        );
        let restores = counter(
            "zooid_operator_restores_total",
            "Restores tried, by Ensemble and result (success, failure)",
            &["namespace", "ensemble", "result"],
        );
        let leading = IntGauge::new(
            "zooid_operator_leader",
            "1 while this replica holds the Lease and reconciles (always 1 without leader \
             election)",
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        register(Box::new(leading.clone()));
        Metrics {
            registry,
            reconciles,
            failures,
            duration,
            has_quorum,
            voters,
            ready,
            leader,
            lag,
            backups,
            last_backup,
            restores,
            leading,
            lagging: Arc::default(),
        }
    }

    /// A reconcile that took `took`, failed with an error of kind `error` if given.
    pub fn reconciled(&self, k: Key, took: Duration, error: Option<&str>) {
        let labels = [k.namespace, k.ensemble];
        self.reconciles.with_label_values(&labels).inc();
        self.duration
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
        // Every kind's series exists from the first reconcile on, at 0: a rate or an
        // increase over it then sees the first error.
        for kind in crate::reconcile::ERROR_KINDS {
            let series = self
                .failures
                .with_label_values(&[k.namespace, k.ensemble, kind]);
            if error == Some(*kind) {
                series.inc();
            }
        }
    }

    /// What the last reconcile saw of an Ensemble.
    pub fn ensemble(&self, k: Key, seen: &Seen) {
        let labels = [k.namespace, k.ensemble];
        self.has_quorum
            .with_label_values(&labels)
            .set(i64::from(seen.has_quorum));
        self.voters
            .with_label_values(&labels)
            .set(i64::from(seen.voters));
        self.ready
            .with_label_values(&labels)
            .set(i64::from(seen.ready_members));
        self.leader
            .with_label_values(&labels)
            .set(seen.leader.unwrap_or(0));
        if seen.backups {
            // Both results' series from the start, at 0 (see `reconciled`).
            for result in ["success", "failure"] {
                self.backups
                    .with_label_values(&[k.namespace, k.ensemble, result]);
            }
        }
        let mut lagging = self.lagging.lock().unwrap_or_else(|e| e.into_inner());
        let known = lagging
            .entry((k.namespace.to_string(), k.ensemble.to_string()))
            .or_default();
        for gone in known.iter().filter(|m| !seen.lag.contains_key(*m)) {
            let _ = self
                .lag
                .remove_label_values(&[k.namespace, k.ensemble, gone.as_str()]);
        }
        known.clear();
        for (member, lag) in &seen.lag {
            self.lag
                .with_label_values(&[k.namespace, k.ensemble, member])
                .set(*lag);
            known.insert(member.clone());
        }
    }

    /// A backup tried: taken at `taken_at` (Unix seconds) if it succeeded.
    pub fn backup(&self, k: Key, taken_at: Option<i64>) {
        let result = if taken_at.is_some() {
            "success"
        } else {
            "failure"
        };
        self.backups
            .with_label_values(&[k.namespace, k.ensemble, result])
            .inc();
        if let Some(t) = taken_at {
            self.last_backup
                .with_label_values(&[k.namespace, k.ensemble])
                .set(t);
        }
    }

    /// A restore tried.
    pub fn restore(&self, k: Key, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.restores
            .with_label_values(&[k.namespace, k.ensemble, result])
            .inc();
    }

    /// Whether this replica reconciles now.
    pub fn leading(&self, leading: bool) {
        self.leading.set(i64::from(leading));
    }

    /// The registry in Prometheus's text format.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_that_left_has_no_lag_series_left() {
        let m = Metrics::new();
        let k = Key {
            namespace: "prod",
            ensemble: "coord",
        };
        let mut seen = Seen {
            has_quorum: true,
            voters: 2,
            ready_members: 2,
            leader: Some(1),
            lag: BTreeMap::from([("coord-0".into(), 0), ("coord-1".into(), 3)]),
            backups: true,
        };
        m.ensemble(k, &seen);
        let text = m.text();
        assert!(text.contains(
            "zooid_operator_member_lag{ensemble=\"coord\",member=\"coord-1\",namespace=\"prod\"} 3"
        ));
        assert!(text.contains(
            "zooid_operator_ensemble_leader_server_id{ensemble=\"coord\",namespace=\"prod\"} 1"
        ));
        assert!(text.contains(
            "zooid_operator_backups_total{ensemble=\"coord\",namespace=\"prod\",result=\"failure\"} 0"
        ));
        seen.lag.remove("coord-1");
        m.ensemble(k, &seen);
        assert!(!m.text().contains("member=\"coord-1\""));
        m.reconciled(k, Duration::from_millis(5), Some("kube"));
        let text = m.text();
        assert!(
            text.contains("error=\"kube\",namespace=\"prod\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("error=\"incomplete\",namespace=\"prod\"} 0"),
            "{text}"
        );
    }
}
