//! EventGrid transform rules: what a stream delivers for an event.
//!
//! - `ORIGINAL`: the event as it is.
//! - `CONSTANT`: `value`, instead of the event (for a FunctionGraph sink it must be JSON).
//! - `VARIABLE`: `value` is a JSON object of variables, each a JsonPath (RFC 9535) into the
//!   event or a constant; `template` is the result with `${name}` replaced.
//!
//! Limits: at most 100 variables, not nested; names of letters, digits, `.`, `_`, `-`, starting
//! with a letter or digit, not with `HC.`, at most 64 characters; each expression at most
//! 1024 characters; the template at most 2048.
//!
//! fgs's substitution rule (EventGrid documents only strings): `"${x}"` inside quotes takes a
//! string variable's text (escaped for JSON) and any other value's JSON text; a bare `${x}`
//! takes a string's text as it is (`My name is ${name}`) and any other value as JSON. A path that finds nothing gives `null` (bare) or an empty string
//! (in quotes). A path finding several values gives them as a JSON array.

use std::borrow::Cow;

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use crate::RuleError;

const MAX_VARIABLES: usize = 100;
const MAX_NAME: usize = 64;
const MAX_EXPRESSION: usize = 1024;
const MAX_TEMPLATE: usize = 2048;

/// A validated transform rule.
#[derive(Debug, Clone)]
pub enum Transform {
    Original,
    /// The constant as delivered (parsed once: JSON when it parses, else a JSON string).
    Constant(Value),
    Variable {
        variables: Vec<(String, Expression)>,
        template: String,
    },
}

/// A variable's definition.
#[derive(Debug, Clone)]
pub enum Expression {
    Path(JsonPath),
    Constant(Value),
}

impl Transform {
    /// Parses `{"type", "value", "template"}`. `json_output`: the sink needs JSON (FunctionGraph),
    /// so a constant must be JSON.
    pub fn parse(rule: &Value, json_output: bool) -> Result<Self, RuleError> {
        let kind = rule
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ORIGINAL");
        let text = |key: &str| rule.get(key).and_then(Value::as_str).map(str::to_string);
        match kind {
            "ORIGINAL" => Ok(Transform::Original),
            "CONSTANT" => {
                let value = text("value")
                    .ok_or_else(|| RuleError::Transform("CONSTANT needs a value".into()))?;
                if value.len() > MAX_TEMPLATE {
                    return Err(RuleError::Transform(format!(
                        "the constant exceeds {MAX_TEMPLATE} characters"
                    )));
                }
                if json_output && serde_json::from_str::<Value>(&value).is_err() {
                    return Err(RuleError::Transform(
                        "for a FunctionGraph sink the constant must be JSON".into(),
                    ));
                }
                Ok(Transform::Constant(as_json(&value)))
            }
            "VARIABLE" => {
                let value = text("value")
                    .ok_or_else(|| RuleError::Transform("VARIABLE needs a value".into()))?;
                let template = text("template")
                    .ok_or_else(|| RuleError::Transform("VARIABLE needs a template".into()))?;
                if template.chars().count() > MAX_TEMPLATE {
                    return Err(RuleError::Transform(format!(
                        "the template exceeds {MAX_TEMPLATE} characters"
                    )));
                }
                let Ok(Value::Object(defs)) = serde_json::from_str::<Value>(&value) else {
                    return Err(RuleError::Transform(
                        "value must be a JSON object of variables".into(),
                    ));
                };
                Ok(Transform::Variable {
                    variables: variables(defs)?,
                    template,
                })
            }
            other => Err(RuleError::Transform(format!(
                "unknown transform type {other:?}; use ORIGINAL, CONSTANT or VARIABLE"
            ))),
        }
    }

    /// What is delivered for `event`: JSON when it parses as JSON, else a JSON string.
    /// `ORIGINAL` and `CONSTANT` lend what they deliver instead of copying it per event.
    pub fn apply<'a>(&'a self, event: &'a Value) -> Cow<'a, Value> {
        match self {
            Transform::Original => Cow::Borrowed(event),
            Transform::Constant(value) => Cow::Borrowed(value),
            Transform::Variable {
                variables,
                template,
            } => {
                let values: Vec<(&str, Value)> = variables
                    .iter()
                    .map(|(name, expr)| (name.as_str(), expr.evaluate(event)))
                    .collect();
                Cow::Owned(as_json(&render(template, &values)))
            }
        }
    }
}

fn as_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn variables(defs: Map<String, Value>) -> Result<Vec<(String, Expression)>, RuleError> {
    if defs.len() > MAX_VARIABLES {
        return Err(RuleError::Transform(format!(
            "{} variables; at most {MAX_VARIABLES} are allowed",
            defs.len()
        )));
    }
    defs.into_iter()
        .map(|(name, def)| {
            let valid = name.len() <= MAX_NAME
                && !name.starts_with("HC.")
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                return Err(RuleError::Transform(format!(
                    "variable name {name:?}: letters, digits, '.', '_', '-', starting with a letter or digit, not 'HC.', at most {MAX_NAME}"
                )));
            }
            let expression = match def {
                Value::String(s) if s.chars().count() > MAX_EXPRESSION => {
                    return Err(RuleError::Transform(format!("variable {name:?}: expression exceeds {MAX_EXPRESSION} characters")))
                }
                Value::String(s) if s.starts_with('$') => Expression::Path(
                    JsonPath::parse(&s).map_err(|e| RuleError::Transform(format!("variable {name:?}: invalid JsonPath {s:?}: {e}")))?,
                ),
                Value::Object(_) | Value::Array(_) => {
                    return Err(RuleError::Transform(format!("variable {name:?}: nested definitions are not allowed")))
                }
                constant => Expression::Constant(constant),
            };
            Ok((name, expression))
        })
        .collect()
}

impl Expression {
    fn evaluate(&self, event: &Value) -> Value {
        match self {
            Expression::Constant(v) => v.clone(),
            Expression::Path(path) => {
                let found: Vec<&Value> = path.query(event).all();
                match found.as_slice() {
                    [] => Value::Null,
                    [one] => (*one).clone(),
                    many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
                }
            }
        }
    }
}

/// Replaces `${name}` in `template` (see the module docs for quoting).
fn render(template: &str, values: &[(&str, Value)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        let Some((_, value)) = values.iter().find(|(n, _)| *n == name) else {
            out.push_str(&rest[..start + 3 + len]);
            rest = &rest[start + 3 + len..];
            continue;
        };
        let before = &rest[..start];
        let quoted = before.ends_with('"') && rest[start + 3 + len..].starts_with('"');
        out.push_str(before);
        let text = match (quoted, value) {
            (true, Value::String(s)) => escape(s),
            (true, Value::Null) => String::new(),
            (true, other) => escape(&other.to_string()),
            (false, Value::String(s)) => s.clone(),
            (false, other) => other.to_string(),
        };
        out.push_str(&text);
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

/// A string's JSON escaping, without the quotes.
fn escape(s: &str) -> String {
    let quoted = Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({"source": "HC.Kafka", "subject": "orders",
               "data": {"topic": "orders", "offset": 7, "value": {"name": "test01", "amount": 3, "tags": ["a", "b"]}}})
    }

    #[test]
    fn original_and_constant() {
        assert_eq!(
            Transform::parse(&json!({"type": "ORIGINAL"}), true)
                .unwrap()
                .apply(&event())
                .into_owned(),
            event()
        );
        let c = Transform::parse(
            &json!({"type": "CONSTANT", "value": "{\"name\":\"test01\"}"}),
            true,
        )
        .unwrap();
        assert_eq!(c.apply(&event()).into_owned(), json!({"name": "test01"}));
        assert!(Transform::parse(&json!({"type": "CONSTANT", "value": "plain"}), true).is_err());
        let plain =
            Transform::parse(&json!({"type": "CONSTANT", "value": "plain"}), false).unwrap();
        assert_eq!(plain.apply(&event()).into_owned(), json!("plain"));
    }

    #[test]
    fn variables_and_templates() {
        let rule = json!({"type": "VARIABLE",
            "value": "{\"name\":\"$.data.value.name\",\"amount\":\"$.data.value.amount\",\"tags\":\"$.data.value.tags\",\"fixed\":\"k\",\"none\":\"$.data.nope\"}",
            "template": "{\"name\":\"${name}\",\"amount\":${amount},\"tags\":${tags},\"fixed\":\"${fixed}\",\"none\":${none},\"empty\":\"${none}\"}"});
        let t = Transform::parse(&rule, true).unwrap();
        assert_eq!(
            t.apply(&event()).into_owned(),
            json!({"name": "test01", "amount": 3, "tags": ["a", "b"], "fixed": "k", "none": null, "empty": ""})
        );
        let text = Transform::parse(
            &json!({"type": "VARIABLE", "value": "{\"name\":\"$.data.value.name\"}", "template": "My name is ${name}"}),
            false,
        )
        .unwrap();
        assert_eq!(
            text.apply(&event()).into_owned(),
            json!("My name is test01")
        );
        let quote = Transform::parse(
            &json!({"type": "VARIABLE", "value": "{\"s\":\"$.subject\"}", "template": "{\"s\":\"${s}\\\"\"}"}),
            true,
        );
        assert!(quote.is_ok());
    }

    #[test]
    fn limits() {
        let many: Map<String, Value> = (0..101)
            .map(|i| (format!("v{i}"), json!("$.subject")))
            .collect();
        let rule =
            json!({"type": "VARIABLE", "value": Value::Object(many).to_string(), "template": "x"});
        assert!(Transform::parse(&rule, false).is_err());
        for (value, template) in [
            ("{\"HC.x\":\"$.a\"}", "x"),
            ("{\"-x\":\"$.a\"}", "x"),
            ("{\"x\":{\"y\":1}}", "x"),
            ("{\"x\":\"$[\"}", "x"),
            ("not json", "x"),
        ] {
            let rule = json!({"type": "VARIABLE", "value": value, "template": template});
            assert!(Transform::parse(&rule, false).is_err(), "{value}");
        }
        let long_name = format!("{{\"{}\":\"$.a\"}}", "n".repeat(65));
        assert!(Transform::parse(
            &json!({"type": "VARIABLE", "value": long_name, "template": "x"}),
            false
        )
        .is_err());
        let long_expr = format!("{{\"x\":\"$.{}\"}}", "a".repeat(1024));
        assert!(Transform::parse(
            &json!({"type": "VARIABLE", "value": long_expr, "template": "x"}),
            false
        )
        .is_err());
        let long_template = "x".repeat(2049);
        assert!(Transform::parse(
            &json!({"type": "VARIABLE", "value": "{}", "template": long_template}),
            false
        )
        .is_err());
        assert!(Transform::parse(&json!({"type": "SHUFFLE"}), false).is_err());
        assert!(Transform::parse(&json!({"type": "VARIABLE", "value": "{}"}), false).is_err());
    }
}
