//! Ensembles of `zooid` processes on loopback, started from one ZooKeeper zoo.cfg (each member
//! with its own data dir and `myid`), and the faults the tests inflict on them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use super::proxy::Proxies;

pub struct Member {
    pub id: u64,
    /// Configured as an observer.
    pub observer: bool,
    pub child: Child,
    pub client: SocketAddr,
    cfg: PathBuf,
    dir: PathBuf,
    /// Its stdout, across restarts.
    pub log: PathBuf,
    /// Where its peer port listens when the other members reach it through a proxy.
    peer_listen: Option<SocketAddr>,
    /// Its admin HTTP API.
    pub admin: SocketAddr,
    /// Environment variables it runs with.
    env: Vec<(String, String)>,
}

impl Member {
    fn spawn(
        cfg: &Path,
        dir: &Path,
        log: &Path,
        peer_listen: Option<SocketAddr>,
        admin: SocketAddr,
        env: &[(String, String)],
    ) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        // Its stderr too: a panic is then in its log.
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zooid"));
        if let Some(listen) = peer_listen {
            cmd.arg("--peer-listen").arg(listen.to_string());
        }
        cmd.arg("--admin-addr")
            .arg(admin.to_string())
            .arg("--config")
            .arg(cfg)
            .arg("--data-dir")
            .arg(dir)
            .env_remove("ZOOID_FOUR_LETTER_WORDS")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap()
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the member again on its data, after [`Member::kill9`].
    /// Its admin API moves to a port of the kernel's choosing: the one it had may have been
    /// taken meanwhile (any connection a test opens gets a port from the same range), and
    /// that would stop it from starting.
    pub fn restart(&mut self) {
        self.admin = SocketAddr::from(([127, 0, 0, 1], 0));
        self.child = Self::spawn(
            &self.cfg,
            &self.dir,
            &self.log,
            self.peer_listen,
            self.admin,
            &self.env,
        );
    }

    /// [`Member::restart`] with `env` instead of the environment it ran with.
    pub fn restart_with_env(&mut self, env: &[(String, String)]) {
        self.env = env.to_vec();
        self.restart();
    }

    /// Sends a signal (`-STOP`, `-CONT`) to the member's process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} on member {}", self.id);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `srvr`'s Mode line, or `None` if the member does not answer or does not serve.
pub fn mode(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_string)
}

/// How an ensemble is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub voters: usize,
    pub observers: usize,
    /// Peer links go through a [`Proxies`], which can cut them.
    pub proxied: bool,
}

/// Starts the members from one zoo.cfg (tickTime 200 ms, so sessions last 0.4-4 s) and
/// waits for one leader and followers; `None` if one exited (a port taken meanwhile).
fn try_start(
    root: &Path,
    extra_cfg: &str,
    layout: Layout,
    env: &[(String, String)],
) -> Option<(Vec<Member>, Option<Proxies>)> {
    let n = layout.voters + layout.observers;
    let ports: Vec<u16> = (0..5 * n)
        .map(|_| zooid_e2e::apache::free_port().unwrap())
        .collect();
    let mut cfg =
        String::from("tickTime=200\ninitLimit=10\nsyncLimit=5\n4lw.commands.whitelist=*\n");
    cfg += extra_cfg;
    for i in 0..n {
        cfg += &format!(
            "server.{}=127.0.0.1:{}:{}{};127.0.0.1:{}\n",
            i + 1,
            ports[5 * i],
            ports[5 * i + 1],
            if i >= layout.voters { ":observer" } else { "" },
            ports[5 * i + 2]
        );
    }
    let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    // A proxy port taken meanwhile: the caller starts again on others.
    let proxies = layout
        .proxied
        .then(|| {
            Proxies::start(
                (0..n)
                    .map(|i| (i as u64 + 1, at(ports[5 * i]), at(ports[5 * i + 3])))
                    .collect(),
            )
        })
        .transpose()
        .ok()?;
    let cfg_path = root.join("zoo.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut members = Vec::new();
    for i in 0..n {
        let id = i as u64 + 1;
        let dir: PathBuf = root.join(format!("data{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), format!("{id}\n")).unwrap();
        let log = root.join(format!("zooid{id}.log"));
        let peer_listen = layout.proxied.then(|| at(ports[5 * i + 3]));
        let admin = at(ports[5 * i + 4]);
        members.push(Member {
            id,
            observer: i >= layout.voters,
            child: Member::spawn(&cfg_path, &dir, &log, peer_listen, admin, env),
            client: at(ports[5 * i + 2]),
            cfg: cfg_path.clone(),
            dir,
            log,
            peer_listen,
            admin,
            env: env.to_vec(),
        });
    }
    // A member that exits could not bind its ports: the caller starts again elsewhere.
    let clients: Vec<SocketAddr> = members.iter().map(|m| m.client).collect();
    let settled = wait_for_explained(
        "a leader and followers",
        Duration::from_secs(30),
        || {
            if members
                .iter_mut()
                .any(|m| m.child.try_wait().unwrap().is_some())
            {
                return Some(false);
            }
            roles_settled(&members).map(|_| true)
        },
        || format!("{:?}", clients.iter().map(|a| mode(*a)).collect::<Vec<_>>()),
    );
    settled.then_some((members, proxies))
}

/// The leader's index if one voter leads, the other voters follow and observers observe.
fn roles_settled(members: &[Member]) -> Option<usize> {
    let modes: Vec<_> = members.iter().map(|m| mode(m.client)).collect();
    let mut leader = None;
    for (i, (m, mode)) in members.iter().zip(&modes).enumerate() {
        match mode.as_deref() {
            Some("observer") if m.observer => {}
            Some("follower") if !m.observer => {}
            Some("leader") if !m.observer && leader.is_none() => leader = Some(i),
            _ => return None,
        }
    }
    leader
}

/// Starts a three-member ensemble under `root`, trying again (on fresh ports) if a port was
/// taken by another test meanwhile.
pub fn start(root: &Path) -> Vec<Member> {
    start_with(root, "", 0)
}

/// [`start`] with more zoo.cfg lines, and `observers` observers after the three voters.
pub fn start_with(root: &Path, extra_cfg: &str, observers: usize) -> Vec<Member> {
    let layout = Layout {
        voters: 3,
        observers,
        proxied: false,
    };
    start_laid_out(root, extra_cfg, layout).0
}

/// Starts an ensemble as `layout` says, trying again on fresh ports if one was taken.
pub fn start_laid_out(
    root: &Path,
    extra_cfg: &str,
    layout: Layout,
) -> (Vec<Member>, Option<Proxies>) {
    start_with_env(root, extra_cfg, layout, &[])
}

/// [`start_laid_out`] with environment variables for every member.
pub fn start_with_env(
    root: &Path,
    extra_cfg: &str,
    layout: Layout,
    env: &[(String, String)],
) -> (Vec<Member>, Option<Proxies>) {
    for attempt in 0..3 {
        let dir = root.join(format!("try{attempt}"));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(m) = try_start(&dir, extra_cfg, layout, env) {
            return m;
        }
    }
    panic!("the ensemble did not start in three tries");
}

/// Waits for one leader, the other voters following and observers observing; returns the
/// leader's index.
pub fn settled(members: &[Member], within: Duration) -> usize {
    wait_for_explained(
        "roles settled",
        within,
        || roles_settled(members),
        || {
            format!(
                "{:?}",
                members.iter().map(|m| mode(m.client)).collect::<Vec<_>>()
            )
        },
    )
}

/// Starts server `id`, not yet a member, configured as ZooKeeper's documentation says for a
/// server about to be added: the current members' lines and its own. Returns it and its
/// `server.N=...` line for the reconfig that adds it.
pub fn spawn_joiner(root: &Path, current: &[Member], id: u64, observer: bool) -> (Member, String) {
    let ports: Vec<u16> = (0..4)
        .map(|_| zooid_e2e::apache::free_port().unwrap())
        .collect();
    let line = format!(
        "server.{id}=127.0.0.1:{}:{}:{};127.0.0.1:{}",
        ports[0],
        ports[1],
        if observer { "observer" } else { "participant" },
        ports[2]
    );
    let mut cfg = std::fs::read_to_string(&current[0].cfg).unwrap();
    cfg += &line;
    cfg += "\n";
    let cfg_path = root.join(format!("zoo{id}.cfg"));
    std::fs::write(&cfg_path, cfg).unwrap();
    let dir = root.join(format!("data{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("myid"), format!("{id}\n")).unwrap();
    let log = root.join(format!("zooid{id}.log"));
    let admin = SocketAddr::from(([127, 0, 0, 1], ports[3]));
    let member = Member {
        id,
        observer,
        child: Member::spawn(&cfg_path, &dir, &log, None, admin, &[]),
        client: SocketAddr::from(([127, 0, 0, 1], ports[2])),
        cfg: cfg_path,
        dir,
        log,
        peer_listen: None,
        admin,
        env: Vec::new(),
    };
    (member, line)
}

/// Opens a session on `addr` (or resumes `session` there), waiting up to `within` for the
/// member to take it: a member lets its clients go when the leader changes and refuses them
/// while it is cut off, as ZooKeeper's do, and its clients try again. `None` if it never does.
pub fn session_on(
    addr: SocketAddr,
    session: Option<(i64, [u8; 16])>,
    within: Duration,
) -> Option<super::RawClient> {
    let (id, pw) = session.unwrap_or((0, [0; 16]));
    // Not listening yet, or not serving yet: tried again.
    poll_for(within, || {
        super::RawClient::try_connect_with(addr, id, pw, 30000, 0).ok()
    })
}

/// The children of `path` after a `sync` on `c`'s connection; `None` if the connection was
/// let go or either answer was an error (the member is between leaders, say).
pub fn sync_then_children(c: &mut super::RawClient, path: &str) -> Option<Vec<String>> {
    use zooid_proto::{Reader, Request};
    let (f, _) = c.try_call(&Request::Sync { path: path.into() }).ok()?;
    if f.err != 0 {
        return None;
    }
    let (f, _) = c
        .try_call(&Request::GetChildren {
            path: path.into(),
            watch: false,
        })
        .ok()?;
    (f.err == 0).then(|| Reader::new(&f.body).vector(Reader::string).unwrap())
}

/// The children of `path` on the member at `addr`, after a `sync`: every write acknowledged
/// anywhere before the call is in them. A member that lets its clients go meanwhile (it has
/// just found a new leader, or its quorum again) is asked again, as a client would.
pub fn synced_children(addr: SocketAddr, path: &str, within: Duration) -> Vec<String> {
    wait_for(
        &format!("{addr} answering a sync of {path}"),
        within,
        || {
            super::RawClient::try_connect_with(addr, 0, [0; 16], 30000, 0)
                .ok()
                .and_then(|mut c| sync_then_children(&mut c, path))
        },
    )
}

use zooid_e2e::wait::{poll_for, wait_for, wait_for_explained};
