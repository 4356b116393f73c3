//! zooctl: talk to Zooid (or any ZooKeeper-compatible server) from the command line.
//!
//! `Cli` below is the whole command line; `commands.rs` runs the everyday commands over
//! `conn.rs` (one session, a connection string with a chroot), `bench.rs` is the load
//! generator, `backup.rs` the admin API's snapshot and restore, `status.rs` the per-server
//! table.

mod acl;
mod backup;
mod bench;
mod commands;
mod conn;
mod discovery;
mod gaps;
mod scale;
mod status;
mod tls;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "zooctl",
    version,
    about = "Command line for Zooid and ZooKeeper-compatible servers"
)]
struct Cli {
    /// Servers, as a ZooKeeper connection string: host:port[,host:port...][/chroot], given
    /// before the command (as zkCli's -server). Commands use the first that takes a session
    /// (paths are then under the chroot); `status` and `word` ask each; bench spreads its
    /// sessions over all of them.
    #[arg(long, short, env = "ZOOCTL_SERVER", default_value = "127.0.0.1:2181")]
    server: String,
    /// `user:password` to authenticate with (digest) before the command, as zkCli's
    /// `addauth digest`: nodes whose ACL names that user, or anything for the super user
    /// (whom ZooKeeper's reconfig, `members add|remove|set`, asks for).
    #[arg(long, env = "ZOOCTL_AUTH", hide_env_values = true)]
    auth: Option<String>,
    /// Connect with TLS (a server's `secureClientPort`), trusting the certificates in this
    /// PEM file.
    #[arg(long, env = "ZOOCTL_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// The client certificate chain and key (one PEM file) to show when the servers ask for
    /// one (`ssl.clientAuth`); with `--tls-ca`.
    #[arg(long, env = "ZOOCTL_TLS_IDENTITY", requires = "tls_ca")]
    tls_identity: Option<std::path::PathBuf>,
    /// The local address sessions connect from (an address of this host; the port is the
    /// system's choice). A load generator holding tens of thousands of sessions to a few
    /// servers spreads them over loopback addresses so that each connect finds a free port
    /// at once.
    #[arg(long, env = "ZOOCTL_SOURCE_ADDRESS")]
    source_address: Option<std::net::IpAddr>,
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
    /// Create a node: persistent unless --ephemeral, --container or --ttl; --sequential
    /// appends a counter.
    Create {
        path: String,
        #[arg(default_value = "")]
        data: String,
        /// Deleted when this session ends (that is, when zooctl exits).
        #[arg(long, short)]
        ephemeral: bool,
        /// Appends a counter to the name (zkCli's `create -s`).
        #[arg(long, short)]
        sequential: bool,
        /// Deleted by the server once its last child is gone.
        #[arg(long, short, conflicts_with_all = ["ephemeral", "ttl"])]
        container: bool,
        /// Deleted by the server once unchanged and childless for this many milliseconds.
        #[arg(long, short, conflicts_with = "ephemeral")]
        ttl: Option<i64>,
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
    /// Delete a node and every node below it.
    Deleteall { path: String },
    /// Watch a node and print its events as they happen (and "Watching <path>" once the
    /// watch is set), until interrupted or --count events.
    Watch {
        path: String,
        /// The whole subtree, not only the node and its children.
        #[arg(long)]
        recursive: bool,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// A node's ACL: get, or set (`scheme:id:perms`, perms from `cdrwa`).
    Acl {
        #[command(subcommand)]
        cmd: AclCmd,
    },
    /// Each server of the connection string: role, zxid, lag, sessions, connections.
    Status,
    /// Backups through a server's admin API.
    Snapshot {
        #[command(subcommand)]
        cmd: SnapshotCmd,
    },
    /// Print the nodes below a path, one per line.
    Tree {
        #[arg(default_value = "/")]
        path: String,
    },
    /// Send a four-letter word (ruok, srvr, mntr, ...) and print the answer.
    Word { word: String },
    /// Print the digest ZooKeeper's `digest` scheme makes of `user:password`: the id for a
    /// digest ACL entry, or the super user's `DigestAuthenticationProvider.superDigest`.
    Digest { user_password: String },
    /// Keep an ephemeral node `<service>/<name>` holding this instance's address while
    /// running (a discovery sidecar): re-registered after a session expiry, removed on
    /// SIGTERM.
    Register(discovery::RegisterArgs),
    /// Print a service's instances (`name address` per line); with --watch, the whole set
    /// as a JSON object per line each time it changes.
    Discover(discovery::DiscoverArgs),
    /// Load generator: ops/s and latency percentiles.
    Bench(bench::BenchArgs),
    /// Scale benchmark, registering half: sessions each holding an ephemeral node, kept alive
    /// as ZooKeeper's clients keep theirs, until killed (scripts/bench-scale.sh).
    ScaleRegister(scale::RegisterArgs),
    /// Scale benchmark, watching half: watchers x nodes data watches, then one setData per
    /// node, timed (scripts/bench-scale.sh).
    ScaleWatch(scale::WatchArgs),
    /// Writers that keep writing through faults, resuming their sessions elsewhere; prints
    /// every stretch without an acknowledgement (scripts/bench-faults.sh).
    WriteGaps(gaps::GapArgs),
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
pub enum AclCmd {
    /// Print the ACL, one `scheme:id:perms` per line.
    Get { path: String },
    /// Replace the ACL (any version unless --version).
    Set {
        path: String,
        /// `world:anyone:cdrwa`, `digest:user:base64hash:cdrwa`, `ip:10.0.0.0/8:r`, ...
        #[arg(required = true)]
        acl: Vec<String>,
        #[arg(long, default_value_t = -1)]
        version: i32,
    },
}

#[derive(Subcommand)]
pub enum SnapshotCmd {
    /// Save a snapshot of everything the server has applied (its `snapshot` admin command).
    Save {
        /// Where to write it (written whole, then renamed into place).
        file: std::path::PathBuf,
        /// `zooid` (a backup `snapshot restore` takes), or `zookeeper`: Apache ZooKeeper's
        /// snapshot format, which a ZooKeeper server starts from as
        /// `version-2/snapshot.<zxid in hex>` of its data dir.
        #[arg(long, value_enum, default_value_t = backup::Format::Zooid)]
        format: backup::Format,
        /// The server's admin API (admin.serverAddress:admin.serverPort).
        #[arg(long, default_value = "127.0.0.1:8080")]
        admin: String,
        /// A file holding the admin token; or ZOOCTL_ADMIN_TOKEN.
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
    },
    /// Replace the whole state of the server's ensemble by a saved snapshot (its `restore`
    /// admin command): every member at once; clients are let go and reconnect.
    Restore {
        /// A file `snapshot save` wrote, or an Apache ZooKeeper snapshot (`snapshot.<zxid>`).
        file: std::path::PathBuf,
        /// The server's admin API (admin.serverAddress:admin.serverPort).
        #[arg(long, default_value = "127.0.0.1:8080")]
        admin: String,
        /// A file holding the admin token; or ZOOCTL_ADMIN_TOKEN.
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
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

/// Exit codes: 0 done, 1 the command failed (the message says why), 2 bad usage (clap's).
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(ca) = &cli.tls_ca {
        if let Err(e) = tls::configure(ca, cli.tls_identity.as_deref()) {
            eprintln!("zooctl: TLS: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if let Some(ip) = cli.source_address {
        conn::connect_from(ip);
    }
    let result = match cli.command {
        Cmd::Bench(args) => bench::run(&cli.server, args),
        Cmd::ScaleRegister(args) => scale::register(&cli.server, args),
        Cmd::ScaleWatch(args) => scale::watch(&cli.server, args),
        Cmd::WriteGaps(args) => gaps::run(&cli.server, args),
        Cmd::Status => status::run(&cli.server),
        Cmd::Register(args) => discovery::register(&cli.server, cli.auth.as_deref(), args),
        Cmd::Discover(args) => discovery::discover(&cli.server, cli.auth.as_deref(), args),
        Cmd::Digest { user_password } => {
            if user_password.contains(':') {
                println!("{}", zooid_proto::Id::digest(user_password.as_bytes()).id);
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "give user:password (one colon between them)"
                ))
            }
        }
        Cmd::Snapshot {
            cmd:
                SnapshotCmd::Save {
                    file,
                    format,
                    admin,
                    token_file,
                },
        } => backup::save(&admin, token_file.as_deref(), &file, format),
        Cmd::Snapshot {
            cmd:
                SnapshotCmd::Restore {
                    file,
                    admin,
                    token_file,
                },
        } => backup::restore(&admin, token_file.as_deref(), &file),
        other => commands::run(&cli.server, cli.auth.as_deref(), other),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with its causes; never a backtrace.
            eprintln!("zooctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
