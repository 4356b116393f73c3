//! The AdminServer's commands, as ZooKeeper names and shapes them: each answers a JSON object
//! with `command` (its primary name), `error` (null when it ran) and its own fields. A
//! command is reached by any of its names (`srvr` or `server_stats`).

use crate::clock::now_ms;
use crate::config::Config;
use crate::observe::fourlw::VERSION;
use crate::observe::monitor::View;
use crate::state::State;
use serde_json::{json, Map, Value};
use std::time::Instant;

/// A command: its primary name, its other names, whether it needs a server that serves
/// (one cut off from its quorum answers the others only), and whether it reveals what
/// clients do (their addresses, sessions, the paths they watch or own): those answer only
/// an admin identity.
struct Command {
    names: &'static [&'static str],
    needs_serving: bool,
    reveals: bool,
}

const COMMANDS: &[Command] = &[
    cmd(&["ruok"], false, false),
    cmd(&["server_stats", "srvr"], true, false),
    cmd(&["stats", "stat"], true, true),
    cmd(&["monitor", "mntr"], false, false),
    cmd(&["configuration", "conf", "config"], false, false),
    cmd(&["connections", "cons"], true, true),
    cmd(&["dump"], true, true),
    cmd(&["environment", "env", "envi"], false, false),
    cmd(&["watch_summary", "wchs"], true, false),
    cmd(&["watches", "wchc"], true, true),
    cmd(&["watches_by_path", "wchp"], true, true),
    cmd(&["leader", "lead"], false, false),
    cmd(&["voting_view"], false, false),
    cmd(&["is_read_only", "isro"], false, false),
];

const fn cmd(names: &'static [&'static str], needs_serving: bool, reveals: bool) -> Command {
    Command {
        names,
        needs_serving,
        reveals,
    }
}

/// Whether the command named `name` reveals what clients do (see [`Command`]).
pub fn reveals(name: &str) -> bool {
    COMMANDS
        .iter()
        .any(|c| c.reveals && c.names.contains(&name))
}

/// Every command's primary name, for the listing at `/commands`.
pub fn primary_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.names[0])
}

/// Why a command gave no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("Unknown command: {0}")]
    Unknown(String),
    /// ZooKeeper's words for a server that is not in a quorum.
    #[error("This ZooKeeper instance is not currently serving requests")]
    NotServing,
}

/// Runs the command named `name`: `(primary name, fields)`.
pub fn run(
    name: &str,
    config: &Config,
    view: &View,
) -> Result<(&'static str, Map<String, Value>), CommandError> {
    let state = view.state;
    let c = COMMANDS
        .iter()
        .find(|c| c.names.contains(&name))
        .ok_or_else(|| CommandError::Unknown(name.to_string()))?;
    if c.needs_serving && !state.serving() && !state.read_only() {
        return Err(CommandError::NotServing);
    }
    let primary = c.names[0];
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    match primary {
        "ruok" => {}
        "server_stats" | "stats" => {
            put("version", json!(format!("{VERSION}, built on unknown")));
            put("read_only", json!(state.read_only()));
            put("server_stats", server_stats(config, view));
            put("node_count", json!(state.tree().node_count()));
            if primary == "stats" {
                put("connections", connections(state));
            }
        }
        "monitor" => {
            for (k, v) in crate::observe::monitor::values(view) {
                put(k, json!(v));
            }
        }
        "configuration" => configuration(config, view, &mut put),
        "connections" => {
            put("connections", connections(state));
            put("secure_connections", json!([]));
        }
        "dump" => {
            let (now, wall) = (Instant::now(), now_ms());
            let mut by_time = Map::new();
            for (at, sessions) in state.sessions().by_deadline() {
                let ms = wall + at.saturating_duration_since(now).as_millis() as i64;
                let ids: Vec<Value> = sessions.iter().map(|s| json!(s)).collect();
                by_time.insert(ms.to_string(), Value::Array(ids));
            }
            put("expiry_time_to_session_ids", Value::Object(by_time));
            let mut ephemerals = Map::new();
            for (id, _) in state.tree().sessions() {
                let paths = state.tree().ephemerals(id, "/");
                if !paths.is_empty() {
                    ephemerals.insert(id.to_string(), json!(paths));
                }
            }
            put("session_id_to_ephemeral_paths", Value::Object(ephemerals));
        }
        "environment" => {
            put(
                "zookeeper.version",
                json!(format!("{VERSION}, built on unknown")),
            );
            put("os.name", json!(std::env::consts::OS));
            put("os.arch", json!(std::env::consts::ARCH));
            put("zooid.version", json!(env!("CARGO_PKG_VERSION")));
            if let Ok(dir) = std::env::current_dir() {
                put("user.dir", json!(dir.display().to_string()));
            }
        }
        "watch_summary" => {
            let w = state.watches();
            put("num_connections", json!(w.conn_count()));
            put("num_paths", json!(w.path_count()));
            put("num_total_watches", json!(w.count()));
        }
        "watches" => {
            let mut by_session = Map::new();
            for (conn, paths) in state.watches().paths_by_conn() {
                let session = state.conns().get(conn).map_or(0, |h| h.session);
                by_session.insert(session.to_string(), json!(paths));
            }
            put("session_id_to_watched_paths", Value::Object(by_session));
        }
        "watches_by_path" => {
            let mut by_path: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
            for (conn, paths) in state.watches().paths_by_conn() {
                let session = state.conns().get(conn).map_or(0, |h| h.session);
                for p in paths {
                    by_path.entry(p).or_default().push(session);
                }
            }
            put("path_to_session_ids", json!(by_path));
        }
        "leader" => match view.replicated().map(|c| c.members()) {
            Some(members) => {
                let leader = view.consensus.map(|c| c.figures()).and_then(|f| f.leader);
                put("is_leader", json!(state.leads()));
                put("leader_id", json!(leader.map_or(-1, |l| l as i64)));
                let addr = leader
                    .and_then(|l| members.get(l))
                    .map(|m| m.peer_addr().to_string())
                    .unwrap_or_default();
                put("leader_ip", json!(addr));
            }
            None => put("error", json!("server is not initialized")),
        },
        "voting_view" => {
            let mut voters = Map::new();
            let members = view.replicated().map(|c| c.members());
            for m in members.map(|m| m.members).unwrap_or_default() {
                if m.voter {
                    voters.insert(
                        m.id.to_string(),
                        json!(crate::state::membership::server_line(&m)),
                    );
                }
            }
            put("current_config", Value::Object(voters));
        }
        "is_read_only" => put("read_only", json!(state.read_only())),
        _ => unreachable!("every command in COMMANDS is run above"),
    }
    Ok((primary, out))
}

/// ZooKeeper's `ServerStats` object, with the figures Zooid has.
fn server_stats(config: &Config, view: &View) -> Value {
    let state = view.state;
    let (min, avg, max) = crate::observe::monitor::latency(view);
    let log_dir = config.data_log_dir.as_ref().unwrap_or(&config.data_dir);
    json!({
        "packets_sent": state.conns().packets_sent(),
        "packets_received": state.conns().packets_received(),
        "max_latency": max,
        "min_latency": min,
        "avg_latency": avg,
        "outstanding_requests": state.outstanding(),
        "server_state": state.mode(),
        "last_processed_zxid": state.last_zxid(),
        "num_alive_client_connections": state.conns().len(),
        "data_dir_size": crate::observe::metrics::dir_size(&config.data_dir),
        "log_dir_size": crate::observe::metrics::dir_size(log_dir),
    })
}

fn connections(state: &State) -> Value {
    let mut conns: Vec<_> = state.conns().handles().collect();
    conns.sort_by_key(|h| h.connected_at);
    let now = (Instant::now(), now_ms());
    Value::Array(
        conns
            .into_iter()
            .map(|h| {
                let established = now.1 - now.0.duration_since(h.connected_at).as_millis() as i64;
                json!({
                    "remote_socket_address": h.remote.to_string(),
                    "session_id": format!("0x{:x}", h.session),
                    "outstanding_requests": h.pending_writes,
                    "packets_received": h.received,
                    "packets_sent": h.sent,
                    "established": established,
                    "read_only": h.read_only,
                })
            })
            .collect(),
    )
}

fn configuration(config: &Config, view: &View, put: &mut impl FnMut(&str, Value)) {
    let log_dir = config.data_log_dir.as_ref().unwrap_or(&config.data_dir);
    put("client_port", json!(config.client_addr.port()));
    put(
        "client_port_address",
        json!(config.client_addr.ip().to_string()),
    );
    put("data_dir", json!(config.data_dir.display().to_string()));
    put("data_log_dir", json!(log_dir.display().to_string()));
    put("tick_time", json!(config.tick_time_ms));
    put("max_client_cnxns", json!(config.max_client_cnxns));
    put("max_cnxns", json!(config.max_cnxns));
    put("min_session_timeout", json!(config.min_session_timeout()));
    put("max_session_timeout", json!(config.max_session_timeout()));
    put(
        "server_id",
        json!(config.ensemble.as_ref().map_or(0, |e| e.my_id)),
    );
    if let Some(members) = view.replicated().map(|c| c.members()) {
        put("config_version", json!(format!("{:x}", members.version)));
        let lines: Vec<String> = members
            .members
            .iter()
            .map(crate::state::membership::server_line)
            .collect();
        put("members", json!(lines));
    }
}
