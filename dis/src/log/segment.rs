//! One segment of a partition's log: a file of frames named after its first sequence
//! number, and a sparse index (one entry per `index_interval` bytes) kept in memory and,
//! once the segment is sealed, in a `.idx` file beside it, so a restart need not read
//! sealed segments.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::{self, Header};

/// A sparse index entry: where the frame of `sequence` starts and when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub sequence: u64,
    pub position: u64,
    pub timestamp: i64,
}

/// A segment's extent and index.
#[derive(Debug)]
pub struct Segment {
    pub base: u64,
    /// The sequence number after its last record.
    pub end: u64,
    pub size: u64,
    pub last_timestamp: i64,
    pub index: Vec<IndexEntry>,
    pub file: Arc<File>,
    last_indexed: Option<u64>,
}

const INDEX_MAGIC: &[u8; 8] = b"FGSIDX1\n";

pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.idx"))
}

/// The base sequence numbers of the segments in `dir`, in order.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name.strip_suffix(".log").and_then(|s| s.parse().ok()) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

impl Segment {
    /// A new, empty segment file (the directory is synced by the caller).
    pub fn create(dir: &Path, base: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(log_path(dir, base))?;
        Ok(Self::empty(base, file))
    }

    fn empty(base: u64, file: File) -> Self {
        Self {
            base,
            end: base,
            size: 0,
            last_timestamp: i64::MIN,
            index: Vec::new(),
            file: Arc::new(file),
            last_indexed: None,
        }
    }

    /// Opens a segment: from its index file when it is sealed and the index matches the
    /// file, otherwise by reading every frame, cutting off a torn or corrupt tail.
    pub fn open(dir: &Path, base: u64, sealed: bool, interval: u64) -> io::Result<Self> {
        let path = log_path(dir, base);
        let file = OpenOptions::new().read(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        if sealed {
            if let Some(segment) = Self::load_index(dir, base, len, &file) {
                return Ok(Self {
                    file: Arc::new(file),
                    ..segment
                });
            }
        }
        let mut segment = Self::empty(base, file.try_clone()?);
        let valid = segment.scan(interval)?;
        if valid < len {
            tracing::warn!(
                path = %path.display(),
                kept = valid,
                dropped = len - valid,
                "cutting a torn tail off a DIS log segment"
            );
            file.set_len(valid)?;
            file.sync_all()?;
        }
        Ok(segment)
    }

    /// Reads the frames from the start, noting each; answers where the intact frames end.
    fn scan(&mut self, interval: u64) -> io::Result<u64> {
        let file = self.file.clone();
        let mut reader = BufReader::with_capacity(1 << 20, &*file);
        let mut frame = Vec::new();
        loop {
            let mut prefix = [0u8; 4];
            if read_full(&mut reader, &mut prefix)? < 4 {
                break;
            }
            let len = u32::from_le_bytes(prefix) as usize + 8;
            if !(frame::HEADER..=frame::MAX_FRAME).contains(&len) {
                break;
            }
            frame.resize(len, 0);
            frame[..4].copy_from_slice(&prefix);
            if read_full(&mut reader, &mut frame[4..])? < len - 4 {
                break;
            }
            match frame::check(&frame) {
                Some(header) if header.sequence == self.end => self.note(header, interval),
                _ => break,
            }
        }
        Ok(self.size)
    }

    /// Records a frame just written at the segment's end.
    pub fn note(&mut self, header: Header, interval: u64) {
        let position = self.size;
        if self
            .last_indexed
            .is_none_or(|last| position - last >= interval)
        {
            self.index.push(IndexEntry {
                sequence: header.sequence,
                position,
                timestamp: header.timestamp,
            });
            self.last_indexed = Some(position);
        }
        self.end = header.sequence + 1;
        self.size += header.len as u64;
        self.last_timestamp = header.timestamp;
    }

    /// Where to start reading for `sequence` (which is in this segment).
    pub fn locate(&self, sequence: u64) -> u64 {
        let at = self.index.partition_point(|e| e.sequence <= sequence);
        at.checked_sub(1).map_or(0, |i| self.index[i].position)
    }

    /// A sequence number at or before the first record written at or after `timestamp`
    /// (in this segment): where a scan for it starts.
    pub fn locate_time(&self, timestamp: i64) -> u64 {
        let at = self.index.partition_point(|e| e.timestamp < timestamp);
        at.checked_sub(1)
            .map_or(self.base, |i| self.index[i].sequence)
    }

    /// Writes the index file of a sealed segment (atomically: a temporary file renamed).
    pub fn write_index(&self, dir: &Path) -> io::Result<()> {
        let mut out = Vec::with_capacity(64 + self.index.len() * 24);
        out.extend_from_slice(INDEX_MAGIC);
        for n in [self.base, self.end, self.size] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.last_timestamp.to_le_bytes());
        out.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        for e in &self.index {
            out.extend_from_slice(&e.sequence.to_le_bytes());
            out.extend_from_slice(&e.position.to_le_bytes());
            out.extend_from_slice(&e.timestamp.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let tmp = dir.join(format!("{:020}.idx.tmp", self.base));
        let mut file = File::create(&tmp)?;
        file.write_all(&out)?;
        file.sync_data()?;
        std::fs::rename(tmp, index_path(dir, self.base))
    }

    /// A sealed segment from its index file, if the file is intact and describes `len` bytes.
    fn load_index(dir: &Path, base: u64, len: u64, file: &File) -> Option<Self> {
        let bytes = std::fs::read(index_path(dir, base)).ok()?;
        if bytes.len() < 52 || &bytes[..8] != INDEX_MAGIC {
            return None;
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(body[8 + i * 8..16 + i * 8].try_into().unwrap());
        let (stored_base, end, size, last_timestamp, count) =
            (word(0), word(1), word(2), word(3) as i64, word(4) as usize);
        if stored_base != base || size != len || body.len() != 48 + count * 24 {
            return None;
        }
        let index = body[48..]
            .chunks_exact(24)
            .map(|c| IndexEntry {
                sequence: u64::from_le_bytes(c[0..8].try_into().unwrap()),
                position: u64::from_le_bytes(c[8..16].try_into().unwrap()),
                timestamp: i64::from_le_bytes(c[16..24].try_into().unwrap()),
            })
            .collect::<Vec<_>>();
        Some(Self {
            base,
            end,
            size,
            last_timestamp,
            last_indexed: index.last().map(|e| e.position),
            index,
            file: Arc::new(file.try_clone().ok()?),
        })
    }

    /// Removes the segment's files.
    pub fn remove(&self, dir: &Path) -> io::Result<()> {
        match std::fs::remove_file(index_path(dir, self.base)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::remove_file(log_path(dir, self.base))
    }
}

/// Reads until `buf` is full or the input ends; answers how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
