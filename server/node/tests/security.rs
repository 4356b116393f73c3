//! Security settings end to end (the ACL rules themselves are proven against ZooKeeper by the
//! differential suite's `acl_*` scenarios).
#![allow(clippy::unwrap_used)]

mod common;

use common::{closed_within, pki, start, RawClient};
use zooid_proto::*;

/// A node only a user who does not exist may touch: anyone else is refused, unless the
/// server was started with ZooKeeper's `skipACL` (confirmed).
fn locked_node(c: &mut RawClient) {
    let (f, _) = c.call(&Request::Create(CreateRequest {
        op: OpCode::Create,
        path: "/locked".into(),
        data: Some(b"secret".to_vec()),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id::digest(b"nobody:unguessable"),
        }],
        flags: 0,
        ttl: -1,
    }));
    assert_eq!(f.err, 0);
}

fn read_and_write(c: &mut RawClient) -> (i32, i32) {
    let read = c.get("/locked", false).err().unwrap_or(0);
    let (f, _) = c.call(&Request::SetData {
        path: "/locked".into(),
        data: Some(b"changed".to_vec()),
        version: -1,
    });
    (read, f.err)
}

#[test]
fn skip_acl_turns_the_checks_off_and_only_then() {
    let checked = start(|_| {});
    let mut c = RawClient::connect(checked.addr);
    locked_node(&mut c);
    let no_auth = ErrorCode::NoAuth.code();
    assert_eq!(read_and_write(&mut c), (no_auth, no_auth));

    let open = start(|cfg| {
        cfg.skip_acl = "yes".into();
        cfg.skip_acl_confirmed = true;
    });
    let mut c = RawClient::connect(open.addr);
    locked_node(&mut c);
    assert_eq!(read_and_write(&mut c), (0, 0));
}

/// A ZooKeeper client over TLS, as far as these tests need one.
mod tls_client {
    use bytes::BytesMut;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::Arc;
    use std::time::Duration;
    use zooid_proto::*;

    pub type Tls = StreamOwned<ClientConnection, TcpStream>;

    /// Opens a TLS connection trusting `ca_pem`, showing `identity` (chain and key PEM) if
    /// given; `Err` if the handshake or the session's opening fails.
    pub fn connect(addr: SocketAddr, ca_pem: &str, identity: Option<&str>) -> Result<Tls, String> {
        let mut s = open(addr, ca_pem, identity)?;
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| {
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 30_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            }
            .encode(b)
        });
        s.write_all(&b).map_err(|e| e.to_string())?;
        let body = frame(&mut s)?;
        let resp = ConnectResponse::decode(&body).map_err(|e| e.to_string())?;
        if resp.timeout_ms <= 0 {
            return Err("session refused".into());
        }
        Ok(s)
    }

    /// An HTTPS GET of `path` (with an `Authorization` header if given): the status and the
    /// body, and the certificate the server showed.
    pub fn https_get(
        addr: SocketAddr,
        ca_pem: &str,
        identity: Option<&str>,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<(u16, String, Vec<u8>), String> {
        let mut s = open(addr, ca_pem, identity)?;
        let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let req = format!("GET {path} HTTP/1.1\r\nHost: zooid\r\n{auth}Connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut text = Vec::new();
        match s.read_to_end(&mut text) {
            Ok(_) => {}
            // Closed without TLS's close_notify after the answer: what was read stands.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !text.is_empty() => {}
            Err(e) => return Err(e.to_string()),
        }
        let text = String::from_utf8_lossy(&text).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no HTTP status in {text:?}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Ok((status, body, server_cert(&s)))
    }

    /// A TLS connection to `addr`, the handshake done.
    fn open(addr: SocketAddr, ca_pem: &str, identity: Option<&str>) -> Result<Tls, String> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let builder = ClientConfig::builder_with_provider(zooid_node::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
        }
        Ok(s)
    }

    pub fn frame(s: &mut Tls) -> Result<Vec<u8>, String> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(|e| e.to_string())?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok(body)
    }

    /// Sends `req` without waiting for its reply.
    pub fn send(s: &mut Tls, xid: i32, req: &Request) -> Result<(), String> {
        let mut b = BytesMut::new();
        encode_request_frame(&mut b, xid, req.opcode() as i32, |b| req.encode(b));
        s.write_all(&b).map_err(|e| e.to_string())
    }

    /// Sends `req` and returns the reply's error code.
    pub fn call(s: &mut Tls, xid: i32, req: &Request) -> Result<i32, String> {
        send(s, xid, req)?;
        let body = frame(s)?;
        let h = ReplyHeader::decode(&mut Reader::new(&body)).map_err(|e| e.to_string())?;
        assert_eq!(h.xid, xid);
        Ok(h.err)
    }

    /// The subject common name of the certificate the server showed.
    pub fn server_cert(s: &Tls) -> Vec<u8> {
        s.conn.peer_certificates().unwrap()[0].to_vec()
    }
}

/// A server with a TLS port whose key store (`server.pem`, for localhost) and trust store
/// (`ca.pem`) `ca` made in `dir`, client certificates needed.
fn tls_server(
    dir: &std::path::Path,
    ca: &pki::Ca,
    tweak: impl FnOnce(&mut zooid_node::config::Config),
) -> common::TestServer {
    let key_store = pki::write(dir, "server.pem", &ca.issue("localhost"));
    let trust_store = pki::write(dir, "ca.pem", &ca.pem);
    start(|c| {
        c.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
        c.ssl_key_store = Some(key_store);
        c.ssl_trust_store = Some(trust_store);
        tweak(c);
    })
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        op: OpCode::Create,
        path: path.into(),
        data: Some(b"over TLS".to_vec()),
        acl: Acl::open(),
        flags: 0,
        ttl: -1,
    })
}

/// ZooKeeper's secureClientPort: the protocol inside TLS, beside the plain port; a client
/// without a certificate the trust store vouches for is refused when one is needed; the
/// certificate replaced on disk is used by the next connection while an established one goes
/// on; a bad new file leaves the old material in place.
#[test]
fn the_tls_port_serves_checks_client_certificates_and_reloads_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let server = tls_server(dir.path(), &ca, |_| {});
    let secure = server.secure.unwrap();
    let client_id = ca.issue("client");

    // Served inside TLS; the plain port goes on as before.
    let mut s = tls_client::connect(secure, &ca.pem, Some(&client_id)).unwrap();
    assert_eq!(tls_client::call(&mut s, 1, &create("/tls")), Ok(0));
    let mut plain = RawClient::connect(server.addr);
    assert!(plain.get("/tls", false).is_ok());
    let first_cert = tls_client::server_cert(&s);

    // ssl.clientAuth=need: no certificate, or one from another CA, and no session.
    assert!(tls_client::connect(secure, &ca.pem, None).is_err());
    let stranger = pki::Ca::new("another CA").issue("client");
    assert!(tls_client::connect(secure, &ca.pem, Some(&stranger)).is_err());
    // Plaintext on the TLS port gets no session either.
    assert!(RawClient::try_connect_with(secure, 0, [0; 16], 30000, 0).is_err());

    // A new certificate on disk: the next connections present it, the open one goes on.
    pki::write(dir.path(), "server.pem", &ca.issue("localhost"));
    let renewed = zooid_e2e::wait::wait_for(
        "the new certificate served",
        std::time::Duration::from_secs(10),
        || {
            let c = tls_client::connect(secure, &ca.pem, Some(&client_id)).ok()?;
            let cert = tls_client::server_cert(&c);
            (cert != first_cert).then_some(cert)
        },
    );
    assert_eq!(tls_client::call(&mut s, 2, &create("/still")), Ok(0));

    // A bad file: refused, the renewed material stays in use, and the metric says so.
    pki::write(dir.path(), "server.pem", "not a certificate");
    let admin = server.admin.unwrap();
    zooid_e2e::wait::wait_until(
        "the refusal counted",
        std::time::Duration::from_secs(10),
        || {
            // Each connection looks at the files (at most once a second).
            let _ = tls_client::connect(secure, &ca.pem, Some(&client_id));
            zooid_e2e::http::get(admin, "/metrics").is_some_and(|m| {
                zooid_e2e::http::sample(
                    &m.body,
                    "zooid_tls_reloads_total{port=\"client\",result=\"refused\"}",
                )
                .is_some_and(|n| n >= 1.0)
            })
        },
    );
    let c = tls_client::connect(secure, &ca.pem, Some(&client_id)).unwrap();
    assert_eq!(tls_client::server_cert(&c), renewed);
}

/// Large replies over TLS reach a client that reads slowly, whole and in order: the writer
/// hands them to TLS from the node's own buffer, a part at a time as the socket takes them,
/// and what TLS holds when the socket is full goes out as the client reads.
#[test]
fn tls_replies_reach_a_client_that_reads_slowly() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let server = tls_server(dir.path(), &ca, |_| {});
    let mut plain = RawClient::connect(server.addr);
    plain.create("/large", &[7; 512 * 1024], 0).unwrap();
    let mut s =
        tls_client::connect(server.secure.unwrap(), &ca.pem, Some(&ca.issue("client"))).unwrap();
    // 20 MiB of replies asked for at once: more than the sockets between us hold.
    use std::io::Read;
    let get = Request::GetData {
        path: "/large".into(),
        watch: false,
    };
    let asked = 40;
    for xid in 1..=asked {
        tls_client::send(&mut s, xid, &get).unwrap();
    }
    // Read slowly, 16 KiB at a time, so that the server keeps finding the socket full; every
    // byte must come within the client's read timeout (5 s).
    let frame = 4 + 16 + 4 + 512 * 1024 + 68;
    let mut replies = vec![0u8; asked as usize * frame];
    for (i, chunk) in replies.chunks_mut(16 * 1024).enumerate() {
        s.read_exact(chunk).unwrap_or_else(|e| {
            panic!(
                "byte {} of {} did not come: {e}",
                i * 16 * 1024,
                asked as usize * frame
            )
        });
        if i % 4 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    for (xid, reply) in (1..).zip(replies.chunks(frame)) {
        let h = ReplyHeader::decode(&mut Reader::new(&reply[4..])).unwrap();
        assert_eq!((h.xid, h.err), (xid, 0));
        let data = &reply[4 + 16 + 4..][..512 * 1024];
        assert!(
            data.iter().all(|&b| b == 7),
            "reply {xid}'s data changed on the way"
        );
    }
}

/// A TLS port whose files do not load stops the start, naming the key; a JKS store is refused
/// with the command that converts it.
#[test]
fn tls_material_that_does_not_load_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |key_store: std::path::PathBuf| {
        let mut c = zooid_node::config::Config::defaults();
        c.client_addr = "127.0.0.1:0".parse().unwrap();
        c.admin_enabled = false;
        c.data_dir = dir.path().join("data");
        c.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
        c.ssl_key_store = Some(key_store);
        c.ssl_client_auth = "none".into();
        c
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (file, bytes, needle) in [
        ("garbage.pem", &b"garbage"[..], "ssl.keyStore.location"),
        // Java's JKS magic number.
        (
            "store.jks",
            &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2][..],
            "keytool -importkeystore",
        ),
        (
            "wrong.p12",
            &[0x30, 0x82, 0x01, 0x00][..],
            "PKCS#12 does not open",
        ),
        ("absent.pem", &b""[..], "absent.pem"),
    ] {
        let path = dir.path().join(file);
        if file != "absent.pem" {
            std::fs::write(&path, bytes).unwrap();
        }
        let err = match rt.block_on(zooid_node::server::Server::start(cfg(path))) {
            Ok(_) => panic!("{file}: started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(needle), "{file}: {needle:?} not in {err}");
    }
}

/// kazoo with `use_ssl` and a client certificate, against the TLS port.
#[test]
fn kazoo_speaks_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let server = tls_server(dir.path(), &ca, |_| {});
    let identity = pki::write(dir.path(), "client.pem", &ca.issue("client"));
    common::run_client_script(
        "kazoo_tls.py",
        &[
            &server.secure.unwrap().to_string(),
            dir.path().join("ca.pem").to_str().unwrap(),
            identity.to_str().unwrap(),
        ],
    );
}

/// ZooKeeper's x509 scheme: a client certificate's subject (as Java writes it) is an identity
/// ACLs can name, and `X509AuthenticationProvider.superUser` names a super user by it.
#[test]
fn client_certificates_are_x509_identities() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let server = tls_server(dir.path(), &ca, |c| {
        c.x509_super_user = Some("O=zooid,CN=admin".into())
    });
    let secure = server.secure.unwrap();
    let mut plain = RawClient::connect(server.addr);
    let (f, _) = plain.call(&Request::Create(CreateRequest {
        op: OpCode::Create,
        path: "/for-client".into(),
        data: Some(b"x".to_vec()),
        acl: vec![Acl {
            perms: perms::READ,
            id: Id {
                scheme: "x509".into(),
                id: "O=zooid,CN=client".into(),
            },
        }],
        flags: 0,
        ttl: -1,
    }));
    assert_eq!(f.err, 0);
    locked_node(&mut plain);
    let no_auth = ErrorCode::NoAuth.code();
    let read = |identity: &str, path: &str| {
        let mut s = tls_client::connect(secure, &ca.pem, Some(identity)).unwrap();
        let req = Request::GetData {
            path: path.into(),
            watch: false,
        };
        tls_client::call(&mut s, 1, &req).unwrap()
    };
    assert_eq!(read(&ca.issue("client"), "/for-client"), 0);
    assert_eq!(read(&ca.issue("other"), "/for-client"), no_auth);
    assert_eq!(plain.get("/for-client", false).err(), Some(no_auth));
    // The certificate's super user reads what nobody else may.
    assert_eq!(read(&ca.issue("admin"), "/locked"), 0);
    assert_eq!(read(&ca.issue("client"), "/locked"), no_auth);
}

/// kazoo's SASL DIGEST-MD5 login, its users from a JAAS file as ZooKeeper's
/// DigestLoginModule reads it.
#[test]
fn kazoo_logs_in_with_sasl_digest_md5() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         user_super=\"adminsecret\"\n  user_bob=\"bobsecret\";\n};\n",
    )
    .unwrap();
    let server = start(|c| {
        c.sasl_jaas_file = Some(jaas);
        c.sasl_super_user = Some("super".into());
    });
    common::run_client_script(
        "kazoo_sasl.py",
        &[
            &server.addr.to_string(),
            "bob",
            "bobsecret",
            "super",
            "adminsecret",
        ],
    );
}

/// PKCS#12 key and trust stores (what Java's keytool writes), opened with their passwords.
#[test]
fn pkcs12_stores_are_read_with_their_passwords() {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let (cert, key) = ca.issue_der("localhost");
    let mut keys = KeyStore::new();
    let chain = PrivateKeyChain::new(
        b"server".to_vec(),
        PrivateKey::from_der(&key).unwrap(),
        [Certificate::from_der(&cert).unwrap()],
    );
    keys.add_entry("server", KeyStoreEntry::PrivateKeyChain(chain));
    let key_store = dir.path().join("server.p12");
    std::fs::write(&key_store, keys.writer("changeit").write().unwrap()).unwrap();
    let mut trust = KeyStore::new();
    let ca_cert = Certificate::from_der(&ca.der()).unwrap();
    trust.add_entry("ca", KeyStoreEntry::Certificate(ca_cert));
    let trust_store = dir.path().join("ca.p12");
    std::fs::write(&trust_store, trust.writer("trustme").write().unwrap()).unwrap();
    let server = start(|c| {
        c.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
        c.ssl_key_store = Some(key_store);
        c.ssl_key_store_password = Some("changeit".into());
        c.ssl_trust_store = Some(trust_store);
        c.ssl_trust_store_password = Some("trustme".into());
    });
    let mut s =
        tls_client::connect(server.secure.unwrap(), &ca.pem, Some(&ca.issue("client"))).unwrap();
    assert_eq!(tls_client::call(&mut s, 1, &create("/p12")), Ok(0));
}

/// ZooKeeper's `client.portUnification`: the plain client port serves a client that opens
/// with a TLS handshake inside TLS (client certificate checked as on the TLS port), and
/// plaintext clients as before.
#[test]
fn the_plain_port_also_takes_tls_when_unified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let server = tls_server(dir.path(), &ca, |c| {
        c.secure_client_addr = None;
        c.client_port_unification = true;
    });
    assert!(server.secure.is_none());
    let mut s = tls_client::connect(server.addr, &ca.pem, Some(&ca.issue("client"))).unwrap();
    assert_eq!(tls_client::call(&mut s, 1, &create("/unified")), Ok(0));
    let mut plain = RawClient::connect(server.addr);
    assert!(plain.get("/unified", false).is_ok());
    assert!(tls_client::connect(server.addr, &ca.pem, None).is_err());
}

/// The admin API over HTTPS (ZooKeeper's `admin.forceHttps`, with the members' `ssl.quorum.*`
/// material): probes open to anyone, data-revealing commands to an admin identity, which a
/// client certificate naming the `x509` super user is; plain HTTP refused; a certificate
/// replaced on disk served to the next connections.
#[test]
fn the_admin_port_serves_https_and_takes_certificates_as_admin_identities() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let key_store = pki::write(dir.path(), "member.pem", &ca.issue("localhost"));
    let trust_store = pki::write(dir.path(), "ca.pem", &ca.pem);
    let server = start(|c| {
        c.admin_force_https = true;
        c.ssl_quorum_key_store = Some(key_store);
        c.ssl_quorum_trust_store = Some(trust_store);
        c.x509_super_user = Some("O=zooid,CN=admin".into());
    });
    let admin = server.admin.unwrap();
    let get = |identity: Option<&str>, path: &str| {
        tls_client::https_get(admin, &ca.pem, identity, path, None).unwrap()
    };
    let (status, _, first_cert) = get(None, "/healthz");
    assert_eq!(status, 200);
    assert_eq!(get(None, "/commands/stat").0, 401);
    assert_eq!(get(Some(&ca.issue("client")), "/commands/stat").0, 401);
    let (status, body, _) = get(Some(&ca.issue("admin")), "/commands/stat");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"server_stats\""), "{body}");
    // Plain HTTP gets nothing from an HTTPS-only port.
    assert!(zooid_e2e::http::get(admin, "/healthz").is_none());

    pki::write(dir.path(), "member.pem", &ca.issue("localhost"));
    zooid_e2e::wait::wait_until(
        "the new certificate served",
        std::time::Duration::from_secs(10),
        || get(None, "/healthz").2 != first_cert,
    );

    // admin.needClientAuth: no certificate, no answer; and with portUnification plain HTTP
    // is served beside HTTPS.
    let dir = tempfile::tempdir().unwrap();
    let key_store = pki::write(dir.path(), "member.pem", &ca.issue("localhost"));
    let trust_store = pki::write(dir.path(), "ca.pem", &ca.pem);
    let server = start(|c| {
        c.admin_port_unification = true;
        c.admin_need_client_auth = true;
        c.ssl_quorum_key_store = Some(key_store);
        c.ssl_quorum_trust_store = Some(trust_store);
    });
    let admin = server.admin.unwrap();
    assert!(tls_client::https_get(admin, &ca.pem, None, "/healthz", None).is_err());
    let client = ca.issue("client");
    let answer = tls_client::https_get(admin, &ca.pem, Some(&client), "/healthz", None);
    assert_eq!(answer.unwrap().0, 200);
    assert!(zooid_e2e::http::get(admin, "/healthz").is_some());
}

/// Hostile input at the door: TLS to the plaintext port, a truncated and a stalled TLS
/// handshake on the TLS port (closed by the handshake timeout and counted), garbage and
/// unknown auth packets. Each connection is closed; the sessions already open, plain and
/// TLS, go on.
#[test]
fn hostile_handshakes_and_auth_packets_close_only_their_connection() {
    use std::io::Write;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let server = tls_server(dir.path(), &ca, |c| c.handshake_timeout_ms = 500);
    let secure = server.secure.unwrap();
    let client_id = ca.issue("client");
    let mut tls = tls_client::connect(secure, &ca.pem, Some(&client_id)).unwrap();
    let mut plain = RawClient::connect(server.addr);

    // TLS to the plaintext port: no session.
    assert!(tls_client::connect(server.addr, &ca.pem, Some(&client_id)).is_err());
    // A ClientHello cut short, then silence: closed within the handshake timeout.
    let mut cut = std::net::TcpStream::connect(secure).unwrap();
    cut.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    closed_within(&mut cut, Duration::from_secs(5)).unwrap();
    // A connection that never starts its handshake: the same.
    let mut stalled = std::net::TcpStream::connect(secure).unwrap();
    closed_within(&mut stalled, Duration::from_secs(5)).unwrap();
    let metrics = zooid_e2e::http::get(server.admin.unwrap(), "/metrics").unwrap();
    let timed_out = zooid_e2e::http::sample(
        &metrics.body,
        "zooid_connections_limited_total{limit=\"handshake_timeout\"}",
    );
    assert!(timed_out.is_some_and(|n| n >= 2.0), "{timed_out:?}");

    // An auth packet whose body is garbage, and one for a scheme no server knows: answered
    // AUTHFAILED (as ZooKeeper) or closed, never served on.
    for auth in [
        {
            let mut b = bytes::BytesMut::new();
            encode_request_frame(&mut b, -4, OpCode::Auth as i32, |b| {
                b.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f, 1, 2])
            });
            b.to_vec()
        },
        {
            let mut b = bytes::BytesMut::new();
            let req = Request::Auth {
                auth_type: 0,
                scheme: "nosuch".into(),
                auth: vec![0; 64],
            };
            encode_request_frame(&mut b, -4, OpCode::Auth as i32, |b| req.encode(b));
            b.to_vec()
        },
    ] {
        let mut c = RawClient::connect(server.addr);
        c.send_raw(&auth);
        loop {
            match c.recv() {
                Ok(f) => assert_eq!(f.err, ErrorCode::AuthFailed.code(), "{f:?}"),
                Err(common::NoFrame::Closed) => break,
                Err(common::NoFrame::TimedOut) => panic!("neither answered nor closed"),
            }
        }
    }

    assert_eq!(tls_client::call(&mut tls, 1, &create("/after")), Ok(0));
    assert!(plain.get("/after", false).is_ok());
}

/// A Kubernetes TLS Secret mounted as a folder serves as a store: `tls.crt` and `tls.key` as
/// the key store, `ca.crt` as the trust store; new files there are served without a restart.
#[test]
fn tls_stores_may_be_kubernetes_secret_folders() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("zooid test CA");
    let (key_dir, trust_dir) = (dir.path().join("server-tls"), dir.path().join("ca"));
    std::fs::create_dir_all(&key_dir).unwrap();
    std::fs::create_dir_all(&trust_dir).unwrap();
    let secret = |dir: &std::path::Path, issued: &str| {
        let at = issued.find("-----BEGIN PRIVATE KEY-----").unwrap();
        pki::write(dir, "tls.crt", &issued[..at]);
        pki::write(dir, "tls.key", &issued[at..]);
    };
    secret(&key_dir, &ca.issue("localhost"));
    pki::write(&trust_dir, "ca.crt", &ca.pem);
    let server = start(|c| {
        c.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
        c.ssl_key_store = Some(key_dir.clone());
        c.ssl_trust_store = Some(trust_dir.clone());
    });
    let secure = server.secure.unwrap();
    let client_id = ca.issue("client");
    let mut s = tls_client::connect(secure, &ca.pem, Some(&client_id)).unwrap();
    assert_eq!(tls_client::call(&mut s, 1, &create("/from-secret")), Ok(0));
    let first = tls_client::server_cert(&s);
    secret(&key_dir, &ca.issue("localhost"));
    zooid_e2e::wait::wait_until(
        "the renewed Secret served",
        std::time::Duration::from_secs(10),
        || {
            tls_client::connect(secure, &ca.pem, Some(&client_id))
                .is_ok_and(|c| tls_client::server_cert(&c) != first)
        },
    );
}
