//! zooctl against a running server: every command, its errors, and a short bench.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use zooid_node::{Config, Server};

/// Runs zooctl against `server`: (success, stdout, stderr).
fn zooctl(server: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--server", server];
    all.extend_from_slice(args);
    zooctl_env(&all, &[])
}

/// Runs zooctl with `args` only (and `env`, the admin token unset unless given).
fn zooctl_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zooctl"))
        .args(args)
        .env_remove("ZOOCTL_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server in this process on free loopback ports, its data in `dir`.
fn start_server(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut Config),
) -> Server {
    let mut config = Config::defaults();
    config.client_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.into();
    tweak(&mut config);
    rt.block_on(Server::start(config)).unwrap()
}

#[test]
fn commands_and_bench() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = start_server(&rt, dir.path(), |_| {});
    let s = server.client_addr.to_string();

    assert_eq!(zooctl(&s, &["create", "/app", "v1"]).1, "Created /app\n");
    assert_eq!(
        zooctl(&s, &["create", "/app/q-", "--sequential"]).1,
        "Created /app/q-0000000000\n"
    );
    assert_eq!(zooctl(&s, &["get", "/app"]).1, "v1\n");
    assert!(zooctl(&s, &["set", "/app", "v2"]).0);
    assert!(zooctl(&s, &["stat", "/app"])
        .1
        .contains("dataVersion = 1\n"));
    assert_eq!(zooctl(&s, &["ls", "/"]).1, "app\nzookeeper\n");
    assert_eq!(zooctl(&s, &["tree", "/app"]).1, "/app\n/app/q-0000000000\n");
    let (ok, _, err) = zooctl(&s, &["delete", "/app"]);
    assert!(!ok);
    assert!(err.contains("NotEmpty (-111)"), "{err}");
    let (ok, _, err) = zooctl(&s, &["set", "/app", "v3", "--version", "7"]);
    assert!(!ok && err.contains("BadVersion (-103)"), "{err}");
    assert_eq!(zooctl(&s, &["word", "ruok"]).1, "imok\n");
    let (ok, _, err) = zooctl(&s, &["word", "toolong"]);
    assert!(!ok && err.contains("four letters"), "{err}");
    let (ok, out, err) = zooctl(
        &s,
        &[
            "bench",
            "--sessions",
            "2",
            "--depth",
            "2",
            "--keys",
            "10",
            "--read-percent",
            "50",
            "--warmup",
            "0",
            "--duration",
            "1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("ops/s") && out.contains("errors 0"), "{out}");
    assert!(
        zooctl(&s, &["get", "/zooctl-bench/k-000009"]).0,
        "bench keys exist"
    );
    let (ok, _, err) = zooctl("127.0.0.1:1", &["ls", "/"]);
    assert!(!ok && err.contains("connecting to 127.0.0.1:1"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `zooctl members` against a three-member ensemble (in this process, each member with its
/// zoo.cfg, myid and data dir): shows `/zookeeper/config`, adds an observer that is not
/// running (ZooKeeper allows that), removes it, and says why a change was refused.
#[test]
fn members_of_an_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Free ports are picked, let go and bound again: another test may take one meanwhile,
    // and then the ensemble is started again on others.
    let servers = (0..3)
        .find_map(|attempt| {
            let root = dir.path().join(format!("try{attempt}"));
            let started = start_ensemble(&rt, &root);
            if started.is_none() {
                eprintln!("a member could not bind its ports; starting again");
            }
            started
        })
        .expect("the ensemble did not start in three tries");
    let connect: Vec<String> = servers.iter().map(|s| s.client_addr.to_string()).collect();
    let connect = connect.join(",");
    // Members serve once the ensemble has a leader.
    let shown = zooid_e2e::wait::wait_for(
        "a member serving",
        std::time::Duration::from_secs(20),
        || {
            let (ok, out, _) = zooctl(&connect, &["members"]);
            ok.then_some(out)
        },
    );
    assert_eq!(
        shown.lines().filter(|l| l.starts_with("server.")).count(),
        3,
        "{shown}"
    );
    let version = shown
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap()
        .to_string();

    let observer = format!(
        "server.4=127.0.0.1:{}:{}:observer;127.0.0.1:{}",
        free_port(),
        free_port(),
        free_port()
    );
    // Only the super user may change the membership, as in ZooKeeper.
    let (ok, _, err) = zooctl(&connect, &["members", "add", &observer]);
    assert!(!ok && err.contains("only the super user"), "{err}");
    let su = |args: &[&str]| {
        let mut all = vec!["--auth", zooid_e2e::SUPER_USER];
        all.extend_from_slice(args);
        zooctl(&connect, &all)
    };
    let (ok, out, err) = su(&["members", "add", &observer, "--from-version", &version]);
    assert!(ok, "{err}");
    assert!(out.contains(&observer), "{out}");
    // The version moved on: the same condition is refused, with a message saying why.
    let (ok, _, err) = su(&["members", "remove", "4", "--from-version", &version]);
    assert!(!ok && err.contains("no longer at version"), "{err}");
    let (ok, out, err) = su(&["members", "remove", "4"]);
    assert!(ok, "{err}");
    assert!(!out.contains("server.4="), "{out}");
    let (ok, _, err) = su(&["members", "add", "nonsense"]);
    assert!(!ok && err.contains("is not server.N="), "{err}");
    let (ok, _, err) = su(&["members", "remove", "9"]);
    assert!(!ok && err.contains("BadArguments"), "{err}");
    // The four-letter word goes to every server of the string.
    let (_, out, _) = zooctl(&connect, &["word", "srvr"]);
    assert_eq!(out.matches("Mode: ").count(), 3, "{out}");
    // Status: one line per server, the leader and its followers in step.
    let (ok, out, err) = zooctl(&connect, &["status"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert_eq!(out.matches(" leader ").count(), 1, "{out}");
    assert_eq!(out.matches(" follower ").count(), 2, "{out}");
    // A server that does not answer is shown, and the command fails.
    let (ok, out, err) = zooctl(&format!("{connect},127.0.0.1:1"), &["status"]);
    assert!(!ok && err.contains("not serving: 127.0.0.1:1"), "{err}");
    assert!(out.contains("127.0.0.1:1") && out.contains("down"), "{out}");
    for s in servers {
        rt.block_on(s.shutdown(std::time::Duration::from_secs(1)));
    }
}

/// What zkCli users reach for: node kinds, deleteall, ACLs, a chroot, watch, snapshot save and
/// restore, and errors as one line with exit code 1.
#[test]
fn zkcli_style_commands() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = start_server(&rt, &dir.path().join("data"), |c| {
        c.admin_token = Some("tok".into())
    });
    let s = server.client_addr.to_string();

    // Node kinds.
    assert_eq!(zooctl(&s, &["create", "/app"]).1, "Created /app\n");
    assert_eq!(
        zooctl(&s, &["create", "/app/box", "-c"]).1,
        "Created /app/box\n"
    );
    assert_eq!(
        zooctl(&s, &["create", "/app/t-", "--ttl", "60000", "--sequential"]).1,
        "Created /app/t-0000000001\n"
    );
    let (ok, _, err) = zooctl(&s, &["create", "/app/bad", "--ttl", "0"]);
    assert!(
        !ok && err == "zooctl: --ttl must be a positive number of ms\n",
        "{err}"
    );
    let (ok, _, err) = zooctl(&s, &["create", "/app/bad", "-c", "--sequential"]);
    assert!(
        !ok && err.contains("container cannot be sequential"),
        "{err}"
    );
    let (ok, _, err) = zooctl(&s, &["create", "/app/bad", "-c", "-e"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");

    // A chroot: paths under it, shown without it.
    let rooted = format!("{s}/app");
    assert_eq!(zooctl(&rooted, &["create", "/x", "in"]).1, "Created /x\n");
    assert_eq!(zooctl(&s, &["get", "/app/x"]).1, "in\n");
    assert_eq!(zooctl(&rooted, &["ls", "/"]).1, "box\nt-0000000001\nx\n");
    assert_eq!(
        zooctl(&rooted, &["tree", "/"]).1,
        "/\n/box\n/t-0000000001\n/x\n"
    );

    // ACLs, zkCli's notation.
    assert_eq!(
        zooctl(&s, &["acl", "get", "/app/x"]).1,
        "world:anyone:cdrwa\n"
    );
    assert!(
        zooctl(
            &s,
            &["acl", "set", "/app/x", "world:anyone:r,ip:127.0.0.1:cdrwa"]
        )
        .0
    );
    assert_eq!(
        zooctl(&s, &["acl", "get", "/app/x"]).1,
        "world:anyone:r\nip:127.0.0.1:cdrwa\n"
    );
    let (ok, _, err) = zooctl(&s, &["acl", "set", "/app/x", "world:anyone:z"]);
    assert!(
        !ok && err.contains("not one of the permissions cdrwa"),
        "{err}"
    );

    // Watch: events stream as they happen.
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_zooctl"))
        .args(["--server", &s, "watch", "/app/x", "--count", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(watcher.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "Watching /app/x");
    assert!(zooctl(&s, &["set", "/app/x", "v2"]).0);
    assert!(zooctl(&s, &["create", "/app/x/kid"]).0);
    assert_eq!(lines.next().unwrap().unwrap(), "NodeDataChanged /app/x");
    assert_eq!(lines.next().unwrap().unwrap(), "NodeChildrenChanged /app/x");
    assert!(watcher.wait().unwrap().success());

    // deleteall, but never ZooKeeper's own nodes.
    assert!(zooctl(&s, &["deleteall", "/app"]).0);
    assert_eq!(zooctl(&s, &["ls", "/"]).1, "zookeeper\n");
    let (ok, _, err) = zooctl(&s, &["deleteall", "/zookeeper"]);
    assert!(!ok && err.contains("cannot be deleted"), "{err}");

    // zkCli's habits: `create -s` is sequential, paths are checked before they are sent,
    // a missing node is named once.
    assert!(zooctl(&s, &["create", "/z", ""]).0);
    assert_eq!(
        zooctl(&s, &["create", "-s", "/z/s-", "x"]).1,
        "Created /z/s-0000000000\n"
    );
    assert!(zooctl(&s, &["deleteall", "/z"]).0);
    let (ok, _, err) = zooctl(&s, &["ls", "app"]);
    assert!(
        !ok && err.contains("Path must start with / character"),
        "{err}"
    );
    let (ok, _, err) = zooctl(&s, &["get", "/app/"]);
    assert!(
        !ok && err.contains("Path must not end with / character"),
        "{err}"
    );
    let (ok, _, err) = zooctl(&s, &["ls", "/missing"]);
    assert_eq!(
        (ok, err.as_str()),
        (false, "zooctl: /missing: NoNode (-101)\n")
    );

    // Errors: one line, exit code 1, no backtrace.
    let out = Command::new(env!("CARGO_BIN_EXE_zooctl"))
        .args(["--server", &s, "get", "/missing"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "zooctl: /missing: NoNode (-101)\n"
    );
    let (ok, _, err) = zooctl("nohost", &["ls", "/"]);
    assert!(!ok && err.contains("is not host:port"), "{err}");

    // snapshot save, through the admin API, with the token.
    let admin = server.admin_addr.unwrap().to_string();
    let file = dir.path().join("backup.zsnap");
    let save = |token: Option<&str>| {
        let env: Vec<(&str, &str)> = token
            .map(|t| ("ZOOCTL_ADMIN_TOKEN", t))
            .into_iter()
            .collect();
        let file = file.to_str().unwrap();
        zooctl_env(&["snapshot", "save", file, "--admin", &admin], &env)
    };
    let (ok, _, err) = save(None);
    assert!(!ok && err.contains("ZOOCTL_ADMIN_TOKEN"), "{err}");
    let (ok, _, err) = save(Some("wrong"));
    assert!(
        !ok && err.contains("HTTP 401") && err.contains("admin token"),
        "{err}"
    );
    let (ok, out, err) = save(Some("tok"));
    assert!(ok, "{err}");
    assert!(out.starts_with("Saved a snapshot up to zxid 0x"), "{out}");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..8], b"ZOOIDSNP");

    // snapshot restore: what came after the save goes, what the save held comes back.
    assert!(zooctl(&s, &["create", "/after"]).0);
    let restore = |token: &str, file: &std::path::Path| {
        let file = file.to_str().unwrap();
        zooctl_env(
            &["snapshot", "restore", file, "--admin", &admin],
            &[("ZOOCTL_ADMIN_TOKEN", token)],
        )
    };
    let (ok, _, err) = restore("wrong", &file);
    assert!(!ok && err.contains("HTTP 401"), "{err}");
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a snapshot").unwrap();
    let (ok, _, err) = restore("tok", &junk);
    assert!(
        !ok && err.contains("HTTP 400") && err.contains("neither a Zooid backup"),
        "{err}"
    );
    let (ok, out, err) = restore("tok", &dir.path().join("missing"));
    assert!(!ok && err.contains("opening"), "{out}{err}");
    assert_eq!(zooctl(&s, &["ls", "/"]).1, "after\nzookeeper\n");
    let (ok, out, err) = restore("tok", &file);
    assert!(ok, "{err}");
    assert!(out.starts_with("Restored "), "{out}");
    assert_eq!(zooctl(&s, &["ls", "/"]).1, "zookeeper\n");

    // ZooKeeper's format, streamed as it is encoded, and back through restore.
    assert!(zooctl(&s, &["create", "/in-zk-format", "v"]).0);
    let zk = dir.path().join("snapshot.zk");
    let (ok, out, err) = zooctl_env(
        &[
            "snapshot",
            "save",
            zk.to_str().unwrap(),
            "--format",
            "zookeeper",
            "--admin",
            &admin,
        ],
        &[("ZOOCTL_ADMIN_TOKEN", "tok")],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("Saved a snapshot up to zxid 0x"), "{out}");
    assert_eq!(&std::fs::read(&zk).unwrap()[..4], b"ZKSN");
    assert!(zooctl(&s, &["delete", "/in-zk-format"]).0);
    let (ok, _, err) = restore("tok", &zk);
    assert!(ok, "{err}");
    assert_eq!(zooctl(&s, &["get", "/in-zk-format"]).1, "v\n");
    rt.block_on(server.shutdown(std::time::Duration::from_secs(1)));
}

/// Three members in this process from one zoo.cfg under `root`; `None` if one could not start
/// (its port was taken meanwhile), after stopping the others.
fn start_ensemble(rt: &tokio::runtime::Runtime, root: &std::path::Path) -> Option<Vec<Server>> {
    std::fs::create_dir_all(root).unwrap();
    let ports: Vec<u16> = (0..9).map(|_| free_port()).collect();
    let mut cfg = String::from("tickTime=200\ninitLimit=10\nreconfigEnabled=true\n");
    cfg += &zooid_e2e::super_digest_line();
    for i in 0..3 {
        cfg += &format!(
            "server.{}=127.0.0.1:{}:{};127.0.0.1:{}\n",
            i + 1,
            ports[3 * i],
            ports[3 * i + 1],
            ports[3 * i + 2]
        );
    }
    let cfg_path = root.join("zoo.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut servers = Vec::new();
    for id in 1..=3 {
        let data = root.join(format!("data{id}"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
        let config = Config::load([
            "zooid".into(),
            "--config".into(),
            cfg_path.clone().into_os_string(),
            "--data-dir".into(),
            data.into_os_string(),
            "--admin-addr=127.0.0.1:0".into(),
        ])
        .unwrap();
        match rt.block_on(Server::start(config)) {
            Ok(s) => servers.push(s),
            Err(e) => {
                eprintln!("member {id}: {e}");
                for s in servers {
                    rt.block_on(s.shutdown(std::time::Duration::from_secs(1)));
                }
                return None;
            }
        }
    }
    Some(servers)
}

/// `--tls-ca` and `--tls-identity`: zooctl over a server's TLS port, showing a client
/// certificate, its four-letter words and status too; without the identity the server (ssl.clientAuth=need) refuses it, and says so.
#[test]
fn commands_over_tls() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "zooctl test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let issue = |name: &str, file: &str| {
        let params = CertificateParams::new(vec![name.to_string(), "127.0.0.1".into()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        path
    };
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    let (server_pem, client_pem) = (
        issue("localhost", "server.pem"),
        issue("client", "client.pem"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = dir.path().join("data");
    let server = start_server(&rt, &data, |c| {
        c.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
        c.ssl_key_store = Some(server_pem);
        c.ssl_trust_store = Some(ca_path.clone());
    });
    let secure = server.secure_client_addr.unwrap().to_string();
    let (ca_arg, id_arg) = (ca_path.to_str().unwrap(), client_pem.to_str().unwrap());
    let tls = ["--tls-ca", ca_arg, "--tls-identity", id_arg];
    let run = |args: &[&str]| {
        let mut all = vec!["--server", secure.as_str()];
        all.extend_from_slice(&tls);
        all.extend_from_slice(args);
        zooctl_env(&all, &[])
    };
    assert_eq!(run(&["create", "/sealed", "v"]).1, "Created /sealed\n");
    assert_eq!(run(&["get", "/sealed"]).1, "v\n");
    // Four-letter words and status go inside TLS too.
    assert_eq!(run(&["word", "ruok"]).1, "imok\n");
    let (ok, out, err) = run(&["status"]);
    assert!(ok && out.contains("standalone"), "{out}{err}");
    let (ok, _, err) = zooctl_env(&["--server", &secure, "--tls-ca", ca_arg, "ls", "/"], &[]);
    assert!(!ok, "served without a client certificate");
    assert!(err.contains("zooctl"), "{err}");
}
