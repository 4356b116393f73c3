//! Snapshot files: our own format, checked end to end.
//!
//! Layout: magic `ZOOIDSNP`, format version (u32), meta length (u32) + meta (JSON: the last log
//! id and membership), body length (u64) + body (the state as an LZ4 frame; format 1 used an
//! LZ4 block), CRC32 of all of the above (u32). Written to a temporary file, fsynced, renamed
//! into place, directory fsynced.
//!
//! The state is streamed into the compressor and the file as it is encoded, and read back
//! (checked, restored, sent to another member) from the file as a stream: a snapshot is never
//! whole in memory, compressed or not.

use crate::types::SnapshotMeta;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"ZOOIDSNP";
const FORMAT: u32 = 2;
/// The first format: the body was one LZ4 block with its size prepended. Still read.
const FORMAT_BLOCK: u32 = 1;
/// How many snapshot files are kept (the newest first).
const KEEP: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("snapshot i/o: {0}")]
    Io(#[from] io::Error),
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
}

fn corrupt(msg: impl Into<String>) -> SnapshotFileError {
    SnapshotFileError::Corrupt(msg.into())
}

/// Adds what passes through to a CRC32 and counts it.
struct Crc<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot file at `path` (the file format is also what travels to other members),
/// the state written by `write_state` straight into the compressor and the file: neither the
/// state nor the file is ever whole in memory. The file is fsynced.
pub fn write(
    path: &Path,
    meta: &SnapshotMeta,
    write_state: &dyn Fn(&mut dyn Write) -> io::Result<()>,
) -> Result<(), SnapshotFileError> {
    let meta_json = serde_json::to_vec(meta).map_err(|e| corrupt(e.to_string()))?;
    let mut head = Vec::with_capacity(16 + meta_json.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT.to_be_bytes());
    head.extend_from_slice(&(meta_json.len() as u32).to_be_bytes());
    head.extend_from_slice(&meta_json);
    let mut file = io::BufWriter::with_capacity(256 << 10, std::fs::File::create(path)?);
    file.write_all(&head)?;
    // The body's length goes here once known; the checksum covers it, so it is combined in.
    file.write_all(&0u64.to_be_bytes())?;
    let body = Crc {
        inner: file,
        hasher: crc32fast::Hasher::new(),
        bytes: 0,
    };
    let mut lz4 = lz4_flex::frame::FrameEncoder::new(body);
    write_state(&mut lz4)?;
    let body = lz4.finish().map_err(|e| corrupt(e.to_string()))?;
    let (mut file, body_hash, body_len) = (body.inner, body.hasher, body.bytes);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(&body_len.to_be_bytes());
    crc.combine(&body_hash);
    file.write_all(&crc.finalize().to_be_bytes())?;
    file.seek(SeekFrom::Start(head.len() as u64))?;
    file.write_all(&body_len.to_be_bytes())?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

/// What checking a snapshot file found: its meta, and where its compressed state lies.
#[derive(Debug)]
pub struct Checked {
    pub meta: SnapshotMeta,
    format: u32,
    body: Range<u64>,
}

impl Checked {
    /// The state of the file at `path` (the file this was checked from), decompressed as it
    /// is read: a restore never holds it whole.
    pub fn state(&self, path: &Path) -> Result<Box<dyn Read>, SnapshotFileError> {
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(self.body.start))?;
        let body =
            io::BufReader::with_capacity(256 << 10, file).take(self.body.end - self.body.start);
        if self.format == FORMAT_BLOCK {
            // The first format's single block can only be decompressed whole.
            let mut block = Vec::new();
            { body }.read_to_end(&mut block)?;
            let state =
                lz4_flex::decompress_size_prepended(&block).map_err(|e| corrupt(e.to_string()))?;
            return Ok(Box::new(io::Cursor::new(state)));
        }
        Ok(Box::new(lz4_flex::frame::FrameDecoder::new(body)))
    }
}

/// Checks the snapshot file at `path` (checksum, magic, format, lengths), reading it as a
/// stream, and parses its meta.
pub fn check(path: &Path) -> Result<Checked, SnapshotFileError> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len < 8 + 4 + 4 + 8 + 4 {
        return Err(corrupt("too short"));
    }
    let content_len = len - 4;
    let mut hasher = crc32fast::Hasher::new();
    let mut reader = io::BufReader::with_capacity(256 << 10, (&mut file).take(content_len));
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        let n = chunk.len();
        reader.consume(n);
    }
    let mut crc = [0u8; 4];
    file.seek(SeekFrom::Start(content_len))?;
    file.read_exact(&mut crc)?;
    if hasher.finalize() != u32::from_be_bytes(crc) {
        return Err(corrupt("checksum mismatch"));
    }
    file.seek(SeekFrom::Start(0))?;
    let mut head = io::BufReader::new(file.take(content_len));
    let mut take = |n: usize| -> Result<Vec<u8>, SnapshotFileError> {
        let mut v = vec![0; n];
        head.read_exact(&mut v).map_err(|_| corrupt("truncated"))?;
        Ok(v)
    };
    if take(8)? != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let int = |v: Vec<u8>| u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let format = int(take(4)?);
    if format != FORMAT && format != FORMAT_BLOCK {
        return Err(corrupt(format!("unsupported format {format}")));
    }
    let meta_len = int(take(4)?) as u64;
    if 8 + 4 + 4 + meta_len + 8 > content_len {
        return Err(corrupt("truncated"));
    }
    let meta: SnapshotMeta =
        serde_json::from_slice(&take(meta_len as usize)?).map_err(|e| corrupt(e.to_string()))?;
    let b = take(8)?;
    let body_len = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let start = 8 + 4 + 4 + meta_len + 8;
    if start + body_len != content_len {
        return Err(corrupt("the body's length does not match the file's"));
    }
    Ok(Checked {
        meta,
        format,
        body: start..start + body_len,
    })
}

/// A snapshot on disk, checked.
pub struct Loaded {
    pub checked: Checked,
    pub path: PathBuf,
}

impl Loaded {
    /// The state, decompressed as it is read.
    pub fn state(&self) -> Result<Box<dyn Read>, SnapshotFileError> {
        self.checked.state(&self.path)
    }
}

/// The directory holding snapshot files.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    /// Opens the directory, removing what a write interrupted by a crash left behind.
    pub fn open(dir: &Path) -> io::Result<SnapshotDir> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "tmp") {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(SnapshotDir {
            dir: dir.to_path_buf(),
        })
    }

    fn file_name(meta: &SnapshotMeta) -> String {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        format!("snap-{index:020}-{}.zsnap", meta.snapshot_id)
    }

    /// Writes a snapshot of the state `write_state` encodes, durably, and removes older ones
    /// beyond the few kept. A failed write (disk full, say) leaves no file behind.
    pub fn build(
        &self,
        meta: &SnapshotMeta,
        write_state: &dyn Fn(&mut dyn Write) -> io::Result<()>,
    ) -> Result<PathBuf, SnapshotFileError> {
        let tmp = self.dir.join(format!("{}.tmp", Self::file_name(meta)));
        if let Err(e) = write(&tmp, meta, write_state) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(self.adopt(meta, &tmp)?)
    }

    /// Where a snapshot sent by the leader is received (removed at the next start if it is
    /// never adopted).
    pub fn receiving_path(&self) -> PathBuf {
        self.dir.join("receiving.zsnap.tmp")
    }

    /// Moves a whole, fsynced snapshot file (built or received) into place, and removes older
    /// ones beyond the few kept.
    pub fn adopt(&self, meta: &SnapshotMeta, tmp: &Path) -> io::Result<PathBuf> {
        let path = self.dir.join(Self::file_name(meta));
        std::fs::rename(tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let mut files = self.list()?;
        while files.len() > KEEP {
            // A member may still be streaming it to another: its open handle stays valid.
            let old = files.remove(0);
            let _ = std::fs::remove_file(old);
        }
        Ok(path)
    }

    /// Snapshot files, oldest first (names sort by index).
    fn list(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "zsnap"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// The newest snapshot that passes its checks; corrupt ones are skipped (and reported).
    pub fn latest(&self) -> io::Result<Option<Loaded>> {
        for path in self.list()?.into_iter().rev() {
            match check(&path) {
                Ok(checked) => return Ok(Some(Loaded { checked, path })),
                Err(SnapshotFileError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("skipping snapshot {}: {e}", path.display()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a file of `state` and returns its bytes.
    fn encode(meta: &SnapshotMeta, state: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        write(&path, meta, &|w| w.write_all(state)).unwrap();
        std::fs::read(&path).unwrap()
    }

    /// Checks a file's bytes and reads its whole state.
    fn decode(bytes: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), SnapshotFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, bytes).unwrap();
        let checked = check(&path)?;
        let mut state = Vec::new();
        checked.state(&path)?.read_to_end(&mut state)?;
        Ok((checked.meta, state))
    }

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(openraft::LogId::new(
                openraft::CommittedLeaderId::new(1, 1),
                index,
            )),
            last_membership: Default::default(),
            snapshot_id: format!("1-{index}"),
        }
    }

    #[test]
    fn round_trip_and_every_corruption_is_caught() {
        let state = b"tree state".repeat(100);
        let file = encode(&meta(7), &state);
        let (m, s) = decode(&file).unwrap();
        assert_eq!(m, meta(7));
        assert_eq!(s, state);
        for i in (0..file.len()).step_by(7) {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {i} not detected");
        }
        assert!(decode(&file[..file.len() - 1]).is_err());
    }

    #[test]
    fn a_large_state_streams_through() {
        // Larger than every buffer on the way: 8 MiB of varied bytes.
        let state: Vec<u8> = (0..8u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (m, s) = decode(&encode(&meta(9), &state)).unwrap();
        assert_eq!(m, meta(9));
        assert!(s == state, "the state came back different");
    }

    #[test]
    fn reads_the_first_format_too() {
        let state = b"older".repeat(50);
        let meta_json = serde_json::to_vec(&meta(3)).unwrap();
        let body = lz4_flex::compress_prepend_size(&state);
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&FORMAT_BLOCK.to_be_bytes());
        file.extend_from_slice(&(meta_json.len() as u32).to_be_bytes());
        file.extend_from_slice(&meta_json);
        file.extend_from_slice(&(body.len() as u64).to_be_bytes());
        file.extend_from_slice(&body);
        let crc = crc32fast::hash(&file);
        file.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(decode(&file).unwrap(), (meta(3), state));
    }

    #[test]
    fn keeps_the_newest_valid_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let sd = SnapshotDir::open(dir.path()).unwrap();
        for i in 1..=4 {
            sd.build(&meta(i), &|w| w.write_all(b"x")).unwrap();
        }
        assert_eq!(sd.list().unwrap().len(), KEEP);
        let newest = sd.list().unwrap().pop().unwrap();
        std::fs::write(&newest, b"garbage").unwrap();
        let loaded = sd.latest().unwrap().unwrap();
        assert_eq!(
            loaded.checked.meta,
            meta(3),
            "falls back to the previous valid snapshot"
        );
    }
}
