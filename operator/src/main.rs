//! `zooid-operator`: watches Ensembles (in every namespace, or the one given) and the objects
//! they own, reconciles each change; serves `/healthz`, `/readyz` and `/metrics`.

use anyhow::Context as _;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{predicates, reflector, watcher, Predicate, WatchStreamExt};
use kube::Api;
use std::sync::Arc;
use std::time::Duration;
use zooid_operator::crd::Ensemble;
use zooid_operator::leadership::{self, Leadership};
use zooid_operator::metrics::Metrics;
use zooid_operator::reconcile::{reconcile, Context, Error};

/// Command line: `zooid-operator [--namespace NS[,NS...]] [--listen ADDR]
/// [--lease-namespace NS]`.
struct Args {
    /// The namespaces watched; none: all of them.
    namespaces: Vec<String>,
    listen: std::net::SocketAddr,
    /// Leader election through a Lease in this namespace (several replicas); none: this
    /// process reconciles alone.
    lease_namespace: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut namespace = std::env::var("ZOOID_OPERATOR_NAMESPACE").ok();
    let mut listen =
        std::env::var("ZOOID_OPERATOR_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let mut lease_namespace = std::env::var("ZOOID_OPERATOR_LEASE_NAMESPACE").ok();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--namespace" => namespace = it.next(),
            "--listen" => listen = it.next().context("--listen needs an address")?,
            "--lease-namespace" => {
                lease_namespace = Some(it.next().context("--lease-namespace needs a namespace")?)
            }
            other => anyhow::bail!(
                "unknown argument {other:?} (--namespace NS, --listen ADDR, --lease-namespace NS)"
            ),
        }
    }
    let namespaces = namespace
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    Ok(Args {
        lease_namespace,
        namespaces,
        listen: listen
            .parse()
            .with_context(|| format!("--listen {listen}"))?,
    })
}

/// `/readyz`: 200 when the API server answers within 2 s, else 503 saying why.
async fn readyz(client: &kube::Client) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    match tokio::time::timeout(Duration::from_secs(2), client.apiserver_version()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok".into()),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the API server: {e}"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the API server did not answer within 2 s".into(),
        ),
    }
}

fn error_policy(_: Arc<Ensemble>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!("reconcile failed: {error}");
    Action::requeue(Duration::from_secs(5))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything builds an HTTP client (the OTLP exporter's, kube's).
    zooid_operator::use_ring_for_tls();
    let telemetry = zooid_operator::telemetry::init().context("starting telemetry")?;
    let result = run().await;
    // The last reconciles' spans, still buffered, are sent before the process ends.
    telemetry.shutdown();
    result
}

async fn run() -> anyhow::Result<()> {
    let args = args()?;
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes client configuration (KUBECONFIG or in-cluster)")?;
    let metrics = Metrics::new();
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let api = client.clone();
    let app = axum::Router::new()
        // Alive while the process runs: a leader that cannot renew its Lease stops itself.
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        // Ready while the API server answers it (a standby replica too: it serves metrics
        // and takes over when the Lease is free).
        .route(
            "/readyz",
            axum::routing::get(move || {
                let api = api.clone();
                async move { readyz(&api).await }
            }),
        )
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = metrics.clone();
                async move { m.text() }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the health and metrics server stopped: {e}");
        }
    });
    let mut leadership = match &args.lease_namespace {
        None => None,
        Some(ns) => {
            let identity = std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("zooid-operator-{}", std::process::id()));
            tracing::info!(%identity, "waiting for the lease {ns}/{}", leadership::LEASE);
            let acquired = tokio::select! {
                l = Leadership::acquire(client.clone(), ns, &identity) => l,
                _ = terminated() => return Ok(()),
            };
            Some(acquired.context("leader election")?)
        }
    };
    ctx.metrics.leading(true);
    tracing::info!(namespaces = ?args.namespaces, "zooid-operator running");
    let metrics = ctx.metrics.clone();
    // One controller per namespace watched (or one for all): each with its own watches, so
    // that a list of namespaces needs no cluster-wide permission.
    let scopes: Vec<Option<&str>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    let controller = futures_util::future::join_all(
        scopes
            .into_iter()
            .map(|scope| controller(&client, scope, ctx.clone())),
    );
    match &mut leadership {
        None => {
            controller.await;
        }
        Some(l) => {
            tokio::select! {
                _ = controller => {}
                _ = l.lost() => {
                    // Another replica may take the Lease from now on: stop reconciling at
                    // once, and come back as a candidate.
                    metrics.leading(false);
                    anyhow::bail!("the lease was lost: stopping");
                }
            }
        }
    }
    metrics.leading(false);
    if let Some(l) = leadership {
        l.release().await;
    }
    Ok(())
}

/// The controller of the Ensembles in `namespace` (or in all), until SIGTERM or SIGINT.
async fn controller(client: &kube::Client, namespace: Option<&str>, ctx: Arc<Context>) {
    fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let ensembles: Api<Ensemble> = api(client, namespace);
    let statefulsets: Api<StatefulSet> = api(client, namespace);
    let pods: Api<Pod> = api(client, namespace);
    let pods_config = watcher::Config::default().labels("app.kubernetes.io/name=zooid");
    // The Ensembles that wake the controller: a new generation (the spec) or new annotations,
    // not a status write. The status changes on every reconcile while members' lag moves under
    // load, and waking on it would reconcile in a loop; steps under way come back by requeue.
    let (reader, writer) = reflector::store();
    let trigger = watcher(ensembles, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::annotations),
            Default::default(),
        );
    Controller::for_stream(trigger, reader)
        .owns(statefulsets, watcher::Config::default())
        .owns(pods, pods_config)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await;
}

/// SIGTERM or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
