//! The Rust `zookeeper-client` crate, unmodified, against Zooid: CRUD, sequential and ephemeral
//! nodes, one-shot and persistent watches, multi, the Curator-compatible lock recipe, and a
//! session's ephemerals going away when it closes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;
use zookeeper_client as zk;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Fails the test instead of hanging when an expected event never comes.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[test]
fn rust_zookeeper_client_works_unchanged() {
    let srv = common::start(|_| {});
    let cluster = srv.addr.to_string();
    runtime().block_on(async move {
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&cluster)
            .await
            .unwrap();
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

        // Create, read, conditional write, children.
        let (stat, _) = client.create("/app", b"v1", &open).await.unwrap();
        assert_eq!(stat.version, 0);
        assert_eq!(
            client.get_data("/app").await.unwrap(),
            (b"v1".to_vec(), stat)
        );
        let stat2 = client.set_data("/app", b"v2", Some(0)).await.unwrap();
        assert_eq!(stat2.version, 1);
        assert!(stat2.mzxid > stat.mzxid);
        assert!(matches!(
            client.set_data("/app", b"v3", Some(0)).await,
            Err(zk::Error::BadVersion)
        ));
        assert!(matches!(
            client.create("/app", b"", &open).await,
            Err(zk::Error::NodeExists)
        ));
        assert!(matches!(
            client.get_data("/missing").await,
            Err(zk::Error::NoNode)
        ));

        // Sequential names from the parent's counter.
        let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        let (_, first) = client.create("/app/job-", b"", &seq).await.unwrap();
        let (_, second) = client.create("/app/job-", b"", &seq).await.unwrap();
        assert_eq!(second.into_i64(), first.into_i64() + 1);
        let mut children = client.list_children("/app").await.unwrap();
        children.sort();
        assert_eq!(
            children,
            [format!("job-{first}"), format!("job-{second}")],
            "sequence numbers are ten digits"
        );
        assert_eq!(client.count_descendants_number("/app").await.unwrap(), 2);

        // One-shot data watch, then a persistent recursive one.
        let (_, _, watcher) = client.get_and_watch_data("/app").await.unwrap();
        client.set_data("/app", b"v4", None).await.unwrap();
        let event = within("data watch", watcher.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeDataChanged);
        assert_eq!(event.path, "/app");
        let mut tree = client
            .watch("/app", zk::AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        client.create("/app/x", b"", &open).await.unwrap();
        client.delete("/app/x", None).await.unwrap();
        let created = within("recursive create", tree.changed()).await;
        assert_eq!(
            (created.event_type, created.path.as_str()),
            (zk::EventType::NodeCreated, "/app/x")
        );
        let deleted = within("recursive delete", tree.changed()).await;
        assert_eq!(
            (deleted.event_type, deleted.path.as_str()),
            (zk::EventType::NodeDeleted, "/app/x")
        );

        // Multi: all or nothing, with the failing op's index.
        let mut multi = client.new_multi_writer();
        multi.add_create("/app/m1", b"a", &open).unwrap();
        multi.add_set_data("/app", b"v5", Some(99)).unwrap();
        match multi.commit().await {
            Err(zk::MultiWriteError::OperationFailed { index, source }) => {
                assert_eq!((index, source), (1, zk::Error::BadVersion));
            }
            other => panic!("multi with a bad version gave {other:?}"),
        }
        assert!(matches!(client.check_stat("/app/m1").await, Ok(None)));
        let mut multi = client.new_multi_writer();
        multi.add_create("/app/m1", b"a", &open).unwrap();
        multi.add_check_version("/app", 2).unwrap();
        assert_eq!(multi.commit().await.unwrap().len(), 2);

        // The Curator-compatible lock recipe: a second contender waits for the first.
        let other = zk::Client::connect(&cluster).await.unwrap();
        let lock_options = zk::LockOptions::new(zk::Acls::anyone_all())
            .with_ancestor_options(open.clone())
            .unwrap();
        {
            let held = client
                .lock(
                    zk::LockPrefix::new_curator("/locks/a", "lock-").unwrap(),
                    b"first",
                    lock_options.clone(),
                )
                .await
                .unwrap();
            let contender = other.lock(
                zk::LockPrefix::new_curator("/locks/a", "lock-").unwrap(),
                b"second",
                lock_options,
            );
            tokio::pin!(contender);
            assert!(
                tokio::time::timeout(Duration::from_millis(300), &mut contender)
                    .await
                    .is_err(),
                "the second contender must wait while the lock is held"
            );
            drop(held);
            let second = within("lock hand-over", contender).await.unwrap();
            assert_eq!(
                other.get_data(second.lock_path()).await.unwrap().0,
                b"second"
            );
            drop(second);
        }

        // Ephemerals belong to their session and go when it closes.
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        other.create("/app/alive", b"", &eph).await.unwrap();
        assert_eq!(other.list_ephemerals("/app").await.unwrap(), ["/app/alive"]);
        let (_, gone) = client.check_and_watch_stat("/app/alive").await.unwrap();
        drop(other);
        let event = within("ephemeral removal", gone.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeDeleted);
        assert_eq!(client.check_stat("/app/alive").await.unwrap(), None);
    });
}

/// The crate's TLS (its `tls` feature) against the TLS port, showing a client certificate
/// that the server's trust store vouches for: a session, a write, a read.
#[test]
fn rust_zookeeper_client_speaks_tls_with_a_client_certificate() {
    // The crate builds its rustls configuration from the process's default provider, which
    // its user names when more than one is linked in (as here: ring, and the crate's own).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ca = common::pki::Ca::new("zooid test CA");
    let key_store = common::pki::write(dir.path(), "server.pem", &ca.issue("localhost"));
    let trust_store = common::pki::write(dir.path(), "ca.pem", &ca.pem);
    let srv = common::start(|c| {
        c.secure_client_addr = Some("127.0.0.1:0".parse().unwrap());
        c.ssl_key_store = Some(key_store);
        c.ssl_trust_store = Some(trust_store);
    });
    let secure = srv.secure.unwrap().to_string();
    let identity = ca.issue("client");
    runtime().block_on(async move {
        let tls = zk::TlsOptions::new()
            .with_pem_ca(&ca.pem)
            .unwrap()
            .with_pem_identity(&identity, &identity)
            .unwrap();
        let client = within(
            "a session over TLS",
            zk::Client::connector()
                .with_session_timeout(Duration::from_secs(10))
                .with_tls(tls)
                .secure_connect(&secure),
        )
        .await
        .unwrap();
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client.create("/over-tls", b"sealed", &open).await.unwrap();
        assert_eq!(client.get_data("/over-tls").await.unwrap().0, b"sealed");
        // A value of many TLS records each way, read back whole.
        let large: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        client.create("/large", &large, &open).await.unwrap();
        for _ in 0..3 {
            assert!(client.get_data("/large").await.unwrap().0 == large);
        }
        // The session knows itself by its certificate, as ZooKeeper's x509 provider names it.
        let who = client.list_auth_users().await.unwrap();
        assert!(
            who.iter()
                .any(|a| a.scheme() == "x509" && a.user() == "O=zooid,CN=client"),
            "{who:?}"
        );
    });
}
