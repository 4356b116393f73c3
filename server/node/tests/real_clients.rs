//! Unmodified ZooKeeper clients against the server. These need the client installed (`.ci/run`
//! installs them); a missing client fails the test rather than skipping it.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

#[test]
fn kazoo_recipes_and_basics() {
    let srv = start(|_| {});
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/kazoo_scenarios.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(srv.addr.to_string())
        .output()
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "kazoo scenarios failed:\n{stdout}\n{stderr}"
    );
}

use common::start;
