//! The ZooKeeper client wire protocol (3.5–3.9) as pure data: jute primitives, records,
//! requests, replies and framing. No I/O; the server and tools wire it to sockets.
//!
//! Start at [`ClientRequest::decode`] (a request frame, decoded once) and [`OpCode`] (what
//! each opcode is: a write, one that needs the quorum); replies are framed by
//! [`encode_reply`], requests by [`Request::encode_frame`].

pub mod codes;
pub mod frame;
pub mod jute;
pub mod records;
pub mod request;
pub mod response;

pub use codes::*;
pub use frame::{frame_bounds, FrameError, DEFAULT_MAX_FRAME};
pub use jute::{DecodeError, Reader, Writer};
pub use records::*;
pub use request::{
    encode_request_frame, ClientRequest, CreateRequest, Request, RequestError, SetWatches,
};
pub use response::{
    encode_frame, encode_notification, encode_reply, encode_reply_spliced, ClientInfo, OpResult,
    Response,
};
