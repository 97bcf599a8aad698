//! The one place where a [`DisError`] becomes a DIS answer: `DIS.xxxx`, its message and HTTP
//! status as DIS's error table gives them (research notes §E). The body carries the code
//! both as the Java SDK reads it (`errorCode`, `message`) and as the Python and Go SDKs'
//! core reads it (`error_code`, `error_msg`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::DisError;

/// The code and message of an error (the message carries the detail, as DIS's `%s` does).
pub fn code_of(e: &DisError) -> (StatusCode, &'static str, String) {
    use DisError::*;
    let (code, text) = match e {
        Invalid(_) => ("DIS.4200", "Invalid request."),
        Empty => ("DIS.4202", "Empty request."),
        Project(_) => ("DIS.4117", "Invalid Project Id."),
        PartitionId(_) => ("DIS.4201", "Invalid partition_id."),
        NoStream(_) => ("DIS.4301", "The stream does not exist."),
        NoPartition(_) => ("DIS.4302", "Partition does not exist."),
        StreamExists(_) => ("DIS.4307", "The stream already exists."),
        Quota(_) => ("DIS.4308", "Insufficient quota."),
        CursorType(_) => ("DIS.4215", "Invalid cursor type."),
        SequenceNumber(_) => ("DIS.4216", "Invalid sequence_number."),
        Cursor(_) => ("DIS.4217", "Invalid partition cursor."),
        CursorExpired { .. } => ("DIS.4225", "Expired partition cursor."),
        OutOfRange { .. } => ("DIS.4224", "Sequence_number out of range."),
        Expired { .. } => (
            "DIS.4226",
            "A partition iterator error occurred or a record to which the SN corresponds has expired. Try to obtain the partition iterator again.",
        ),
        Request(_) => ("DIS.4300", "Request error."),
        Schema(_) => ("DIS.4360", "Invalid data schema."),
        AppExists(_) => ("DIS.4330", "app already exist."),
        NoApp(_) => ("DIS.4332", "app not found."),
        AppQuota(_) => ("DIS.4329", "app quota exceeded."),
        NoCheckpoint { .. } => ("DIS.4375", "The app does not commit checkpoint."),
        MetricsLabel(_) => ("DIS.4209", "Invalid metrics label."),
        Period(_) => ("DIS.4203", "Invalid monitoring period."),
        PeriodTooLong => (
            "DIS.4204",
            "The monitoring period cannot be longer than 7 days.",
        ),
        Catalog(_) | Io(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "DIS.5000",
                "System error.".into(),
            )
        }
    };
    let message = match e {
        PeriodTooLong | Empty => text.to_string(),
        // Already bracketed, as DIS writes it: `[5280][ should be within ][0][ ][617]`.
        OutOfRange { .. } => format!("{text} {e}"),
        other => format!("{text} [{other}]"),
    };
    (StatusCode::BAD_REQUEST, code, message)
}

/// A DIS error as an HTTP answer.
pub struct ApiError(pub DisError);

impl From<DisError> for ApiError {
    fn from(e: DisError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = code_of(&self.0);
        if status.is_server_error() {
            // The detail stays in the log; the answer says only "System error."
            tracing::error!(error = %self.0, code, "DIS request failed");
        }
        (
            status,
            Json(json!({
                "errorCode": code,
                "message": message,
                "error_code": code,
                "error_msg": message,
            })),
        )
            .into_response()
    }
}
