//! TLS material read again when its files change on disk: new connections get the new
//! material, established ones go on with theirs; new files that do not load leave the old
//! material in place and say why.

use super::store::{TlsError, TlsFiles};
use crate::observe::metrics::Metrics;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The TLS material in use, read again when its files change.
pub struct Reloading<T> {
    files: TlsFiles,
    build: Build<T>,
    /// The port's name in the log and the metric.
    port: &'static str,
    current: Mutex<Current<T>>,
}

type Build<T> = Box<dyn Fn(&TlsFiles) -> Result<T, TlsError> + Send + Sync>;

struct Current<T> {
    config: T,
    /// The files' modification times the configuration was read at (or refused at, so that
    /// a bad file is reported once, not at every connection).
    stamps: Vec<Option<SystemTime>>,
    looked: Instant,
}

/// How often the files are looked at, at most: once per second, on a new connection.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What a look at the files found.
#[derive(Debug)]
enum Reloaded {
    Unchanged,
    Loaded,
    /// The new files did not load; the old material stays.
    Refused(TlsError),
}

impl<T: Clone> Reloading<T> {
    /// Loads `port`'s files once with `build`; an error here stops the start.
    pub fn start(
        port: &'static str,
        files: TlsFiles,
        build: impl Fn(&TlsFiles) -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let stamps = files.stamps();
        let config = build(&files)?;
        Ok(Reloading {
            files,
            build: Box::new(build),
            port,
            current: Mutex::new(Current {
                config,
                stamps,
                looked: Instant::now(),
            }),
        })
    }

    /// The configuration for a new connection, having looked at the files if it is time
    /// (and said what was found, in the log and `zooid_tls_reloads_total`).
    pub fn config(&self, metrics: &Metrics) -> T {
        let (config, reloaded) = self.look();
        match reloaded {
            Reloaded::Unchanged => {}
            Reloaded::Loaded => {
                metrics.tls_reloaded(self.port, true);
                tracing::info!(
                    port = self.port,
                    "TLS key and trust stores read again: new connections use them"
                );
            }
            Reloaded::Refused(e) => {
                metrics.tls_reloaded(self.port, false);
                tracing::warn!(
                    port = self.port,
                    "TLS files changed but do not load: {e}; the previous material stays in use"
                );
            }
        }
        config
    }

    fn look(&self) -> (T, Reloaded) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.looked.elapsed() < LOOK_EVERY {
            return (cur.config.clone(), Reloaded::Unchanged);
        }
        cur.looked = Instant::now();
        let stamps = self.files.stamps();
        if stamps == cur.stamps {
            return (cur.config.clone(), Reloaded::Unchanged);
        }
        cur.stamps = stamps;
        match (self.build)(&self.files) {
            Ok(config) => {
                cur.config = config;
                (cur.config.clone(), Reloaded::Loaded)
            }
            Err(e) => (cur.config.clone(), Reloaded::Refused(e)),
        }
    }
}
