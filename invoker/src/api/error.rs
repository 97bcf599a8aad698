//! API errors and their FunctionGraph codes: the one place where errors of every crate are
//! mapped to `{"error_code": "FSS.xxxx", "error_msg": "..."}` and an HTTP status.
//!
//! `error_msg` is the documented message of the code (api-ref appendix `error_codes.rst`),
//! followed by what exactly was wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fgs_limits::LimitError;
use fgs_runtime::RuntimeError;

use crate::asynchronous::QueueFull;
use crate::invocation::InvokeError;
use crate::registry::triggers::Kind;
use crate::registry::RegistryError;
use crate::store::StoreError;

/// An error answered to an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub msg: String,
}

impl ApiError {
    /// An error with `code`, its `documented` message and what exactly was wrong.
    pub(crate) fn new(
        status: u16,
        code: &'static str,
        documented: &str,
        detail: impl std::fmt::Display,
    ) -> Self {
        let detail = detail.to_string();
        let msg = if detail.is_empty() {
            documented.to_string()
        } else {
            format!("{documented} {detail}")
        };
        ApiError {
            status: StatusCode::from_u16(status).expect("valid status"),
            code,
            msg,
        }
    }

    pub fn invalid_parameter(detail: impl std::fmt::Display) -> Self {
        Self::new(400, "FSS.0400", "Invalid parameter.", detail)
    }
    pub fn invalid_query(detail: impl std::fmt::Display) -> Self {
        Self::new(400, "FSS.1001", "Invalid query parameter.", detail)
    }
    pub fn not_acceptable(detail: impl std::fmt::Display) -> Self {
        Self::new(406, "FSS.0406", "Not acceptable.", detail)
    }
    pub fn not_found(detail: impl std::fmt::Display) -> Self {
        Self::new(
            404,
            "FSS.0404",
            "The specified resource was not found.",
            detail,
        )
    }
    /// A path that exists with another method (no documented code: fgs's `FSS.0405`).
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "FSS.0405",
            "Method not allowed.",
            "This API path does not take this method.",
        )
    }
    /// An operation of FunctionGraph's API that fgs does not implement (fgs's `FSS.0501`).
    pub fn not_implemented(operation: &str) -> Self {
        Self::new(
            501,
            "FSS.0501",
            "Not implemented.",
            format!("fgs does not implement {operation} (yet)."),
        )
    }
    pub fn body_too_large(detail: impl std::fmt::Display) -> Self {
        Self::new(413, "FSS.0413", "The request body is too large.", detail)
    }
    /// An invocation's event is over the limit.
    pub fn event_too_large(size: Option<u64>, max: usize) -> Self {
        let detail = match size {
            Some(size) => format!("({size} bytes; the limit is {max} bytes)"),
            None => format!("(the limit is {max} bytes)"),
        };
        Self::new(413, "FSS.1201", "The request body is too large.", detail)
    }
    pub fn invalid_code(detail: impl std::fmt::Display) -> Self {
        Self::new(400, "FSS.1011", "Invalid function code.", detail)
    }
    pub fn code_required(detail: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            "FSS.1012",
            "The function code must be configured.",
            detail,
        )
    }
    pub fn invalid_file_type(filename: &str) -> Self {
        Self::new(
            400,
            "FSS.1013",
            "Invalid file type.",
            format!("({filename}: a zip package must be named *.zip)"),
        )
    }
    pub fn invalid_urn(urn: &str) -> Self {
        Self::new(400, "FSS.1309", "Invalid function URN.", format!("({urn})"))
    }
    pub fn too_many_requests(detail: impl std::fmt::Display) -> Self {
        Self::new(429, "FSS.0429", "Too many requests.", detail)
    }
    pub fn function_disabled() -> Self {
        Self::new(
            429,
            "FSS.0429",
            "Function Disabled",
            "(max_instance_num is 0)",
        )
    }
    pub fn invalid_request_id(detail: impl std::fmt::Display) -> Self {
        Self::new(400, "FSS.0400", "Invalid RequestId", detail)
    }
    pub fn reserved_over_limit(detail: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            "FSS.1076",
            "The number of reserved instances exceeds the maximum allowed limit.",
            detail,
        )
    }
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(500, "FSS.0500", "Internal server error.", detail)
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        let (status, code, documented) = match &e {
            LimitError::FuncName(_) => (400, "FSS.1002", "Invalid function name."),
            LimitError::Handler(_) => (400, "FSS.1003", "Invalid function handler."),
            LimitError::Package(_) => (400, "FSS.1004", "Invalid Package (function app)."),
            LimitError::Runtime(_) => (400, "FSS.1005", "Invalid runtime."),
            LimitError::CodeType(_) => (400, "FSS.1006", "Invalid function code entry mode."),
            LimitError::Memory(_) => (400, "FSS.1007", "Invalid function memory."),
            LimitError::Timeout(_) => (400, "FSS.1008", "Invalid function timeout."),
            LimitError::UserData(_) => (400, "FSS.1009", "Invalid function UserData."),
            LimitError::UserDataCount { .. } => (
                400,
                "FSS.1017",
                "The number of items in the UserData field exceeds the maximum allowed limit (20).",
            ),
            LimitError::UserDataSize { .. } => (
                400,
                "FSS.1018",
                "The total size of the UserData field exceeds the maximum allowed limit (4 KB).",
            ),
            LimitError::Description { .. } => (400, "FSS.1019", "The description exceeds the maximum allowed limit."),
            LimitError::Initializer(_) => (400, "FSS.1404", "Invalid function initializer."),
            LimitError::InitializerTimeout(_) => (400, "FSS.1405", "Invalid initialization timeout."),
            LimitError::AsyncConfig(_) => (400, "FSS.0400", "Invalid parameter."),
            LimitError::Concurrency(_) => (400, "FSS.1026", "Invalid Concurrency."),
            LimitError::InlineCodeSize { .. } => (
                413,
                "FSS.1072",
                "The size of the inline code exceeds the maximum allowed limit (10 KB).",
            ),
            LimitError::CodePackageSize { .. } => (
                413,
                "FSS.1071",
                "The size of the code package to be uploaded exceeds the maximum allowed limit (50 MB).",
            ),
        };
        Self::new(status, code, documented, e)
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Limit(limit) => limit.into(),
            RuntimeError::InvalidPackage(_) | RuntimeError::PackageTooLarge { .. } => {
                Self::invalid_code(e)
            }
            RuntimeError::UnsupportedRuntime(_) => {
                Self::new(400, "FSS.1005", "Invalid runtime.", e)
            }
            RuntimeError::Io(_) => Self::internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as R;
        let e = match e {
            R::Limit(e) => return e.into(),
            R::Runtime(e) => return e.into(),
            R::Store(e) => return e.into(),
            other => other,
        };
        let (status, code, documented) = match &e {
            R::Limit(_) | R::Runtime(_) | R::Store(_) => unreachable!("mapped above"),
            R::FunctionNotFound(_) => (404, "FSS.1051", "The function does not exist."),
            R::VersionNotFound(_) => (404, "FSS.1052", "The version does not exist."),
            R::AliasNotFound(_) => (404, "FSS.1053", "The alias does not exist."),
            R::FunctionExists(_) => (409, "FSS.1061", "The function already exists."),
            R::VersionExists(_) => (409, "FSS.1062", "The version already exists."),
            R::AliasExists(_) => (409, "FSS.1063", "The alias already exists."),
            R::InvalidAlias(_) => (400, "FSS.1014", "Invalid function alias."),
            // No code is documented for the version quota: fgs answers FSS.1015.
            R::InvalidVersion(_) | R::ReadOnly(_) | R::VersionQuota { .. } => {
                (400, "FSS.1015", "Invalid function version.")
            }
            R::Unchanged(_) => (
                400,
                "FSS.1016",
                "The function cannot be published because no changes have been made since last publication.",
            ),
            R::AliasQuota { .. } => (
                403,
                "FSS.1043",
                "The number of aliases exceeds the maximum allowed limit.",
            ),
            R::VersionInUse { .. } => (
                409,
                "FSS.1066",
                "The version is already in use by another alias.",
            ),
            R::AdditionalInUse { .. } => (
                403,
                "FSS.1094",
                "The version cannot be deleted because it has been used as the additional version of an alias.",
            ),
            R::AdditionalVersion(_) => (400, "FSS.1091", "The additional version is invalid."),
            R::Weight(_) => (
                400,
                "FSS.1092",
                "The weight of the additional version is invalid.",
            ),
            R::SameAsMajor(_) => (
                400,
                "FSS.1093",
                "The major version and the additional version cannot be the same.",
            ),
            R::DependencyNotFound(_) => (404, "FSS.1056", "The dependency does not exist."),
            R::InvalidDependency(_) => (400, "FSS.1024", "Invalid dependency."),
            R::DependencyType(_) => (400, "FSS.1032", "Invalid dependency type."),
            R::DependencyInUse { .. } => (412, "FSS.1033", "The dependency is currently in use."),
            R::DependencyQuota { .. } => (
                403,
                "FSS.1045",
                "The number of dependencies exceeds the maximum allowed limit.",
            ),
            R::TriggerType(_) => (400, "FSS.1101", "Invalid trigger type."),
            R::InvalidTrigger { kind, .. } => match kind {
                Kind::Timer => (400, "FSS.1109", "Invalid timer trigger parameters."),
                Kind::Apig => (400, "FSS.1107", "Invalid APIG trigger parameters."),
                Kind::DedicatedGateway => (
                    400,
                    "FSS.1417",
                    "Invalid APIG (dedicated) trigger parameters.",
                ),
                Kind::Kafka | Kind::OpenSourceKafka => {
                    (400, "FSS.1112", "Invalid Kafka trigger parameters.")
                }
                // Not in the published table (which skips 1103–1105); fgs's choice.
                Kind::Dis => (400, "FSS.1103", "Invalid DIS trigger parameters."),
            },
            R::KafkaCredentials => (
                400,
                "FSS.1113",
                "The username and password must be specified because Kafka SASL_SSL is enabled.",
            ),
            R::PathExists(_) => (409, "FSS.1147", "The request path already exists."),
            R::TriggerNotFound(_) => (404, "FSS.1131", "The trigger does not exist."),
            R::TimerExists(_) => (409, "FSS.1148", "The timer trigger already exists."),
            R::TriggerQuota { .. } => (
                400,
                "FSS.1306",
                "The number of triggers exceeds the maximum allowed limit.",
            ),
            // Documented for aliases; fgs answers it for versions too.
            R::HasTriggers(_) => (
                403,
                "FSS.1154",
                "Aliases of a function bound with triggers cannot be deleted.",
            ),
            R::Invalid(_) => (400, "FSS.0400", "Invalid parameter."),
        };
        Self::new(status, code, documented, format!("({e})"))
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        use fgs_limits::Refusal;
        match e {
            InvokeError::Registry(e) => e.into(),
            InvokeError::Store(e) => e.into(),
            InvokeError::Refused(Refusal::Disabled) => Self::function_disabled(),
            InvokeError::Refused(Refusal::Host { limit }) => Self::too_many_requests(format!(
                "({limit} concurrent executions are running on this host)"
            )),
            InvokeError::Refused(Refusal::Tenant { limit }) => Self::too_many_requests(format!(
                "({limit} concurrent executions per project are running)"
            )),
            InvokeError::Refused(Refusal::Function { limit }) => Self::too_many_requests(format!(
                "(the function runs its max_instance_num of {limit})"
            )),
            InvokeError::QueueFull(QueueFull::Function(n)) => Self::too_many_requests(format!(
                "({n} async requests of this function are waiting)"
            )),
            InvokeError::QueueFull(QueueFull::Project(n)) => {
                Self::too_many_requests(format!("({n} async requests of this project are waiting)"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error_code": self.code, "error_msg": self.msg });
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_limits_to_documented_codes() {
        let e: ApiError = LimitError::Memory("x".into()).into();
        assert_eq!((e.status.as_u16(), e.code), (400, "FSS.1007"));
        assert!(e.msg.starts_with("Invalid function memory."));
        let e: ApiError = LimitError::InlineCodeSize { size: 1, max: 0 }.into();
        assert_eq!((e.status.as_u16(), e.code), (413, "FSS.1072"));
        let e: ApiError = RuntimeError::PackageTooLarge { max: 1 }.into();
        assert_eq!((e.status.as_u16(), e.code), (400, "FSS.1011"));
    }
}
