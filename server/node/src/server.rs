//! A running server: [`Server::start`] restores the state, binds the ports and starts the
//! duties (accepting clients, the admin API, session expiry, quorum and leadership watches,
//! container collection); [`Server::shutdown`] stops them in order.

use crate::admin::listener::{AdminListener, AdminWire};
use crate::client::listener::Wire;
use crate::config::{Config, Ensemble};
use crate::observe::metrics::Metrics;
use crate::runtime::applier::StateApplier;
use crate::runtime::duties::Duties;
use crate::runtime::{containers, expiry, failure, leadership, quorum, Node};
use crate::state::State;
use crate::tls::quorum::QuorumTls;
use crate::tls::{ClientAuth, Keys, Reloading, TlsFiles};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::info;
use zooid_replication::Security;
use zooid_replication::{Consensus, ConsensusConfig, Peers, Timing};
use zooid_tree::DataTree;

/// How long a stopping leader waits for a follower to take its place before it stops anyway
/// (the others then elect one after their election timeout).
const HAND_OVER_WITHIN: Duration = Duration::from_secs(2);

/// A standalone server's id: member 1 of an ensemble of one.
const STANDALONE_ID: u64 = 1;

/// The name peers check in their greeting. ZooKeeper's configuration has no name for an
/// ensemble; the members' own ids and addresses are what tell one ensemble from another.
const CLUSTER: &str = "zooid";

/// A running server.
pub struct Server {
    pub client_addr: SocketAddr,
    /// Where the TLS client port listens, if configured.
    pub secure_client_addr: Option<SocketAddr>,
    /// Where the admin HTTP API listens, if enabled.
    pub admin_addr: Option<SocketAddr>,
    pub node: Arc<Node>,
    duties: Duties,
    consensus: Consensus,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] zooid_replication::ConsensusError),
    #[error("listening on the client port {addr} (clientPort / clientPortAddress, --client-addr)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    AdminToken(#[from] crate::config::AdminTokenError),
    #[error(
        "listening on the admin port {addr} (admin.serverAddress/admin.serverPort, \
         --admin-addr; admin.enableServer=false turns it off)"
    )]
    AdminListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SASL users (sasl-jaas-file): {0}")]
    Jaas(#[from] crate::client::sasl::JaasError),
    #[error("the TLS client port (secureClientPort): {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("listening on the TLS client port {addr} (secureClientPort, --secure-client-addr)")]
    SecureListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no server.{0} line in the configuration for this server's myid")]
    NoServerLine(u64),
    #[error("resolving server.{id}'s peer address {addr}")]
    PeerAddr {
        id: u64,
        addr: String,
        source: std::io::Error,
    },
    #[error("server.{id}'s peer address {addr} resolves to no address")]
    PeerAddrNone { id: u64, addr: String },
}

/// The consensus layer's view of the ensemble a zoo.cfg describes; the peer port binds
/// `listen` if given, else this server's own line's address.
fn peers(ensemble: &Ensemble, listen: Option<SocketAddr>) -> Result<Peers, StartError> {
    use crate::config::zoocfg::Role;
    let me = ensemble
        .members
        .iter()
        .find(|m| m.id == ensemble.my_id)
        .ok_or(StartError::NoServerLine(ensemble.my_id))?;
    let addr = me.peer_addr();
    let resolved = addr
        .to_socket_addrs()
        .map_err(|source| StartError::PeerAddr {
            id: me.id,
            addr: addr.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| StartError::PeerAddrNone {
            id: me.id,
            addr: addr.clone(),
        })?;
    let listen = listen.unwrap_or(resolved);
    Ok(Peers {
        cluster: CLUSTER.into(),
        listen,
        voters: ensemble
            .members
            .iter()
            .filter(|m| m.role == Role::Participant)
            .map(|m| (m.id, m.spec()))
            .collect(),
        learners: ensemble
            .members
            .iter()
            .filter(|m| m.role == Role::Observer)
            .map(|m| (m.id, m.spec()))
            .collect(),
        security: Security::default(),
    })
}

/// What a graceful stop did (see [`Server::shutdown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Writes that were waiting for ordering when the stop began.
    pub writes_in_flight: usize,
    /// Writes still unanswered when the grace period ran out (0 on a clean stop).
    pub writes_abandoned: usize,
    /// Client connections closed.
    pub connections: usize,
}

impl Server {
    /// Restores the state from the data directory, then binds the client port and starts
    /// serving. Port 0 picks a free port (see `client_addr`).
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let expiry_interval = config.expiry_interval();
        let mut peers = config
            .ensemble
            .as_ref()
            .map(|e| peers(e, config.peer_listen))
            .transpose()?;
        let node_id = config.ensemble.as_ref().map_or(STANDALONE_ID, |e| e.my_id);
        let metrics = Arc::new(Metrics::new());
        // Validated: sslQuorum comes with both stores, the admin port's HTTPS with the key
        // store.
        let quorum_files = config
            .ssl_quorum_key_store
            .as_ref()
            .map(|key_store| TlsFiles {
                keys: Keys::QUORUM,
                key_store: key_store.clone(),
                key_store_password: config.ssl_quorum_key_store_password.clone(),
                trust_store: config.ssl_quorum_trust_store.clone(),
                trust_store_password: config.ssl_quorum_trust_store_password.clone(),
                client_auth: ClientAuth::Need,
            });
        if let (Some(files), true) = (&quorum_files, config.ssl_quorum) {
            // Read before anything starts (a single server too, which has no peers to talk
            // to yet): a file that does not load stops the start.
            let tls = QuorumTls::start(
                files.clone(),
                config.ssl_quorum_hostname_verification,
                metrics.clone(),
            )?;
            if let Some(peers) = &mut peers {
                peers.security = Security(Arc::new(tls));
            }
        }
        // Checked once at start, so that a token file that cannot be read stops the start;
        // it is read again at each protected request.
        config.admin_token()?;
        let sasl_users = config
            .sasl_jaas_file
            .as_deref()
            .map(crate::client::sasl::SaslUsers::read)
            .transpose()?;
        // The TLS port's material is read before anything starts, so that a file that does
        // not load stops the start (never a plaintext port where TLS was asked for).
        let wants_tls = config.secure_client_addr.is_some() || config.client_port_unification;
        let tls = match (wants_tls, &config.ssl_key_store) {
            (true, Some(key_store)) => {
                let files = TlsFiles {
                    keys: Keys::CLIENT,
                    key_store: key_store.clone(),
                    key_store_password: config.ssl_key_store_password.clone(),
                    trust_store: config.ssl_trust_store.clone(),
                    trust_store_password: config.ssl_trust_store_password.clone(),
                    client_auth: ClientAuth::parse(&config.ssl_client_auth),
                };
                Some(Arc::new(Reloading::start(
                    "client",
                    files,
                    TlsFiles::server_config,
                )?))
            }
            _ => None,
        };
        // The admin port's HTTPS shows the members' certificate, as ZooKeeper's AdminServer.
        let https = config.admin_force_https || config.admin_port_unification;
        let admin_wire = match (&quorum_files, https) {
            (Some(files), true) => {
                let files = TlsFiles {
                    client_auth: if config.admin_need_client_auth {
                        ClientAuth::Need
                    } else {
                        ClientAuth::Want
                    },
                    ..files.clone()
                };
                let tls = Arc::new(Reloading::start("admin", files, TlsFiles::server_config)?);
                if config.admin_force_https {
                    AdminWire::Https(tls)
                } else {
                    AdminWire::Either(tls)
                }
            }
            _ => AdminWire::Http,
        };
        let replicated = config.ensemble.is_some();
        let state = State::new(node_id, DataTree::new(), expiry_interval, replicated);
        let node = Arc::new(Node::new(config, state, metrics));
        let config = &node.config;
        let consensus = Consensus::start(
            consensus_config(config, node_id, peers),
            Arc::new(StateApplier(node.clone())),
        )
        .await?;
        node.set_consensus(consensus.clone());
        {
            let mut st = node.state();
            st.set_observer(node.configured_observer() || consensus.is_learner());
            st.set_read_only_mode(config.read_only_mode);
            st.set_enforce_quota(config.enforce_quota);
            st.set_skip_acl(config.skip_acl());
            if let Some(users) = sasl_users {
                st.set_sasl_users(users, config.sasl_super_user.clone());
            }
            st.sessions_restored();
        }
        let admin = if config.admin_enabled {
            let addr = config.admin_addr;
            let listen = |source| StartError::AdminListen { addr, source };
            let listener = TcpListener::bind(addr).await.map_err(listen)?;
            let bound = listener.local_addr().map_err(listen)?;
            let listener = AdminListener::new(
                listener,
                admin_wire,
                config.handshake_timeout(),
                node.metrics.clone(),
            )
            .map_err(listen)?;
            Some((bound, listener))
        } else {
            None
        };
        let addr = config.client_addr;
        let listen = |source| StartError::Listen { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(listen)?;
        let client_addr = listener.local_addr().map_err(listen)?;
        let secure = match (config.secure_client_addr, &tls) {
            (Some(addr), Some(tls)) => {
                let listen = |source| StartError::SecureListen { addr, source };
                let listener = TcpListener::bind(addr).await.map_err(listen)?;
                let bound = listener.local_addr().map_err(listen)?;
                Some((bound, listener, tls.clone()))
            }
            _ => None,
        };
        let secure_client_addr = secure.as_ref().map(|(a, ..)| *a);
        // client.portUnification: the plain port takes TLS too.
        let plain_wire = match (&tls, config.client_port_unification) {
            (Some(tls), true) => Wire::Either(tls.clone()),
            _ => Wire::Plain,
        };
        {
            let st = node.state();
            info!(
                version = crate::observe::fourlw::VERSION,
                %client_addr,
                data_dir = %config.data_dir.display(),
                zxid = format_args!("0x{:x}", st.last_zxid()),
                nodes = st.tree().node_count(),
                sessions = st.sessions().count(),
                max_connections = node.connection_ceiling(),
                "zooid serving clients"
            );
        }
        let mut duties = Duties::default();
        let admin_addr = admin.as_ref().map(|(a, _)| *a);
        if let Some((admin_addr, listener)) = admin {
            info!(%admin_addr, "admin API listening");
            duties.spawn("admin API", crate::admin::serve(listener, node.clone()));
        }
        // A restore staged through another member's admin API is dropped here too if its
        // uploader goes away while this member leads.
        duties.spawn(
            "abandoned restores",
            crate::admin::restore::cancel_abandoned(node.clone()),
        );
        let (n, c) = (&node, &consensus);
        duties.spawn(
            "consensus failure",
            failure::watch_consensus(n.clone(), c.clone()),
        );
        duties.spawn(
            "accept",
            crate::client::listener::accept(n.clone(), listener, plain_wire),
        );
        if let Some((addr, listener, tls)) = secure {
            info!(secure_client_addr = %addr, "TLS client port listening");
            duties.spawn(
                "accept TLS",
                crate::client::listener::accept(n.clone(), listener, Wire::Tls(tls)),
            );
        }
        duties.spawn(
            "session expiry",
            expiry::expire_sessions(n.clone(), c.clone(), expiry_interval),
        );
        if config.ensemble.is_some() {
            duties.spawn("quorum", quorum::watch_quorum(n.clone(), c.clone()));
            duties.spawn(
                "leadership",
                leadership::follow_leader(n.clone(), c.clone(), node_id),
            );
        }
        let every = Duration::from_millis(config.container_check_ms.max(10));
        duties.spawn(
            "container collection",
            containers::collect_containers(n.clone(), every),
        );
        Ok(Server {
            client_addr,
            secure_client_addr,
            admin_addr,
            node,
            duties,
            consensus,
        })
    }

    /// Resolves, with the reason, if the server stops serving on its own: consensus failed
    /// (say, the log's disk failed). `main` exits non-zero on it, as ZooKeeper does.
    pub async fn failed(&self) -> zooid_replication::Failure {
        self.node.failed().await
    }

    /// Fault injection for tests: stops the consensus layer underneath a running server, as
    /// a fatal storage error would.
    pub async fn halt_consensus(&self) {
        self.consensus.shutdown().await;
    }

    /// Stops accepting and stops background duties (open connections end with the runtime).
    pub async fn stop(mut self) {
        self.duties.abort_all();
        self.consensus.shutdown().await;
    }

    /// Stops gracefully: stops accepting connections and reading requests, lets the writes
    /// already taken be ordered and answered (for at most `grace`), closes every connection
    /// once its replies are flushed, and stops consensus. Sessions are not closed: their
    /// clients reconnect (here after a restart, or to another server) and keep them.
    pub async fn shutdown(mut self, grace: Duration) -> Stopped {
        // No session expires and no container is collected while stopping: the clients of
        // the connections closed here must find their sessions when they come back.
        self.duties.abort_all();
        self.node.stop();
        let writes_in_flight = {
            let mut st = self.node.state();
            st.stop_taking_writes();
            st.outstanding()
        };
        let deadline = tokio::time::Instant::now() + grace;
        let mut iv = tokio::time::interval(Duration::from_millis(5));
        while self.node.state().outstanding() > 0 && tokio::time::Instant::now() < deadline {
            iv.tick().await;
        }
        let (writes_abandoned, connections) = {
            let mut st = self.node.state();
            st.close_all();
            (st.outstanding(), st.conns().len())
        };
        // Replies already queued go out before the sockets close (bounded: a client that
        // does not read is cut by the stall timeout, and this wait is bounded anyway).
        let flush_until = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.node.state().conns().is_empty() && tokio::time::Instant::now() < flush_until {
            iv.tick().await;
        }
        let handed_to = self.consensus.hand_over(HAND_OVER_WITHIN).await;
        if let Some(l) = handed_to {
            info!("handed the leadership over to server {l}");
        }
        self.consensus.shutdown().await;
        Stopped {
            writes_in_flight,
            writes_abandoned,
            connections,
        }
    }
}

/// The consensus layer's settings from the server's.
fn consensus_config(config: &Config, node_id: u64, peers: Option<Peers>) -> ConsensusConfig {
    ConsensusConfig {
        node_id,
        dir: config.data_dir.clone(),
        log_dir: config.data_log_dir.clone(),
        group_commit_wait: Duration::from_micros(config.group_commit_wait_us),
        snapshot_every: config.snapshot_every,
        snapshot_every_bytes: config.snapshot_every_bytes,
        wal_chunk_bytes: zooid_replication::DEFAULT_WAL_CHUNK_BYTES,
        catch_up_within: config
            .ensemble
            .as_ref()
            .map_or(Duration::from_secs(20), |e| {
                Duration::from_millis(u64::from(e.init_limit) * u64::from(config.tick_time_ms))
            }),
        timing: Timing::from_ticks(
            Duration::from_millis(config.tick_time_ms.into()),
            config.ensemble.as_ref().map_or(5, |e| e.sync_limit),
        ),
        peers,
    }
}
