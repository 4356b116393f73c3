//! Each member's configuration: a static zoo.cfg, whose hash is the pod template's revision
//! (a change rolls the members), and the server lines in ZooKeeper's `dynamicConfigFile`,
//! which only a member's first start reads (after that the replicated membership rules), so
//! that rewriting them for a joining member restarts nobody.

use super::names::*;
use crate::crd::EnsembleSpec;
use std::fmt::Write;

/// The file names in the configuration ConfigMap.
pub const STATIC_FILE: &str = "zoo.cfg";
pub const DYNAMIC_FILE: &str = "zoo.cfg.dynamic";

/// Keys the operator sets itself; overrides of them are refused (the Ensemble is Degraded
/// with reason InvalidSpec).
const RESERVED: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "dynamicConfigFile",
    "clientPort",
    "clientPortAddress",
    "secureClientPort",
    "admin.serverPort",
    "admin.serverAddress",
    "sslQuorum",
    "reconfigEnabled",
    "standaloneEnabled",
];

/// Why a spec's configuration cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("config.overrides may not set {0}: the operator sets it")]
    Reserved(String),
    #[error("config.overrides may not set server lines ({0}): membership is the operator's")]
    ServerLine(String),
    #[error("config.overrides key {0:?} or its value holds a line break")]
    LineBreak(String),
}

/// The static zoo.cfg.
pub fn static_config(spec: &EnsembleSpec) -> Result<String, ConfigError> {
    let c = &spec.config;
    let mut out = String::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k}={v}");
    };
    line("tickTime", &c.tick_time);
    line("initLimit", &c.init_limit);
    line("syncLimit", &c.sync_limit);
    line("dataDir", &DATA_DIR);
    line("dynamicConfigFile", &format!("{CONFIG_DIR}/{DYNAMIC_FILE}"));
    line("clientPort", &CLIENT_PORT);
    line("clientPortAddress", &"0.0.0.0");
    line("admin.serverAddress", &"0.0.0.0");
    line("admin.serverPort", &ADMIN_PORT);
    line("reconfigEnabled", &"true");
    line("standaloneEnabled", &"false");
    line("4lw.commands.whitelist", &"srvr,mntr,ruok,conf");
    if let Some(v) = c.min_session_timeout {
        line("minSessionTimeout", &v);
    }
    if let Some(v) = c.max_session_timeout {
        line("maxSessionTimeout", &v);
    }
    if let Some(v) = c.snap_count {
        line("snapCount", &v);
    }
    if let Some(v) = c.max_client_cnxns {
        line("maxClientCnxns", &v);
    }
    if let Some(v) = c.global_outstanding_limit {
        line("globalOutstandingLimit", &v);
    }
    if let Some(tls) = &spec.tls {
        // Secrets mounted as folders; their files are reloaded live, so a renewal restarts
        // nobody.
        if tls.client_secret.is_some() {
            line("secureClientPort", &SECURE_CLIENT_PORT);
            line("ssl.keyStore.location", &format!("{TLS_DIR}/client"));
            line("ssl.trustStore.location", &format!("{TLS_DIR}/client"));
            line("ssl.clientAuth", &tls.client_auth);
        }
        if tls.quorum_secret.is_some() {
            line("sslQuorum", &"true");
            line("ssl.quorum.keyStore.location", &format!("{TLS_DIR}/quorum"));
            line(
                "ssl.quorum.trustStore.location",
                &format!("{TLS_DIR}/quorum"),
            );
        }
    }
    for (k, v) in &c.overrides {
        if k.starts_with("server.") {
            return Err(ConfigError::ServerLine(k.clone()));
        }
        if RESERVED.contains(&k.as_str()) {
            return Err(ConfigError::Reserved(k.clone()));
        }
        if k.contains(['\n', '\r']) || v.contains(['\n', '\r']) {
            return Err(ConfigError::LineBreak(k.clone()));
        }
        line(k, v);
    }
    Ok(out)
}

/// The server lines: `voters` as participants, `non_voters` as observers: the observers, and
/// a member on its way to voting (one started with itself listed as an observer never starts
/// an ensemble of its own; a reconfig promotes it).
pub fn dynamic_config(names: &Names, voters: &[i64], non_voters: &[i64]) -> String {
    let mut out = String::new();
    let mut ids: Vec<(i64, &str)> = voters.iter().map(|id| (*id, "participant")).collect();
    ids.extend(non_voters.iter().map(|id| (*id, "observer")));
    ids.sort_unstable();
    for (id, role) in ids {
        let _ = writeln!(
            out,
            "server.{id}={}:{PEER_PORT}:{ELECTION_PORT}:{role};{CLIENT_PORT}",
            names.host(id)
        );
    }
    out
}

/// The pod template revision: a digest of the static configuration and the image, so that a
/// change of either rolls the members and nothing else does.
pub fn revision(static_config: &str, image: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(static_config.as_bytes());
    h.update([0]);
    h.update(image.as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ServerConfig;

    fn spec() -> EnsembleSpec {
        serde_json::from_value(serde_json::json!({"image": "zooid:1"})).unwrap()
    }

    #[test]
    fn the_static_file_has_zookeepers_keys_and_the_overrides() {
        let mut s = spec();
        s.config = ServerConfig {
            tick_time: 500,
            ..ServerConfig::default()
        };
        s.config
            .overrides
            .insert("jute.maxbuffer".into(), "4194304".into());
        let cfg = static_config(&s).unwrap();
        for want in [
            "tickTime=500\n",
            "syncLimit=5\n",
            "dataDir=/data\n",
            "dynamicConfigFile=/etc/zooid/zoo.cfg.dynamic\n",
            "jute.maxbuffer=4194304\n",
        ] {
            assert!(cfg.contains(want), "{want:?} not in\n{cfg}");
        }
    }

    #[test]
    fn tls_secrets_become_zookeepers_keys() {
        let mut s = spec();
        s.tls = Some(
            serde_json::from_value(
                serde_json::json!({"clientSecret": "c", "quorumSecret": "q", "clientAuth": "want"}),
            )
            .unwrap(),
        );
        let cfg = static_config(&s).unwrap();
        for want in [
            "secureClientPort=2281\n",
            "ssl.keyStore.location=/etc/zooid-tls/client\n",
            "ssl.clientAuth=want\n",
            "sslQuorum=true\n",
            "ssl.quorum.trustStore.location=/etc/zooid-tls/quorum\n",
        ] {
            assert!(cfg.contains(want), "{want:?} not in\n{cfg}");
        }
    }

    #[test]
    fn overrides_of_the_operators_own_keys_are_refused() {
        for (k, err) in [
            ("dataDir", ConfigError::Reserved("dataDir".into())),
            ("server.9", ConfigError::ServerLine("server.9".into())),
            ("a\nb", ConfigError::LineBreak("a\nb".into())),
        ] {
            let mut s = spec();
            s.config.overrides.insert(k.into(), "x".into());
            assert_eq!(static_config(&s), Err(err));
        }
    }

    #[test]
    fn joining_members_are_listed_as_observers() {
        let names = Names::new("coord", "prod");
        let text = dynamic_config(&names, &[1, 2, 3], &[4]);
        assert_eq!(text.lines().count(), 4);
        assert!(text.starts_with(
            "server.1=coord-0.coord-peers.prod.svc.cluster.local:2888:3888:participant;2181\n"
        ));
        assert!(text.ends_with(
            "server.4=coord-3.coord-peers.prod.svc.cluster.local:2888:3888:observer;2181\n"
        ));
    }

    #[test]
    fn the_revision_follows_the_static_file_and_the_image_only() {
        let a = revision("tickTime=2000\n", "zooid:1");
        assert_eq!(a.len(), 16);
        assert_eq!(a, revision("tickTime=2000\n", "zooid:1"));
        assert_ne!(a, revision("tickTime=2001\n", "zooid:1"));
        assert_ne!(a, revision("tickTime=2000\n", "zooid:2"));
    }
}
