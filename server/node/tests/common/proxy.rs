//! A fault-injecting proxy on the peer links of an ensemble: each member's `server.N` line
//! names a proxy port, the member itself listens elsewhere (`--peer-listen`), and every
//! connection between members runs through the proxy of the member it reaches. The proxy reads
//! the connection's Hello to learn who calls, so that a partition can cut the links between
//! two groups of members in both directions while each keeps its clients.
//!
//! A link that is cut loses its connection at once; a new connection across the cut is
//! accepted and then held without an answer until the partition heals (as a network that
//! drops packets would), so the caller times out.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zooid_replication::wire::{read_frame, write_frame, PeerRequest};

/// Ordered pairs (from, to) whose links are cut.
type Cut = HashSet<(u64, u64)>;

pub struct Proxies {
    /// Runs the relays; dropping it closes every relayed connection.
    _rt: tokio::runtime::Runtime,
    cut: watch::Sender<Cut>,
    /// Connections being relayed, per ordered pair.
    relaying: Relaying,
}

type Relaying = Arc<Mutex<HashMap<(u64, u64), usize>>>;

impl Proxies {
    /// One proxy per member: `(id, where its line says it is, where it listens)`. Fails if
    /// a port was taken meanwhile (it was free when picked), so the caller tries others.
    pub fn start(members: Vec<(u64, SocketAddr, SocketAddr)>) -> std::io::Result<Proxies> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (cut, _) = watch::channel(Cut::new());
        let relaying = Relaying::default();
        for (id, public, real) in members {
            let listener = rt.block_on(TcpListener::bind(public))?;
            let cut = cut.subscribe();
            let relaying = relaying.clone();
            rt.spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    tokio::spawn(relay(inbound, real, id, cut.clone(), relaying.clone()));
                }
            });
        }
        Ok(Proxies {
            _rt: rt,
            cut,
            relaying,
        })
    }

    /// Cuts every link between `side` and the members not in it, both ways.
    pub fn partition(&self, side: &[u64], all: &[u64]) {
        let mut cut = Cut::new();
        for a in side {
            for b in all.iter().filter(|b| !side.contains(b)) {
                cut.insert((*a, *b));
                cut.insert((*b, *a));
            }
        }
        // Returns once no connection across the cut is relayed any more: a message sent after
        // this returns cannot cross it.
        let crossing = || {
            let relaying = self.relaying.lock().unwrap();
            cut.iter()
                .any(|pair| relaying.get(pair).is_some_and(|n| *n > 0))
        };
        self.cut.send_replace(cut.clone());
        zooid_e2e::wait::wait_until(
            "the links across the cut closed",
            Duration::from_secs(5),
            || !crossing(),
        );
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.cut.send_replace(Cut::new());
    }
}

/// Counts a relayed connection while it lasts.
struct Relayed {
    relaying: Relaying,
    pair: (u64, u64),
}

impl Relayed {
    fn new(relaying: Relaying, pair: (u64, u64)) -> Relayed {
        *relaying.lock().unwrap().entry(pair).or_default() += 1;
        Relayed { relaying, pair }
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        if let Some(n) = self.relaying.lock().unwrap().get_mut(&self.pair) {
            *n -= 1;
        }
    }
}

async fn relay(
    mut inbound: TcpStream,
    real: SocketAddr,
    to: u64,
    mut cut: watch::Receiver<Cut>,
    relaying: Relaying,
) {
    let hello: PeerRequest = match read_frame(&mut inbound).await {
        Ok(h) => h,
        Err(_) => return,
    };
    let PeerRequest::Hello { from, .. } = hello else {
        return;
    };
    // Across the cut: held, unanswered, until the partition heals; then dropped (the caller
    // gave up on it long before).
    if cut.borrow_and_update().contains(&(from, to)) {
        let _ = cut.wait_for(|c| !c.contains(&(from, to))).await;
        return;
    }
    let _relayed = Relayed::new(relaying, (from, to));
    // Cut while connecting: not relayed.
    if cut.borrow_and_update().contains(&(from, to)) {
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(real).await else {
        return;
    };
    let _ = outbound.set_nodelay(true);
    let _ = inbound.set_nodelay(true);
    if write_frame(&mut outbound, &hello).await.is_err() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cut.wait_for(|c| c.contains(&(from, to))) => {}
    }
}
