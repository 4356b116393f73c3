//! `zooctl bench`: a closed-loop load generator. N sessions each keep `depth` requests in
//! flight (getData or setData on random keys of one value size); after a warm-up it counts
//! completions for a fixed time and reports ops/s, latency percentiles and its own CPU cost.

use crate::conn::{error_name, Conn};
use anyhow::{bail, Context};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zooid_proto::*;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent sessions (one connection each).
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Share of reads (getData); the rest are writes (setData), in percent.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Distinct keys, created under `/zooctl-bench` before the run.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before measuring (JIT, caches, group-commit steady state).
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
}

/// What one session measured.
struct SessionResult {
    hist: Histogram<u64>,
    ops: u64,
    errors: u64,
}

fn key_path(i: usize) -> String {
    format!("/zooctl-bench/k-{i:06}")
}

/// Pre-encoded request bodies (after the header) for every key.
struct Frames {
    reads: Vec<Vec<u8>>,
    writes: Vec<Vec<u8>>,
}

impl Frames {
    fn new(keys: usize, value: &[u8]) -> Frames {
        let enc = |req: Request| {
            let mut b = BytesMut::new();
            req.encode(&mut b);
            b.to_vec()
        };
        Frames {
            reads: (0..keys)
                .map(|i| {
                    enc(Request::GetData {
                        path: key_path(i),
                        watch: false,
                    })
                })
                .collect(),
            writes: (0..keys)
                .map(|i| {
                    enc(Request::SetData {
                        path: key_path(i),
                        data: Some(value.to_vec()),
                        version: -1,
                    })
                })
                .collect(),
        }
    }
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (in USER_HZ ticks,
/// 100 per second on Linux). Zero where that file cannot be read.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The command name is in parentheses and may hold spaces: count fields after it.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, the 12th and 13th after ")".
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Creates the keys (ignoring ones that exist) and sets each to a value of the right size.
async fn prepare(server: &str, args: &BenchArgs, value: &[u8]) -> anyhow::Result<()> {
    let mut c = Conn::connect(server, 30_000).await?;
    let create = |path: String, data: Vec<u8>| {
        Request::Create(CreateRequest {
            op: OpCode::Create,
            path,
            data: Some(data),
            acl: Acl::open(),
            flags: 0,
            ttl: -1,
        })
    };
    let r = c.call(&create("/zooctl-bench".into(), vec![])).await?;
    if r.err != 0 && r.err != ErrorCode::NodeExists.code() {
        bail!("creating /zooctl-bench: {}", error_name(r.err));
    }
    for i in 0..args.keys {
        let r = c.call(&create(key_path(i), value.to_vec())).await?;
        if r.err == ErrorCode::NodeExists.code() {
            let r = c
                .call(&Request::SetData {
                    path: key_path(i),
                    data: Some(value.to_vec()),
                    version: -1,
                })
                .await?;
            if r.err != 0 {
                bail!("setting {}: {}", key_path(i), error_name(r.err));
            }
        } else if r.err != 0 {
            bail!("creating {}: {}", key_path(i), error_name(r.err));
        }
    }
    let _ = c.call(&Request::CloseSession).await;
    Ok(())
}

/// One session's closed loop until `end`; records completions of requests sent after `start`.
async fn run_session(
    server: String,
    args: BenchArgs,
    frames: Rc<Frames>,
    seed: u64,
    start: Instant,
    end: Instant,
) -> anyhow::Result<SessionResult> {
    let mut c = Conn::connect(&server, 30_000).await?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ops, mut errors) = (0u64, 0u64);
    let mut rng = seed | 1;
    let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(args.depth);
    let mut out = BytesMut::with_capacity(args.depth * (args.value_size + 64));
    let mut xid = 0i32;
    let mut push = |out: &mut BytesMut, in_flight: &mut VecDeque<Instant>, rng: &mut u64| {
        // xorshift64: cheap and good enough to spread keys.
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let key = (*rng % frames.reads.len() as u64) as usize;
        let read = (*rng >> 40) % 100 < args.read_percent as u64;
        let (op, body) = if read {
            (OpCode::GetData, &frames.reads[key])
        } else {
            (OpCode::SetData, &frames.writes[key])
        };
        xid += 1;
        encode_request_frame(out, xid, op as i32, |b| b.extend_from_slice(body));
        in_flight.push_back(Instant::now());
    };
    for _ in 0..args.depth {
        push(&mut out, &mut in_flight, &mut rng);
    }
    c.io.write_all(&out).await?;
    out.clear();
    while !in_flight.is_empty() {
        if c.io.read_buf(&mut c.buf).await? == 0 {
            bail!("server closed the connection");
        }
        let now = Instant::now();
        while let Some(frame) = c.buffered_frame() {
            let reply = Conn::parse_reply(frame)?;
            if reply.xid == XID_NOTIFICATION {
                continue;
            }
            let Some(sent) = in_flight.pop_front() else {
                bail!("reply without a request");
            };
            if sent >= start && now <= end {
                ops += 1;
                if reply.err != 0 {
                    errors += 1;
                }
                let us = now.duration_since(sent).as_micros().max(1) as u64;
                hist.record(us.min(60_000_000))?;
            }
            if now < end {
                push(&mut out, &mut in_flight, &mut rng);
            }
        }
        if !out.is_empty() {
            c.io.write_all(&out).await?;
            out.clear();
        }
    }
    Ok(SessionResult { hist, ops, errors })
}

/// Runs the benchmark and prints its report.
pub fn run(connect_string: &str, args: BenchArgs) -> anyhow::Result<()> {
    let servers = crate::conn::servers(connect_string)?;
    // Keys are made, and the log's figures read, on the first server.
    let server = servers[0].as_str();
    // One thread: the load generator must leave the other core(s) to the server.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let value = vec![b'v'; args.value_size];
    rt.block_on(prepare(server, &args, &value))
        .context("preparing keys")?;
    let frames = Rc::new(Frames::new(args.keys, &value));
    let local = tokio::task::LocalSet::new();
    let start = Instant::now() + Duration::from_secs(args.warmup);
    let end = start + Duration::from_secs(args.duration);
    let (results, cpu, log) = local.block_on(&rt, async {
        let mut handles = Vec::new();
        // Sessions spread over the servers of the connection string, as clients with the
        // same string spread over an ensemble.
        for s in 0..args.sessions {
            handles.push(tokio::task::spawn_local(run_session(
                servers[s % servers.len()].clone(),
                args.clone(),
                frames.clone(),
                0x9e37_79b9_7f4a_7c15u64.wrapping_mul(s as u64 + 1),
                start,
                end,
            )));
        }
        tokio::time::sleep_until(start.into()).await;
        let cpu0 = cpu_time();
        let log0 = LogCounters::read(server).await;
        tokio::time::sleep_until(end.into()).await;
        let cpu = cpu_time().saturating_sub(cpu0);
        let log = log0.zip(LogCounters::read(server).await);
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await);
        }
        (results, cpu, log)
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ops, mut errors) = (0u64, 0u64);
    for r in results {
        let r = r.context("session task")??;
        hist.add(&r.hist)?;
        ops += r.ops;
        errors += r.errors;
    }
    let secs = args.duration as f64;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "zooctl bench {connect_string}: sessions={} depth={} reads={}% value={}B keys={} warmup={}s duration={}s",
        args.sessions, args.depth, args.read_percent, args.value_size, args.keys, args.warmup, args.duration
    );
    println!(
        "ops/s {:.0}  p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  errors {}",
        ops as f64 / secs,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0,
        errors
    );
    println!(
        "load generator CPU {:.1} us/op ({:.2} s over the measured window)",
        if ops > 0 {
            cpu.as_secs_f64() * 1e6 / ops as f64
        } else {
            0.0
        },
        cpu.as_secs_f64()
    );
    match log {
        Some((before, after)) if after.fsyncs > before.fsyncs => {
            let fsyncs = after.fsyncs - before.fsyncs;
            let entries = after.batches - before.batches;
            let writes = after.batched_writes - before.batched_writes;
            println!(
                "server log (mntr): {:.0} fsyncs/s, {:.1} writes per fsync batch, mean fsync {:.3} ms as reported",
                fsyncs / secs,
                if entries > 0.0 { writes / entries } else { 0.0 },
                (after.fsync_ms - before.fsync_ms) / fsyncs,
            );
        }
        Some(_) => println!("server log (mntr): no fsync in the measured window"),
        None => println!("server log: mntr not answered (is it on the server's allow-list?)"),
    }
    if ops == 0 {
        bail!("no operation completed");
    }
    Ok(())
}

/// The server's log counters from `mntr`, under the names ZooKeeper and Zooid share, so that
/// the report shows how many fsyncs the load cost and how many writes each one carried.
/// (ZooKeeper records fsync times in whole milliseconds, truncated: its mean is a lower bound.)
#[derive(Debug, Clone, Copy, PartialEq)]
struct LogCounters {
    fsyncs: f64,
    fsync_ms: f64,
    batches: f64,
    batched_writes: f64,
}

impl LogCounters {
    /// `None` if the server does not answer `mntr` or lacks these counters.
    async fn read(server: &str) -> Option<LogCounters> {
        let text = tokio::time::timeout(
            Duration::from_secs(2),
            crate::conn::four_letter(server, "mntr"),
        )
        .await
        .ok()?
        .ok()?;
        Self::parse(&text)
    }

    fn parse(mntr: &str) -> Option<LogCounters> {
        let value = |key: &str| -> Option<f64> {
            mntr.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))?
                .trim()
                .parse()
                .ok()
        };
        Some(LogCounters {
            fsyncs: value("zk_cnt_fsynctime")?,
            fsync_ms: value("zk_sum_fsynctime")?,
            batches: value("zk_cnt_sync_processor_batch_size")?,
            batched_writes: value("zk_sum_sync_processor_batch_size")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_counters_come_from_mntr_lines() {
        let mntr = "zk_version\t3.9\nzk_cnt_fsynctime\t10\nzk_sum_fsynctime\t4\n\
                    zk_cnt_sync_processor_batch_size\t10\nzk_sum_sync_processor_batch_size\t250\n";
        assert_eq!(
            LogCounters::parse(mntr),
            Some(LogCounters {
                fsyncs: 10.0,
                fsync_ms: 4.0,
                batches: 10.0,
                batched_writes: 250.0
            })
        );
        assert_eq!(LogCounters::parse("zk_cnt_fsynctime\t10\n"), None);
    }
}
