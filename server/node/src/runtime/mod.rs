//! The thin runtime around the state: the lock every task shares ([`Node`]), the socket side
//! of each connection (its outbound queue), the consensus layer's view of the state
//! ([`applier`]), and the background duties that drive the state by the clock and by
//! consensus events (session expiry, quorum, leadership, container collection, failure).

pub mod applier;
pub mod containers;
pub mod duties;
pub mod expiry;
pub mod failure;
pub mod leadership;
pub mod limits;
mod node;
pub mod outbox;
pub mod quorum;

pub use node::{Node, NotReady, StateGuard};
