//! The Zooid server: ZooKeeper's wire protocol, sessions and watches around the replicated
//! `zooid-tree` state, ordered by `zooid-replication`.
//!
//! Start at [`Server::start`]. The folders follow a request's path, each importing only the
//! ones below it:
//!
//! - [`client`]: the client path: listener, connection, handshake, dispatch, auth, reconfig.
//! - [`admin`]: the admin HTTP API (ZooKeeper's AdminServer shape, `/metrics`, probes).
//! - [`tls`]: the TLS material of the client, peer and admin ports, reloaded live.
//! - [`runtime`]: the state's lock and the duties that drive it (expiry, quorum, leadership,
//!   containers), the connections' outbound queues, the consensus layer's view of the state.
//! - [`observe`]: figures, four-letter words, metrics, logs and traces.
//! - [`state`]: the replicated state and what it answers: apply, reads, writes, watches,
//!   parked writes.
//! - [`session`]: session deadlines and holders.
//! - [`config`]: flags, environment and zoo.cfg, validated once.

pub mod admin;
pub mod client;
pub mod clock;
pub mod config;
pub mod observe;
pub mod runtime;
pub mod server;
pub mod session;
pub mod state;
pub mod tls;

pub use config::Config;
pub use server::Server;
