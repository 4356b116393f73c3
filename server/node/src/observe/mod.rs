//! What operators see of the server: its figures under ZooKeeper's names ([`monitor`]), the
//! four-letter words ([`fourlw`]), Prometheus metrics ([`metrics`]) and logs and traces
//! ([`telemetry`]). The admin HTTP API ([`crate::admin`]) serves them over HTTP.

pub mod fourlw;
pub mod metrics;
pub mod monitor;
pub mod telemetry;
