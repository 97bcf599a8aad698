//! Names of versions and aliases. Both appear as the last part of a URN (`...:v1`, `...:prod`
//! or `...:!prod`), so they share one namespace per function and must never contain `:`.

use super::RegistryError;

/// What a name is for: the rules differ only in their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// FunctionGraph does not document the rule for version names; fgs uses the alias rule
    /// with at most 42 characters (`.` allowed too, as in `v1.2`).
    Version,
    /// Documented: at most 64 letters, digits, `-` and `_`, starting with a letter and
    /// ending with a letter or digit.
    Alias,
}

/// Checks a version or alias name; `latest` is the version every function has.
pub fn validate(name: &str, kind: NameKind) -> Result<(), RegistryError> {
    let (max, dot_ok) = match kind {
        NameKind::Version => (42, true),
        NameKind::Alias => (64, false),
    };
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_alphabetic()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| {
            b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_' || (dot_ok && *b == b'.')
        });
    let why = if !valid {
        Some(format!(
            "{name:?}: 1 to {max} letters, digits, -{} and _, starting with a letter and ending with a letter or digit",
            if dot_ok { ", ." } else { "" }
        ))
    } else if name == "latest" {
        Some("latest is the name of every function's unpublished version".into())
    } else {
        None
    };
    match (why, kind) {
        (None, _) => Ok(()),
        (Some(why), NameKind::Version) => Err(RegistryError::InvalidVersion(why)),
        (Some(why), NameKind::Alias) => Err(RegistryError::InvalidAlias(why)),
    }
}

/// The name FunctionGraph gives a version published without one: `vYYYYMMDD-HHMMSS` (UTC).
pub fn generated_version(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("v%Y%m%d-%H%M%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        for good in ["v1", "v1.2", "release_2-x"] {
            assert!(validate(good, NameKind::Version).is_ok(), "{good}");
        }
        for bad in ["", "1v", "v1-", "v:1", "latest", "v/1", &"v".repeat(43)] {
            assert!(
                matches!(
                    validate(bad, NameKind::Version),
                    Err(RegistryError::InvalidVersion(_))
                ),
                "{bad}"
            );
        }
        assert!(validate("prod", NameKind::Alias).is_ok());
        assert!(validate(&"a".repeat(64), NameKind::Alias).is_ok());
        for bad in ["!prod", "v1.2", "latest", &"a".repeat(65)] {
            assert!(
                matches!(
                    validate(bad, NameKind::Alias),
                    Err(RegistryError::InvalidAlias(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn generated() {
        let t = chrono::DateTime::from_timestamp(1_652_209_618, 0).unwrap();
        assert_eq!(generated_version(t), "v20220510-190658");
    }
}
