//! The two halves of the scale benchmark (`scripts/bench-scale.sh`), each a process of its own
//! (a process may hold only so many sockets, and the script kills the registering one):
//!
//! - `scale-register`: many sessions, each registering an ephemeral node and then keeping its
//!   session alive as a ZooKeeper client does (a ping after a third of the timeout without
//!   traffic, and on a lost connection the same session resumed on the next server). A
//!   session the ensemble expired while its client was alive is counted lost: it must never
//!   happen. It prints how fast the sessions registered, then a status line every second, and
//!   runs until killed.
//! - `scale-watch`: watcher sessions set a data watch on every one of N nodes, then one setData
//!   per node fires them all; it prints how fast the watches were set and the notifications
//!   came.

use crate::conn::Conn;
use anyhow::{bail, Context};
use bytes::BytesMut;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zooid_proto::*;

/// Where the benchmark's nodes go.
const ROOT: &str = "/zooctl-scale";

/// The watchers' session timeout: long, as they may wait for the others before the fan-out.
const WATCHER_TIMEOUT_MS: i32 = 30_000;

#[derive(clap::Args, Clone)]
pub struct RegisterArgs {
    /// Sessions, spread over the servers in turn.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Session timeout asked for, in milliseconds.
    #[arg(long, default_value_t = 4000)]
    timeout_ms: i32,
    /// Names this process's nodes: `/zooctl-scale/reg/<name>-<i>`.
    #[arg(long, default_value = "r")]
    name: String,
    /// Handshakes and creates in flight at once while registering.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
}

#[derive(clap::Args, Clone)]
pub struct WatchArgs {
    /// Watcher sessions, spread over the servers in turn.
    #[arg(long, default_value_t = 200)]
    watchers: usize,
    /// Nodes each watcher watches (created under /zooctl-scale/w if missing).
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    /// Requests each session keeps in flight while setting watches.
    #[arg(long, default_value_t = 64)]
    depth: usize,
    /// How long each phase may take before the run is failed, in seconds.
    #[arg(long, default_value_t = 600)]
    within: u64,
}

/// What every session of a registering process shares.
#[derive(Default)]
struct Tally {
    registered: Cell<usize>,
    /// Sessions the ensemble expired while their client was alive.
    lost: Cell<usize>,
    /// Connections lost and the session resumed elsewhere.
    resumed: Cell<usize>,
    /// Sessions whose registration failed (refused, or no server took them in time).
    failed: Cell<usize>,
    /// The longest this process was late waking up (starved of CPU, say): a session whose
    /// client stalled for its whole timeout was silent, whatever the servers did.
    stall: Cell<Duration>,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread: the load generator must leave the other core(s) to the servers.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn register(connect_string: &str, args: RegisterArgs) -> anyhow::Result<()> {
    let servers = crate::conn::servers(connect_string)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut c = Conn::connect_any(&servers, 30_000).await?;
        c.ensure(ROOT).await?;
        c.ensure(&format!("{ROOT}/reg")).await
    })
    .context("preparing /zooctl-scale/reg")?;
    let tally = Rc::new(Tally::default());
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let gate = Rc::new(tokio::sync::Semaphore::new(args.concurrency));
        {
            let tally = tally.clone();
            tokio::task::spawn_local(async move {
                let every = Duration::from_millis(100);
                loop {
                    let due = Instant::now() + every;
                    tokio::time::sleep_until(due.into()).await;
                    let late = Instant::now().saturating_duration_since(due);
                    tally.stall.set(tally.stall.get().max(late));
                }
            });
        }
        let start = Instant::now();
        for i in 0..args.sessions {
            let (servers, tally, gate) = (servers.clone(), tally.clone(), gate.clone());
            let path = format!("{ROOT}/reg/{}-{i}", args.name);
            let timeout_ms = args.timeout_ms;
            tokio::task::spawn_local(async move {
                let registered = {
                    let _turn = gate.acquire().await;
                    registered_session(&servers, i, &path, timeout_ms).await
                };
                match registered {
                    Ok(c) => {
                        bump(&tally.registered);
                        keep_alive(c, &servers, i, timeout_ms, &tally).await;
                    }
                    Err(e) => {
                        bump(&tally.failed);
                        eprintln!("session {i}: {e:#}");
                    }
                }
            });
        }
        while tally.registered.get() + tally.failed.get() < args.sessions {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "registered {} sessions in {secs:.2} s ({:.0}/s), {} failed",
            tally.registered.get(),
            tally.registered.get() as f64 / secs,
            tally.failed.get()
        );
        loop {
            println!(
                "status alive={} lost={} resumed={} stall_ms={}",
                tally.registered.get() - tally.lost.get(),
                tally.lost.get(),
                tally.resumed.get(),
                tally.stall.get().as_millis()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// A new session on server `i` (of the list, in turn) holding its ephemeral node `path`;
/// other servers are tried if that one refuses, for up to a minute.
async fn registered_session(
    servers: &[String],
    i: usize,
    path: &str,
    timeout_ms: i32,
) -> anyhow::Result<Conn> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut k = i;
    let mut c = loop {
        match Conn::connect(&servers[k % servers.len()], timeout_ms).await {
            Ok(c) => break c,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {
                k += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    c.shrink_buffer();
    let reply = c
        .call(&Request::Create(CreateRequest {
            op: OpCode::Create,
            path: path.into(),
            data: None,
            acl: Acl::open(),
            flags: CreateMode::Ephemeral as i32,
            ttl: -1,
        }))
        .await?;
    if reply.err != 0 {
        bail!("creating {path}: {}", crate::conn::error_name(reply.err));
    }
    Ok(c)
}

/// Keeps the session alive until the process is killed, with the timings of ZooKeeper's own
/// client: a ping once nothing was sent for a third of the timeout, the connection given up
/// once nothing was heard for two thirds of it, then the same session resumed on the next
/// servers in turn. Counts the session lost if a server says it expired.
async fn keep_alive(mut c: Conn, servers: &[String], i: usize, timeout_ms: i32, tally: &Tally) {
    let timeout = Duration::from_millis(timeout_ms as u64);
    let mut k = i;
    loop {
        match ping_until_lost(&mut c, timeout / 3, timeout * 2 / 3).await {
            Ok(()) => unreachable!("only returns when the connection is lost"),
            Err(_) => loop {
                k += 1;
                let server = &servers[k % servers.len()];
                let resumed =
                    tokio::time::timeout(timeout * 2 / 3, c.resume(server, timeout_ms)).await;
                match resumed.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer"))) {
                    Ok(Some(again)) => {
                        c = again;
                        c.shrink_buffer();
                        bump(&tally.resumed);
                        break;
                    }
                    Ok(None) => {
                        bump(&tally.lost);
                        eprintln!(
                            "session 0x{:x} expired while its client was alive",
                            c.session_id
                        );
                        return;
                    }
                    // Refused or unanswered: the next server, after a short pause, as
                    // ZooKeeper's clients do.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            },
        }
    }
}

/// Pings after `idle` without sending; returns once the connection is lost (closed, or
/// nothing heard for `read_timeout`).
async fn ping_until_lost(
    c: &mut Conn,
    idle: Duration,
    read_timeout: Duration,
) -> anyhow::Result<()> {
    let mut ping = BytesMut::new();
    Request::Ping.encode_frame(&mut ping, XID_PING);
    let mut heard = Instant::now();
    let mut sent = Instant::now();
    loop {
        let wake = (sent + idle).min(heard + read_timeout);
        match tokio::time::timeout_at(wake.into(), c.io.read_buf(&mut c.buf)).await {
            Ok(Ok(0)) => bail!("closed"),
            Ok(Ok(_)) => {
                heard = Instant::now();
                c.drain_replies();
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) if heard.elapsed() >= read_timeout => bail!("nothing heard"),
            Err(_) => {
                c.io.write_all(&ping).await?;
                sent = Instant::now();
            }
        }
    }
}

pub fn watch(connect_string: &str, args: WatchArgs) -> anyhow::Result<()> {
    let servers = crate::conn::servers(connect_string)?;
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let within = Duration::from_secs(args.within);
    local.block_on(&rt, async {
        let mut setter = Conn::connect_any(&servers, 30_000).await?;
        setter.ensure(ROOT).await?;
        setter.ensure(&format!("{ROOT}/w")).await?;
        let paths: Rc<Vec<String>> =
            Rc::new((0..args.nodes).map(|j| format!("{ROOT}/w/n{j}")).collect());
        let creates: Vec<Request> = paths
            .iter()
            .map(|p| {
                Request::Create(CreateRequest {
                    op: OpCode::Create,
                    path: p.clone(),
                    data: None,
                    acl: Acl::open(),
                    flags: 0,
                    ttl: -1,
                })
            })
            .collect();
        pipeline(
            &mut setter,
            &creates,
            args.depth,
            &[ErrorCode::NodeExists as i32],
        )
        .await?;

        // Watches: every watcher pipelines a watching getData on every node.
        let start = Instant::now();
        let gets: Rc<Vec<Request>> = Rc::new(
            paths
                .iter()
                .map(|p| Request::GetData {
                    path: p.clone(),
                    watch: true,
                })
                .collect(),
        );
        // Each watcher sets its watches, says so, keeps its session alive (a ping every third
        // of its timeout) until the fan-out starts, then counts its notifications.
        let (set_tx, mut set_rx) = tokio::sync::mpsc::unbounded_channel();
        let (fire_tx, fire) = tokio::sync::watch::channel(false);
        let mut watchers = Vec::new();
        for w in 0..args.watchers {
            let (server, gets) = (servers[w % servers.len()].clone(), gets.clone());
            let (depth, nodes) = (args.depth, args.nodes);
            let (set_tx, mut fire) = (set_tx.clone(), fire.clone());
            watchers.push(tokio::task::spawn_local(async move {
                let mut c = Conn::connect(&server, WATCHER_TIMEOUT_MS).await?;
                pipeline(&mut c, &gets, depth, &[]).await?;
                let _ = set_tx.send(());
                let mut ping = BytesMut::new();
                Request::Ping.encode_frame(&mut ping, XID_PING);
                let every = Duration::from_millis(WATCHER_TIMEOUT_MS as u64 / 3);
                while !*fire.borrow_and_update() {
                    tokio::select! {
                        _ = fire.changed() => {}
                        _ = tokio::time::sleep(every) => c.io.write_all(&ping).await?,
                    }
                }
                let mut seen = 0;
                while seen < nodes {
                    if c.io.read_buf(&mut c.buf).await? == 0 {
                        bail!("a watcher's server closed its connection");
                    }
                    while let Some(frame) = c.buffered_frame() {
                        if Conn::parse_reply(frame)?.xid == XID_NOTIFICATION {
                            seen += 1;
                        }
                    }
                }
                anyhow::Ok(seen)
            }));
        }
        drop(set_tx);
        let deadline = tokio::time::Instant::from_std(start + within);
        for _ in 0..args.watchers {
            match tokio::time::timeout_at(deadline, set_rx.recv()).await {
                Ok(Some(())) => {}
                // A watcher failed: its error is reported below.
                Ok(None) => break,
                Err(_) => bail!("setting the watches: not within {within:?}"),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let watches = args.watchers * args.nodes;
        println!(
            "set {watches} watches ({} watchers x {} nodes) in {secs:.2} s ({:.0}/s)",
            args.watchers,
            args.nodes,
            watches as f64 / secs
        );

        // Fan-out: one setData per node, from a session of its own (the one that made the
        // nodes may have timed out while the watches were set: it sent nothing meanwhile).
        drop(setter);
        let mut setter = Conn::connect_any(&servers, 30_000).await?;
        let start = Instant::now();
        let _ = fire_tx.send(true);
        let sets: Vec<Request> = paths
            .iter()
            .map(|p| Request::SetData {
                path: p.clone(),
                data: Some(b"x".to_vec()),
                version: -1,
            })
            .collect();
        pipeline(&mut setter, &sets, args.depth, &[]).await?;
        let mut notified = 0;
        let deadline = tokio::time::Instant::from_std(start + within);
        for t in watchers {
            notified += tokio::time::timeout_at(deadline, t)
                .await
                .context("waiting for notifications: not within the time given")???;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{notified} notifications in {secs:.2} s ({:.0}/s)",
            notified as f64 / secs
        );
        anyhow::Ok(())
    })
}

/// Sends `reqs` keeping `depth` in flight; fails on any error but those in `ok`.
async fn pipeline(c: &mut Conn, reqs: &[Request], depth: usize, ok: &[i32]) -> anyhow::Result<()> {
    let mut out = BytesMut::new();
    let (mut sent, mut answered) = (0, 0);
    while answered < reqs.len() {
        while sent < reqs.len() && sent - answered < depth {
            reqs[sent].encode_frame(&mut out, sent as i32 + 1);
            sent += 1;
        }
        if !out.is_empty() {
            c.io.write_all(&out).await?;
            out.clear();
        }
        if c.io.read_buf(&mut c.buf).await? == 0 {
            bail!("the server closed the connection");
        }
        while let Some(frame) = c.buffered_frame() {
            let reply = Conn::parse_reply(frame)?;
            if reply.xid == XID_NOTIFICATION {
                continue;
            }
            if reply.err != 0 && !ok.contains(&reply.err) {
                bail!(
                    "request {}: {}",
                    reply.xid,
                    crate::conn::error_name(reply.err)
                );
            }
            answered += 1;
        }
    }
    Ok(())
}
