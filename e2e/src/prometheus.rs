//! A real Prometheus (Debian's `prometheus` package, which scripts/test.sh installs) for the
//! tests of `dashboards/`: started on loopback with rule files, scraping the targets given;
//! and the queries to try against it: every panel and template variable of a Grafana
//! dashboard, and every alert of a rule file.

use crate::http;
use crate::wait::wait_for;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository's `dashboards/`.
pub fn dashboards() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// A tool from Debian's `prometheus` package, or a failure saying how to get it.
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: install Debian's prometheus package (scripts/test.sh does)"
    );
    Command::new(name)
}

/// What Prometheus scrapes: an address, its job, and the labels the target gets (as a
/// Kubernetes service discovery would give `namespace` and `pod`).
pub struct Target {
    pub addr: SocketAddr,
    pub job: String,
    pub labels: Vec<(String, String)>,
}

/// A Prometheus server on loopback, stopped when dropped.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes every second; its data and log in `dir`.
    pub fn start(dir: &Path, rule_files: &[PathBuf], targets: &[Target]) -> Prometheus {
        let mut cfg = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n",
        );
        for f in rule_files {
            cfg += &format!("  - {}\n", f.display());
        }
        cfg += "scrape_configs:\n";
        let mut jobs: Vec<&str> = targets.iter().map(|t| t.job.as_str()).collect();
        // One scrape config per job, whatever order the targets come in.
        jobs.sort_unstable();
        jobs.dedup();
        for job in jobs {
            cfg += &format!("  - job_name: {job}\n    static_configs:\n");
            for t in targets.iter().filter(|t| t.job == job) {
                let labels: Vec<String> =
                    t.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                cfg += &format!(
                    "      - targets: ['{}']\n        labels: {{{}}}\n",
                    t.addr,
                    labels.join(", ")
                );
            }
        }
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, cfg).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        for _attempt in 0..3 {
            let port = crate::apache::free_port().unwrap_or_else(|e| panic!("a free port: {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log = std::fs::File::create(dir.join("prometheus.log"))
                .unwrap_or_else(|e| panic!("prometheus.log: {e}"));
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
                .unwrap_or_else(|e| panic!("starting prometheus: {e}"));
            let mut p = Prometheus { child, addr };
            let ready = wait_for("prometheus ready", Duration::from_secs(30), || {
                if http::get(addr, "/-/ready").is_some_and(|a| a.status == 200) {
                    return Some(true);
                }
                // Exited: the port was taken meanwhile; another is tried.
                p.child.try_wait().ok().flatten().map(|_| false)
            });
            if ready {
                return p;
            }
        }
        panic!("prometheus did not start in three tries");
    }

    /// An instant query's result vector.
    pub fn query(&self, q: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", http::encode_query(q));
        let a = http::get(self.addr, &path).ok_or("no answer")?;
        let v: Value = serde_json::from_str(&a.body).map_err(|e| format!("{e}: {}", a.body))?;
        if v["status"] != "success" {
            return Err(a.body);
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The loaded alerting and recording rules, with their health.
    pub fn rules(&self) -> Vec<Value> {
        let Some(a) = http::get(self.addr, "/api/v1/rules") else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
        v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Each query that returns an error or no data, with why.
    pub fn missing(&self, queries: &[String]) -> Vec<String> {
        let mut missing = Vec::new();
        for q in queries {
            match self.query(q) {
                Ok(r) if !r.is_empty() => {}
                Ok(_) => missing.push(format!("{q}: no data")),
                Err(e) => missing.push(format!("{q}: {e}")),
            }
        }
        missing
    }
}

fn read_json(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Grafana's variables replaced by values: `vars` (name without `$`, value), and
/// `$__rate_interval` by 15 s.
fn substitute(q: &str, vars: &[(&str, &str)]) -> String {
    let mut q = q.replace("$__rate_interval", "15s");
    for (name, value) in vars {
        q = q.replace(&format!("${name}"), value);
    }
    q
}

/// The queries of every panel of the dashboard `file`.
pub fn dashboard_queries(file: &Path, vars: &[(&str, &str)]) -> Vec<String> {
    let d = read_json(file);
    d["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(|q| substitute(q, vars)))
        .collect()
}

/// The dashboard's template variables, `label_values(metric, label)`: each as the query that
/// finds the label's values, with the label it must find.
pub fn variable_queries(file: &Path, vars: &[(&str, &str)]) -> Vec<(String, String)> {
    let d = read_json(file);
    let mut out = Vec::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let Some(def) = v["definition"].as_str() else {
            continue;
        };
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {def}: not label_values(...)"));
        let (metric, label) = inner
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("variable {def}: no label"));
        out.push((
            format!("count by ({}) ({})", label.trim(), substitute(metric, vars)),
            label.trim().to_string(),
        ));
    }
    out
}

/// The query of every alert of the rule file `file`, without its threshold (a healthy
/// system fires none, but every query must find its series). Each `expr:` is
/// `query comparison threshold` on one line.
pub fn alert_queries(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(|e| {
            let (query, threshold) = e
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("{e}: no threshold"));
            assert!(threshold.parse::<f64>().is_ok(), "{e}: no threshold last");
            let (query, op) = query
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("{e}: no comparison"));
            assert!(["<", ">", "<=", ">=", "==", "!="].contains(&op), "{e}");
            query.to_string()
        })
        .collect()
}
