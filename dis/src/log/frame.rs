//! One record on disk: `len u32 | crc32 u32 | seq u64 | timestamp i64 | key_len u16 | key | data`,
//! little-endian; `len` counts everything after the CRC, the CRC covers the same bytes. A
//! frame cut short by a crash, or whose CRC does not match, ends the readable log.

use bytes::Bytes;

/// Bytes before the key.
pub const HEADER: usize = 4 + 4 + 8 + 8 + 2;
/// The largest record payload (1 MB before base64, as DIS documents).
pub const MAX_DATA: usize = 1024 * 1024;
/// The largest frame: a longer length prefix is corruption, not a record.
pub const MAX_FRAME: usize = HEADER + u16::MAX as usize + MAX_DATA;

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence: u64,
    /// Milliseconds since the epoch, when the log accepted it.
    pub timestamp: i64,
    /// The `partition_key` it was sent with, if any.
    pub key: Option<String>,
    pub data: Bytes,
}

/// The length of the frame of a record with these parts.
pub fn frame_len(key: &str, data: &[u8]) -> usize {
    HEADER + key.len() + data.len()
}

/// Appends the frame of one record to `out`. `key` is at most `u16::MAX` bytes (the API
/// refuses longer keys before they get here); an empty key means none.
pub fn encode(out: &mut Vec<u8>, sequence: u64, timestamp: i64, key: &str, data: &[u8]) {
    let start = out.len();
    let body = (frame_len(key, data) - 8) as u32;
    out.extend_from_slice(&body.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The header fields of the frame at the start of `buf`: what a scan needs without copying
/// the data.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub sequence: u64,
    pub timestamp: i64,
    /// The whole frame's length.
    pub len: usize,
}

/// The frame at the start of `buf`, checked; `None` when `buf` holds no whole, intact frame
/// (the end of the log, or a torn write).
pub fn check(buf: &[u8]) -> Option<Header> {
    if buf.len() < HEADER {
        return None;
    }
    let body = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
    let len = body + 8;
    if body < HEADER - 8 || buf.len() < len {
        return None;
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
    if crc32fast::hash(&buf[8..len]) != crc {
        return None;
    }
    let key_len = u16::from_le_bytes(buf[24..26].try_into().unwrap()) as usize;
    if HEADER + key_len > len {
        return None;
    }
    Some(Header {
        sequence: u64::from_le_bytes(buf[8..16].try_into().unwrap()),
        timestamp: i64::from_le_bytes(buf[16..24].try_into().unwrap()),
        len,
    })
}

/// The record of the frame at `offset` in `buf` that [`check`] accepted; its data shares
/// `buf`.
pub fn decode(buf: &Bytes, offset: usize, header: Header) -> Record {
    let frame = &buf[offset..offset + header.len];
    let key_len = u16::from_le_bytes(frame[24..26].try_into().unwrap()) as usize;
    let key = &frame[HEADER..HEADER + key_len];
    Record {
        sequence: header.sequence,
        timestamp: header.timestamp,
        key: (key_len > 0).then(|| String::from_utf8_lossy(key).into_owned()),
        data: buf.slice(offset + HEADER + key_len..offset + header.len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_and_a_torn_one_does_not() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 1_700_000_000_000, "user-42", b"payload");
        encode(&mut buf, 8, 1_700_000_000_001, "", b"");
        let shared = Bytes::from(buf.clone());
        let first = check(&buf).unwrap();
        let record = decode(&shared, 0, first);
        assert_eq!(record.sequence, 7);
        assert_eq!(record.key.as_deref(), Some("user-42"));
        assert_eq!(&record.data[..], b"payload");
        let second = check(&buf[first.len..]).unwrap();
        assert_eq!(decode(&shared, first.len, second).key, None);
        assert_eq!(first.len + second.len, buf.len());
        // Cut short, or one bit flipped: not a frame.
        assert!(check(&buf[..first.len - 1]).is_none());
        let mut flipped = buf.clone();
        flipped[30] ^= 1;
        assert!(check(&flipped).is_none());
    }
}
