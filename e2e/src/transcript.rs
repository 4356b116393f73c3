//! Running a scenario against a server and writing down everything it answered, in a form that
//! can be compared between servers: zxids by rank, times by relation, session ids by client.

use crate::raw::{Frame, NoFrame, RawClient};
use bytes::BytesMut;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use zooid_proto::*;

/// How a scenario's client `i` connects (over TLS with a certificate of its own, say).
pub type Connector = Box<dyn Fn(usize) -> RawClient>;

/// One scenario's context: lazily connected clients and the transcript so far.
pub struct Ctx {
    addr: SocketAddr,
    /// `None`: every client connects in plain TCP to `addr`.
    connector: Option<Connector>,
    clients: Vec<Option<RawClient>>,
    /// Every session opened, by client index, for normalizing session ids.
    sessions: Vec<(usize, i64)>,
    lines: Vec<String>,
}

/// Placeholders replaced when the transcript is normalized.
fn z(v: i64) -> String {
    format!("⟨z{v}⟩")
}

impl Ctx {
    pub fn new(addr: SocketAddr) -> Ctx {
        Ctx {
            addr,
            connector: None,
            clients: Vec::new(),
            sessions: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// A context whose clients connect as `connect` says (`addr` is only named).
    pub fn with_connector(addr: SocketAddr, connect: Connector) -> Ctx {
        Ctx {
            connector: Some(connect),
            ..Ctx::new(addr)
        }
    }

    /// Client `i`, connecting it (new session) on first use.
    pub fn client(&mut self, i: usize) -> &mut RawClient {
        while self.clients.len() <= i {
            self.clients.push(None);
        }
        if self.clients[i].is_none() {
            let c = match &self.connector {
                Some(connect) => connect(i),
                None => RawClient::connect(self.addr),
            };
            self.sessions.push((i, c.session_id));
            self.clients[i] = Some(c);
        }
        self.clients[i].as_mut().unwrap_or_else(|| unreachable!())
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Sends `req` from client `i` and records events received before the reply, and the reply.
    pub fn req(&mut self, i: usize, req: Request) -> Option<Frame> {
        let op = req.opcode();
        let desc = describe_request(&req);
        let c = self.client(i);
        let xid = c.send(&req);
        let reply = self.finish(i, op, xid, desc);
        if op == OpCode::CloseSession {
            if let Some(mut c) = self.clients[i].take() {
                let closed = c.is_closed();
                self.lines
                    .push(format!("c{i} closed after closeSession: {closed}"));
            }
        }
        reply
    }

    /// Sends a raw request body with an explicit opcode.
    pub fn raw(&mut self, i: usize, op: i32, body: &[u8]) -> Option<Frame> {
        let c = self.client(i);
        let xid = 1_000_000 + op.abs();
        let mut b = BytesMut::new();
        encode_request_frame(&mut b, xid, op, |b| b.extend_from_slice(body));
        c.send_raw(&b);
        let op_code = OpCode::from_i32(op).unwrap_or(OpCode::Error);
        self.finish(i, op_code, xid, format!("raw op {op} {body:?}"))
    }

    fn finish(&mut self, i: usize, op: OpCode, xid: i32, desc: String) -> Option<Frame> {
        loop {
            let c = self.clients[i].as_mut()?;
            match c.recv() {
                Err(no_frame) => {
                    let what = match no_frame {
                        NoFrame::Closed => "connection closed",
                        NoFrame::TimedOut => "no answer within the read timeout",
                    };
                    self.lines.push(format!("c{i} {desc} -> {what}"));
                    self.clients[i] = None;
                    return None;
                }
                Ok(f) if f.xid == XID_NOTIFICATION => {
                    let ev = WatcherEvent::decode(&mut Reader::new(&f.body));
                    self.lines.push(match ev {
                        Ok(e) => format!(
                            "c{i} event type={} state={} path={}",
                            e.event_type, e.state, e.path
                        ),
                        Err(e) => format!("c{i} undecodable event {e}"),
                    });
                }
                Ok(f) => {
                    let body = if f.err == 0 {
                        describe_body(op, &f.body)
                    } else if f.body.is_empty() {
                        String::new()
                    } else {
                        format!("unexpected body on error: {:?}", f.body)
                    };
                    let same_xid = if f.xid == xid { "" } else { " XID MISMATCH" };
                    self.lines.push(format!(
                        "c{i} {desc} -> err={} zxid={}{same_xid} {body}",
                        f.err,
                        z(f.zxid)
                    ));
                    if f.err == ErrorCode::Unimplemented.code() {
                        let closed = self.clients[i].as_mut().is_some_and(|c| c.is_closed());
                        self.lines
                            .push(format!("c{i} closed after UNIMPLEMENTED: {closed}"));
                        self.clients[i] = None;
                    }
                    return Some(f);
                }
            }
        }
    }

    /// A SASL DIGEST-MD5 login of client `i` as `user` with `password`, as ZooKeeper's
    /// client does it: an empty first token, the response to the server's challenge. The
    /// transcript says what each step answered, not the tokens (their nonces differ).
    pub fn sasl(&mut self, i: usize, user: &str, password: &str) {
        let c = self.client(i);
        let challenge = match c.try_call(&Request::Sasl { token: Vec::new() }) {
            Err(_) => {
                self.lines
                    .push(format!("c{i} sasl start -> connection closed"));
                self.clients[i] = None;
                return;
            }
            Ok((f, _)) if f.err != 0 => {
                self.lines.push(format!("c{i} sasl start -> err={}", f.err));
                return;
            }
            Ok((f, _)) => Reader::new(&f.body)
                .buffer()
                .ok()
                .flatten()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default(),
        };
        let response =
            crate::sasl::digest_md5_response(&challenge, user, password, "zooid-differential");
        self.lines.push(format!(
            "c{i} sasl start -> err=0 challenge names a nonce: {}",
            response.is_some()
        ));
        let token = response.unwrap_or_default().into_bytes();
        let line = match c_call(self, i, Request::Sasl { token }) {
            Err(_) => {
                self.clients[i] = None;
                format!("c{i} sasl {user} -> connection closed")
            }
            Ok(f) => {
                let token = Reader::new(&f.body).buffer().ok().flatten();
                let rspauth = token.is_some_and(|t| t.starts_with(b"rspauth="));
                let closed = f.err != 0 && self.clients[i].as_mut().is_some_and(|c| c.is_closed());
                if closed {
                    self.clients[i] = None;
                }
                format!(
                    "c{i} sasl {user} -> err={} rspauth: {rspauth} closed: {closed}",
                    f.err
                )
            }
        };
        self.lines.push(line);
    }

    /// A barrier read from client `i` that records only the events that arrive before it.
    pub fn events(&mut self, i: usize) {
        let c = self.client(i);
        let xid = c.send(&Request::Exists {
            path: "/".into(),
            watch: false,
        });
        let before = self.lines.len();
        self.finish(i, OpCode::Exists, xid, "barrier".into());
        // Keep the events, drop the barrier's own reply line.
        if self.lines.len() > before {
            self.lines.pop();
        }
    }

    /// Lets background work (container and TTL collection) happen on the server.
    pub fn pause(&mut self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    /// Session id of client `i` (connecting it if needed).
    pub fn session(&mut self, i: usize) -> i64 {
        self.client(i).session_id
    }

    /// Closes every session of the scenario and returns the transcript, normalized.
    pub fn finish_transcript(mut self) -> Vec<String> {
        for c in self.clients.iter_mut().flatten() {
            let _ = c.try_send(&Request::CloseSession);
        }
        for c in self.clients.iter_mut().flatten() {
            while c.recv().is_ok() {}
        }
        normalize(self.lines, &self.sessions)
    }
}

/// Client `i`'s reply to `req` (notifications before it are dropped), or why none came.
fn c_call(ctx: &mut Ctx, i: usize, req: Request) -> Result<crate::raw::Frame, NoFrame> {
    ctx.client(i).try_call(&req).map(|(f, _)| f)
}

/// Replaces zxid placeholders by their rank among the zxids seen, and session ids by the
/// client that owns them.
fn normalize(lines: Vec<String>, sessions: &[(usize, i64)]) -> Vec<String> {
    let mut zxids = BTreeSet::new();
    for l in &lines {
        let mut rest = l.as_str();
        while let Some(p) = rest.find("⟨z") {
            let after = &rest[p + "⟨z".len()..];
            let end = after.find('⟩').unwrap_or(after.len());
            if let Ok(v) = after[..end].parse::<i64>() {
                zxids.insert(v);
            }
            rest = &after[end..];
        }
    }
    let ranks: Vec<i64> = zxids.into_iter().collect();
    lines
        .into_iter()
        .map(|mut l| {
            for (rank, v) in ranks.iter().enumerate() {
                let label = if *v <= 0 {
                    v.to_string()
                } else {
                    format!("Z{rank}")
                };
                l = l.replace(&z(*v), &label);
            }
            for (i, s) in sessions {
                l = l.replace(&format!("⟨s{s}⟩"), &format!("session-of-c{i}"));
            }
            l
        })
        .collect()
}

fn describe_request(req: &Request) -> String {
    // A zxid inside a request is compared by rank like the zxids of replies.
    let s = match req {
        Request::SetWatches(w) => {
            let mut w = w.clone();
            let rel = std::mem::take(&mut w.relative_zxid);
            format!("{:?} relative={}", Request::SetWatches(w), z(rel))
        }
        _ => format!("{req:?}"),
    };
    if s.len() > 200 {
        format!("{}…", &s[..200])
    } else {
        s
    }
}

fn describe_stat(s: &Stat) -> String {
    let owner = if s.ephemeral_owner == 0 {
        "0".to_string()
    } else {
        format!("⟨s{}⟩", s.ephemeral_owner)
    };
    let times = match (s.ctime, s.mtime) {
        (0, 0) => "times=0".to_string(),
        // Two servers may or may not cross a millisecond between two writes: compare only the
        // relation that must hold.
        (c, m) if m >= c => "mtime>=ctime".to_string(),
        _ => "mtime<ctime".to_string(),
    };
    format!(
        "stat(czxid={} mzxid={} pzxid={} {times} version={} cversion={} aversion={} owner={owner} len={} children={})",
        z(s.czxid),
        z(s.mzxid),
        z(s.pzxid),
        s.version,
        s.cversion,
        s.aversion,
        s.data_length,
        s.num_children
    )
}

fn describe_data(d: &Option<impl AsRef<[u8]>>) -> String {
    match d {
        None => "data=null".into(),
        Some(d) if d.as_ref().len() > 64 => format!("data=<{} bytes>", d.as_ref().len()),
        Some(d) => format!("data={:?}", String::from_utf8_lossy(d.as_ref())),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A successful reply body, decoded by the request's opcode.
fn describe_body(op: OpCode, body: &[u8]) -> String {
    let mut r = Reader::new(body);
    let res: Result<String, DecodeError> = (|| {
        Ok(match op {
            OpCode::Create => format!("path={}", r.string()?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                let p = r.string()?;
                format!("path={p} {}", describe_stat(&Stat::decode(&mut r)?))
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
                describe_stat(&Stat::decode(&mut r)?)
            }
            OpCode::GetData => {
                let d = r.buffer()?;
                format!(
                    "{} {}",
                    describe_data(&d),
                    describe_stat(&Stat::decode(&mut r)?)
                )
            }
            OpCode::GetAcl => {
                let acl = Acl::decode_list(&mut r)?;
                format!("acl={acl:?} {}", describe_stat(&Stat::decode(&mut r)?))
            }
            OpCode::GetChildren => format!("children={:?}", sorted(r.vector(Reader::string)?)),
            OpCode::GetChildren2 => {
                let c = sorted(r.vector(Reader::string)?);
                format!("children={c:?} {}", describe_stat(&Stat::decode(&mut r)?))
            }
            OpCode::GetEphemerals => format!("paths={:?}", sorted(r.vector(Reader::string)?)),
            OpCode::Sync => format!("path={}", r.string()?),
            OpCode::GetAllChildrenNumber | OpCode::AddWatch => format!("int={}", r.i32()?),
            OpCode::WhoAmI => {
                let n = r.i32()?;
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(format!("{}:{}", r.string()?, r.string()?));
                }
                format!("whoami={v:?}")
            }
            OpCode::Multi | OpCode::MultiRead => {
                let results = OpResult::decode_all(body)?;
                let parts: Vec<String> = results
                    .into_iter()
                    .map(|res| match res {
                        OpResult::Create { path } => format!("create {path}"),
                        OpResult::Create2 { path, stat } => {
                            format!("create2 {path} {}", describe_stat(&stat))
                        }
                        OpResult::SetData(s) => format!("setData {}", describe_stat(&s)),
                        OpResult::GetData { data, stat } => {
                            format!("getData {} {}", describe_data(&data), describe_stat(&stat))
                        }
                        OpResult::GetChildren(c) => format!("getChildren {:?}", sorted(c)),
                        other => format!("{other:?}"),
                    })
                    .collect();
                format!("results=[{}]", parts.join("; "))
            }
            _ if body.is_empty() => String::new(),
            _ => format!("body={body:?}"),
        })
    })();
    res.unwrap_or_else(|e| format!("undecodable body ({e}): {body:?}"))
}

/// Deletes everything a scenario left outside `/zookeeper`, deepest first, through a fresh
/// session of the super user (whatever the ACLs). Unrecorded: both servers get the same
/// cleanup.
pub fn clean(addr: SocketAddr) {
    let mut c = RawClient::connect(addr);
    c.call(&Request::Auth {
        auth_type: 0,
        scheme: "digest".into(),
        auth: crate::SUPER_USER.as_bytes().to_vec(),
    });
    let mut paths = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let (f, _) = c.call(&Request::GetChildren {
            path: p.clone(),
            watch: false,
        });
        if f.err != 0 {
            continue;
        }
        let children = Reader::new(&f.body)
            .vector(Reader::string)
            .unwrap_or_default();
        for ch in children {
            let full = if p == "/" {
                format!("/{ch}")
            } else {
                format!("{p}/{ch}")
            };
            if !["/zookeeper", "/zookeeper/quota", "/zookeeper/config"].contains(&full.as_str()) {
                paths.push(full.clone());
            }
            stack.push(full);
        }
    }
    paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in paths {
        c.call(&Request::Delete {
            path: p,
            version: -1,
        });
    }
    c.call(&Request::CloseSession);
}
