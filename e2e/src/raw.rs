//! A raw protocol client for tests: blocking, one request at a time (or pipelined by hand), so a
//! test sees exactly what goes over the wire. Reads say what they got ([`NoFrame`]: closed or
//! timed out); the helpers built on them (`call`, `create`, `get`) panic, as a test would.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use zooid_proto::*;

/// A reply or a notification as read off the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

/// Why a read gave no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFrame {
    /// The server closed the connection (EOF or reset).
    Closed,
    /// The server neither answered nor closed it within the read timeout (5 s).
    TimedOut,
}

/// Why a handshake opened no session.
#[derive(Debug)]
pub enum Refused {
    /// The TCP connection failed (nothing listens there, say).
    Unreachable(std::io::Error),
    /// The server answered that the session expired (timeout 0).
    Expired,
    /// The server closed the connection, or did not answer, instead.
    NoAnswer(NoFrame),
}

/// The connection under a client: plain TCP, or TLS over it. Reads and writes go through the
/// TLS session when there is one; the socket's own settings (timeouts, shutdown) are reached
/// through `Deref`.
pub enum Wire {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Wire {
    /// A TLS connection to `addr` under `config` (the server named `127.0.0.1`), the
    /// handshake done.
    pub fn tls(
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Wire> {
        let tcp = RawClient::try_tcp(addr)?;
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Wire::Tls(Box::new(s)))
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
        }
    }
}

impl std::ops::Deref for Wire {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(s) => &s.sock,
        }
    }
}

impl std::ops::DerefMut for Wire {
    fn deref_mut(&mut self) -> &mut TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(s) => &mut s.sock,
        }
    }
}

pub struct RawClient {
    pub stream: Wire,
    pub session_id: i64,
    pub passwd: [u8; 16],
    pub timeout_ms: i32,
    /// The server said the session is read-only (it is cut off from its quorum).
    pub read_only: bool,
    xid: i32,
}

impl RawClient {
    pub fn tcp(addr: SocketAddr) -> TcpStream {
        Self::try_tcp(addr).unwrap()
    }

    pub(crate) fn try_tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// Connects and opens a new session.
    pub fn connect(addr: SocketAddr) -> RawClient {
        Self::connect_with(addr, 0, [0; 16], 30000, 0).unwrap()
    }

    /// Sends a ConnectRequest; `None` if the server answered "expired" or closed instead of
    /// accepting (no server there, or a hang, panics: see [`Self::try_connect_with`]).
    pub fn connect_with(
        addr: SocketAddr,
        session_id: i64,
        passwd: [u8; 16],
        timeout_ms: i32,
        last_zxid: i64,
    ) -> Option<RawClient> {
        match Self::try_connect_with(addr, session_id, passwd, timeout_ms, last_zxid) {
            Ok(c) => Some(c),
            Err(Refused::Expired | Refused::NoAnswer(NoFrame::Closed)) => None,
            Err(e) => panic!("connecting to {addr}: {e:?}"),
        }
    }

    /// Sends a ConnectRequest and says how it went, whatever happened.
    pub fn try_connect_with(
        addr: SocketAddr,
        session_id: i64,
        passwd: [u8; 16],
        timeout_ms: i32,
        last_zxid: i64,
    ) -> Result<RawClient, Refused> {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout_ms,
            session_id,
            passwd: passwd.to_vec(),
            read_only: Some(false),
        };
        Self::open(addr, &req)
    }

    /// Opens a new session that accepts a read-only server (`canBeReadOnly`).
    pub fn connect_read_only(addr: SocketAddr) -> Option<RawClient> {
        Self::open(addr, &new_session(true)).ok()
    }

    /// Opens a new session over TLS under `config` (its client certificate, if any, is the
    /// session's x509 identity).
    pub fn connect_tls(
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> RawClient {
        let wire = Wire::tls(addr, config).unwrap_or_else(|e| panic!("TLS to {addr}: {e}"));
        Self::handshake(wire, &new_session(false)).unwrap()
    }

    fn open(addr: SocketAddr, req: &ConnectRequest) -> Result<RawClient, Refused> {
        let stream = Wire::Plain(Self::try_tcp(addr).map_err(Refused::Unreachable)?);
        Self::handshake(stream, req)
    }

    /// Sends `req` over `stream` and reads the answer.
    fn handshake(mut stream: Wire, req: &ConnectRequest) -> Result<RawClient, Refused> {
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| req.encode(b));
        stream.write_all(&b).map_err(Refused::Unreachable)?;
        let body = read_frame(&mut stream).map_err(Refused::NoAnswer)?;
        let resp = ConnectResponse::decode(&body).unwrap();
        if resp.timeout_ms == 0 {
            return Err(Refused::Expired);
        }
        Ok(RawClient {
            stream,
            session_id: resp.session_id,
            passwd: resp.passwd,
            timeout_ms: resp.timeout_ms,
            read_only: resp.read_only == Some(true),
            xid: 0,
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a request without waiting; returns its xid.
    pub fn send(&mut self, req: &Request) -> i32 {
        self.xid += 1;
        let xid = self.xid;
        self.send_with_xid(xid, req.opcode() as i32, req);
        xid
    }

    /// Like [`Self::send`] but ignores a connection the server already closed; returns the
    /// xid, or `None` when the send failed (the server closed the connection).
    pub fn try_send(&mut self, req: &Request) -> Option<i32> {
        self.xid += 1;
        let mut b = BytesMut::new();
        req.encode_frame(&mut b, self.xid);
        self.stream.write_all(&b).ok().map(|()| self.xid)
    }

    pub fn send_with_xid(&mut self, xid: i32, op: i32, req: &Request) {
        let mut b = BytesMut::new();
        encode_request_frame(&mut b, xid, op, |b| req.encode(b));
        self.stream.write_all(&b).unwrap();
    }

    /// Next frame from the server, or why there is none.
    pub fn recv(&mut self) -> Result<Frame, NoFrame> {
        let body = read_frame(&mut self.stream)?;
        let mut r = Reader::new(&body);
        let h = ReplyHeader::decode(&mut r).unwrap();
        Ok(Frame {
            xid: h.xid,
            zxid: h.zxid,
            err: h.err,
            body: body[16..].to_vec(),
        })
    }

    /// Sends a request and returns its reply, collecting notifications that came first.
    pub fn call(&mut self, req: &Request) -> (Frame, Vec<WatcherEvent>) {
        self.try_call(req).expect("no reply")
    }

    /// [`Self::call`], saying why no reply came instead of panicking.
    pub fn try_call(&mut self, req: &Request) -> Result<(Frame, Vec<WatcherEvent>), NoFrame> {
        let xid = self.try_send(req).ok_or(NoFrame::Closed)?;
        let mut events = Vec::new();
        loop {
            let f = self.recv()?;
            if f.xid == XID_NOTIFICATION {
                events.push(WatcherEvent::decode(&mut Reader::new(&f.body)).unwrap());
                continue;
            }
            assert_eq!(f.xid, xid, "reply out of order");
            return Ok((f, events));
        }
    }

    pub fn create(&mut self, path: &str, data: &[u8], flags: i32) -> Result<String, i32> {
        let (f, _) = self.call(&create_request(path, data, flags));
        if f.err != 0 {
            return Err(f.err);
        }
        Ok(Reader::new(&f.body).string().unwrap())
    }

    /// `addauth digest user:password`; panics unless the server accepts it.
    pub fn auth_digest(&mut self, user_password: &str) {
        let (f, _) = self.call(&Request::Auth {
            auth_type: 0,
            scheme: "digest".into(),
            auth: user_password.as_bytes().to_vec(),
        });
        assert_eq!(f.err, 0, "addauth digest refused");
    }

    pub fn get(&mut self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat), i32> {
        let (f, _) = self.call(&Request::GetData {
            path: path.into(),
            watch,
        });
        if f.err != 0 {
            return Err(f.err);
        }
        let mut r = Reader::new(&f.body);
        let data = r.buffer().unwrap();
        Ok((data, Stat::decode(&mut r).unwrap()))
    }

    /// Waits for the next notification (skipping nothing else: fails on any other frame).
    pub fn next_event(&mut self) -> WatcherEvent {
        let f = self.recv().expect("connection closed");
        assert_eq!(
            f.xid, XID_NOTIFICATION,
            "expected a notification, got {f:?}"
        );
        WatcherEvent::decode(&mut Reader::new(&f.body)).unwrap()
    }

    /// True if the server closed the connection (EOF or reset) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// A ConnectRequest for a new session (30 s timeout), accepting a read-only server or not.
fn new_session(can_be_read_only: bool) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(can_be_read_only),
    }
}

/// One frame's body, or why there is none: the server neither answering nor closing within
/// the read timeout is told apart from a close, never taken for one.
fn read_frame(s: &mut impl Read) -> Result<Vec<u8>, NoFrame> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(no_frame)?;
    let n = i32::from_be_bytes(len) as usize;
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).map_err(no_frame)?;
    Ok(body)
}

fn no_frame(e: std::io::Error) -> NoFrame {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => NoFrame::TimedOut,
        _ => NoFrame::Closed,
    }
}

/// Sends a four-letter word and returns the whole answer.
/// A create of `path` open to all (`flags` as ZooKeeper's CreateMode), for a client that
/// sends it its own way (pipelined, or tried again after a connection loss).
pub fn create_request(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        op: OpCode::Create,
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open(),
        flags,
        ttl: -1,
    })
}

pub fn four_letter(addr: SocketAddr, word: &str) -> String {
    let mut s = RawClient::tcp(addr);
    s.write_all(word.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
