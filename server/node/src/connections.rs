//! The client connections this server holds, as the state sees them, and the packets counted
//! on them: every frame queued through here is counted once, on its connection and in total.

use crate::outbox::Outbox;
use crate::watches::ConnId;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;
use zooid_proto::Id;

/// A live client connection as the state sees it.
pub struct ConnHandle {
    pub outbox: Outbox,
    pub session: i64,
    pub remote: SocketAddr,
    pub auth_ids: Vec<Id>,
    pub connected_at: Instant,
    pub received: u64,
    pub sent: u64,
    /// Writes of this connection proposed but not yet applied here. Its reads wait for them
    /// (FIFO order per client: a read sees the client's own earlier writes).
    pub pending_writes: usize,
    /// Signalled each time `pending_writes` drops.
    pub write_done: Arc<Notify>,
    /// Connected while this member served read-only: its writes are refused.
    pub read_only: bool,
}

#[derive(Default)]
pub struct Connections {
    handles: HashMap<ConnId, ConnHandle>,
    /// Requests read from clients (ZooKeeper's `packets_received`).
    packets_received: u64,
    /// Replies queued for clients (ZooKeeper's `packets_sent`; watch notifications count on
    /// their connection only).
    packets_sent: u64,
}

impl Connections {
    pub fn get(&self, conn: ConnId) -> Option<&ConnHandle> {
        self.handles.get(&conn)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut ConnHandle> {
        self.handles.get_mut(&conn)
    }

    pub fn insert(&mut self, conn: ConnId, handle: ConnHandle) {
        self.handles.insert(conn, handle);
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<ConnHandle> {
        self.handles.remove(&conn)
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Every connection, in no particular order.
    pub fn handles(&self) -> impl Iterator<Item = &ConnHandle> {
        self.handles.values()
    }

    /// A request was read from `conn`.
    pub fn received(&mut self, conn: ConnId) {
        self.packets_received += 1;
        if let Some(h) = self.handles.get_mut(&conn) {
            h.received += 1;
        }
    }

    /// Queues a reply frame on a connection.
    pub fn send(&mut self, conn: ConnId, frame: Bytes) {
        self.packets_sent += 1;
        if let Some(h) = self.handles.get_mut(&conn) {
            h.sent += 1;
            h.outbox.send(frame);
        }
    }

    /// Queues a read's reply, to be encoded outside the state's lock.
    pub fn send_reply(&mut self, conn: ConnId, reply: crate::reply::Reply) {
        self.packets_sent += 1;
        if let Some(h) = self.handles.get_mut(&conn) {
            h.sent += 1;
            h.outbox.send_reply(reply);
        }
    }

    /// Queues a watch notification.
    pub fn notify(&mut self, conn: ConnId, frame: Bytes) {
        if let Some(h) = self.handles.get_mut(&conn) {
            h.sent += 1;
            h.outbox.send(frame);
        }
    }

    /// Asks a connection's writer to flush and close.
    pub fn close(&self, conn: ConnId) {
        if let Some(h) = self.handles.get(&conn) {
            h.outbox.close();
        }
    }

    /// Closes a connection at once, dropping what it has queued.
    pub fn kill(&self, conn: ConnId) {
        if let Some(h) = self.handles.get(&conn) {
            h.outbox.kill();
        }
    }

    /// Asks every connection to flush and close.
    pub fn close_all(&self) {
        for h in self.handles.values() {
            h.outbox.close();
        }
    }

    /// Closes every connection at once.
    pub fn kill_all(&self) {
        for h in self.handles.values() {
            h.outbox.kill();
        }
    }

    pub fn packets_received(&self) -> u64 {
        self.packets_received
    }

    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }

    /// Reply bytes queued for clients that have not read them yet.
    pub fn queued_bytes(&self) -> usize {
        self.handles.values().map(|h| h.outbox.queued()).sum()
    }
}
