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
use tokio::task::JoinHandle;
use tracing::{info, warn};
use zooid_tree::{DataTree, TxnOp};

/// What every connection task shares.
pub struct Shared {
    pub config: Config,
    state: Mutex<State>,
    next_conn: AtomicU64,
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
}

impl Server {
    /// Binds the client port and starts serving. Port 0 picks a free port (see `client_addr`).
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let listener = TcpListener::bind(config.client_addr).await?;
        let client_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(DataTree::new())),
            config,
            next_conn: AtomicU64::new(1),
        });
        info!(%client_addr, "zooid serving clients");
        let mut tasks = Vec::new();
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
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
        })
    }

    /// Stops accepting and stops background duties (open connections end with the runtime).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}
