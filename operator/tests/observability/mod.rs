//! The operator observed as its users observe it, while it runs an Ensemble and backs it up:
//! its dashboard and alerts (`dashboards/zooid-operator.json`,
//! `dashboards/operator-alerts.yaml`) against a real Prometheus scraping it (every panel's
//! query, every template variable and every alert's query returns data, every rule loads and
//! evaluates), and its traces over OTLP (a span per reconcile, its stages under it).

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
    let otlp = zooid_e2e::otlp::Receiver::start();
    let endpoint = format!("http://{}", otlp.addr);
    let _operator = Operator::start_as(
        s.control_plane(),
        "operator-scraped",
        &["--listen", &listen, "--lease-namespace", &ns],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            // Export every 100 ms rather than every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    // Its probes: alive, and ready while the API server answers it.
    for probe in ["/healthz", "/readyz"] {
        let url = format!("http://{listen}{probe}");
        let status = crate::harness::eventually(probe, 30, || async {
            reqwest::get(&url).await.ok().map(|r| r.status())
        })
        .await;
        assert_eq!(status, 200, "{probe}");
    }
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

    // Traces: reconciles of this Ensemble, each with what it planned, and their stages in
    // the same trace under them (the backup's among them).
    let spans = eventually("a reconcile's trace with a backup in it", 30, || {
        let spans = otlp.spans();
        let has_backup = spans.iter().any(|b| {
            b.name == "backup"
                && spans.iter().any(|p| {
                    p.id == b.parent
                        && p.name == "backups"
                        && spans
                            .iter()
                            .any(|r| r.id == p.parent && r.name == "reconcile")
                })
        });
        async move { has_backup.then_some(spans) }
    })
    .await;
    let reconciles: Vec<_> = spans.iter().filter(|s| s.name == "reconcile").collect();
    assert!(reconciles
        .iter()
        .all(
            |r| r.attributes.get("ensemble").map(String::as_str) == Some("coord")
                && r.attributes.get("namespace") == Some(&ns)
                && r.attributes.contains_key("step")
        ));
    assert!(reconciles
        .iter()
        .all(|r| r.resource.get("service.name").map(String::as_str) == Some("zooid-operator")));
    for stage in ["observe", "step"] {
        assert!(
            spans.iter().any(|s| s.name == stage
                && reconciles
                    .iter()
                    .any(|r| r.id == s.parent && r.trace == s.trace)),
            "no {stage} span under a reconcile"
        );
    }

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
