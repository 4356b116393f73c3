//! The session path as this server keeps it beside the replicated tree: each live session's
//! deadline ([`deadlines`]), the connection holding it, the sessions opened while read-only,
//! and the touches owed to the leader ([`Sessions`]).

pub mod deadlines;
mod table;

pub use table::Sessions;

/// Identifies a client connection for the life of the server (a session is held by one).
pub type ConnId = u64;
