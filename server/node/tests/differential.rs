//! The differential suite: every scenario of `zooid_e2e::scenarios` runs against Apache
//! ZooKeeper 3.8 (Debian's package, started here on a loopback port) and against Zooid, and the
//! normalized transcripts (error codes, data, every Stat field, children, watch events and their
//! order; zxids by rank, times by relation) must be identical. Each scenario also runs against
//! a three-member Zooid ensemble, its client on a follower.
//!
//! Each scenario is a test of its own (`cargo test -p zooid-node --test differential
//! <scenario>` runs one); the servers are started once, by the first scenario that runs, and
//! scenarios take turns on them.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, Member};
use libtest_mimic::{Arguments, Failed, Trial};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use zooid_e2e::apache::ApacheZk;
use zooid_e2e::scenarios::{self, Scenario};
use zooid_e2e::transcript::{clean, Ctx};

/// What every scenario runs against.
struct Servers {
    zk: ApacheZk,
    zooid: common::TestServer,
    /// The ensemble, kept running; the scenarios' client is on a follower.
    _members: Vec<Member>,
    follower: SocketAddr,
    _root: tempfile::TempDir,
}

impl Servers {
    fn start() -> Servers {
        let zk = ApacheZk::start(2000)
            .expect("Apache ZooKeeper must be installed (scripts/test.sh installs it)");
        // Both as ZooKeeper is started: quotas enforced, the tests' super user (cleanup
        // needs it).
        let zooid = common::start(|cfg| {
            cfg.container_check_ms = 100;
            cfg.enforce_quota = true;
            cfg.super_digest = Some(zooid_e2e::super_digest());
        });
        let root = tempfile::tempdir().unwrap();
        let cfg = format!(
            "tickTime=2000\ncontainerCheckMs=100\nenforceQuota=true\n\
             DigestAuthenticationProvider.superDigest={}\n",
            zooid_e2e::super_digest()
        );
        let members = ensemble::start_with(root.path(), &cfg, 0);
        let leader = ensemble::settled(&members, Duration::from_secs(10));
        let follower = members[(leader + 1) % 3].client;
        Servers {
            zk,
            zooid,
            _members: members,
            follower,
            _root: root,
        }
    }
}

/// The servers, started by the first scenario; the lock makes scenarios take turns (each
/// cleans the trees when done).
type Shared = Arc<OnceLock<Mutex<Servers>>>;

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let shared: Shared = Arc::default();
    let all = scenarios::all();
    let count = all.len();
    let mut trials = vec![Trial::test("the_suite_is_whole", move || {
        if count < 80 {
            return Err(format!("only {count} scenarios").into());
        }
        Ok(())
    })];
    trials.extend(all.into_iter().map(|s| {
        let shared = shared.clone();
        Trial::test(s.name, move || compare(&shared, &s))
    }));
    let conclusion = libtest_mimic::run(&args, trials);
    // Every trial is done and dropped: the servers stop here.
    drop(shared);
    conclusion.exit_code()
}

/// Runs `s` on ZooKeeper, on Zooid and on an ensemble's follower, and compares.
fn compare(shared: &Shared, s: &Scenario) -> Result<(), Failed> {
    let servers = shared.get_or_init(|| Mutex::new(Servers::start()));
    // A scenario that panicked left the trees cleaned or not; the next one cleans first.
    let servers = servers.lock().unwrap_or_else(|e| e.into_inner());
    let run = |addr: SocketAddr| {
        clean(addr);
        let mut c = Ctx::new(addr);
        (s.run)(&mut c);
        let transcript = c.finish_transcript();
        clean(addr);
        transcript
    };
    let expected = run(servers.zk.addr);
    let got = run(servers.zooid.addr);
    let on_follower = run(servers.follower);
    // ZOOID_DIFF_SHOW=<scenario name> prints both transcripts, matching or not.
    if std::env::var("ZOOID_DIFF_SHOW").is_ok_and(|n| n == s.name) {
        eprintln!("--- {} (ZooKeeper)\n{}", s.name, expected.join("\n"));
        eprintln!("--- {} (Zooid)\n{}", s.name, got.join("\n"));
    }
    let mut failures = Vec::new();
    if expected != got {
        failures.push(side_by_side("Zooid", &expected, &got));
    }
    // A standalone server's `/zookeeper/config` is empty; an ensemble's lists its members
    // (tests/reconfig.rs checks it): those lines alone are left out of the comparison.
    let members_free = |t: &[String]| -> Vec<String> {
        t.iter()
            .filter(|l| !l.contains("\"/zookeeper/config\""))
            .cloned()
            .collect()
    };
    if members_free(&expected) != members_free(&on_follower) {
        failures.push(side_by_side(
            "an ensemble's follower",
            &members_free(&expected),
            &members_free(&on_follower),
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

/// The two transcripts line by line, differing lines marked `zk` and `zd`.
fn side_by_side(what: &str, expected: &[String], got: &[String]) -> String {
    let mut report = format!("{what} answers differently from ZooKeeper:\n");
    for i in 0..expected.len().max(got.len()) {
        let e = expected.get(i).map_or("<none>", String::as_str);
        let g = got.get(i).map_or("<none>", String::as_str);
        if e == g {
            report.push_str(&format!("   {e}\n"));
        } else {
            report.push_str(&format!(" zk  {e}\n zd  {g}\n"));
        }
    }
    report
}
