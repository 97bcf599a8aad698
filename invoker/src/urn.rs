//! Function URNs: `urn:fss:{region}:{project_id}:function:{package}:{name}[:{version}|:!{alias}]`
//! and the short forms FunctionGraph accepts wherever a URN is an API parameter.

use crate::api::ApiError;

/// What a URN in a request path points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub package: String,
    pub name: String,
    pub qualifier: Qualifier,
}

/// The version part of a URN. An unqualified URN means the whole function, and `latest` when
/// a version is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    None,
    Version(String),
    Alias(String),
}

impl FunctionRef {
    /// Parses a URN or short form, as seen in the path of project `project_id`.
    ///
    /// Accepted forms: `name`; `package:name`; `project:package:name[:version]`;
    /// `urn:fss:region:project:function:package:name[:version]`. A project other than the
    /// path's is refused (FSS.1309), since functions are looked up in the path's project.
    pub fn parse(raw: &str, project_id: &str) -> Result<Self, ApiError> {
        let parts: Vec<&str> = raw.split(':').collect();
        let invalid = || ApiError::invalid_urn(raw);
        let (project, package, name, version) = match parts.as_slice() {
            [name] => (None, "default", *name, None),
            [package, name] => (None, *package, *name, None),
            [project, package, name] => (Some(*project), *package, *name, None),
            [project, package, name, version] => (Some(*project), *package, *name, Some(*version)),
            ["urn", "fss", _region, project, "function", package, name] => {
                (Some(*project), *package, *name, None)
            }
            ["urn", "fss", _region, project, "function", package, name, version] => {
                (Some(*project), *package, *name, Some(*version))
            }
            _ => return Err(invalid()),
        };
        if package.is_empty() || name.is_empty() {
            return Err(invalid());
        }
        if project.is_some_and(|p| p != project_id) {
            return Err(ApiError::invalid_urn(&format!(
                "{raw} (project differs from the path's {project_id})"
            )));
        }
        let qualifier = match version {
            None => Qualifier::None,
            Some("") => return Err(invalid()),
            Some(v) => match v.strip_prefix('!') {
                Some(alias) => Qualifier::Alias(alias.to_string()),
                None => Qualifier::Version(v.to_string()),
            },
        };
        Ok(FunctionRef {
            package: package.to_string(),
            name: name.to_string(),
            qualifier,
        })
    }
}

/// The URN of a function version.
pub fn function_urn(
    region: &str,
    project_id: &str,
    package: &str,
    name: &str,
    version: Option<&str>,
) -> String {
    let base = format!("urn:fss:{region}:{project_id}:function:{package}:{name}");
    match version {
        Some(v) => format!("{base}:{v}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(raw, "p1")
    }

    #[test]
    fn all_forms() {
        let plain = FunctionRef {
            package: "default".into(),
            name: "f".into(),
            qualifier: Qualifier::None,
        };
        assert_eq!(parse("f").unwrap(), plain);
        assert_eq!(parse("default:f").unwrap(), plain);
        assert_eq!(parse("p1:default:f").unwrap(), plain);
        assert_eq!(
            parse("urn:fss:cn-north-4:p1:function:default:f").unwrap(),
            plain
        );
        let latest = parse("urn:fss:cn-north-4:p1:function:default:f:latest").unwrap();
        assert_eq!(latest.qualifier, Qualifier::Version("latest".into()));
        let alias = parse("p1:default:f:!a1").unwrap();
        assert_eq!(alias.qualifier, Qualifier::Alias("a1".into()));
        assert_eq!(
            parse("p1:g:f:v1").unwrap().qualifier,
            Qualifier::Version("v1".into())
        );
    }

    #[test]
    fn refuses_malformed_and_foreign() {
        for bad in [
            "",
            "a:b:c:d:e",
            "urn:xxx:r:p1:function:default:f",
            "p2:default:f",
            "default:",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            function_urn("cn-north-4", "p", "default", "f", Some("latest")),
            "urn:fss:cn-north-4:p:function:default:f:latest"
        );
    }
}
