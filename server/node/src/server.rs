//! The listener and the background duties of a standalone server: session expiry and
//! container / TTL collection.

use crate::config::Config;
use crate::connection;
use crate::state::{now_ms, State};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use zooid_replication::{Applier, Consensus, ConsensusConfig, StateEncoder};
use zooid_tree::{DataTree, TxnOp};

/// This server's id in its ensemble (a standalone server is member 1).
const NODE_ID: u64 = 1;

/// What every connection task shares.
pub struct Shared {
    pub config: Config,
    state: Mutex<State>,
    next_conn: AtomicU64,
    /// Why the server stopped serving, once it has (see [`Server::failed`]).
    failure: watch::Sender<Option<String>>,
}

impl Shared {
    /// Locks the state. A poisoned lock means a panic under it; the state is still the last
    /// consistent one because every change is applied whole, so serving continues.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running server.
pub struct Server {
    pub client_addr: SocketAddr,
    pub shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    consensus: Consensus,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] zooid_replication::ConsensusError),
    #[error("client port: {0}")]
    Listen(#[from] std::io::Error),
}

/// The replicated state as the consensus layer sees it.
struct StateApplier(Arc<Shared>);

impl Applier for StateApplier {
    fn apply(&self, commands: &[(u64, &[u8])]) {
        let mut state = self.0.state();
        for (zxid, command) in commands {
            state.apply_command(*zxid as i64, command);
        }
    }

    fn snapshot(&self) -> StateEncoder {
        // O(1) under the lock; the encode runs on the snapshot thread.
        let frozen = self.0.state().tree.freeze();
        Box::new(move |w| frozen.encode_to(w))
    }

    fn restore(&self, state: &mut dyn std::io::Read) -> Result<(), String> {
        let tree = DataTree::read_snapshot(state).map_err(|e| e.to_string())?;
        let mut st = self.0.state();
        st.tree = tree;
        st.sessions_restored();
        Ok(())
    }
}

impl Server {
    /// Restores the state from the data directory, then binds the client port and starts
    /// serving. Port 0 picks a free port (see `client_addr`).
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(NODE_ID, DataTree::new())),
            next_conn: AtomicU64::new(1),
            failure: watch::channel(None).0,
            config,
        });
        let consensus = Consensus::start(
            ConsensusConfig {
                node_id: NODE_ID,
                dir: shared.config.data_dir.clone(),
                group_commit_wait: Duration::from_micros(shared.config.group_commit_wait_us),
                snapshot_every: shared.config.snapshot_every,
                snapshot_every_bytes: shared.config.snapshot_every_bytes,
                wal_chunk_bytes: zooid_replication::DEFAULT_WAL_CHUNK_BYTES,
            },
            Arc::new(StateApplier(shared.clone())),
        )
        .await?;
        {
            let mut st = shared.state();
            st.set_consensus(consensus.clone());
            st.sessions_restored();
            info!(
                zxid = st.last_zxid(),
                nodes = st.tree.node_count(),
                sessions = st.session_count(),
                "state restored from {}",
                shared.config.data_dir.display()
            );
        }
        let listener = TcpListener::bind(shared.config.client_addr).await?;
        let client_addr = listener.local_addr()?;
        info!(%client_addr, "zooid serving clients");
        let mut tasks = Vec::new();
        let (s, c) = (shared.clone(), consensus.clone());
        tasks.push(tokio::spawn(async move {
            let reason = c.failed().await;
            error!("cannot order writes any more ({reason}); closing every connection");
            s.state().fail();
            s.failure.send_replace(Some(reason));
        }));
        let s = shared.clone();
        let mut failure = shared.failure.subscribe();
        tasks.push(tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    // Dropping the listener makes new connections fail fast.
                    _ = failure.wait_for(Option::is_some) => return,
                };
                match accepted {
                    Ok((stream, _)) => {
                        let conn = s.next_conn.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(connection::serve(s.clone(), stream, conn));
                    }
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
        let s = shared.clone();
        let tick = Duration::from_millis((s.config.tick_time_ms as u64 / 2).max(10));
        tasks.push(tokio::spawn(async move {
            let mut iv = tokio::time::interval(tick);
            loop {
                iv.tick().await;
                let mut st = s.state();
                for session in st.expired_sessions(Instant::now()) {
                    info!("session 0x{session:x} expired");
                    st.expire(session);
                }
            }
        }));
        let s = shared.clone();
        let every = Duration::from_millis(s.config.container_check_ms.max(10));
        tasks.push(tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            loop {
                iv.tick().await;
                let mut st = s.state();
                for path in st.tree.expired_containers(now_ms()) {
                    st.propose(0, TxnOp::DeleteContainer { path }, None);
                }
            }
        }));
        Ok(Server {
            client_addr,
            shared,
            tasks,
            consensus,
        })
    }

    /// Resolves, with the reason, if the server stops serving on its own: consensus failed
    /// (say, the log's disk failed). `main` exits non-zero on it, as ZooKeeper does.
    pub async fn failed(&self) -> String {
        let mut rx = self.shared.failure.subscribe();
        let reason = rx
            .wait_for(Option::is_some)
            .await
            .map(|r| r.clone().unwrap_or_default());
        reason.unwrap_or_else(|_| "server dropped".into())
    }

    /// Fault injection for tests: stops the consensus layer underneath a running server, as
    /// a fatal storage error would.
    pub async fn halt_consensus(&self) {
        self.consensus.shutdown().await;
    }

    /// Stops accepting and stops background duties (open connections end with the runtime).
    pub async fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
        self.consensus.shutdown().await;
    }
}
