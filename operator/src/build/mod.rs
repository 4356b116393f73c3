//! The objects an ensemble is made of, built from its spec and the live membership: pure
//! functions, applied by the reconciler with server-side apply.

pub mod config;
pub mod credentials;
pub mod maps;
pub mod monitor;
pub mod names;
pub mod pdb;
pub mod services;
pub mod statefulset;
