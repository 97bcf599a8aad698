//! Reading a trigger's `event_data`: typed fields with the reason when one is malformed, and
//! the refusal of fields the trigger type does not have (an ignored field would be a silent
//! drop).

use serde_json::{Map, Value};

/// The `event_data` of one trigger being validated.
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl Fields<'_> {
    /// Refuses a field other than `allowed` that carries a value (null, "" and false are no
    /// value: SDKs send every field of their model).
    pub fn only(&self, type_code: &str, allowed: &[&str]) -> Result<(), String> {
        for (k, v) in self.0 {
            let empty = match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Bool(b) => !b,
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Number(_) => false,
            };
            if !empty && !allowed.contains(&k.as_str()) {
                return Err(format!("{k} is not a {type_code} trigger parameter"));
            }
        }
        Ok(())
    }

    /// A string field; `None` when absent or null.
    pub fn text(&self, k: &str) -> Result<Option<&str>, String> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("{k} must be a string, not {other}")),
        }
    }

    /// An integer field; `None` when absent or null.
    pub fn integer(&self, k: &str) -> Result<Option<i64>, String> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("{k} must be an integer, not {v}")),
        }
    }

    /// An object field; `None` when absent or null.
    pub fn object(&self, k: &str) -> Result<Option<&Map<String, Value>>, String> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(other) => Err(format!("{k} must be an object, not {other}")),
        }
    }
}

/// Whether `name` is 1 to `max` letters, digits, `_` and `-`, starting with a letter.
pub fn is_name(name: &str, max: usize) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}
