//! The operator's benchmark (`scripts/bench-operator.sh`; ignored by the test run): on the
//! control plane and node agent of the scenarios, the time from apply to Available for 3 and
//! 5 members, per scale step (3 to 5, 5 to 3), per rolled member (a config change rolling 3),
//! and the operator's memory and CPU while it watches 50 Ensembles. Pods are processes on this
//! machine, so times include their starts on its cores; figures compare builds of Zooid, not
//! clusters.

use crate::harness::{settled, Scenario};
use std::time::{Duration, Instant};

/// The operator's resident memory (KiB) and CPU time used so far, from /proc.
fn usage(pid: u32) -> (u64, Duration) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The kernel's USER_HZ, 100 on Linux.
    (rss, Duration::from_millis(ticks * 10))
}

async fn timed(s: &mut Scenario, name: &str, what: &str, n: usize) -> Duration {
    let started = Instant::now();
    let generation = s.ensembles.get(name).await.unwrap().metadata.generation;
    s.wait(name, what, 600, false, |e| {
        settled(e, n) && e.metadata.generation == generation
    })
    .await;
    started.elapsed()
}

#[tokio::test]
#[ignore = "a benchmark: scripts/bench-operator.sh"]
async fn bench_operator() {
    let Some(mut s) = Scenario::start("bench").await else {
        return;
    };
    let mut rows: Vec<(String, Duration)> = Vec::new();
    for n in [3, 5] {
        let name = format!("apply{n}");
        s.create(
            &name,
            serde_json::json!({"image": "zooid:test", "replicas": n}),
        )
        .await;
        let took = timed(&mut s, &name, "Available", n).await;
        rows.push((format!("apply to Available, {n} members"), took));
        s.ensembles
            .delete(&name, &Default::default())
            .await
            .unwrap();
    }
    s.create(
        "scale",
        serde_json::json!({"image": "zooid:test", "replicas": 3}),
    )
    .await;
    timed(&mut s, "scale", "Available", 3).await;
    for (from, to) in [(3i32, 5i32), (5, 3)] {
        s.patch("scale", serde_json::json!({"replicas": to})).await;
        let took = timed(&mut s, "scale", "scaled", to as usize).await;
        rows.push((format!("scale {from} to {to}"), took));
        rows.push((
            format!("scale {from} to {to}, per member added or removed"),
            took / (from - to).unsigned_abs(),
        ));
    }
    s.patch("scale", serde_json::json!({"config": {"tickTime": 1000}}))
        .await;
    let took = timed(&mut s, "scale", "rolled", 3).await;
    rows.push(("roll of 3 members (config change)".into(), took));
    rows.push(("roll, per member".into(), took / 3));
    s.ensembles
        .delete("scale", &Default::default())
        .await
        .unwrap();

    // Fifty single-member Ensembles, all Available; then the operator at rest with them.
    let started = Instant::now();
    for i in 0..50 {
        s.create(
            &format!("many{i}"),
            serde_json::json!({"image": "zooid:test", "replicas": 1}),
        )
        .await;
    }
    for i in 0..50 {
        s.wait(&format!("many{i}"), "Available", 900, false, |e| {
            settled(e, 1)
        })
        .await;
    }
    rows.push((
        "50 Ensembles of 1 applied to all Available".into(),
        started.elapsed(),
    ));
    let pid = s.operator.pid();
    let (_, cpu_before) = usage(pid);
    let window = Duration::from_secs(60);
    tokio::time::sleep(window).await;
    let (rss, cpu_after) = usage(pid);
    let cpu = (cpu_after - cpu_before).as_secs_f64() / window.as_secs_f64() * 100.0;

    println!("| step | time |\n| --- | ---: |");
    for (step, took) in &rows {
        println!("| {step} | {:.1} s |", took.as_secs_f64());
    }
    println!(
        "\nThe operator watching 50 Ensembles: {} MiB resident, {cpu:.1}% of a core over {} s \
         at rest (after {} s of CPU in all).",
        rss / 1024,
        window.as_secs(),
        cpu_after.as_secs()
    );
}
