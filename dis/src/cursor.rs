//! Partition cursors. Shaped like DIS's own (base64 of
//! `{"getIteratorParam":{…},"generateTimestamp":…}`), URL-safe so that a client that puts it
//! in a query string unescaped still works; clients treat them as opaque. A cursor always
//! holds the sequence number to read next (whatever type it was asked with) and the id of
//! its stream, so a stream deleted and created again under the same name does not take it.
//! It is valid for five minutes, as DIS documents.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::DisError;
use crate::streams::partition_name;

/// How long a cursor is valid (milliseconds).
pub const TTL_MS: i64 = 5 * 60 * 1000;
/// The longest cursor DIS accepts.
const MAX_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub stream_id: String,
    pub stream_name: String,
    pub partition: u32,
    pub sequence: u64,
    /// Milliseconds since the epoch.
    pub generated: i64,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "getIteratorParam")]
    param: Param,
    #[serde(rename = "generateTimestamp")]
    generated: i64,
    #[serde(rename = "streamId")]
    stream_id: String,
}

#[derive(Serialize, Deserialize)]
struct Param {
    #[serde(rename = "stream-name")]
    stream_name: String,
    #[serde(rename = "partition-id")]
    partition_id: String,
    #[serde(rename = "cursor-type")]
    cursor_type: String,
    #[serde(rename = "starting-sequence-number")]
    sequence: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let wire = Wire {
            param: Param {
                stream_name: self.stream_name.clone(),
                partition_id: partition_name(self.partition),
                cursor_type: "AT_SEQUENCE_NUMBER".into(),
                sequence: self.sequence.to_string(),
            },
            generated: self.generated,
            stream_id: self.stream_id.clone(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).expect("a cursor serializes"))
    }

    /// A cursor from a client, checked for shape (not for expiry: see [`Cursor::age`]).
    pub fn decode(text: &str) -> Result<Self, DisError> {
        let bad = || DisError::Cursor(format!("{:?} is not a partition cursor", clip(text)));
        if text.is_empty() || text.len() > MAX_LEN {
            return Err(bad());
        }
        // Accept padded or standard base64 too: a client may have re-encoded it.
        let trimmed = text
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        let bytes = URL_SAFE_NO_PAD.decode(trimmed).map_err(|_| bad())?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let partition =
            crate::streams::parse_partition(&wire.param.partition_id).map_err(|_| bad())?;
        let sequence = wire.param.sequence.parse().map_err(|_| bad())?;
        Ok(Self {
            stream_id: wire.stream_id,
            stream_name: wire.param.stream_name,
            partition,
            sequence,
            generated: wire.generated,
        })
    }
}

fn clip(text: &str) -> &str {
    let end = text.char_indices().nth(40).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let cursor = Cursor {
            stream_id: "abc".into(),
            stream_name: "s1".into(),
            partition: 3,
            sequence: 42,
            generated: 1_700_000_000_000,
        };
        let text = cursor.encode();
        assert!(text.len() <= MAX_LEN);
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        for bad in ["", "not-a-cursor", &"a".repeat(600), "eyJ4IjoxfQ"] {
            assert!(
                matches!(Cursor::decode(bad), Err(DisError::Cursor(_))),
                "{bad}"
            );
        }
    }
}
