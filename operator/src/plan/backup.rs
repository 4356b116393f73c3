//! The backup and restore side of the plan: pure, like the membership planner; the clock's
//! reading and whether the ensemble holds data are arguments.

use crate::backup::schedule;
use crate::crd::{BackupAttempt, BackupSchedule, RestorePhase, RestoreSpec, RestoreStatus};
use k8s_openapi::jiff::Timestamp;

/// The annotation whose every new value asks for one backup.
pub const BACKUP_REQUEST: &str = "zooid.io/backup-request";
/// The annotation whose every new value (a backup's URL) asks for an in-place restore.
pub const RESTORE_FROM: &str = "zooid.io/restore-from";

/// What the plan reads.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub backup: Option<&'a BackupSchedule>,
    pub restore: Option<&'a RestoreSpec>,
    /// The annotations' values.
    pub backup_request: Option<&'a str>,
    pub restore_request: Option<&'a str>,
    pub attempt: Option<&'a BackupAttempt>,
    pub restored: Option<&'a RestoreStatus>,
    /// When the Ensemble was created: a schedule counts from there.
    pub created: Timestamp,
    pub now: Timestamp,
    /// Whether the ensemble holds no data but ZooKeeper's own nodes; `None` when not looked
    /// at (only `spec.restore` needs it).
    pub empty: Option<bool>,
    /// The membership plan has nothing to do (restores wait for that; backups only need a
    /// quorum, which the caller checks).
    pub converged: bool,
}

/// The next backup or restore action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    /// Take a backup; `request` is the annotation's value it answers.
    Backup {
        request: Option<String>,
    },
    /// Restore `source`; the status records `Restoring` first.
    Restore {
        source: String,
        request: Option<String>,
    },
    /// Record a restore that will not happen (or ended unknown), and why.
    RestoreFailed {
        source: String,
        request: Option<String>,
        why: String,
    },
    /// The schedule cannot be read.
    BadSchedule(String),
}

/// Whether the ensemble must be looked at for data before [`next`] can decide: a
/// `spec.restore` not yet done.
pub fn needs_emptiness(i: &Inputs) -> bool {
    i.restore.is_some()
        && i.restored
            .is_none_or(|r| r.request.is_none() && r.phase == RestorePhase::Restoring)
}

/// Decides the next backup or restore action. Call it only while the membership is
/// converged and has a quorum: nothing here runs during a membership change or a roll.
pub fn next(i: &Inputs) -> Action {
    if let Some(restore) = next_restore(i) {
        return if i.converged { restore } else { Action::None };
    }
    next_backup(i)
}

fn next_restore(i: &Inputs) -> Option<Action> {
    // A restore that was under way when the operator stopped: it may or may not have
    // happened. Only an ensemble still empty is restored again; anything else is reported,
    // never restored a second time over writes that came since.
    if let Some(r) = i.restored.filter(|r| r.phase == RestorePhase::Restoring) {
        if r.request.is_none() && i.empty == Some(true) {
            return Some(Action::Restore {
                source: r.source.clone(),
                request: None,
            });
        }
        return Some(Action::RestoreFailed {
            source: r.source.clone(),
            request: r.request.clone(),
            why: "the operator stopped while the restore ran, and the ensemble holds data now: \
                  check it, and ask again (a new zooid.io/restore-from value) if it is not the \
                  backup's"
                .into(),
        });
    }
    if let Some(v) = i.restore_request {
        if i.restored.and_then(|r| r.request.as_deref()) != Some(v) {
            return Some(Action::Restore {
                source: v.to_string(),
                request: Some(v.to_string()),
            });
        }
    }
    if let (Some(spec), None) = (i.restore, i.restored) {
        return Some(match i.empty {
            Some(true) => Action::Restore {
                source: spec.from.clone(),
                request: None,
            },
            _ => Action::RestoreFailed {
                source: spec.from.clone(),
                request: None,
                why: "the ensemble already holds data: spec.restore only fills an empty one \
                      (the annotation zooid.io/restore-from restores in place)"
                    .into(),
            },
        });
    }
    None
}

fn next_backup(i: &Inputs) -> Action {
    let Some(b) = i.backup else {
        return Action::None;
    };
    if let Some(v) = i.backup_request {
        if i.attempt.and_then(|a| a.request.as_deref()) != Some(v) {
            return Action::Backup {
                request: Some(v.to_string()),
            };
        }
    }
    let Some(expr) = &b.schedule else {
        return Action::None;
    };
    let cron = match schedule::parse(expr) {
        Ok(c) => c,
        Err(e) => return Action::BadSchedule(e.to_string()),
    };
    let last = i.attempt.and_then(|a| a.time.parse::<Timestamp>().ok());
    if schedule::due(&cron, last, i.created, i.now) {
        Action::Backup { request: None }
    } else {
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule(expr: Option<&str>) -> BackupSchedule {
        BackupSchedule {
            schedule: expr.map(String::from),
            retain: 3,
            target: "s3://b/p".into(),
            credentials_secret: None,
        }
    }

    fn inputs<'a>(b: Option<&'a BackupSchedule>) -> Inputs<'a> {
        Inputs {
            backup: b,
            restore: None,
            backup_request: None,
            restore_request: None,
            attempt: None,
            restored: None,
            created: at("2026-12-07T00:00:00Z"),
            now: at("2026-12-07T00:30:00Z"),
            empty: None,
            converged: true,
        }
    }

    fn attempt(time: &str, request: Option<&str>) -> BackupAttempt {
        BackupAttempt {
            time: time.into(),
            request: request.map(String::from),
            error: None,
        }
    }

    #[test]
    fn backups_follow_the_schedule_and_each_new_request() {
        let hourly = schedule(Some("0 * * * *"));
        assert_eq!(next(&inputs(Some(&hourly))), Action::None);
        let mut i = inputs(Some(&hourly));
        i.now = at("2026-12-07T01:00:00Z");
        assert_eq!(next(&i), Action::Backup { request: None });
        let done = attempt("2026-12-07T01:00:01Z", None);
        i.attempt = Some(&done);
        assert_eq!(next(&i), Action::None);
        // A request is answered once per value, schedule or not.
        let on_request = schedule(None);
        let mut i = inputs(Some(&on_request));
        i.backup_request = Some("1");
        assert_eq!(
            next(&i),
            Action::Backup {
                request: Some("1".into())
            }
        );
        let answered = attempt("2026-12-07T00:10:00Z", Some("1"));
        i.attempt = Some(&answered);
        assert_eq!(next(&i), Action::None);
        i.backup_request = Some("2");
        assert!(matches!(next(&i), Action::Backup { .. }));
        // No backup section: nothing, whatever the annotations say.
        let mut i = inputs(None);
        i.backup_request = Some("1");
        assert_eq!(next(&i), Action::None);
        let bad = schedule(Some("whenever"));
        assert!(
            matches!(next(&inputs(Some(&bad))), Action::BadSchedule(e) if e.contains("whenever"))
        );
    }

    #[test]
    fn spec_restore_fills_only_an_empty_ensemble_once() {
        let spec = RestoreSpec {
            from: "s3://b/ns/old/x.zsnap".into(),
            credentials_secret: None,
        };
        let mut i = inputs(None);
        i.restore = Some(&spec);
        assert!(needs_emptiness(&i));
        i.empty = Some(true);
        assert_eq!(
            next(&i),
            Action::Restore {
                source: spec.from.clone(),
                request: None
            }
        );
        // Not while the membership changes: then nothing at all, not even a backup.
        i.converged = false;
        assert_eq!(next(&i), Action::None);
        i.converged = true;
        i.empty = Some(false);
        assert!(
            matches!(next(&i), Action::RestoreFailed { why, .. } if why.contains("already holds data"))
        );
        let done = RestoreStatus {
            source: spec.from.clone(),
            request: None,
            phase: RestorePhase::Restored,
            time: "2026-12-07T00:01:00Z".into(),
            zxid: Some("0x5".into()),
            digest: Some("42".into()),
            message: None,
        };
        i.restored = Some(&done);
        assert!(!needs_emptiness(&i));
        assert_eq!(next(&i), Action::None);
    }

    #[test]
    fn an_interrupted_restore_is_never_repeated_over_new_data() {
        let interrupted = RestoreStatus {
            source: "s3://b/x.zsnap".into(),
            request: Some("s3://b/x.zsnap".into()),
            phase: RestorePhase::Restoring,
            time: "2026-12-07T00:01:00Z".into(),
            zxid: None,
            digest: None,
            message: None,
        };
        let mut i = inputs(None);
        i.restored = Some(&interrupted);
        i.restore_request = Some("s3://b/x.zsnap");
        assert!(matches!(next(&i), Action::RestoreFailed { .. }));
        // The spec's restore, interrupted while the ensemble is still empty: again.
        let spec = RestoreSpec {
            from: "s3://b/x.zsnap".into(),
            credentials_secret: None,
        };
        let mut from_spec = interrupted.clone();
        from_spec.request = None;
        let mut i = inputs(None);
        i.restore = Some(&spec);
        i.restored = Some(&from_spec);
        assert!(needs_emptiness(&i));
        i.empty = Some(true);
        assert!(matches!(next(&i), Action::Restore { request: None, .. }));
        i.empty = Some(false);
        assert!(matches!(next(&i), Action::RestoreFailed { .. }));
        // A new request value restores in place after a failed one.
        let mut failed = interrupted.clone();
        failed.phase = RestorePhase::Failed;
        let mut i = inputs(None);
        i.restored = Some(&failed);
        i.restore_request = Some("s3://b/y.zsnap");
        assert!(matches!(
            next(&i),
            Action::Restore {
                request: Some(_),
                ..
            }
        ));
    }
}
