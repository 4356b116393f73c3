//! The differential suite: every scenario of `zooid_e2e::scenarios` runs against Apache
//! ZooKeeper 3.8 (Debian's package, started here on a loopback port) and against Zooid, and the
//! normalized transcripts (error codes, data, every Stat field, children, watch events and their
//! order; zxids by rank, times by relation) must be identical. Each scenario also runs against
//! a three-member Zooid ensemble, its client on a follower.
//!
//! The identity scenarios (`scenarios::identities`: TLS client certificates as x509
//! identities, SASL DIGEST-MD5 logins) run the same way against servers of their own that
//! serve TLS (`ssl.clientAuth=want`) and know the same SASL users: ZooKeeper 3.8 with its
//! Netty server, Zooid, and the ensemble's follower through its unified client port.
//!
//! Each scenario is a test of its own (`cargo test -p zooid-node --test differential
//! <scenario>` runs one); the servers are started once, by the first scenario that runs, and
//! scenarios take turns on them.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, Member};
use libtest_mimic::{Arguments, Failed, Trial};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use zooid_e2e::apache::ApacheZk;
use zooid_e2e::raw::RawClient;
use zooid_e2e::scenarios::{self, Scenario};
use zooid_e2e::transcript::{clean, Ctx};

/// Zooid started as ZooKeeper is: quotas enforced, the tests' super user (cleanup needs it),
/// containers looked at often.
fn as_zookeeper(cfg: &mut zooid_node::config::Config) {
    cfg.container_check_ms = 100;
    cfg.enforce_quota = true;
    cfg.super_digest = Some(zooid_e2e::super_digest());
}

/// A three-member ensemble configured as [`as_zookeeper`] says, and `extra`: its members
/// and a follower's client address.
fn ensemble_with(root: &std::path::Path, extra: &str) -> (Vec<Member>, SocketAddr) {
    let cfg = format!(
        "tickTime=2000\ncontainerCheckMs=100\nenforceQuota=true\n{}{extra}",
        zooid_e2e::super_digest_line()
    );
    let members = ensemble::start_with(root, &cfg, 0);
    let leader = ensemble::settled(&members, Duration::from_secs(10));
    let follower = members[(leader + 1) % 3].client;
    (members, follower)
}

/// What every scenario runs against.
struct Servers {
    zk: ApacheZk,
    zooid: common::TestServer,
    /// The ensemble, kept running; the scenarios' client is on a follower.
    _members: Vec<Member>,
    follower: SocketAddr,
    _root: tempfile::TempDir,
}

impl Servers {
    fn start() -> Servers {
        let zk = ApacheZk::start(2000)
            .expect("Apache ZooKeeper must be installed (scripts/test.sh installs it)");
        let zooid = common::start(as_zookeeper);
        let root = tempfile::tempdir().unwrap();
        let (members, follower) = ensemble_with(root.path(), "");
        Servers {
            zk,
            zooid,
            _members: members,
            follower,
            _root: root,
        }
    }
}

/// Where a scenario runs: the plain port (the cleanup's) and how its clients connect.
struct Target {
    plain: SocketAddr,
    /// `None`: clients connect to `plain`.
    tls: Option<(SocketAddr, Arc<Identities>)>,
}

/// The client TLS configurations of the identity scenarios: client 0 shows Alice's
/// certificate, client 1 Bob's, the others none.
struct Identities {
    alice: Arc<rustls::ClientConfig>,
    bob: Arc<rustls::ClientConfig>,
    anonymous: Arc<rustls::ClientConfig>,
}

impl Identities {
    fn new(ca: &common::pki::Ca) -> Identities {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
            .unwrap();
        let builder = || {
            rustls::ClientConfig::builder_with_provider(zooid_node::tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots.clone())
        };
        let showing = |name: &str| {
            let pem = ca.issue(name);
            let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
            Arc::new(builder().with_client_auth_cert(chain, key).unwrap())
        };
        Identities {
            alice: showing("alice"),
            bob: showing("bob"),
            anonymous: Arc::new(builder().with_no_client_auth()),
        }
    }

    fn of(&self, client: usize) -> Arc<rustls::ClientConfig> {
        match client {
            0 => self.alice.clone(),
            1 => self.bob.clone(),
            _ => self.anonymous.clone(),
        }
    }
}

/// The servers of the identity scenarios: TLS beside the plain port, client certificates
/// wanted, the SASL users of `scenarios::SASL_USERS`.
struct SecuredServers {
    zk: ApacheZk,
    zooid: common::TestServer,
    _members: Vec<Member>,
    follower: SocketAddr,
    identities: Arc<Identities>,
    _root: tempfile::TempDir,
}

impl SecuredServers {
    fn start() -> SecuredServers {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let ca = common::pki::Ca::new("differential-ca");
        let key_store = common::pki::write(dir, "server.pem", &ca.issue("localhost"));
        let trust_store = common::pki::write(dir, "ca.pem", &ca.pem);
        let users: String = scenarios::SASL_USERS
            .iter()
            .map(|(u, p)| format!("\n  user_{u}=\"{p}\""))
            .collect();
        let jaas = common::pki::write(
            dir,
            "jaas.conf",
            &format!(
                "Server {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required{users};\n}};\n"
            ),
        );
        // The same keys for ZooKeeper and the ensemble, as a secured zoo.cfg has them.
        let secured = format!(
            "ssl.keyStore.location={}\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location={}\nssl.trustStore.type=PEM\nssl.clientAuth=want\n\
             authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
             authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            key_store.display(),
            trust_store.display()
        );
        let zk = ApacheZk::start_secured(2000, &secured, &jaas)
            .expect("Apache ZooKeeper must be installed (scripts/test.sh installs it)");
        let zooid = common::start(|cfg| {
            as_zookeeper(cfg);
            cfg.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
            cfg.ssl_key_store = Some(key_store.clone());
            cfg.ssl_trust_store = Some(trust_store.clone());
            cfg.ssl_client_auth = "want".into();
            cfg.sasl_jaas_file = Some(jaas.clone());
        });
        let extra = format!(
            "client.portUnification=true\njava.security.auth.login.config={}\n{secured}",
            jaas.display()
        );
        let (members, follower) = ensemble_with(&dir.join("ensemble"), &extra);
        SecuredServers {
            zk,
            zooid,
            _members: members,
            follower,
            identities: Arc::new(Identities::new(&ca)),
            _root: root,
        }
    }

    fn targets(&self) -> [Target; 3] {
        let tls = |plain: SocketAddr, secure: SocketAddr| Target {
            plain,
            tls: Some((secure, self.identities.clone())),
        };
        [
            tls(self.zk.addr, self.zk.secure_addr.unwrap()),
            tls(self.zooid.addr, self.zooid.secure.unwrap()),
            // The unified port takes TLS and plain connections alike.
            tls(self.follower, self.follower),
        ]
    }
}

/// The servers, started by the first scenario; the lock makes scenarios take turns (each
/// cleans the trees when done).
type Shared = Arc<OnceLock<Mutex<Servers>>>;
type SharedSecured = Arc<OnceLock<Mutex<SecuredServers>>>;

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let shared: Shared = Arc::default();
    let all = scenarios::all();
    let count = all.len();
    let mut trials = vec![Trial::test("the_suite_is_whole", move || {
        if count < 80 {
            return Err(format!("only {count} scenarios").into());
        }
        Ok(())
    })];
    trials.extend(all.into_iter().map(|s| {
        let shared = shared.clone();
        Trial::test(s.name, move || {
            let servers = shared.get_or_init(|| Mutex::new(Servers::start()));
            // A scenario that panicked left the trees cleaned or not; the next one cleans
            // first.
            let servers = servers.lock().unwrap_or_else(|e| e.into_inner());
            let plain = |plain| Target { plain, tls: None };
            compare(
                &s,
                [
                    plain(servers.zk.addr),
                    plain(servers.zooid.addr),
                    plain(servers.follower),
                ],
            )
        })
    }));
    let secured: SharedSecured = Arc::default();
    trials.extend(scenarios::identities().into_iter().map(|s| {
        let secured = secured.clone();
        Trial::test(s.name, move || {
            let servers = secured.get_or_init(|| Mutex::new(SecuredServers::start()));
            let servers = servers.lock().unwrap_or_else(|e| e.into_inner());
            compare(&s, servers.targets())
        })
    }));
    let conclusion = libtest_mimic::run(&args, trials);
    // Every trial is done and dropped: the servers stop here.
    drop(shared);
    drop(secured);
    conclusion.exit_code()
}

/// Runs `s` on ZooKeeper, on Zooid and on an ensemble's follower (`targets` in that order),
/// and compares.
fn compare(s: &Scenario, targets: [Target; 3]) -> Result<(), Failed> {
    let run = |t: &Target| {
        clean(t.plain);
        let mut c = match &t.tls {
            None => Ctx::new(t.plain),
            Some((secure, identities)) => {
                let (secure, identities) = (*secure, identities.clone());
                Ctx::with_connector(
                    secure,
                    Box::new(move |i| RawClient::connect_tls(secure, identities.of(i))),
                )
            }
        };
        (s.run)(&mut c);
        let transcript = c.finish_transcript();
        clean(t.plain);
        transcript
    };
    let [zk, zooid, follower] = &targets;
    let expected = run(zk);
    let got = run(zooid);
    let on_follower = run(follower);
    // ZOOID_DIFF_SHOW=<scenario name> prints both transcripts, matching or not.
    if std::env::var("ZOOID_DIFF_SHOW").is_ok_and(|n| n == s.name) {
        eprintln!("--- {} (ZooKeeper)\n{}", s.name, expected.join("\n"));
        eprintln!("--- {} (Zooid)\n{}", s.name, got.join("\n"));
    }
    let mut failures = Vec::new();
    if expected != got {
        failures.push(side_by_side("Zooid", &expected, &got));
    }
    // A standalone server's `/zookeeper/config` is empty; an ensemble's lists its members
    // (tests/reconfig.rs checks it): those lines alone are left out of the comparison.
    let members_free = |t: &[String]| -> Vec<String> {
        t.iter()
            .filter(|l| !l.contains("\"/zookeeper/config\""))
            .cloned()
            .collect()
    };
    if members_free(&expected) != members_free(&on_follower) {
        failures.push(side_by_side(
            "an ensemble's follower",
            &members_free(&expected),
            &members_free(&on_follower),
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

/// The two transcripts line by line, differing lines marked `zk` and `zd`.
fn side_by_side(what: &str, expected: &[String], got: &[String]) -> String {
    let mut report = format!("{what} answers differently from ZooKeeper:\n");
    for i in 0..expected.len().max(got.len()) {
        let e = expected.get(i).map_or("<none>", String::as_str);
        let g = got.get(i).map_or("<none>", String::as_str);
        if e == g {
            report.push_str(&format!("   {e}\n"));
        } else {
            report.push_str(&format!(" zk  {e}\n zd  {g}\n"));
        }
    }
    report
}
