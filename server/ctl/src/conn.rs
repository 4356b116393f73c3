//! A minimal asynchronous ZooKeeper connection: handshake, then request frames out and reply
//! frames in. Enough for zooctl's commands and a load generator that spends little CPU per
//! request (frames are pre-encoded; replies are parsed only as far as their header).
//!
//! Not the `zookeeper-client` crate, which the tests use as a real client: it returns null data
//! as an empty vector, where `zooctl get` prints `null` as zkCli does, and it hands every
//! request through a channel to its session task, which would add to the load generator's CPU
//! per request.

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use zooid_proto::*;

pub struct Conn {
    pub io: Io,
    pub buf: BytesMut,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// The newest zxid seen in a reply: a client resuming its session sends it, so that a
    /// server that is behind refuses it rather than answer for a state it has not reached.
    pub last_zxid: i64,
    /// Watch notifications that came while `call` waited for a reply (and were passed over):
    /// a reader that must not miss a change reads again when this moved.
    pub notifications: u64,
    xid: i32,
}

/// One frame from the server, header decoded.
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: bytes::Bytes,
}

/// A ZooKeeper connection string: `host:port[,host:port...][/chroot]`. With a chroot, every
/// path a command names is under it, and paths the server returns are shown without it, as
/// ZooKeeper's clients do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub servers: Vec<String>,
    /// `/app`, never `/` or empty (that is no chroot).
    pub chroot: Option<String>,
}

impl ConnectString {
    pub fn parse(s: &str) -> anyhow::Result<ConnectString> {
        let (hosts, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(s[i..].trim_end_matches('/'))),
            None => (s, None),
        };
        let chroot = chroot.filter(|c| !c.is_empty()).map(str::to_string);
        if let Some(c) = &chroot {
            if c.contains("//") || c.split('/').any(|p| p == "." || p == "..") {
                bail!("{s:?}: the chroot {c:?} is not a valid path");
            }
        }
        let servers: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        if servers.is_empty() {
            bail!("no server in {s:?}");
        }
        for h in &servers {
            if !h.contains(':') {
                bail!("{h:?} in {s:?} is not host:port");
            }
        }
        Ok(ConnectString { servers, chroot })
    }

    /// The server's path for a path the user names, checked first as zkCli checks it.
    pub fn full(&self, path: &str) -> anyhow::Result<String> {
        validate_path(path)?;
        Ok(match &self.chroot {
            None => path.to_string(),
            Some(c) if path == "/" => c.clone(),
            Some(c) => format!("{c}{path}"),
        })
    }

    /// The user's path for a path the server returns.
    pub fn strip<'a>(&self, path: &'a str) -> &'a str {
        match &self.chroot {
            None => path,
            Some(c) => match path.strip_prefix(c.as_str()) {
                Some("") => "/",
                Some(rest) if rest.starts_with('/') => rest,
                _ => path,
            },
        }
    }
}

/// The servers of a connection string for the load generator, which names its own paths: a
/// chroot is refused rather than ignored.
pub fn servers(connect_string: &str) -> anyhow::Result<Vec<String>> {
    let cs = ConnectString::parse(connect_string)?;
    if let Some(c) = cs.chroot {
        bail!("{connect_string:?} has a chroot ({c}); bench writes under /zooctl-bench");
    }
    Ok(cs.servers)
}

impl Conn {
    /// Opens a session on the first of `servers` that takes one.
    pub async fn connect_any(servers: &[String], timeout_ms: i32) -> anyhow::Result<Conn> {
        let mut failures = Vec::new();
        for server in servers {
            match Conn::connect(server, timeout_ms).await {
                Ok(c) => return Ok(c),
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        bail!("no server took a session: {}", failures.join("; "))
    }

    /// Connects and opens a new session with the given timeout.
    pub async fn connect(server: &str, timeout_ms: i32) -> anyhow::Result<Conn> {
        match Self::handshake(server, timeout_ms, 0, &[0; 16]).await? {
            Some(c) => Ok(c),
            None => bail!("server refused the session"),
        }
    }

    /// Resumes this connection's session on `server`; `None` if the server says it expired.
    pub async fn resume(&self, server: &str, timeout_ms: i32) -> anyhow::Result<Option<Conn>> {
        let again = Self::handshake_at(
            server,
            timeout_ms,
            self.session_id,
            &self.passwd,
            self.last_zxid,
        )
        .await?;
        Ok(again.map(|mut c| {
            c.last_zxid = self.last_zxid;
            c
        }))
    }

    /// Takes every whole reply already buffered (pings', say), noting their zxids.
    pub fn drain_replies(&mut self) {
        while let Some(frame) = self.buffered_frame() {
            if let Ok(r) = Self::parse_reply(frame) {
                self.last_zxid = self.last_zxid.max(r.zxid);
            }
        }
    }

    /// Drops the read buffer's room for large replies: a process holding thousands of idle
    /// sessions grows each one's buffer only when a reply needs it.
    pub fn shrink_buffer(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    async fn handshake(
        server: &str,
        timeout_ms: i32,
        session_id: i64,
        passwd: &[u8],
    ) -> anyhow::Result<Option<Conn>> {
        Self::handshake_at(server, timeout_ms, session_id, passwd, 0).await
    }

    async fn handshake_at(
        server: &str,
        timeout_ms: i32,
        session_id: i64,
        passwd: &[u8],
        last_zxid_seen: i64,
    ) -> anyhow::Result<Option<Conn>> {
        let mut io = Io::open(server).await?;
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| {
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen,
                timeout_ms,
                session_id,
                passwd: passwd.to_vec(),
                read_only: Some(false),
            }
            .encode(b)
        });
        io.write_all(&b).await?;
        let mut c = Conn {
            io,
            buf: BytesMut::with_capacity(64 * 1024),
            session_id: 0,
            passwd: Vec::new(),
            last_zxid: 0,
            notifications: 0,
            xid: 0,
        };
        let body = c.read_frame().await?;
        let resp = ConnectResponse::decode(&body).context("bad handshake reply")?;
        // ZooKeeper's answer for a session it does not know (expired).
        if resp.timeout_ms <= 0 {
            return Ok(None);
        }
        c.session_id = resp.session_id;
        c.passwd = resp.passwd.to_vec();
        Ok(Some(c))
    }

    /// The body of the next whole frame.
    pub async fn read_frame(&mut self) -> anyhow::Result<bytes::Bytes> {
        loop {
            if let Some(range) = frame_bounds(&self.buf, usize::MAX >> 1)? {
                let mut frame = self.buf.split_to(range.end);
                frame.advance(4);
                return Ok(frame.freeze());
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                bail!("server closed the connection");
            }
        }
    }

    /// A whole frame already buffered, if any (no I/O).
    pub fn buffered_frame(&mut self) -> Option<bytes::Bytes> {
        match frame_bounds(&self.buf, usize::MAX >> 1) {
            Ok(Some(range)) => {
                let mut frame = self.buf.split_to(range.end);
                frame.advance(4);
                Some(frame.freeze())
            }
            _ => None,
        }
    }

    pub fn parse_reply(body: bytes::Bytes) -> anyhow::Result<Reply> {
        let mut r = Reader::new(&body);
        let h = ReplyHeader::decode(&mut r)?;
        Ok(Reply {
            xid: h.xid,
            zxid: h.zxid,
            err: h.err,
            body: body.slice(ReplyHeader::WIRE_LEN..),
        })
    }

    /// Sends a request with a given xid (a ping's, say) without waiting for its reply.
    pub async fn send_with_xid(&mut self, xid: i32, req: &Request) -> anyhow::Result<()> {
        let mut b = BytesMut::new();
        req.encode_frame(&mut b, xid);
        self.io.write_all(&b).await?;
        Ok(())
    }

    /// Creates the persistent node `path` unless it exists.
    pub async fn ensure(&mut self, path: &str) -> anyhow::Result<()> {
        let reply = self
            .call(&Request::Create(CreateRequest {
                op: OpCode::Create,
                path: path.into(),
                data: None,
                acl: Acl::open(),
                flags: 0,
                ttl: -1,
            }))
            .await?;
        if reply.err != 0 && reply.err != ErrorCode::NodeExists as i32 {
            bail!("creating {path}: {}", error_name(reply.err));
        }
        Ok(())
    }

    /// Authenticates the session as `user:password` (the digest scheme, as zkCli's `addauth
    /// digest` and `--auth`).
    pub async fn authenticate(&mut self, user_password: &str) -> anyhow::Result<()> {
        let r = self
            .call(&Request::Auth {
                auth_type: 0,
                scheme: "digest".into(),
                auth: user_password.as_bytes().to_vec(),
            })
            .await?;
        if r.err != 0 {
            bail!("authenticating (--auth): {}", error_name(r.err));
        }
        Ok(())
    }

    /// Sends one request and waits for its reply (skipping notifications).
    pub async fn call(&mut self, req: &Request) -> anyhow::Result<Reply> {
        self.xid += 1;
        let xid = self.xid;
        self.send_with_xid(xid, req).await?;
        loop {
            let reply = Self::parse_reply(self.read_frame().await?)?;
            self.last_zxid = self.last_zxid.max(reply.zxid);
            if reply.xid == XID_NOTIFICATION {
                self.notifications += 1;
                continue;
            }
            if reply.xid != xid {
                bail!("reply out of order: xid {} for {}", reply.xid, xid);
            }
            return Ok(reply);
        }
    }
}

/// A reply error code as ZooKeeper names it.
pub fn error_name(code: i32) -> String {
    match ErrorCode::from_i32(code) {
        Some(c) => format!("{c:?} ({code})"),
        None => format!("error {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_as_zookeeper_reads_them() {
        let cs = ConnectString::parse("a:1,b:2/app/x").unwrap();
        assert_eq!(cs.servers, ["a:1", "b:2"]);
        assert_eq!(cs.chroot.as_deref(), Some("/app/x"));
        assert_eq!(cs.full("/").unwrap(), "/app/x");
        assert_eq!(cs.full("/n").unwrap(), "/app/x/n");
        assert_eq!(cs.strip("/app/x/n"), "/n");
        assert_eq!(cs.strip("/app/x"), "/");
        assert_eq!(cs.strip("/app/xy"), "/app/xy");
        let plain = ConnectString::parse("a:1/").unwrap();
        assert_eq!(
            (plain.full("/n").unwrap(), plain.chroot),
            ("/n".to_string(), None)
        );
        for bad in ["", "/app", "a:1,,/app//x", "host", "a:1/app/../x"] {
            assert!(ConnectString::parse(bad).is_err(), "{bad}");
        }
        assert!(servers("a:1/app").is_err());
    }
}

/// ZooKeeper's rules for a path, with zkCli's messages: absolute, no trailing slash, no empty,
/// `.` or `..` segment, no NUL.
pub fn validate_path(path: &str) -> anyhow::Result<()> {
    if !path.starts_with('/') {
        anyhow::bail!("{path:?}: Path must start with / character");
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        anyhow::bail!("{path:?}: Path must not end with / character");
    }
    if path.contains('\0') {
        anyhow::bail!("{path:?}: null character not allowed");
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => anyhow::bail!("{path:?}: empty node name specified"),
            "." | ".." => anyhow::bail!("{path:?}: relative paths not allowed"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod path_tests {
    use super::validate_path;

    #[test]
    fn paths_are_checked_as_zkcli_checks_them() {
        for ok in ["/", "/a", "/a/b-1", "/zookeeper/config"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("app", "must start with /"),
            ("/app/", "must not end with /"),
            ("/a//b", "empty node name"),
            ("/a/./b", "relative paths"),
            ("/a/..", "relative paths"),
        ] {
            let err = validate_path(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}

/// A connection to a server: plain TCP, or TLS when zooctl was given `--tls-ca`.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Io {
    /// Connects to `server` (from the source address, if one was given), inside TLS when
    /// zooctl was given `--tls-ca`.
    pub async fn open(server: &str) -> anyhow::Result<Io> {
        let stream = tokio::time::timeout(Duration::from_secs(10), tcp(server))
            .await
            .with_context(|| format!("connecting to {server}: timed out"))?
            .with_context(|| format!("connecting to {server}"))?;
        stream.set_nodelay(true)?;
        let Some(config) = crate::tls::config() else {
            return Ok(Io::Plain(stream));
        };
        let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
        let name = rustls::pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .with_context(|| format!("{host} is not a host name or address"))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .with_context(|| format!("TLS with {server}"))?;
        Ok(Io::Tls(Box::new(tls)))
    }
}

/// Sends a four-letter word to `server` and returns its answer, inside TLS when zooctl was
/// given `--tls-ca` (a TLS port answers them too). Bounded by 10 s.
pub async fn four_letter(server: &str, word: &str) -> anyhow::Result<String> {
    let ask = async {
        let mut io = Io::open(server).await?;
        io.write_all(word.as_bytes()).await?;
        let mut out = Vec::new();
        match io.read_to_end(&mut out).await {
            Ok(_) => {}
            // A TLS server may close without TLS's close_notify after its answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
            Err(e) => return Err(e).with_context(|| format!("reading {server}'s answer")),
        }
        anyhow::Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .with_context(|| format!("{word} to {server}: no answer within 10 s"))?
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The local address sessions connect from (`--source-address`), set once at start.
static SOURCE: std::sync::OnceLock<std::net::IpAddr> = std::sync::OnceLock::new();

/// Sessions connect from `ip` from now on.
pub fn connect_from(ip: std::net::IpAddr) {
    let _ = SOURCE.set(ip);
}

/// A TCP connection to `server`, from the source address if one was given.
async fn tcp(server: &str) -> std::io::Result<TcpStream> {
    let Some(ip) = SOURCE.get() else {
        return TcpStream::connect(server).await;
    };
    let addr = tokio::net::lookup_host(server)
        .await?
        .find(|a| a.is_ipv4() == ip.is_ipv4())
        .ok_or_else(|| {
            std::io::Error::other(format!("{server} has no address of the source's family"))
        })?;
    let socket = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(std::net::SocketAddr::new(*ip, 0))?;
    socket.connect(addr).await
}
