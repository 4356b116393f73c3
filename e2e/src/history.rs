//! A linearizability checker for histories of znode writes (Wing & Gong's search with Lowe's
//! memoization), one znode at a time: ZooKeeper promises linearizable writes, and each znode's
//! writes are independent of the others', so a history is linearizable if each znode's is.
//!
//! A znode is a register of `(value, version)`. An unconditional setData moves it to the next
//! version; a conditional one does so only if the version is the one expected, else it fails
//! with BADVERSION and changes nothing; a read (taken after `sync`) sees the current pair. An
//! operation whose outcome is unknown (its connection was lost before the reply) may have taken
//! effect at any point after it was sent, or never.

use std::collections::HashSet;

/// What a client asked of one znode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// setData with version -1.
    Write { value: u64 },
    /// setData with an expected version.
    Cas { expect: i32, value: u64 },
    /// getData after sync.
    Read,
}

/// What the client was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The write (or conditional write) was applied; the node's new version.
    Done {
        version: i32,
    },
    /// A conditional write refused with BADVERSION.
    BadVersion,
    Read {
        value: u64,
        version: i32,
    },
    /// No answer: the connection was lost.
    Unknown,
}

/// One operation, with the times (any monotonic unit) it was sent and answered.
#[derive(Debug, Clone)]
pub struct Event {
    pub key: String,
    pub op: Op,
    pub outcome: Outcome,
    pub sent: u64,
    /// `None` when the outcome is unknown.
    pub answered: Option<u64>,
}

/// A znode's history that no order of its operations explains, or that the search gave up
/// on (a check that cannot decide is a failure too, never a pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    /// Operations of that znode, known outcomes.
    pub operations: usize,
    /// The longest prefix (in operations linearized) the search found.
    pub longest: usize,
    /// The search visited [`SEARCH_BUDGET`] states without deciding.
    pub undecided: bool,
}

/// States the search may visit per znode before it gives up.
pub const SEARCH_BUDGET: usize = 1_000_000;

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.undecided {
            return write!(
                f,
                "znode {}: {} operations not decided within {SEARCH_BUDGET} states (at most {} \
                 ordered): too many operations of unknown outcome at once",
                self.key, self.operations, self.longest
            );
        }
        write!(
            f,
            "znode {}: {} operations cannot be linearized (at most {} could be ordered)",
            self.key, self.operations, self.longest
        )
    }
}

/// The register's state: (value, version).
type State = (u64, i32);

/// The state after `op` with `outcome` from `s`, or `None` if the pair cannot happen there.
/// An unknown outcome takes effect here (not taking effect at all is decided by leaving the
/// operation out).
fn step(s: State, op: Op, outcome: Outcome) -> Option<State> {
    match (op, outcome) {
        (Op::Write { value }, Outcome::Done { version }) => {
            (version == s.1 + 1).then_some((value, version))
        }
        (Op::Write { value }, Outcome::Unknown) => Some((value, s.1 + 1)),
        (Op::Cas { expect, value }, Outcome::Done { version }) => {
            (s.1 == expect && version == expect + 1).then_some((value, version))
        }
        (Op::Cas { expect, .. }, Outcome::BadVersion) => (s.1 != expect).then_some(s),
        (Op::Cas { expect, value }, Outcome::Unknown) => Some(if s.1 == expect {
            (value, expect + 1)
        } else {
            s
        }),
        (Op::Read, Outcome::Read { value, version }) => (s == (value, version)).then_some(s),
        _ => None,
    }
}

/// Checks every znode's history; `initial` is each znode's state before the first operation.
pub fn check(history: &[Event], initial: (u64, i32)) -> Result<(), Violation> {
    let mut keys: Vec<&str> = history.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let ops: Vec<&Event> = history
            .iter()
            .filter(|e| e.key == key && !(e.op == Op::Read && e.outcome == Outcome::Unknown))
            .collect();
        check_one(key, &ops, initial)?;
    }
    Ok(())
}

fn check_one(key: &str, ops: &[&Event], initial: State) -> Result<(), Violation> {
    let mut ops = ops.to_vec();
    ops.sort_by_key(|e| e.sent);
    let n = ops.len();
    let must = ops.iter().filter(|e| e.answered.is_some()).count();
    let is_done = |d: &[u64], i: usize| d[i / 64] >> (i % 64) & 1 == 1;
    // Depth-first over "which operation is linearized next", from the set already done. An
    // operation may go next only if no operation still to go was answered before it was
    // sent. Visited (done set, state) pairs are not searched twice.
    let words = n.div_ceil(64);
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(Vec<u64>, State, usize)> = vec![(vec![0; words], initial, 0)];
    let mut longest = 0;
    while let Some((done, state, known_done)) = stack.pop() {
        longest = longest.max(known_done);
        if known_done == must {
            return Ok(());
        }
        // Operations are in the order they were sent: the candidates start at the first one
        // not done and end where one was sent after the earliest answer still pending.
        let Some(first) = (0..n).find(|i| !is_done(&done, *i)) else {
            continue;
        };
        let mut horizon = u64::MAX;
        let mut candidates = Vec::new();
        for (i, e) in ops.iter().enumerate().skip(first) {
            if e.sent > horizon {
                break;
            }
            if is_done(&done, i) {
                continue;
            }
            candidates.push(i);
            if let Some(a) = e.answered {
                horizon = horizon.min(a);
            }
        }
        // Tried first (pushed last): operations with a known outcome, the earliest answered
        // first, then those of unknown outcome, which may also never have happened. When the
        // history is linearizable (the expected case) the first path found is the witness,
        // and the many places an unknown operation could take are rarely searched.
        candidates.sort_by_key(|i| std::cmp::Reverse(ops[*i].answered.unwrap_or(u64::MAX)));
        if seen.len() > SEARCH_BUDGET {
            return Err(Violation {
                key: key.to_string(),
                operations: must,
                longest,
                undecided: true,
            });
        }
        for i in candidates {
            if ops[i].sent > horizon {
                continue;
            }
            let Some(next) = step(state, ops[i].op, ops[i].outcome) else {
                continue;
            };
            let mut d = done.clone();
            d[i / 64] |= 1 << (i % 64);
            if seen.insert((d.clone(), next)) {
                let k = known_done + usize::from(ops[i].answered.is_some());
                stack.push((d, next, k));
            }
        }
    }
    Err(Violation {
        key: key.to_string(),
        operations: must,
        longest,
        undecided: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: Op, outcome: Outcome, sent: u64, answered: Option<u64>) -> Event {
        Event {
            key: "/k".into(),
            op,
            outcome,
            sent,
            answered,
        }
    }

    #[test]
    fn concurrent_writes_take_either_order() {
        let h = [
            ev(
                Op::Write { value: 1 },
                Outcome::Done { version: 2 },
                0,
                Some(10),
            ),
            ev(
                Op::Write { value: 2 },
                Outcome::Done { version: 1 },
                1,
                Some(9),
            ),
            ev(
                Op::Read,
                Outcome::Read {
                    value: 1,
                    version: 2,
                },
                11,
                Some(12),
            ),
        ];
        assert_eq!(check(&h, (0, 0)), Ok(()));
    }

    #[test]
    fn a_write_that_finished_first_cannot_come_second() {
        let h = [
            ev(
                Op::Write { value: 1 },
                Outcome::Done { version: 2 },
                0,
                Some(1),
            ),
            ev(
                Op::Write { value: 2 },
                Outcome::Done { version: 1 },
                2,
                Some(3),
            ),
        ];
        assert!(check(&h, (0, 0)).is_err());
    }

    #[test]
    fn a_conditional_write_on_a_stale_version_is_a_violation() {
        let h = [
            ev(
                Op::Write { value: 1 },
                Outcome::Done { version: 1 },
                0,
                Some(1),
            ),
            ev(
                Op::Cas {
                    expect: 0,
                    value: 2,
                },
                Outcome::Done { version: 1 },
                2,
                Some(3),
            ),
        ];
        assert!(check(&h, (0, 0)).is_err());
        let ok = [
            h[0].clone(),
            ev(
                Op::Cas {
                    expect: 0,
                    value: 2,
                },
                Outcome::BadVersion,
                2,
                Some(3),
            ),
        ];
        assert_eq!(check(&ok, (0, 0)), Ok(()));
    }

    #[test]
    fn an_unknown_outcome_may_or_may_not_have_happened() {
        let lost = ev(Op::Write { value: 7 }, Outcome::Unknown, 0, None);
        let applied = [
            lost.clone(),
            ev(
                Op::Read,
                Outcome::Read {
                    value: 7,
                    version: 1,
                },
                5,
                Some(6),
            ),
        ];
        assert_eq!(check(&applied, (0, 0)), Ok(()));
        let not_applied = [
            lost.clone(),
            ev(
                Op::Read,
                Outcome::Read {
                    value: 0,
                    version: 0,
                },
                5,
                Some(6),
            ),
        ];
        assert_eq!(check(&not_applied, (0, 0)), Ok(()));
        // But a write acknowledged and then not seen is lost.
        let acked_then_gone = [
            ev(
                Op::Write { value: 7 },
                Outcome::Done { version: 1 },
                0,
                Some(1),
            ),
            ev(
                Op::Read,
                Outcome::Read {
                    value: 0,
                    version: 0,
                },
                5,
                Some(6),
            ),
        ];
        assert!(check(&acked_then_gone, (0, 0)).is_err());
    }
}
