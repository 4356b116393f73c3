//! The client connections this server holds, as the state sees them (who they are, their
//! session, what they have in flight), and the packets counted on them. Their sockets belong
//! to the runtime, which the state reaches only through [`crate::state::effect::Effect`]s.

use crate::session::ConnId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use zooid_proto::Id;

/// A live client connection as the state sees it.
#[derive(Debug, Clone)]
pub struct Conn {
    pub session: i64,
    pub remote: SocketAddr,
    /// The identities its auth packets proved, and its address (`ip`). Shared: every write
    /// carries them (see [`zooid_tree::Checks`]), and they change only on an auth packet.
    pub auth_ids: Arc<[Id]>,
    pub connected_at: Instant,
    pub received: u64,
    pub sent: u64,
    /// Writes of this connection proposed but not yet applied here. Its reads wait for them
    /// (FIFO order per client: a read sees the client's own earlier writes).
    pub pending_writes: usize,
    /// Connected while this member served read-only: its writes are refused.
    pub read_only: bool,
    /// The nonce of the SASL challenge it was sent, until it answers.
    pub sasl_nonce: Option<String>,
}

impl Conn {
    /// A connection that just completed its handshake for `session`.
    pub fn new(session: i64, remote: SocketAddr, read_only: bool) -> Conn {
        Conn {
            session,
            remote,
            auth_ids: Arc::from([Id {
                scheme: "ip".into(),
                id: remote.ip().to_string(),
            }]),
            connected_at: Instant::now(),
            received: 0,
            sent: 0,
            pending_writes: 0,
            read_only,
            sasl_nonce: None,
        }
    }
}

#[derive(Default)]
pub struct Connections {
    conns: HashMap<ConnId, Conn>,
    /// Requests read from clients (ZooKeeper's `packets_received`).
    packets_received: u64,
    /// Replies queued for clients (ZooKeeper's `packets_sent`; watch notifications count on
    /// their connection only).
    packets_sent: u64,
}

impl Connections {
    pub fn get(&self, conn: ConnId) -> Option<&Conn> {
        self.conns.get(&conn)
    }

    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(&conn)
    }

    pub(crate) fn insert(&mut self, id: ConnId, conn: Conn) {
        self.conns.insert(id, conn);
    }

    pub(crate) fn remove(&mut self, conn: ConnId) -> Option<Conn> {
        self.conns.remove(&conn)
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Every connection, in no particular order.
    pub fn handles(&self) -> impl Iterator<Item = &Conn> {
        self.conns.values()
    }

    /// Every connection's id, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    /// A request was read from `conn`; returns the connection's session.
    pub(crate) fn received(&mut self, conn: ConnId) -> Option<i64> {
        self.packets_received += 1;
        let h = self.conns.get_mut(&conn)?;
        h.received += 1;
        Some(h.session)
    }

    /// A reply is queued on `conn` (counted in `packets_sent` too); `false` if the connection
    /// is gone.
    pub(crate) fn replied(&mut self, conn: ConnId) -> bool {
        self.packets_sent += 1;
        self.notified(conn)
    }

    /// A watch event is queued on `conn`; `false` if the connection is gone.
    pub(crate) fn notified(&mut self, conn: ConnId) -> bool {
        match self.conns.get_mut(&conn) {
            Some(h) => {
                h.sent += 1;
                true
            }
            None => false,
        }
    }

    pub fn packets_received(&self) -> u64 {
        self.packets_received
    }

    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }
}
