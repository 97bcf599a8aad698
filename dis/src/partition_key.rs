//! Which partition a record goes to: the official Java SDK's rule (research notes §F), so a
//! record lands where the SDK's own producer would have put it.
//!
//! A key hashes to the first 8 bytes of its MD5, big-endian, with the sign bit cleared; the
//! hash space `0..=i64::MAX` is cut into equal contiguous ranges, one per writable partition,
//! the remainder going to the last (which is what DIS's `hash_range`s show).

use md5::{Digest, Md5};

/// The largest hash (Java's `Long.MAX_VALUE`).
pub const MAX_HASH: u64 = i64::MAX as u64;

/// The hash of a partition key.
pub fn hash_key(key: &str) -> u64 {
    let digest = Md5::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) & MAX_HASH
}

/// The partition (0-based) of `hash` among `writable` partitions.
pub fn partition_of(hash: u64, writable: u32) -> u32 {
    let writable = u64::from(writable.max(1));
    let width = MAX_HASH / writable;
    (hash / width).min(writable - 1) as u32
}

/// The hash range of partition `index` among `writable`, as describe-stream writes it.
pub fn hash_range(index: u32, writable: u32) -> String {
    let n = u64::from(writable.max(1));
    let width = MAX_HASH / n;
    let i = u64::from(index);
    let end = if i + 1 == n {
        MAX_HASH
    } else {
        (i + 1) * width - 1
    };
    format!("[{} : {}]", i * width, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of research notes §F (computed with the Java SDK's rule).
    #[test]
    fn keys_land_where_the_java_sdk_puts_them() {
        let cases = [
            ("a", 919145239626757800u64, [0, 0, 0, 0, 0]),
            ("key1", 4804732311831850439, [0, 1, 1, 2, 4]),
            ("user-42", 8516795111299649485, [0, 1, 2, 3, 7]),
            ("hello", 6719722671305337462, [0, 1, 2, 2, 5]),
        ];
        for (key, hash, partitions) in cases {
            assert_eq!(hash_key(key), hash, "{key}");
            for (n, want) in [1, 2, 3, 4, 8].into_iter().zip(partitions) {
                assert_eq!(partition_of(hash, n), want, "{key} among {n}");
            }
        }
    }

    #[test]
    fn ranges_cover_the_hash_space() {
        assert_eq!(hash_range(0, 2), "[0 : 4611686018427387902]");
        assert_eq!(
            hash_range(1, 2),
            "[4611686018427387903 : 9223372036854775807]"
        );
        assert_eq!(partition_of(MAX_HASH, 3), 2);
        assert_eq!(partition_of(0, 3), 0);
    }
}
