//! TLS on every port that takes it: the client port (ZooKeeper's `secureClientPort`), the
//! peer port (`sslQuorum`) and the admin port. Each port's files are read again when they
//! change on disk ([`reload`]); `x509` names a client by its certificate ([`x509`]).
//!
//! - `store.rs`: the key and trust stores (PEM, PKCS#12) and the rustls configurations made
//!   of them.
//! - `reload.rs`: a port's material, looked at again at most once a second.
//! - `quorum.rs`: the peer port's TLS, both ways, for the consensus layer.
//! - `socket.rs`: the TCP socket under a client connection's TLS.
//! - `x509.rs`: a certificate's subject as ZooKeeper's `x509` scheme names it.

pub mod quorum;
pub mod reload;
pub mod socket;
pub mod store;
pub mod x509;

pub use reload::Reloading;
pub use socket::Socket;
pub use store::{valid_for, ClientAuth, Keys, TlsError, TlsFiles};
pub use x509::x509_identity;

/// The cryptography every TLS configuration of the server uses: the process's default if one
/// was installed, else *ring* (the workspace builds rustls with ring alone). Named rather than
/// left to rustls, which finds no default when a second provider is linked in (a client
/// library built with aws-lc-rs, in the tests) and would panic.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return installed.clone();
    }
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange, which ring does not
    // offer; the suites and key exchanges it has are TLS 1.2 and 1.3's modern ones.
    #[allow(deprecated)]
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
