//! Server-wide limits on what clients can make the server hold: writes waiting for ordering
//! across all connections, and connections per client address. Per-connection bounds live
//! with the connection (`connection`, `outbox`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Writes proposed by this server's clients and not yet applied, against
/// `global-outstanding-limit`. Connections stop reading while it is reached.
#[derive(Debug)]
pub struct Outstanding {
    count: AtomicUsize,
    limit: usize,
    room: Notify,
}

impl Outstanding {
    pub fn new(limit: usize) -> Self {
        Outstanding {
            count: AtomicUsize::new(0),
            limit,
            room: Notify::new(),
        }
    }

    /// Records the current number of outstanding writes.
    pub fn set(&self, n: usize) {
        let before = self.count.swap(n, Ordering::Relaxed);
        if n < self.limit && before >= self.limit {
            self.room.notify_waiters();
        }
    }

    pub fn get(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits until fewer than the limit are outstanding.
    pub async fn wait_for_room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.get() < self.limit {
                return;
            }
            notified.await;
        }
    }
}

/// Open connections per client IP address, against `max-client-cnxns`.
#[derive(Debug)]
pub struct ClientCounts {
    limit: usize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct Admitted {
    counts: Arc<ClientCounts>,
    ip: IpAddr,
}

impl ClientCounts {
    /// `limit` 0 admits every connection.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(ClientCounts {
            limit,
            by_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Admits one more connection from `ip`, or `None` if it already holds the limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = by_ip.entry(ip).or_insert(0);
        if self.limit != 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Admitted {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut by_ip = self.counts.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_counts_admit_up_to_the_limit_and_give_places_back() {
        let counts = ClientCounts::new(2);
        let ip: IpAddr = [127, 0, 0, 9].into();
        let a = counts.admit(ip).expect("first");
        let _b = counts.admit(ip).expect("second");
        assert!(counts.admit(ip).is_none(), "third is over the limit");
        assert!(counts.admit([127, 0, 0, 10].into()).is_some());
        drop(a);
        assert!(
            counts.admit(ip).is_some(),
            "a closed connection frees its place"
        );
        let unlimited = ClientCounts::new(0);
        let held: Vec<_> = (0..100).map(|_| unlimited.admit(ip)).collect();
        assert!(held.iter().all(Option::is_some));
    }
}
