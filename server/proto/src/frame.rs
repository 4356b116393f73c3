//! Length-prefixed framing: every message is `int32 len` + `len` bytes.

/// `jute.maxbuffer`'s default: the largest frame a server accepts (1 MiB − 1).
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

/// A frame that must close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} is negative or above the limit {max}")]
    BadLength { len: i32, max: usize },
}

/// Looks at the start of `buf`: `Ok(None)` until a whole frame is there, then the frame's body
/// range. Lengths outside `0..=max` are errors so a lying prefix never makes us buffer it.
pub fn frame_bounds(buf: &[u8], max: usize) -> Result<Option<std::ops::Range<usize>>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max {
        return Err(FrameError::BadLength { len, max });
    }
    let end = 4 + len as usize;
    Ok((buf.len() >= end).then_some(4..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_whole_frame_and_rejects_lies() {
        assert_eq!(frame_bounds(&[0, 0], 10), Ok(None));
        assert_eq!(frame_bounds(&[0, 0, 0, 2, 9], 10), Ok(None));
        assert_eq!(frame_bounds(&[0, 0, 0, 2, 9, 9, 7], 10), Ok(Some(4..6)));
        assert!(frame_bounds(&[0, 0, 0, 11], 10).is_err());
        assert!(frame_bounds(&[0xff, 0xff, 0xff, 0xff], 10).is_err());
        // "ruok" read as a length is far above any limit.
        assert!(frame_bounds(b"ruok", DEFAULT_MAX_FRAME).is_err());
    }
}
