//! Traces over OTLP: an in-process receiver (OTLP/HTTP with JSON bodies) takes the spans of a
//! 3-member ensemble. A write sent to a follower is one trace: its request span on that
//! follower, and the spans of applying it on the leader and on every other member.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, Layout};
use common::RawClient;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use zooid_e2e::otlp::{Receiver, Span};
use zooid_e2e::wait::wait_until;

#[test]
fn a_write_on_a_follower_is_one_trace_across_the_members() {
    let receiver = Receiver::start();
    let otlp = receiver.addr;
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
        let servers: HashSet<i64> = applies.iter().map(|s| s.server()).collect();
        (servers.len() == 3).then(|| (request.clone(), applies))
    };
    let mut found = None;
    wait_until(
        "the write's spans from every member",
        Duration::from_secs(20),
        || {
            found = find(&receiver.spans());
            found.is_some()
        },
    );
    let (request, applies) = found.unwrap();
    assert_eq!(request.server(), follower.id as i64, "{request:?}");
    assert_eq!(
        request.attributes["session"],
        format!("0x{:x}", c.session_id)
    );
    assert!(request.attributes.contains_key("zxid"), "{request:?}");
    for a in &applies {
        // Each member's apply is a child of the request on the follower.
        assert_eq!(a.parent, request.id, "{a:?}");
        assert_eq!(a.attributes["op"], "create", "{a:?}");
        assert_eq!(a.attributes["server_id"], a.server().to_string(), "{a:?}");
    }
    let lead = members[leader].id as i64;
    assert!(
        applies.iter().any(|a| a.server() == lead),
        "no span from the leader"
    );
    // The read is a trace of its own, on the follower alone; replication steps are traced too.
    // Its span may come in a later export than the write's: waited for, not assumed.
    let read_on_follower = |all: &[Span]| {
        all.iter().any(|s| {
            s.name == "zooid.request"
                && s.attributes.get("op").map(String::as_str) == Some("getData")
                && s.server() == follower.id as i64
        })
    };
    wait_until(
        "the read's span from the follower",
        Duration::from_secs(20),
        || read_on_follower(&receiver.spans()),
    );
    let all = receiver.spans();
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
