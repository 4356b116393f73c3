//! How peer connections are secured. The crate names no TLS library: the server hands it a
//! [`PeerSecurity`] (plaintext, or its TLS with reloaded certificates, ZooKeeper's
//! `sslQuorum`), which turns each TCP connection into the stream the peer protocol runs on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A stream the peer protocol runs on: a TCP connection, or TLS over one.
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIo for T {}

pub type PeerStream = Box<dyn PeerIo>;

type Pending<'a, T> = Pin<Box<dyn Future<Output = std::io::Result<T>> + Send + 'a>>;

/// Whether a peer proved it may speak for a host (a name or an address).
pub type SpeaksFor = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// A connection accepted on the peer port, ready for the peer protocol.
pub struct Accepted {
    pub stream: PeerStream,
    /// Whether the peer proved it may speak for a host (its certificate is valid for that
    /// name or address); `None` where hosts are not checked (plaintext, or host checks off).
    pub speaks_for: Option<SpeaksFor>,
}

/// Secures the peer port's connections, both ways.
pub trait PeerSecurity: Send + Sync + 'static {
    /// Secures a connection this member opened to `host` (the host part of the peer's member
    /// spec, a name or an address).
    fn connect<'a>(&'a self, tcp: TcpStream, host: &'a str) -> Pending<'a, PeerStream>;
    /// Secures a connection another member opened to this one.
    fn accept(&self, tcp: TcpStream) -> Pending<'_, Accepted>;
}

/// Peers talk in plaintext (ZooKeeper's default, `sslQuorum=false`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Plaintext;

impl PeerSecurity for Plaintext {
    fn connect<'a>(&'a self, tcp: TcpStream, _host: &'a str) -> Pending<'a, PeerStream> {
        Box::pin(async move { Ok(Box::new(tcp) as PeerStream) })
    }

    fn accept(&self, tcp: TcpStream) -> Pending<'_, Accepted> {
        Box::pin(async move {
            Ok(Accepted {
                stream: Box::new(tcp),
                speaks_for: None,
            })
        })
    }
}

/// The peer port's security, as the consensus layer's settings carry it.
#[derive(Clone)]
pub struct Security(pub Arc<dyn PeerSecurity>);

impl Default for Security {
    fn default() -> Self {
        Security(Arc::new(Plaintext))
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Security")
    }
}

/// The host part of `host:port` (`[v6]:port` gives `v6`).
pub fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => addr,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_each_address_form() {
        for (addr, host) in [
            ("127.0.0.1:2888", "127.0.0.1"),
            ("zk-1.zk.svc:2888", "zk-1.zk.svc"),
            ("[::1]:2888", "::1"),
            ("zk1", "zk1"),
        ] {
            assert_eq!(host_of(addr), host, "{addr}");
        }
    }
}
