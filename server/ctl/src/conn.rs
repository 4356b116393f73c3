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
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use zooid_proto::*;

pub struct Conn {
    pub rd: OwnedReadHalf,
    pub wr: OwnedWriteHalf,
    pub buf: BytesMut,
    pub session_id: i64,
    xid: i32,
}

/// One frame from the server, header decoded.
pub struct Reply {
    pub xid: i32,
    pub err: i32,
    pub body: bytes::Bytes,
}

/// The servers of a ZooKeeper connection string, `host:port[,host:port...]`. A chroot suffix
/// (`/app`) is refused rather than ignored: paths would silently mean other nodes.
pub fn servers(connect_string: &str) -> anyhow::Result<Vec<String>> {
    if let Some(i) = connect_string.find('/') {
        bail!(
            "{connect_string:?} has a chroot ({}); zooctl takes full paths instead",
            &connect_string[i..]
        );
    }
    let servers: Vec<String> = connect_string
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if servers.is_empty() {
        bail!("no server in {connect_string:?}");
    }
    Ok(servers)
}

impl Conn {
    /// Opens a session on the first server of a connection string that takes one.
    pub async fn connect_any(connect_string: &str, timeout_ms: i32) -> anyhow::Result<Conn> {
        let mut failures = Vec::new();
        for server in servers(connect_string)? {
            match Conn::connect(&server, timeout_ms).await {
                Ok(c) => return Ok(c),
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        bail!("no server took a session: {}", failures.join("; "))
    }

    /// Connects and opens a new session with the given timeout.
    pub async fn connect(server: &str, timeout_ms: i32) -> anyhow::Result<Conn> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(server))
            .await
            .with_context(|| format!("connecting to {server}: timed out"))?
            .with_context(|| format!("connecting to {server}"))?;
        stream.set_nodelay(true)?;
        let (rd, mut wr) = stream.into_split();
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| {
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            }
            .encode(b)
        });
        wr.write_all(&b).await?;
        let mut c = Conn {
            rd,
            wr,
            buf: BytesMut::with_capacity(64 * 1024),
            session_id: 0,
            xid: 0,
        };
        let body = c.read_frame().await?;
        let resp = ConnectResponse::decode(&body).context("bad handshake reply")?;
        if resp.timeout_ms <= 0 {
            bail!("server refused the session");
        }
        c.session_id = resp.session_id;
        Ok(c)
    }

    /// The body of the next whole frame.
    pub async fn read_frame(&mut self) -> anyhow::Result<bytes::Bytes> {
        loop {
            if let Some(range) = frame_bounds(&self.buf, usize::MAX >> 1)? {
                let mut frame = self.buf.split_to(range.end);
                frame.advance(4);
                return Ok(frame.freeze());
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
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
            err: h.err,
            body: body.slice(ReplyHeader::WIRE_LEN..),
        })
    }

    /// Sends one request and waits for its reply (skipping notifications).
    pub async fn call(&mut self, req: &Request) -> anyhow::Result<Reply> {
        self.xid += 1;
        let xid = self.xid;
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| {
            RequestHeader {
                xid,
                op: req.opcode() as i32,
            }
            .encode(b);
            req.encode(b);
        });
        self.wr.write_all(&b).await?;
        loop {
            let reply = Self::parse_reply(self.read_frame().await?)?;
            if reply.xid == XID_NOTIFICATION {
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
