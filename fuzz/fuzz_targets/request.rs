//! The request decoder: any bytes a client sends after its handshake. Framing never trusts a
//! length beyond the limit, decoding never panics, and what decodes encodes back to the
//! same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zooid_proto::{frame_bounds, ClientRequest, Request, DEFAULT_MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some(body)) = frame_bounds(rest, DEFAULT_MAX_FRAME) {
        let frame = &rest[body.clone()];
        if let Ok(ClientRequest {
            request: Ok(req), ..
        }) = ClientRequest::decode(frame)
        {
            // Encoded under its own opcode (setWatches2 with no persistent watches is
            // written as setWatches), it decodes to the same request.
            let mut again = bytes::BytesMut::new();
            req.encode(&mut again);
            assert_eq!(Request::decode(req.opcode() as i32, &again), Ok(req));
        }
        rest = &rest[body.end..];
    }
});
