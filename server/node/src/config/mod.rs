//! Server settings. Every key is a command-line flag and an environment variable named after
//! it (`--max-client-cnxns` is `ZOOID_MAX_CLIENT_CNXNS`), and a key of a ZooKeeper-style
//! `zoo.cfg` given with `--config` (see [`crate::config::zoocfg`]); flags and variables override the
//! file. The limits that bound what one client can make the server hold are grouped here;
//! `docs/limits.md` says what each one protects.

pub mod zoocfg;

/// The four-letter words the server answers, when `4lw.commands.whitelist` allows them.
pub const FOUR_LETTER_WORDS: [&str; 9] = [
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "isro",
];

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;
use zoocfg::{Member, ZooCfgError};

/// Where the client port listens when only a port is given: loopback, so that a server is
/// exposed to the network only when asked to be.
const DEFAULT_CLIENT_HOST: &str = "127.0.0.1";

/// A zoo.cfg's host (every interface, as ZooKeeper, when none is given) and port as a
/// listening address flag's value (an IPv6 host in brackets).
fn listen_arg(host: Option<String>, port: u16) -> String {
    let host = host.unwrap_or_else(|| "0.0.0.0".into());
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Parses `--client-addr`: `host:port` with a name or an address (`[::1]:2181` for IPv6), or
/// a bare port on loopback. A name is resolved once, at start, to its first address.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return format!("{DEFAULT_CLIENT_HOST}:{port}")
            .parse()
            .map_err(|e| format!("{e}"));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !s.contains(':') {
        return Err(format!("{s:?} is neither host:port nor a port number"));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "zooid",
    version,
    about = "A ZooKeeper-compatible coordination server"
)]
pub struct Config {
    /// A ZooKeeper configuration file (zoo.cfg) to read; flags and environment variables
    /// override what it says. With `server.N` lines, `myid` in the data dir names this server.
    #[arg(long, env = "ZOOID_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address the client port listens on: host:port (a name or an address), or a bare port,
    /// which listens on loopback. `0.0.0.0:2181` listens on every interface.
    #[arg(long, env = "ZOOID_CLIENT_ADDR", default_value = "127.0.0.1:2181", value_parser = parse_listen_addr)]
    pub client_addr: SocketAddr,

    /// Directory for the log and snapshots.
    #[arg(long, env = "ZOOID_DATA_DIR", default_value = "./zooid-data")]
    pub data_dir: PathBuf,

    /// Directory for the log (ZooKeeper's `dataLogDir`), to put it on a disk of its own; by
    /// default it is in the data dir.
    #[arg(long, env = "ZOOID_DATA_LOG_DIR")]
    pub data_log_dir: Option<PathBuf>,

    /// ZooKeeper's tickTime in milliseconds; session timeout bounds derive from it.
    #[arg(long, env = "ZOOID_TICK_TIME_MS", default_value_t = 2000)]
    pub tick_time_ms: u32,

    /// Smallest session timeout granted (default 2 × tick).
    #[arg(long, env = "ZOOID_MIN_SESSION_TIMEOUT_MS")]
    pub min_session_timeout_ms: Option<u32>,

    /// Largest session timeout granted (default 20 × tick).
    #[arg(long, env = "ZOOID_MAX_SESSION_TIMEOUT_MS")]
    pub max_session_timeout_ms: Option<u32>,

    /// Largest request frame accepted, like `jute.maxbuffer`; a bigger one closes the connection.
    #[arg(long, env = "ZOOID_MAX_FRAME_BYTES", default_value_t = zooid_proto::DEFAULT_MAX_FRAME)]
    pub max_frame_bytes: usize,

    /// Four-letter words answered on the client port, comma separated, or `*` for all.
    #[arg(
        long,
        env = "ZOOID_FOUR_LETTER_WORDS",
        default_value = "ruok,srvr,mntr"
    )]
    pub four_letter_words: String,

    /// Allow TTL nodes (ZooKeeper's `extendedTypesEnabled`).
    #[arg(long, env = "ZOOID_EXTENDED_TYPES", default_value_t = true, action = clap::ArgAction::Set)]
    pub extended_types: bool,

    /// Extra wait before each log fsync, in microseconds, to let more writes join it. Writes
    /// queued while an fsync runs share the next one anyway; 0 adds no latency.
    #[arg(long, env = "ZOOID_GROUP_COMMIT_WAIT_US", default_value_t = 0)]
    pub group_commit_wait_us: u64,

    /// Take a snapshot after this many log entries.
    #[arg(long, env = "ZOOID_SNAPSHOT_EVERY", default_value_t = 20_000)]
    pub snapshot_every: u64,

    /// Take a snapshot after this many bytes of writes, if `snapshot-every` entries come later.
    #[arg(long, env = "ZOOID_SNAPSHOT_EVERY_BYTES", default_value_t = 256 << 20)]
    pub snapshot_every_bytes: u64,

    /// How often empty containers and expired TTL nodes are looked for, in milliseconds.
    #[arg(long, env = "ZOOID_CONTAINER_CHECK_MS", default_value_t = 60_000)]
    pub container_check_ms: u64,

    /// Connections one client IP address may hold at once, handshake or not (ZooKeeper's
    /// `maxClientCnxns`); the next one is closed at once. 0 means no limit.
    #[arg(long, env = "ZOOID_MAX_CLIENT_CNXNS", default_value_t = 60)]
    pub max_client_cnxns: usize,

    /// Client connections the server holds at once, from every address (ZooKeeper's
    /// `maxCnxns`); the next one is closed at once. 0 means as many as the open-files limit
    /// allows, less what the server keeps for its own files and peers: never so many that
    /// the server runs out of file descriptors.
    #[arg(long, env = "ZOOID_MAX_CNXNS", default_value_t = 0)]
    pub max_cnxns: usize,

    /// A connection that has not sent its ConnectRequest (or four-letter word) within this
    /// many milliseconds is closed.
    #[arg(long, env = "ZOOID_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,

    /// Writes one connection may have waiting for ordering; at this many its socket is not
    /// read until one completes.
    #[arg(long, env = "ZOOID_MAX_CONN_OUTSTANDING", default_value_t = 128)]
    pub max_conn_outstanding: usize,

    /// Writes waiting for ordering across all connections (ZooKeeper's
    /// `globalOutstandingLimit`); at this many no connection's socket is read.
    #[arg(long, env = "ZOOID_GLOBAL_OUTSTANDING_LIMIT", default_value_t = 1000)]
    pub global_outstanding_limit: usize,

    /// Bytes of replies and notifications queued for one connection; above this its requests
    /// are not read until its client reads. A queue that grows past this plus
    /// `max-reply-bytes` (notifications keep coming) closes the connection.
    #[arg(long, env = "ZOOID_MAX_CONN_OUTBOUND_BYTES", default_value_t = 4 << 20)]
    pub max_conn_outbound_bytes: usize,

    /// A connection whose client reads nothing for this many milliseconds while output waits
    /// for it is closed.
    #[arg(long, env = "ZOOID_SLOW_CLIENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub slow_client_timeout_ms: u64,

    /// Largest reply the server builds. A request whose reply would be larger (a multiRead of
    /// many large nodes, say) is answered MARSHALLINGERROR without building it.
    #[arg(long, env = "ZOOID_MAX_REPLY_BYTES", default_value_t = 4 << 20)]
    pub max_reply_bytes: usize,

    /// On SIGTERM or SIGINT, how long writes already accepted may take to finish before the
    /// server stops anyway.
    #[arg(long, env = "ZOOID_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// Cut off from the quorum, serve the clients that ask for a read-only session (reads
    /// only; writes get NOTREADONLY) instead of none: ZooKeeper's `readonlymode.enabled`.
    #[arg(long, env = "ZOOID_READ_ONLY_MODE", default_value_t = false, action = clap::ArgAction::Set)]
    pub read_only_mode: bool,

    /// Address the peer port binds, when it is not the one this server's `server.N` line
    /// gives: behind NAT, a port forward or a proxy, the line says where the other members
    /// reach this one, and this where it listens.
    #[arg(long, env = "ZOOID_PEER_LISTEN", value_parser = parse_listen_addr)]
    pub peer_listen: Option<SocketAddr>,

    /// Address of the admin HTTP API (`/commands/<name>`, `/metrics`, `/healthz`, `/readyz`):
    /// host:port or a bare port on loopback. ZooKeeper's `admin.serverAddress` and
    /// `admin.serverPort`.
    #[arg(long, env = "ZOOID_ADMIN_ADDR", default_value = "127.0.0.1:8080", value_parser = parse_listen_addr)]
    pub admin_addr: SocketAddr,

    /// The token the admin API's commands that expose or change all data (`snapshot`) ask
    /// for, as `Authorization: Bearer <token>`. Prefer the variable or `--admin-token-file` to
    /// the flag, which other users of the machine can read in the process list.
    #[arg(long, env = "ZOOID_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Address of the TLS client port (ZooKeeper's `secureClientPort` and
    /// `secureClientPortAddress`): the same protocol inside TLS 1.2 or 1.3, beside the plain
    /// port. Needs `--ssl-key-store`.
    #[arg(long, env = "ZOOID_SECURE_CLIENT_ADDR", value_parser = parse_listen_addr)]
    pub secure_client_addr: Option<SocketAddr>,

    /// Also take TLS on the plain client port (ZooKeeper's `client.portUnification`): a
    /// connection that opens with a TLS handshake is served inside TLS, with the TLS port's
    /// material (`ssl-key-store`); one that does not, in plaintext.
    #[arg(long, env = "ZOOID_CLIENT_PORT_UNIFICATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub client_port_unification: bool,

    /// The TLS port's certificate chain and private key, PEM or PKCS#12 (ZooKeeper's
    /// `ssl.keyStore.location`; a JKS store is refused with the command that converts it), or
    /// a folder holding `tls.crt` and `tls.key` (a Kubernetes TLS Secret). Read again when it
    /// changes on disk: new connections get the new material, established ones go on; a bad
    /// new file keeps the old and says why.
    #[arg(long, env = "ZOOID_SSL_KEY_STORE")]
    pub ssl_key_store: Option<PathBuf>,

    /// The password of a PKCS#12 key store (ZooKeeper's `ssl.keyStore.password`).
    #[arg(long, env = "ZOOID_SSL_KEY_STORE_PASSWORD", hide_env_values = true)]
    pub ssl_key_store_password: Option<String>,

    /// The certificates the TLS port trusts for client certificates, PEM or PKCS#12
    /// (ZooKeeper's `ssl.trustStore.location`), or a folder holding `ca.crt`; reloaded as the
    /// key store is.
    #[arg(long, env = "ZOOID_SSL_TRUST_STORE")]
    pub ssl_trust_store: Option<PathBuf>,

    /// The password of a PKCS#12 trust store (ZooKeeper's `ssl.trustStore.password`).
    #[arg(long, env = "ZOOID_SSL_TRUST_STORE_PASSWORD", hide_env_values = true)]
    pub ssl_trust_store_password: Option<String>,

    /// Whether a client must present a certificate that the trust store vouches for
    /// (ZooKeeper's `ssl.clientAuth`: `need`, its default, `want` or `none`).
    #[arg(long, env = "ZOOID_SSL_CLIENT_AUTH", default_value = "need", value_parser = ["need", "want", "none"])]
    pub ssl_client_auth: String,

    /// TLS between the members of an ensemble (ZooKeeper's `sslQuorum`): each member shows
    /// the certificate of `ssl-quorum-key-store` and checks the other's against
    /// `ssl-quorum-trust-store`, both ways; a peer whose certificate is not trusted cannot
    /// join, and the log says why.
    #[arg(long, env = "ZOOID_SSL_QUORUM", default_value_t = false, action = clap::ArgAction::Set)]
    pub ssl_quorum: bool,

    /// The members' certificate chain and key, PEM or PKCS#12 (ZooKeeper's
    /// `ssl.quorum.keyStore.location`), for the peer port and the admin port's HTTPS;
    /// reloaded when it changes on disk, as the client port's.
    #[arg(long, env = "ZOOID_SSL_QUORUM_KEY_STORE")]
    pub ssl_quorum_key_store: Option<PathBuf>,

    /// `ssl.quorum.keyStore.password`, for a PKCS#12 store.
    #[arg(
        long,
        env = "ZOOID_SSL_QUORUM_KEY_STORE_PASSWORD",
        hide_env_values = true
    )]
    pub ssl_quorum_key_store_password: Option<String>,

    /// The certificates that vouch for members (and for admin clients' certificates), PEM
    /// or PKCS#12 (ZooKeeper's `ssl.quorum.trustStore.location`); reloaded as the key store is.
    #[arg(long, env = "ZOOID_SSL_QUORUM_TRUST_STORE")]
    pub ssl_quorum_trust_store: Option<PathBuf>,

    /// `ssl.quorum.trustStore.password`, for a PKCS#12 store.
    #[arg(
        long,
        env = "ZOOID_SSL_QUORUM_TRUST_STORE_PASSWORD",
        hide_env_values = true
    )]
    pub ssl_quorum_trust_store_password: Option<String>,

    /// Whether a member's certificate must also be valid for its host: the name or address
    /// in its `server.N` line, or the address it connects from (ZooKeeper's
    /// `ssl.quorum.hostnameVerification`, on by default).
    #[arg(long, env = "ZOOID_SSL_QUORUM_HOSTNAME_VERIFICATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub ssl_quorum_hostname_verification: bool,

    /// A JAAS configuration file whose `Server` section lists SASL DIGEST-MD5 users
    /// (`user_<name>="<password>"`, ZooKeeper's DigestLoginModule): kazoo's and the Java
    /// client's SASL logins, each giving the identity `sasl:<name>`. ZooKeeper takes it as
    /// the JVM's `java.security.auth.login.config`.
    #[arg(long, env = "ZOOID_SASL_JAAS_FILE")]
    pub sasl_jaas_file: Option<PathBuf>,

    /// ZooKeeper's `zookeeper.superUser`: the SASL user who is the super user.
    #[arg(long, env = "ZOOID_SASL_SUPER_USER")]
    pub sasl_super_user: Option<String>,

    /// ZooKeeper's `X509AuthenticationProvider.superUser`: a client whose certificate's
    /// subject is this (RFC 2253, as Java writes it: `CN=admin,O=example`) is the super user.
    #[arg(long, env = "ZOOID_X509_SUPER_USER")]
    pub x509_super_user: Option<String>,

    /// ZooKeeper's `enforceQuota`: a create or setData that would take a subtree past its
    /// quota's hard limit (`setquota -N` / `-B`) fails QUOTAEXCEEDED; soft limits only count.
    #[arg(long, env = "ZOOID_ENFORCE_QUOTA", default_value_t = false, action = clap::ArgAction::Set)]
    pub enforce_quota: bool,

    /// ZooKeeper's `skipACL` (`yes` or `no`): `yes` turns every ACL check off. Refused at
    /// start unless `--skip-acl-confirmed` says it is meant, and logged at every start.
    #[arg(long, env = "ZOOID_SKIP_ACL", default_value = "no", value_parser = ["yes", "no"])]
    pub skip_acl: String,

    /// Confirms `skip-acl=yes`: anyone who reaches the client port may then read and change
    /// every node.
    #[arg(long, env = "ZOOID_SKIP_ACL_CONFIRMED", default_value_t = false, action = clap::ArgAction::Set)]
    pub skip_acl_confirmed: bool,

    /// ZooKeeper's super user, as `zookeeper.DigestAuthenticationProvider.superDigest` gives
    /// it: `user:base64(SHA-1(user:password))`. A client that authenticates (digest) with that
    /// user and password passes every ACL check.
    #[arg(long, env = "ZOOID_SUPER_DIGEST", hide_env_values = true)]
    pub super_digest: Option<String>,

    /// A file holding the admin token (a mounted Kubernetes secret, say); `admin-token` in
    /// the data dir if not given. Read at each protected request, so a token can be added,
    /// changed or removed without a restart.
    #[arg(long, env = "ZOOID_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The largest backup the admin API's `restore` takes, in bytes of its state (the upload
    /// and the state it holds, uncompressed, are both held to it). Every member keeps the
    /// state staged in memory until the swap, so this bounds what a restore can cost.
    #[arg(long, env = "ZOOID_MAX_RESTORE_BYTES", default_value_t = 1 << 30)]
    pub max_restore_bytes: u64,

    /// Serve the admin API over HTTPS only (ZooKeeper's `admin.forceHttps`), with the
    /// members' TLS material (`ssl-quorum-key-store`, as ZooKeeper's AdminServer), read again
    /// when it changes on disk.
    #[arg(long, env = "ZOOID_ADMIN_FORCE_HTTPS", default_value_t = false, action = clap::ArgAction::Set)]
    pub admin_force_https: bool,

    /// Take HTTPS and plain HTTP on the admin port (ZooKeeper's `admin.portUnification`): a
    /// connection that opens with a TLS handshake is served inside TLS.
    #[arg(long, env = "ZOOID_ADMIN_PORT_UNIFICATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub admin_port_unification: bool,

    /// HTTPS clients of the admin API must show a certificate that `ssl-quorum-trust-store`
    /// vouches for (ZooKeeper's `admin.needClientAuth`); without it one is checked if shown.
    /// A certificate whose subject is `x509-super-user` is an admin identity.
    #[arg(long, env = "ZOOID_ADMIN_NEED_CLIENT_AUTH", default_value_t = false, action = clap::ArgAction::Set)]
    pub admin_need_client_auth: bool,

    /// Serve the admin HTTP API (ZooKeeper's `admin.enableServer`).
    #[arg(long, env = "ZOOID_ADMIN_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub admin_enabled: bool,

    /// Log lines as `text` or `json` (one object per line, for log collectors).
    #[arg(long, env = "ZOOID_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Export traces over OTLP/HTTP to this collector (a base URL such as
    /// `http://otel-collector:4318`, as `OTEL_EXPORTER_OTLP_ENDPOINT`, which is honoured too).
    /// Off when neither is set.
    #[arg(long, env = "ZOOID_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// The members, when the configuration file describes an ensemble.
    #[arg(skip)]
    pub ensemble: Option<Ensemble>,

    /// ZooKeeper keys of the configuration file that Zooid does not use, and keys neither
    /// knows (logged once at start).
    #[arg(skip)]
    pub unused_keys: Vec<String>,
    #[arg(skip)]
    pub unknown_keys: Vec<String>,
}

/// Why the admin token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("admin-token-file {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin-token-file {} is empty", .0.display())]
    Empty(PathBuf),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// An ensemble as a zoo.cfg describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    /// This server's id (`myid`).
    pub my_id: u64,
    pub members: Vec<Member>,
    pub reconfig_enabled: bool,
    /// ZooKeeper's `initLimit`, in ticks: how long a server may take to catch up with the
    /// leader when it joins. A participant added by reconfig has that long before the change
    /// is given up (NEWCONFIGNOQUORUM).
    pub init_limit: u32,
    /// ZooKeeper's `syncLimit`, in ticks: how long members may go without hearing from each
    /// other (see `zooid_replication::Timing`).
    pub sync_limit: u32,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Invalid(#[from] InvalidConfig),
    #[error(transparent)]
    File(#[from] ZooCfgError),
    #[error("{path}:{line}: {key}: {reason}")]
    Value {
        path: PathBuf,
        line: usize,
        key: String,
        reason: String,
    },
    #[error(transparent)]
    Flags(#[from] clap::Error),
}

/// The smallest `max-frame-bytes` taken: a frame must hold a request's header and a path.
const MIN_FRAME_BYTES: usize = 1024;

/// Settings that are each valid but do not go together, found by [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidConfig {
    #[error("{key} must be positive")]
    NotPositive { key: &'static str },
    #[error("min-session-timeout-ms ({min}) is above max-session-timeout-ms ({max})")]
    SessionTimeouts { min: u32, max: u32 },
    #[error("max-frame-bytes ({0}) must be at least 1024")]
    FrameTooSmall(usize),
    #[error("max-reply-bytes ({reply}) is below max-frame-bytes ({frame})")]
    ReplyBelowFrame { reply: usize, frame: usize },
    #[error("unknown four-letter word {0:?} in four-letter-words")]
    UnknownWord(String),
    #[error(
        "super-digest (DigestAuthenticationProvider.superDigest) must be user:base64-of-sha1, \
         as `zooctl digest user:password` prints it"
    )]
    SuperDigest,
    #[error(
        "skipACL=yes (skip-acl) turns every ACL check off: anyone who reaches the client port \
         could read and change every node; set skipACLConfirmed=true (skip-acl-confirmed) \
         too if that is meant"
    )]
    SkipAclUnconfirmed,
    #[error(
        "secure-client-addr (secureClientPort) and client-port-unification \
         (client.portUnification) need ssl-key-store (ssl.keyStore.location): the certificate \
         chain and key TLS presents"
    )]
    NoKeyStore,
    #[error(
        "ssl-client-auth (ssl.clientAuth) asks for client certificates, which needs \
         ssl-trust-store (ssl.trustStore.location); or set it to none"
    )]
    NoTrustStore,
    #[error(
        "ssl-quorum (sslQuorum) needs ssl-quorum-key-store (ssl.quorum.keyStore.location) and \
         ssl-quorum-trust-store (ssl.quorum.trustStore.location): members show their \
         certificates to each other and check them"
    )]
    NoQuorumStores,
    #[error(
        "admin-force-https (admin.forceHttps) and admin-port-unification \
         (admin.portUnification) need ssl-quorum-key-store (ssl.quorum.keyStore.location): \
         the admin port's HTTPS shows the members' certificate, as ZooKeeper's AdminServer"
    )]
    NoAdminKeyStore,
    #[error(
        "admin-need-client-auth (admin.needClientAuth) needs HTTPS on the admin port \
         (admin.forceHttps or admin.portUnification) and ssl-quorum-trust-store \
         (ssl.quorum.trustStore.location) to check the certificates"
    )]
    AdminClientAuth,
}

/// The headings `zooid --help` groups the flags under, each flag named by its id.
const HEADINGS: &[(&str, &[&str])] = &[
    (
        "Server",
        &[
            "config",
            "client_addr",
            "data_dir",
            "data_log_dir",
            "tick_time_ms",
            "min_session_timeout_ms",
            "max_session_timeout_ms",
            "extended_types",
            "four_letter_words",
            "container_check_ms",
            "shutdown_timeout_ms",
        ],
    ),
    (
        "Ensemble and durability",
        &[
            "peer_listen",
            "read_only_mode",
            "group_commit_wait_us",
            "snapshot_every",
            "snapshot_every_bytes",
        ],
    ),
    (
        "Limits (docs/limits.md)",
        &[
            "max_client_cnxns",
            "max_cnxns",
            "handshake_timeout_ms",
            "max_conn_outstanding",
            "global_outstanding_limit",
            "max_conn_outbound_bytes",
            "slow_client_timeout_ms",
            "max_reply_bytes",
            "max_frame_bytes",
        ],
    ),
    (
        "Security",
        &[
            "secure_client_addr",
            "client_port_unification",
            "ssl_key_store",
            "ssl_key_store_password",
            "ssl_trust_store",
            "ssl_trust_store_password",
            "ssl_client_auth",
            "ssl_quorum",
            "ssl_quorum_key_store",
            "ssl_quorum_key_store_password",
            "ssl_quorum_trust_store",
            "ssl_quorum_trust_store_password",
            "ssl_quorum_hostname_verification",
            "x509_super_user",
            "sasl_jaas_file",
            "sasl_super_user",
            "super_digest",
            "enforce_quota",
            "skip_acl",
            "skip_acl_confirmed",
        ],
    ),
    (
        "Admin API",
        &[
            "admin_addr",
            "admin_enabled",
            "admin_force_https",
            "admin_port_unification",
            "admin_need_client_auth",
            "admin_token",
            "admin_token_file",
            "max_restore_bytes",
        ],
    ),
    ("Observability", &["log_format", "otlp_endpoint"]),
];

/// zoo.cfg keys that set a flag but are read by hand, not through [`zoocfg::KEYS`].
const STRUCTURAL_KEYS: &[(&str, &str)] = &[
    ("clientPort, clientPortAddress", "client-addr"),
    (
        "secureClientPort, secureClientPortAddress",
        "secure-client-addr",
    ),
    ("admin.serverAddress, admin.serverPort", "admin-addr"),
];

/// The command line `zooid` parses: the derived flags, grouped under [`HEADINGS`], each
/// naming the zoo.cfg keys that set it.
fn cli() -> clap::Command {
    let mut cmd = Config::command();
    for (heading, ids) in HEADINGS {
        for id in *ids {
            cmd = cmd.mut_arg(*id, |a| a.help_heading(*heading));
        }
    }
    let keys = zoocfg::KEYS.iter().chain(STRUCTURAL_KEYS);
    let mut by_flag: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, flag) in keys {
        match by_flag.iter_mut().find(|(f, _)| f == flag) {
            Some((_, ks)) => ks.push(key),
            None => by_flag.push((flag, vec![key])),
        }
    }
    for (flag, ks) in by_flag {
        cmd = cmd.mut_arg(flag.replace('-', "_"), |a| {
            let help = a.get_help().map(ToString::to_string).unwrap_or_default();
            a.help(format!("{help} [zoo.cfg: {}]", ks.join(", ")))
        });
    }
    cmd
}

impl Config {
    /// Defaults, as if no flag were given (used by tests and embedders).
    pub fn defaults() -> Self {
        Config::parse_from(["zooid"])
    }

    /// Reads the command line (`args`, program name first), the environment, and the zoo.cfg
    /// named by `--config`, in that order of precedence.
    pub fn load<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = cli().try_get_matches_from(&args)?;
        let first = Config::from_arg_matches(&matches)?;
        let Some(path) = first.config.clone() else {
            return Ok(first);
        };
        let file = zoocfg::load(&path)?;
        // A setting given as a flag or a variable wins over the file.
        let from_file = |id: &str| {
            !matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let mut extra: Vec<String> = Vec::new();
        for (flag, (value, line)) in &file.flags {
            if !from_file(&flag.replace('-', "_")) {
                continue;
            }
            let arg = format!("--{flag}={value}");
            // Checked one by one, so that a bad value is reported with its line.
            if let Err(e) = Config::command().try_get_matches_from(["zooid", arg.as_str()]) {
                let key = zoocfg::KEYS
                    .iter()
                    .find(|(_, f)| f == flag)
                    .map_or(*flag, |(k, _)| k);
                return Err(ConfigError::Value {
                    path: path.clone(),
                    line: *line,
                    key: key.to_string(),
                    reason: first_line(&e.to_string()),
                });
            }
            extra.push(arg);
        }
        let data_dir = match file.flags.get("data-dir") {
            Some((d, _)) if from_file("data_dir") => PathBuf::from(d),
            _ => first.data_dir.clone(),
        };
        let ensemble =
            if file.members.len() > 1 || !file.standalone_enabled {
                let my_id = zoocfg::read_myid(&data_dir)?;
                let me = file.members.iter().find(|m| m.id == my_id).ok_or_else(|| {
                    ZooCfgError::File {
                        path: path.clone(),
                        reason: format!(
                            "myid in {} is {my_id}, but there is no server.{my_id} line",
                            data_dir.display()
                        ),
                    }
                })?;
                Some((me.client.clone(), my_id))
            } else {
                None
            };
        // The client address: this member's `;[host:]port`, else clientPort and
        // clientPortAddress; ZooKeeper listens on every interface when no host is given.
        if from_file("client_addr") {
            let own = ensemble.as_ref().and_then(|(c, _)| c.clone());
            let (host, port) = match own {
                Some((host, port)) => (host.or(file.client_port_address.clone()), Some(port)),
                None => (file.client_port_address.clone(), file.client_port),
            };
            if let Some(port) = port {
                extra.push(format!("--client-addr={}", listen_arg(host, port)));
            }
        }
        // The TLS client address: secureClientPort and secureClientPortAddress (every
        // interface when no host is given, as ZooKeeper).
        if from_file("secure_client_addr") {
            if let Some(port) = file.secure_client_port {
                let host = file.secure_client_port_address.clone();
                extra.push(format!("--secure-client-addr={}", listen_arg(host, port)));
            }
        }
        // The admin address: admin.serverAddress and admin.serverPort, ZooKeeper's defaults
        // (every interface, port 8080) for the one not given.
        if from_file("admin_addr") && (file.admin_address.is_some() || file.admin_port.is_some()) {
            let (host, port) = (file.admin_address.clone(), file.admin_port.unwrap_or(8080));
            extra.push(format!("--admin-addr={}", listen_arg(host, port)));
        }
        args.extend(extra.into_iter().map(OsString::from));
        let matches = Config::command().try_get_matches_from(&args)?;
        let mut config = Config::from_arg_matches(&matches)?;
        config.ensemble = ensemble.map(|(_, my_id)| Ensemble {
            my_id,
            members: file.members.clone(),
            reconfig_enabled: file.reconfig_enabled,
            // ZooKeeper's sample zoo.cfg value.
            init_limit: file.init_limit.unwrap_or(10),
            sync_limit: file.sync_limit.unwrap_or(5),
        });
        config.unused_keys = file.unused.clone();
        config.unknown_keys = file.unknown.clone();
        // A single server has nobody to catch up with.
        if file.init_limit.is_some() && config.ensemble.is_none() {
            config.unused_keys.push("initLimit".into());
        }
        // A single server has nobody to wait for.
        if file.sync_limit.is_some() && config.ensemble.is_none() {
            config.unused_keys.push("syncLimit".into());
        }
        Ok(config)
    }

    pub fn min_session_timeout(&self) -> u32 {
        self.min_session_timeout_ms.unwrap_or(2 * self.tick_time_ms)
    }

    pub fn max_session_timeout(&self) -> u32 {
        self.max_session_timeout_ms
            .unwrap_or(20 * self.tick_time_ms)
    }

    /// How often session deadlines are checked, and their grain: half a tick (at least 10 ms),
    /// so a session expires at most half a tick after its timeout.
    pub fn expiry_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis((self.tick_time_ms as u64 / 2).max(10))
    }

    /// Whether ACL checks are off (`skipACL=yes`, confirmed).
    pub fn skip_acl(&self) -> bool {
        self.skip_acl == "yes"
    }

    /// Checks relations between settings once, at start.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let positive = |key: &'static str, value: usize| {
            if value == 0 {
                Err(InvalidConfig::NotPositive { key })
            } else {
                Ok(())
            }
        };
        positive("tick-time-ms", self.tick_time_ms as usize)?;
        if self.min_session_timeout() > self.max_session_timeout() {
            return Err(InvalidConfig::SessionTimeouts {
                min: self.min_session_timeout(),
                max: self.max_session_timeout(),
            });
        }
        positive("snapshot-every", self.snapshot_every as usize)?;
        if self.max_frame_bytes < MIN_FRAME_BYTES {
            return Err(InvalidConfig::FrameTooSmall(self.max_frame_bytes));
        }
        positive("max-conn-outstanding", self.max_conn_outstanding)?;
        positive("global-outstanding-limit", self.global_outstanding_limit)?;
        positive("max-conn-outbound-bytes", self.max_conn_outbound_bytes)?;
        if self.max_reply_bytes < self.max_frame_bytes {
            // A node's data can be as large as a request frame; its getData must fit.
            return Err(InvalidConfig::ReplyBelowFrame {
                reply: self.max_reply_bytes,
                frame: self.max_frame_bytes,
            });
        }
        if self.skip_acl() && !self.skip_acl_confirmed {
            return Err(InvalidConfig::SkipAclUnconfirmed);
        }
        let tls = self.secure_client_addr.is_some() || self.client_port_unification;
        if tls && self.ssl_key_store.is_none() {
            return Err(InvalidConfig::NoKeyStore);
        }
        if self.ssl_client_auth != "none" && tls && self.ssl_trust_store.is_none() {
            return Err(InvalidConfig::NoTrustStore);
        }
        if self.ssl_quorum
            && (self.ssl_quorum_key_store.is_none() || self.ssl_quorum_trust_store.is_none())
        {
            return Err(InvalidConfig::NoQuorumStores);
        }
        let https = self.admin_force_https || self.admin_port_unification;
        if https && self.ssl_quorum_key_store.is_none() {
            return Err(InvalidConfig::NoAdminKeyStore);
        }
        if self.admin_need_client_auth && (!https || self.ssl_quorum_trust_store.is_none()) {
            return Err(InvalidConfig::AdminClientAuth);
        }
        if let Some(d) = &self.super_digest {
            // A base64 SHA-1 is 28 characters ending in `=`.
            let well_formed = d.split_once(':').is_some_and(|(user, hash)| {
                !user.is_empty() && hash.len() == 28 && hash.ends_with('=')
            });
            if !well_formed {
                return Err(InvalidConfig::SuperDigest);
            }
        }
        for w in self.four_letter_words.split(',').map(str::trim) {
            if !w.is_empty() && w != "*" && !FOUR_LETTER_WORDS.contains(&w) {
                return Err(InvalidConfig::UnknownWord(w.to_string()));
            }
        }
        Ok(())
    }

    /// Where the admin token is read from when neither the flag nor the variable gives it.
    pub fn admin_token_path(&self) -> PathBuf {
        self.admin_token_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin-token"))
    }

    /// The admin token, from the flag or variable, else the file.
    /// A file that does not exist means no token (the protected commands are refused).
    pub fn admin_token(&self) -> Result<Option<String>, AdminTokenError> {
        if let Some(t) = self.admin_token.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(t.clone()));
        }
        let path = self.admin_token_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(AdminTokenError::Read { path, source }),
        };
        let token = text.trim();
        if token.is_empty() {
            return Err(AdminTokenError::Empty(path));
        }
        Ok(Some(token.to_string()))
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn slow_client_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_client_timeout_ms)
    }

    /// Outbound bytes at which a connection is closed rather than queued further.
    pub fn outbound_hard_limit(&self) -> usize {
        self.max_conn_outbound_bytes
            .saturating_add(self.max_reply_bytes)
    }

    /// Whether a four-letter word is on the allow-list.
    pub fn allows_word(&self, word: &str) -> bool {
        self.four_letter_words
            .split(',')
            .map(str::trim)
            .any(|w| w == "*" || w == word)
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addr_takes_a_port_an_address_or_a_host_name() {
        assert_eq!(parse_listen_addr("2181"), Ok(([127, 0, 0, 1], 2181).into()));
        assert_eq!(
            parse_listen_addr("0.0.0.0:2182"),
            Ok(([0, 0, 0, 0], 2182).into())
        );
        assert_eq!(parse_listen_addr("[::1]:2183").map(|a| a.port()), Ok(2183));
        let named = parse_listen_addr("localhost:2184").expect("localhost resolves");
        assert!(named.ip().is_loopback() && named.port() == 2184);
        let err = parse_listen_addr("nowhere").expect_err("no port");
        assert!(err.contains("nowhere"), "{err}");
        assert!(parse_listen_addr("127.0.0.1:99999").is_err());
    }

    #[test]
    fn every_flag_has_a_heading_and_its_zoo_cfg_keys() {
        let cmd = cli();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            assert!(arg.get_help_heading().is_some(), "--{id} has no heading");
        }
        let help = cmd
            .get_arguments()
            .find(|a| a.get_id() == "tick_time_ms")
            .and_then(|a| a.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(help.ends_with("[zoo.cfg: tickTime]"), "{help}");
    }

    #[test]
    fn defaults_validate_and_limits_must_be_positive() {
        let mut c = Config::defaults();
        assert_eq!(c.validate(), Ok(()));
        c.max_conn_outstanding = 0;
        assert_eq!(
            c.validate(),
            Err(InvalidConfig::NotPositive {
                key: "max-conn-outstanding"
            })
        );
        c.max_conn_outstanding = 1;
        c.four_letter_words = "ruok,oops".into();
        assert_eq!(c.validate(), Err(InvalidConfig::UnknownWord("oops".into())));
    }

    #[test]
    fn security_keys_are_read_from_zoo_cfg_and_the_super_digest_must_be_a_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        let digest = zooid_proto::Id::digest(b"super:pw").id;
        std::fs::write(
            &cfg,
            format!("DigestAuthenticationProvider.superDigest={digest}\nenforceQuota=true\n"),
        )
        .unwrap();
        let c = Config::load(["zooid", "--config", cfg.to_str().unwrap()]).unwrap();
        assert_eq!(c.super_digest.as_deref(), Some(digest.as_str()));
        assert!(c.enforce_quota);
        assert_eq!(c.validate(), Ok(()));
        let mut c = Config::defaults();
        c.skip_acl = "yes".into();
        assert_eq!(c.validate(), Err(InvalidConfig::SkipAclUnconfirmed));
        c.skip_acl_confirmed = true;
        assert_eq!(c.validate(), Ok(()));
        assert!(c.skip_acl());
        for bad in [
            "super",
            "super:pw",
            ":Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXU=",
            "super:abc=",
        ] {
            let mut c = Config::defaults();
            c.super_digest = Some(bad.into());
            assert_eq!(c.validate(), Err(InvalidConfig::SuperDigest), "{bad}");
        }
    }
}
