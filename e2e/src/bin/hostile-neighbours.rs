//! The "hostile neighbour" benchmark: how a well-behaved client fares while other clients of the
//! same server misbehave. ZooKeeper promises wait-free service: a slow or failing client must
//! not hold up a fast one.
//!
//! A fast reader (getData of 1 KiB nodes, one request at a time) and a fast writer (setData of
//! 1 KiB, one at a time) run through five phases of equal length:
//! 1. alone;
//! 2. beside slow consumers: connections that pipeline getData of 512 KiB nodes and never read;
//! 3. beside a `mntr` loop (and `cons`, `wchs`) on fresh connections;
//! 4. beside large multiReads: clients reading 3 MiB replies in a loop, and one asking for a
//!    16 MiB reply in a loop (over Zooid's reply cap, refused there);
//! 5. beside all of them at once;
//! 6. (with CONTROL_ADDR) the `mntr` loop of phase 3, then the large multiReads of phase 4,
//!    sent to another server on the same machine instead: what the machine itself (CPU, the
//!    kernel's TCP work on loopback) costs the fast clients, apart from anything the measured
//!    server does.
//!
//! For each phase it prints the fast clients' operations per second, p50 and p99 latency, and
//! the server's peak resident memory (sampled from /proc every 20 ms).
//!
//! The hostile clients run in processes of their own at the lowest CPU priority (`nice 19`):
//! in a deployment they are other machines, so on a machine with few cores their own CPU time
//! must not be what delays the fast clients; what the server spends on them still competes.
//!
//! Usage: hostile-neighbours ADDR PID [SECONDS_PER_PHASE [CONTROL_ADDR]]
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use zooid_e2e::raw::RawClient;
use zooid_proto::*;

const SMALL: usize = 1000;
const BIG: usize = 8;
const BIG_BYTES: usize = 512 << 10;

#[derive(Clone, Copy, PartialEq)]
enum Hostile {
    SlowConsumers,
    MonitorLoop,
    LargeMultiReads,
}

impl Hostile {
    fn name(self) -> &'static str {
        match self {
            Hostile::SlowConsumers => "slow-consumers",
            Hostile::MonitorLoop => "monitor-loop",
            Hostile::LargeMultiReads => "multi-reads",
        }
    }

    fn from_name(name: &str) -> Option<Hostile> {
        [
            Hostile::SlowConsumers,
            Hostile::MonitorLoop,
            Hostile::LargeMultiReads,
        ]
        .into_iter()
        .find(|h| h.name() == name)
    }

    /// Runs this load until the process is killed.
    fn run(self, addr: SocketAddr) {
        let never = AtomicBool::new(false);
        let threads = match self {
            Hostile::SlowConsumers => 4,
            Hostile::MonitorLoop => 2,
            Hostile::LargeMultiReads => 3,
        };
        thread::scope(|s| {
            for t in 0..threads {
                let never = &never;
                s.spawn(move || loop {
                    // A thread that fails (the server cut it mid-read) starts again.
                    let _ = std::panic::catch_unwind(|| match self {
                        Hostile::SlowConsumers => slow_consumer(addr, never),
                        Hostile::MonitorLoop => monitor_loop(addr, never),
                        Hostile::LargeMultiReads => multi_reads(addr, never, t == 0),
                    });
                });
            }
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--load" {
        let kind = Hostile::from_name(&args[2]).expect("unknown load");
        kind.run(args[3].parse().expect("ADDR: host:port"));
        return;
    }
    if args.len() < 3 {
        eprintln!("usage: hostile-neighbours ADDR PID [SECONDS_PER_PHASE [CONTROL_ADDR]]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR: host:port");
    let pid: u32 = args[2].parse().expect("PID: the server's process id");
    let secs: u64 = args.get(3).map_or(10, |s| s.parse().expect("SECONDS"));
    let control: Option<SocketAddr> = args.get(4).map(|s| s.parse().expect("CONTROL_ADDR"));
    setup(addr);
    let mut phases: Vec<(&str, &[Hostile], SocketAddr)> = vec![
        ("alone", &[], addr),
        (
            "slow consumers (4 connections)",
            &[Hostile::SlowConsumers],
            addr,
        ),
        (
            "mntr/cons/wchs loop (2 threads)",
            &[Hostile::MonitorLoop],
            addr,
        ),
        (
            "large multiReads (3 MiB ×2, 16 MiB ×1)",
            &[Hostile::LargeMultiReads],
            addr,
        ),
        (
            "all of them",
            &[
                Hostile::SlowConsumers,
                Hostile::MonitorLoop,
                Hostile::LargeMultiReads,
            ],
            addr,
        ),
    ];
    if let Some(control) = control {
        setup(control);
        phases.push((
            "control: the mntr loop sent to another server",
            &[Hostile::MonitorLoop],
            control,
        ));
        phases.push((
            "control: the large multiReads sent to another server",
            &[Hostile::LargeMultiReads],
            control,
        ));
    }
    println!(
        "| phase | reads/s | read p50 | read p99 | writes/s | write p50 | write p99 | peak RSS |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, hostiles, hostile_addr) in phases {
        let r = run_phase(addr, pid, hostiles, hostile_addr, Duration::from_secs(secs));
        println!(
            "| {name} | {:.0} | {} | {} | {:.0} | {} | {} | {} MiB |",
            r.reads.len() as f64 / secs as f64,
            ms(pct(&mut r.reads.clone(), 50.0)),
            ms(pct(&mut r.reads.clone(), 99.0)),
            r.writes.len() as f64 / secs as f64,
            ms(pct(&mut r.writes.clone(), 50.0)),
            ms(pct(&mut r.writes.clone(), 99.0)),
            r.peak_rss_kib / 1024,
        );
        // Let the server shed what the hostile clients left before the next phase.
        thread::sleep(Duration::from_secs(2));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i]
}

fn create_req(path: &str, data: Vec<u8>) -> Request {
    Request::Create(CreateRequest {
        op: OpCode::Create,
        path: path.into(),
        data: Some(data),
        acl: Acl::open(),
        flags: 0,
        ttl: -1,
    })
}

fn setup(addr: SocketAddr) {
    let mut c = RawClient::connect(addr);
    c.call(&create_req("/hostile", vec![]));
    for i in 0..SMALL {
        c.send(&create_req(&format!("/hostile/s{i}"), vec![b's'; 1024]));
    }
    for i in 0..BIG {
        c.send(&create_req(
            &format!("/hostile/b{i}"),
            vec![b'b'; BIG_BYTES],
        ));
    }
    for _ in 0..SMALL + BIG {
        c.recv().expect("setup: the server closed the connection");
    }
}

struct PhaseResult {
    reads: Vec<Duration>,
    writes: Vec<Duration>,
    peak_rss_kib: u64,
}

/// Measures the fast clients on `addr` while `hostiles` run against `hostile_addr`.
fn run_phase(
    addr: SocketAddr,
    pid: u32,
    hostiles: &[Hostile],
    hostile_addr: SocketAddr,
    len: Duration,
) -> PhaseResult {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let mut helpers = Vec::new();
    {
        let (stop, peak) = (stop.clone(), peak.clone());
        helpers.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    let exe = std::env::current_exe().unwrap();
    let mut loads: Vec<std::process::Child> = hostiles
        .iter()
        .map(|h| {
            std::process::Command::new("nice")
                .args(["-n", "19"])
                .arg(&exe)
                .args(["--load", h.name(), &hostile_addr.to_string()])
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("starting a hostile load (is `nice` installed?)")
        })
        .collect();
    // Give the hostile clients a moment to get going before measuring.
    if !hostiles.is_empty() {
        thread::sleep(Duration::from_millis(500));
    }
    let until = Instant::now() + len;
    let reader = thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        let mut lat = Vec::new();
        let mut i = 0;
        while Instant::now() < until {
            let t = Instant::now();
            let (f, _) = c.call(&Request::GetData {
                path: format!("/hostile/s{}", i % SMALL),
                watch: false,
            });
            assert_eq!(f.err, 0);
            lat.push(t.elapsed());
            i += 1;
        }
        lat
    });
    let writer = thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        let mut lat = Vec::new();
        while Instant::now() < until {
            let t = Instant::now();
            let (f, _) = c.call(&Request::SetData {
                path: "/hostile/s0".into(),
                data: Some(vec![b'w'; 1024]),
                version: -1,
            });
            assert_eq!(f.err, 0);
            lat.push(t.elapsed());
        }
        lat
    });
    let reads = reader.join().expect("the fast reader failed");
    let writes = writer.join().expect("the fast writer failed");
    for l in &mut loads {
        let _ = l.kill();
        let _ = l.wait();
    }
    stop.store(true, Ordering::Relaxed);
    for h in helpers {
        let _ = h.join();
    }
    PhaseResult {
        reads,
        writes,
        peak_rss_kib: peak.load(Ordering::Relaxed),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn frame(xid: i32, req: &Request) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    req.encode_frame(&mut b, xid);
    b.to_vec()
}

/// Pipelines getData of the big nodes and never reads; reconnects when the server cuts it.
fn slow_consumer(addr: SocketAddr, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut c = RawClient::connect(addr);
        c.stream
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut xid = 1;
        let mut pending = Vec::new();
        let mut off = 0;
        while !stop.load(Ordering::Relaxed) {
            if off == pending.len() {
                let req = Request::GetData {
                    path: format!("/hostile/b{}", xid as usize % BIG),
                    watch: false,
                };
                pending = frame(xid, &req);
                off = 0;
                xid += 1;
            }
            // Partial writes are resumed, so the stream stays well framed while the server
            // stops reading it.
            match c.stream.write(&pending[off..]) {
                Ok(0) => break,
                Ok(n) => off += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // Cut by the server: come back, as a careless client would.
                Err(_) => break,
            }
        }
    }
}

fn monitor_loop(addr: SocketAddr, stop: &AtomicBool) {
    let words = ["mntr", "cons", "wchs"];
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        let _ = s.write_all(words[i % words.len()].as_bytes());
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        i += 1;
    }
}

/// Reads multiReads of 6 big nodes (3 MiB replies) in a loop; with `oversized`, asks for 32
/// big nodes (16 MiB) instead.
fn multi_reads(addr: SocketAddr, stop: &AtomicBool, oversized: bool) {
    let n = if oversized { 32 } else { 6 };
    let req = Request::MultiRead(
        (0..n)
            .map(|i| Request::GetData {
                path: format!("/hostile/b{}", i % BIG),
                watch: false,
            })
            .collect(),
    );
    while !stop.load(Ordering::Relaxed) {
        let mut c = RawClient::connect(addr);
        c.stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        while !stop.load(Ordering::Relaxed) {
            if c.try_send(&req).is_none() || c.recv().is_err() {
                break;
            }
        }
    }
}
