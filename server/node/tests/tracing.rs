//! Traces over OTLP: an in-process receiver (OTLP/HTTP with JSON bodies) takes the spans of a
//! 3-member ensemble. A write sent to a follower is one trace: its request span on that
//! follower, and the spans of applying it on the leader and on every other member.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, Layout};
use common::RawClient;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zooid_e2e::wait::wait_until;

/// One received span.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
    /// The `zooid.server_id` of the process that sent it.
    server: i64,
    attributes: HashMap<String, String>,
}

/// Accepts OTLP/HTTP exports on a loopback port and keeps their spans.
fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Span>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    if line.starts_with("POST /v1/traces") {
                        let export: Value = serde_json::from_slice(&body).unwrap();
                        kept.lock().unwrap().extend(spans_of(&export));
                    }
                    let reply = "{}";
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    )
                    .unwrap();
                }
            });
        }
    });
    (addr, spans)
}

fn attributes(list: &Value) -> HashMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let v = &a["value"];
            let text = v["stringValue"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["intValue"].as_str().map(str::to_string))
                .or_else(|| v["intValue"].as_i64().map(|i| i.to_string()))
                .unwrap_or_else(|| v.to_string());
            (a["key"].as_str().unwrap().to_string(), text)
        })
        .collect()
}

fn spans_of(export: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in export["resourceSpans"].as_array().into_iter().flatten() {
        let resource = attributes(&rs["resource"]["attributes"]);
        let server = resource
            .get("zooid.server_id")
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                out.push(Span {
                    name: s["name"].as_str().unwrap_or_default().to_string(),
                    trace: s["traceId"].as_str().unwrap_or_default().to_string(),
                    id: s["spanId"].as_str().unwrap_or_default().to_string(),
                    parent: s["parentSpanId"].as_str().unwrap_or_default().to_string(),
                    server,
                    attributes: attributes(&s["attributes"]),
                });
            }
        }
    }
    out
}

#[test]
fn a_write_on_a_follower_is_one_trace_across_the_members() {
    let (otlp, spans) = receiver();
    let root = tempfile::tempdir().unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_string()),
        // Export every 100 ms rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let (members, _) = ensemble::start_with_env(
        root.path(),
        "",
        Layout {
            voters: 3,
            observers: 0,
            proxied: false,
        },
        &env,
    );
    let leader = ensemble::settled(&members, Duration::from_secs(10));
    let follower = &members[(leader + 1) % 3];
    let mut c = RawClient::connect(follower.client);
    c.create("/traced", b"v", 0).unwrap();
    c.get("/traced", false).unwrap();

    let find = |spans: &[Span]| -> Option<(Span, Vec<Span>)> {
        let request = spans.iter().find(|s| {
            s.name == "zooid.request"
                && s.attributes.get("op").map(String::as_str) == Some("create")
        })?;
        let applies: Vec<Span> = spans
            .iter()
            .filter(|s| s.name == "zooid.apply" && s.trace == request.trace)
            .cloned()
            .collect();
        let servers: HashSet<i64> = applies.iter().map(|s| s.server).collect();
        (servers.len() == 3).then(|| (request.clone(), applies))
    };
    let mut found = None;
    wait_until(
        "the write's spans from every member",
        Duration::from_secs(20),
        || {
            found = find(&spans.lock().unwrap());
            found.is_some()
        },
    );
    let (request, applies) = found.unwrap();
    assert_eq!(request.server, follower.id as i64, "{request:?}");
    assert_eq!(
        request.attributes["session"],
        format!("0x{:x}", c.session_id)
    );
    assert!(request.attributes.contains_key("zxid"), "{request:?}");
    for a in &applies {
        // Each member's apply is a child of the request on the follower.
        assert_eq!(a.parent, request.id, "{a:?}");
        assert_eq!(a.attributes["op"], "create", "{a:?}");
        assert_eq!(a.attributes["server_id"], a.server.to_string(), "{a:?}");
    }
    let lead = members[leader].id as i64;
    assert!(
        applies.iter().any(|a| a.server == lead),
        "no span from the leader"
    );
    // The read is a trace of its own, on the follower alone; replication steps are traced too.
    let all = spans.lock().unwrap().clone();
    assert!(all.iter().any(|s| s.name == "zooid.request"
        && s.attributes.get("op").map(String::as_str) == Some("getData")
        && s.server == follower.id as i64));
    let names: HashSet<&str> = all.iter().map(|s| s.name.as_str()).collect();
    for step in ["zooid.log.append", "zooid.replicate", "zooid.forward"] {
        assert!(names.contains(step), "no {step} span in {names:?}");
    }
}

#[test]
fn logs_can_be_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("zooid.log");
    let p = common::Proc::spawn(dir.path(), &["--log-format", "json"], Some(&log));
    p.kill9();
    let text = std::fs::read_to_string(&log).unwrap();
    let started = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .find(|v| v["fields"]["message"] == "zooid serving clients")
        .unwrap_or_else(|| panic!("no start line in {text}"));
    assert_eq!(started["level"], "INFO");
    assert!(started["fields"]["client_addr"].is_string(), "{started}");
}
