//! ZooKeeper's own configuration file, read as ZooKeeper reads it, so that an existing
//! ensemble's `zoo.cfg` and `myid` start Zooid unchanged.
//!
//! The file is a Java properties file: `key=value` (or `key: value`, or `key value`), `#` and
//! `!` comments. Keys map onto Zooid's flags (ZooKeeper's keys where it has them, Zooid's own
//! in the same camelCase form, listed in [`KEYS`]); `server.N` lines describe the members;
//! keys ZooKeeper knows that Zooid does not use are named in one warning at start. A line
//! that is not a property, a bad value or a bad `server.N` is an error naming the file and
//! the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A zoo.cfg key and the `zooid` flag it sets (the flag's long name).
pub const KEYS: &[(&str, &str)] = &[
    ("tickTime", "tick-time-ms"),
    ("dataDir", "data-dir"),
    ("dataLogDir", "data-log-dir"),
    ("minSessionTimeout", "min-session-timeout-ms"),
    ("maxSessionTimeout", "max-session-timeout-ms"),
    ("maxClientCnxns", "max-client-cnxns"),
    ("maxCnxns", "max-cnxns"),
    ("globalOutstandingLimit", "global-outstanding-limit"),
    ("jute.maxbuffer", "max-frame-bytes"),
    ("4lw.commands.whitelist", "four-letter-words"),
    ("extendedTypesEnabled", "extended-types"),
    ("zookeeper.extendedTypesEnabled", "extended-types"),
    ("snapCount", "snapshot-every"),
    // ZooKeeper reads it as a system property, and turns zoo.cfg keys it does not know into
    // `zookeeper.`-prefixed ones: both spellings work there.
    ("DigestAuthenticationProvider.superDigest", "super-digest"),
    (
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "super-digest",
    ),
    ("ssl.keyStore.location", "ssl-key-store"),
    ("ssl.trustStore.location", "ssl-trust-store"),
    ("ssl.keyStore.password", "ssl-key-store-password"),
    ("ssl.trustStore.password", "ssl-trust-store-password"),
    ("ssl.clientAuth", "ssl-client-auth"),
    ("client.portUnification", "client-port-unification"),
    ("sslQuorum", "ssl-quorum"),
    ("ssl.quorum.keyStore.location", "ssl-quorum-key-store"),
    (
        "ssl.quorum.keyStore.password",
        "ssl-quorum-key-store-password",
    ),
    ("ssl.quorum.trustStore.location", "ssl-quorum-trust-store"),
    (
        "ssl.quorum.trustStore.password",
        "ssl-quorum-trust-store-password",
    ),
    (
        "ssl.quorum.hostnameVerification",
        "ssl-quorum-hostname-verification",
    ),
    ("X509AuthenticationProvider.superUser", "x509-super-user"),
    ("jaasLoginConfig", "sasl-jaas-file"),
    ("superUser", "sasl-super-user"),
    ("zookeeper.superUser", "sasl-super-user"),
    ("java.security.auth.login.config", "sasl-jaas-file"),
    (
        "zookeeper.X509AuthenticationProvider.superUser",
        "x509-super-user",
    ),
    ("enforceQuota", "enforce-quota"),
    ("zookeeper.enforceQuota", "enforce-quota"),
    ("skipACL", "skip-acl"),
    ("zookeeper.skipACL", "skip-acl"),
    ("skipACLConfirmed", "skip-acl-confirmed"),
    // Zooid's own, in ZooKeeper's style.
    ("groupCommitWaitUs", "group-commit-wait-us"),
    ("snapshotEveryBytes", "snapshot-every-bytes"),
    ("containerCheckMs", "container-check-ms"),
    ("handshakeTimeoutMs", "handshake-timeout-ms"),
    ("maxConnOutstanding", "max-conn-outstanding"),
    ("maxConnOutboundBytes", "max-conn-outbound-bytes"),
    ("slowClientTimeoutMs", "slow-client-timeout-ms"),
    ("maxReplyBytes", "max-reply-bytes"),
    ("shutdownTimeoutMs", "shutdown-timeout-ms"),
    ("peerListenAddress", "peer-listen"),
    // A JVM system property for ZooKeeper (-Dreadonlymode.enabled=true); a key here.
    ("readonlymode.enabled", "read-only-mode"),
    ("admin.enableServer", "admin-enabled"),
    ("admin.forceHttps", "admin-force-https"),
    ("admin.portUnification", "admin-port-unification"),
    ("admin.needClientAuth", "admin-need-client-auth"),
    ("admin.maxRestoreBytes", "max-restore-bytes"),
];

/// Keys read here rather than mapped onto one flag.
const STRUCTURAL: &[&str] = &[
    "clientPort",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "admin.serverAddress",
    "admin.serverPort",
    "dynamicConfigFile",
    "reconfigEnabled",
    "standaloneEnabled",
    "initLimit",
    "syncLimit",
];

/// Whether a member votes (a participant) or only follows (an observer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Participant,
    Observer,
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub host: String,
    /// The peer port: Zooid's replication traffic.
    pub quorum_port: u16,
    /// Accepted for compatibility; Zooid's elections run over the peer port.
    pub election_port: u16,
    pub role: Role,
    /// Where this member serves clients, when the line says so.
    pub client: Option<(Option<String>, u16)>,
}

impl Member {
    /// The line's value without its role, as the replicated membership keeps it:
    /// `host:quorumPort:electionPort[;clientHost:clientPort]`. A client port given alone is
    /// written as ZooKeeper writes it, on `0.0.0.0`.
    pub fn spec(&self) -> String {
        let bracket = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_string()
            }
        };
        let mut s = format!(
            "{}:{}:{}",
            bracket(&self.host),
            self.quorum_port,
            self.election_port
        );
        if let Some((host, port)) = &self.client {
            let host = host.as_deref().unwrap_or("0.0.0.0");
            s.push_str(&format!(";{}:{port}", bracket(host)));
        }
        s
    }

    /// `host:quorumPort`, the address peers reach this member on.
    pub fn peer_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.quorum_port)
        } else {
            format!("{}:{}", self.host, self.quorum_port)
        }
    }
}

/// What a zoo.cfg says, before it is applied to the flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZooCfg {
    /// Flag long name → (value, line number), for every mapped key.
    pub flags: BTreeMap<&'static str, (String, usize)>,
    pub client_port: Option<u16>,
    pub client_port_address: Option<String>,
    pub secure_client_port: Option<u16>,
    pub secure_client_port_address: Option<String>,
    /// `admin.serverAddress` and `admin.serverPort`.
    pub admin_address: Option<String>,
    pub admin_port: Option<u16>,
    pub members: Vec<Member>,
    pub dynamic_config_file: Option<PathBuf>,
    pub reconfig_enabled: bool,
    pub standalone_enabled: bool,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    /// ZooKeeper's keys that Zooid does not use, in file order.
    pub unused: Vec<String>,
    /// Keys neither ZooKeeper nor Zooid knows (ZooKeeper takes them as system properties;
    /// often a typo).
    pub unknown: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ZooCfgError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// Splits one properties line into key and value, as `java.util.Properties` does: the key ends
/// at the first `=`, `:` or whitespace; blanks around the separator are dropped.
fn property(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    let end = line.find(|c: char| c == '=' || c == ':' || c.is_whitespace())?;
    let (key, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    Some((key, rest.trim()))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// Parses `host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]`.
pub fn parse_member(id: u64, value: &str) -> Result<Member, String> {
    let (peer, client) = match value.split_once(';') {
        Some((p, c)) => (p.trim(), Some(c.trim())),
        None => (value.trim(), None),
    };
    // The host may be an IPv6 address in brackets.
    let (host, rest) = if let Some(after) = peer.strip_prefix('[') {
        let (h, r) = after
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in {peer:?}"))?;
        (h.to_string(), r.strip_prefix(':').unwrap_or(r))
    } else {
        let (h, r) = peer
            .split_once(':')
            .ok_or_else(|| format!("{peer:?} is not host:quorumPort:electionPort"))?;
        (h.to_string(), r)
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!(
            "{peer:?} is not host:quorumPort:electionPort[:participant|observer]"
        ));
    }
    let port = |s: &str, what: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{what} {s:?} is not a port number"))
    };
    let quorum_port = port(parts[0], "quorum port")?;
    let election_port = port(parts[1], "election port")?;
    let role = match parts.get(2).map(|r| r.to_ascii_lowercase()) {
        None => Role::Participant,
        Some(r) if r == "participant" => Role::Participant,
        Some(r) if r == "observer" => Role::Observer,
        Some(r) => return Err(format!("role {r:?} is neither participant nor observer")),
    };
    let client = match client {
        None | Some("") => None,
        Some(c) => Some(match c.rsplit_once(':') {
            Some((h, p)) => {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                (Some(h.to_string()), port(p, "client port")?)
            }
            None => (None, port(c, "client port")?),
        }),
    };
    Ok(Member {
        id,
        host,
        quorum_port,
        election_port,
        role,
        client,
    })
}

/// Why a security key of ZooKeeper's cannot be honored yet, if it asks for something: TLS, an
/// authentication provider, a required scheme. Such a file must not start a server that is
/// less secure than it says.
fn unhonored_security(key: &str, value: &str) -> Option<&'static str> {
    let key = key.strip_prefix("zookeeper.").unwrap_or(key);
    // The peer port's keys ask for the same as the client port's.
    let same = key.replacen("ssl.quorum.", "ssl.", 1);
    let key = same.as_str();
    match key {
        // The store's content says what it is (PEM text, PKCS#12, or a JKS store, which is
        // refused when opened with the command that converts it).
        "ssl.keyStore.type" | "ssl.trustStore.type"
            if ["PEM", "PKCS12"]
                .iter()
                .any(|t| value.eq_ignore_ascii_case(t)) =>
        {
            return None
        }
        "ssl.keyStore.type" | "ssl.trustStore.type" => {
            return Some(
                "only PEM and PKCS#12 stores are read: convert a JKS store with `keytool \
                 -importkeystore -srckeystore store.jks -destkeystore store.p12 \
                 -deststoretype PKCS12`",
            )
        }
        "ssl.hostnameVerification" => return None,
        "ssl.protocol" | "ssl.enabledProtocols"
            if value
                .split(',')
                .all(|p| matches!(p.trim(), "TLSv1.2" | "TLSv1.3")) =>
        {
            return None
        }
        "ssl.protocol" | "ssl.enabledProtocols" => {
            return Some("only TLSv1.2 and TLSv1.3 are served")
        }
        _ => {}
    }
    if key.starts_with("ssl.") {
        return Some(
            "not served (TLS is served on the client, peer and admin ports with the key and \
             trust stores, client authentication and host checks; TLS 1.2 and 1.3 with \
             rustls's modern suites, not chosen by this option)",
        );
    }
    // SASL (with a JAAS file) and x509 (with TLS) are served: naming their providers, as
    // a secured ZooKeeper's zoo.cfg does, asks for nothing more.
    if key.starts_with("authProvider.")
        && (value.ends_with(".SASLAuthenticationProvider")
            || value.ends_with(".X509AuthenticationProvider"))
    {
        return None;
    }
    if key.starts_with("authProvider.") || key == "requireClientAuthScheme" {
        return Some(
            "only the world, digest, ip, auth, x509 and sasl schemes are served (ZooKeeper's \
             own providers)",
        );
    }
    None
}

/// Keys ZooKeeper reads that Zooid has no use for, or not yet; named in the start-up warning.
fn is_known_unused(key: &str) -> bool {
    key.starts_with("autopurge.")
        || key.starts_with("admin.")
        || key.starts_with("metricsProvider.")
        || key.starts_with("authProvider.")
        || key.starts_with("zookeeper.")
        || matches!(
            key,
            "electionAlg"
                | "peerType"
                | "quorumListenOnAllIPs"
                | "forceSync"
                | "preAllocSize"
                | "leaderServes"
                | "cnxTimeout"
                | "syncEnabled"
                | "localSessionsEnabled"
                | "localSessionsUpgradingEnabled"
                | "maxResponseCacheSize"
                | "serverCnxnFactory"
                | "sslQuorum"
        )
}

/// Parses the text of a zoo.cfg (or of a dynamic config file, which holds `server.N` lines
/// only). `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<ZooCfg, ZooCfgError> {
    let mut cfg = ZooCfg {
        reconfig_enabled: false,
        standalone_enabled: true,
        ..Default::default()
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |reason: String| ZooCfgError::Line {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        if trimmed.ends_with('\\') {
            return Err(err("continued lines are not supported".into()));
        }
        let Some((key, value)) = property(trimmed) else {
            return Err(err(format!("{trimmed:?} is not key=value")));
        };
        if value.is_empty() {
            return Err(err(format!("{key} has no value")));
        }
        if let Some(n) = key.strip_prefix("server.") {
            let id = n
                .parse::<u64>()
                .ok()
                .filter(|id| (1..=255).contains(id))
                .ok_or_else(|| err(format!("server id {n:?} is not a number from 1 to 255")))?;
            if cfg.members.iter().any(|m| m.id == id) {
                return Err(err(format!("server.{id} is given twice")));
            }
            cfg.members
                .push(parse_member(id, value).map_err(|r| err(format!("{key}: {r}")))?);
            continue;
        }
        if key == "version" {
            // A dynamic config file may carry its version; the log keeps Zooid's own.
            continue;
        }
        // ZooKeeper reads its TLS settings as system properties too (`zookeeper.ssl.*`,
        // `zookeeper.sslQuorum`): a file that spells them so means the same keys.
        let tls_key = key
            .strip_prefix("zookeeper.")
            .filter(|k| k.starts_with("ssl"))
            .unwrap_or(key);
        if let Some((_, flag)) = KEYS.iter().find(|(k, _)| *k == tls_key) {
            cfg.flags.insert(flag, (value.to_string(), line));
            continue;
        }
        if let Some(why) = unhonored_security(key, value) {
            return Err(err(format!(
                "{key}: {why}; Zooid refuses to start rather than serve with less security \
                 than asked (docs/security.md)"
            )));
        }
        let number = |what: &str| {
            value
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| err(format!("{what} {value:?} is not a positive number")))
        };
        match key {
            "clientPort" => {
                cfg.client_port = Some(
                    value
                        .parse::<u16>()
                        .map_err(|_| err(format!("clientPort {value:?} is not a port number")))?,
                )
            }
            "clientPortAddress" => cfg.client_port_address = Some(value.to_string()),
            "secureClientPort" => {
                cfg.secure_client_port =
                    Some(value.parse::<u16>().map_err(|_| {
                        err(format!("secureClientPort {value:?} is not a port number"))
                    })?)
            }
            "secureClientPortAddress" => cfg.secure_client_port_address = Some(value.to_string()),
            "admin.serverAddress" => cfg.admin_address = Some(value.to_string()),
            "admin.serverPort" => {
                cfg.admin_port =
                    Some(value.parse::<u16>().map_err(|_| {
                        err(format!("admin.serverPort {value:?} is not a port number"))
                    })?)
            }
            "dynamicConfigFile" => cfg.dynamic_config_file = Some(PathBuf::from(value)),
            "reconfigEnabled" | "standaloneEnabled" => {
                let b = parse_bool(value)
                    .ok_or_else(|| err(format!("{key} {value:?} is neither true nor false")))?;
                if key == "reconfigEnabled" {
                    cfg.reconfig_enabled = b;
                } else {
                    cfg.standalone_enabled = b;
                }
            }
            "initLimit" => cfg.init_limit = Some(number("initLimit")?),
            "syncLimit" => cfg.sync_limit = Some(number("syncLimit")?),
            _ => {
                debug_assert!(!STRUCTURAL.contains(&key));
                if is_known_unused(key) {
                    cfg.unused.push(key.to_string());
                } else {
                    cfg.unknown.push(key.to_string());
                }
            }
        }
    }
    Ok(cfg)
}

/// Reads `path`, and the dynamic config file it names (whose `server.N` lines then describe
/// the members; relative names are taken from the zoo.cfg's own folder first, as ZooKeeper
/// writes them next to it).
pub fn load(path: &Path) -> Result<ZooCfg, ZooCfgError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| ZooCfgError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let mut cfg = parse(&read(path)?, path)?;
    if let Some(dynamic) = cfg.dynamic_config_file.clone() {
        let beside = path.parent().map(|d| d.join(&dynamic));
        let dynamic = match beside {
            Some(b) if dynamic.is_relative() && b.exists() => b,
            _ => dynamic,
        };
        let d = parse(&read(&dynamic)?, &dynamic)?;
        if !cfg.members.is_empty() && !d.members.is_empty() {
            return Err(ZooCfgError::File {
                path: path.to_path_buf(),
                reason: format!(
                    "server.N lines are given both here and in {}; keep them in one place",
                    dynamic.display()
                ),
            });
        }
        let other = d.flags.keys().next().copied().or(d
            .unused
            .iter()
            .chain(&d.unknown)
            .next()
            .map(|_| ""));
        if let Some(key) = other {
            return Err(ZooCfgError::File {
                path: dynamic,
                reason: format!(
                    "a dynamic config file holds server.N lines only (found {})",
                    if key.is_empty() { "other keys" } else { key }
                ),
            });
        }
        cfg.members = d.members;
    }
    Ok(cfg)
}

/// Reads `myid` in the data directory: this server's id among the members.
pub fn read_myid(data_dir: &Path) -> Result<u64, ZooCfgError> {
    let path = data_dir.join("myid");
    let text = std::fs::read_to_string(&path).map_err(|source| ZooCfgError::Read {
        path: path.clone(),
        source,
    })?;
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|id| (1..=255).contains(id))
        .ok_or_else(|| ZooCfgError::File {
            path,
            reason: format!("{:?} is not a server id from 1 to 255", text.trim()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_keys_that_ask_for_something_unserved_are_refused_and_their_no_is_taken() {
        let path = Path::new("zoo.cfg");
        for asks in [
            "ssl.keyStore.type=JKS",
            "ssl.quorum.trustStore.type=JKS",
            "ssl.quorum.ciphersuites=TLS_AES_128_GCM_SHA256",
            "ssl.quorum.enabledProtocols=TLSv1.1",
            "ssl.ciphersuites=TLS_AES_128_GCM_SHA256",
            "ssl.enabledProtocols=TLSv1.1,TLSv1.2",
            "authProvider.kerberos=com.example.KerberosAuthenticationProvider",
            "requireClientAuthScheme=sasl",
            "ssl.authProvider=sasl",
        ] {
            assert!(parse(&format!("{asks}\n"), path).is_err(), "{asks} taken");
        }
        let cfg = parse("serverCnxnFactory=x\n", path).unwrap();
        assert_eq!(cfg.unused.len(), 1);
        // ZooKeeper's own x509 and SASL providers, as a secured zoo.cfg names them.
        parse(
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            path,
        )
        .unwrap();
        let cfg = parse("sslQuorum=false\n", path).unwrap();
        assert_eq!(cfg.flags.len(), 1);
        // What the TLS client port is served with is taken.
        let cfg = parse(
            "secureClientPort=2281\nssl.keyStore.location=/etc/zk/server.pem\n\
             ssl.trustStore.location=/etc/zk/ca.pem\nssl.clientAuth=want\n\
             ssl.keyStore.type=PEM\nssl.protocol=TLSv1.3\n",
            path,
        )
        .unwrap();
        assert_eq!(cfg.secure_client_port, Some(2281));
        assert_eq!(cfg.flags.len(), 3);
        // And what the peer port is.
        let cfg = parse(
            "sslQuorum=true\nssl.quorum.keyStore.location=/etc/zk/server.p12\n\
             ssl.quorum.keyStore.password=secret\nssl.quorum.keyStore.type=PKCS12\n\
             ssl.quorum.trustStore.location=/etc/zk/ca.pem\n\
             ssl.quorum.hostnameVerification=false\nssl.quorum.protocol=TLSv1.2\n",
            path,
        )
        .unwrap();
        assert_eq!(cfg.flags.len(), 5);
        // ZooKeeper's system-property spelling of the same keys.
        let cfg = parse(
            "zookeeper.sslQuorum=true\nzookeeper.ssl.quorum.keyStore.location=/etc/zk/m.pem\n\
             zookeeper.ssl.keyStore.location=/etc/zk/server.pem\n",
            path,
        )
        .unwrap();
        assert_eq!(cfg.flags.len(), 3);
    }

    fn p(text: &str) -> Result<ZooCfg, ZooCfgError> {
        parse(text, Path::new("zoo.cfg"))
    }

    #[test]
    fn a_zookeeper_38_sample_config_parses() {
        let cfg = p("# The number of milliseconds of each tick\n\
             tickTime=2000\n\
             initLimit=10\n\
             syncLimit=5\n\
             dataDir=/var/lib/zookeeper\n\
             clientPort=2181\n\
             #maxClientCnxns=60\n\
             autopurge.snapRetainCount=3\n\
             autopurge.purgeInterval=1\n\
             tickTyme=3\n\
             4lw.commands.whitelist=srvr, mntr\n\
             server.1=zk1.example:2888:3888\n\
             server.2=zk2.example:2888:3888;2181\n\
             server.3 = 10.0.0.3:2888:3888:participant;0.0.0.0:2181\n\
             server.4=[fd00::4]:2888:3888:observer\n")
        .unwrap();
        assert_eq!(cfg.flags["tick-time-ms"], ("2000".into(), 2));
        assert_eq!(cfg.flags["four-letter-words"].0, "srvr, mntr");
        assert_eq!(cfg.client_port, Some(2181));
        assert_eq!((cfg.init_limit, cfg.sync_limit), (Some(10), Some(5)));
        assert_eq!(
            cfg.unused,
            ["autopurge.snapRetainCount", "autopurge.purgeInterval"]
        );
        assert_eq!(cfg.unknown, ["tickTyme"]);
        assert_eq!(cfg.members.len(), 4);
        assert_eq!(cfg.members[0].peer_addr(), "zk1.example:2888");
        assert_eq!(cfg.members[1].client, Some((None, 2181)));
        assert_eq!(cfg.members[2].client, Some((Some("0.0.0.0".into()), 2181)));
        assert_eq!(cfg.members[3].role, Role::Observer);
        assert_eq!(cfg.members[3].peer_addr(), "[fd00::4]:2888");
        assert!(cfg.standalone_enabled && !cfg.reconfig_enabled);
    }

    #[test]
    fn properties_separators_as_java_reads_them() {
        assert_eq!(property("a=b"), Some(("a", "b")));
        assert_eq!(property("a = b c"), Some(("a", "b c")));
        assert_eq!(property("a: b"), Some(("a", "b")));
        assert_eq!(property("a b"), Some(("a", "b")));
        assert_eq!(property("server.1=h:1:2"), Some(("server.1", "h:1:2")));
        assert_eq!(property("lonely"), None);
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        for (text, line, needle) in [
            ("tickTime=2000\nnonsense\n", 2, "not key=value"),
            ("clientPort=21x81\n", 1, "clientPort"),
            ("\n\nserver.1=host:2888\n", 3, "server.1"),
            ("server.0=h:1:2\n", 1, "1 to 255"),
            ("server.1=h:1:2\nserver.1=h:3:4\n", 2, "twice"),
            ("server.1=h:1:2:voter\n", 1, "voter"),
            ("initLimit=0\n", 1, "initLimit"),
            ("reconfigEnabled=maybe\n", 1, "reconfigEnabled"),
            ("dataDir=\n", 1, "no value"),
        ] {
            let e = p(text).expect_err(text).to_string();
            assert!(
                e.starts_with(&format!("zoo.cfg:{line}:")) && e.contains(needle),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn myid_and_dynamic_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "3\n").unwrap();
        assert_eq!(read_myid(dir.path()).unwrap(), 3);
        std::fs::write(dir.path().join("myid"), "three").unwrap();
        let e = read_myid(dir.path()).unwrap_err().to_string();
        assert!(e.contains("myid") && e.contains("three"), "{e}");

        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            "tickTime=2000\ndynamicConfigFile=zoo.cfg.dynamic.100000000\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("zoo.cfg.dynamic.100000000"),
            "server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.2:2888:3888;2181\nversion=100000000\n",
        )
        .unwrap();
        let loaded = load(&cfg).unwrap();
        assert_eq!(loaded.members.len(), 2);
        std::fs::write(
            dir.path().join("zoo.cfg.dynamic.100000000"),
            "server.1=127.0.0.1:2888:3888\ntickTime=1\n",
        )
        .unwrap();
        let e = load(&cfg).unwrap_err().to_string();
        assert!(e.contains("server.N lines only"), "{e}");
        let e = load(&dir.path().join("missing.cfg"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.cfg"), "{e}");
    }
}
