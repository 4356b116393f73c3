//! Unmodified ZooKeeper clients against the server. These need the clients installed
//! (`scripts/test.sh` installs them); a missing client fails the test rather than skipping it.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

#[test]
fn kazoo_recipes_and_basics() {
    let srv = start(|_| {});
    common::run_client_script("kazoo_scenarios.py", &[&srv.addr.to_string()]);
}

use common::start;

/// Debian's `zkCli.sh` (the Java client of ZooKeeper 3.8) driving ls, create, get, set, stat,
/// delete through its stdin.
#[test]
fn zkcli_basic_commands() {
    let srv = start(|_| {});
    let script = "create /zkcli hello\nget /zkcli\nset /zkcli world\nget /zkcli\n\
                  stat /zkcli\nls /\ndelete /zkcli\nls /\nget /zkcli\nquit\n";
    let out = zkcli(srv.addr, script);
    let lines: Vec<&str> = out
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty() && !l.starts_with("SLF4J") && !l.starts_with("WATCHER"))
        .collect();
    // zkCli writes command results to stdout and confirmations and errors to stderr.
    for want in ["Created /zkcli", "Node does not exist: /zkcli"] {
        assert!(
            lines.contains(&want),
            "zkCli output lacks {want:?}:\n{out:#?}"
        );
    }
    let expect_in_order = [
        "hello",
        "world",
        "dataVersion = 1",
        "dataLength = 5",
        "[zkcli, zookeeper]",
        "[zookeeper]",
    ];
    let mut at = 0;
    for want in expect_in_order {
        match lines[at..].iter().position(|l| *l == want) {
            Some(i) => at += i + 1,
            None => panic!("zkCli output lacks {want:?} (in order):\n{out:#?}"),
        }
    }
}

/// Runs `script` through Debian's zkCli.sh against `server`; stdout and stderr as lines.
fn zkcli(server: std::net::SocketAddr, script: &str) -> Vec<String> {
    zkcli_with(server, script, "")
}

/// [`zkcli`] with Java system properties for the client (`CLIENT_JVMFLAGS`); the script is
/// run once the session is open (`-waitforconnection`).
fn zkcli_with(server: std::net::SocketAddr, script: &str, jvm_flags: &str) -> Vec<String> {
    let mut child = Command::new("/usr/share/zookeeper/bin/zkCli.sh")
        .args(["-waitforconnection", "-timeout", "10000"])
        .args(["-server", &server.to_string()])
        .env("CLIENT_JVMFLAGS", jvm_flags)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("zkCli.sh must be installed (scripts/test.sh installs Debian's zookeeper)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(|l| l.trim().to_string())
        .collect()
}

/// zkCli's `addauth digest` and ACL commands, and what another session is then refused, on
/// Apache ZooKeeper 3.8 and on Zooid: the same answers.
#[test]
fn zkcli_acl_commands_answer_as_zookeeper_does() {
    let zk = zooid_e2e::apache::ApacheZk::start(2000).expect("Apache ZooKeeper must be installed");
    let zooid = start(|_| {});
    let owner = "addauth digest alice:secret\ncreate /acl-owned mine\n\
                 setAcl /acl-owned auth::cdrwa\ngetAcl /acl-owned\nget /acl-owned\n\
                 create /acl-read open\nsetAcl /acl-read world:anyone:r\ngetAcl /acl-read\nquit\n";
    let stranger = "get /acl-owned\nset /acl-owned theirs\ngetAcl /acl-owned\nget /acl-read\n\
                    set /acl-read theirs\ndelete /acl-read\naddauth digest alice:secret\n\
                    get /acl-owned\nquit\n";
    // What the commands answered: ACL lines, data, refusals; not the banners and logs.
    let answers = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| {
                l.starts_with('\'')
                    || l.starts_with(": ")
                    || l.contains("Insufficient permission")
                    || l.contains("Authentication is not valid")
                    || l.contains("NoAuth")
                    || ["mine", "open", "theirs"].contains(&l.as_str())
            })
            .collect()
    };
    let on = |server| {
        let mut out = answers(zkcli(server, owner));
        out.push("--".into());
        out.extend(answers(zkcli(server, stranger)));
        out
    };
    let (from_zk, from_zooid) = (on(zk.addr), on(zooid.addr));
    assert!(
        from_zk
            .iter()
            .any(|l| l.contains("Insufficient permission")),
        "ZooKeeper refused nothing: {from_zk:#?}"
    );
    assert_eq!(from_zooid, from_zk);
}

/// zkCli.sh with ZooKeeper's client TLS properties (the Netty socket, `zookeeper.client.secure`,
/// PEM key and trust stores) against the TLS port, its certificate its identity.
#[test]
fn zkcli_speaks_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::pki::Ca::new("zooid test CA");
    let key_store = common::pki::write(dir.path(), "server.pem", &ca.issue("localhost"));
    let trust_store = common::pki::write(dir.path(), "ca.pem", &ca.pem);
    let client = common::pki::write(dir.path(), "client.pem", &ca.issue("client"));
    let srv = common::start(|c| {
        c.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
        c.ssl_key_store = Some(key_store);
        c.ssl_trust_store = Some(trust_store.clone());
    });
    // Debian's zookeeper.jar names Netty's jars in its manifest but not netty-resolver and
    // netty-codec, which the Netty client socket needs: a class path with them.
    let flags = format!(
        "-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-resolver.jar:\
         /usr/share/java/netty-codec.jar \
         -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
         -Dzookeeper.client.secure=true \
         -Dzookeeper.ssl.keyStore.location={} -Dzookeeper.ssl.keyStore.type=PEM \
         -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.type=PEM",
        client.display(),
        trust_store.display()
    );
    let script = "create /over-tls sealed\nget /over-tls\nwhoami\nquit\n";
    let out = zkcli_with(srv.secure.unwrap(), script, &flags);
    for want in ["Created /over-tls", "sealed", "x509: O=zooid,CN=client"] {
        assert!(
            out.iter().any(|l| l.contains(want)),
            "zkCli over TLS lacks {want:?}:\n{out:#?}"
        );
    }
    // The node is there for a plaintext client too: one server, two ports.
    let mut plain = common::RawClient::connect(srv.addr);
    assert!(plain.get("/over-tls", false).is_ok());
}
