//! The dashboards and alerts in `dashboards/` against a real Prometheus (Debian's, started
//! here on loopback) scraping a 3-member ensemble under load: every query of a dashboard
//! panel and of an alert returns data, the alert rules load and evaluate, and promtool checks
//! the rules and runs their unit tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble;
use common::RawClient;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zooid_e2e::http;
use zooid_e2e::wait::{wait_for, wait_until};
use zooid_proto::*;

fn dashboards() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboards")
}

/// A tool from Debian's `prometheus` package (scripts/test.sh installs it).
fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: install Debian's prometheus package (scripts/test.sh does)"
    );
    Command::new(name)
}

#[test]
fn promtool_checks_the_rules_and_runs_their_unit_tests() {
    for args in [
        vec!["check", "rules", "alerts.yaml"],
        vec!["test", "rules", "alerts.test.yaml"],
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

/// A Prometheus server on loopback, stopped when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, targets: &[(SocketAddr, String)]) -> Prometheus {
        let mut cfg = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n",
        );
        cfg += &format!("  - {}\n", dashboards().join("alerts.yaml").display());
        cfg += "scrape_configs:\n  - job_name: zooid\n    static_configs:\n";
        for (addr, pod) in targets {
            cfg += &format!(
                "      - targets: ['{addr}']\n        labels: {{namespace: test, pod: {pod}}}\n"
            );
        }
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, cfg).unwrap();
        for _attempt in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], zooid_e2e::apache::free_port().unwrap()));
            let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
            let child = tool("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            let mut p = Prometheus { child, addr };
            let ready = wait_for("prometheus ready", Duration::from_secs(30), || {
                if http::get(addr, "/-/ready").is_some_and(|a| a.status == 200) {
                    return Some(true);
                }
                // Exited: the port was taken meanwhile; another is tried.
                p.child.try_wait().unwrap().map(|_| false)
            });
            if ready {
                return p;
            }
        }
        panic!("prometheus did not start in three tries");
    }

    /// An instant query's result vector.
    fn query(&self, q: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", http::encode_query(q));
        let a = http::get(self.addr, &path).ok_or("no answer")?;
        let v: Value = serde_json::from_str(&a.body).map_err(|e| format!("{e}: {}", a.body))?;
        if v["status"] != "success" {
            return Err(a.body);
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

/// The queries of every dashboard panel, with Grafana's variables given values.
fn dashboard_queries() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dashboards()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for panel in d["panels"].as_array().unwrap() {
                for t in panel["targets"].as_array().into_iter().flatten() {
                    out.push(t["expr"].as_str().unwrap().to_string());
                }
            }
        }
    }
    out.into_iter()
        .map(|q| {
            q.replace("$namespace", "test")
                .replace("$pod", ".*")
                .replace("$__rate_interval", "15s")
        })
        .collect()
}

/// The dashboards' template variables, `label_values(metric, label)`: each as the query that
/// finds the label's values, with the label it must find.
fn variable_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dashboards()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for v in d["templating"]["list"].as_array().unwrap() {
                let Some(def) = v["definition"].as_str() else {
                    continue;
                };
                let inner = def
                    .strip_prefix("label_values(")
                    .and_then(|r| r.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("variable {def}: not label_values(...)"));
                let (metric, label) = inner.rsplit_once(',').unwrap();
                let metric = metric.replace("$namespace", "test");
                out.push((
                    format!("count by ({}) ({metric})", label.trim()),
                    label.trim().to_string(),
                ));
            }
        }
    }
    out
}

/// The query of every alert, without its threshold (a healthy ensemble fires none, but every
/// query must find its series).
fn alert_queries() -> Vec<String> {
    let text = std::fs::read_to_string(dashboards().join("alerts.yaml")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(|e| {
            let (query, threshold) = e.rsplit_once(' ').unwrap();
            assert!(threshold.parse::<f64>().is_ok(), "{e}: no threshold last");
            let (query, op) = query.rsplit_once(' ').unwrap();
            assert!(["<", ">", "<=", ">=", "==", "!="].contains(&op), "{e}");
            query.to_string()
        })
        .collect()
}

#[test]
fn every_dashboard_and_alert_query_returns_data_from_a_scraped_ensemble() {
    let root = tempfile::tempdir().unwrap();
    let members = ensemble::start(root.path());
    ensemble::settled(&members, Duration::from_secs(10));
    let targets: Vec<(SocketAddr, String)> = members
        .iter()
        .map(|m| (m.admin, format!("zooid-{}", m.id - 1)))
        .collect();
    let prom = Prometheus::start(root.path(), &targets);

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
    let mut missing = Vec::new();
    let queries: Vec<String> = dashboard_queries()
        .into_iter()
        .chain(alert_queries())
        .collect();
    assert!(queries.len() >= 40, "only {} queries found", queries.len());
    for q in &queries {
        match prom.query(q) {
            Ok(r) if !r.is_empty() => {}
            Ok(_) => missing.push(format!("{q}: no data")),
            Err(e) => missing.push(format!("{q}: {e}")),
        }
    }
    // The namespace and pod pickers find the scraped targets.
    let variables = variable_queries();
    assert_eq!(variables.len(), 2, "{variables:?}");
    for (q, label) in &variables {
        match prom.query(q) {
            Ok(r) if r.iter().any(|s| s["metric"][label].is_string()) => {}
            other => missing.push(format!("{q}: no {label} values: {other:?}")),
        }
    }
    // The rules loaded, and every one has been evaluated without error.
    wait_until("every rule evaluated", Duration::from_secs(30), || {
        let a = http::get(prom.addr, "/api/v1/rules").unwrap();
        let v: Value = serde_json::from_str(&a.body).unwrap();
        let rules: Vec<&Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
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
