//! Server settings. Every key is a command-line flag and an environment variable.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "zooid",
    version,
    about = "A ZooKeeper-compatible coordination server"
)]
pub struct Config {
    /// Address the client port listens on (loopback by default).
    #[arg(long, env = "ZOOID_CLIENT_ADDR", default_value = "127.0.0.1:2181")]
    pub client_addr: SocketAddr,

    /// Directory for the log and snapshots.
    #[arg(long, env = "ZOOID_DATA_DIR", default_value = "./zooid-data")]
    pub data_dir: PathBuf,

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
    #[arg(long, env = "ZOOID_4LW_WHITELIST", default_value = "ruok,srvr,mntr")]
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
}

impl Config {
    /// Defaults, as if no flag were given (used by tests and embedders).
    pub fn defaults() -> Self {
        Config::parse_from(["zooid"])
    }

    pub fn min_session_timeout(&self) -> u32 {
        self.min_session_timeout_ms.unwrap_or(2 * self.tick_time_ms)
    }

    pub fn max_session_timeout(&self) -> u32 {
        self.max_session_timeout_ms
            .unwrap_or(20 * self.tick_time_ms)
    }

    /// Checks relations between settings once, at start.
    pub fn validate(&self) -> Result<(), String> {
        if self.tick_time_ms == 0 {
            return Err("tick-time-ms must be positive".into());
        }
        if self.min_session_timeout() > self.max_session_timeout() {
            return Err(format!(
                "min-session-timeout-ms ({}) is above max-session-timeout-ms ({})",
                self.min_session_timeout(),
                self.max_session_timeout()
            ));
        }
        if self.snapshot_every == 0 {
            return Err("snapshot-every must be positive".into());
        }
        if self.max_frame_bytes < 1024 {
            return Err("max-frame-bytes must be at least 1024".into());
        }
        for w in self.four_letter_words.split(',').map(str::trim) {
            if !w.is_empty() && w != "*" && !crate::fourlw::WORDS.contains(&w) {
                return Err(format!(
                    "unknown four-letter word {w:?} in four-letter-words"
                ));
            }
        }
        Ok(())
    }

    /// Whether a four-letter word is on the allow-list.
    pub fn allows_word(&self, word: &str) -> bool {
        self.four_letter_words
            .split(',')
            .map(str::trim)
            .any(|w| w == "*" || w == word)
    }
}
