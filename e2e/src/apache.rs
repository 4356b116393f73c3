//! Starts Apache ZooKeeper 3.8 (Debian's `zookeeper` package) as a standalone server on a free
//! loopback port in a temporary directory, for differential tests. Stopped on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where Debian installs the server jar and its configuration directory, and SLF4J's simple
/// logger (Debian's jar names no logger), so that a server that will not start says why in
/// its log.
const CLASSPATH: &str =
    "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

#[derive(Debug)]
pub struct ApacheZk {
    pub addr: SocketAddr,
    /// The TLS port, when started with [`ApacheZk::start_secured`].
    pub secure_addr: Option<SocketAddr>,
    child: Child,
    /// JVM options beyond the usual ones (a JAAS file, a class path with Netty).
    jvm: Vec<String>,
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

    /// [`ApacheZk::start`] with a TLS port too (Netty, as ZooKeeper needs for
    /// `secureClientPort`), `extra` zoo.cfg lines (its stores, `ssl.clientAuth`, providers)
    /// and SASL users from the JAAS file `jaas`.
    pub fn start_secured(
        tick_time_ms: u32,
        extra: &str,
        jaas: &std::path::Path,
    ) -> std::io::Result<ApacheZk> {
        let secure_port = free_port()?;
        let extra = format!(
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             secureClientPort={secure_port}\n{extra}"
        );
        // Debian's zookeeper.jar names Netty's jars in its manifest but not netty-resolver
        // and netty-codec, which its Netty server needs.
        let jvm = vec![
            format!("-Djava.security.auth.login.config={}", jaas.display()),
            "-cp".into(),
            format!(
                "{CLASSPATH}:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar"
            ),
        ];
        let mut zk = Self::start_with(tick_time_ms, None, &extra, jvm)?;
        zk.secure_addr = Some(SocketAddr::from(([127, 0, 0, 1], secure_port)));
        Ok(zk)
    }

    fn start_from(tick_time_ms: u32, snapshot: Option<(&[u8], i64)>) -> std::io::Result<ApacheZk> {
        let jvm = vec!["-cp".into(), CLASSPATH.into()];
        Self::start_with(tick_time_ms, snapshot, "", jvm)
    }

    fn start_with(
        tick_time_ms: u32,
        snapshot: Option<(&[u8], i64)>,
        extra: &str,
        jvm: Vec<String>,
    ) -> std::io::Result<ApacheZk> {
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
                 DigestAuthenticationProvider.superDigest={}\n{extra}",
                dir.path().join("data").display(),
                crate::super_digest(),
            ),
        )?;
        let mut zk = ApacheZk {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            secure_addr: None,
            child: spawn(&cfg, &jvm)?,
            jvm,
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
        self.child = spawn(&self.cfg, &self.jvm)?;
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
        let log = std::fs::read_to_string(log_of(&self.cfg)).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(std::io::Error::other(format!(
            "Apache ZooKeeper did not start within 60 s (is Debian's zookeeper installed?); \
             its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )))
    }
}

/// The server's log, beside its zoo.cfg.
fn log_of(cfg: &std::path::Path) -> std::path::PathBuf {
    cfg.with_file_name("zookeeper.log")
}

fn spawn(cfg: &std::path::Path, jvm: &[String]) -> std::io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_of(cfg))?;
    Command::new("java")
        .args([
            "-Dzookeeper.extendedTypesEnabled=true",
            // Look for empty containers and expired TTL nodes often, so tests can wait.
            "-Dznode.container.checkIntervalMs=100",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
            "-Xms64m",
        ])
        .args(jvm)
        .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(log)
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
