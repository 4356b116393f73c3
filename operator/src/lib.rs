//! The Zooid operator: reconciles `Ensemble` resources into running ensembles, talking to
//! them only as a user does (the ZooKeeper protocol and the admin API).
//!
//! - [`crd`]: the `Ensemble` resource's spec and status.
//! - [`plan`]: the pure planner, observed state and spec in, the one next step out.
//! - [`build`]: the objects an ensemble is made of (StatefulSet, Services, ConfigMaps, PDB).
//! - [`reconcile`]: observe, plan, apply, status: the I/O around the planner.

pub mod build;
pub mod crd;
pub mod metrics;
pub mod plan;
pub mod reconcile;
