//! End-to-end harness for Zooid: a raw protocol client, an Apache ZooKeeper launcher, and the
//! compatibility scenarios that run unchanged against both.
//!
//! Start at [`raw::RawClient`] (what goes over the wire, and why a read got nothing),
//! [`scenarios`] (the differential suite's scripts) and [`wait`] (the one way tests wait).

pub mod apache;
pub mod history;
pub mod http;
pub mod raw;
pub mod scenarios;
pub mod transcript;
pub mod wait;

/// The super user (`user:password`) the differential servers, Apache ZooKeeper and Zooid,
/// are started with, so that cleanup can delete what a scenario's ACLs lock away.
pub const SUPER_USER: &str = "super:zooid-tests";

/// [`SUPER_USER`]'s digest, as `DigestAuthenticationProvider.superDigest` takes it.
pub fn super_digest() -> String {
    zooid_proto::Id::digest(SUPER_USER.as_bytes()).id
}
