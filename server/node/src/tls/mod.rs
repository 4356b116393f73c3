//! TLS on every port that takes it: the client port (ZooKeeper's `secureClientPort`), the
//! peer port (`sslQuorum`) and the admin port. Each port's files are read again when they
//! change on disk ([`reload`]); `x509` names a client by its certificate ([`x509`]).
//!
//! - `store.rs`: the key and trust stores (PEM, PKCS#12) and the rustls configurations made
//!   of them.
//! - `reload.rs`: a port's material, looked at again at most once a second.
//! - `quorum.rs`: the peer port's TLS, both ways, for the consensus layer.
//! - `x509.rs`: a certificate's subject as ZooKeeper's `x509` scheme names it.

pub mod quorum;
pub mod reload;
pub mod store;
pub mod x509;

pub use reload::Reloading;
pub use store::{valid_for, ClientAuth, Keys, TlsError, TlsFiles};
pub use x509::x509_identity;
