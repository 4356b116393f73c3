//! Whether an ensemble keeps its quorum, read from its members' own metrics: each member's
//! `zooid_serving` (1 while it is in a working quorum: it has a leader that a majority
//! follows) polled every 100 ms through the members' stable DNS names, and the intervals in
//! which fewer than a majority of the voters said so.

use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct QuorumWatch {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Seen>,
}

/// What the watch saw.
#[derive(Debug)]
pub struct Seen {
    /// Rounds in which every member answered or failed to.
    pub rounds: u64,
    /// The longest run of rounds in which fewer than a majority served.
    pub longest_without: Duration,
    /// Such runs.
    pub intervals_without: u32,
}

/// `1` if the member at `host` says it serves, `0` if it says it does not or does not answer.
async fn serving(http: &reqwest::Client, host: &str) -> u32 {
    let Ok(r) = http.get(format!("http://{host}:8080/metrics")).send().await else {
        return 0;
    };
    let Ok(text) = r.text().await else { return 0 };
    let serves = text
        .lines()
        .find_map(|l| l.strip_prefix("zooid_serving "))
        .is_some_and(|v| v.trim() == "1");
    u32::from(serves)
}

impl QuorumWatch {
    /// Watches members `name-0` .. `name-(voters-1)` of namespace `ns`.
    pub fn start(name: &str, ns: &str, voters: usize) -> QuorumWatch {
        let hosts: Vec<String> = (0..voters)
            .map(|i| format!("{name}-{i}.{name}-peers.{ns}.svc.cluster.local"))
            .collect();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap();
            let mut seen = Seen {
                rounds: 0,
                longest_without: Duration::ZERO,
                intervals_without: 0,
            };
            let mut lost_at: Option<Instant> = None;
            while !*stopped.borrow() {
                let round = Instant::now();
                let mut count = 0;
                for h in &hosts {
                    count += serving(&http, h).await;
                }
                seen.rounds += 1;
                if (count as usize) * 2 > hosts.len() {
                    if let Some(at) = lost_at.take() {
                        seen.longest_without = seen.longest_without.max(at.elapsed());
                    }
                } else if lost_at.is_none() {
                    lost_at = Some(round);
                    seen.intervals_without += 1;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stopped.changed() => {}
                }
            }
            if let Some(at) = lost_at {
                seen.longest_without = seen.longest_without.max(at.elapsed());
            }
            seen
        });
        QuorumWatch { stop, task }
    }

    pub async fn finish(self) -> Seen {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}
