//! `zooctl register` and `zooctl discover`: service discovery for applications beside an
//! ensemble (a sidecar in each pod, or any process).
//!
//! - `register` keeps an ephemeral node `<service>/<name>` holding an address for as long as
//!   it runs: it pings within the session timeout, resumes the session on another server when
//!   its connection drops, registers again in a new session if the old one expired, and on
//!   SIGTERM or SIGINT deletes the node and closes the session before it exits, so consumers
//!   see it go at once rather than a session timeout later.
//! - `discover` prints the instances under `<service>` (`name address` per line); with
//!   `--watch`, the whole set as one JSON object per line each time it changes, until
//!   interrupted, across connection losses and server restarts.

use crate::conn::{error_name, Conn, ConnectString};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;
use zooid_proto::*;

#[derive(clap::Args)]
pub struct RegisterArgs {
    /// The service's node: instances are its children.
    service: String,
    /// What consumers connect to, e.g. `10.0.0.5:8080`: the instance node's data.
    #[arg(long)]
    address: String,
    /// The instance's name (its node's name); by default `$POD_NAME`, else `$HOSTNAME`.
    #[arg(long)]
    name: Option<String>,
    /// The session timeout asked for; the node goes this long after a registrar that dies
    /// without SIGTERM (the server may bound it: 2 to 20 ticks by default).
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: i32,
}

#[derive(clap::Args)]
pub struct DiscoverArgs {
    /// The service's node.
    service: String,
    /// Keep watching: print the whole set again each time it changes.
    #[arg(long)]
    watch: bool,
}

/// One turn of a session: how it ended.
enum Ended {
    /// SIGTERM or SIGINT.
    Signalled,
    /// The session is gone (or could not be resumed within its timeout).
    Expired,
    /// For a watcher: a notification came, or the session was resumed on a new connection
    /// (which keeps no watch: it is set again).
    Changed,
}

struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A new session on any server, authenticated if asked; tried again every second until one
/// takes it (a registrar that starts before the ensemble waits for it), or until a signal.
async fn session(
    cs: &ConnectString,
    auth: Option<&str>,
    timeout_ms: i32,
    signals: &mut Signals,
) -> anyhow::Result<Option<Conn>> {
    loop {
        let attempt = async {
            let mut c = Conn::connect_any(&cs.servers, timeout_ms).await?;
            if let Some(user_password) = auth {
                c.authenticate(user_password).await?;
            }
            anyhow::Ok(c)
        };
        tokio::select! {
            c = attempt => match c {
                Ok(c) => return Ok(Some(c)),
                Err(e) => eprintln!("zooctl: {e:#}; trying again in 1 s"),
            },
            _ = signals.recv() => return Ok(None),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = signals.recv() => return Ok(None),
        }
    }
}

/// Keeps the session alive until a signal or its end (or, `watching`, a change): pings
/// every third of the timeout,
/// and when the server has been silent for two thirds of it (ZooKeeper's clients' rule), or
/// the connection fails, resumes the session on the servers in turn until it is resumed,
/// said expired, or its timeout has passed.
async fn keep(
    c: &mut Conn,
    cs: &ConnectString,
    timeout_ms: i32,
    signals: &mut Signals,
    watching: bool,
) -> anyhow::Result<Ended> {
    let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(10_000));
    let mut ping = tokio::time::interval(timeout / 3);
    ping.tick().await;
    let mut heard = Instant::now();
    loop {
        let lost = tokio::select! {
            _ = signals.recv() => return Ok(Ended::Signalled),
            frame = c.read_frame() => match frame.and_then(Conn::parse_reply) {
                Ok(reply) => {
                    heard = Instant::now();
                    c.last_zxid = c.last_zxid.max(reply.zxid);
                    if reply.xid == XID_NOTIFICATION && watching {
                        return Ok(Ended::Changed);
                    }
                    false
                }
                Err(_) => true,
            },
            _ = ping.tick() => {
                heard.elapsed() > timeout * 2 / 3
                    || c.send_with_xid(XID_PING, &Request::Ping).await.is_err()
            }
        };
        if !lost {
            continue;
        }
        eprintln!("zooctl: connection lost; resuming the session");
        let deadline = heard + timeout;
        let resumed = async {
            for server in cs.servers.iter().cycle() {
                if Instant::now() > deadline {
                    return None;
                }
                match c.resume(server, timeout_ms).await {
                    Ok(Some(again)) => return Some(Some((again, server))),
                    Ok(None) => return None,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            None
        };
        let resumed = tokio::select! {
            r = resumed => r,
            _ = signals.recv() => return Ok(Ended::Signalled),
        };
        match resumed {
            Some(Some((again, server))) => {
                eprintln!("zooctl: session resumed on {server}");
                *c = again;
                heard = Instant::now();
                if watching {
                    return Ok(Ended::Changed);
                }
            }
            _ => return Ok(Ended::Expired),
        }
    }
}

/// Creates each missing ancestor of `path` (persistent, open ACL).
async fn parents(c: &mut Conn, path: &str) -> anyhow::Result<()> {
    let mut at = String::new();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for s in &segments[..segments.len().saturating_sub(1)] {
        at.push('/');
        at.push_str(s);
        c.ensure(&at).await?;
    }
    Ok(())
}

/// Creates the ephemeral instance node; one left by an earlier session of this instance
/// (a registrar killed without SIGTERM, or an expired session) is replaced.
async fn claim(c: &mut Conn, path: &str, address: &str) -> anyhow::Result<()> {
    loop {
        let r = c
            .call(&Request::Create(CreateRequest {
                op: OpCode::Create,
                path: path.into(),
                data: Some(address.as_bytes().to_vec()),
                acl: Acl::open(),
                flags: CreateMode::Ephemeral as i32,
                ttl: -1,
            }))
            .await?;
        if r.err == 0 {
            return Ok(());
        }
        if r.err != ErrorCode::NodeExists as i32 {
            bail!("registering {path}: {}", error_name(r.err));
        }
        let r = c
            .call(&Request::Exists {
                path: path.into(),
                watch: false,
            })
            .await?;
        if r.err == ErrorCode::NoNode as i32 {
            continue;
        }
        let stat = Stat::decode(&mut Reader::new(&r.body))?;
        if stat.ephemeral_owner == c.session_id {
            return Ok(());
        }
        if stat.ephemeral_owner == 0 {
            bail!("{path} exists and is not ephemeral: not an instance this registers");
        }
        let r = c
            .call(&Request::Delete {
                path: path.into(),
                version: stat.version,
            })
            .await?;
        if r.err != 0 && r.err != ErrorCode::NoNode as i32 && r.err != ErrorCode::BadVersion as i32
        {
            bail!("replacing the old {path}: {}", error_name(r.err));
        }
    }
}

pub fn register(server: &str, auth: Option<&str>, args: RegisterArgs) -> anyhow::Result<()> {
    let cs = ConnectString::parse(server)?;
    let name = args
        .name
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .context("the instance's name: give --name, or set POD_NAME or HOSTNAME")?;
    if name.is_empty() || name.contains('/') {
        bail!("the instance's name {name:?} is not a node name");
    }
    let shown = format!("{}/{name}", args.service.trim_end_matches('/'));
    let path = cs.full(&shown)?;
    runtime()?.block_on(async {
        let mut signals = Signals::new()?;
        let mut failures = 0;
        loop {
            let Some(mut c) = session(&cs, auth, args.session_timeout_ms, &mut signals).await?
            else {
                return Ok(());
            };
            let claimed = async {
                parents(&mut c, &path).await?;
                claim(&mut c, &path, &args.address).await
            };
            // A connection lost on the way is tried again in a new session; an error that
            // stays (no permission, a persistent node in the way) ends the registrar after a
            // few tries, so that it shows (a sidecar restarts with a back-off).
            if let Err(e) = claimed.await {
                failures += 1;
                if failures >= 5 {
                    return Err(e);
                }
                eprintln!("zooctl: {e:#}; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            failures = 0;
            println!(
                "registered {shown} = {} (session 0x{:x})",
                args.address, c.session_id
            );
            match keep(&mut c, &cs, args.session_timeout_ms, &mut signals, false).await? {
                Ended::Signalled => {
                    let _ = c
                        .call(&Request::Delete {
                            path: path.clone(),
                            version: -1,
                        })
                        .await;
                    let _ = c.call(&Request::CloseSession).await;
                    println!("deregistered {shown}");
                    return Ok(());
                }
                Ended::Expired | Ended::Changed => {
                    eprintln!("zooctl: the session expired: registering again");
                }
            }
        }
    })
}

/// The instances under `path`: name -> address. A missing service node has none.
async fn instances(c: &mut Conn, path: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let r = c
        .call(&Request::GetChildren {
            path: path.into(),
            watch: false,
        })
        .await?;
    if r.err == ErrorCode::NoNode as i32 {
        return Ok(BTreeMap::new());
    }
    if r.err != 0 {
        bail!("{path}: {}", error_name(r.err));
    }
    let mut out = BTreeMap::new();
    for child in Reader::new(&r.body).vector(Reader::string)? {
        let r = c
            .call(&Request::GetData {
                path: format!("{}/{child}", path.trim_end_matches('/')),
                watch: false,
            })
            .await?;
        // Gone since the listing: not an instance any more.
        if r.err == ErrorCode::NoNode as i32 {
            continue;
        }
        if r.err != 0 {
            bail!("{path}/{child}: {}", error_name(r.err));
        }
        let data = Reader::new(&r.body).buffer()?.unwrap_or_default();
        out.insert(child, String::from_utf8_lossy(&data).into_owned());
    }
    Ok(out)
}

/// The instances, read again until no notification came in while they were read (a change
/// during the reading could be missing from it).
async fn settled_instances(c: &mut Conn, path: &str) -> anyhow::Result<BTreeMap<String, String>> {
    loop {
        let before = c.notifications;
        let set = instances(c, path).await?;
        if c.notifications == before {
            return Ok(set);
        }
    }
}

pub fn discover(server: &str, auth: Option<&str>, args: DiscoverArgs) -> anyhow::Result<()> {
    let cs = ConnectString::parse(server)?;
    let path = cs.full(&args.service)?;
    runtime()?.block_on(async {
        let mut signals = Signals::new()?;
        if !args.watch {
            let Some(mut c) = session(&cs, auth, 30_000, &mut signals).await? else {
                return Ok(());
            };
            for (name, address) in instances(&mut c, &path).await? {
                println!("{name} {address}");
            }
            let _ = c.call(&Request::CloseSession).await;
            return Ok(());
        }
        let mut last: Option<BTreeMap<String, String>> = None;
        loop {
            let Some(mut c) = session(&cs, auth, 30_000, &mut signals).await? else {
                return Ok(());
            };
            loop {
                // Recursive: an instance's address changing is a change too. Set again at
                // each turn: a resumed connection has no watch (setting it twice is one).
                let r = match c
                    .call(&Request::AddWatch {
                        path: path.clone(),
                        mode: AddWatchMode::PersistentRecursive as i32,
                    })
                    .await
                {
                    Ok(r) => r,
                    // The connection went: a new session, the watch set there.
                    Err(e) => {
                        eprintln!("zooctl: {e:#}; connecting again");
                        break;
                    }
                };
                if r.err != 0 {
                    bail!("watching {path}: {}", error_name(r.err));
                }
                let set = match settled_instances(&mut c, &path).await {
                    Ok(set) => set,
                    Err(e) => {
                        eprintln!("zooctl: {e:#}; connecting again");
                        break;
                    }
                };
                if last.as_ref() != Some(&set) {
                    println!("{}", serde_json::to_string(&set)?);
                    last = Some(set);
                }
                // Until the next notification (then read again), a signal, or the end of
                // the session (then a new one, and the watch set again).
                match keep(&mut c, &cs, 30_000, &mut signals, true).await? {
                    Ended::Signalled => {
                        let _ = c.call(&Request::CloseSession).await;
                        return Ok(());
                    }
                    Ended::Expired => break,
                    Ended::Changed => {}
                }
            }
        }
    })
}
