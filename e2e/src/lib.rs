//! End-to-end harness for Zooid: a raw protocol client, an Apache ZooKeeper launcher, and the
//! compatibility scenarios that run unchanged against both.

pub mod apache;
pub mod history;
pub mod http;
pub mod raw;
pub mod scenarios;
pub mod transcript;
pub mod wait;
