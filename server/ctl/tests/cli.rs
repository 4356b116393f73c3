//! zooctl against a running server: every command, its errors, and a short bench.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use zooid_server::{Config, Server};

fn zooctl(server: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zooctl"))
        .arg("--server")
        .arg(server)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_and_bench() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = Config::defaults();
    config.client_addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().into();
    let server = rt.block_on(Server::start(config)).unwrap();
    let s = server.client_addr.to_string();

    assert_eq!(zooctl(&s, &["create", "/app", "v1"]).1, "Created /app\n");
    assert_eq!(
        zooctl(&s, &["create", "/app/q-", "--sequential"]).1,
        "Created /app/q-0000000000\n"
    );
    assert_eq!(zooctl(&s, &["get", "/app"]).1, "v1\n");
    assert!(zooctl(&s, &["set", "/app", "v2"]).0);
    assert!(zooctl(&s, &["stat", "/app"])
        .1
        .contains("dataVersion = 1\n"));
    assert_eq!(zooctl(&s, &["ls", "/"]).1, "app\nzookeeper\n");
    assert_eq!(zooctl(&s, &["tree", "/app"]).1, "/app\n/app/q-0000000000\n");
    let (ok, _, err) = zooctl(&s, &["delete", "/app"]);
    assert!(!ok);
    assert!(err.contains("NotEmpty (-111)"), "{err}");
    let (ok, _, err) = zooctl(&s, &["set", "/app", "v3", "--version", "7"]);
    assert!(!ok && err.contains("BadVersion (-103)"), "{err}");
    assert_eq!(zooctl(&s, &["word", "ruok"]).1, "imok\n");
    let (ok, _, err) = zooctl(&s, &["word", "toolong"]);
    assert!(!ok && err.contains("four letters"), "{err}");
    let (ok, out, err) = zooctl(
        &s,
        &[
            "bench",
            "--sessions",
            "2",
            "--depth",
            "2",
            "--keys",
            "10",
            "--read-percent",
            "50",
            "--warmup",
            "0",
            "--duration",
            "1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("ops/s") && out.contains("errors 0"), "{out}");
    assert!(
        zooctl(&s, &["get", "/zooctl-bench/k-000009"]).0,
        "bench keys exist"
    );
    let (ok, _, err) = zooctl("127.0.0.1:1", &["ls", "/"]);
    assert!(!ok && err.contains("connecting to 127.0.0.1:1"), "{err}");
}
