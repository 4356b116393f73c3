//! `zooid --config zoo.cfg`: ZooKeeper's configuration file read as ZooKeeper reads it, with
//! flags and environment variables taking precedence, and bad files refused with the line.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn zooid(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zooid"));
    c.args(args).env_remove("ZOOID_FOUR_LETTER_WORDS");
    c
}

/// Runs zooid expecting it to refuse to start; returns what it printed.
fn refused(args: &[&str]) -> String {
    let mut child = zooid(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "zooid {args:?} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let mut out = String::new();
            if s.write_all(b"conf").is_ok() && s.read_to_string(&mut out).is_ok() && !out.is_empty()
            {
                return Some(out);
            }
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "zooid did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
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
