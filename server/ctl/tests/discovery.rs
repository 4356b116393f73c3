//! `zooctl register` and `zooctl discover --watch` as an application's sidecar and its
//! consumer use them: instances appear, come back after their session expired, and go at
//! once on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use zooid_node::{Config, Server};

/// A zooctl process whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    fn start(server: &str, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zooctl"))
            .args(["--server", server])
            .args(args)
            .env_remove("POD_NAME")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The first line that `pred` accepts, within `secs` (a failure otherwise).
    fn line_where(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("{what}: not within {secs} s"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A discover line's instances.
fn set(line: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(line)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn instances_register_come_back_after_expiry_and_leave_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = Config::defaults();
    config.client_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().into();
    // Sessions of 1 to 4 s: an expiry within the test's patience.
    config.tick_time_ms = 500;
    let server = rt.block_on(Server::start(config)).unwrap();
    let s = server.client_addr.to_string();

    let watcher = Running::start(&s, &["discover", "/services/web", "--watch"]);
    watcher.line_where("no instance yet", 10, |l| l == "{}");

    let web0 = Running::start(
        &s,
        &[
            "register",
            "/services/web",
            "--name",
            "web-0",
            "--address",
            "10.0.0.5:8080",
            "--session-timeout-ms",
            "2000",
        ],
    );
    web0.line_where("web-0 registered", 10, |l| {
        l.starts_with("registered /services/web/web-0 = 10.0.0.5:8080")
    });
    watcher.line_where("web-0 seen", 10, |l| {
        set(l).get("web-0").and_then(|v| v.as_str()) == Some("10.0.0.5:8080")
    });
    let web1 = Running::start(
        &s,
        &[
            "register",
            "/services/web",
            "--name",
            "web-1",
            "--address",
            "10.0.0.6:8080",
        ],
    );
    watcher.line_where("both seen", 10, |l| set(l).len() == 2);
    let once = Command::new(env!("CARGO_BIN_EXE_zooctl"))
        .args(["--server", &s, "discover", "/services/web"])
        .output()
        .unwrap();
    assert!(once.status.success());
    assert_eq!(
        String::from_utf8_lossy(&once.stdout),
        "web-0 10.0.0.5:8080\nweb-1 10.0.0.6:8080\n"
    );

    // Paused past its session timeout: the server expires the session and the instance
    // goes; resumed, the registrar finds its session expired and registers again.
    web0.signal("STOP");
    watcher.line_where("web-0 gone with its session", 15, |l| {
        let s = set(l);
        s.len() == 1 && s.contains_key("web-1")
    });
    web0.signal("CONT");
    web0.line_where("web-0 registered again", 15, |l| {
        l.starts_with("registered /services/web/web-0")
    });
    watcher.line_where("web-0 back", 10, |l| set(l).len() == 2);

    // SIGTERM: deregistered at once (well before a session timeout of 10 s), exit 0.
    let asked = Instant::now();
    web1.signal("TERM");
    web1.line_where("web-1 deregistered", 5, |l| {
        l == "deregistered /services/web/web-1"
    });
    watcher.line_where("web-1 gone", 5, |l| {
        let s = set(l);
        s.len() == 1 && s.contains_key("web-0")
    });
    assert!(asked.elapsed() < Duration::from_secs(5));
    let mut web1 = web1;
    assert!(web1.child.wait().unwrap().success());

    // The watcher ends cleanly on SIGTERM too.
    watcher.signal("TERM");
    let mut watcher = watcher;
    assert!(watcher.child.wait().unwrap().success());
    drop(web0);
    rt.block_on(server.stop());
}
