//! Backups and restores on the control plane: the operator takes snapshots through a member's
//! admin API into a real S3-compatible server (moto) and into a folder, on a schedule and on
//! request, keeps `retain` of them, reports a failing one, and restores a backup into a new
//! Ensemble and, on request, in place.

use crate::harness::{condition, eventually, s3::S3, settled, Scenario};
use sha2::{Digest, Sha256};
use zooid_operator::crd::{BackupRecord, Ensemble, RestorePhase, RestoreStatus};
use zookeeper_client as zk;

const BUCKET: &str = "zooid-backups";

async fn connect(ip: &str) -> zk::Client {
    zk::Client::connect(&format!("{ip}:2181")).await.unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn last_backup(e: &Ensemble) -> Option<BackupRecord> {
    e.status.as_ref()?.last_backup.clone()
}

/// The last restore, once it is no longer under way.
fn restore_ended(e: &Ensemble) -> Option<RestoreStatus> {
    let r = e.status.as_ref()?.restore.clone()?;
    (r.phase != RestorePhase::Restoring).then_some(r)
}

/// The value at `path` through `ip`, after a sync.
async fn read(ip: &str, path: &str) -> Option<Vec<u8>> {
    let c = connect(ip).await;
    c.sync(path).await.ok()?;
    c.get_data(path).await.ok().map(|(data, _)| data)
}

#[tokio::test]
async fn backups_go_to_s3_and_a_folder_and_restore_into_a_new_ensemble_and_in_place() {
    let Some(mut s) = Scenario::start("backups").await else {
        return;
    };
    let s3 = S3::start(&s.dir().join("moto.log")).await;
    s3.create_bucket(BUCKET).await;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(s.client.clone(), &s.ns);
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "s3"},
        "stringData": {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL": s3.endpoint,
        },
    }))
    .unwrap();
    secrets.create(&Default::default(), &secret).await.unwrap();

    // Every 5 seconds, two kept.
    s.create(
        "coord",
        serde_json::json!({
            "image": "zooid:test", "replicas": 1,
            "backup": {"schedule": "*/5 * * * * *", "retain": 2,
                       "target": format!("s3://{BUCKET}/e2e"), "credentialsSecret": "s3"},
        }),
    )
    .await;
    s.wait("coord", "1 member Available", 120, false, |e| settled(e, 1))
        .await;
    let ip = s.pod_ips("coord", 1).await.remove(0);
    // Backups are taken under a write load, whose history must stay linearizable with every
    // acknowledged write there (it ends before the in-place restore, which undoes writes on
    // purpose).
    let load = crate::load::Load::start(&s.servers("coord", 1), 3).await;
    let c = connect(&ip).await;
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    c.create("/app", b"v1", &open).await.unwrap();
    for i in 0..50u8 {
        c.create(&format!("/app/n{i}"), &[i; 100], &open)
            .await
            .unwrap();
    }
    let written = c.get_data("/app/n49").await.unwrap().1.mzxid;

    // Scheduled backups that hold the writes; older ones pruned to the two kept.
    let mut seen = std::collections::BTreeSet::new();
    let e = s
        .wait(
            "coord",
            "three scheduled backups after the writes",
            90,
            false,
            |e| {
                if let Some(b) = last_backup(e) {
                    let zxid = i64::from_str_radix(b.zxid.trim_start_matches("0x"), 16).unwrap();
                    if zxid >= written {
                        seen.insert(b.location);
                    }
                }
                seen.len() >= 3
            },
        )
        .await;
    assert_eq!(condition(&e, "BackupFailing").as_deref(), Some("False"));
    let b = last_backup(&e).unwrap();
    let folder = format!("e2e/{}/coord/", s.ns);
    let keys = eventually("retention down to 2", 30, || async {
        let keys = s3.keys(BUCKET, &folder).await;
        (keys.len() == 2).then_some(keys)
    })
    .await;
    assert!(keys.iter().all(|k| k.ends_with(".zsnap")), "{keys:?}");
    let key = b.location.strip_prefix(&format!("s3://{BUCKET}/")).unwrap();
    let bytes = s3.object(BUCKET, key).await;
    assert_eq!(bytes.len() as i64, b.size_bytes);
    assert_eq!(
        sha256(&bytes),
        b.sha256,
        "the checksum in the status is the object's"
    );

    // A failing backup is a condition (and an event, and a metric), not a silent gap.
    s.patch(
        "coord",
        serde_json::json!({"backup": {"schedule": null, "target": "s3://no-such-bucket/x"}}),
    )
    .await;
    s.annotate("coord", "zooid.io/backup-request", "fails")
        .await;
    let e = s
        .wait("coord", "BackupFailing", 60, false, |e| {
            condition(e, "BackupFailing").as_deref() == Some("True")
        })
        .await;
    let attempt = e.status.unwrap().backup_attempt.unwrap();
    assert_eq!(attempt.request.as_deref(), Some("fails"));
    assert!(attempt.error.is_some());

    // On request, into a folder (a volume of the operator's pod in a cluster).
    let dir = s.dir().join("backups");
    std::fs::create_dir_all(&dir).unwrap();
    s.patch(
        "coord",
        serde_json::json!({"backup": {"target": format!("file://{}", dir.display())}}),
    )
    .await;
    s.annotate("coord", "zooid.io/backup-request", "to-a-folder")
        .await;
    let e = s
        .wait("coord", "a backup in the folder", 60, false, |e| {
            last_backup(e).is_some_and(|b| b.location.starts_with("file://"))
                && condition(e, "BackupFailing").as_deref() == Some("False")
        })
        .await;
    let in_folder = last_backup(&e).unwrap();
    let file = std::fs::read(in_folder.location.strip_prefix("file://").unwrap()).unwrap();
    assert_eq!(sha256(&file), in_folder.sha256);

    // A new Ensemble of three starts from the S3 backup: every member serves its data.
    s.create(
        "copy",
        serde_json::json!({
            "image": "zooid:test", "replicas": 3,
            "restore": {"from": b.location, "credentialsSecret": "s3"},
        }),
    )
    .await;
    let e = s
        .wait("copy", "restored into the new ensemble", 180, false, |e| {
            restore_ended(e).is_some()
        })
        .await;
    let restored = restore_ended(&e).unwrap();
    assert_eq!(restored.phase, RestorePhase::Restored, "{restored:?}");
    assert_eq!(restored.zxid.as_deref(), Some(b.zxid.as_str()));
    // The same tree: the backup's digest, in the restore's status and on every member.
    assert!(b.digest.is_some(), "{b:?}");
    assert_eq!(restored.digest, b.digest, "{restored:?}");
    for ip in s.pod_ips("copy", 3).await {
        let digest = eventually("the member's digest", 30, || async {
            let v: serde_json::Value = reqwest::get(format!("http://{ip}:8080/commands/hash"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["digests"][0]["digest"].as_u64().map(|d| d.to_string())
        })
        .await;
        assert_eq!(Some(digest), b.digest, "member {ip}");
    }
    for ip in s.pod_ips("copy", 3).await {
        assert_eq!(read(&ip, "/app").await.as_deref(), Some(&b"v1"[..]));
        assert_eq!(
            read(&ip, "/app/n49").await.as_deref(),
            Some(&[49u8; 100][..])
        );
    }

    let report = load.finish().await;
    assert!(report.acknowledged_writes > 50, "{report:?}");

    // In place, on request: a later write is undone by restoring the folder's backup. (A new
    // session: the first one, idle through the load, may have timed out a ping meanwhile.)
    let c = connect(&ip).await;
    c.set_data("/app", b"v2", None).await.unwrap();
    s.annotate("coord", "zooid.io/restore-from", &in_folder.location)
        .await;
    let e = s
        .wait("coord", "restored in place", 60, false, |e| {
            restore_ended(e).is_some_and(|r| r.request.is_some())
        })
        .await;
    let r = restore_ended(&e).unwrap();
    assert_eq!(r.phase, RestorePhase::Restored, "{r:?}");
    assert_eq!(r.request.as_deref(), Some(in_folder.location.as_str()));
    assert_eq!(r.digest, in_folder.digest, "{r:?}");
    assert_eq!(read(&ip, "/app").await.as_deref(), Some(&b"v1"[..]));
}
