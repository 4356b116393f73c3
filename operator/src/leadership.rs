//! Leader election between the operator's replicas: one reconciles, the others wait for the
//! Lease (`coordination.k8s.io/v1`, through kube-lease-manager). The leader renews it; if it
//! cannot, it stops reconciling at once (the process exits and is restarted as a candidate)
//! before another can take the Lease over; on SIGTERM it releases the Lease. A standby
//! looks again when the holder's term would end (kube-lease-manager sleeps until then), so a
//! hand-over takes up to the Lease's duration.

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::time::Duration;
use tokio::sync::watch;

/// The Lease's name, in the namespace the operator is told.
pub const LEASE: &str = "zooid-operator";
/// Seconds a Lease stays held after its last renewal.
const DURATION: u64 = 15;
/// Seconds before that when the holder renews.
const GRACE: u64 = 5;

type Task = tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>;

/// The Lease, held.
pub struct Leadership {
    held: watch::Receiver<bool>,
    task: Task,
}

impl Leadership {
    /// Waits until this replica holds the Lease (`identity`: its pod's name).
    pub async fn acquire(
        client: kube::Client,
        namespace: &str,
        identity: &str,
    ) -> Result<Leadership, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, LEASE)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(DURATION)
            .with_grace(GRACE)
            .build()
            .await?;
        let (mut held, task) = manager.watch().await;
        while !*held.borrow_and_update() {
            if held.changed().await.is_err() {
                // The manager's task ended: its error says why.
                return match task.await {
                    Ok(Err(e)) => Err(e),
                    _ => Err(LeaseManagerError::InconsistentState(
                        "the lease manager stopped".into(),
                    )),
                };
            }
        }
        Ok(Leadership { held, task })
    }

    /// Resolves when the Lease is no longer held (not renewed in time, or taken).
    pub async fn lost(&mut self) {
        loop {
            if !*self.held.borrow_and_update() {
                return;
            }
            if self.held.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the Lease up (a standby takes it when it next looks, without forcing it).
    pub async fn release(self) {
        drop(self.held);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("the lease is released"),
            Ok(Ok(Err(e))) => tracing::warn!("releasing the lease: {e}"),
            Ok(Err(e)) => tracing::warn!("releasing the lease: {e}"),
            Err(_) => tracing::warn!("releasing the lease: no answer within 5 s"),
        }
    }
}
