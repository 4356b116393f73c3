//! Writers for the fault tests: each creates its own sequence of nodes under `/w` through
//! one member, resuming its session there when the member lets it go (a leader change), and
//! records every acknowledged write.

use super::ensemble::{self, Member};
use super::{NoFrame, RawClient};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zooid_proto::*;

/// Creates `path` (data `v`); `Some(true)` once acknowledged, `Some(false)` if refused, `None`
/// if the connection was lost first (the outcome is then unknown, as for any ZooKeeper client).
pub fn try_create(c: &mut RawClient, path: &str) -> Option<bool> {
    let xid = c.try_send(&Request::Create(CreateRequest {
        op: OpCode::Create,
        path: path.into(),
        data: Some(b"v".to_vec()),
        acl: Acl::open(),
        flags: 0,
        ttl: -1,
    }))?;
    loop {
        let f = match c.recv() {
            Ok(f) => f,
            Err(NoFrame::Closed) => return None,
            Err(NoFrame::TimedOut) => panic!("{path}: no answer and no close within 5 s"),
        };
        if f.xid == xid {
            return Some(f.err == 0);
        }
    }
}

/// Each writer creates its own sequence of nodes under `/w` through one member, and records
/// when each acknowledged write was sent and answered.
pub struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, Instant, Instant)>>>,
    /// Each says whether its member closed its connection.
    threads: Vec<std::thread::JoinHandle<bool>>,
}

impl Writers {
    pub fn start(members: &[&Member]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let threads = members
            .iter()
            .map(|m| {
                let (addr, id) = (m.client, m.id);
                let (stop, acked) = (stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    let mut c = RawClient::connect(addr);
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let path = format!("/w/m{id}-{i:06}");
                        i += 1;
                        let sent = Instant::now();
                        match try_create(&mut c, &path) {
                            Some(created) => {
                                assert!(created, "create {path}");
                                acked.lock().unwrap().push((path, sent, Instant::now()));
                            }
                            // Connection lost (members let their clients go when the leader
                            // changes): resume the session there, as ZooKeeper clients do,
                            // unless the member left the ensemble and no longer serves.
                            None => {
                                let session = Some((c.session_id, c.passwd));
                                match ensemble::session_on(addr, session, Duration::from_secs(3)) {
                                    Some(again) => c = again,
                                    None => return true,
                                }
                            }
                        }
                    }
                    false
                })
            })
            .collect();
        Writers {
            stop,
            acked,
            threads,
        }
    }

    pub fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Writes acknowledged after `t`.
    pub fn acked_since(&self, t: Instant) -> usize {
        self.acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, at)| *at > t)
            .count()
    }

    /// The longest time without an acknowledgement from the last one before `t` on: the
    /// stall a fault at `t` caused, leaving out the machine's own pauses before it.
    pub fn gap_since(&self, t: Instant) -> Duration {
        let mut times: Vec<Instant> = self.acked.lock().unwrap().iter().map(|a| a.2).collect();
        times.sort();
        let from = times.iter().rposition(|at| *at <= t).unwrap_or(0);
        let mut gap = times
            .get(from)
            .map_or(Duration::ZERO, |at| t.saturating_duration_since(*at));
        for w in times[from..].windows(2) {
            gap = gap.max(w[1] - w[0]);
        }
        gap
    }

    /// Stops the writers; returns what was acknowledged, the longest time without an
    /// acknowledgement, and how many writers lost their member.
    pub fn stop(self) -> (Vec<String>, Duration, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let mut lost = 0;
        for t in self.threads {
            lost += usize::from(t.join().expect("a writer failed"));
        }
        let mut acked = self.acked.lock().unwrap().clone();
        acked.sort_by_key(|(_, _, at)| *at);
        let gap = acked
            .windows(2)
            .map(|w| w[1].2 - w[0].2)
            .max()
            .unwrap_or_default();
        (acked.into_iter().map(|(p, _, _)| p).collect(), gap, lost)
    }
}
