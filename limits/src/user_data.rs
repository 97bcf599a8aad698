//! `user_data`: a function's environment variables, sent as a JSON object in a string.

use crate::LimitError;

/// At most 20 variables.
pub const MAX_ITEMS: usize = 20;
/// At most 4096 characters of keys and values together.
pub const MAX_TOTAL_SIZE: usize = 4096;

/// Parsed environment variables, in the order given.
pub type UserData = Vec<(String, String)>;

/// Parses and checks `user_data`. An empty string means no variables. Keys start with a
/// letter and hold letters, digits and `_`; values are strings (numbers and booleans are
/// accepted and turned into their JSON text, as the console does).
pub fn parse_user_data(raw: &str) -> Result<UserData, LimitError> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| LimitError::UserData(format!("not a JSON object: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(LimitError::UserData(
            "must be a JSON object of name/value pairs".into(),
        ));
    };
    if map.len() > MAX_ITEMS {
        return Err(LimitError::UserDataCount {
            count: map.len(),
            max: MAX_ITEMS,
        });
    }
    let mut vars = Vec::with_capacity(map.len());
    let mut total = 0;
    for (key, value) in map {
        let key_ok = key.starts_with(|c: char| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key_ok {
            return Err(LimitError::UserData(format!(
                "key {key:?} must start with a letter and hold only letters, digits and '_'"
            )));
        }
        let value = match value {
            serde_json::Value::String(s) => s,
            v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => v.to_string(),
            other => {
                return Err(LimitError::UserData(format!(
                    "value of {key:?} must be a string, got {other}"
                )))
            }
        };
        total += key.chars().count() + value.chars().count();
        vars.push((key, value));
    }
    if total > MAX_TOTAL_SIZE {
        return Err(LimitError::UserDataSize {
            size: total,
            max: MAX_TOTAL_SIZE,
        });
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_limits() {
        assert_eq!(parse_user_data("").unwrap(), vec![]);
        assert_eq!(
            parse_user_data(r#"{"a":"1","b":2}"#).unwrap(),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert!(matches!(
            parse_user_data("[1]"),
            Err(LimitError::UserData(_))
        ));
        assert!(matches!(parse_user_data("{"), Err(LimitError::UserData(_))));
        assert!(matches!(
            parse_user_data(r#"{"1a":"x"}"#),
            Err(LimitError::UserData(_))
        ));
        let many: serde_json::Map<_, _> = (0..21)
            .map(|i| (format!("k{i}"), serde_json::Value::from("v")))
            .collect();
        assert!(matches!(
            parse_user_data(&serde_json::Value::Object(many).to_string()),
            Err(LimitError::UserDataCount { count: 21, .. })
        ));
        let big = format!(r#"{{"k":"{}"}}"#, "x".repeat(4096));
        assert!(matches!(
            parse_user_data(&big),
            Err(LimitError::UserDataSize { .. })
        ));
        let fits = format!(r#"{{"k":"{}"}}"#, "x".repeat(4095));
        assert!(parse_user_data(&fits).is_ok());
    }
}
