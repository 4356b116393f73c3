//! The Zooid operator: reconciles `Ensemble` resources into running ensembles, talking to
//! them only as a user does (the ZooKeeper protocol and the admin API).
//!
//! - [`crd`]: the `Ensemble` resource's spec and status.
//! - [`plan`]: the pure planner, observed state and spec in, the one next step out.
//! - [`build`]: the objects an ensemble is made of (StatefulSet, Services, ConfigMaps, PDB).
//! - [`backup`]: where backups go, when they are due, and moving them in and out of storage.
//! - [`leadership`]: one replica reconciles, the others wait for its Lease.
//! - [`telemetry`]: logs, and traces of reconciles over OTLP.
//! - [`reconcile`]: observe, plan, apply, status: the I/O around the planner.

pub mod backup;
pub mod build;
pub mod crd;
pub mod leadership;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod telemetry;

/// Selects rustls' ring provider for this process, as the server does. A build that unifies
/// features across the workspace also turns on aws-lc-rs (zookeeper-client's TLS, for the
/// server's tests), and rustls then refuses to pick one by itself: every Kubernetes call
/// would panic. Idempotent.
pub fn use_ring_for_tls() {
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange, which ring does not
    // offer; its suites and key exchanges are TLS 1.2 and 1.3's modern ones.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}
