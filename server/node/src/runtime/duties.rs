//! The server's background duties, each a named task in one [`tokio::task::JoinSet`]: they
//! stop together when the server stops, and one that returns before says so by name.

use std::future::Future;
use tokio::task::JoinSet;

#[derive(Default)]
pub struct Duties {
    set: JoinSet<()>,
}

impl Duties {
    /// Runs `duty` until the server stops; if it ends before, says which one.
    pub fn spawn(&mut self, name: &'static str, duty: impl Future<Output = ()> + Send + 'static) {
        self.set.spawn(async move {
            duty.await;
            tracing::debug!("duty {name} ended");
        });
    }

    /// Stops every duty.
    pub fn abort_all(&mut self) {
        self.set.abort_all();
    }
}
