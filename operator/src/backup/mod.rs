//! Backups and restores of an ensemble: where they are kept ([`location`]), when the next one
//! is due ([`schedule`], pure), and moving them between a member's admin API and the storage
//! ([`store`]: S3-compatible object storage or a folder, behind `object_store`).
//!
//! A backup is a member's `/commands/snapshot` (Zooid's checked snapshot format) kept as
//! `<target>/<namespace>/<ensemble>/<UTC time>-<last zxid>.zsnap`; a restore posts one to a
//! member's `/commands/restore`, which replaces the whole ensemble's state through its log.

pub mod location;
pub mod schedule;
pub mod store;

pub use location::{Location, LocationError};

/// Why a backup or a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("the schedule {schedule:?}: {why}")]
    Schedule { schedule: String, why: String },
    #[error("the storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("the credentials: {0}")]
    Credentials(String),
    #[error("the member's admin API: {0}")]
    Admin(String),
    #[error("no member to take it from or give it to: {0}")]
    NoMember(String),
}
