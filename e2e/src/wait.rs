//! Waiting in tests for something to happen: polled against a deadline, and failing with what
//! was awaited, never passing on a timeout. The one place tests wait on a condition.

use std::time::{Duration, Instant};

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it gives a value and returns it; panics naming `what` once `within`
/// has passed without one.
pub fn wait_for<T>(what: &str, within: Duration, probe: impl FnMut() -> Option<T>) -> T {
    wait_for_explained(what, within, probe, String::new)
}

/// [`wait_for`], adding what `explain` says (a server's log, say) to the failure.
pub fn wait_for_explained<T>(
    what: &str,
    within: Duration,
    probe: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    match poll_for(within, probe) {
        Some(v) => v,
        None => panic!("{what}: not within {within:?}\n{}", explain()),
    }
}

/// Polls `probe` until it gives a value, or gives up quietly (`None`) once `within` has
/// passed: for the callers that have something else to try then.
pub fn poll_for<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until `cond` holds (see [`wait_for`]).
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    wait_for(what, within, || cond().then_some(()))
}

/// [`wait_for`] for async tests: the probe is looked at again after a `tokio` sleep, so the
/// runtime's workers go on meanwhile.
pub async fn wait_for_async<T>(
    what: &str,
    within: Duration,
    probe: impl FnMut() -> Option<T>,
) -> T {
    wait_for_async_every(what, within, POLL, probe, String::new).await
}

/// [`wait_for_async`] looking every `poll` (a condition that holds within a millisecond,
/// waited on thousands of times), adding what `explain` says to the failure.
pub async fn wait_for_async_every<T>(
    what: &str,
    within: Duration,
    poll: Duration,
    mut probe: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {within:?}\n{}", explain());
        }
        tokio::time::sleep(poll).await;
    }
}
