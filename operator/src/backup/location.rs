//! Where backups are kept, as the spec names it: `s3://bucket/prefix` (S3-compatible object
//! storage) or `file:///path` (a folder of the operator's pod, typically a volume mounted
//! there). The same form names one backup, for a restore.

use object_store::path::Path;

/// A place in S3-compatible storage or in the operator's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    store: Store,
    /// The key (the path under the bucket, or under `/`), without leading or trailing slash.
    key: String,
}

/// The store a location is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    S3 {
        bucket: String,
    },
    /// The operator's own file system, from `/`.
    Files,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocationError {
    #[error("backup location {0:?}: give s3://bucket/prefix or file:///path")]
    Scheme(String),
    #[error("backup location {0:?}: no bucket")]
    NoBucket(String),
    #[error("backup location {0:?}: `.` and `..` are not path segments here")]
    Segment(String),
}

impl Location {
    pub fn parse(url: &str) -> Result<Location, LocationError> {
        let (store, rest) = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(LocationError::NoBucket(url.into()));
            }
            (
                Store::S3 {
                    bucket: bucket.into(),
                },
                key,
            )
        } else if let Some(rest) = url.strip_prefix("file:///") {
            (Store::Files, rest)
        } else {
            return Err(LocationError::Scheme(url.into()));
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(LocationError::Segment(url.into()));
        }
        Ok(Location {
            store,
            key: segments.join("/"),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key in the store.
    pub fn key(&self) -> Path {
        Path::from(self.key.as_str())
    }

    /// The location of `name` inside this one.
    pub fn join(&self, name: &str) -> Location {
        let key = if self.key.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.key)
        };
        Location {
            store: self.store.clone(),
            key,
        }
    }

    /// The location of a key of the same store.
    pub fn with_key(&self, key: &Path) -> Location {
        Location {
            store: self.store.clone(),
            key: key.to_string(),
        }
    }

    /// The URL, as the status shows it and a restore takes it.
    pub fn url(&self) -> String {
        match &self.store {
            Store::S3 { bucket } if self.key.is_empty() => format!("s3://{bucket}"),
            Store::S3 { bucket } => format!("s3://{bucket}/{}", self.key),
            Store::Files => format!("file:///{}", self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_backups_parse_and_print_back() {
        for url in [
            "s3://bucket",
            "s3://bucket/a/b",
            "file:///backups",
            "file:///backups/ns/coord/x.zsnap",
        ] {
            assert_eq!(Location::parse(url).unwrap().url(), url);
        }
        let l = Location::parse("s3://b/prefix/").unwrap();
        assert_eq!(l.join("ns").join("coord").url(), "s3://b/prefix/ns/coord");
        assert_eq!(l.key().as_ref(), "prefix");
    }

    #[test]
    fn other_forms_are_refused_with_the_url() {
        assert_eq!(
            Location::parse("pvc://claim/x"),
            Err(LocationError::Scheme("pvc://claim/x".into()))
        );
        assert_eq!(
            Location::parse("s3:///x"),
            Err(LocationError::NoBucket("s3:///x".into()))
        );
        assert!(matches!(
            Location::parse("file:///a/../etc"),
            Err(LocationError::Segment(_))
        ));
        assert!(matches!(
            Location::parse("file://relative"),
            Err(LocationError::Scheme(_))
        ));
    }
}
