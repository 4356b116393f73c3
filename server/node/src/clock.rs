//! Wall-clock time, the one place it is read as milliseconds since the epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the epoch: the time stamped into txns (ctime / mtime), and
/// the base of session ids and proposal numbers.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
