//! The client path: the listener accepts a socket, the connection reads its frames, the
//! handshake opens or resumes a session, and dispatch turns each request into a write
//! proposed for ordering or a read answered from the local state. Replies leave through the
//! connection's outbound queue ([`crate::runtime::outbox`]).

mod auth;
pub mod connection;
mod dispatch;
mod handshake;
pub mod listener;
mod reconfig;
pub mod sasl;
