//! Unmodified ZooKeeper clients against the server. These need the clients installed
//! (`scripts/test.sh` installs them); a missing client fails the test rather than skipping it.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

#[test]
fn kazoo_recipes_and_basics() {
    let srv = start(|_| {});
    common::run_client_script("kazoo_scenarios.py", &[&srv.addr.to_string()]);
}

use common::start;

/// Debian's `zkCli.sh` (the Java client of ZooKeeper 3.8) driving ls, create, get, set, stat,
/// delete through its stdin.
#[test]
fn zkcli_basic_commands() {
    let srv = start(|_| {});
    let script = "create /zkcli hello\nget /zkcli\nset /zkcli world\nget /zkcli\n\
                  stat /zkcli\nls /\ndelete /zkcli\nls /\nget /zkcli\nquit\n";
    let mut child = Command::new("/usr/share/zookeeper/bin/zkCli.sh")
        .args(["-server", &srv.addr.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("zkCli.sh must be installed (scripts/test.sh installs Debian's zookeeper)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("SLF4J") && !l.starts_with("WATCHER"))
        .collect();
    // zkCli writes command results to stdout and confirmations and errors to stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in ["Created /zkcli", "Node does not exist: /zkcli"] {
        assert!(
            stderr.contains(want),
            "zkCli stderr lacks {want:?}:\n{stderr}"
        );
    }
    let expect_in_order = [
        "hello",
        "world",
        "dataVersion = 1",
        "dataLength = 5",
        "[zkcli, zookeeper]",
        "[zookeeper]",
    ];
    let mut at = 0;
    for want in expect_in_order {
        match lines[at..].iter().position(|l| *l == want) {
            Some(i) => at += i + 1,
            None => panic!("zkCli output lacks {want:?} (in order):\n{stdout}\n{stderr}"),
        }
    }
}
