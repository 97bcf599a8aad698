//! IAM-style tokens: what `POST /v3/auth/tokens` answers in `X-Subject-Token`, and what a
//! caller then sends as `X-Auth-Token`.
//!
//! A token names its access key, the one project it is scoped to and when it expires, and
//! carries the host key's MAC over those: it is checked without any store, cannot be altered
//! or minted elsewhere, and stops working when it expires or its credential is removed.

use base64::Engine as _;
use fgs_secrets::HostKey;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "fgs-token.";
const CONTEXT: &[u8] = b"fgs iam token v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "ak")]
    pub access_key: String,
    #[serde(rename = "p")]
    pub project_id: String,
    /// Seconds since the epoch.
    #[serde(rename = "exp")]
    pub expires_at: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Expired { expires_at: i64 },
}

pub fn issue(key: &HostKey, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{PREFIX}{}.{}",
        b64.encode(&payload),
        b64.encode(key.tag(CONTEXT, &payload))
    )
}

pub fn verify(key: &HostKey, token: &str, now: i64) -> Result<Claims, TokenError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (payload, tag) = token
        .strip_prefix(PREFIX)
        .and_then(|t| t.split_once('.'))
        .ok_or(TokenError::Malformed)?;
    let payload = b64.decode(payload).map_err(|_| TokenError::Malformed)?;
    let tag = b64.decode(tag).map_err(|_| TokenError::Malformed)?;
    if !key.verify(CONTEXT, &payload, &tag) {
        return Err(TokenError::Malformed);
    }
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if now >= claims.expires_at {
        return Err(TokenError::Expired {
            expires_at: claims.expires_at,
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_resist_tampering() {
        let key = HostKey::from_bytes(&[3; 32]);
        let claims = Claims {
            access_key: "AK".into(),
            project_id: "p1".into(),
            expires_at: 1000,
        };
        let token = issue(&key, &claims);
        assert_eq!(verify(&key, &token, 999), Ok(claims.clone()));
        assert_eq!(
            verify(&key, &token, 1000),
            Err(TokenError::Expired { expires_at: 1000 })
        );
        let forged = issue(&HostKey::from_bytes(&[4; 32]), &claims);
        assert_eq!(verify(&key, &forged, 0), Err(TokenError::Malformed));
        let (head, tag) = token.rsplit_once('.').unwrap();
        let other = issue(
            &key,
            &Claims {
                project_id: "p2".into(),
                ..claims
            },
        );
        let other_payload = other
            .strip_prefix(PREFIX)
            .unwrap()
            .split_once('.')
            .unwrap()
            .0;
        let spliced = format!("{PREFIX}{other_payload}.{tag}");
        assert_eq!(verify(&key, &spliced, 0), Err(TokenError::Malformed));
        assert!(head.starts_with(PREFIX));
        assert_eq!(verify(&key, "garbage", 0), Err(TokenError::Malformed));
    }
}
