//! The operator's dashboard and alerts (`dashboards/zooid-operator.json`,
//! `dashboards/operator-alerts.yaml`) against a real Prometheus scraping the operator while it
//! runs an Ensemble and backs it up: every panel's query, every template variable and every
//! alert's query returns data, and every rule loads and evaluates.

use crate::harness::{condition, eventually, settled, Operator, Scenario};
use std::sync::Arc;
use zooid_e2e::prometheus::{
    alert_queries, dashboard_queries, dashboards, variable_queries, Prometheus, Target,
};

/// Runs a blocking Prometheus call off the tests' one runtime thread (the node agent runs
/// there).
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn every_operator_panel_and_alert_query_returns_data() {
    let Some(mut s) = Scenario::start("dashboards").await else {
        return;
    };
    // An operator on a port Prometheus can be told.
    s.operator.kill();
    let port = zooid_e2e::apache::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let ns = s.ns.clone();
    let _operator = Operator::start_as(
        s.control_plane(),
        "operator-scraped",
        &["--listen", &listen, "--lease-namespace", &ns],
    );
    let folder = s.dir().join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    s.create(
        "coord",
        serde_json::json!({
            "image": "zooid:test", "replicas": 1,
            "backup": {"target": format!("file://{}", folder.display())},
        }),
    )
    .await;
    s.annotate("coord", "zooid.io/backup-request", "1").await;
    s.wait("coord", "settled and backed up", 120, false, |e| {
        settled(e, 1)
            && condition(e, "BackupFailing").as_deref() == Some("False")
            && e.status.as_ref().is_some_and(|s| s.last_backup.is_some())
    })
    .await;

    let work = s.dir().join("prometheus");
    std::fs::create_dir_all(&work).unwrap();
    let alerts = dashboards().join("operator-alerts.yaml");
    let target = Target {
        addr: listen.parse().unwrap(),
        job: "zooid-operator".into(),
        labels: vec![],
    };
    let prom = {
        let alerts = alerts.clone();
        Arc::new(off_thread(move || Prometheus::start(&work, &[alerts], &[target])).await)
    };
    let scraped = prom.clone();
    eventually("8 scrapes of the operator", 60, || {
        let p = scraped.clone();
        async move {
            off_thread(move || {
                p.query("count_over_time(up{job=\"zooid-operator\"}[1m]) >= 8")
                    .ok()
                    .filter(|r| !r.is_empty())
            })
            .await
        }
    })
    .await;

    let dashboard = dashboards().join("zooid-operator.json");
    let vars = [("namespace", ns.as_str()), ("ensemble", ".*")];
    let queries: Vec<String> = dashboard_queries(&dashboard, &vars)
        .into_iter()
        .chain(alert_queries(&alerts))
        .collect();
    assert!(queries.len() >= 15, "only {} queries found", queries.len());
    let variables = variable_queries(&dashboard, &vars);
    assert_eq!(variables.len(), 2, "{variables:?}");
    let p = prom.clone();
    let missing = off_thread(move || {
        let mut missing = p.missing(&queries);
        for (q, label) in &variables {
            match p.query(q) {
                Ok(r) if r.iter().any(|s| s["metric"][label].is_string()) => {}
                other => missing.push(format!("{q}: no {label} values: {other:?}")),
            }
        }
        missing
    })
    .await;
    assert!(
        missing.is_empty(),
        "queries failed:\n{}",
        missing.join("\n")
    );
    let p = prom.clone();
    eventually("every rule evaluated", 30, || {
        let p = p.clone();
        async move {
            off_thread(move || {
                let rules = p.rules();
                (rules.len() == 7 && rules.iter().all(|r| r["health"] == "ok")).then_some(())
            })
            .await
        }
    })
    .await;
}
