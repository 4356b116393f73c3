//! What this member is to its ensemble, and so what it may do: one [`Role`], changed only by
//! the transitions of [`Position`] (a leader change, the quorum lost or regained, a membership
//! change), each told by the runtime as consensus reports it.

use std::time::{Duration, Instant};

/// This member's role, as ZooKeeper names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not part of an ensemble: it leads itself.
    Standalone,
    /// In an ensemble, with no leader known (at start, or between two leaders). Clients are
    /// still served: an election is shorter than the grace before they are let go.
    Looking,
    Leader {
        since: Instant,
    },
    Follower,
    /// Replicates and serves, never votes.
    Observer,
    /// Cut off from a quorum with `readonlymode.enabled`: read-only clients only.
    ReadOnly,
    /// Cut off from a quorum: every client is let go and new ones are refused.
    NotServing,
}

/// The facts a role is derived from, and the transitions between roles.
#[derive(Debug, Clone)]
pub struct Position {
    role: Role,
    /// This member's id.
    me: u64,
    /// The leader consensus last reported, kept while cut off so that the role comes back
    /// with the quorum.
    leader: Option<u64>,
    /// A learner of the membership (an observer), by its start-up config or a reconfig.
    observer: bool,
    /// ZooKeeper's `readonlymode.enabled`.
    read_only_mode: bool,
}

impl Position {
    /// A member at start: standalone, or looking for its ensemble's leader.
    pub fn new(me: u64, replicated: bool) -> Position {
        Position {
            role: if replicated {
                Role::Looking
            } else {
                Role::Standalone
            },
            me,
            leader: None,
            observer: false,
            read_only_mode: false,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// `readonlymode.enabled`, from the configuration.
    pub fn set_read_only_mode(&mut self, enabled: bool) {
        self.read_only_mode = enabled;
    }

    /// Whether this member is a learner of the membership (start-up config or reconfig).
    pub fn set_observer(&mut self, observer: bool) {
        self.observer = observer;
        if self.serving() {
            self.role = self.derived(Instant::now());
        }
    }

    /// Consensus reports a new leader, or none.
    pub fn leader_changed(&mut self, leader: Option<u64>, now: Instant) {
        self.leader = leader;
        if self.serving() {
            self.role = self.derived(now);
        }
    }

    /// Cut off from a quorum for longer than the grace period.
    pub fn quorum_lost(&mut self) {
        if self.role == Role::Standalone {
            return;
        }
        self.role = if self.read_only_mode {
            Role::ReadOnly
        } else {
            Role::NotServing
        };
    }

    /// Back in a quorum; returns whether this member was serving read-only clients (they
    /// are let go, to come back for read-write sessions).
    pub fn quorum_regained(&mut self, now: Instant) -> bool {
        let was_read_only = self.role == Role::ReadOnly;
        if !self.serving() {
            self.role = self.derived(now);
        }
        was_read_only
    }

    /// Whether clients are served (read-write): not cut off from a quorum.
    pub fn serving(&self) -> bool {
        !matches!(self.role, Role::ReadOnly | Role::NotServing)
    }

    /// Whether only read-only clients are served.
    pub fn read_only(&self) -> bool {
        self.role == Role::ReadOnly
    }

    /// Whether this member expires sessions and collects containers: a standalone server,
    /// or the leader of an ensemble.
    pub fn leads(&self) -> bool {
        matches!(self.role, Role::Standalone | Role::Leader { .. })
    }

    /// Since when this member leads an ensemble.
    pub fn leading_for(&self, now: Instant) -> Option<Duration> {
        match self.role {
            Role::Leader { since } => Some(now.saturating_duration_since(since)),
            _ => None,
        }
    }

    /// ZooKeeper's name for the role, as `srvr` and `mntr` print it.
    pub fn mode(&self) -> &'static str {
        match self.role {
            Role::Standalone => "standalone",
            Role::Leader { .. } => "leader",
            Role::Observer => "observer",
            Role::ReadOnly => "read-only",
            // ZooKeeper answers nothing while looking or cut off; Zooid still serves through
            // an election, as the member it will most likely be again.
            Role::Follower | Role::Looking | Role::NotServing if self.observer => "observer",
            Role::Follower | Role::Looking | Role::NotServing => "follower",
        }
    }

    /// The role a member in a quorum has, from the facts.
    fn derived(&self, now: Instant) -> Role {
        match (self.role, self.leader) {
            (Role::Standalone, _) => Role::Standalone,
            (Role::Leader { since }, Some(l)) if l == self.me => Role::Leader { since },
            (_, Some(l)) if l == self.me => Role::Leader { since: now },
            (_, None) => Role::Looking,
            (_, Some(_)) if self.observer => Role::Observer,
            (_, Some(_)) => Role::Follower,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_server_leads_and_is_never_cut_off() {
        let mut p = Position::new(1, false);
        assert!(p.leads() && p.serving());
        p.quorum_lost();
        assert_eq!(p.role(), Role::Standalone);
        assert_eq!(p.mode(), "standalone");
    }

    #[test]
    fn a_member_looks_then_follows_or_leads() {
        let now = Instant::now();
        let mut p = Position::new(2, true);
        assert_eq!(p.role(), Role::Looking);
        assert!(p.serving() && !p.leads());
        p.leader_changed(Some(1), now);
        assert_eq!(p.role(), Role::Follower);
        p.leader_changed(None, now);
        assert_eq!(p.role(), Role::Looking);
        p.leader_changed(Some(2), now);
        assert_eq!(p.role(), Role::Leader { since: now });
        assert!(p.leads());
        // Told again that it leads: it has led since the first time.
        p.leader_changed(Some(2), now + Duration::from_secs(5));
        assert_eq!(
            p.leading_for(now + Duration::from_secs(7)),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn cut_off_and_back_keeps_what_consensus_said_meanwhile() {
        let now = Instant::now();
        let mut p = Position::new(3, true);
        p.leader_changed(Some(1), now);
        p.quorum_lost();
        assert_eq!(p.role(), Role::NotServing);
        assert!(!p.serving() && !p.read_only() && !p.leads());
        // A leader change while cut off changes nothing until the quorum is back...
        p.leader_changed(Some(3), now);
        assert_eq!(p.role(), Role::NotServing);
        assert!(!p.quorum_regained(now));
        // ...then it is the leader it was told of.
        assert_eq!(p.role(), Role::Leader { since: now });
    }

    #[test]
    fn read_only_mode_serves_read_only_clients_while_cut_off() {
        let now = Instant::now();
        let mut p = Position::new(2, true);
        p.set_read_only_mode(true);
        p.leader_changed(Some(1), now);
        p.quorum_lost();
        assert!(p.read_only() && !p.serving());
        assert_eq!(p.mode(), "read-only");
        assert!(p.quorum_regained(now));
        assert_eq!(p.role(), Role::Follower);
    }

    #[test]
    fn an_observer_observes_whoever_leads() {
        let now = Instant::now();
        let mut p = Position::new(4, true);
        p.set_observer(true);
        assert_eq!(p.mode(), "observer");
        p.leader_changed(Some(1), now);
        assert_eq!(p.role(), Role::Observer);
        // A reconfig made it a participant.
        p.set_observer(false);
        assert_eq!(p.role(), Role::Follower);
    }
}
