//! `zooctl write-gaps`: writers that keep writing through faults, for
//! `scripts/bench-faults.sh`. Each session writes its own node over and over (setData, one at
//! a time) and, when its connection is lost, resumes its session on the next server in turn,
//! as ZooKeeper's clients do. At the end it prints every stretch of at least `--min-gap-ms`
//! during which no writer got an acknowledgement, with its start (Unix milliseconds), so the
//! script can tell the stall each fault caused.

use crate::conn::Conn;
use anyhow::bail;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zooid_proto::*;

#[derive(clap::Args, Clone)]
pub struct GapArgs {
    /// Writer sessions, spread over the servers in turn.
    #[arg(long, default_value_t = 6)]
    writers: usize,
    /// Seconds to write for.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Stretches without an acknowledgement shorter than this are not printed.
    #[arg(long, default_value_t = 100)]
    min_gap_ms: u64,
    /// Session timeout asked for, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: i32,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn run(connect_string: &str, args: GapArgs) -> anyhow::Result<()> {
    let servers = crate::conn::servers(connect_string)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let acks: Rc<RefCell<Vec<u64>>> = Rc::default();
    let lost = local.block_on(&rt, async {
        let mut c = Conn::connect_any(&servers, args.timeout_ms).await?;
        for path in ["/zooctl-gaps".to_string()]
            .into_iter()
            .chain((0..args.writers).map(|w| format!("/zooctl-gaps/w{w}")))
        {
            c.ensure(&path).await?;
        }
        let end = Instant::now() + Duration::from_secs(args.duration);
        let mut tasks = Vec::new();
        for w in 0..args.writers {
            let (servers, acks) = (servers.clone(), acks.clone());
            let timeout_ms = args.timeout_ms;
            tasks.push(tokio::task::spawn_local(async move {
                write_until(&servers, w, timeout_ms, end, &acks).await
            }));
        }
        let mut lost = 0;
        for t in tasks {
            lost += usize::from(!t.await?);
        }
        anyhow::Ok(lost)
    })?;
    let mut acks = acks.take();
    acks.sort_unstable();
    println!("{} writes acknowledged, {lost} sessions lost", acks.len());
    for pair in acks.windows(2) {
        let gap = pair[1] - pair[0];
        if gap >= args.min_gap_ms {
            println!("gap {gap} ms from {}", pair[0]);
        }
    }
    if lost > 0 {
        bail!("{lost} writer sessions expired");
    }
    Ok(())
}

/// Writes `/zooctl-gaps/w<w>` until `end`, recording each acknowledgement; false if the
/// session expired.
async fn write_until(
    servers: &[String],
    w: usize,
    timeout_ms: i32,
    end: Instant,
    acks: &RefCell<Vec<u64>>,
) -> bool {
    let path = format!("/zooctl-gaps/w{w}");
    let set = Request::SetData {
        path,
        data: Some(b"x".to_vec()),
        version: -1,
    };
    let mut k = w;
    let mut c = loop {
        let server = &servers[k % servers.len()];
        let connected =
            tokio::time::timeout(Duration::from_secs(2), Conn::connect(server, timeout_ms)).await;
        match connected {
            Ok(Ok(c)) => break c,
            _ => k += 1,
        }
    };
    while Instant::now() < end {
        let answered =
            tokio::time::timeout(Duration::from_millis(timeout_ms as u64 / 2), c.call(&set)).await;
        match answered {
            Ok(Ok(r)) if r.err == 0 => acks.borrow_mut().push(unix_ms()),
            // Refused (no quorum yet): try again.
            Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            // Lost: the session resumes on the next server that takes it.
            _ => loop {
                if Instant::now() >= end {
                    return true;
                }
                k += 1;
                let server = &servers[k % servers.len()];
                // A paused server takes the connection (the kernel does) but never answers.
                let resumed =
                    tokio::time::timeout(Duration::from_secs(2), c.resume(server, timeout_ms))
                        .await;
                match resumed.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer"))) {
                    Ok(Some(again)) => {
                        c = again;
                        break;
                    }
                    Ok(None) => {
                        println!(
                            "session 0x{:x} called expired by {server} while its writer was alive",
                            c.session_id
                        );
                        return false;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            },
        }
    }
    true
}
