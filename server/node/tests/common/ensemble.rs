//! Ensembles of `zooid` processes on loopback, started from one ZooKeeper zoo.cfg (each member
//! with its own data dir and `myid`), and the faults the tests inflict on them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
}

impl Member {
    fn spawn(cfg: &Path, dir: &Path, log: &Path) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_zooid"))
            .arg("--config")
            .arg(cfg)
            .arg("--data-dir")
            .arg(dir)
            .env_remove("ZOOID_FOUR_LETTER_WORDS")
            .stdout(Stdio::from(out))
            .stderr(Stdio::null())
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
    pub fn restart(&mut self) {
        self.child = Self::spawn(&self.cfg, &self.dir, &self.log);
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

/// Starts three members from one zoo.cfg (tickTime 200 ms, so sessions last 0.4-4 s) and
/// waits for one leader and two followers; `None` if one exited (a port taken meanwhile).
fn try_start(root: &Path, extra_cfg: &str, observers: usize) -> Option<Vec<Member>> {
    let n = 3 + observers;
    let ports: Vec<u16> = (0..3 * n)
        .map(|_| zooid_e2e::apache::free_port().unwrap())
        .collect();
    let mut cfg =
        String::from("tickTime=200\ninitLimit=10\nsyncLimit=5\n4lw.commands.whitelist=*\n");
    cfg += extra_cfg;
    for i in 0..n {
        cfg += &format!(
            "server.{}=127.0.0.1:{}:{}{};127.0.0.1:{}\n",
            i + 1,
            ports[3 * i],
            ports[3 * i + 1],
            if i >= 3 { ":observer" } else { "" },
            ports[3 * i + 2]
        );
    }
    let cfg_path = root.join("zoo.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut members = Vec::new();
    for i in 0..n as u64 {
        let dir: PathBuf = root.join(format!("data{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), format!("{}\n", i + 1)).unwrap();
        let log = root.join(format!("zooid{}.log", i + 1));
        members.push(Member {
            id: i + 1,
            observer: i >= 3,
            child: Member::spawn(&cfg_path, &dir, &log),
            client: SocketAddr::from(([127, 0, 0, 1], ports[3 * i as usize + 2])),
            cfg: cfg_path.clone(),
            dir,
            log,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for m in &mut members {
            if m.child.try_wait().unwrap().is_some() {
                return None;
            }
        }
        if roles_settled(&members).is_some() {
            return Some(members);
        }
        assert!(
            Instant::now() < deadline,
            "no leader and followers: {:?}",
            members.iter().map(|m| mode(m.client)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    for attempt in 0..3 {
        let dir = root.join(format!("try{attempt}"));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(m) = try_start(&dir, extra_cfg, observers) {
            return m;
        }
    }
    panic!("the ensemble did not start in three tries");
}

/// Waits for one leader, the other voters following and observers observing; returns the
/// leader's index.
pub fn settled(members: &[Member], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        if let Some(l) = roles_settled(members) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "roles not settled after {within:?}: {:?}",
            members.iter().map(|m| mode(m.client)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts server `id`, not yet a member, configured as ZooKeeper's documentation says for a
/// server about to be added: the current members' lines and its own. Returns it and its
/// `server.N=...` line for the reconfig that adds it.
pub fn spawn_joiner(root: &Path, current: &[Member], id: u64, observer: bool) -> (Member, String) {
    let ports: Vec<u16> = (0..3)
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
    let member = Member {
        id,
        observer,
        child: Member::spawn(&cfg_path, &dir, &log),
        client: SocketAddr::from(([127, 0, 0, 1], ports[2])),
        cfg: cfg_path,
        dir,
        log,
    };
    (member, line)
}
