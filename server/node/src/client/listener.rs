//! Duty: accept client connections, each within `max-client-cnxns` for its address, and serve
//! each on a task of its own ([`crate::client::connection`]), inside TLS on the secure port
//! ([`crate::tls`]).

use crate::client::connection;
use crate::observe::metrics::Limit;
use crate::runtime::limits::Refused;
use crate::runtime::Node;
use crate::tls::Reloading;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tracing::warn;

/// How a listener's connections are served.
#[derive(Clone)]
pub enum Wire {
    Plain,
    /// A TLS handshake first (the secure port).
    Tls(Arc<Reloading<Arc<ServerConfig>>>),
    /// TLS if the connection opens with a TLS handshake, else plaintext
    /// (`client.portUnification`).
    Either(Arc<Reloading<Arc<ServerConfig>>>),
}

/// A TLS record's first byte: a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepts on `listener`, serving each connection as `wire` says.
pub async fn accept(node: Arc<Node>, listener: TcpListener, wire: Wire) {
    let mut failure = node.failure_watch();
    let mut stopping = node.stopping();
    let mut backoff = AcceptBackoff::default();
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // Dropping the listener makes new connections fail fast.
            _ = failure.wait_for(Option::is_some) => return,
            _ = stopping.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, remote)) => {
                backoff.succeeded();
                let (conn, admitted) = match node.admit(remote.ip()) {
                    Ok(a) => a,
                    Err(why) => {
                        // Closed at once (the client tries another server); said once per
                        // burst, not once per connection.
                        drop(stream);
                        refusals.refused(&node, remote, why);
                        continue;
                    }
                };
                let tls = match &wire {
                    Wire::Plain => None,
                    Wire::Tls(tls) => Some(tls.clone()),
                    Wire::Either(tls) => Some(tls.clone()),
                };
                let either = matches!(wire, Wire::Either(_));
                match tls {
                    None => {
                        tokio::spawn(connection::serve(node.clone(), stream, conn, admitted));
                    }
                    Some(tls) => {
                        let node = node.clone();
                        tokio::spawn(async move {
                            let wait = node.config.handshake_timeout();
                            if either {
                                // Looked at, not taken: the first byte says which it is.
                                let mut first = [0u8; 1];
                                match tokio::time::timeout(wait, stream.peek(&mut first)).await {
                                    Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
                                    Ok(Ok(_)) => {
                                        connection::serve(node, stream, conn, admitted).await;
                                        return;
                                    }
                                    Ok(Err(_)) => return,
                                    Err(_) => {
                                        node.metrics.limited(Limit::Handshake);
                                        return;
                                    }
                                }
                            }
                            let config = tls.config(&node.metrics);
                            let _ = stream.set_nodelay(true);
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            let socket = crate::tls::Socket::new(stream);
                            match tokio::time::timeout(wait, acceptor.accept(socket)).await {
                                Ok(Ok(tls)) => {
                                    connection::serve_tls(node, tls, remote, conn, admitted).await
                                }
                                Ok(Err(e)) => {
                                    // A client without an acceptable certificate, or one
                                    // speaking plaintext to the TLS port.
                                    tracing::debug!(%remote, "TLS handshake failed: {e}");
                                }
                                Err(_) => node.metrics.limited(Limit::Handshake),
                            }
                        });
                    }
                }
            }
            Err(e) => {
                // Usually out of file descriptors: wait for some to be freed instead of
                // spinning, longer each time, and say so once per pause.
                let pause = backoff.failed();
                warn!("accepting a connection failed: {e}; pausing accepts for {pause:?}");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Connections refused by a limit, said in the log at most every [`Refusals::EVERY`].
#[derive(Debug, Default)]
struct Refusals {
    said_at: Option<Instant>,
    unsaid: u64,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn refused(&mut self, node: &Node, remote: SocketAddr, why: Refused) {
        self.unsaid += 1;
        if self.said_at.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        let limit = match why {
            Refused::PerAddress => format!(
                "{} connections from {} (max-client-cnxns)",
                node.config.max_client_cnxns,
                remote.ip()
            ),
            Refused::Total => format!(
                "{} connections in all (max-cnxns, or what the open-files limit leaves)",
                node.connection_ceiling()
            ),
        };
        warn!(
            %remote,
            "refused {} connection(s) in the last {:?}: the server holds {limit}",
            self.unsaid,
            Self::EVERY
        );
        self.said_at = Some(Instant::now());
        self.unsaid = 0;
    }
}

/// Pauses after failed accepts: 10 ms after the first, doubling up to 1 s, reset by the next
/// successful accept.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn failed(&mut self) -> Duration {
        let pause = Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX);
        self.failures += 1;
        pause
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_a_cap_and_resets() {
        let mut b = AcceptBackoff::default();
        let pauses: Vec<_> = (0..10).map(|_| b.failed()).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert_eq!(pauses[9], Duration::from_secs(1));
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(10));
    }
}
