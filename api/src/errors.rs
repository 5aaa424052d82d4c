//! [`ApiError`]: an HTTP status, a machine code and a message, answered in the envelope
//! `{"success": false, "data": null, "error": {"code", "message"}}`; what the engine's
//! [`Refusal`]s and the store's errors become.

use crate::control::Refusal;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An API error: its HTTP status, a machine code and a message.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    /// 400 naming the offending field.
    pub fn field(field: &str, why: &str) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "invalid_request", message: format!("{field}: {why}") }
    }

    /// 404 `not_found`: no such `what` (or one of another organization: the same answer).
    pub fn not_found(what: &str) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: format!("no such {what}") }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"success": false, "data": null, "error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => {
                ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such call".into() }
            }
            StoreError::Conflict(field) => {
                ApiError { status: StatusCode::CONFLICT, code: "conflict", message: format!("{field}: already taken") }
            }
            e @ StoreError::Unreachable(_) => {
                ApiError { status: StatusCode::SERVICE_UNAVAILABLE, code: "store_unavailable", message: e.to_string() }
            }
            e => ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal", message: e.to_string() },
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let (status, code, message) = match r {
            Refusal::NotLive(m) => (StatusCode::CONFLICT, "call_not_live", m),
            Refusal::Invalid(m) => (StatusCode::BAD_REQUEST, "invalid_request", m),
            Refusal::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            Refusal::Failed(m) => (StatusCode::BAD_GATEWAY, "engine_failed", m),
            Refusal::Forbidden(code, m) => (StatusCode::FORBIDDEN, code, m),
            Refusal::TooMany(code, m, _) => (StatusCode::TOO_MANY_REQUESTS, code, m),
        };
        ApiError { status, code, message }
    }
}
