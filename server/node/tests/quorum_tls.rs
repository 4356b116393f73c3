//! TLS between the members of an ensemble (ZooKeeper's `sslQuorum`): members prove who they
//! are to each other, a member whose certificate is not trusted or not for its host cannot
//! join and the others say why, and certificates replaced on disk are used by new peer
//! connections with no restart of the members that hold them, under a write load that loses
//! no acknowledged write.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, settled, Member};
use common::writers::Writers;
use common::{pki, RawClient};
use std::path::Path;
use std::time::Duration;
use zooid_e2e::wait::{wait_for_explained, wait_until};

fn var(key: &str, value: &Path) -> (String, String) {
    (key.to_string(), value.display().to_string())
}

/// Waits for `text` in one of `members`' logs.
fn said(members: &[&Member], text: &str) {
    wait_for_explained(
        &format!("{text:?} in a member's log"),
        Duration::from_secs(15),
        || {
            members
                .iter()
                .any(|m| std::fs::read_to_string(&m.log).unwrap().contains(text))
                .then_some(())
        },
        || {
            members
                .iter()
                .map(|m| {
                    let log = std::fs::read_to_string(&m.log).unwrap();
                    let tail: Vec<&str> = log.lines().rev().take(8).collect();
                    format!("=== {}\n{}", m.id, tail.join("\n"))
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
}

/// After the refusal, writes go on without `outsider`: a node made through the leader, then
/// 200 more acknowledged writes, and the outsider still lacks the node (a member that had
/// joined would have it within milliseconds, and serve).
fn goes_on_without(members: &[Member], leader: usize, outsider: usize, writers: &Writers) {
    let marker = format!("/after-{}", writers.count());
    RawClient::connect(members[leader].client)
        .create(&marker, b"", 0)
        .unwrap();
    let before = writers.count();
    wait_until("writes go on without it", Duration::from_secs(10), || {
        writers.count() >= before + 200
    });
    // It does not serve at all (no leader reached it), or serves without the node.
    if let Ok(mut c) = RawClient::try_connect_with(members[outsider].client, 0, [0; 16], 30000, 0) {
        assert!(
            c.get(&marker, false).is_err(),
            "server {} joined the ensemble",
            members[outsider].id
        );
    }
}

#[test]
fn a_tls_ensemble_refuses_strangers_and_takes_new_certificates_live() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let (old_ca, new_ca) = (pki::Ca::new("old CA"), pki::Ca::new("new CA"));
    let key_store = pki::write(dir, "member.pem", &old_ca.issue("member"));
    let trust_store = pki::write(dir, "ca.pem", &old_ca.pem);
    let cfg = format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n",
        key_store.display(),
        trust_store.display()
    );
    let mut members = ensemble::start_with(dir, &cfg, 0);
    let leader = settled(&members, Duration::from_secs(10));
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    RawClient::connect(members[leader].client)
        .create("/w", b"", 0)
        .unwrap();
    let writers = Writers::start(&[&members[leader]]);
    wait_until("writes over a TLS quorum", Duration::from_secs(10), || {
        writers.count() >= 50
    });

    // A member whose certificate another CA signed: the others refuse it at the door.
    let stranger = pki::write(dir, "stranger.pem", &new_ca.issue("member"));
    let both = pki::write(dir, "both.pem", &format!("{}{}", old_ca.pem, new_ca.pem));
    members[f2].kill9();
    members[f2].restart_with_env(&[
        var("ZOOID_SSL_QUORUM_KEY_STORE", &stranger),
        var("ZOOID_SSL_QUORUM_TRUST_STORE", &both),
    ]);
    let (l, f) = (&members[leader], &members[f1]);
    said(
        &[l, f],
        "refusing a peer connection: invalid peer certificate",
    );
    goes_on_without(&members, leader, f2, &writers);

    // A trusted certificate for another host: refused too (hostnameVerification is on).
    let elsewhere = pki::write(
        dir,
        "elsewhere.pem",
        &old_ca.issue_for("member", &["elsewhere.example"]),
    );
    members[f2].kill9();
    members[f2].restart_with_env(&[var("ZOOID_SSL_QUORUM_KEY_STORE", &elsewhere)]);
    let (l, f) = (&members[leader], &members[f1]);
    said(
        &[l, f],
        "certificate is valid neither for its host 127.0.0.1",
    );
    goes_on_without(&members, leader, f2, &writers);

    // With its own certificate it joins.
    members[f2].kill9();
    members[f2].restart_with_env(&[]);
    assert_eq!(settled(&members, Duration::from_secs(20)), leader);

    // Rotation to the new CA, every member at once, none restarted for it: trust both, then
    // show the new certificate. A member started afresh (so that its links are new) shows the
    // new certificate, which the others take only from their reloaded trust stores...
    pki::write(dir, "ca.pem", &format!("{}{}", old_ca.pem, new_ca.pem));
    pki::write(dir, "member.pem", &new_ca.issue("member"));
    members[f2].kill9();
    members[f2].restart();
    assert_eq!(settled(&members, Duration::from_secs(20)), leader);
    // ...and once the old CA is trusted no more, one started afresh takes the leader only
    // with the leader's reloaded certificate.
    pki::write(dir, "ca.pem", &new_ca.pem);
    members[f1].kill9();
    members[f1].restart();
    assert_eq!(settled(&members, Duration::from_secs(20)), leader);
    let before = writers.count();
    wait_until("writes after the rotation", Duration::from_secs(10), || {
        writers.count() >= before + 50
    });
    let metrics = zooid_e2e::http::get(members[leader].admin, "/metrics").unwrap();
    let reloads = zooid_e2e::http::sample(
        &metrics.body,
        "zooid_tls_reloads_total{port=\"quorum\",result=\"loaded\"}",
    );
    assert!(
        reloads.is_some_and(|n| n >= 1.0),
        "the leader read no new quorum certificate: {reloads:?}"
    );

    let (acked, _, lost) = writers.stop();
    assert_eq!(lost, 0, "the leader stopped serving its writer");
    for m in &members {
        let have: std::collections::HashSet<String> =
            ensemble::synced_children(m.client, "/w", Duration::from_secs(10))
                .into_iter()
                .collect();
        let missing = acked
            .iter()
            .filter(|p| !have.contains(&p["/w/".len()..]))
            .count();
        assert_eq!(missing, 0, "server {} lacks acknowledged writes", m.id);
    }
    eprintln!("{} writes acknowledged across the rotation", acked.len());
}
