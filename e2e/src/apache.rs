//! Starts Apache ZooKeeper 3.8 (Debian's `zookeeper` package) as a standalone server on a free
//! loopback port in a temporary directory, for differential tests. Stopped on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where Debian installs the server jar and its configuration directory.
const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";

#[derive(Debug)]
pub struct ApacheZk {
    pub addr: SocketAddr,
    child: Child,
    cfg: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl ApacheZk {
    /// Starts ZooKeeper with TTL nodes enabled, every four-letter word allowed, quotas
    /// enforced and the tests' super user ([`crate::SUPER_USER`]), and waits
    /// until it serves (`ruok` answers before that, `srvr` does not).
    pub fn start(tick_time_ms: u32) -> std::io::Result<ApacheZk> {
        Self::start_from(tick_time_ms, None)
    }

    /// [`ApacheZk::start`] on a data dir that holds `snapshot` (ZooKeeper's format) as the
    /// snapshot of `zxid`: ZooKeeper starts from it.
    pub fn start_from_snapshot(
        tick_time_ms: u32,
        snapshot: &[u8],
        zxid: i64,
    ) -> std::io::Result<ApacheZk> {
        Self::start_from(tick_time_ms, Some((snapshot, zxid)))
    }

    fn start_from(tick_time_ms: u32, snapshot: Option<(&[u8], i64)>) -> std::io::Result<ApacheZk> {
        let dir = tempfile::tempdir()?;
        if let Some((bytes, zxid)) = snapshot {
            let version2 = dir.path().join("data").join("version-2");
            std::fs::create_dir_all(&version2)?;
            std::fs::write(version2.join(format!("snapshot.{zxid:x}")), bytes)?;
        }
        let port = free_port()?;
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime={tick_time_ms}\ndataDir={}\nclientPort={port}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=*\nenforceQuota=true\n\
                 DigestAuthenticationProvider.superDigest={}\n",
                dir.path().join("data").display(),
                crate::super_digest(),
            ),
        )?;
        let mut zk = ApacheZk {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: spawn(&cfg)?,
            cfg,
            dir,
        };
        zk.wait_serving()?;
        Ok(zk)
    }

    /// Stops the server (SIGKILL) and starts it again on its data: at start ZooKeeper writes a
    /// snapshot of everything it loaded (see [`ApacheZk::newest_snapshot`]).
    pub fn restart(&mut self) -> std::io::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.cfg)?;
        self.wait_serving()
    }

    /// The newest `snapshot.<zxid>` file of its data dir.
    pub fn newest_snapshot(&self) -> Option<std::path::PathBuf> {
        let dir = self.dir.path().join("data").join("version-2");
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let zxid = u64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()?;
                Some((zxid, e.path()))
            })
            .max()
            .map(|(_, p)| p)
    }

    fn wait_serving(&mut self) -> std::io::Result<()> {
        let addr = self.addr;
        if crate::wait::poll_for(Duration::from_secs(60), || serving(addr).then_some(())).is_some()
        {
            return Ok(());
        }
        Err(std::io::Error::other(
            "Apache ZooKeeper did not start within 60 s (is Debian's zookeeper installed?)",
        ))
    }
}

fn spawn(cfg: &std::path::Path) -> std::io::Result<Child> {
    Command::new("java")
        .args([
            "-Dzookeeper.extendedTypesEnabled=true",
            // Look for empty containers and expired TTL nodes often, so tests can wait.
            "-Dznode.container.checkIntervalMs=100",
            "-Dzookeeper.root.logger=ERROR,CONSOLE",
            "-Xms64m",
            "-cp",
            CLASSPATH,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
        ])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

impl Drop for ApacheZk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Apache ZooKeeper ensemble: one `QuorumPeerMain` per zoo.cfg, each naming its own
/// dataDir (with its `myid`) and client port. Stopped on drop.
#[derive(Debug)]
pub struct ApacheEnsemble {
    children: Vec<Child>,
}

impl ApacheEnsemble {
    /// Starts a server per file and waits until every client address in `addrs` serves (a
    /// leader has been elected and each has synced with it).
    pub fn start(cfgs: &[std::path::PathBuf], addrs: &[SocketAddr]) -> std::io::Result<Self> {
        let mut ensemble = ApacheEnsemble {
            children: Vec::new(),
        };
        for cfg in cfgs {
            ensemble.children.push(
                Command::new("java")
                    .args([
                        "-Dzookeeper.root.logger=ERROR,CONSOLE",
                        "-Xms64m",
                        "-cp",
                        CLASSPATH,
                        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                    ])
                    .arg(cfg)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
        }
        let all_serving = || addrs.iter().all(|a| serving(*a)).then_some(());
        if crate::wait::poll_for(Duration::from_secs(90), all_serving).is_some() {
            return Ok(ensemble);
        }
        Err(std::io::Error::other(
            "the Apache ZooKeeper ensemble did not serve within 90 s",
        ))
    }
}

impl Drop for ApacheEnsemble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn serving(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut out = String::new();
    s.write_all(b"srvr").is_ok() && s.read_to_string(&mut out).is_ok() && out.contains("Mode:")
}

/// A loopback port free right now (the OS picks it; released before the server binds it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
