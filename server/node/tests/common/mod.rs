//! An in-process server on a free loopback port, for tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use zooid_server::{Config, Server};

#[allow(unused_imports)]
pub use zooid_e2e::raw::*;

/// Starts a server with test-friendly settings on its own runtime.
pub fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.client_addr = "127.0.0.1:0".parse().unwrap();
    config.four_letter_words = "*".into();
    config.data_dir = dir.path().to_path_buf();
    tweak(&mut config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(Server::start(config)).unwrap();
    TestServer {
        addr: server.client_addr,
        server,
        _rt: rt,
        _dir: dir,
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    server: Server,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Stops the consensus layer underneath the server, as a fatal disk error would, and
    /// returns the reason the server gives once it noticed (or `None` after 10 s).
    pub fn break_consensus(&self) -> Option<String> {
        self._rt.block_on(async {
            self.server.halt_consensus().await;
            tokio::time::timeout(std::time::Duration::from_secs(10), self.server.failed())
                .await
                .ok()
        })
    }
}
