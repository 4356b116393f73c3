use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

/// mimalloc keeps freed memory for reuse: the write path's short-lived buffers then cost no
/// page faults, where the system allocator returned them to the kernel and zeroed new pages.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Duration;
use zooid_node::{Config, Server};

/// File descriptors asked for at start: each client connection holds one, and the usual soft
/// limit of 1024 would cap a server at about a thousand clients.
const WANTED_OPEN_FILES: u64 = 1 << 20;

/// How often freed memory is offered back to the kernel.
const MEMORY_PURGE_EVERY: Duration = Duration::from_secs(1);

/// mimalloc hands freed pages back to the kernel only once they have been free for its purge
/// delay, and only when some later allocation takes its slow path and notices. A server that
/// goes quiet after a restore or a large delete would otherwise keep that memory for good:
/// 100,000 nodes of 1 KiB restored at start held 563 MiB, and 289 MiB once purged.
fn purge_freed_memory_periodically() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("memory-purge".into())
        .spawn(|| loop {
            std::thread::sleep(MEMORY_PURGE_EVERY);
            collect_freed_memory();
        })
        .map(drop)
}

#[allow(unsafe_code)]
fn collect_freed_memory() {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time;
    // `false` asks only for the purges that are due, not for an eager sweep.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with its causes, never a backtrace: this is read by operators.
            eprintln!("zooid: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    // Every TLS user in the process (the OTLP exporter's HTTP client too) on the server's
    // cryptography, whichever providers a build links in.
    let _ = rustls::crypto::CryptoProvider::install_default((*zooid_node::tls::provider()).clone());
    let config = match Config::load(std::env::args_os()) {
        Ok(c) => c,
        // --help, --version and bad flags, as clap prints them.
        Err(zooid_node::config::ConfigError::Flags(e)) => e.exit(),
        Err(e) => anyhow::bail!("invalid configuration: {e}"),
    };
    if let Err(e) = config.validate() {
        anyhow::bail!("invalid configuration: {e}");
    }
    let telemetry = zooid_node::observe::telemetry::init(&config).context("starting telemetry")?;
    let result = serve(config).await;
    telemetry.shutdown();
    result
}

async fn serve(config: Config) -> anyhow::Result<()> {
    if !config.unused_keys.is_empty() || !config.unknown_keys.is_empty() {
        warn!(
            unused = config.unused_keys.join(", "),
            unknown = config.unknown_keys.join(", "),
            "keys of {} that Zooid does not use (unknown ones may be typos)",
            config
                .config
                .as_deref()
                .unwrap_or(std::path::Path::new("?"))
                .display()
        );
    }
    if config.skip_acl() {
        // Said at every start, at the loudest level: a server open to anyone.
        tracing::error!(
            "ACL CHECKS ARE OFF (skipACL=yes, confirmed): any client may read and change \
             every node"
        );
    }
    // A data dir taken over from a ZooKeeper server: its files are left alone.
    let zookeeper_data = config.data_dir.join("version-2");
    if zookeeper_data.is_dir() {
        warn!(
            "{} holds ZooKeeper's data: this server keeps its own beside it (log/, \
             snapshots/); restore ZooKeeper's newest snapshot.<zxid> through the admin API to \
             take its nodes and sessions (docs/ensembles.md, migrating)",
            zookeeper_data.display()
        );
    }
    match rlimit::increase_nofile_limit(WANTED_OPEN_FILES) {
        Ok(n) if n < 4096 => warn!("open files limited to {n}: at most about that many clients"),
        Ok(_) => {}
        Err(e) => warn!("could not raise the open files limit: {e}"),
    }
    purge_freed_memory_periodically().context("starting the memory purge thread")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let mut sigterm = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let server = Server::start(config.clone())
        .await
        .with_context(|| format!("starting zooid (data in {})", config.data_dir.display()))?;
    let signal = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
        reason = server.failed() => anyhow::bail!("zooid stopped serving: {reason}"),
    };
    let grace = Duration::from_millis(config.shutdown_timeout_ms);
    info!("{signal} received: stopping (writes in flight get up to {grace:?})");
    let stopped = server.shutdown(grace).await;
    if stopped.writes_abandoned > 0 {
        // Not acknowledged, so not lost: the clients see a connection loss and retry.
        warn!(
            "{} writes were still being ordered after {grace:?}; their clients got no answer",
            stopped.writes_abandoned
        );
    }
    info!(
        writes_finished = stopped.writes_in_flight - stopped.writes_abandoned,
        connections_closed = stopped.connections,
        "zooid stopped"
    );
    Ok(())
}
