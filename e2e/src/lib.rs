//! End-to-end harness for Zooid: a raw protocol client, an Apache ZooKeeper launcher, and the
//! compatibility scenarios that run unchanged against both.
//!
//! Start at [`raw::RawClient`] (what goes over the wire, and why a read got nothing),
//! [`scenarios`] (the differential suite's scripts) and [`wait`] (the one way tests wait).

pub mod apache;
pub mod history;
pub mod http;
pub mod otlp;
pub mod prometheus;
pub mod raw;
pub mod sasl;
pub mod scenarios;
pub mod transcript;
pub mod wait;

/// The super user (`user:password`) the tests' servers are started with: the differential
/// ones, Apache ZooKeeper and Zooid (cleanup deletes what a scenario's ACLs lock away), and
/// the ensembles whose membership tests change (ZooKeeper lets only the super user reconfig).
pub const SUPER_USER: &str = "super:zooid-tests";

/// The zoo.cfg line naming [`SUPER_USER`].
pub fn super_digest_line() -> String {
    format!(
        "DigestAuthenticationProvider.superDigest={}\n",
        super_digest()
    )
}

/// [`SUPER_USER`]'s digest, as `DigestAuthenticationProvider.superDigest` takes it.
pub fn super_digest() -> String {
    zooid_proto::Id::digest(SUPER_USER.as_bytes()).id
}
