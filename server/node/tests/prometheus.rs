//! The dashboards and alerts in `dashboards/` against a real Prometheus (Debian's, started
//! here on loopback) scraping a 3-member ensemble under load: every query of a dashboard
//! panel and of an alert returns data, the alert rules load and evaluate, and promtool checks
//! the rules and runs their unit tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble;
use common::RawClient;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zooid_e2e::prometheus::{
    alert_queries, dashboard_queries, dashboards, tool, variable_queries, Prometheus, Target,
};
use zooid_e2e::wait::wait_until;
use zooid_proto::*;

#[test]
fn promtool_checks_the_rules_and_runs_their_unit_tests() {
    for args in [
        vec!["check", "rules", "alerts.yaml", "operator-alerts.yaml"],
        vec![
            "test",
            "rules",
            "alerts.test.yaml",
            "operator-alerts.test.yaml",
        ],
    ] {
        let out = tool("promtool")
            .args(&args)
            .current_dir(dashboards())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_dashboard_and_alert_query_returns_data_from_a_scraped_ensemble() {
    let root = tempfile::tempdir().unwrap();
    let members = ensemble::start(root.path());
    ensemble::settled(&members, Duration::from_secs(10));
    let targets: Vec<Target> = members
        .iter()
        .map(|m| Target {
            addr: m.admin,
            job: "zooid".into(),
            labels: vec![
                ("namespace".into(), "test".into()),
                ("pod".into(), format!("zooid-{}", m.id - 1)),
            ],
        })
        .collect();
    let prom = Prometheus::start(root.path(), &[dashboards().join("alerts.yaml")], &targets);

    // Load on every member: writes, reads, a watch and an ephemeral node each.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = members
        .iter()
        .map(|m| {
            let (addr, id, stop) = (m.client, m.id, stop.clone());
            std::thread::spawn(move || {
                let mut c = RawClient::connect(addr);
                c.create(&format!("/eph{id}"), b"", CreateMode::Ephemeral.flags())
                    .unwrap();
                c.get(&format!("/eph{id}"), true).unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    c.create(&format!("/load-{id}-{i}"), &[0; 512], 0).unwrap();
                    c.get(&format!("/load-{id}-{i}"), false).unwrap();
                    i += 1;
                }
                c
            })
        })
        .collect();
    // Enough scrapes of every member for rates over 15 s.
    wait_until("8 scrapes of every member", Duration::from_secs(60), || {
        prom.query("count(count_over_time(up{job=\"zooid\"}[1m]) >= 8)")
            .is_ok_and(|r| r.len() == 1 && r[0]["value"][1] == "3")
    });
    let dashboard = dashboards().join("zooid.json");
    let vars = [("namespace", "test"), ("pod", ".*")];
    let queries: Vec<String> = dashboard_queries(&dashboard, &vars)
        .into_iter()
        .chain(alert_queries(&dashboards().join("alerts.yaml")))
        .collect();
    assert!(queries.len() >= 40, "only {} queries found", queries.len());
    let mut missing = prom.missing(&queries);
    // The namespace and pod pickers find the scraped targets.
    let variables = variable_queries(&dashboard, &vars);
    assert_eq!(variables.len(), 2, "{variables:?}");
    for (q, label) in &variables {
        match prom.query(q) {
            Ok(r) if r.iter().any(|s| s["metric"][label].is_string()) => {}
            other => missing.push(format!("{q}: no {label} values: {other:?}")),
        }
    }
    // The rules loaded, and every one has been evaluated without error.
    wait_until("every rule evaluated", Duration::from_secs(30), || {
        let rules = prom.rules();
        rules.len() == 11 && rules.iter().all(|r| r["health"] == "ok")
    });
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(
        missing.is_empty(),
        "{} of {} queries failed:\n{}",
        missing.len(),
        queries.len(),
        missing.join("\n")
    );
}
