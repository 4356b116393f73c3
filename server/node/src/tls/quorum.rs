//! The peer port's TLS (ZooKeeper's `sslQuorum` with `ssl.quorum.*`): every member shows its
//! certificate and checks the other's against the quorum trust store, both ways; with
//! `ssl.quorum.hostnameVerification` (on by default, as in ZooKeeper) a certificate must also
//! be valid for the member's host. The files are read again when they change, as on the
//! client port.

use super::store::{valid_for, TlsError, TlsFiles};
use super::Reloading;
use crate::observe::metrics::Metrics;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;
use zooid_replication::{Accepted, PeerSecurity, PeerStream, SpeaksFor};

/// Both sides of a peer connection's TLS, read from the same files.
#[derive(Clone)]
struct Material {
    accepting: Arc<ServerConfig>,
    connecting: Arc<ClientConfig>,
}

/// The peer port's TLS, handed to the consensus layer.
pub struct QuorumTls {
    material: Reloading<Material>,
    check_host: bool,
    metrics: Arc<Metrics>,
}

impl QuorumTls {
    /// Reads the files (their client authentication is always `need`: members prove who they
    /// are to each other); an error here stops the start.
    pub fn start(
        files: TlsFiles,
        check_host: bool,
        metrics: Arc<Metrics>,
    ) -> Result<QuorumTls, TlsError> {
        let files = TlsFiles {
            client_auth: super::ClientAuth::Need,
            ..files
        };
        let material = Reloading::start("quorum", files, move |files| {
            Ok(Material {
                accepting: files.server_config()?,
                connecting: files.client_config(check_host)?,
            })
        })?;
        Ok(QuorumTls {
            material,
            check_host,
            metrics,
        })
    }
}

type Pending<'a, T> = Pin<Box<dyn Future<Output = std::io::Result<T>> + Send + 'a>>;

impl PeerSecurity for QuorumTls {
    fn connect<'a>(&'a self, tcp: TcpStream, host: &'a str) -> Pending<'a, PeerStream> {
        Box::pin(async move {
            let material = self.material.config(&self.metrics);
            let name = ServerName::try_from(host.to_string()).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{host} is not a host name or address: {e}"),
                )
            })?;
            let connector = tokio_rustls::TlsConnector::from(material.connecting);
            let stream = connector.connect(name, tcp).await?;
            Ok(Box::new(stream) as PeerStream)
        })
    }

    fn accept(&self, tcp: TcpStream) -> Pending<'_, Accepted> {
        Box::pin(async move {
            let material = self.material.config(&self.metrics);
            let acceptor = tokio_rustls::TlsAcceptor::from(material.accepting);
            let stream = acceptor.accept(tcp).await?;
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.clone().into_owned());
            let speaks_for = match (self.check_host, cert) {
                (false, _) => None,
                (true, Some(cert)) => {
                    let speaks_for: SpeaksFor = Box::new(move |host| valid_for(&cert, host));
                    Some(speaks_for)
                }
                // The verifier asks for a certificate, so there is one; proving nothing if not.
                (true, None) => Some(Box::new(|_: &str| false) as SpeaksFor),
            };
            Ok(Accepted {
                stream: Box::new(stream),
                speaks_for,
            })
        })
    }
}
