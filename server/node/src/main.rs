use anyhow::Context;

/// mimalloc keeps freed memory for reuse: the write path's short-lived buffers then cost no
/// page faults, where the system allocator returned them to the kernel and zeroed new pages.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use zooid_server::{Config, Server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn,raft_log=warn,chunked_wal=warn".into()),
        )
        .init();
    let config = Config::parse();
    if let Err(e) = config.validate() {
        anyhow::bail!("invalid configuration: {e}");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let server = Server::start(config.clone())
        .await
        .with_context(|| format!("starting zooid (data in {})", config.data_dir.display()))?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        reason = server.failed() => anyhow::bail!("zooid stopped serving: {reason}"),
    }
    server.stop().await;
    Ok(())
}
