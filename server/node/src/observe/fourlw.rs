//! Four-letter words: plain-text admin commands sent as the first four bytes of a connection.

use crate::config::Config;
use crate::observe::monitor::View;
use std::fmt::Write;

use crate::config::FOUR_LETTER_WORDS as WORDS;

pub use crate::observe::monitor::VERSION;

/// Recognizes a four-letter word in the first four bytes of a connection.
pub fn recognize(first: &[u8]) -> Option<&'static str> {
    WORDS.iter().copied().find(|w| w.as_bytes() == first)
}

/// The text answer to `word`.
pub fn answer(word: &str, config: &Config, view: &View) -> String {
    let state = view.state;
    if !config.allows_word(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let mut out = String::new();
    if !state.serving()
        && !state.read_only()
        && matches!(word, "srvr" | "stat" | "mntr" | "cons" | "wchs")
    {
        // ZooKeeper's answer from a server that is not in a quorum.
        return "This ZooKeeper instance is not currently serving requests\n".into();
    }
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str(if state.read_only() { "ro" } else { "rw" }),
        "srvr" => server_stats(&mut out, view),
        "stat" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}, built on unknown");
            out.push_str("Clients:\n");
            connections(&mut out, state);
            out.push('\n');
            let mut rest = String::new();
            server_stats(&mut rest, view);
            // srvr's first line is the version, already written.
            out.push_str(rest.split_once('\n').map_or("", |(_, r)| r));
        }
        "cons" => {
            connections(&mut out, state);
            out.push('\n');
        }
        "mntr" => monitor(&mut out, view),
        "conf" => {
            let _ = writeln!(out, "clientPort={}", config.client_addr.port());
            let _ = writeln!(out, "clientPortAddress={}", config.client_addr.ip());
            let _ = writeln!(out, "dataDir={}", config.data_dir.display());
            let log_dir = config.data_log_dir.as_ref().unwrap_or(&config.data_dir);
            let _ = writeln!(out, "dataLogDir={}", log_dir.display());
            let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
            let _ = writeln!(out, "minSessionTimeout={}", config.min_session_timeout());
            let _ = writeln!(out, "maxSessionTimeout={}", config.max_session_timeout());
            let _ = writeln!(out, "maxClientCnxns={}", config.max_client_cnxns);
            match &config.ensemble {
                Some(e) => {
                    let _ = writeln!(out, "serverId={}", e.my_id);
                    // The replicated membership, as `/zookeeper/config` holds it (it moves
                    // with reconfig); the configured one until the first is applied.
                    let members = state
                        .tree()
                        .get("/zookeeper/config")
                        .and_then(|n| n.data.clone())
                        .filter(|d| !d.is_empty());
                    if let Some(text) = members {
                        let _ = writeln!(out, "{}", String::from_utf8_lossy(&text));
                        return out;
                    }
                    for m in &e.members {
                        let role = match m.role {
                            crate::config::zoocfg::Role::Participant => "participant",
                            crate::config::zoocfg::Role::Observer => "observer",
                        };
                        let _ = writeln!(
                            out,
                            "server.{}={}:{}:{}:{role}",
                            m.id, m.host, m.quorum_port, m.election_port
                        );
                    }
                }
                None => {
                    let _ = writeln!(out, "serverId=0");
                }
            }
        }
        "envi" => {
            out.push_str("Environment:\n");
            let _ = writeln!(out, "zookeeper.version={VERSION}, built on unknown");
            let _ = writeln!(out, "os.name={}", std::env::consts::OS);
            let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
            let _ = writeln!(out, "zooid.version={}", env!("CARGO_PKG_VERSION"));
        }
        "wchs" => {
            let w = state.watches();
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                w.conn_count(),
                w.path_count(),
                w.count()
            );
        }
        _ => {}
    }
    out
}

fn server_stats(out: &mut String, view: &View) {
    let state = view.state;
    let (min, avg, max) = crate::observe::monitor::latency(view);
    let _ = writeln!(out, "Zookeeper version: {VERSION}, built on unknown");
    let _ = writeln!(out, "Latency min/avg/max: {min}/{avg:.4}/{max}");
    let _ = writeln!(out, "Received: {}", state.conns().packets_received());
    let _ = writeln!(out, "Sent: {}", state.conns().packets_sent());
    let _ = writeln!(out, "Connections: {}", state.conns().len());
    let _ = writeln!(out, "Outstanding: {}", state.outstanding());
    let _ = writeln!(out, "Zxid: 0x{:x}", state.last_zxid());
    let _ = writeln!(out, "Mode: {}", state.mode());
    let _ = writeln!(out, "Node count: {}", state.tree().node_count());
}

fn connections(out: &mut String, state: &crate::state::State) {
    let mut conns: Vec<_> = state.conns().handles().collect();
    conns.sort_by_key(|h| h.connected_at);
    for h in conns {
        let _ = writeln!(
            out,
            " /{}[1](queued={},recved={},sent={},sid=0x{:x})",
            h.remote, h.pending_writes, h.received, h.sent, h.session
        );
    }
}

fn monitor(out: &mut String, view: &View) {
    for (k, v) in crate::observe::monitor::values(view) {
        let _ = writeln!(out, "zk_{k}\t{v}");
    }
}
