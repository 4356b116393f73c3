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
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `zooctl members` against a three-member ensemble (in this process, each member with its
/// zoo.cfg, myid and data dir): shows `/zookeeper/config`, adds an observer that is not
/// running (ZooKeeper allows that), removes it, and says why a change was refused.
#[test]
fn members_of_an_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ports: Vec<u16> = (0..9).map(|_| free_port()).collect();
    let mut cfg = String::from("tickTime=200\ninitLimit=10\nreconfigEnabled=true\n");
    for i in 0..3 {
        cfg += &format!(
            "server.{}=127.0.0.1:{}:{};127.0.0.1:{}\n",
            i + 1,
            ports[3 * i],
            ports[3 * i + 1],
            ports[3 * i + 2]
        );
    }
    let cfg_path = dir.path().join("zoo.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let servers: Vec<Server> = (1..=3)
        .map(|id| {
            let data = dir.path().join(format!("data{id}"));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
            Config::load([
                "zooid".into(),
                "--config".into(),
                cfg_path.clone().into_os_string(),
                "--data-dir".into(),
                data.into_os_string(),
                "--admin-addr=127.0.0.1:0".into(),
            ])
            .unwrap()
        })
        .map(|config| rt.block_on(Server::start(config)).unwrap())
        .collect();
    let connect: Vec<String> = servers.iter().map(|s| s.client_addr.to_string()).collect();
    let connect = connect.join(",");
    // Members serve once the ensemble has a leader.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let shown = loop {
        let (ok, out, _) = zooctl(&connect, &["members"]);
        if ok {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "no member served");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        shown.lines().filter(|l| l.starts_with("server.")).count(),
        3,
        "{shown}"
    );
    let version = shown
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap()
        .to_string();

    let observer = format!(
        "server.4=127.0.0.1:{}:{}:observer;127.0.0.1:{}",
        free_port(),
        free_port(),
        free_port()
    );
    let (ok, out, err) = zooctl(
        &connect,
        &["members", "add", &observer, "--from-version", &version],
    );
    assert!(ok, "{err}");
    assert!(out.contains(&observer), "{out}");
    // The version moved on: the same condition is refused, with a message saying why.
    let (ok, _, err) = zooctl(
        &connect,
        &["members", "remove", "4", "--from-version", &version],
    );
    assert!(!ok && err.contains("no longer at version"), "{err}");
    let (ok, out, err) = zooctl(&connect, &["members", "remove", "4"]);
    assert!(ok, "{err}");
    assert!(!out.contains("server.4="), "{out}");
    let (ok, _, err) = zooctl(&connect, &["members", "add", "nonsense"]);
    assert!(!ok && err.contains("is not server.N="), "{err}");
    let (ok, _, err) = zooctl(&connect, &["members", "remove", "9"]);
    assert!(!ok && err.contains("BadArguments"), "{err}");
    // The four-letter word goes to every server of the string.
    let (_, out, _) = zooctl(&connect, &["word", "srvr"]);
    assert_eq!(out.matches("Mode: ").count(), 3, "{out}");
    let (ok, _, err) = zooctl(&format!("{connect}/chroot"), &["ls", "/"]);
    assert!(!ok && err.contains("chroot"), "{err}");
    for s in servers {
        rt.block_on(s.shutdown(std::time::Duration::from_secs(1)));
    }
}
