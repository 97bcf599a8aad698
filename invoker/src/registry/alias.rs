//! Aliases: a name that points at a function version, optionally sending part of the traffic
//! to one additional version, by weight or by rules over the request's headers.
//!
//! FunctionGraph lets an alias point at two versions at most (its major `version` and one
//! additional version), so an alias holds either one weight or one rule set, never both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::names::{self, NameKind};
use super::RegistryError;

/// One rule of `additional_version_strategy`: a header compared with a value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rule {
    pub rule_type: String,
    pub param: String,
    pub op: String,
    pub value: String,
}

/// `VersionStrategy`: rules combined with `and` or `or`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Strategy {
    pub combine_type: String,
    pub rules: Vec<Rule>,
}

/// An alias as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    /// The major version: every request not sent to the additional version.
    pub version: String,
    pub description: String,
    pub last_modified: String,
    /// `additional_version_weights`: percent of requests sent to the additional version.
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// `additional_version_strategy`: requests matching the rules go to the additional version.
    #[serde(default)]
    pub strategy: BTreeMap<String, Strategy>,
}

impl Alias {
    /// The additional version, if the alias has one.
    pub fn additional(&self) -> Option<&str> {
        self.weights
            .keys()
            .chain(self.strategy.keys())
            .next()
            .map(String::as_str)
    }

    /// The version a request runs: the additional version when its rules match the request's
    /// headers (`header` looks one up by name, case-insensitively) or when `roll` (uniform in
    /// 0..100) falls under its weight; otherwise the major version.
    pub fn route<'h>(&self, header: impl Fn(&str) -> Option<&'h str>, roll: u32) -> &str {
        if let Some((version, weight)) = self.weights.iter().next() {
            if roll < *weight {
                return version;
            }
        }
        if let Some((version, strategy)) = self.strategy.iter().next() {
            if strategy.matches(header) {
                return version;
            }
        }
        &self.version
    }

    /// Checks the alias against the function's versions (`exists` says whether a version
    /// exists): a major version that exists, at most one additional version, published (not
    /// `latest`), other than the major one, with a weight of 0…100 or valid rules.
    pub fn validate(&self, exists: impl Fn(&str) -> bool) -> Result<(), RegistryError> {
        names::validate(&self.name, NameKind::Alias)?;
        if !exists(&self.version) {
            return Err(RegistryError::VersionNotFound(self.version.clone()));
        }
        let additional: Vec<&String> = self.weights.keys().chain(self.strategy.keys()).collect();
        if additional.len() > 1 {
            return Err(RegistryError::AdditionalVersion(format!(
                "an alias has at most one additional version ({} given)",
                additional.len()
            )));
        }
        let Some(extra) = additional.first() else {
            return Ok(());
        };
        if **extra == self.version {
            return Err(RegistryError::SameAsMajor(extra.to_string()));
        }
        if extra.as_str() == "latest" {
            return Err(RegistryError::AdditionalVersion(
                "latest cannot be an additional version".into(),
            ));
        }
        if !exists(extra) {
            return Err(RegistryError::AdditionalVersion(format!(
                "version {extra:?} does not exist"
            )));
        }
        if let Some(weight) = self.weights.get(*extra) {
            if *weight > 100 {
                return Err(RegistryError::Weight(format!(
                    "{extra}: {weight} is not a percentage from 0 to 100"
                )));
            }
        }
        if let Some(strategy) = self.strategy.get(*extra) {
            strategy.validate()?;
        }
        Ok(())
    }
}

impl Strategy {
    fn matches<'a>(&self, header: impl Fn(&str) -> Option<&'a str>) -> bool {
        let hit = |rule: &Rule| {
            header(&rule.param).is_some_and(|got| match rule.op.as_str() {
                "in" => rule.value.split(',').any(|v| v.trim() == got),
                _ => rule.value == got,
            })
        };
        match self.combine_type.as_str() {
            "or" => self.rules.iter().any(hit),
            _ => !self.rules.is_empty() && self.rules.iter().all(hit),
        }
    }

    fn validate(&self) -> Result<(), RegistryError> {
        let invalid = |why: String| Err(RegistryError::AdditionalVersion(why));
        if !matches!(self.combine_type.as_str(), "and" | "or") {
            return invalid(format!(
                "combine_type {:?} is not and or or",
                self.combine_type
            ));
        }
        if self.rules.is_empty() {
            return invalid("a rule strategy needs at least one rule".into());
        }
        for rule in &self.rules {
            if rule.rule_type != "Header" {
                return invalid(format!(
                    "rule_type {:?}: only Header rules exist",
                    rule.rule_type
                ));
            }
            let valid_param = !rule.param.is_empty()
                && rule
                    .param
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid_param {
                return invalid(format!(
                    "param {:?}: letters, digits, _ and - only",
                    rule.param
                ));
            }
            if !matches!(rule.op.as_str(), "=" | "in") {
                return invalid(format!("op {:?} is not = or in", rule.op));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias() -> Alias {
        Alias {
            name: "prod".into(),
            version: "v1".into(),
            description: String::new(),
            last_modified: String::new(),
            weights: BTreeMap::new(),
            strategy: BTreeMap::new(),
        }
    }

    fn no_headers(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn weight_splits_by_roll() {
        let mut a = alias();
        a.weights.insert("v2".into(), 30);
        let to_v2 = (0..100).filter(|r| a.route(no_headers, *r) == "v2").count();
        assert_eq!(to_v2, 30);
        a.weights.insert("v2".into(), 0);
        assert_eq!(a.route(no_headers, 0), "v1");
    }

    #[test]
    fn rules_match_headers() {
        let mut a = alias();
        let rule = |param: &str, op: &str, value: &str| Rule {
            rule_type: "Header".into(),
            param: param.into(),
            op: op.into(),
            value: value.into(),
        };
        a.strategy.insert(
            "v2".into(),
            Strategy {
                combine_type: "and".into(),
                rules: vec![rule("aaa", "=", "123"), rule("zone", "in", "a, b")],
            },
        );
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| *v)
            }
        };
        assert_eq!(a.route(headers(&[("AAA", "123"), ("zone", "b")]), 99), "v2");
        assert_eq!(a.route(headers(&[("aaa", "123")]), 99), "v1");
        a.strategy.get_mut("v2").unwrap().combine_type = "or".into();
        assert_eq!(a.route(headers(&[("aaa", "123")]), 99), "v2");
        assert_eq!(a.route(headers(&[("aaa", "1234")]), 99), "v1");
    }

    #[test]
    fn validation_codes() {
        let exists = |v: &str| matches!(v, "latest" | "v1" | "v2");
        let mut a = alias();
        assert!(a.validate(exists).is_ok());
        a.weights.insert("v1".into(), 10);
        assert!(matches!(
            a.validate(exists),
            Err(RegistryError::SameAsMajor(_))
        ));
        a.weights.clear();
        a.weights.insert("latest".into(), 10);
        assert!(matches!(
            a.validate(exists),
            Err(RegistryError::AdditionalVersion(_))
        ));
        a.weights.clear();
        a.weights.insert("v2".into(), 101);
        assert!(matches!(a.validate(exists), Err(RegistryError::Weight(_))));
        a.weights.insert("v2".into(), 100);
        a.strategy.insert(
            "v2".into(),
            Strategy {
                combine_type: "and".into(),
                rules: vec![],
            },
        );
        assert!(matches!(
            a.validate(exists),
            Err(RegistryError::AdditionalVersion(_))
        ));
        a.strategy.clear();
        a.version = "v9".into();
        assert!(matches!(
            a.validate(exists),
            Err(RegistryError::VersionNotFound(_))
        ));
    }
}
