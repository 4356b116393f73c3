//! Logs and traces. Logs go to stdout as text or JSON (`--log-format`), filtered by
//! `RUST_LOG`. Traces are exported over OTLP/HTTP when an endpoint is configured (`--otlp-endpoint`,
//! or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the
//! other `OTEL_*` variables, protocol, headers, sampler, resource, apply as the SDK reads them):
//! a span per client request, per applied write on every member it reaches, and per replication
//! step. Off by default; the spans then cost one disabled-callsite check each.

use crate::config::{Config, LogFormat};
use crate::state::command::TraceParent;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the spans exported as traces (requests, applies, replication steps). They
/// are at debug level, so that the log filter's default leaves them out.
pub const TRACE_TARGET: &str = "zooid::trace";

/// The log filter when `RUST_LOG` is not set. openraft warns at every heartbeat a peer
/// misses (three lines every 500 ms while a member is down); the peer transport says it once
/// instead (`zooid_replication::network`), so openraft's own lines are kept to errors.
const DEFAULT_LOG_FILTER: &str = "info,openraft=error,raft_log=warn,chunked_wal=warn";

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0:?}: Zooid exports http/protobuf or http/json")]
    Protocol(String),
    #[error("installing the log subscriber: {0}")]
    Init(#[from] tracing_subscriber::util::TryInitError),
}

/// The installed exporter; [`Telemetry::shutdown`] sends what is still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether traces are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter (at exit).
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                eprintln!("zooid: flushing traces: {e}");
            }
        }
    }
}

/// Where traces go, if anywhere: the flag, else the standard variables (unless the SDK is
/// disabled by `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).
fn otlp_endpoint(config: &Config) -> Option<Option<String>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return None;
    }
    if let Some(flag) = &config.otlp_endpoint {
        return Some(Some(flag.clone()));
    }
    (env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some())
    .then_some(None)
}

/// Installs the log output and, if configured, the trace exporter.
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => {
            // Colours only for a person at a terminal, never in files or log collectors (and
            // never when NO_COLOR is set).
            let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_filter(filter)
                .boxed()
        }
    };
    let Some(endpoint) = otlp_endpoint(config) else {
        tracing_subscriber::registry().with(logs).try_init()?;
        return Ok(Telemetry { provider: None });
    };
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .ok()
        .as_deref()
    {
        None | Some("http/protobuf") => opentelemetry_otlp::Protocol::HttpBinary,
        Some("http/json") => opentelemetry_otlp::Protocol::HttpJson,
        Some(other) => return Err(TelemetryError::Protocol(other.to_string())),
    };
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol);
    if let Some(base) = endpoint {
        // As OTEL_EXPORTER_OTLP_ENDPOINT: a base URL, to which the traces path is added.
        exporter = exporter.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
    }
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("zooid");
    }
    if let Some(e) = &config.ensemble {
        resource = resource.with_attribute(opentelemetry::KeyValue::new(
            "zooid.server_id",
            e.my_id as i64,
        ));
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter.build()?)
        .with_resource(resource.build())
        .build();
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("zooid"))
        .with_filter(
            Targets::new()
                .with_target(TRACE_TARGET, LevelFilter::DEBUG)
                .with_default(LevelFilter::OFF),
        );
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()?;
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// The trace context of `span`, if it is recorded in a sampled trace: what a write carries
/// to the other members (see [`crate::state::command::TraceParent`]).
pub fn trace_parent(span: &tracing::Span) -> Option<TraceParent> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    (sc.is_valid() && sc.is_sampled()).then(|| TraceParent {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

/// The span of applying a traced write on this member, in the trace of the request that
/// asked for it (which may have come to another member).
pub fn apply_span(parent: &TraceParent, zxid: i64, op: &str, server_id: u64) -> tracing::Span {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = tracing::debug_span!(
        target: TRACE_TARGET,
        "zooid.apply",
        zxid = format_args!("0x{zxid:x}"),
        op,
        server_id
    );
    if !span.is_disabled() {
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id),
            SpanId::from_bytes(parent.span_id),
            TraceFlags::new(parent.flags),
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    span
}
