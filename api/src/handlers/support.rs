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

/// The `limit` query parameter: `default` when absent, else an integer from 1 to `max`
/// (a 400 naming the field otherwise).
pub fn limit(q: &std::collections::HashMap<String, String>, default: u32, max: u32) -> Result<u32, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::field("limit", &format!("must be an integer from 1 to {max}"))),
        },
    }
}

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

/// How much of a body over [`MAX_BODY`] is still read (and thrown away), within
/// [`DRAIN_TIME`], so that a client still sending reads the 413 rather than a reset
/// connection; past it the connection closes.
const DRAIN_LIMIT: usize = 8 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The body's bytes, at most [`MAX_BODY`]: 413 over it (after draining the rest, up to
/// [`DRAIN_LIMIT`]), 400 naming `body` if it breaks off.
pub async fn body_bytes(req: Request) -> Result<Vec<u8>, ApiError> {
    use axum::body::HttpBody;
    let mut body = req.into_body();
    let (mut got, mut total) = (Vec::new(), 0usize);
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else { continue };
                total += data.len();
                if total <= MAX_BODY {
                    got.extend_from_slice(&data);
                } else if total > DRAIN_LIMIT {
                    break;
                }
            }
            Ok(Some(Err(e))) => return Err(ApiError::field("body", &format!("could not be read ({e})"))),
            Ok(None) | Err(_) => break,
        }
    }
    if total > MAX_BODY {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("the body is over {MAX_BODY} bytes"),
        });
    }
    Ok(got)
}

/// The body as a JSON object: 413 over [`MAX_BODY`], 400 naming `body` otherwise.
pub async fn json_body(req: Request) -> Result<serde_json::Map<String, Value>, ApiError> {
    let body = body_bytes(req).await?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::field("body", &format!("not valid JSON ({e})")))?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::field("body", "must be a JSON object")),
    }
}

/// A store error as the API's: `NotFound` is 404 naming `what` (another organization's
/// row included: it is not there for the caller), anything else as usual.
pub fn missing(what: &'static str) -> impl Fn(crate::store::StoreError) -> ApiError {
    move |e| match e {
        crate::store::StoreError::NotFound => ApiError::not_found(what),
        e => e.into(),
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
