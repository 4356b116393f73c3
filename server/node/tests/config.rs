//! `zooid --config zoo.cfg`: ZooKeeper's configuration file read as ZooKeeper reads it, with
//! flags and environment variables taking precedence, and bad files refused with the line.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use zooid_e2e::wait::{poll_for, wait_for, wait_until};

fn zooid(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zooid"));
    c.args(args)
        .env_remove("ZOOID_FOUR_LETTER_WORDS")
        .env("ZOOID_ADMIN_ADDR", "127.0.0.1:0");
    c
}

/// Runs zooid expecting it to refuse to start; returns what it printed.
fn refused(args: &[&str]) -> String {
    let mut child = zooid(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        &format!("zooid {args:?} exiting"),
        Duration::from_secs(20),
        || child.try_wait().unwrap().is_some(),
    );
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    assert!(!status.success(), "zooid {args:?} started");
    String::from_utf8_lossy(&stderr).into_owned() + &String::from_utf8_lossy(&stdout)
}

/// `conf` from the server on `port`, once it answers (None if `child` exited).
fn conf(port: u16, child: &mut Child) -> Option<String> {
    wait_for("zooid answering conf", Duration::from_secs(20), || {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let mut out = String::new();
            if s.write_all(b"conf").is_ok() && s.read_to_string(&mut out).is_ok() && !out.is_empty()
            {
                return Some(Some(out));
            }
        }
        child.try_wait().unwrap().map(|_| None)
    })
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_standalone_zoo_cfg_is_read_and_flags_and_variables_win() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let logs = dir.path().join("txnlog");
    let cfg = dir.path().join("zoo.cfg");
    for _attempt in 0..3 {
        let port = zooid_e2e::apache::free_port().unwrap();
        write(
            &cfg,
            &format!(
                "# as ZooKeeper's sample\n\
                 tickTime=1000\n\
                 initLimit=10\n\
                 syncLimit=5\n\
                 dataDir={}\n\
                 dataLogDir={}\n\
                 clientPort={port}\n\
                 clientPortAddress=127.0.0.1\n\
                 maxClientCnxns=5\n\
                 minSessionTimeout=3000\n\
                 4lw.commands.whitelist=conf, srvr\n\
                 autopurge.purgeInterval=1\n\
                 tickTyme=3\n",
                data.display(),
                logs.display()
            ),
        );
        let log = dir.path().join("zooid.log");
        let mut child = zooid(&["--config", cfg.to_str().unwrap(), "--max-client-cnxns", "7"])
            .env("ZOOID_MIN_SESSION_TIMEOUT_MS", "4000")
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let Some(conf) = conf(port, &mut child) else {
            continue; // another test took the port first
        };
        child.kill().unwrap();
        child.wait().unwrap();
        for line in [
            format!("clientPort={port}"),
            "clientPortAddress=127.0.0.1".into(),
            format!("dataDir={}", data.display()),
            format!("dataLogDir={}", logs.display()),
            "tickTime=1000".into(),
            // The flag and the variable win over the file.
            "maxClientCnxns=7".into(),
            "minSessionTimeout=4000".into(),
            // Derived from the file's tickTime.
            "maxSessionTimeout=20000".into(),
        ] {
            assert!(conf.lines().any(|l| l == line), "{line} not in:\n{conf}");
        }
        assert!(logs.join("log").is_dir(), "the log is in dataLogDir");
        let log = std::fs::read_to_string(&log).unwrap();
        let warning = log
            .lines()
            .find(|l| l.contains("does not use"))
            .unwrap_or_else(|| panic!("no warning about unused keys in:\n{log}"));
        for key in [
            "autopurge.purgeInterval",
            "tickTyme",
            "initLimit",
            "syncLimit",
        ] {
            assert!(warning.contains(key), "{key} not in: {warning}");
        }
        return;
    }
    panic!("zooid exited during start three times");
}

#[test]
fn bad_config_files_are_refused_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let cfg_arg = cfg.to_str().unwrap();
    for (text, needle) in [
        (
            "tickTime=2000\nclientPort=twenty\n",
            "zoo.cfg:2: clientPort",
        ),
        ("tickTime=2000\n\ntickTime=-5\n", "zoo.cfg:3: tickTime"),
        ("maxClientCnxns=lots\n", "zoo.cfg:1: maxClientCnxns"),
        ("tickTime=2000\nserver.1=h:2888\n", "zoo.cfg:2: server.1"),
        ("4lw.commands.whitelist=ruok, nope\n", "nope"),
        // Never a server open to anyone by one key alone.
        ("skipACL=yes\n", "skipACLConfirmed=true"),
        // Never plaintext where TLS or an authentication provider is asked for.
        (
            "secureClientPort=2281\n",
            "need ssl-key-store (ssl.keyStore.location)",
        ),
        (
            "client.portUnification=true\n",
            "need ssl-key-store (ssl.keyStore.location)",
        ),
        (
            "sslQuorum=true\n",
            "ssl-quorum (sslQuorum) needs ssl-quorum-key-store (ssl.quorum.keyStore.location)",
        ),
        (
            "sslQuorum=true\nssl.quorum.keyStore.location=/nowhere/member.pem\n\
             ssl.quorum.trustStore.location=/nowhere/ca.pem\n",
            "ssl.quorum.keyStore.location /nowhere/member.pem",
        ),
        (
            "ssl.quorum.ciphersuites=x\n",
            "zoo.cfg:1: ssl.quorum.ciphersuites",
        ),
        (
            "secureClientPort=2281\nssl.keyStore.location=/nowhere/keystore.p12\n\
             ssl.clientAuth=none\n",
            "ssl.keyStore.location /nowhere/keystore.p12",
        ),
        (
            "authProvider.1=com.example.KerberosAuthenticationProvider\n",
            "authProvider.1",
        ),
        (
            "jaasLoginConfig=/nowhere/jaas.conf\n",
            "SASL users (sasl-jaas-file): reading /nowhere/jaas.conf",
        ),
        (
            "DigestAuthenticationProvider.superDigest=super\n",
            "superDigest",
        ),
    ] {
        write(&cfg, text);
        let out = refused(&["--config", cfg_arg]);
        assert!(out.contains(needle), "{text:?}: {needle:?} not in:\n{out}");
    }
    let out = refused(&["--config", dir.path().join("absent.cfg").to_str().unwrap()]);
    assert!(out.contains("absent.cfg"), "{out}");

    // An ensemble needs myid in dataDir, naming one of its servers.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write(
        &cfg,
        &format!(
            "dataDir={}\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\n",
            data.display()
        ),
    );
    let out = refused(&["--config", cfg_arg]);
    assert!(
        out.contains(&format!("{}", data.join("myid").display())),
        "{out}"
    );
    write(&data.join("myid"), "9\n");
    let out = refused(&["--config", cfg_arg]);
    assert!(out.contains("server.9"), "{out}");
}

/// The zoo.cfg files of an Apache ZooKeeper 3.8 ensemble, as its operators write them (one per
/// server: its own dataDir with `myid` and its clientPort; `server.N` lines without client
/// ports; autopurge, admin server and 4lw keys). They first start Debian's ZooKeeper 3.8
/// ensemble, which proves them valid; then the same files, unchanged, start a Zooid ensemble
/// that elects a leader and orders writes.
#[test]
fn the_zoo_cfg_files_of_a_zookeeper_ensemble_start_a_zooid_ensemble() {
    use zooid_e2e::apache::{free_port, ApacheEnsemble};
    let root = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..9).map(|_| free_port().unwrap()).collect();
    let mut cfgs = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..3 {
        let data = root.path().join(format!("zk{}", i + 1));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
        let mut cfg = format!(
            "# The number of milliseconds of each tick\n\
             tickTime=2000\n\
             # The number of ticks that the initial synchronization phase can take\n\
             initLimit=10\n\
             # The number of ticks that can pass between sending a request and getting an ack\n\
             syncLimit=5\n\
             dataDir={}\n\
             clientPort={}\n\
             clientPortAddress=127.0.0.1\n\
             maxClientCnxns=60\n\
             autopurge.snapRetainCount=3\n\
             autopurge.purgeInterval=1\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=srvr, mntr, ruok, conf\n",
            data.display(),
            ports[3 * i + 2]
        );
        for j in 0..3 {
            cfg += &format!(
                "server.{}=127.0.0.1:{}:{}\n",
                j + 1,
                ports[3 * j],
                ports[3 * j + 1]
            );
        }
        let path = root.path().join(format!("zoo{}.cfg", i + 1));
        std::fs::write(&path, cfg).unwrap();
        cfgs.push(path);
        addrs.push(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            ports[3 * i + 2],
        )));
    }

    // Apache ZooKeeper 3.8 takes these files.
    {
        let _zk = ApacheEnsemble::start(&cfgs, &addrs)
            .expect("Apache ZooKeeper must be installed (scripts/test.sh installs it)");
        let mut c = zooid_e2e::raw::RawClient::connect(addrs[0]);
        c.create("/on-zookeeper", b"", 0).unwrap();
    }

    // So does Zooid, given nothing but the file.
    let mut children: Vec<Child> = cfgs
        .iter()
        .map(|cfg| {
            zooid(&["--config", cfg.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let modes = wait_for(
        "a Zooid ensemble of the same files",
        Duration::from_secs(60),
        || {
            let modes: Vec<String> = addrs
                .iter()
                .map(|a| {
                    let mut out = String::new();
                    if let Ok(mut s) = TcpStream::connect_timeout(a, Duration::from_millis(300)) {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let _ = s.write_all(b"srvr");
                        let _ = s.read_to_string(&mut out);
                    }
                    out.lines()
                        .find_map(|l| l.strip_prefix("Mode: "))
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
            let mut sorted = modes.clone();
            sorted.sort();
            for c in &mut children {
                assert!(c.try_wait().unwrap().is_none(), "a zooid exited");
            }
            (sorted == ["follower", "follower", "leader"]).then_some(modes)
        },
    );
    let mut w = zooid_e2e::raw::RawClient::connect(addrs[0]);
    w.create("/on-zooid", b"x", 0).unwrap();
    let mut r = zooid_e2e::raw::RawClient::connect(addrs[2]);
    let (f, _) = r.call(&zooid_proto::Request::Sync {
        path: "/on-zooid".into(),
    });
    assert_eq!(f.err, 0);
    assert!(r.get("/on-zooid", false).is_ok(), "modes {modes:?}");
    for mut c in children {
        c.kill().unwrap();
        let out = c.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        // ZooKeeper's data in the same dataDir is named, not silently ignored.
        assert!(log.contains("holds ZooKeeper's data"), "{log}");
    }
}

#[test]
fn the_admin_port_comes_from_zoo_cfg_and_a_taken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!(
        "tickTime=2000\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.serverAddress=127.0.0.1\n",
        dir.path().join("data").display()
    );
    write(
        &cfg,
        &format!(
            "{base}admin.serverPort={}\n",
            taken.local_addr().unwrap().port()
        ),
    );
    let mut refuse = zooid(&["--config", cfg.to_str().unwrap()]);
    refuse.env_remove("ZOOID_ADMIN_ADDR");
    let out = refuse.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin port") && err.contains("admin.serverPort"),
        "{err}"
    );

    write(&cfg, &format!("{base}admin.serverPort=notaport\n"));
    let err = refused(&["--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("zoo.cfg:6") && err.contains("admin.serverPort"),
        "{err}"
    );

    for _attempt in 0..3 {
        let port = zooid_e2e::apache::free_port().unwrap();
        write(&cfg, &format!("{base}admin.serverPort={port}\n"));
        let mut child = zooid(&["--config", cfg.to_str().unwrap()])
            .env_remove("ZOOID_ADMIN_ADDR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // None if it exited (another test took the port first) or never answered.
        let answer = poll_for(Duration::from_secs(20), || {
            if let Some(a) = zooid_e2e::http::get(addr, "/healthz") {
                return Some(Some(a));
            }
            child.try_wait().unwrap().map(|_| None)
        })
        .flatten();
        let _ = child.kill();
        let _ = child.wait();
        let Some(answer) = answer else {
            continue; // another test took the port first
        };
        assert_eq!(answer.status, 200, "{answer:?}");
        return;
    }
    panic!("the admin API never answered on its zoo.cfg port");
}
