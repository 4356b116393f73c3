//! When a scheduled backup is due: pure, the clock's reading is an argument.

use croner::Cron;
use k8s_openapi::jiff::{tz::TimeZone, Timestamp};
use std::str::FromStr;

/// Checks a cron expression (five fields, or six with seconds first), in UTC.
pub fn parse(schedule: &str) -> Result<Cron, super::BackupError> {
    Cron::from_str(schedule).map_err(|e| super::BackupError::Schedule {
        schedule: schedule.into(),
        why: e.to_string(),
    })
}

/// The first time `cron` fires after `after`.
pub fn next_after(cron: &Cron, after: Timestamp) -> Option<Timestamp> {
    cron.find_next_occurrence(&after.to_zoned(TimeZone::UTC), false)
        .ok()
        .map(|z| z.timestamp())
}

/// Whether a backup is due at `now`: the schedule fired since the last attempt (or, before
/// any, since `since`, when the schedule was first seen). One backup for any number of
/// firings missed meanwhile, as a CronJob with `concurrencyPolicy: Forbid` would.
pub fn due(cron: &Cron, last_attempt: Option<Timestamp>, since: Timestamp, now: Timestamp) -> bool {
    next_after(cron, last_attempt.unwrap_or(since)).is_some_and(|next| next <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_backup_is_due_once_the_schedule_fired_since_the_last() {
        let every_6h = parse("0 */6 * * *").unwrap();
        let created = at("2026-12-07T01:00:00Z");
        assert!(!due(&every_6h, None, created, at("2026-12-07T05:59:59Z")));
        assert!(due(&every_6h, None, created, at("2026-12-07T06:00:00Z")));
        let last = at("2026-12-07T06:00:03Z");
        assert!(!due(
            &every_6h,
            Some(last),
            created,
            at("2026-12-07T11:00:00Z")
        ));
        // Missed firings give one backup, not one each.
        assert!(due(
            &every_6h,
            Some(last),
            created,
            at("2026-12-08T11:00:00Z")
        ));
        assert_eq!(
            next_after(&every_6h, last),
            Some(at("2026-12-07T12:00:00Z"))
        );
    }

    #[test]
    fn a_bad_schedule_names_itself() {
        let e = parse("every day").unwrap_err().to_string();
        assert!(e.contains("every day"), "{e}");
        // Six fields: seconds first.
        let every_10s = parse("*/10 * * * * *").unwrap();
        assert_eq!(
            next_after(&every_10s, at("2026-12-07T01:00:01Z")),
            Some(at("2026-12-07T01:00:10Z"))
        );
    }
}
