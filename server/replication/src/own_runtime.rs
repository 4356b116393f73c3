//! The consensus layer's own threads. Heartbeats, votes, appends and read-index confirmations
//! run on a tokio runtime of their own, so that however much client work the server's runtime
//! has queued, a peer's request waits only for the operating system to schedule these
//! threads, not behind thousands of client tasks: a leader whose heartbeats queued behind a
//! flood of watch registrations missed its peers' deadlines and lost its quorum.

use std::sync::Mutex;
use tokio::sync::oneshot;

/// Worker threads: openraft's core and its state machine worker (which applies entries, and
/// may wait for the server's state) each get one.
const WORKERS: usize = 2;

pub(crate) struct OwnRuntime {
    handle: tokio::runtime::Handle,
    /// Dropped or fired: the runtime stops (its thread drops it, ending every task on it).
    stop: Mutex<Option<oneshot::Sender<()>>>,
    stopped: Mutex<Option<oneshot::Receiver<()>>>,
}

impl OwnRuntime {
    pub(crate) fn start() -> std::io::Result<OwnRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("zooid-consensus")
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = oneshot::channel();
        std::thread::Builder::new()
            .name("zooid-consensus-owner".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                // Dropped here, outside any runtime: it waits for the tasks to be dropped,
                // which releases the log's files.
                drop(rt);
                let _ = stopped_tx.send(());
            })?;
        Ok(OwnRuntime {
            handle,
            stop: Mutex::new(Some(stop)),
            stopped: Mutex::new(Some(stopped)),
        })
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Stops the runtime and waits until every task on it is gone.
    pub(crate) async fn stop(&self) {
        drop(self.stop.lock().unwrap_or_else(|e| e.into_inner()).take());
        let stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(stopped) = stopped {
            let _ = stopped.await;
        }
    }
}
