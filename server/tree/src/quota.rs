//! ZooKeeper's quota bookkeeping: where quota nodes live and the text their data holds.
//!
//! A quota on path `P` is the node `/zookeeper/quota/P/zookeeper_limits`; its usage is kept
//! in `/zookeeper/quota/P/zookeeper_stats` as `count=N,bytes=B`: the nodes in `P`'s subtree
//! (itself included) and the bytes of their data. ZooKeeper counts the subtree when the stats
//! node is created, then adjusts the figures on every create, delete and setData below the
//! deepest quota'd prefix of the changed path, without touching the stats node's version or
//! zxids and without firing watches. [`crate::DataTree`] does the same.

use std::collections::BTreeMap;

/// Where quota nodes live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The node holding a quota's limits.
pub const LIMITS: &str = "zookeeper_limits";
/// The node holding a quota's usage.
pub const STATS: &str = "zookeeper_stats";

/// Which quota node a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaNode {
    Limits,
    Stats,
}

/// For `/zookeeper/quota/P/zookeeper_limits` (or `_stats`): `P` and which node it is. A
/// limits or stats node directly under `/zookeeper/quota` names no path and is not one.
pub fn quota_node(path: &str) -> Option<(&str, QuotaNode)> {
    let rest = path.strip_prefix(QUOTA_ROOT)?;
    let (prefix, name) = rest.rsplit_once('/')?;
    if prefix.is_empty() || !prefix.starts_with('/') {
        return None;
    }
    match name {
        LIMITS => Some((prefix, QuotaNode::Limits)),
        STATS => Some((prefix, QuotaNode::Stats)),
        _ => None,
    }
}

/// The limits node of the quota on `prefix`.
pub fn limits_path(prefix: &str) -> String {
    format!("{QUOTA_ROOT}{prefix}/{LIMITS}")
}

/// The stats node of the quota on `prefix`.
pub fn stats_path(prefix: &str) -> String {
    format!("{QUOTA_ROOT}{prefix}/{STATS}")
}

/// The `key=value` pairs of a quota node's data, in ZooKeeper's text form: `count` and
/// `bytes` first, separated by `,`; any other keys (the 3.7+ hard limits) after an extra `=`,
/// sorted, each after a `;`. Missing values read as -1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Reads the pairs, separated by any run of `,` and `;`. A pair that does not parse is
    /// skipped (ZooKeeper would fail the write that meets it).
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut parts = pair.split('=');
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let value = if value.is_empty() {
                Some(-1)
            } else {
                value.parse().ok()
            };
            if let Some(v) = value {
                values.insert(key.to_string(), v);
            }
        }
        StatsTrack { values }
    }

    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_string(), value);
    }

    /// Adds to `count` and `bytes`.
    pub fn add(&mut self, count: i64, bytes: i64) {
        self.set("count", self.get("count") + count);
        self.set("bytes", self.get("bytes") + bytes);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("count={},bytes={}", self.get("count"), self.get("bytes"));
        let mut rest = self
            .values
            .iter()
            .filter(|(k, _)| *k != "count" && *k != "bytes")
            .peekable();
        if rest.peek().is_some() {
            // The extra `=` lets parsers older than the hard limits ignore them.
            out.push('=');
            for (k, v) in rest {
                out.push_str(&format!(";{k}={v}"));
            }
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_nodes_are_recognised_by_path() {
        assert_eq!(
            quota_node("/zookeeper/quota/a/b/zookeeper_limits"),
            Some(("/a/b", QuotaNode::Limits))
        );
        assert_eq!(
            quota_node("/zookeeper/quota/a/zookeeper_stats"),
            Some(("/a", QuotaNode::Stats))
        );
        assert_eq!(quota_node("/zookeeper/quota/zookeeper_stats"), None);
        assert_eq!(quota_node("/zookeeper/quota/a/other"), None);
        assert_eq!(quota_node("/a/zookeeper_stats"), None);
        assert_eq!(quota_node("/zookeeper/quotax/zookeeper_stats"), None);
        assert_eq!(stats_path("/a"), "/zookeeper/quota/a/zookeeper_stats");
    }

    #[test]
    fn stats_text_reads_and_writes_as_zookeeper_does() {
        let mut s = StatsTrack::parse(b"count=2,bytes=10");
        assert_eq!((s.get("count"), s.get("bytes")), (2, 10));
        s.add(1, -4);
        assert_eq!(s.to_bytes(), b"count=3,bytes=6");
        let limits = StatsTrack::parse(b"count=-1,bytes=-1=;byteHardLimit=5;countHardLimit=3");
        assert_eq!(limits.get("countHardLimit"), 3);
        assert_eq!(
            limits.to_bytes(),
            b"count=-1,bytes=-1=;byteHardLimit=5;countHardLimit=3"
        );
        assert_eq!(StatsTrack::parse(b"").to_bytes(), b"count=-1,bytes=-1");
        assert_eq!(
            StatsTrack::parse(b"count=x,,bytes=;junk").to_bytes(),
            b"count=-1,bytes=-1"
        );
    }
}
