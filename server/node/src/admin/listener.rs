//! The admin port's connections: plain HTTP, HTTPS only (ZooKeeper's `admin.forceHttps`), or
//! both on one port (`admin.portUnification`), with the members' TLS material
//! (`ssl.quorum.*`, as ZooKeeper's AdminServer takes it), reloaded when it changes on disk.
//!
//! TLS handshakes run on tasks of their own, at most [`MAX_HANDSHAKES`] at once and each
//! bounded by the handshake timeout, so that a slow client cannot hold the port.

use crate::observe::metrics::{Limit, Metrics};
use crate::tls::{x509_identity, Reloading};
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// How the admin port's connections are served.
#[derive(Clone)]
pub enum AdminWire {
    Http,
    /// HTTPS only.
    Https(Arc<Reloading<Arc<ServerConfig>>>),
    /// HTTPS if the connection opens with a TLS handshake, else HTTP.
    Either(Arc<Reloading<Arc<ServerConfig>>>),
}

/// TLS handshakes in progress at once; further connections wait in the backlog.
const MAX_HANDSHAKES: usize = 64;

/// A TLS record's first byte: a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

pub trait AdminIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AdminIo for T {}

/// Who is on the other end of an admin request's connection.
#[derive(Debug, Clone)]
pub struct AdminPeer {
    pub remote: SocketAddr,
    /// The `x509` identity of the client certificate the trust store vouched for, if any.
    pub certificate: Option<String>,
}

impl Connected<IncomingStream<'_, AdminListener>> for AdminPeer {
    fn connect_info(stream: IncomingStream<'_, AdminListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Connections ready for HTTP, TLS already done where asked.
pub struct AdminListener {
    ready: mpsc::Receiver<(Box<dyn AdminIo>, AdminPeer)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl AdminListener {
    pub fn new(
        listener: TcpListener,
        wire: AdminWire,
        handshake_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<AdminListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let accepting = tokio::spawn(accept(listener, wire, handshake_timeout, metrics, tx));
        Ok(AdminListener {
            ready,
            local,
            accepting,
        })
    }
}

impl axum::serve::Listener for AdminListener {
    type Io = Box<dyn AdminIo>;
    type Addr = AdminPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task ended only if aborted, which drop does: never answered.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<AdminPeer> {
        Ok(AdminPeer {
            remote: self.local,
            certificate: None,
        })
    }
}

async fn accept(
    listener: TcpListener,
    wire: AdminWire,
    timeout: Duration,
    metrics: Arc<Metrics>,
    ready: mpsc::Sender<(Box<dyn AdminIo>, AdminPeer)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut pause = Duration::from_millis(10);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(c) => {
                pause = Duration::from_millis(10);
                c
            }
            Err(e) => {
                // Usually out of file descriptors: wait rather than spin.
                tracing::warn!("accepting an admin connection failed: {e}; pausing {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let plain = AdminPeer {
            remote,
            certificate: None,
        };
        let tls = match &wire {
            AdminWire::Http => {
                if ready.send((Box::new(stream), plain)).await.is_err() {
                    return;
                }
                continue;
            }
            AdminWire::Https(tls) => (tls.clone(), false),
            AdminWire::Either(tls) => (tls.clone(), true),
        };
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (ready, metrics) = (ready.clone(), metrics.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let secured = tokio::time::timeout(timeout, secure(stream, tls, &metrics)).await;
            let served = match secured {
                Ok(Ok(Some((io, certificate)))) => (
                    io,
                    AdminPeer {
                        certificate,
                        ..plain
                    },
                ),
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    // A client without an acceptable certificate, or plain HTTP to HTTPS.
                    tracing::debug!(%remote, "admin TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    metrics.limited(Limit::Handshake);
                    return;
                }
            };
            let _ = ready.send(served).await;
        });
    }
}

/// The connection inside TLS (or as it is, if `either` and it does not open with a TLS
/// handshake), with the identity of the client's certificate; `None` if it closed first.
async fn secure(
    stream: TcpStream,
    (tls, either): (Arc<Reloading<Arc<ServerConfig>>>, bool),
    metrics: &Metrics,
) -> std::io::Result<Option<(Box<dyn AdminIo>, Option<String>)>> {
    if either {
        // Looked at, not taken: the first byte says which it is.
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await? {
            0 => return Ok(None),
            _ if first[0] != TLS_HANDSHAKE => return Ok(Some((Box::new(stream), None))),
            _ => {}
        }
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config(metrics));
    let stream = acceptor.accept(stream).await?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| x509_identity(c));
    Ok(Some((Box::new(stream), certificate)))
}
