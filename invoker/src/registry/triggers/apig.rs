//! APIG and DEDICATEDGATEWAY triggers: the API each publishes on fgs's gateway listener.
//!
//! `event_data` names the API (`name`, `group_id`, `env_name`…), its request (`req_method`,
//! `path` with `{name}` and greedy `{name+}` parameters, `match_mode` NORMAL exact or SWA
//! prefix), its `auth` (NONE only: IAM and APP need an authenticating gateway fgs does not have
//! yet) and its backend (`func_info.timeout` 1–60000 ms, `invocation_type` sync or async).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::fields::Fields;
use super::Kind;

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "ANY",
];
/// The longest API path (APIG's).
const MAX_PATH: usize = 1024;
/// The longest `func_info.timeout` (ms).
const MAX_TIMEOUT_MS: i64 = 60_000;

/// An API as the gateway serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    pub name: String,
    /// An HTTP method, or `ANY`.
    pub method: String,
    pub path: ApiPath,
    /// `match_mode` SWA: the path is a prefix of the requests'.
    pub prefix: bool,
    pub timeout: Duration,
    /// `func_info.invocation_type` async: the request is accepted and answered at once.
    pub asynchronous: bool,
    /// `env_name`, the event's `requestContext.stage`.
    pub stage: String,
}

impl Api {
    /// Parses and validates the `event_data` of a gateway trigger; returns the API and what is
    /// stored (defaults filled in).
    pub fn parse(
        kind: Kind,
        data: &Map<String, Value>,
    ) -> Result<(Api, Map<String, Value>), String> {
        let fields = Fields(data);
        let type_code = if kind == Kind::Apig {
            "APIG"
        } else {
            "DEDICATEDGATEWAY"
        };
        fields.only(
            type_code,
            &[
                "name",
                "type",
                "path",
                "protocol",
                "req_method",
                "group_id",
                "group_name",
                "match_mode",
                "env_name",
                "env_id",
                "auth",
                "func_info",
                "sl_domain",
                "backend_type",
                "instance_id",
            ],
        )?;
        let name = fields.text("name")?.unwrap_or("API_fgs").to_string();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("name {name:?}: 1 to 64 letters, digits, _ and -"));
        }
        let api_type = fields.integer("type")?.unwrap_or(1);
        if !matches!(api_type, 1 | 2) {
            return Err(format!("type {api_type}: 1 (public) or 2 (private)"));
        }
        let path = ApiPath::parse(fields.text("path")?.unwrap_or_default())?;
        let protocol = fields.text("protocol")?.unwrap_or("HTTPS");
        if !matches!(protocol, "HTTP" | "HTTPS") {
            return Err(format!("protocol {protocol:?}: HTTP or HTTPS"));
        }
        let method = fields.text("req_method")?.unwrap_or_default();
        if !METHODS.contains(&method) {
            return Err(format!(
                "req_method {method:?}: one of {}",
                METHODS.join(", ")
            ));
        }
        let match_mode = fields.text("match_mode")?.unwrap_or("NORMAL");
        if !matches!(match_mode, "NORMAL" | "SWA") {
            return Err(format!("match_mode {match_mode:?}: NORMAL or SWA"));
        }
        let auth = fields.text("auth")?.unwrap_or("NONE");
        match auth {
            "NONE" => {}
            "IAM" | "APP" => {
                return Err(format!(
                "auth {auth}: fgs's gateway does not authenticate callers yet; only NONE is served"
            ))
            }
            other => return Err(format!("auth {other:?}: IAM, APP or NONE")),
        }
        let backend_type = fields.text("backend_type")?.unwrap_or("FUNCTION");
        if backend_type != "FUNCTION" {
            return Err(format!("backend_type {backend_type:?}: FUNCTION"));
        }
        let func_info = fields
            .object("func_info")?
            .ok_or("func_info with a timeout is required")?;
        let info = Fields(func_info);
        info.only(
            "func_info",
            &["timeout", "invocation_type", "function_urn", "version"],
        )?;
        let timeout = info
            .integer("timeout")?
            .ok_or("func_info.timeout is required")?;
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout) {
            return Err(format!(
                "func_info.timeout {timeout}: 1 to {MAX_TIMEOUT_MS} ms"
            ));
        }
        let invocation_type = info.text("invocation_type")?.unwrap_or("sync");
        if !matches!(invocation_type, "sync" | "async") {
            return Err(format!(
                "func_info.invocation_type {invocation_type:?}: sync or async"
            ));
        }
        let text = |k: &str, default: &str| -> Result<String, String> {
            let v = fields.text(k)?.unwrap_or(default);
            if v.len() > 64 || !v.chars().all(|c| c.is_alphanumeric() || "_-".contains(c)) {
                return Err(format!("{k} {v:?}: at most 64 letters, digits, _ and -"));
            }
            Ok(v.to_string())
        };
        let stage = text("env_name", "RELEASE")?;
        let mut stored = Map::new();
        for (k, v) in [
            ("name", json!(name)),
            ("type", json!(api_type)),
            ("path", json!(path.raw)),
            ("protocol", json!(protocol)),
            ("req_method", json!(method)),
            ("group_id", json!(text("group_id", "")?)),
            ("group_name", json!(text("group_name", "")?)),
            ("match_mode", json!(match_mode)),
            ("env_name", json!(stage)),
            ("env_id", json!(text("env_id", "")?)),
            ("auth", json!(auth)),
            ("backend_type", json!(backend_type)),
            ("instance_id", json!(text("instance_id", "")?)),
            (
                "func_info",
                json!({"timeout": timeout, "invocation_type": invocation_type}),
            ),
        ] {
            stored.insert(k.into(), v);
        }
        let api = Api {
            name,
            method: method.to_string(),
            path,
            prefix: match_mode == "SWA",
            timeout: Duration::from_millis(timeout as u64),
            asynchronous: invocation_type == "async",
            stage,
        };
        Ok((api, stored))
    }

    /// Whether `method` is served by this API.
    pub fn serves(&self, method: &str) -> bool {
        self.method == "ANY" || self.method == method
    }

    /// Whether this API and `other` would serve the same requests: one gateway URL space
    /// cannot hold both.
    pub fn conflicts(&self, other: &Api) -> bool {
        let methods = self.method == other.method || self.method == "ANY" || other.method == "ANY";
        methods && self.prefix == other.prefix && self.path.shape() == other.path.shape()
    }
}

/// One segment of an API path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    /// `{name}`: one segment.
    Param(String),
    /// `{name+}`: the rest of the path, one segment or more (last only).
    Greedy(String),
}

/// An API path: `/`-separated literal segments and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiPath {
    raw: String,
    segments: Vec<Segment>,
}

impl ApiPath {
    pub fn parse(raw: &str) -> Result<ApiPath, String> {
        let bad = |why: &str| format!("path {raw:?}: {why}");
        if !raw.starts_with('/') || raw.len() > MAX_PATH {
            return Err(bad(&format!(
                "must start with / and have at most {MAX_PATH} characters"
            )));
        }
        let mut segments = Vec::new();
        let body = &raw[1..];
        if !body.is_empty() {
            for part in body.split('/') {
                let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => {
                        let (name, greedy) = match name.strip_suffix('+') {
                            Some(n) => (n, true),
                            None => (name, false),
                        };
                        let valid = !name.is_empty()
                            && name.len() <= 32
                            && name
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
                        if !valid {
                            return Err(bad(&format!(
                                "parameter {{{name}}}: letters, digits, _ and -"
                            )));
                        }
                        if greedy {
                            Segment::Greedy(name.into())
                        } else {
                            Segment::Param(name.into())
                        }
                    }
                    None => {
                        let ok = !part.is_empty()
                            && part != "."
                            && part != ".."
                            && part
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || b"-_.~".contains(&c));
                        if !ok {
                            return Err(bad("segments are letters, digits, - _ . ~ or {parameter}, never empty, . or .."));
                        }
                        Segment::Literal(part.into())
                    }
                };
                segments.push(segment);
            }
        }
        let names: Vec<&String> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(n) | Segment::Greedy(n) => Some(n),
                Segment::Literal(_) => None,
            })
            .collect();
        if (1..names.len()).any(|i| names[..i].contains(&names[i])) {
            return Err(bad("a parameter name appears twice"));
        }
        if segments[..segments.len().saturating_sub(1)]
            .iter()
            .any(|s| matches!(s, Segment::Greedy(_)))
        {
            return Err(bad("a {name+} parameter can only be the last segment"));
        }
        Ok(ApiPath {
            raw: raw.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The path with its parameters' names erased: two APIs of one shape serve the same
    /// requests.
    fn shape(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Param(_) => "{}",
                Segment::Greedy(_) => "{+}",
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// How specific the path is, for choosing among APIs that all match a request: more
    /// literal segments first, then more segments, then no greedy parameter.
    pub fn specificity(&self) -> (usize, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let greedy = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Greedy(_)));
        (literals, self.segments.len(), !greedy)
    }

    /// Matches a request path (raw, without the query): the parameters' values, percent-
    /// decoded, when it matches. With `prefix` (SWA) the request path may go on after the
    /// API path's last segment.
    pub fn matches(&self, path: &str, prefix: bool) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = parts.get(i).filter(|p| !p.is_empty())?;
                    params.push((name.clone(), decode(value)));
                }
                Segment::Greedy(name) => {
                    let value = parts[i.min(parts.len())..].join("/");
                    if value.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), decode(&value)));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len() || prefix).then_some(params)
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pattern: &str, path: &str, prefix: bool) -> Option<Vec<(String, String)>> {
        ApiPath::parse(pattern).unwrap().matches(path, prefix)
    }

    #[test]
    fn matching() {
        assert_eq!(params("/a/b", "/a/b", false), Some(vec![]));
        assert_eq!(params("/a/b", "/a/b/c", false), None);
        assert_eq!(params("/a/b", "/a/b/c", true), Some(vec![]));
        assert_eq!(params("/a/b", "/a/bc", true), None);
        assert_eq!(params("/", "/", false), Some(vec![]));
        assert_eq!(params("/", "/x", true), Some(vec![]));
        assert_eq!(params("/", "/x", false), None);
        assert_eq!(
            params("/u/{id}/x", "/u/7%20a/x", false),
            Some(vec![("id".into(), "7 a".into())])
        );
        assert_eq!(params("/u/{id}", "/u/", false), None);
        assert_eq!(
            params("/f/{p+}", "/f/a/b/c", false),
            Some(vec![("p".into(), "a/b/c".into())])
        );
        assert_eq!(params("/f/{p+}", "/f", false), None);
    }

    #[test]
    fn refused_paths() {
        for bad in [
            "",
            "a",
            "/a//b",
            "/a/",
            "/../x",
            "/a/{p+}/b",
            "/{a}/{a}",
            "/a b",
            "/{}",
            "/{a b}",
        ] {
            assert!(ApiPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn conflicts() {
        let api = |method: &str, path: &str, mode: &str| {
            let data = serde_json::json!({"req_method": method, "path": path, "match_mode": mode,
                "func_info": {"timeout": 1000}});
            Api::parse(Kind::Apig, data.as_object().unwrap()).unwrap().0
        };
        assert!(api("GET", "/a/{x}", "NORMAL").conflicts(&api("ANY", "/a/{y}", "NORMAL")));
        assert!(!api("GET", "/a/{x}", "NORMAL").conflicts(&api("POST", "/a/{y}", "NORMAL")));
        assert!(!api("GET", "/a", "NORMAL").conflicts(&api("GET", "/a", "SWA")));
        let refused =
            |data: serde_json::Value| Api::parse(Kind::Apig, data.as_object().unwrap()).is_err();
        assert!(refused(
            serde_json::json!({"req_method": "GET", "path": "/a", "func_info": {"timeout": 0}})
        ));
        assert!(refused(
            serde_json::json!({"req_method": "GET", "path": "/a", "auth": "IAM", "func_info": {"timeout": 10}})
        ));
        assert!(refused(
            serde_json::json!({"req_method": "GET", "path": "/a"})
        ));
        assert!(refused(
            serde_json::json!({"req_method": "GET", "path": "/a", "func_info": {"timeout": 10}, "schedule": "1m"})
        ));
    }
}
