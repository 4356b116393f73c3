//! The Zooid server: connections, sessions, watches and four-letter words around the
//! `zooid-tree` state, speaking the ZooKeeper wire protocol from `zooid-proto`.

pub mod admin;
pub mod command;
pub mod config;
pub mod connection;
pub mod connections;
pub mod deadlines;
pub mod fourlw;
pub mod limits;
pub mod metrics;
pub mod monitor;
pub mod ops;
pub mod outbox;
pub mod proposals;
pub mod reads;
pub mod reconfig;
pub mod reply;
pub mod server;
pub mod sessions;
pub mod state;
pub mod telemetry;
pub mod watches;
pub mod zoocfg;

pub use config::Config;
pub use server::Server;
