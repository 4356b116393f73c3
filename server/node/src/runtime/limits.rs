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

/// File descriptors kept for the server's own use when the connection ceiling comes from the
/// open-files limit: the log's chunks, snapshots being written and read, peer connections, the
/// admin API, accepts that fail and are retried.
pub const RESERVED_FDS: usize = 256;

/// Open client connections, against `max-cnxns` in all and `max-client-cnxns` per address.
#[derive(Debug)]
pub struct ClientCounts {
    /// Per address; 0 is no limit.
    limit: usize,
    /// In all; never 0.
    total_limit: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address holds `max-client-cnxns` already.
    PerAddress,
    /// The server holds its ceiling of connections already (`max-cnxns`, or what the
    /// open-files limit allows).
    Total,
}

/// The most connections a server holds: `max_cnxns` if set, and never more than the
/// open-files limit `nofile` leaves once the server's own files are counted.
pub fn connection_ceiling(max_cnxns: usize, nofile: Option<u64>) -> usize {
    let by_fds = nofile.map_or(usize::MAX, |n| {
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_sub(RESERVED_FDS)
            .max(1)
    });
    match max_cnxns {
        0 => by_fds,
        n => n.min(by_fds),
    }
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct Admitted {
    counts: Arc<ClientCounts>,
    ip: IpAddr,
}

impl ClientCounts {
    /// `limit` per address (0 admits any number), `total_limit` in all (see
    /// [`connection_ceiling`]).
    pub fn new(limit: usize, total_limit: usize) -> Arc<Self> {
        Arc::new(ClientCounts {
            limit,
            total_limit: total_limit.max(1),
            counts: Mutex::default(),
        })
    }

    /// The most connections held at once.
    pub fn total_limit(&self) -> usize {
        self.total_limit
    }

    /// Admits one more connection from `ip`, or says which limit it would cross.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.total_limit {
            return Err(Refused::Total);
        }
        let n = counts.by_ip.entry(ip).or_insert(0);
        if self.limit != 0 && *n >= self.limit {
            return Err(Refused::PerAddress);
        }
        *n += 1;
        counts.total += 1;
        Ok(Admitted {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_counts_admit_up_to_the_limits_and_give_places_back() {
        let counts = ClientCounts::new(2, 3);
        let ip: IpAddr = [127, 0, 0, 9].into();
        let a = counts.admit(ip).expect("first");
        let _b = counts.admit(ip).expect("second");
        assert_eq!(counts.admit(ip).err(), Some(Refused::PerAddress));
        let _c = counts
            .admit([127, 0, 0, 10].into())
            .expect("another address");
        assert_eq!(
            counts.admit([127, 0, 0, 11].into()).err(),
            Some(Refused::Total),
            "three in all"
        );
        drop(a);
        assert!(
            counts.admit(ip).is_ok(),
            "a closed connection frees its place"
        );
        let unlimited = ClientCounts::new(0, usize::MAX);
        let held: Vec<_> = (0..100).map(|_| unlimited.admit(ip)).collect();
        assert!(held.iter().all(Result::is_ok));
    }

    #[test]
    fn the_ceiling_stays_below_the_open_files_limit() {
        assert_eq!(connection_ceiling(0, Some(20_000)), 20_000 - RESERVED_FDS);
        assert_eq!(connection_ceiling(5_000, Some(20_000)), 5_000);
        assert_eq!(
            connection_ceiling(50_000, Some(20_000)),
            20_000 - RESERVED_FDS
        );
        assert_eq!(connection_ceiling(0, None), usize::MAX);
        assert_eq!(connection_ceiling(0, Some(100)), 1);
    }
}
