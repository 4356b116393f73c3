//! The handshake: the first frame of a connection (a ConnectRequest in any of the shapes
//! clients send, with or without the read-only flag). Never panics; what decodes encodes
//! back to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zooid_proto::ConnectRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = ConnectRequest::decode(data) {
        let mut again = bytes::BytesMut::new();
        req.encode(&mut again);
        assert_eq!(ConnectRequest::decode(&again), Ok(req));
    }
});
