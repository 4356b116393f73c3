//! The differential suite: every scenario of `zooid_e2e::scenarios` runs against Apache
//! ZooKeeper 3.8 (Debian's package, started here on a loopback port) and against Zooid, and the
//! normalized transcripts (error codes, data, every Stat field, children, watch events and their
//! order; zxids by rank, times by relation) must be identical. Each scenario also runs against
//! a three-member Zooid ensemble, its client on a follower.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble;

use zooid_e2e::apache::ApacheZk;
use zooid_e2e::scenarios;
use zooid_e2e::transcript::{clean, Ctx};

#[test]
fn zooid_answers_like_apache_zookeeper() {
    let zk = ApacheZk::start(2000)
        .expect("Apache ZooKeeper must be installed (scripts/test.sh installs it)");
    let zooid = common::start(|cfg| cfg.container_check_ms = 100);
    let root = tempfile::tempdir().unwrap();
    let members = ensemble::start_with(root.path(), "tickTime=2000\ncontainerCheckMs=100\n", 0);
    let leader = ensemble::settled(&members, std::time::Duration::from_secs(10));
    let follower = members[(leader + 1) % 3].client;
    let all = scenarios::all();
    assert!(all.len() >= 80, "only {} scenarios", all.len());
    let mut failures = Vec::new();
    for s in &all {
        let mut a = Ctx::new(zk.addr);
        (s.run)(&mut a);
        let expected = a.finish_transcript();
        clean(zk.addr);
        let mut b = Ctx::new(zooid.addr);
        (s.run)(&mut b);
        let got = b.finish_transcript();
        clean(zooid.addr);
        let mut c = Ctx::new(follower);
        (s.run)(&mut c);
        let on_follower = c.finish_transcript();
        clean(follower);
        // A standalone server's `/zookeeper/config` is empty; an ensemble's lists its members
        // (tests/reconfig.rs checks it): those lines alone are left out of the comparison.
        let members_free = |t: &[String]| -> Vec<String> {
            t.iter()
                .filter(|l| !l.contains("\"/zookeeper/config\""))
                .cloned()
                .collect()
        };
        if members_free(&expected) != members_free(&on_follower) {
            failures.push(format!(
                "--- scenario {} differs on an ensemble's follower ---\n zk {:?}\n zd {:?}\n",
                s.name, expected, on_follower
            ));
        }
        // ZOOID_DIFF_SHOW=<scenario name> prints both transcripts, matching or not.
        if std::env::var("ZOOID_DIFF_SHOW").is_ok_and(|n| n == s.name) {
            eprintln!("--- {} (ZooKeeper)\n{}", s.name, expected.join("\n"));
            eprintln!("--- {} (Zooid)\n{}", s.name, got.join("\n"));
        }
        if expected != got {
            let mut report = format!("--- scenario {} ---\n", s.name);
            let n = expected.len().max(got.len());
            for i in 0..n {
                let e = expected.get(i).map_or("<none>", String::as_str);
                let g = got.get(i).map_or("<none>", String::as_str);
                if e == g {
                    report.push_str(&format!("   {e}\n"));
                } else {
                    report.push_str(&format!(" zk  {e}\n zd  {g}\n"));
                }
            }
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios differ:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
