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
