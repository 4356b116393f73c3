//! When each live session expires unless its client is heard from.
//!
//! Kept as ZooKeeper's expiry queue keeps it: a deadline is rounded up to the next multiple of
//! the check interval and sessions are grouped by that rounded deadline. A touch moves a session
//! between two groups (nothing at all when it stays in the same one, the common case for a busy
//! client), and each check takes the groups that are due: the work is proportional to the
//! sessions that expire, never to all of them. Rounding up makes a session expire at most one
//! interval after its timeout, never before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    group: u64,
    timeout: Duration,
}

#[derive(Debug)]
pub struct Deadlines {
    /// Groups are numbered in intervals since this instant.
    origin: Instant,
    interval: Duration,
    by_session: HashMap<i64, Entry>,
    groups: BTreeMap<u64, HashSet<i64>>,
}

impl Deadlines {
    pub fn new(interval: Duration) -> Self {
        Deadlines {
            origin: Instant::now(),
            interval: interval.max(Duration::from_millis(1)),
            by_session: HashMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// The first group whose time is at or after `at`.
    fn group_at(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let step = self.interval.as_nanos();
        since.div_ceil(step) as u64
    }

    fn place(&mut self, session: i64, group: u64) {
        self.groups.entry(group).or_default().insert(session);
    }

    fn unplace(&mut self, session: i64, group: u64) {
        if let Some(g) = self.groups.get_mut(&group) {
            g.remove(&session);
            if g.is_empty() {
                self.groups.remove(&group);
            }
        }
    }

    /// Every live session by the time it expires unless touched, soonest first (`dump`).
    pub fn by_deadline(&self) -> impl Iterator<Item = (Instant, &HashSet<i64>)> {
        self.groups.iter().map(|(g, sessions)| {
            let at = self
                .interval
                .saturating_mul(u32::try_from(*g).unwrap_or(u32::MAX));
            (self.origin + at, sessions)
        })
    }

    /// Gives a session a deadline `timeout` from `now` (a new session, a restored one).
    pub fn set(&mut self, session: i64, timeout: Duration, now: Instant) {
        let group = self.group_at(now + timeout);
        if let Some(old) = self.by_session.insert(session, Entry { group, timeout }) {
            self.unplace(session, old.group);
        }
        self.place(session, group);
    }

    /// Pushes a live session's deadline out by its timeout; false if it has none.
    pub fn touch(&mut self, session: i64, now: Instant) -> bool {
        let Some(e) = self.by_session.get(&session).copied() else {
            return false;
        };
        let group = self.group_at(now + e.timeout);
        if group != e.group {
            self.unplace(session, e.group);
            self.place(session, group);
            self.by_session.insert(session, Entry { group, ..e });
        }
        true
    }

    /// Forgets a session's deadline; false if it had none.
    pub fn remove(&mut self, session: i64) -> bool {
        match self.by_session.remove(&session) {
            Some(e) => {
                self.unplace(session, e.group);
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, session: i64) -> bool {
        self.by_session.contains_key(&session)
    }

    pub fn len(&self) -> usize {
        self.by_session.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_session.is_empty()
    }

    pub fn clear(&mut self) {
        self.by_session.clear();
        self.groups.clear();
    }

    /// Sessions whose deadline is at or before `now` (they keep it until removed).
    pub fn expired(&self, now: Instant) -> Vec<i64> {
        // Group g falls due at origin + g * interval.
        let since = now.saturating_duration_since(self.origin).as_nanos();
        let due = (since / self.interval.as_nanos()) as u64;
        self.groups
            .range(..=due)
            .flat_map(|(_, s)| s.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_session_expires_after_its_timeout_and_within_one_interval() {
        let mut d = Deadlines::new(100 * MS);
        let t0 = d.origin + 7 * MS;
        d.set(1, 1000 * MS, t0);
        assert!(d.expired(t0 + 999 * MS).is_empty());
        // Rounded up to the interval: due at 1100 ms after the origin at the latest.
        assert_eq!(d.expired(t0 + 1100 * MS), vec![1]);
        assert!(
            d.contains(1),
            "expired sessions keep their deadline until removed"
        );
        assert!(d.remove(1));
        assert!(d.expired(t0 + 5000 * MS).is_empty());
        assert!(!d.remove(1));
    }

    #[test]
    fn touches_move_sessions_between_groups() {
        let mut d = Deadlines::new(10 * MS);
        let t0 = d.origin;
        d.set(1, 100 * MS, t0);
        d.set(2, 100 * MS, t0);
        for step in 1..=20u32 {
            assert!(d.touch(1, t0 + step * 50 * MS));
        }
        // Session 2 was never touched; session 1 was, last at 1000 ms.
        assert_eq!(d.expired(t0 + 1000 * MS), vec![2]);
        d.remove(2);
        assert!(d.expired(t0 + 1099 * MS).is_empty());
        assert_eq!(d.expired(t0 + 1110 * MS), vec![1]);
        assert!(!d.touch(3, t0), "no deadline, nothing to touch");
        assert_eq!(d.len(), 1);
        // Every group left holds a session: touching cleans up the groups it leaves.
        assert_eq!(d.groups.len(), 1);
    }

    #[test]
    fn set_again_replaces_the_deadline() {
        let mut d = Deadlines::new(10 * MS);
        let t0 = d.origin;
        d.set(1, 100 * MS, t0);
        d.set(1, 10_000 * MS, t0);
        assert!(d.expired(t0 + 5000 * MS).is_empty());
        assert_eq!(d.groups.len(), 1);
        d.clear();
        assert!(d.is_empty());
    }
}
