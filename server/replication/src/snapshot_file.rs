//! Snapshot files: our own format, checked end to end.
//!
//! Layout: magic `ZOOIDSNP`, format version (u32), meta length (u32) + meta (JSON: the last log
//! id and membership), body length (u64) + body (the state as an LZ4 frame; format 1 used an
//! LZ4 block), CRC32 of all of the above (u32). Written to a temporary file, fsynced, renamed
//! into place, directory fsynced.
//!
//! The state is streamed into the compressor as it is encoded, so a large tree never exists
//! uncompressed in memory a second time.

use crate::types::SnapshotMeta;
use std::io::{self, Read, Write};
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

/// Serializes a snapshot of an already encoded state (tests build files with it).
#[cfg(test)]
pub fn encode(meta: &SnapshotMeta, state: &[u8]) -> Result<Vec<u8>, SnapshotFileError> {
    encode_streaming(meta, |w| w.write_all(state))
}

/// Serializes a snapshot into the file format (also what travels to other nodes), the state
/// written by `write_state` straight into the compressor.
pub fn encode_streaming(
    meta: &SnapshotMeta,
    write_state: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Vec<u8>, SnapshotFileError> {
    let meta_json = serde_json::to_vec(meta).map_err(|e| corrupt(e.to_string()))?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_be_bytes());
    out.extend_from_slice(&(meta_json.len() as u32).to_be_bytes());
    out.extend_from_slice(&meta_json);
    let len_at = out.len();
    out.extend_from_slice(&0u64.to_be_bytes());
    let mut lz4 = lz4_flex::frame::FrameEncoder::new(out);
    write_state(&mut lz4)?;
    let mut out = lz4.finish().map_err(|e| corrupt(e.to_string()))?;
    let body_len = (out.len() - len_at - 8) as u64;
    out[len_at..len_at + 8].copy_from_slice(&body_len.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// What checking a snapshot file found: its meta, and where its compressed state lies.
pub struct Checked {
    pub meta: SnapshotMeta,
    format: u32,
    body: Range<usize>,
}

impl Checked {
    /// The state of `file` (the file this was checked from), decompressed as it is read: a
    /// restore never holds it whole.
    pub fn state<'a>(&self, file: &'a [u8]) -> Result<Box<dyn Read + 'a>, SnapshotFileError> {
        let body = file
            .get(self.body.clone())
            .ok_or_else(|| corrupt("not the file that was checked"))?;
        if self.format == FORMAT_BLOCK {
            // The first format's single block can only be decompressed whole.
            let state =
                lz4_flex::decompress_size_prepended(body).map_err(|e| corrupt(e.to_string()))?;
            return Ok(Box::new(io::Cursor::new(state)));
        }
        Ok(Box::new(lz4_flex::frame::FrameDecoder::new(body)))
    }
}

/// Checks a snapshot file (checksum, magic, format, lengths) and parses its meta.
pub fn check(bytes: &[u8]) -> Result<Checked, SnapshotFileError> {
    if bytes.len() < 8 + 4 + 4 + 8 + 4 {
        return Err(corrupt("too short"));
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(content) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    if &content[..8] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let mut pos = 8;
    let mut take = |n: usize| -> Result<&[u8], SnapshotFileError> {
        let s = content
            .get(pos..pos + n)
            .ok_or_else(|| corrupt("truncated"))?;
        pos += n;
        Ok(s)
    };
    let format = u32::from_be_bytes(take(4)?.try_into().map_err(|_| corrupt("format"))?);
    if format != FORMAT && format != FORMAT_BLOCK {
        return Err(corrupt(format!("unsupported format {format}")));
    }
    let meta_len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| corrupt("meta"))?) as usize;
    let meta: SnapshotMeta =
        serde_json::from_slice(take(meta_len)?).map_err(|e| corrupt(e.to_string()))?;
    let body_len = u64::from_be_bytes(take(8)?.try_into().map_err(|_| corrupt("body"))?) as usize;
    take(body_len)?;
    let body = pos - body_len..pos;
    if pos != content.len() {
        return Err(corrupt("trailing bytes after the body"));
    }
    Ok(Checked { meta, format, body })
}

/// A snapshot read back from disk and checked.
pub struct Loaded {
    pub checked: Checked,
    /// The whole file, as sent to other nodes.
    pub file: Vec<u8>,
}

impl Loaded {
    /// The state, decompressed as it is read.
    pub fn state(&self) -> Result<Box<dyn Read + '_>, SnapshotFileError> {
        self.checked.state(&self.file)
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

    /// Writes a snapshot durably and removes older ones beyond the few kept.
    /// A failed write (disk full, say) leaves no file behind.
    pub fn save(&self, meta: &SnapshotMeta, file: &[u8]) -> io::Result<PathBuf> {
        let name = Self::file_name(meta);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let path = self.dir.join(&name);
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(file)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::File::open(&self.dir)?.sync_all()?;
        let mut files = self.list()?;
        while files.len() > KEEP {
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
            let bytes = std::fs::read(&path)?;
            match check(&bytes) {
                Ok(checked) => {
                    return Ok(Some(Loaded {
                        checked,
                        file: bytes,
                    }))
                }
                Err(e) => tracing::warn!("skipping snapshot {}: {e}", path.display()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a file and reads its whole state.
    fn decode(bytes: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), SnapshotFileError> {
        let checked = check(bytes)?;
        let mut state = Vec::new();
        checked.state(bytes)?.read_to_end(&mut state)?;
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
        let file = encode(&meta(7), &state).unwrap();
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
            sd.save(&meta(i), &encode(&meta(i), b"x").unwrap()).unwrap();
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
