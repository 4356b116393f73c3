//! The storage backups go to: an `object_store` for a [`Location`], and the moves in and out
//! of it (a snapshot streamed in while its SHA-256 is computed, a backup streamed out, the
//! oldest ones pruned).

use super::location::{Location, Store};
use super::BackupError;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The keys a credentials Secret may hold, as the AWS tools name them.
pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const REGION: &str = "AWS_REGION";

/// Backups are named `<UTC time>-<zxid>.zsnap`.
pub const SUFFIX: &str = ".zsnap";

/// The store a location is in. S3 needs credentials (a Secret's keys, above); an
/// `AWS_ENDPOINT_URL` names an S3-compatible server (path-style requests, plain HTTP allowed
/// when it says `http://`).
pub fn open(
    location: &Location,
    credentials: Option<&BTreeMap<String, String>>,
) -> Result<Arc<dyn ObjectStore>, BackupError> {
    match location.store() {
        Store::Files => Ok(Arc::new(object_store::local::LocalFileSystem::new())),
        Store::S3 { bucket } => {
            let c = credentials.ok_or_else(|| {
                BackupError::Credentials(format!(
                    "{} needs a credentials Secret ({ACCESS_KEY_ID}, {SECRET_ACCESS_KEY})",
                    location.url()
                ))
            })?;
            let key = |k: &str| {
                c.get(k)
                    .cloned()
                    .ok_or_else(|| BackupError::Credentials(format!("no key {k}")))
            };
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_access_key_id(key(ACCESS_KEY_ID)?)
                .with_secret_access_key(key(SECRET_ACCESS_KEY)?)
                .with_region(c.get(REGION).map_or("us-east-1", String::as_str));
            if let Some(endpoint) = c.get(ENDPOINT_URL) {
                b = b
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false)
                    .with_allow_http(endpoint.starts_with("http://"));
            }
            Ok(Arc::new(b.build()?))
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// Streams `body` into `location` (in parts, never whole in memory), hashing it on the way.
/// A failure part-way aborts the upload: no partial backup is left under a backup's name.
pub async fn upload<E: std::fmt::Display>(
    store: &dyn ObjectStore,
    location: &Location,
    body: impl Stream<Item = Result<Bytes, E>>,
) -> Result<Written, BackupError> {
    let upload = store.put_multipart(&location.key()).await?;
    let mut writer = WriteMultipart::new(upload);
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(BackupError::Admin(format!("reading the snapshot: {e}")));
            }
        };
        hash.update(&chunk);
        bytes += chunk.len() as u64;
        // At most a few parts in flight: memory stays bounded whatever the snapshot's size.
        writer.wait_for_capacity(2).await?;
        writer.put(chunk);
    }
    writer.finish().await?;
    Ok(Written {
        bytes,
        sha256: hex(&hash.finalize()),
    })
}

/// A backup's bytes and length, streamed.
pub async fn download(
    store: &dyn ObjectStore,
    location: &Location,
) -> Result<(u64, impl Stream<Item = Result<Bytes, object_store::Error>>), BackupError> {
    let got = store.get(&location.key()).await?;
    Ok((got.meta.size, got.into_stream()))
}

/// Deletes the oldest backups in `folder` beyond the newest `keep` (names sort by time).
/// Returns the URLs deleted.
pub async fn prune(
    store: &dyn ObjectStore,
    folder: &Location,
    keep: usize,
) -> Result<Vec<String>, BackupError> {
    let mut keys: Vec<object_store::path::Path> = store
        .list(Some(&folder.key()))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .filter(|k| k.as_ref().ends_with(SUFFIX))
        .collect();
    keys.sort();
    let excess = keys.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for key in keys.into_iter().take(excess) {
        store.delete(&key).await?;
        deleted.push(folder.with_key(&key).url());
    }
    Ok(deleted)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn a_folder_keeps_backups_hashed_and_pruned_to_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Location::parse(&format!("file://{}/ns/coord", dir.path().display())).unwrap();
        let store = open(&folder, None).unwrap();
        for name in [
            "20261207T000000Z-1",
            "20261207T060000Z-2",
            "20261207T120000Z-3",
        ] {
            let at = folder.join(&format!("{name}{SUFFIX}"));
            let w = upload(store.as_ref(), &at, chunks(&[b"ab", b"c"]))
                .await
                .unwrap();
            assert_eq!(w.bytes, 3);
            // sha256("abc")
            assert_eq!(
                w.sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            );
        }
        let deleted = prune(store.as_ref(), &folder, 2).await.unwrap();
        assert_eq!(deleted.len(), 1);
        assert!(
            deleted[0].ends_with("20261207T000000Z-1.zsnap"),
            "{deleted:?}"
        );
        let kept = folder.join(&format!("20261207T120000Z-3{SUFFIX}"));
        let (len, body) = download(store.as_ref(), &kept).await.unwrap();
        let bytes: Vec<Bytes> = body.try_collect().await.unwrap();
        assert_eq!((len, bytes.concat()), (3, b"abc".to_vec()));
    }

    #[tokio::test]
    async fn a_body_that_fails_leaves_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Location::parse(&format!("file://{}", dir.path().display())).unwrap();
        let store = open(&folder, None).unwrap();
        let at = folder.join("broken.zsnap");
        let body = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("the member went away")),
        ]);
        let e = upload(store.as_ref(), &at, body).await.unwrap_err();
        assert!(e.to_string().contains("went away"), "{e}");
        assert!(download(store.as_ref(), &at).await.is_err());
    }

    #[test]
    fn s3_needs_its_credentials() {
        let l = Location::parse("s3://bucket/p").unwrap();
        let e = open(&l, None).unwrap_err().to_string();
        assert!(e.contains(ACCESS_KEY_ID), "{e}");
        let partial = BTreeMap::from([(ACCESS_KEY_ID.to_string(), "a".to_string())]);
        let e = open(&l, Some(&partial)).unwrap_err().to_string();
        assert!(e.contains(SECRET_ACCESS_KEY), "{e}");
    }
}
