//! The admin HTTP API, shaped like ZooKeeper's AdminServer: `/commands/<name>` answers JSON
//! (see [`commands`]), `/metrics` Prometheus's text format, and `/healthz` and `/readyz` the
//! probes of Kubernetes. It listens on `admin.serverAddress:admin.serverPort` (`--admin-addr`).

pub mod commands;
mod hash;
pub mod listener;
pub mod restore;
mod snapshot;

use crate::runtime::Node;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::CommandError;
use listener::{AdminListener, AdminPeer};
use serde_json::{json, Value};
use std::sync::Arc;

/// Serves the admin API on `listener` until the server stops.
pub async fn serve(listener: AdminListener, node: Arc<Node>) {
    let mut stopping = node.stopping();
    let app = Router::new()
        .route("/commands", get(list))
        .route("/commands/snapshot", get(snapshot::snapshot))
        .route("/commands/snap", get(snapshot::snapshot))
        .route("/commands/hash", get(hash::hash))
        .route("/commands/restore", post(restore::restore))
        .route("/commands/rest", post(restore::restore))
        .route("/commands/{name}", get(command).post(command))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .with_state(node);
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let app = app.into_make_service_with_connect_info::<AdminPeer>();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!("admin server stopped: {e}");
    }
}

/// A JSON answer with a status.
fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn list() -> Response {
    let names: Vec<&str> = commands::primary_names()
        .chain(["hash", "snapshot", "restore"])
        .collect();
    answer(StatusCode::OK, json!({ "commands": names }))
}

async fn command(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    ConnectInfo(peer): ConnectInfo<AdminPeer>,
    headers: HeaderMap,
) -> Response {
    if commands::reveals(&name) {
        if let Err(refused) = authorized(&node, &peer, &headers) {
            return refused;
        }
    }
    let result = { node.with_view(|view| commands::run(&name, &node.config, view)) };
    match result {
        Ok((primary, fields)) => {
            let mut body = serde_json::Map::new();
            body.insert("command".into(), json!(primary));
            // A command that ran but could not say what was asked (`leader` on a single
            // server) carries its own error, as in ZooKeeper.
            let error = fields.get("error").cloned().unwrap_or(Value::Null);
            body.insert("error".into(), error);
            body.extend(fields.into_iter().filter(|(k, _)| k != "error"));
            answer(StatusCode::OK, Value::Object(body))
        }
        Err(e) => {
            let status = match e {
                CommandError::Unknown(_) => StatusCode::NOT_FOUND,
                CommandError::NotServing => StatusCode::SERVICE_UNAVAILABLE,
            };
            answer(status, json!({ "command": name, "error": e.to_string() }))
        }
    }
}

/// Whether the request carries an admin identity: the admin token (`Authorization: Bearer
/// <token>`), ZooKeeper's super user (`Authorization: digest user:password`, as ZooKeeper
/// 3.9's AdminServer takes it), or over HTTPS a client certificate whose subject is the
/// `x509` super user. `Err` is the answer when it does not.
fn authorized(node: &Node, peer: &AdminPeer, headers: &HeaderMap) -> Result<(), Response> {
    if let (Some(shown), Some(super_user)) = (&peer.certificate, &node.config.x509_super_user) {
        if shown == super_user {
            return Ok(());
        }
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let (Some(user_password), Some(super_digest)) = (
        given.and_then(|v| v.strip_prefix("digest ")),
        node.config.super_digest.as_deref(),
    ) {
        let digest = zooid_proto::Id::digest(user_password.as_bytes()).id;
        if constant_time_eq(digest.as_bytes(), super_digest.as_bytes()) {
            return Ok(());
        }
    }
    let token = match node.admin_token() {
        Ok(Some(token)) => token,
        Ok(None) if node.config.super_digest.is_some() || node.config.x509_super_user.is_some() => {
            return Err(unauthorized(
                "missing or wrong admin identity (the super user's Authorization: digest \
                 user:password, or over HTTPS a client certificate for the x509 super user)",
            ));
        }
        Ok(None) => {
            let path = node.config.admin_token_path();
            let error = format!(
                "this command needs an admin identity, and none is configured: write an admin \
                 token to {} (read at each request, no restart needed), set \
                 ZOOID_ADMIN_TOKEN, or name a super user (DigestAuthenticationProvider.superDigest, \
                 or X509AuthenticationProvider.superUser with HTTPS on the admin port)",
                path.display()
            );
            return Err(answer(StatusCode::FORBIDDEN, json!({ "error": error })));
        }
        Err(e) => {
            let error = format!("the admin token cannot be read: {e}: {}", source_of(&e));
            return Err(answer(StatusCode::FORBIDDEN, json!({ "error": error })));
        }
    };
    match given.and_then(|v| v.strip_prefix("Bearer ")) {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(unauthorized(
            "missing or wrong admin token (Authorization: Bearer <token>, or the super user's \
             Authorization: digest user:password)",
        )),
    }
}

/// 401 with a JSON error saying what is expected.
fn unauthorized(error: &str) -> Response {
    let mut r = answer(StatusCode::UNAUTHORIZED, json!({ "error": error }));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The cause under an error, as one line (empty if none).
fn source_of(e: &dyn std::error::Error) -> String {
    e.source().map(ToString::to_string).unwrap_or_default()
}

/// Compares without an early exit, so that timing does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let text = node.render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Liveness: the process answers, and can still order writes (a server whose log failed
/// stops on its own; until then it is not healthy).
async fn healthz(State(node): State<Arc<Node>>) -> Response {
    match node.failure() {
        None => answer(StatusCode::OK, json!({ "status": "ok" })),
        Some(why) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "failed", "error": why.to_string() }),
        ),
    }
}

/// Readiness: serving clients, in a quorum and caught up (see [`Node::ready`]).
async fn readyz(State(node): State<Arc<Node>>) -> Response {
    let ready = node.ready();
    let mode = node.state().mode();
    match ready {
        Ok(()) => answer(StatusCode::OK, json!({ "ready": true, "mode": mode })),
        Err(why) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "ready": false, "mode": mode, "error": why.to_string() }),
        ),
    }
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    // `restore` takes the backup as a POST body; everything else is read with GET.
    let allowed = if uri.path().ends_with("/restore") || uri.path().ends_with("/rest") {
        "POST"
    } else {
        "GET"
    };
    let mut r = answer(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({ "error": format!("{method} is not allowed on {}: use {allowed}", uri.path()) }),
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
    r
}

async fn not_found(uri: axum::http::Uri) -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({ "error": format!("no such endpoint: {}", uri.path()) }),
    )
}
