//! Several commands in one Raft entry, and the zxid each one gets.
//!
//! Encoding: command count (u32), then each command as length (u32) + bytes, big-endian.

use bytes::{BufMut, Bytes, BytesMut};

/// Bits of the zxid that number commands inside one entry.
pub const POSITION_BITS: u32 = 16;
/// Most commands one entry may carry.
pub const MAX_COMMANDS: usize = 1 << POSITION_BITS;

/// The zxid of the `position`-th command of the entry at `index`.
pub fn zxid(index: u64, position: usize) -> u64 {
    (index << POSITION_BITS) | position as u64
}

/// Builds one entry's batch as commands arrive, so that closing it costs no copy.
#[derive(Debug)]
pub struct Builder {
    buf: BytesMut,
    commands: usize,
}

impl Default for Builder {
    fn default() -> Self {
        let mut buf = BytesMut::new();
        buf.put_u32(0); // the count, written by `finish`
        Builder { buf, commands: 0 }
    }
}

impl Builder {
    pub fn push(&mut self, command: &[u8]) {
        self.buf.put_u32(command.len() as u32);
        self.buf.put_slice(command);
        self.commands += 1;
    }

    pub fn commands(&self) -> usize {
        self.commands
    }

    /// Bytes of commands pushed so far, framing included.
    pub fn bytes(&self) -> usize {
        self.buf.len() - 4
    }

    pub fn finish(mut self) -> Bytes {
        self.buf[..4].copy_from_slice(&(self.commands as u32).to_be_bytes());
        self.buf.freeze()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("batch is malformed at byte {0}")]
pub struct BatchError(usize);

pub fn decode(bytes: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    let u32_at = |pos: usize| -> Result<usize, BatchError> {
        bytes
            .get(pos..pos + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or(BatchError(pos))
    };
    let count = u32_at(0)?;
    if count > MAX_COMMANDS {
        return Err(BatchError(0));
    }
    let mut pos = 4;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u32_at(pos)?;
        let body = bytes.get(pos + 4..pos + 4 + len).ok_or(BatchError(pos))?;
        out.push(body);
        pos += 4 + len;
    }
    if pos != bytes.len() {
        return Err(BatchError(pos));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(commands: &[Vec<u8>]) -> Bytes {
        let mut b = Builder::default();
        for c in commands {
            b.push(c);
        }
        b.finish()
    }

    #[test]
    fn round_trip_and_truncation() {
        let cmds = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        let b = encode(&cmds);
        let back: Vec<Vec<u8>> = decode(&b)
            .unwrap()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(back, cmds);
        for cut in 0..b.len() {
            assert!(decode(&b[..cut]).is_err());
        }
    }

    #[test]
    fn zxids_increase_across_entries() {
        assert!(zxid(7, MAX_COMMANDS - 1) < zxid(8, 0));
        assert!(zxid(1, 0) > 0);
    }
}
