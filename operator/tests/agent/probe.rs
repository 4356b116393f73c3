//! Readiness and liveness probes, run for real against the pod's address as a kubelet runs
//! them: `httpGet` (any 2xx or 3xx passes) and `tcpSocket`; `exec` probes are not supported
//! (nothing the operator makes uses them) and always fail, so that a test notices.

use k8s_openapi::api::core::v1::{Container, Probe as KubeProbe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

enum Check {
    Http { port: u16, path: String },
    Tcp { port: u16 },
    Unsupported,
}

pub struct Probe {
    check: Check,
    period: Duration,
    timeout: Duration,
    failure_threshold: u32,
    success_threshold: u32,
    next: Instant,
    failures: u32,
    successes: u32,
}

/// What a probe run concluded, when it concluded something new.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Passing,
    Failing,
}

fn port(container: &Container, port: &IntOrString) -> u16 {
    match port {
        IntOrString::Int(p) => *p as u16,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map_or(0, |p| p.container_port as u16),
    }
}

impl Probe {
    pub fn new(container: &Container, probe: &KubeProbe, started: Instant) -> Probe {
        let check = if let Some(h) = &probe.http_get {
            if h.scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("https"))
            {
                Check::Unsupported
            } else {
                Check::Http {
                    port: port(container, &h.port),
                    path: h.path.clone().unwrap_or_else(|| "/".into()),
                }
            }
        } else if let Some(t) = &probe.tcp_socket {
            Check::Tcp {
                port: port(container, &t.port),
            }
        } else {
            Check::Unsupported
        };
        let secs = |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default) as u64);
        Probe {
            check,
            period: secs(probe.period_seconds, 10),
            timeout: secs(probe.timeout_seconds, 1),
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            next: started + secs(probe.initial_delay_seconds, 0),
            failures: 0,
            successes: 0,
        }
    }

    /// Runs the probe if it is due; a verdict once the failures or successes in a row reach
    /// their threshold.
    pub async fn run(&mut self, http: &reqwest::Client, addr: Ipv4Addr) -> Option<Verdict> {
        let now = Instant::now();
        if now < self.next {
            return None;
        }
        self.next = now + self.period;
        let passed = match &self.check {
            Check::Http { port, path } => http
                .get(format!("http://{addr}:{port}{path}"))
                .timeout(self.timeout)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success() || r.status().is_redirection()),
            Check::Tcp { port } => {
                tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect((addr, *port)))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
            Check::Unsupported => false,
        };
        if passed {
            self.failures = 0;
            self.successes += 1;
            (self.successes >= self.success_threshold).then_some(Verdict::Passing)
        } else {
            self.successes = 0;
            self.failures += 1;
            (self.failures >= self.failure_threshold).then_some(Verdict::Failing)
        }
    }
}
