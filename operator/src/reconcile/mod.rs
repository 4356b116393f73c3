//! The reconcile pipeline: observe (the API server and the members), validate the spec, plan
//! the one next step ([`crate::plan`]), apply the objects and carry the step out, write the
//! status. Every stage that does I/O is here; every decision is in the planner.

pub mod apply;
mod backups;
pub mod ensemble;
pub mod membership;
mod monitor;
pub mod observe;
mod status;

use crate::build::{config, credentials, maps, names::Names, pdb, services, statefulset};
use crate::crd::{Ensemble, VolumePolicy};
use crate::plan::observed::{Role, Set};
use crate::plan::{self, Desired, Step};
use crate::telemetry::TRACE_TARGET;
use ensemble::Change;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Why a reconcile failed (it is retried with a backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the API server: {0}")]
    Kube(#[from] kube::Error),
    #[error("the ensemble: {0}")]
    Ensemble(String),
    #[error("the Ensemble has no namespace or uid yet")]
    Incomplete,
}

/// Every kind [`Error::kind`] gives: the metrics start each at 0.
pub const ERROR_KINDS: &[&str] = &["kube", "ensemble", "incomplete"];

impl Error {
    /// The metric label of the error's kind (one of [`ERROR_KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Ensemble(_) => "ensemble",
            Error::Incomplete => "incomplete",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub http: reqwest::Client,
    pub metrics: crate::metrics::Metrics,
    /// Events on the Ensemble for every change the operator makes, and for a lost quorum.
    pub recorder: kube::runtime::events::Recorder,
}

impl Context {
    pub fn new(client: kube::Client, metrics: crate::metrics::Metrics) -> Context {
        let reporter = kube::runtime::events::Reporter {
            controller: "zooid-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: kube::runtime::events::Recorder::new(client.clone(), reporter),
            client,
            http: reqwest::Client::new(),
            metrics,
        }
    }
}

/// The event a step is announced with: reason and note (`None` for steps that change
/// nothing). `before` is what the StatefulSets had: the voters' (`None` before there is one)
/// and the observers'.
fn event_of(step: &Step, before: (Option<i32>, i32)) -> Option<(&'static str, String)> {
    let (replicas_before, observers_before) = before;
    Some(match step {
        Step::Apply {
            replicas,
            observers,
        } if replicas_before.is_none() => (
            "Creating",
            format!("creating the ensemble with {replicas} members and {observers} observers"),
        ),
        Step::Apply { replicas, .. } if replicas_before != Some(*replicas) => (
            "Scaling",
            format!(
                "StatefulSet from {} to {replicas} pods",
                replicas_before.unwrap_or(0)
            ),
        ),
        Step::Apply { observers, .. } if observers_before != *observers => (
            "Scaling",
            format!("observers' StatefulSet from {observers_before} to {observers} pods"),
        ),
        Step::Record(op) => (
            "OperationStarted",
            format!("{:?} server {}", op.kind, op.server_id),
        ),
        Step::Clear => (
            "OperationDone",
            "the operation is confirmed in live state".into(),
        ),
        Step::Join { server_id, .. } => (
            "MemberJoining",
            format!("server {server_id} joins as a non-voter"),
        ),
        Step::Promote { server_id, .. } => (
            "MemberPromoted",
            format!("server {server_id} becomes a voter"),
        ),
        Step::Remove { server_id, .. } => (
            "MemberRemoved",
            format!("server {server_id} reconfigured out of the ensemble"),
        ),
        Step::Restart { server_id } => (
            "MemberRestarted",
            format!("server {server_id}'s pod deleted to run the current template"),
        ),
        Step::DeleteVolume { server_id } => (
            "VolumeDeleted",
            format!("the volume of removed server {server_id} deleted"),
        ),
        _ => return None,
    })
}

/// Entries a member may be behind the leader and count as caught up.
const CAUGHT_UP_LAG: i64 = 1000;

pub async fn reconcile(ens: Arc<Ensemble>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let (namespace, ensemble) = (ens.namespace().unwrap_or_default(), ens.name_any());
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "reconcile",
        namespace = %namespace,
        ensemble = %ensemble,
        step = tracing::field::Empty,
        error = tracing::field::Empty,
    );
    let result = run(&ens, &ctx).instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("error", tracing::field::display(e));
    }
    let key = crate::metrics::Key {
        namespace: &namespace,
        ensemble: &ensemble,
    };
    ctx.metrics.reconciled(
        key,
        started.elapsed(),
        result.as_ref().err().map(Error::kind),
    );
    result
}

async fn run(ens: &Ensemble, ctx: &Context) -> Result<Action, Error> {
    let ns = ens.namespace().ok_or(Error::Incomplete)?;
    let names = Names::new(&ens.name_any(), &ns);
    let owner = ens.controller_owner_ref(&()).ok_or(Error::Incomplete)?;
    let client = &ctx.client;

    // Validate: a spec that cannot be rendered changes nothing and says why.
    let static_config = match config::static_config(&ens.spec) {
        Ok(c) => c,
        Err(e) => {
            status::write(client, ens, status::invalid(ens, &e.to_string())).await?;
            return Ok(Action::await_change());
        }
    };
    let revision = config::revision(&static_config, &ens.spec.image);
    let super_user = credentials_of(client, ens, &names, &owner).await?;

    let (observed, reachable) = observe::observe(client, &ctx.http, ens, &names, &super_user)
        .instrument(tracing::info_span!(target: TRACE_TARGET, "observe"))
        .await?;
    let desired = Desired {
        replicas: ens.spec.replicas,
        observers: ens.spec.observers,
        revision: revision.clone(),
        paused: ens.spec.paused,
        caught_up_lag: CAUGHT_UP_LAG,
    };
    let delete_volumes = ens.spec.storage.on_scale_down == VolumePolicy::Delete;
    let step = plan::plan(&desired, &observed, delete_volumes);
    tracing::Span::current().record("step", tracing::field::debug(&step));
    tracing::info!(ensemble = %names.ensemble, ?step, "planned");

    // The objects that follow the live membership (or, before there is one, the spec).
    let plan::Listed {
        voters,
        non_voters,
        members,
    } = plan::listed(&desired, &observed);
    let sets = Sets {
        ens,
        names: &names,
        owner: &owner,
        revision: &revision,
        observers_before: observed.observer_replicas,
    };
    let mut monitor_outcome = None;
    if !ens.spec.paused {
        let dynamic = config::dynamic_config(&names, &voters, &non_voters);
        apply::apply(client, &services::peers_service(&names, &owner)).await?;
        apply::apply(client, &services::client_service(ens, &names, &owner)).await?;
        apply::apply(
            client,
            &maps::config_map(&names, &owner, &static_config, &dynamic),
        )
        .await?;
        apply::apply(
            client,
            &maps::discovery_config_map(&names, &owner, &members),
        )
        .await?;
        apply::apply(client, &pdb::pdb(&names, &owner, voters.len() as i32)).await?;
        let made_before = status::pod_monitor_made(ens);
        monitor_outcome = Some(
            monitor::reconcile(
                client,
                &names,
                &owner,
                ens.spec.metrics.pod_monitor,
                made_before,
            )
            .await?,
        );
        // The pod template follows the spec at every turn, at the replicas the StatefulSet
        // has (only an Apply step changes those): with OnDelete nothing restarts for it, and
        // a pod that a roll deletes comes back on the current revision, not the old one.
        if let (Some(current), false) = (
            observed.statefulset_replicas,
            matches!(step, Step::Apply { .. }),
        ) {
            sets.apply(client, current, observed.observer_replicas)
                .await?;
        }
    }

    let step_span = tracing::info_span!(target: TRACE_TARGET, "step", step = ?step);
    let requeue = async {
        Ok::<_, Error>(match &step {
            Step::Apply {
                replicas,
                observers,
            } => {
                sets.apply(client, *replicas, *observers).await?;
                Duration::from_secs(2)
            }
            Step::Record(op) => {
                let mut s = ens.status.clone().unwrap_or_default();
                s.pending = Some(status::recorded(op, Timestamp::now()));
                status::write(client, ens, s).await?;
                Duration::from_millis(200)
            }
            Step::Clear => {
                let mut s = ens.status.clone().unwrap_or_default();
                s.pending = None;
                status::write(client, ens, s).await?;
                Duration::from_millis(200)
            }
            Step::Join { server_id, version } => {
                let line = member_line(&names, *server_id, Role::Observer);
                ensemble::reconfig(&reachable, &super_user, &Change::Join(line), version).await?;
                Duration::from_secs(1)
            }
            Step::Promote { server_id, version } => {
                let line = member_line(&names, *server_id, Role::Participant);
                ensemble::reconfig(&reachable, &super_user, &Change::Join(line), version).await?;
                Duration::from_secs(1)
            }
            Step::Remove { server_id, version } => {
                ensemble::reconfig(&reachable, &super_user, &Change::Leave(*server_id), version)
                    .await?;
                Duration::from_secs(1)
            }
            Step::Restart { server_id } => {
                // A leader's SIGTERM hands the leadership over before it stops.
                let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
                delete_if_present(&pods, &names.pod(*server_id)).await?;
                Duration::from_secs(2)
            }
            Step::DeleteVolume { server_id } => {
                let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
                delete_if_present(&claims, &names.volume_claim(*server_id)).await?;
                Duration::from_secs(1)
            }
            Step::Wait(_) => Duration::from_secs(2),
            Step::Done => Duration::from_secs(30),
        })
    }
    .instrument(step_span)
    .await?;
    let reference = ens.object_ref(&());
    let before = (observed.statefulset_replicas, observed.observer_replicas);
    if let Some((reason, note)) = event_of(&step, before) {
        publish(ctx, &reference, EventType::Normal, reason, note).await;
    }
    let mut fresh = status::observed(ens, &names, &observed, &step, Timestamp::now());
    let has_quorum = status::has_quorum(&fresh);
    let quiet = matches!(step, Step::Done | Step::Wait(_));
    let mut requeue = requeue;
    if has_quorum && quiet && !ens.spec.paused {
        let next = backup_turn(
            ctx,
            ens,
            &names,
            &observed,
            &reachable,
            &super_user,
            &mut fresh,
        )
        .instrument(tracing::info_span!(target: TRACE_TARGET, "backups"))
        .await?;
        requeue = requeue.min(next);
    }
    let m = observed.membership.as_ref();
    ctx.metrics.ensemble(
        names.metrics_key(),
        &crate::metrics::Seen {
            has_quorum,
            voters: m.map_or(0, |m| m.voter_count()),
            ready_members: fresh.ready_members,
            backups: ens.spec.backup.is_some(),
            leader: m.and_then(|m| m.leader),
            lag: m.map_or_else(Default::default, |m| {
                m.lag
                    .iter()
                    .map(|(id, lag)| (names.pod(*id), *lag))
                    .collect()
            }),
        },
    );
    if let Some(outcome) = &monitor_outcome {
        status::pod_monitor(&mut fresh, ens, outcome);
        if let monitor::Outcome::Refused { why, .. } = outcome {
            publish(
                ctx,
                &reference,
                EventType::Warning,
                "PodMonitorFailed",
                why.clone(),
            )
            .await;
        }
    }
    if status::quorum_lost(&fresh) {
        let note = "members run, but none reports the membership: the quorum is lost".into();
        publish(ctx, &reference, EventType::Warning, "QuorumLost", note).await;
    }
    if let Some(note) = status::step_timed_out(&fresh) {
        publish(ctx, &reference, EventType::Warning, "StepTimedOut", note).await;
    }
    status::write(client, ens, fresh).await?;
    Ok(Action::requeue(requeue))
}

/// The two StatefulSets, built from the spec at every turn.
struct Sets<'a> {
    ens: &'a Ensemble,
    names: &'a Names,
    owner: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    revision: &'a str,
    /// The observers' StatefulSet's replicas as observed (0 when there is none).
    observers_before: i32,
}

impl Sets<'_> {
    /// The voters' StatefulSet at `replicas` pods and the observers' at `observers`; the
    /// observers' is made only once the spec asks for observers, and kept after (brought to
    /// 0 when they have all left).
    async fn apply(
        &self,
        client: &kube::Client,
        replicas: i32,
        observers: i32,
    ) -> Result<(), Error> {
        let build = |set, n| {
            statefulset::statefulset(self.ens, self.names, self.owner, set, n, self.revision)
        };
        apply::apply(client, &build(Set::Voters, replicas)).await?;
        if observers > 0 || self.observers_before > 0 || self.ens.spec.observers > 0 {
            apply::apply(client, &build(Set::Observers, observers)).await?;
        }
        Ok(())
    }
}

/// The backup and restore side of a reconcile: decided by [`plan::backup::next`], carried
/// out here, recorded in `status` (a restore's intent written before it starts). Returns how
/// soon the schedule wants the next look.
async fn backup_turn(
    ctx: &Context,
    ens: &Ensemble,
    names: &Names,
    observed: &plan::observed::Observed,
    reachable: &[ensemble::Reachable],
    super_user: &str,
    status: &mut crate::crd::EnsembleStatus,
) -> Result<Duration, Error> {
    use crate::backup::{schedule, Location};
    use crate::crd::{BackupAttempt, RestorePhase, RestoreStatus};
    use plan::backup::{Action as BackupAction, BACKUP_REQUEST, RESTORE_FROM};

    let annotation = |key: &str| ens.annotations().get(key).map(String::as_str);
    let now = Timestamp::now();
    let created = ens
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let mut inputs = plan::backup::Inputs {
        backup: ens.spec.backup.as_ref(),
        restore: ens.spec.restore.as_ref(),
        backup_request: annotation(BACKUP_REQUEST),
        restore_request: annotation(RESTORE_FROM),
        attempt: status.backup_attempt.as_ref(),
        restored: status.restore.as_ref(),
        created,
        now,
        empty: None,
        converged: true,
    };
    if plan::backup::needs_emptiness(&inputs) {
        match ensemble::holds_no_data(reachable, super_user).await {
            Some(empty) => inputs.empty = Some(empty),
            None => return Ok(Duration::from_secs(2)),
        }
    }
    let action = plan::backup::next(&inputs);
    // The member a backup is taken from or a restore sent to: the leader, which has every
    // committed write applied.
    let leader = observed
        .membership
        .as_ref()
        .and_then(|m| m.leader)
        .and_then(|id| reachable.iter().find(|r| r.server_id == id));
    let reference = ens.object_ref(&());
    match action {
        BackupAction::None => {}
        BackupAction::BadSchedule(why) => {
            status::backup_failing(status, ens, Some(("BadSchedule", why.as_str())));
        }
        BackupAction::Backup { request } => {
            let b = ens.spec.backup.as_ref().ok_or(Error::Incomplete)?;
            let result = async {
                let target = Location::parse(&b.target)?;
                let credentials = secret_data(ctx, names, b.credentials_secret.as_deref()).await?;
                let member = leader.ok_or_else(|| {
                    crate::backup::BackupError::NoMember("no leader is reachable".into())
                })?;
                backups::take(
                    &ctx.http,
                    &target,
                    credentials.as_ref(),
                    &names.namespace,
                    &names.ensemble,
                    usize::try_from(b.retain).unwrap_or(1).max(1),
                    member,
                    super_user,
                    now,
                )
                .await
            }
            .instrument(tracing::info_span!(target: TRACE_TARGET, "backup"))
            .await;
            let mut attempt = BackupAttempt {
                time: now.to_string(),
                request,
                error: None,
            };
            match result {
                Ok(record) => {
                    ctx.metrics
                        .backup(names.metrics_key(), Some(now.as_second()));
                    let note = format!(
                        "backup at zxid {} in {} ({} bytes, sha256 {})",
                        record.zxid, record.location, record.size_bytes, record.sha256
                    );
                    publish(ctx, &reference, EventType::Normal, "BackupTaken", note).await;
                    status.last_backup = Some(record);
                    status::backup_failing(status, ens, None);
                }
                Err(e) => {
                    ctx.metrics.backup(names.metrics_key(), None);
                    let why = e.to_string();
                    tracing::warn!(ensemble = %names.ensemble, "backup failed: {why}");
                    publish(
                        ctx,
                        &reference,
                        EventType::Warning,
                        "BackupFailed",
                        why.clone(),
                    )
                    .await;
                    status::backup_failing(status, ens, Some(("BackupFailed", why.as_str())));
                    attempt.error = Some(why);
                }
            }
            status.backup_attempt = Some(attempt);
        }
        BackupAction::Restore { source, request } => {
            status.restore = Some(RestoreStatus {
                source: source.clone(),
                request: request.clone(),
                phase: RestorePhase::Restoring,
                time: now.to_string(),
                zxid: None,
                digest: None,
                message: None,
            });
            // The intent first: an operator that stops during the restore finds it.
            status::write(&ctx.client, ens, status.clone()).await?;
            publish(
                ctx,
                &reference,
                EventType::Normal,
                "RestoreStarted",
                format!("restoring {source}"),
            )
            .await;
            let secret = match &request {
                None => ens
                    .spec
                    .restore
                    .as_ref()
                    .and_then(|r| r.credentials_secret.clone()),
                Some(_) => ens
                    .spec
                    .backup
                    .as_ref()
                    .and_then(|b| b.credentials_secret.clone()),
            };
            let result = async {
                let from = Location::parse(&source)?;
                let credentials = secret_data(ctx, names, secret.as_deref()).await?;
                let member = leader.ok_or_else(|| {
                    crate::backup::BackupError::NoMember("no leader is reachable".into())
                })?;
                backups::restore(&ctx.http, &from, credentials.as_ref(), member, super_user).await
            }
            .instrument(tracing::info_span!(target: TRACE_TARGET, "restore"))
            .await;
            let done = Timestamp::now().to_string();
            let r = status.restore.as_mut().ok_or(Error::Incomplete)?;
            r.time = done;
            match result {
                Ok(restored) => {
                    ctx.metrics.restore(names.metrics_key(), true);
                    let note = format!("restored {source} up to zxid {}", restored.zxid);
                    publish(ctx, &reference, EventType::Normal, "Restored", note).await;
                    r.phase = RestorePhase::Restored;
                    r.zxid = Some(restored.zxid);
                    r.digest = restored.digest;
                }
                Err(e) => {
                    ctx.metrics.restore(names.metrics_key(), false);
                    let why = e.to_string();
                    publish(
                        ctx,
                        &reference,
                        EventType::Warning,
                        "RestoreFailed",
                        why.clone(),
                    )
                    .await;
                    r.phase = RestorePhase::Failed;
                    r.message = Some(why);
                }
            }
        }
        BackupAction::RestoreFailed {
            source,
            request,
            why,
        } => {
            publish(
                ctx,
                &reference,
                EventType::Warning,
                "RestoreRefused",
                why.clone(),
            )
            .await;
            status.restore = Some(RestoreStatus {
                source,
                request,
                phase: RestorePhase::Failed,
                time: now.to_string(),
                zxid: None,
                digest: None,
                message: Some(why),
            });
        }
    }
    // The next look: when the schedule fires next.
    let next = ens
        .spec
        .backup
        .as_ref()
        .and_then(|b| b.schedule.as_deref())
        .and_then(|expr| schedule::parse(expr).ok())
        .and_then(|cron| {
            let last = status
                .backup_attempt
                .as_ref()
                .and_then(|a| a.time.parse::<Timestamp>().ok())
                .unwrap_or(created);
            schedule::next_after(&cron, last)
        })
        .map_or(Duration::from_secs(3600), |at| {
            let wait = at.as_millisecond().saturating_sub(now.as_millisecond());
            Duration::from_millis(u64::try_from(wait).unwrap_or(0)).max(Duration::from_secs(1))
        });
    Ok(next)
}

/// A Secret's keys and values (`None` for no Secret named).
async fn secret_data(
    ctx: &Context,
    names: &Names,
    secret: Option<&str>,
) -> Result<Option<std::collections::BTreeMap<String, String>>, crate::backup::BackupError> {
    let Some(name) = secret else {
        return Ok(None);
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let s = secrets
        .get(name)
        .await
        .map_err(|e| crate::backup::BackupError::Credentials(format!("Secret {name}: {e}")))?;
    Ok(Some(
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect(),
    ))
}

/// Publishes an event on the Ensemble; a failure to publish is logged, never fatal.
async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = kube::runtime::events::Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, reference).await {
        tracing::warn!("publishing event {reason}: {e}");
    }
}

/// The `server.N=...` line of a member in `role`, as its dynamic configuration has it.
fn member_line(names: &Names, id: i64, role: Role) -> String {
    let joining: &[i64] = if role == Role::Observer { &[id] } else { &[] };
    let voting: &[i64] = if role == Role::Participant {
        &[id]
    } else {
        &[]
    };
    config::dynamic_config(names, voting, joining)
        .trim_end()
        .to_string()
}

async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The super user's `user:password`: from the Secret the spec names, else the operator's own
/// (made once, kept in `<name>-operator`). Its digest is what the members are started with.
async fn credentials_of(
    client: &kube::Client,
    ens: &Ensemble,
    names: &Names,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<String, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &names.namespace);
    let read = |s: &Secret, key: &str| -> Option<String> {
        s.data
            .as_ref()?
            .get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let user_password = match &ens.spec.super_user {
        Some(r) => {
            let s = secrets.get(&r.name).await?;
            read(&s, &r.key)
                .ok_or_else(|| Error::Ensemble(format!("Secret {} has no key {}", r.name, r.key)))?
        }
        None => match secrets.get_opt(&names.credentials_secret()).await? {
            Some(s) => read(&s, "credentials").unwrap_or_default(),
            None => {
                use rand::distr::{Alphanumeric, SampleString};
                let password = Alphanumeric.sample_string(&mut rand::rng(), 32);
                format!("super:{password}")
            }
        },
    };
    if !user_password.contains(':') {
        return Err(Error::Ensemble(
            "the super user must be given as user:password".into(),
        ));
    }
    apply::apply(client, &credentials::secret(names, owner, &user_password)).await?;
    Ok(user_password)
}
