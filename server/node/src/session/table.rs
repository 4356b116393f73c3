//! The session path as this server keeps it beside the replicated tree (which holds each
//! session's timeout, password and owner): when each live session expires unless its client
//! is heard from, which connection holds it, the sessions opened while read-only (this
//! member's alone), and which sessions were heard from since the leader was last told.

use crate::clock::now_ms;
use crate::session::deadlines::Deadlines;
use crate::session::ConnId;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use zooid_tree::DataTree;

pub struct Sessions {
    /// This server's id: the top byte of the session ids it hands out.
    node_id: u64,
    /// When each live session expires unless touched.
    deadlines: Deadlines,
    /// Which connection currently holds each session.
    holders: HashMap<i64, ConnId>,
    next_id: i64,
    /// Part of a replicated ensemble: touches are gathered for the leader, which alone
    /// expires sessions.
    replicated: bool,
    /// Sessions heard from since the last touch sent to the leader.
    touched: HashSet<i64>,
    /// Sessions opened while read-only: known to this member alone (they cannot be ordered),
    /// they end when it rejoins the quorum, as a ZooKeeper read-only server's do.
    local: HashMap<i64, [u8; 16]>,
}

impl Sessions {
    /// `expiry_interval` is how often expiry is checked: deadlines are kept to that grain.
    pub fn new(node_id: u64, expiry_interval: Duration) -> Self {
        Sessions {
            node_id,
            deadlines: Deadlines::new(expiry_interval),
            holders: HashMap::new(),
            next_id: 1,
            replicated: false,
            touched: HashSet::new(),
            local: HashMap::new(),
        }
    }

    pub fn set_replicated(&mut self, replicated: bool) {
        self.replicated = replicated;
    }

    /// After the state was restored (start, snapshot install, a backup swapped in): every
    /// session of `tree` gets a fresh deadline, since its clients may reconnect before it
    /// passes, and new session ids start above every known one.
    pub fn restored(&mut self, tree: &DataTree) {
        // Session ids as ZooKeeper makes them: a time-derived base (top byte = server id),
        // counting up; never 0 and never with the top bit set.
        let top = self.node_id as i64 & 0x7f;
        let base = ((now_ms() << 24) as u64 >> 8) as i64 | (top << 56);
        // Above this server's own earlier ids only: another server's ids (the top byte is
        // its id) are its to hand out, and counting on from them made two servers give one
        // id to two clients, the second create overwriting the first one's password.
        let highest = tree
            .sessions()
            .map(|(id, _)| id)
            .filter(|id| id >> 56 == top)
            .max()
            .unwrap_or(0);
        self.next_id = base.max(highest + 1).max(1);
        self.deadlines.clear();
        self.refresh(tree);
    }

    /// Every session of `tree` gets a fresh deadline (this member just became the leader and
    /// did not see the other members' touches).
    pub fn refresh(&mut self, tree: &DataTree) {
        let now = Instant::now();
        for (id, m) in tree.sessions() {
            self.deadlines.set(id, timeout(m.timeout_ms), now);
        }
    }

    pub fn new_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Opens a session on this member alone, while it is read-only.
    pub fn open_local(&mut self) -> (i64, [u8; 16]) {
        let id = self.new_id();
        let passwd: [u8; 16] = rand::random();
        self.local.insert(id, passwd);
        (id, passwd)
    }

    /// The password of a session opened here while read-only.
    pub fn local_passwd(&self, session: i64) -> Option<[u8; 16]> {
        self.local.get(&session).copied()
    }

    /// Back in the quorum: the sessions opened while read-only end.
    pub fn end_local(&mut self) {
        for (session, _) in std::mem::take(&mut self.local) {
            self.deadlines.remove(session);
        }
    }

    /// Ends a session opened while read-only, if `session` is one; returns whether it was,
    /// and the connection that held it.
    pub fn expire_local(&mut self, session: i64) -> Option<Option<ConnId>> {
        self.local.remove(&session)?;
        self.deadlines.remove(session);
        Some(self.holders.remove(&session))
    }

    /// Sets a session's deadline `timeout` from now.
    pub fn arm(&mut self, session: i64, timeout: Duration) {
        self.deadlines.set(session, timeout, Instant::now());
    }

    /// [`Sessions::arm`] with the timeout as the tree records it.
    pub fn arm_ms(&mut self, session: i64, timeout_ms: i32) {
        self.arm(session, timeout(timeout_ms));
    }

    /// Arms a session's deadline unless it has one (a create applied on every member).
    pub fn arm_new(&mut self, session: i64, timeout_ms: i32) {
        if !self.deadlines.contains(session) {
            self.arm_ms(session, timeout_ms);
        }
    }

    /// Its client was heard from: pushes the deadline out by its timeout, and notes it for
    /// the leader.
    pub fn touch(&mut self, session: i64) {
        if self.deadlines.touch(session, Instant::now())
            && self.replicated
            && !self.local.contains_key(&session)
        {
            self.touched.insert(session);
        }
    }

    /// Touches reported by another member (this one leads).
    pub fn touched_elsewhere(&mut self, sessions: &[i64]) {
        let now = Instant::now();
        for s in sessions {
            self.deadlines.touch(*s, now);
        }
    }

    /// The sessions heard from since the last call, for the leader.
    pub fn take_touched(&mut self) -> Vec<i64> {
        self.touched.drain().collect()
    }

    /// Sessions whose deadline passed.
    pub fn expired(&self, now: Instant) -> Vec<i64> {
        self.deadlines.expired(now)
    }

    /// The session no longer expires (closed, closing or expired).
    pub fn forget(&mut self, session: i64) {
        self.deadlines.remove(session);
    }

    /// Whether the session has a deadline here (not expired, not closing).
    pub fn is_live(&self, session: i64) -> bool {
        self.deadlines.contains(session)
    }

    pub fn count(&self) -> usize {
        self.deadlines.len()
    }

    /// Live sessions by deadline, soonest first (`dump`).
    pub fn by_deadline(&self) -> Vec<(Instant, Vec<i64>)> {
        self.deadlines
            .by_deadline()
            .map(|(at, s)| {
                let mut s: Vec<i64> = s.iter().copied().collect();
                s.sort_unstable();
                (at, s)
            })
            .collect()
    }

    /// The connection holding `session`, if any.
    pub fn holder(&self, session: i64) -> Option<ConnId> {
        self.holders.get(&session).copied()
    }

    /// `conn` now holds `session`; returns the connection that held it before, if another.
    pub fn hold(&mut self, session: i64, conn: ConnId) -> Option<ConnId> {
        self.holders
            .insert(session, conn)
            .filter(|old| *old != conn)
    }

    /// No connection holds `session` any more; returns the one that did.
    pub fn release(&mut self, session: i64) -> Option<ConnId> {
        self.holders.remove(&session)
    }

    /// `conn` went away: it no longer holds `session`, unless another connection took it.
    pub fn released_by(&mut self, session: i64, conn: ConnId) {
        if self.holders.get(&session) == Some(&conn) {
            self.holders.remove(&session);
        }
    }
}

fn timeout(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zooid_tree::{Txn, TxnOp};

    fn create(tree: &mut DataTree, session: i64, zxid: i64) {
        let op = TxnOp::CreateSession {
            timeout_ms: 10_000,
            passwd: [7; 16],
        };
        let txn = Txn {
            zxid,
            time: 0,
            session,
            origin: Some((session >> 56) as u64),
            checks: Default::default(),
            op,
        };
        tree.apply(txn).result.expect("session created");
    }

    #[test]
    fn new_ids_stay_in_this_servers_space_whatever_others_handed_out() {
        let mut tree = DataTree::new();
        // Server 3 hands out ids far above this server's clock-derived base.
        let theirs = (3i64 << 56) | 0x00ff_ffff_ffff_0000;
        create(&mut tree, theirs, 1);
        let mut s = Sessions::new(1, Duration::from_millis(10));
        s.restored(&tree);
        let id = s.new_id();
        assert_eq!(id >> 56, 1, "0x{id:x} is not server 1's");
        // Its own ids it counts on from.
        let mine = (1i64 << 56) | 0x00ff_ffff_ffff_0000;
        create(&mut tree, mine, 2);
        s.restored(&tree);
        assert_eq!(s.new_id(), mine + 1);
    }
}
