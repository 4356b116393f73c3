//! zooctl: talk to Zooid (or any ZooKeeper-compatible server) from the command line.

mod bench;
mod commands;
mod conn;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "zooctl",
    version,
    about = "Command line for Zooid and ZooKeeper-compatible servers"
)]
struct Cli {
    /// Servers, as a ZooKeeper connection string: host:port[,host:port...]. Commands use
    /// the first that takes a session; bench spreads its sessions over all of them.
    #[arg(
        long,
        short,
        env = "ZOOCTL_SERVER",
        default_value = "127.0.0.1:2181",
        global = true
    )]
    server: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the children of a node.
    Ls { path: String },
    /// Print a node's data.
    Get { path: String },
    /// Print a node's Stat.
    Stat { path: String },
    /// Create a node (persistent unless --ephemeral; --sequential appends a counter).
    Create {
        path: String,
        #[arg(default_value = "")]
        data: String,
        #[arg(long)]
        ephemeral: bool,
        #[arg(long)]
        sequential: bool,
    },
    /// Replace a node's data (any version unless --version).
    Set {
        path: String,
        data: String,
        #[arg(long, default_value_t = -1)]
        version: i32,
    },
    /// Delete a node (any version unless --version).
    Delete {
        path: String,
        #[arg(long, default_value_t = -1)]
        version: i32,
    },
    /// Print the nodes below a path, one per line.
    Tree {
        #[arg(default_value = "/")]
        path: String,
    },
    /// Send a four-letter word (ruok, srvr, mntr, ...) and print the answer.
    Word { word: String },
    /// Load generator: ops/s and latency percentiles.
    Bench(bench::BenchArgs),
    /// The ensemble's members (`/zookeeper/config`); add or remove some with a reconfig.
    Members {
        #[command(subcommand)]
        change: Option<MembersCmd>,
        /// Only if the membership is still at this version (hex, as `version=` prints it).
        #[arg(long, global = true)]
        from_version: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum MembersCmd {
    /// Print the members and the version (the default).
    Show,
    /// Add servers: `server.N=host:quorumPort:electionPort[:participant|observer];[host:]clientPort`.
    Add {
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Remove servers by id.
    Remove {
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// Replace the whole membership by these servers.
    Set {
        #[arg(required = true)]
        servers: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Bench(args) => bench::run(&cli.server, args),
        other => commands::run(&cli.server, other),
    }
}
