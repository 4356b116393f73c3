//! Availability under faults: a follower that was cut off from its peers, or paused, comes
//! back without deposing the leader. It asks the voters before it stands (a pre-vote), they
//! still hear from the leader and say no, so its term never rises and the leader's writes go
//! on (docs/ensembles.md, "Elections").
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, mode, settled, Layout, Member};
use common::writers::Writers;
use common::RawClient;
use std::time::{Duration, Instant};
use zooid_e2e::http::{self, sample};
use zooid_e2e::wait::{wait_for, wait_until};

/// A sample of the member's `/metrics`.
fn metric(m: &Member, series: &str) -> f64 {
    wait_for(
        &format!("{series} from server {}", m.id),
        Duration::from_secs(5),
        || {
            let page = http::get(m.admin, "/metrics")?;
            sample(&page.body, series)
        },
    )
}

/// What must not move while a follower is away and back.
#[derive(Debug, PartialEq)]
struct Leadership {
    terms: Vec<f64>,
    /// Per member, leader changes it saw by election or loss.
    changes: Vec<(f64, f64)>,
}

fn leadership(members: &[Member]) -> Leadership {
    Leadership {
        terms: members
            .iter()
            .map(|m| metric(m, "zooid_raft_term"))
            .collect(),
        changes: members
            .iter()
            .map(|m| {
                (
                    metric(m, r#"zooid_leader_changes_total{cause="election"}"#),
                    metric(m, r#"zooid_leader_changes_total{cause="lost"}"#),
                )
            })
            .collect(),
    }
}

/// Runs `away` on a follower while the leader and the other follower take writes, then
/// checks that nothing about the leadership moved and that no write waited longer than an
/// election would have stalled it.
/// Returns the pre-votes the follower tried and lost.
fn follower_away_and_back(proxied: bool, away: impl FnOnce(&[Member], usize)) -> f64 {
    let root = tempfile::tempdir().unwrap();
    let layout = Layout {
        voters: 3,
        observers: 0,
        proxied,
    };
    let (members, proxies) = ensemble::start_laid_out(root.path(), "", layout);
    let leader = settled(&members, Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    RawClient::connect(members[leader].client)
        .create("/w", b"", 0)
        .unwrap();
    let writers = Writers::start(&[&members[leader], &members[other]]);
    wait_until("writes under way", Duration::from_secs(10), || {
        writers.count() >= 50
    });
    let before = leadership(&members);
    let start = Instant::now();

    match &proxies {
        Some(p) => {
            let all: Vec<u64> = members.iter().map(|m| m.id).collect();
            p.partition(&[members[follower].id], &all);
            away(&members, follower);
            p.heal();
        }
        None => away(&members, follower),
    }
    let back = Instant::now();

    // The follower catches up and serves again; writes go on through the leader meanwhile.
    let caught_up_to = metric(&members[leader], "zooid_raft_last_log_index");
    wait_until(
        "the follower caught up after coming back",
        Duration::from_secs(10),
        || metric(&members[follower], "zooid_raft_applied_index") >= caught_up_to,
    );
    wait_until(
        "the follower serving again",
        Duration::from_secs(10),
        || mode(members[follower].client).as_deref() == Some("follower"),
    );
    let settled_at = Instant::now();
    wait_until("writes after the return", Duration::from_secs(10), || {
        writers.acked_since(settled_at) >= 50
    });
    let gap = writers.gap_since(start);
    let (_, _, lost) = writers.stop();
    let after = leadership(&members);
    eprintln!(
        "away {:?}, back {:?} later; longest write gap {gap:?}; {after:?}",
        back - start,
        settled_at - back
    );

    assert_eq!(mode(members[leader].client).as_deref(), Some("leader"));
    assert_eq!(after, before, "the leadership moved");
    assert_eq!(lost, 0, "a writer lost its member");
    // An election stalls writes for at least its timeout (500 ms here): no gap comes near.
    assert!(gap < Duration::from_millis(400), "writes stalled {gap:?}");
    assert_eq!(
        metric(&members[follower], "zooid_elections_started_total"),
        0.0
    );
    metric(&members[follower], "zooid_pre_votes_lost_total")
}

#[test]
fn a_follower_cut_off_for_15_s_comes_back_without_deposing_the_leader() {
    let lost = follower_away_and_back(true, |_, _| {
        // The schedule of the fault itself, not a wait for a condition.
        std::thread::sleep(Duration::from_secs(15));
    });
    // Cut off, it tried to stand (a pre-vote every 0.5-1 s) and never raised its term.
    assert!(lost >= 5.0, "only {lost} pre-votes tried while cut off");
}

#[test]
fn a_follower_paused_for_5_s_comes_back_without_deposing_the_leader() {
    follower_away_and_back(false, |members, follower| {
        members[follower].signal("-STOP");
        std::thread::sleep(Duration::from_secs(5));
        members[follower].signal("-CONT");
    });
}
