//! An OTLP/HTTP receiver for the tests of traces: it takes exports with JSON bodies
//! (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) on a loopback port and keeps their spans.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// One received span.
#[derive(Debug, Clone)]
pub struct Span {
    pub name: String,
    pub trace: String,
    pub id: String,
    pub parent: String,
    /// The exporting process's resource attributes (`service.name`, `zooid.server_id`...).
    pub resource: HashMap<String, String>,
    pub attributes: HashMap<String, String>,
}

impl Span {
    /// The `zooid.server_id` of the member that sent it (-1 if none says).
    pub fn server(&self) -> i64 {
        self.resource
            .get("zooid.server_id")
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1)
    }
}

/// The receiver: its address (the `OTEL_EXPORTER_OTLP_ENDPOINT` is `http://{addr}`) and the
/// spans received so far.
pub struct Receiver {
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    /// Listens on a free loopback port, a thread per connection, for the test's lifetime.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Receiver { addr, spans }
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Answers one connection's requests until it closes.
fn serve(mut stream: std::net::TcpStream, kept: &Mutex<Vec<Span>>) {
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if line.starts_with("POST /v1/traces") {
            if let Ok(export) = serde_json::from_slice::<Value>(&body) {
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(spans_of(&export));
            }
        }
        let reply = "{}";
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn attributes(list: &Value) -> HashMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let v = &a["value"];
            let text = v["stringValue"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["intValue"].as_str().map(str::to_string))
                .or_else(|| v["intValue"].as_i64().map(|i| i.to_string()))
                .unwrap_or_else(|| v.to_string());
            Some((a["key"].as_str()?.to_string(), text))
        })
        .collect()
}

fn spans_of(export: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in export["resourceSpans"].as_array().into_iter().flatten() {
        let resource = attributes(&rs["resource"]["attributes"]);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                out.push(Span {
                    name: text("name"),
                    trace: text("traceId"),
                    id: text("spanId"),
                    parent: text("parentSpanId"),
                    resource: resource.clone(),
                    attributes: attributes(&s["attributes"]),
                });
            }
        }
    }
    out
}
