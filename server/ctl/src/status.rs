//! `zooctl status`: each server of the connection string, as its `srvr` and `mntr` say.

use crate::conn::four_letter;
use anyhow::{bail, Context};

/// What one server says of itself.
struct Server {
    addr: String,
    mode: String,
    zxid: i64,
    zooid: bool,
    sessions: String,
    connections: String,
}

async fn ask(addr: &str) -> anyhow::Result<Server> {
    let srvr = four_letter(addr, "srvr").await?;
    if srvr.contains("not currently serving") {
        bail!("not serving (cut off from its quorum)");
    }
    if srvr.contains("not in the whitelist") {
        bail!("srvr is not allowed (4lw.commands.whitelist)");
    }
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    let zxid = field(&srvr, "Zxid:")
        .and_then(|z| i64::from_str_radix(z.trim_start_matches("0x"), 16).ok())
        .with_context(|| format!("no Zxid in its srvr: {srvr:?}"))?;
    let mntr = four_letter(addr, "mntr").await.unwrap_or_default();
    let figure = |key: &str| field(&mntr, key).unwrap_or_else(|| "-".into());
    Ok(Server {
        addr: addr.to_string(),
        mode: field(&srvr, "Mode:").unwrap_or_else(|| "?".into()),
        zxid,
        zooid: srvr.contains("zooid"),
        sessions: figure("zk_global_sessions"),
        connections: field(&srvr, "Connections:").unwrap_or_else(|| "-".into()),
    })
}

/// How far `zxid` is behind `newest`: log entries for Zooid (a zxid is an entry's index and
/// a position in it), transactions for ZooKeeper within one epoch.
fn lag(newest: i64, zxid: i64, zooid: bool) -> String {
    if zooid {
        ((newest >> 16) - (zxid >> 16)).to_string()
    } else if newest >> 32 == zxid >> 32 {
        (newest - zxid).to_string()
    } else {
        "?".into()
    }
}

/// Prints one line per server; fails (after printing) if any is unreachable or not serving.
pub fn run(connect_string: &str) -> anyhow::Result<()> {
    let cs = crate::conn::ConnectString::parse(connect_string)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answers: Vec<(String, anyhow::Result<Server>)> = rt.block_on(async {
        let mut answers = Vec::new();
        for a in &cs.servers {
            answers.push((a.clone(), ask(a).await));
        }
        answers
    });
    let newest = answers
        .iter()
        .filter_map(|(_, s)| s.as_ref().ok().map(|s| s.zxid))
        .max()
        .unwrap_or(0);
    println!(
        "{:<24} {:<10} {:>14} {:>6} {:>9} {:>12}",
        "SERVER", "MODE", "ZXID", "LAG", "SESSIONS", "CONNECTIONS"
    );
    let mut down = Vec::new();
    for (addr, s) in &answers {
        match s {
            Ok(s) => println!(
                "{:<24} {:<10} {:>14} {:>6} {:>9} {:>12}",
                s.addr,
                s.mode,
                format!("0x{:x}", s.zxid),
                lag(newest, s.zxid, s.zooid),
                s.sessions,
                s.connections
            ),
            Err(e) => {
                println!("{addr:<24} {:<10} {e:#}", "down");
                down.push(addr.as_str());
            }
        }
    }
    if !down.is_empty() {
        bail!("not serving: {}", down.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_entries_for_zooid_and_transactions_for_zookeeper() {
        assert_eq!(lag(0xca_0003, 0xc8_0000, true), "2");
        assert_eq!(lag(0x1_0000_0010, 0x1_0000_0004, false), "12");
        assert_eq!(lag(0x2_0000_0001, 0x1_0000_0004, false), "?");
    }
}
