//! EventGrid filter rules: which events a stream passes on.
//!
//! A rule has the shape of the event: its top-level keys are among `source`, `type`,
//! `subject` and `data`; under `data`, keys nest (at most 5 levels) down to the match fields
//! (at most 5). A match field holds a list of at most 5 conditions, any of which may match
//! (OR), or `{"and": [...]}`, all of which must; different match fields must all match (AND).
//!
//! fgs's choices where EventGrid's documentation is silent: a condition on a list value
//! matches when any element matches (negated operators: when no element matches); negated
//! operators do not match an absent field (only `IsNull` does); `NumberInRange` bounds are
//! inclusive; single-value operators accept `value` and `values: [x]`; `source` may use only
//! `StringIn`, but is not required (a stream has one source).

use serde_json::{Map, Value};

use crate::RuleError;

const MAX_FIELDS: usize = 5;
const MAX_DEPTH: usize = 5;
const MAX_CONDITIONS: usize = 5;
const TOP_LEVEL: [&str; 4] = ["source", "type", "subject", "data"];

#[derive(Debug, Clone, PartialEq)]
enum Op {
    StringIn(Vec<String>),
    StringNotIn(Vec<String>),
    StringStartsWith(Vec<String>),
    StringNotStartsWith(Vec<String>),
    StringEndsWith(Vec<String>),
    StringNotEndsWith(Vec<String>),
    NumberIn(Vec<f64>),
    NumberNotIn(Vec<f64>),
    NumberLessThan(f64),
    NumberNotLessThan(f64),
    NumberGreaterThan(f64),
    NumberNotGreaterThan(f64),
    NumberInRange(Vec<(f64, f64)>),
    NumberNotInRange(Vec<(f64, f64)>),
    IsNull,
    IsNotNull,
    IsTrue,
    IsNotTrue,
}

/// How a match field's conditions combine.
#[derive(Debug, Clone, PartialEq)]
enum Combine {
    Any(Vec<Op>),
    All(Vec<Op>),
}

/// A validated filter rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Each match field: its path from the event's root, and its conditions.
    fields: Vec<(Vec<String>, Combine)>,
}

impl Filter {
    /// Parses and checks a rule; an empty object matches every event.
    pub fn parse(rule: &Value) -> Result<Self, RuleError> {
        let Value::Object(top) = rule else {
            return Err(RuleError::Filter("the filter must be a JSON object".into()));
        };
        let mut fields = Vec::new();
        for (key, value) in top {
            if !TOP_LEVEL.contains(&key.as_str()) {
                return Err(RuleError::Filter(format!(
                    "top-level key {key:?} is not one of {TOP_LEVEL:?}"
                )));
            }
            if key == "data" {
                let Value::Object(data) = value else {
                    return Err(RuleError::Filter(
                        "data must be an object of match fields".into(),
                    ));
                };
                let mut data_fields = Vec::new();
                collect(data, vec!["data".into()], 1, &mut data_fields)?;
                if data_fields.len() > MAX_FIELDS {
                    return Err(RuleError::Filter(format!(
                        "data has {} match fields; at most {MAX_FIELDS} are allowed",
                        data_fields.len()
                    )));
                }
                fields.extend(data_fields);
            } else {
                let combine = conditions(value, key)?;
                if key == "source" {
                    let ops = match &combine {
                        Combine::Any(ops) | Combine::All(ops) => ops,
                    };
                    if ops.iter().any(|op| !matches!(op, Op::StringIn(_))) {
                        return Err(RuleError::Filter("source accepts only StringIn".into()));
                    }
                }
                fields.push((vec![key.clone()], combine));
            }
        }
        Ok(Filter { fields })
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Value) -> bool {
        self.fields.iter().all(|(path, combine)| {
            let found = path.iter().try_fold(event, |v, key| v.get(key));
            match combine {
                Combine::Any(ops) => ops.iter().any(|op| op.matches(found)),
                Combine::All(ops) => ops.iter().all(|op| op.matches(found)),
            }
        })
    }
}

fn collect(
    object: &Map<String, Value>,
    path: Vec<String>,
    depth: usize,
    out: &mut Vec<(Vec<String>, Combine)>,
) -> Result<(), RuleError> {
    for (key, value) in object {
        let mut here = path.clone();
        here.push(key.clone());
        let is_leaf = value.is_array() || value.get("and").is_some();
        if is_leaf {
            out.push((here.clone(), conditions(value, &here.join("."))?));
        } else if let Value::Object(inner) = value {
            if depth >= MAX_DEPTH {
                return Err(RuleError::Filter(format!(
                    "{} nests deeper than {MAX_DEPTH} levels under data",
                    here.join(".")
                )));
            }
            collect(inner, here, depth + 1, out)?;
        } else {
            return Err(RuleError::Filter(format!(
                "{} must hold a list of conditions",
                here.join(".")
            )));
        }
    }
    Ok(())
}

fn conditions(value: &Value, field: &str) -> Result<Combine, RuleError> {
    let (list, all) = match value {
        Value::Array(list) => (list, false),
        Value::Object(o) => match o.get("and") {
            Some(Value::Array(list)) if o.len() == 1 => (list, true),
            _ => {
                return Err(RuleError::Filter(format!(
                    "{field}: expected a list of conditions or {{\"and\": [...]}}"
                )))
            }
        },
        _ => {
            return Err(RuleError::Filter(format!(
                "{field}: expected a list of conditions"
            )))
        }
    };
    if list.is_empty() || list.len() > MAX_CONDITIONS {
        return Err(RuleError::Filter(format!(
            "{field}: 1 to {MAX_CONDITIONS} conditions are allowed, got {}",
            list.len()
        )));
    }
    let ops = list
        .iter()
        .map(|c| Op::parse(c, field))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if all {
        Combine::All(ops)
    } else {
        Combine::Any(ops)
    })
}

impl Op {
    fn parse(condition: &Value, field: &str) -> Result<Op, RuleError> {
        let bad = |why: String| RuleError::Filter(format!("{field}: {why}"));
        let name = condition
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a condition needs \"op\"".into()))?;
        let values: Vec<Value> = match (condition.get("values"), condition.get("value")) {
            (Some(Value::Array(v)), _) => v.clone(),
            (Some(_), _) => return Err(bad(format!("{name}: values must be a list"))),
            (None, Some(v)) => vec![v.clone()],
            (None, None) => vec![],
        };
        let strings = || -> Result<Vec<String>, RuleError> {
            if values.is_empty() {
                return Err(bad(format!("{name} needs values")));
            }
            values
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("{name}: values must be strings")))
                })
                .collect()
        };
        let numbers = || -> Result<Vec<f64>, RuleError> {
            if values.is_empty() {
                return Err(bad(format!("{name} needs values")));
            }
            values
                .iter()
                .map(|v| {
                    v.as_f64()
                        .ok_or_else(|| bad(format!("{name}: values must be numbers")))
                })
                .collect()
        };
        let single = || -> Result<f64, RuleError> {
            match numbers()?.as_slice() {
                [n] => Ok(*n),
                _ => Err(bad(format!("{name} takes one number"))),
            }
        };
        let ranges = || -> Result<Vec<(f64, f64)>, RuleError> {
            if values.is_empty() {
                return Err(bad(format!("{name} needs ranges")));
            }
            values
                .iter()
                .map(|r| {
                    match r
                        .as_array()
                        .map(|a| a.iter().map(Value::as_f64).collect::<Vec<_>>())
                    {
                        Some(bounds) if bounds.len() == 2 && bounds.iter().all(Option::is_some) => {
                            let (lo, hi) =
                                (bounds[0].unwrap_or_default(), bounds[1].unwrap_or_default());
                            if lo <= hi {
                                Ok((lo, hi))
                            } else {
                                Err(bad(format!("{name}: range [{lo}, {hi}] is empty")))
                            }
                        }
                        _ => Err(bad(format!("{name}: each range is [low, high]"))),
                    }
                })
                .collect()
        };
        let no_values = |op: Op| {
            if values.is_empty() {
                Ok(op)
            } else {
                Err(bad(format!("{name} takes no values")))
            }
        };
        match name {
            "StringIn" => Ok(Op::StringIn(strings()?)),
            "StringNotIn" => Ok(Op::StringNotIn(strings()?)),
            "StringStartsWith" => Ok(Op::StringStartsWith(strings()?)),
            "StringNotStartsWith" => Ok(Op::StringNotStartsWith(strings()?)),
            "StringEndsWith" => Ok(Op::StringEndsWith(strings()?)),
            "StringNotEndsWith" => Ok(Op::StringNotEndsWith(strings()?)),
            "NumberIn" => Ok(Op::NumberIn(numbers()?)),
            "NumberNotIn" => Ok(Op::NumberNotIn(numbers()?)),
            "NumberLessThan" => Ok(Op::NumberLessThan(single()?)),
            "NumberNotLessThan" => Ok(Op::NumberNotLessThan(single()?)),
            "NumberGreaterThan" => Ok(Op::NumberGreaterThan(single()?)),
            "NumberNotGreaterThan" => Ok(Op::NumberNotGreaterThan(single()?)),
            "NumberInRange" => Ok(Op::NumberInRange(ranges()?)),
            "NumberNotInRange" => Ok(Op::NumberNotInRange(ranges()?)),
            "IsNull" => no_values(Op::IsNull),
            "IsNotNull" => no_values(Op::IsNotNull),
            "IsTrue" => no_values(Op::IsTrue),
            "IsNotTrue" => no_values(Op::IsNotTrue),
            other => Err(bad(format!("unknown operator {other:?}"))),
        }
    }

    fn matches(&self, found: Option<&Value>) -> bool {
        match self {
            Op::IsNull => found.is_none_or(Value::is_null),
            Op::IsNotNull => found.is_some_and(|v| !v.is_null()),
            Op::IsTrue => found == Some(&Value::Bool(true)),
            Op::IsNotTrue => found != Some(&Value::Bool(true)),
            _ => {
                let Some(value) = found else { return false };
                let items: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                let any = |test: &dyn Fn(&Value) -> bool| items.iter().any(|v| test(v));
                let text =
                    |test: &dyn Fn(&str) -> bool| any(&|v: &Value| v.as_str().is_some_and(test));
                let number =
                    |test: &dyn Fn(f64) -> bool| any(&|v: &Value| v.as_f64().is_some_and(test));
                let in_ranges = |ranges: &[(f64, f64)], n: f64| {
                    ranges.iter().any(|(lo, hi)| *lo <= n && n <= *hi)
                };
                match self {
                    Op::StringIn(vs) => text(&|s| vs.iter().any(|v| v == s)),
                    Op::StringNotIn(vs) => !text(&|s| vs.iter().any(|v| v == s)),
                    Op::StringStartsWith(vs) => {
                        text(&|s| vs.iter().any(|v| s.starts_with(v.as_str())))
                    }
                    Op::StringNotStartsWith(vs) => {
                        !text(&|s| vs.iter().any(|v| s.starts_with(v.as_str())))
                    }
                    Op::StringEndsWith(vs) => text(&|s| vs.iter().any(|v| s.ends_with(v.as_str()))),
                    Op::StringNotEndsWith(vs) => {
                        !text(&|s| vs.iter().any(|v| s.ends_with(v.as_str())))
                    }
                    Op::NumberIn(vs) => number(&|n| vs.contains(&n)),
                    Op::NumberNotIn(vs) => !number(&|n| vs.contains(&n)),
                    Op::NumberLessThan(x) => number(&|n| n < *x),
                    Op::NumberNotLessThan(x) => number(&|n| n >= *x),
                    Op::NumberGreaterThan(x) => number(&|n| n > *x),
                    Op::NumberNotGreaterThan(x) => number(&|n| n <= *x),
                    Op::NumberInRange(rs) => number(&|n| in_ranges(rs, n)),
                    Op::NumberNotInRange(rs) => !number(&|n| in_ranges(rs, n)),
                    Op::IsNull | Op::IsNotNull | Op::IsTrue | Op::IsNotTrue => {
                        unreachable!("handled above")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "source": "HC.Kafka", "type": "kafka:message", "subject": "orders",
            "data": {"topic": "orders", "partition": 2, "offset": 42, "key": "k1",
                     "value": {"kind": "order", "amount": 250, "tags": ["a", "vip"], "paid": true,
                               "customer": {"region": "eu-west", "tier": null}}}
        })
    }

    fn check(rule: Value) -> bool {
        Filter::parse(&rule).unwrap().matches(&event())
    }

    #[test]
    fn string_operators() {
        assert!(check(
            json!({"source": [{"op": "StringIn", "values": ["HC.Kafka"]}]})
        ));
        assert!(!check(
            json!({"source": [{"op": "StringIn", "values": ["HC.OBS"]}]})
        ));
        assert!(check(
            json!({"subject": [{"op": "StringStartsWith", "values": ["ord"]}]})
        ));
        assert!(check(
            json!({"subject": {"and": [{"op": "StringStartsWith", "values": ["ord"]}, {"op": "StringEndsWith", "values": ["ers"]}]}})
        ));
        assert!(!check(
            json!({"subject": {"and": [{"op": "StringStartsWith", "values": ["ord"]}, {"op": "StringEndsWith", "values": ["x"]}]}})
        ));
        assert!(check(
            json!({"data": {"value": {"tags": [{"op": "StringIn", "values": ["vip"]}]}}})
        ));
        assert!(!check(
            json!({"data": {"value": {"tags": [{"op": "StringNotIn", "values": ["vip"]}]}}})
        ));
        assert!(check(
            json!({"data": {"key": [{"op": "StringNotStartsWith", "values": ["x"]}]}})
        ));
        assert!(check(
            json!({"data": {"key": [{"op": "StringNotEndsWith", "values": ["x"]}]}})
        ));
    }

    #[test]
    fn number_operators_or_and_and() {
        let amount = |cond: Value| check(json!({"data": {"value": {"amount": [cond]}}}));
        assert!(amount(json!({"op": "NumberIn", "values": [100, 250]})));
        assert!(amount(json!({"op": "NumberNotIn", "values": [1]})));
        assert!(amount(json!({"op": "NumberGreaterThan", "value": 200})));
        assert!(amount(json!({"op": "NumberGreaterThan", "values": [200]})));
        assert!(!amount(json!({"op": "NumberLessThan", "value": 250})));
        assert!(amount(json!({"op": "NumberNotLessThan", "value": 250})));
        assert!(amount(json!({"op": "NumberNotGreaterThan", "value": 250})));
        assert!(amount(
            json!({"op": "NumberInRange", "values": [[0, 10], [200, 250]]})
        ));
        assert!(!amount(
            json!({"op": "NumberNotInRange", "values": [[250, 300]]})
        ));
        // OR within a field, AND across fields.
        assert!(check(
            json!({"data": {"partition": [{"op": "NumberIn", "values": [9]}, {"op": "NumberIn", "values": [2]}]}})
        ));
        assert!(!check(
            json!({"data": {"partition": [{"op": "NumberIn", "values": [2]}], "offset": [{"op": "NumberIn", "values": [1]}]}})
        ));
    }

    #[test]
    fn null_and_bool_operators() {
        assert!(check(
            json!({"data": {"value": {"customer": {"tier": [{"op": "IsNull"}]}}}})
        ));
        assert!(check(
            json!({"data": {"value": {"missing": [{"op": "IsNull"}]}}})
        ));
        assert!(check(
            json!({"data": {"value": {"customer": {"region": [{"op": "IsNotNull"}]}}}})
        ));
        assert!(!check(
            json!({"data": {"value": {"missing": [{"op": "StringNotIn", "values": ["x"]}]}}})
        ));
        assert!(check(
            json!({"data": {"value": {"paid": [{"op": "IsTrue"}]}}})
        ));
        assert!(!check(
            json!({"data": {"value": {"paid": [{"op": "IsNotTrue"}]}}})
        ));
        assert!(check(json!({})));
    }

    #[test]
    fn limits_and_bad_rules() {
        let fields: Map<String, Value> = (0..6)
            .map(|i| (format!("f{i}"), json!([{"op": "IsNull"}])))
            .collect();
        assert!(Filter::parse(&json!({"data": fields})).is_err());
        let deep = json!({"data": {"a": {"b": {"c": {"d": {"e": {"f": [{"op": "IsNull"}]}}}}}}});
        assert!(Filter::parse(&deep).is_err());
        let ok_deep = json!({"data": {"a": {"b": {"c": {"d": {"e": [{"op": "IsNull"}]}}}}}});
        assert!(Filter::parse(&ok_deep).is_ok());
        let six: Vec<Value> = (0..6).map(|_| json!({"op": "IsNull"})).collect();
        assert!(Filter::parse(&json!({"subject": six})).is_err());
        for bad in [
            json!([]),
            json!({"time": [{"op": "IsNull"}]}),
            json!({"source": [{"op": "StringStartsWith", "values": ["HC"]}]}),
            json!({"subject": [{"op": "Nope", "values": ["x"]}]}),
            json!({"subject": [{"op": "StringIn"}]}),
            json!({"subject": [{"op": "StringIn", "values": [1]}]}),
            json!({"subject": [{"op": "NumberLessThan", "values": [1, 2]}]}),
            json!({"subject": [{"op": "NumberInRange", "values": [[5, 1]]}]}),
            json!({"subject": [{"op": "IsNull", "values": ["x"]}]}),
            json!({"subject": []}),
            json!({"data": {"x": "string"}}),
        ] {
            assert!(Filter::parse(&bad).is_err(), "{bad}");
        }
    }
}
