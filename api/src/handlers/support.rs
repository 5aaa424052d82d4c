//! What the handlers share: the store (or a reader), the JSON body, field checks.

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::model::{normalize_permission, PERMISSIONS};
use crate::state::ApiState;
use crate::store::{Store, StoreError};
use crate::wire::MAX_BODY;
use axum::extract::Request;
use axum::http::StatusCode;
use serde_json::Value;

/// The store, or a 500 if a handler panicked while holding it.
pub fn store(st: &ApiState) -> Result<std::sync::MutexGuard<'_, Store>, ApiError> {
    st.store.lock().map_err(|_| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: "the store is unavailable".into(),
    })
}

/// Runs the query `f` on a reader connection, on a blocking thread (a list of thousands
/// of calls takes milliseconds), or on the writer when there are no readers.
pub async fn read<T: Send + 'static>(
    st: &ApiState,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let Some(readers) = st.readers.clone() else {
        return Ok(f(&*store(st)?)?);
    };
    let r = tokio::task::spawn_blocking(move || {
        let s = readers.get()?;
        let r = f(&s);
        readers.put(s);
        r
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: e.to_string(),
    })?;
    Ok(r?)
}

/// The body as a JSON object: 413 over [`MAX_BODY`], 400 naming `body` otherwise.
pub async fn json_body(req: Request) -> Result<serde_json::Map<String, Value>, ApiError> {
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("the body is over {MAX_BODY} bytes"),
    })?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::field("body", &format!("not valid JSON ({e})")))?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::field("body", "must be a JSON object")),
    }
}

/// E.164: `+`, then 2–15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else { return false };
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

/// The permissions in `list`, normalized and without repeats: 400 for an unknown one, 403
/// for one `who` lacks (a `what`, key or user, never holds more than its creator).
pub fn granted(who: &Principal, list: &[Value], what: &str) -> Result<Vec<String>, ApiError> {
    let mut permissions: Vec<String> = Vec::new();
    for p in list {
        let Some(n) = p.as_str().and_then(normalize_permission) else {
            return Err(ApiError::field(
                "permissions",
                &format!("unknown permission {p}; known: {}", PERMISSIONS.join(", ")),
            ));
        };
        if !who.may(n) {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: format!("permissions: a {what} cannot hold {n}, which its creator lacks"),
            });
        }
        if !permissions.iter().any(|q| q == n) {
            permissions.push(n.to_string());
        }
    }
    Ok(permissions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+14155550123") && is_e164("+44"));
        assert!(!is_e164("14155550123") && !is_e164("+0123") && !is_e164("+1") && !is_e164("+1415555012345678"));
        assert!(!is_e164("+1-415") && !is_e164(""));
    }
}
