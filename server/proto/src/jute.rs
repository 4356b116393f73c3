//! Jute primitive encoding: big-endian integers, length-prefixed buffers and strings where a
//! length of -1 means null (distinct from empty), and count-prefixed vectors.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("negative length {0} other than -1 (null)")]
    BadLength(i32),
    #[error("string is not valid UTF-8")]
    BadUtf8,
    #[error("unexpected null where a value is required")]
    UnexpectedNull,
    #[error("invalid value {value} for {field}")]
    BadValue { field: &'static str, value: i64 },
}

/// Reads jute primitives from a byte slice, never panicking on short or hostile input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes as they are (a fixed-size field).
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length prefix: -1 is null, other negatives are errors, and a length longer than what is
    /// left is reported as truncation before any allocation happens.
    fn len(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::BadLength(n)),
            n => Ok(Some(n as usize)),
        }
    }

    pub fn buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    pub fn ustring(&mut self) -> Result<Option<String>, DecodeError> {
        match self.len()? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                String::from_utf8(b.to_vec())
                    .map(Some)
                    .map_err(|_| DecodeError::BadUtf8)
            }
        }
    }

    /// A string that must be present; null decodes as empty, as ZooKeeper's Java records do.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        Ok(self.ustring()?.unwrap_or_default())
    }

    /// A vector; each element is read by `f`. Null decodes as empty. The count is checked against
    /// the bytes left (every element is at least one byte) so a lying count cannot make us
    /// allocate.
    pub fn vector<T>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let Some(n) = self.len()? else {
            return Ok(Vec::new());
        };
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }
}

/// Appends jute primitives to a buffer.
pub trait Writer {
    fn put_jint(&mut self, v: i32);
    fn put_jlong(&mut self, v: i64);
    fn put_jbool(&mut self, v: bool);
    fn put_jbuffer(&mut self, v: Option<&[u8]>);
    /// A buffer the writer may keep by reference instead of copying (node data in replies).
    fn put_jbytes(&mut self, v: Option<&Bytes>) {
        self.put_jbuffer(v.map(|b| &b[..]));
    }
    fn put_jstring(&mut self, v: &str);
    fn put_jstrings(&mut self, v: &[String]);
}

impl Writer for BytesMut {
    fn put_jint(&mut self, v: i32) {
        self.put_i32(v);
    }
    fn put_jlong(&mut self, v: i64) {
        self.put_i64(v);
    }
    fn put_jbool(&mut self, v: bool) {
        self.put_u8(v as u8);
    }
    fn put_jbuffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(b.len() as i32);
                self.put_slice(b);
            }
        }
    }
    fn put_jstring(&mut self, v: &str) {
        self.put_jbuffer(Some(v.as_bytes()));
    }
    fn put_jstrings(&mut self, v: &[String]) {
        self.put_i32(v.len() as i32);
        for s in v {
            self.put_jstring(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_buffers_differ() {
        let mut b = BytesMut::new();
        b.put_jbuffer(None);
        b.put_jbuffer(Some(b""));
        assert_eq!(&b[..], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut r = Reader::new(&b);
        assert_eq!(r.buffer().unwrap(), None);
        assert_eq!(r.buffer().unwrap(), Some(vec![]));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn lying_lengths_are_errors_not_allocations() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(r.buffer(), Err(DecodeError::Truncated { .. })));
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(
            r.vector(|r| r.i32()),
            Err(DecodeError::Truncated { .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(r.buffer(), Err(DecodeError::BadLength(-2)));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let mut r = Reader::new(&[0, 0, 0, 1, 0xff]);
        assert_eq!(r.ustring(), Err(DecodeError::BadUtf8));
    }
}
