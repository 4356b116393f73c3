//! Talking to an ensemble as a user does: the ZooKeeper protocol on a member's client port
//! (getConfig, reconfig as the super user) and its admin API (`server_stats`).

use super::membership::{membership, parse_config, MemberReport};
use super::Error;
use crate::build::names::{ADMIN_PORT, CLIENT_PORT};
use crate::plan::observed::Membership;
use std::time::Duration;
use zookeeper_client as zk;

/// How long one member may take to answer before the next is tried.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// A member the operator can reach: its server id and pod address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachable {
    pub server_id: i64,
    pub ip: String,
}

/// The super user's `user:password` the operator acts as.
pub type SuperUser = str;

async fn session(member: &Reachable, super_user: &SuperUser) -> Option<zk::Client> {
    let address = format!("{}:{CLIENT_PORT}", member.ip);
    let connect = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(ANSWER_WITHIN)
        .connect(&address);
    let client = tokio::time::timeout(ANSWER_WITHIN, connect)
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(ANSWER_WITHIN, client.auth("digest", super_user.as_bytes()))
        .await
        .ok()?
        .ok()?;
    Some(client)
}

/// A member's own report from its admin API.
async fn report(http: &reqwest::Client, member: &Reachable) -> Option<MemberReport> {
    let url = format!("http://{}:{ADMIN_PORT}/commands/server_stats", member.ip);
    let body: serde_json::Value = http
        .get(url)
        .timeout(ANSWER_WITHIN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let stats = &body["server_stats"];
    Some(MemberReport {
        server_id: member.server_id,
        mode: stats["server_state"].as_str()?.to_string(),
        zxid: stats["last_processed_zxid"].as_i64()?,
    })
}

/// The membership as the members report it; `None` if no member answers getConfig (none
/// runs yet, or none is in a working quorum).
pub async fn read(
    http: &reqwest::Client,
    members: &[Reachable],
    super_user: &SuperUser,
) -> Option<Membership> {
    let mut config = None;
    for m in members {
        let Some(client) = session(m, super_user).await else {
            continue;
        };
        // sync first: the configuration as the quorum has it, not as a lagging member does.
        let _ = tokio::time::timeout(ANSWER_WITHIN, client.sync("/zookeeper/config")).await;
        if let Ok(Ok((data, _))) = tokio::time::timeout(ANSWER_WITHIN, client.get_config()).await {
            if let Ok(parsed) = parse_config(&String::from_utf8_lossy(&data)) {
                config = Some(parsed);
                break;
            }
        }
    }
    let (version, roles) = config?;
    let mut reports = Vec::new();
    for m in members {
        if let Some(r) = report(http, m).await {
            reports.push(r);
        }
    }
    Some(membership(version, roles, &reports))
}

/// Whether the ensemble holds nothing but ZooKeeper's own `/zookeeper`, read through the
/// first member that answers; `None` if none does.
pub async fn holds_no_data(members: &[Reachable], super_user: &SuperUser) -> Option<bool> {
    for m in members {
        let Some(client) = session(m, super_user).await else {
            continue;
        };
        let _ = tokio::time::timeout(ANSWER_WITHIN, client.sync("/")).await;
        if let Ok(Ok(children)) =
            tokio::time::timeout(ANSWER_WITHIN, client.list_children("/")).await
        {
            return Some(children.iter().all(|c| c == "zookeeper"));
        }
    }
    None
}

/// The change a reconfig makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `server.N=...` lines that join (or change role).
    Join(String),
    /// A server id that leaves.
    Leave(i64),
}

/// Carries out a reconfig through any reachable member, conditional on the configuration
/// still being `version` (hex, as `/zookeeper/config` writes it).
pub async fn reconfig(
    members: &[Reachable],
    super_user: &SuperUser,
    change: &Change,
    version: &str,
) -> Result<(), Error> {
    let expected = i64::from_str_radix(version, 16)
        .map_err(|_| Error::Ensemble(format!("configuration version {version:?} is not hex")))?;
    let mut last = String::from("no member answered");
    for m in members {
        let Some(client) = session(m, super_user).await else {
            continue;
        };
        let id;
        let (joining, leaving): (Vec<&str>, Vec<&str>) = match change {
            Change::Join(line) => (vec![line.as_str()], vec![]),
            Change::Leave(server) => {
                id = server.to_string();
                (vec![], vec![id.as_str()])
            }
        };
        let update = zk::EnsembleUpdate::Incremental {
            joinings: joining.iter().copied(),
            leavings: leaving.iter().copied(),
        };
        let done = client.update_ensemble(update, Some(expected));
        match tokio::time::timeout(Duration::from_secs(60), done).await {
            Ok(Ok(_)) => return Ok(()),
            // Someone (perhaps this operator, before it restarted) changed it first: the next
            // observation decides from what is live.
            Ok(Err(zk::Error::BadVersion)) => {
                return Err(Error::Ensemble(
                    "the configuration changed meanwhile; observing again".into(),
                ))
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "no answer within 60 s".into(),
        }
    }
    Err(Error::Ensemble(format!("reconfig {change:?}: {last}")))
}
