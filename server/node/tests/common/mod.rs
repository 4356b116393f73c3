//! An in-process server on a free loopback port, for tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use zooid_node::{Config, Server};

#[allow(unused_imports)]
pub use zooid_e2e::raw::*;

pub mod ensemble;
pub mod pki;
pub mod proxy;
pub mod writers;

/// Starts a server with test-friendly settings on its own runtime.
pub fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.client_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
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
        secure: server.secure_client_addr,
        admin: server.admin_addr,
        server,
        _rt: rt,
        _dir: dir,
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// The TLS client port, if the tweak configured one.
    pub secure: Option<SocketAddr>,
    /// The admin HTTP API, unless the tweak turned it off.
    pub admin: Option<SocketAddr>,
    server: Server,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Stops the consensus layer underneath the server, as a fatal disk error would, and
    /// returns the reason the server gives once it noticed (or `None` after 10 s).
    pub fn break_consensus(&self) -> Option<zooid_replication::Failure> {
        self._rt.block_on(async {
            self.server.halt_consensus().await;
            tokio::time::timeout(std::time::Duration::from_secs(10), self.server.failed())
                .await
                .ok()
        })
    }
}

/// The `zooid` binary running as its own process on a data directory, on a free loopback port.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Proc {
    /// Starts zooid with `args` and its log (stdout) going to the file `log`; returns once it answers
    /// on its port, checked to be this process (its `conf` names this data directory): under
    /// parallel tests another server may take the free port first, and then this one is
    /// started again on another port.
    pub fn spawn(dir: &Path, args: &[&str], log: Option<&Path>) -> Proc {
        for _attempt in 0..3 {
            let out = match log {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::null(),
            };
            let addr = SocketAddr::from(([127, 0, 0, 1], zooid_e2e::apache::free_port().unwrap()));
            let child = Command::new(env!("CARGO_BIN_EXE_zooid"))
                .arg("--client-addr")
                .arg(addr.to_string())
                .arg("--data-dir")
                .arg(dir)
                .args(args)
                .env("ZOOID_FOUR_LETTER_WORDS", "*")
                .env("ZOOID_ADMIN_ADDR", "127.0.0.1:0")
                .stdout(out)
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut p = Proc { child, addr };
            if p.wait_started(dir) {
                return p;
            }
        }
        panic!("zooid exited during start three times");
    }

    /// Waits until the server answers as the one serving `dir`; false if it exited.
    fn wait_started(&mut self, dir: &Path) -> bool {
        let want = format!("dataDir={}\n", dir.display());
        zooid_e2e::wait::wait_for("zooid serving", Duration::from_secs(30), || {
            if let Ok(mut s) = TcpStream::connect(self.addr) {
                let mut out = String::new();
                if s.write_all(b"conf").is_ok()
                    && s.read_to_string(&mut out).is_ok()
                    && out.contains(&want)
                {
                    return Some(true);
                }
            }
            matches!(self.child.try_wait(), Ok(Some(_))).then_some(false)
        })
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Peak resident memory so far, in KiB (Linux's VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one of the Python client scripts of `tests/clients` with the interpreter
/// `scripts/test.sh` installed kazoo for (`ZOOID_TEST_PYTHON`); panics unless it printed OK
/// and exited 0.
pub fn run_client_script(script: &str, args: &[&str]) {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("ZOOID_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} ({e}); run the tests with scripts/test.sh")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{script} failed:\n{stdout}\n{stderr}"
    );
}

/// Waits for the server to close `s`: true on EOF or reset. A read timeout is a failure
/// (the server kept the connection), never a pass.
pub fn closed_within(s: &mut TcpStream, wait: Duration) -> Result<Duration, String> {
    let start = std::time::Instant::now();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Ok(start.elapsed()),
            // Data the server sent before closing: keep reading to the end.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("still open after {wait:?}"))
            }
            Err(_) => return Ok(start.elapsed()),
        }
    }
}
