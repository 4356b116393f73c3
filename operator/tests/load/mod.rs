//! A write load for the operator's scenarios, checked for linearizability: a few clients,
//! each on a znode of its own, write new values (unconditional setData) and read them back
//! after a sync, through a connection string of the ensemble's members, resuming their
//! session elsewhere when a member goes, as ZooKeeper clients do. Every operation is
//! recorded with its outcome (unknown when the connection was lost first) and the history is
//! checked by `zooid_e2e::history` (Wing & Gong with Lowe's memoization): an acknowledged
//! write lost or a stale read fails the check.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zooid_e2e::history::{self, Event, Op, Outcome};
use zookeeper_client as zk;

pub struct Load {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a run of the load came to.
#[derive(Debug)]
pub struct Report {
    pub operations: usize,
    pub acknowledged_writes: u64,
    pub unknown: usize,
    /// The longest time between two answers (to any client): how long the ensemble stalled.
    pub longest_gap: Duration,
}

impl Load {
    /// Starts `clients` clients on `servers` (a ZooKeeper connection string).
    pub async fn start(servers: &str, clients: usize) -> Load {
        let setup = zk::Client::connect(servers)
            .await
            .expect("the load's setup client");
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        for k in 0..clients {
            match setup.create(&format!("/load-{k}"), b"0", &open).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => panic!("/load-{k}: {e}"),
            }
        }
        let origin = Instant::now();
        let (stop, events, acked) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicU64::new(0)),
        );
        let tasks = (0..clients)
            .map(|k| {
                let (stop, events, acked) = (stop.clone(), events.clone(), acked.clone());
                let servers = servers.to_string();
                tokio::spawn(async move {
                    let key = format!("/load-{k}");
                    let micros = || origin.elapsed().as_micros() as u64;
                    let mut client = connect(&servers).await;
                    let mut value = 0u64;
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let sent = micros();
                        let (op, result) = if i.is_multiple_of(4) {
                            let r = async {
                                client.sync(&key).await?;
                                client.get_data(&key).await
                            }
                            .await;
                            let r = r.map(|(data, stat)| Outcome::Read {
                                value: String::from_utf8_lossy(&data).parse().unwrap_or(u64::MAX),
                                version: stat.version,
                            });
                            (Op::Read, r)
                        } else {
                            value += 1;
                            let r = client
                                .set_data(&key, value.to_string().as_bytes(), None)
                                .await
                                .map(|stat| Outcome::Done {
                                    version: stat.version,
                                });
                            if r.is_ok() {
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            (Op::Write { value }, r)
                        };
                        let (outcome, answered) = match result {
                            Ok(o) => (o, Some(micros())),
                            Err(e) => {
                                if e == zk::Error::SessionExpired || e == zk::Error::ClientClosed {
                                    client = connect(&servers).await;
                                } else {
                                    // The client resumes its session on another member.
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                                (Outcome::Unknown, None)
                            }
                        };
                        events.lock().unwrap().push(Event {
                            key: key.clone(),
                            op,
                            outcome,
                            sent,
                            answered,
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            events,
            acked,
            tasks,
        }
    }

    pub fn acknowledged(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops the clients and checks the history; panics with the violation if there is one.
    pub async fn finish(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a load client did not stop within 60 s")
                .expect("a load client failed");
        }
        let events = self.events.lock().unwrap().clone();
        let unknown = events
            .iter()
            .filter(|e| e.outcome == Outcome::Unknown)
            .count();
        if let Err(v) = history::check(&events, (0, 0)) {
            panic!("the history is not linearizable: {v:?}");
        }
        let mut answered: Vec<u64> = events.iter().filter_map(|e| e.answered).collect();
        answered.sort_unstable();
        let gap = answered.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        Report {
            operations: events.len(),
            acknowledged_writes: self.acked.load(Ordering::Relaxed),
            unknown,
            longest_gap: Duration::from_micros(gap),
        }
    }
}

async fn connect(servers: &str) -> zk::Client {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(servers)
            .await
        {
            Ok(c) => return c,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no session on {servers} within 60 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
