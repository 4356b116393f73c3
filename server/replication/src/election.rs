//! Elections owned by Zooid, not by openraft's timer: a member that has not heard from a leader
//! for a while first asks the voters whether they would elect it (a pre-vote, Raft thesis
//! §9.6) and only with a quorum of yeses has openraft start a real election, raising its term.
//!
//! Two things follow. A member cut off from the others (a partition, a long pause) never
//! raises its term, so when it is back its term cannot depose the leader that went on without
//! it. And a member that hears from a live leader says no (leader stickiness): one member that
//! lost only its own link to the leader cannot take leadership from a leader the others still
//! follow. openraft's own elections are switched off (`enable_elect`); the planned hand-over
//! ([`crate::wire::PeerRequest::TakeOver`]) still starts one directly.
//!
//! How long is "a while" comes from ZooKeeper's knobs ([`Timing`]).
//!
//! A voter that starts without any data while the others went on (its disk or volume lost and
//! replaced) withholds its vote, real and pre-vote, and does not stand, until it has caught up
//! with a leader ([`Elector::may_vote`]): with an empty log it would grant its vote to any
//! candidate, and with one other member missing entries that this member had acknowledged
//! before its disk was lost, the two would elect a leader without them (Raft's reason to add
//! a member that lost its state anew rather than let it vote).

use crate::types::*;
use openraft::{LogId, Raft, ServerState};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long members wait on each other, from ZooKeeper's `tickTime` and `syncLimit`.
///
/// ZooKeeper's leader pings its followers every half tick, and a follower (or leader) that has
/// not heard from the other side for `syncLimit` ticks gives it up. Zooid keeps those two
/// meanings: heartbeats every quarter tick, and a member stands for election after it has heard
/// nothing from a leader for between half of `syncLimit` ticks and all of them (random in
/// that range, so that two members seldom stand at once), so that it never waits longer than
/// a ZooKeeper follower would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often the leader reaches each member when there is nothing else to send; also how
    /// long openraft gives a member to confirm a read index.
    pub heartbeat: Duration,
    /// Silence from the leader after which a member grants a pre-vote, and the least a member
    /// waits before it stands (unless the leader's connection closed: then just past the
    /// lease, [`Timing::lease`]).
    pub election_timeout: Duration,
    /// ZooKeeper's `syncLimit` ticks: a member without a quorum that long lets its clients go.
    pub sync_limit: Duration,
}

impl Timing {
    /// From ZooKeeper's `tickTime` and `syncLimit` (in ticks).
    pub fn from_ticks(tick: Duration, sync_limit: u32) -> Timing {
        let sync = tick * sync_limit.max(1);
        // A quarter tick: the lease that keeps voters from electing anyone else is one
        // heartbeat, so a crashed leader is replaced in about one, 0.5-0.7 s at ZooKeeper's
        // sample tick of 2 s, where ZooKeeper's followers take 0.7 s (scripts/bench-faults.sh).
        // Not under 100 ms while the tick allows half of it: openraft gives a read index one
        // heartbeat to be confirmed, and short ticks are for tests on busy machines. openraft
        // needs the heartbeat shorter than the election timeout; a tick or a syncLimit small
        // enough to break that is lifted, not refused.
        let floor = (tick / 2).min(Duration::from_millis(100));
        let heartbeat = (tick / 4).max(floor).max(Duration::from_millis(10));
        let election_timeout = (sync / 2).max(heartbeat * 3);
        Timing {
            heartbeat,
            election_timeout,
            sync_limit: sync.max(election_timeout * 2),
        }
    }
}

impl Timing {
    /// How long after a leader's last append a voter refuses real votes (openraft's leader
    /// lease, which it takes from its election timeout): a heartbeat and a little, so that a
    /// member standing because the leader's connection closed (a crash) is not refused.
    pub fn lease(&self) -> Duration {
        self.heartbeat + Duration::from_millis(2)
    }

    /// When a member whose leader's connection closed stands, counted from the leader's last
    /// append: just past the voters' lease, plus a random part of a heartbeat so that two
    /// members seldom stand at once (`draw` in 0..1). A crash is noticed at once; the
    /// election follows within a heartbeat or so, as ZooKeeper's followers start theirs.
    fn gone_timeout(&self, draw: f64) -> Duration {
        self.lease() + self.heartbeat.mul_f64(0.1 + 0.3 * draw)
    }
}

impl Default for Timing {
    /// ZooKeeper's sample zoo.cfg: a tick of 2 s, syncLimit 5.
    fn default() -> Self {
        Timing::from_ticks(Duration::from_secs(2), 5)
    }
}

/// What a member asks the voters before it stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVote {
    /// The term it would stand in (its own plus one; not raised until it does stand).
    pub term: u64,
    /// Its last log entry: a voter with more says no, as it would to the real vote.
    pub last_log_id: Option<LogId<NodeId>>,
}

/// A voter's answer to a [`PreVote`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum PreVoteAnswer {
    Granted,
    /// This member hears from a live leader (or leads, with a quorum behind it).
    LeaderAlive,
    /// This member's log is ahead of the candidate's.
    LogBehind,
    /// This member came back without its data and has not caught up with a leader yet: it
    /// votes for nobody. (Last: older members read the variants before it.)
    CatchingUp,
}

/// How far a member has got, as it tells a member that starts without any data.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    /// It belongs to an ensemble.
    pub initialized: bool,
    /// Its last log index (0 is the membership every member starts with).
    pub last_log: Option<u64>,
    /// Its last applied (so committed) index.
    pub applied: Option<u64>,
}

impl Progress {
    /// Whether this member went past the start of the ensemble: it has entries that a
    /// leader wrote.
    fn went_on(&self) -> bool {
        self.last_log.is_some_and(|i| i >= 1)
    }
}

/// What a member that started without data learned of the others ([`decide_votes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A quorum of voters, this one included, has nothing past the ensemble's start: a new
    /// ensemble, and this member votes.
    Fresh,
    /// Some member went on (its log holds leaders' entries): this one lost its data and must
    /// apply up to the highest applied index it was told of before it votes.
    Behind(u64),
}

/// Decides from the answers so far; `None` while it cannot tell (too few answers).
/// `answers` holds every member's that answered, this one's own included.
pub fn decide_votes(
    voters: &std::collections::BTreeSet<NodeId>,
    answers: &std::collections::BTreeMap<NodeId, Progress>,
) -> Option<Start> {
    if answers.values().any(Progress::went_on) {
        let applied = answers.values().filter_map(|p| p.applied).max();
        return Some(Start::Behind(applied.unwrap_or(0).max(1)));
    }
    let fresh = voters.iter().filter(|id| answers.contains_key(id)).count();
    (fresh * 2 > voters.len()).then_some(Start::Fresh)
}

/// Counters of this member's elections, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ElectionStats {
    /// Real elections this member started (openraft raising its term), hand-overs included.
    pub elections_started: u64,
    /// Pre-votes a quorum granted (each followed by an election).
    pub pre_votes_won: u64,
    /// Pre-votes without a quorum: the term was left alone.
    pub pre_votes_lost: u64,
    /// Pre-votes of other members this member refused.
    pub pre_votes_refused: u64,
    /// Planned hand-overs this member took part in (as the leader stopping, or the member
    /// taking over).
    pub hand_overs: u64,
    /// Votes and pre-votes refused because this member came back without its data and had
    /// not caught up with a leader yet.
    pub votes_withheld: u64,
}

/// When a leader last reached this member. openraft 0.9 tells a follower who leads but not
/// whether it still hears from it: a member cut off from the leader (or removed from the
/// ensemble, which nobody tells it) would go on believing in it.
pub struct LeaderContact {
    start: Instant,
    /// Milliseconds from `start` to the last append accepted from a leader.
    last_ms: AtomicU64,
    /// The leader's connection to this member closed, and no append came since: its process
    /// is most likely gone (a crash closes its sockets at once), as a ZooKeeper follower
    /// concludes when its leader's connection drops.
    gone: AtomicBool,
    /// Wakes the elector when `gone` is set.
    woken: tokio::sync::Notify,
}

impl Default for LeaderContact {
    fn default() -> Self {
        LeaderContact {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            woken: tokio::sync::Notify::new(),
        }
    }
}

impl LeaderContact {
    pub(crate) fn heard(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
        self.gone.store(false, Ordering::Relaxed);
    }

    /// The leader's connection closed (not replaced by a newer one).
    pub(crate) fn leader_gone(&self) {
        self.gone.store(true, Ordering::Relaxed);
        self.woken.notify_one();
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Time since a leader's last append reached this member (since start if none has).
    pub fn silence(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Decides when this member stands, and answers other members' pre-votes.
pub struct Elector {
    timing: Timing,
    contact: Arc<LeaderContact>,
    /// Cleared by a leader that hands over and stops: it must not stand again.
    standing: AtomicBool,
    elections_started: AtomicU64,
    pre_votes_won: AtomicU64,
    pre_votes_lost: AtomicU64,
    pre_votes_refused: AtomicU64,
    hand_overs: AtomicU64,
    /// 0 once this member may vote; otherwise the index it must have applied first (see
    /// [`Elector::may_vote`]).
    must_apply: AtomicU64,
    votes_withheld: AtomicU64,
}

impl Elector {
    pub(crate) fn new(timing: Timing, contact: Arc<LeaderContact>) -> Elector {
        Elector {
            timing,
            contact,
            standing: AtomicBool::new(true),
            elections_started: AtomicU64::new(0),
            pre_votes_won: AtomicU64::new(0),
            pre_votes_lost: AtomicU64::new(0),
            pre_votes_refused: AtomicU64::new(0),
            hand_overs: AtomicU64::new(0),
            must_apply: AtomicU64::new(0),
            votes_withheld: AtomicU64::new(0),
        }
    }

    /// This voter starts without any data among others: it withholds its vote until it knows
    /// whether the ensemble is new ([`Elector::started`]) or it has caught up with a leader.
    pub(crate) fn withhold_votes(&self) {
        self.must_apply.store(1, Ordering::Relaxed);
    }

    /// Whether this member withholds its vote (until it knows the ensemble is new, or has
    /// caught up).
    pub(crate) fn withholding(&self) -> bool {
        self.must_apply.load(Ordering::Relaxed) != 0
    }

    /// What the others said ([`decide_votes`]), for a member that withholds its vote.
    pub(crate) fn started(&self, start: Start) {
        let update = |floor: u64| match (floor, start) {
            // Caught up already: nothing to withhold.
            (0, _) => None,
            (_, Start::Fresh) => Some(0),
            (floor, Start::Behind(applied)) => Some(floor.max(applied)),
        };
        let before = self
            .must_apply
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, update);
        match (before, start) {
            (Ok(_), Start::Fresh) => tracing::info!(
                "a new ensemble (a quorum of voters has no entries yet): this member votes"
            ),
            (Ok(_), Start::Behind(applied)) => tracing::warn!(
                "this member has no data, but the ensemble has applied up to index {applied}: \
                 it came back without its data (a lost disk or volume), and votes for nobody \
                 until it has caught up with a leader"
            ),
            (Err(_), _) => {}
        }
    }

    /// Whether this member may vote, or stand. Always, unless it started without data among
    /// others that went on: then once it has applied the index they had applied (everything
    /// it might have acknowledged before it lost its data) and an entry of the current
    /// leader's term (the leader was elected without it, by members that kept their data, so
    /// its log holds every committed entry; having applied an entry of its term, this member
    /// holds them too).
    pub(crate) fn may_vote(&self, raft: &Raft<TypeConfig>) -> bool {
        let floor = self.must_apply.load(Ordering::Relaxed);
        if floor == 0 {
            return true;
        }
        let m = raft.metrics().borrow().clone();
        let caught_up = m.current_leader.is_some_and(|l| l != m.id)
            && m.last_applied
                .is_some_and(|a| a.index >= floor && a.leader_id.term == m.current_term);
        if caught_up {
            self.must_apply.store(0, Ordering::Relaxed);
            tracing::info!(
                applied = m.last_applied.map(|a| a.index),
                term = m.current_term,
                "caught up with the leader after starting without data: this member votes again"
            );
        }
        caught_up
    }

    /// Counts a vote or pre-vote refused by [`Elector::may_vote`].
    pub(crate) fn withheld(&self, candidate: NodeId) {
        self.votes_withheld.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            candidate,
            "refusing to vote: this member started without data and has not caught up with a \
             leader yet"
        );
    }

    pub(crate) fn contact(&self) -> &LeaderContact {
        &self.contact
    }

    pub(crate) fn timing(&self) -> Timing {
        self.timing
    }

    /// This member will never stand again (it is handing over and stopping).
    pub(crate) fn stand_down(&self) {
        self.standing.store(false, Ordering::Relaxed);
        self.hand_overs.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes over from a leader that is stopping: an election at once, without a pre-vote
    /// (the others still hear from that leader and would refuse one).
    pub(crate) async fn take_over(&self, raft: &Raft<TypeConfig>) -> Result<(), String> {
        self.hand_overs.fetch_add(1, Ordering::Relaxed);
        self.elect_now(raft).await
    }

    pub(crate) fn stats(&self) -> ElectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ElectionStats {
            elections_started: get(&self.elections_started),
            pre_votes_won: get(&self.pre_votes_won),
            pre_votes_lost: get(&self.pre_votes_lost),
            pre_votes_refused: get(&self.pre_votes_refused),
            hand_overs: get(&self.hand_overs),
            votes_withheld: get(&self.votes_withheld),
        }
    }

    async fn elect_now(&self, raft: &Raft<TypeConfig>) -> Result<(), String> {
        self.elections_started.fetch_add(1, Ordering::Relaxed);
        raft.trigger().elect().await.map_err(|e| e.to_string())
    }

    /// This member's answer to another's pre-vote.
    pub(crate) fn judge(
        &self,
        raft: &Raft<TypeConfig>,
        from: NodeId,
        req: &PreVote,
    ) -> PreVoteAnswer {
        if !self.may_vote(raft) {
            self.withheld(from);
            self.pre_votes_refused.fetch_add(1, Ordering::Relaxed);
            return PreVoteAnswer::CatchingUp;
        }
        let answer = self.answer(raft, req);
        if answer != PreVoteAnswer::Granted {
            self.pre_votes_refused.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    fn answer(&self, raft: &Raft<TypeConfig>, req: &PreVote) -> PreVoteAnswer {
        // As for openraft's real vote, who asks is not checked: the candidate counts the
        // answers of its voters only, and a member that does not know the ensemble yet (added
        // to a new one, waiting for the leader) must be able to help elect the first.
        let m = raft.metrics().borrow().clone();
        let alive = match m.state {
            // A leader is alive while a quorum acknowledges it.
            ServerState::Leader => m
                .millis_since_quorum_ack
                .is_some_and(|ms| Duration::from_millis(ms) < self.timing.election_timeout),
            _ => {
                m.current_leader.is_some()
                    && self.contact.silence() < self.timing.election_timeout
                    && !self.contact.is_gone()
            }
        };
        if alive {
            return PreVoteAnswer::LeaderAlive;
        }
        let mine = raft.data_metrics().borrow().last_log;
        if req.last_log_id < mine {
            return PreVoteAnswer::LogBehind;
        }
        PreVoteAnswer::Granted
    }

    /// Runs until the node stops: whenever this voter has heard nothing from a leader for its
    /// (randomized) timeout, a pre-vote, and an election if a quorum grants it.
    pub(crate) async fn run(
        self: Arc<Self>,
        raft: Raft<TypeConfig>,
        network: crate::network::PeerNetwork,
    ) {
        // A try (won or lost) is followed by a whole new timeout, even if the silence goes on.
        let mut last_try: Option<Instant> = None;
        loop {
            let timeout = self.pick_timeout();
            // After the leader's connection closed, a member stands once the voters' lease
            // has run out (the voters that saw it close too grant the pre-vote; one that
            // still hears from the leader refuses it).
            let gone_timeout = self.timing.gone_timeout(rand::random::<f64>());
            loop {
                let quiet = self.contact.silence();
                let quiet = last_try.map_or(quiet, |t| quiet.min(t.elapsed()));
                let due = if self.contact.is_gone() {
                    gone_timeout
                } else {
                    timeout
                };
                if quiet >= due {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(due - quiet) => {}
                    _ = self.contact.woken.notified() => {}
                }
            }
            last_try = Some(Instant::now());
            let m = raft.metrics().borrow().clone();
            if m.running_state.is_err() {
                return;
            }
            let standing = self.standing.load(Ordering::Relaxed)
                && m.state != ServerState::Leader
                && is_voter(&m)
                && self.may_vote(&raft);
            if standing && self.pre_vote(&raft, &network, &m).await {
                self.pre_votes_won.fetch_add(1, Ordering::Relaxed);
                match self.elect_now(&raft).await {
                    Ok(()) => tracing::info!(
                        term = m.current_term + 1,
                        "no leader heard for {:?} and a quorum agrees: standing for election",
                        self.contact.silence()
                    ),
                    Err(e) => tracing::warn!("starting an election: {e}"),
                }
            }
        }
    }

    /// Between one election timeout and two.
    fn pick_timeout(&self) -> Duration {
        let base = self.timing.election_timeout;
        base + base.mul_f64(rand::random::<f64>())
    }

    /// Asks every other voter; true once a quorum (this member included) grants.
    async fn pre_vote(
        &self,
        raft: &Raft<TypeConfig>,
        network: &crate::network::PeerNetwork,
        m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>,
    ) -> bool {
        let membership = m.membership_config.membership().clone();
        let req = PreVote {
            term: m.current_term + 1,
            last_log_id: raft.data_metrics().borrow().last_log,
        };
        let mut granted = vec![m.id];
        let mut asks = tokio::task::JoinSet::new();
        for id in membership.voter_ids().filter(|id| *id != m.id) {
            let Some(node) = membership.get_node(&id) else {
                continue;
            };
            let (network, spec, req) = (network.clone(), node.addr.clone(), req.clone());
            let within = self.timing.election_timeout;
            asks.spawn(async move { (id, network.pre_vote(id, &spec, req, within).await) });
        }
        let mut refusals = Vec::new();
        while let Some(Ok((id, answer))) = asks.join_next().await {
            match answer {
                Some(PreVoteAnswer::Granted) => {
                    granted.push(id);
                    if is_quorum(&membership, &granted) {
                        // The other answers are left to arrive (aborting a call midway costs
                        // its connection).
                        asks.detach_all();
                        return true;
                    }
                }
                Some(other) => refusals.push(format!("server {id}: {other:?}")),
                None => refusals.push(format!("server {id}: no answer")),
            }
        }
        self.pre_votes_lost.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "no leader heard for {:?}, but no quorum would elect this member (term {} stays): {}",
            self.contact.silence(),
            m.current_term,
            refusals.join(", ")
        );
        false
    }
}

fn is_voter(m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>) -> bool {
    m.membership_config
        .membership()
        .voter_ids()
        .any(|id| id == m.id)
}

/// Whether `granted` holds a majority of every configuration in force (two while a membership
/// change is under way, as in Raft's joint consensus).
fn is_quorum(
    membership: &openraft::Membership<NodeId, openraft::BasicNode>,
    granted: &[NodeId],
) -> bool {
    membership.get_joint_config().iter().all(|config| {
        let yes = config.iter().filter(|id| granted.contains(id)).count();
        yes * 2 > config.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_follows_zookeeper_ticks() {
        let t = Timing::from_ticks(Duration::from_millis(2000), 5);
        assert_eq!(t.heartbeat, Duration::from_millis(500));
        assert_eq!(t.election_timeout, Duration::from_millis(5000));
        assert_eq!(t.sync_limit, Duration::from_millis(10000));
        let t = Timing::from_ticks(Duration::from_millis(200), 5);
        assert_eq!(t.heartbeat, Duration::from_millis(100));
        assert_eq!(t.election_timeout, Duration::from_millis(500));
        assert_eq!(t.sync_limit, Duration::from_millis(1000));
        // A syncLimit of 1 would leave no room between heartbeats and elections.
        let t = Timing::from_ticks(Duration::from_millis(200), 1);
        assert_eq!(t.election_timeout, Duration::from_millis(300));
        assert_eq!(t.sync_limit, Duration::from_millis(600));
        // A tiny tick still leaves openraft a heartbeat shorter than the election timeout.
        let t = Timing::from_ticks(Duration::from_millis(1), 1);
        assert!(t.heartbeat < t.election_timeout);
    }

    #[test]
    fn a_member_without_data_learns_whether_the_ensemble_is_new_or_went_on() {
        use std::collections::{BTreeMap, BTreeSet};
        let voters: BTreeSet<NodeId> = [1, 2, 3].into();
        let progress = |last_log: Option<u64>, applied: Option<u64>| Progress {
            initialized: last_log.is_some(),
            last_log,
            applied,
        };
        let empty = progress(None, None);
        let started = progress(Some(0), Some(0));
        // Alone it cannot tell.
        let mut answers = BTreeMap::from([(3, empty)]);
        assert_eq!(decide_votes(&voters, &answers), None);
        // A quorum with nothing past the start: a new ensemble.
        answers.insert(1, started);
        assert_eq!(decide_votes(&voters, &answers), Some(Start::Fresh));
        // One member that went on is enough, whatever the others say.
        answers.insert(2, progress(Some(42), Some(40)));
        assert_eq!(decide_votes(&voters, &answers), Some(Start::Behind(40)));
        let answers = BTreeMap::from([(3, empty), (2, progress(Some(1), None))]);
        assert_eq!(decide_votes(&voters, &answers), Some(Start::Behind(1)));
        // Observers answer but do not make a quorum of voters.
        let answers = BTreeMap::from([(3, empty), (4, started), (5, started)]);
        assert_eq!(decide_votes(&voters, &answers), None);
    }

    #[test]
    fn a_member_whose_leader_is_gone_stands_past_the_lease_and_before_the_timeout() {
        for tick in [1, 200, 2000] {
            let t = Timing::from_ticks(Duration::from_millis(tick), 5);
            for draw in [0.0, 0.5, 0.999] {
                let due = t.gone_timeout(draw);
                assert!(due > t.lease(), "tick {tick}: {due:?}");
                assert!(due < t.election_timeout, "tick {tick}: {due:?}");
            }
        }
    }
}
