//! A TLS connection split into a reading and a writing half that do their socket I/O apart,
//! each holding the shared rustls state only to decrypt or encrypt in memory.
//!
//! `tokio::io::split` would hold one lock around each whole read and write, syscalls
//! included: a connection's reader (its task) and writer (its outbound queue's task) would
//! wait on each other for every request and every reply.

use rustls::ServerConnection;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Bytes read from the socket at once; their plaintext always fits rustls's receive buffer,
/// which is only read into when empty.
const RAW_READ: usize = 8 * 1024;

type Shared = Arc<Mutex<ServerConnection>>;

fn lock(shared: &Shared) -> MutexGuard<'_, ServerConnection> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn invalid(e: rustls::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Splits a connection whose handshake is done.
pub fn split(stream: tokio_rustls::server::TlsStream<TcpStream>) -> (TlsReader, TlsWriter) {
    let (tcp, conn) = stream.into_inner();
    let (rd, wr) = tcp.into_split();
    let shared = Arc::new(Mutex::new(conn));
    (
        TlsReader {
            tcp: rd,
            shared: shared.clone(),
            raw: vec![0; RAW_READ].into_boxed_slice(),
        },
        TlsWriter {
            tcp: wr,
            shared,
            out: Vec::new(),
            pos: 0,
            closing: false,
        },
    )
}

pub struct TlsReader {
    tcp: OwnedReadHalf,
    shared: Shared,
    raw: Box<[u8]>,
}

impl AsyncRead for TlsReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Plaintext already decrypted first.
            {
                let mut conn = lock(&this.shared);
                match conn.reader().read(buf.initialize_unfilled()) {
                    // Data, or the peer's close_notify (end of stream).
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let mut raw = ReadBuf::new(&mut this.raw);
            ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut raw))?;
            let mut fresh = raw.filled();
            if fresh.is_empty() {
                // The socket closed without close_notify: the end, as a plain stream's.
                return Poll::Ready(Ok(()));
            }
            let mut conn = lock(&this.shared);
            while !fresh.is_empty() {
                conn.read_tls(&mut fresh)?;
                conn.process_new_packets().map_err(invalid)?;
            }
        }
    }
}

pub struct TlsWriter {
    tcp: OwnedWriteHalf,
    shared: Shared,
    /// TLS records made and not yet written to the socket.
    out: Vec<u8>,
    pos: usize,
    /// close_notify has been made (once, however often shutdown is polled).
    closing: bool,
}

impl TlsWriter {
    /// Writes the records made so far to the socket.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.pos += n;
        }
        self.out.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }

}

/// Takes the records rustls has ready into `out` (the writer's, and any the reader's
/// processing made, such as a key update's answer).
fn take_records(conn: &mut ServerConnection, out: &mut Vec<u8>) -> std::io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(out)?;
    }
    Ok(())
}

impl AsyncWrite for TlsWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        // At most one write's records wait for the socket.
        ready!(this.poll_out(cx))?;
        let n = {
            let mut conn = lock(&this.shared);
            let n = conn.writer().write(buf)?;
            take_records(&mut conn, &mut this.out)?;
            n
        };
        // Started now; what the socket does not take yet goes before the next write.
        if let Poll::Ready(Err(e)) = this.poll_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        {
            let mut conn = lock(&this.shared);
            take_records(&mut conn, &mut this.out)?;
        }
        ready!(this.poll_out(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            let mut conn = lock(&this.shared);
            conn.send_close_notify();
            take_records(&mut conn, &mut this.out)?;
        }
        ready!(this.poll_out(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
