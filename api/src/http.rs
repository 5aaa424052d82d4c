//! The HTTP API (DESIGN.md "The control API"): every response is the envelope
//! `{"success": bool, "data": …, "error": null | {"code", "message"}}`, errors included
//! (unknown route 404, wrong method 405, bad parameters 400 naming the field).
//!
//! Who may do what: [`PERMISSIONS`], checked per endpoint against the caller's
//! [`Principal`] (an API key, a user's JWT, or `X-Internal-Key`). Requests are limited per
//! key and per address ([`RateLimits`]); the public endpoints are `/healthz`, `/metrics`,
//! `/api/openapi.json` and the login.

use crate::auth::{require_auth, verify_password};
use crate::limits::{client_addr, too_many};
use crate::store::{CallFilter, CallStatus, Store, StoreError};
use crate::wire::{calls_body, json_bytes, now_ms, ok};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

pub use crate::auth::{check_jwt, hash_password, issue_jwt, key_hash, Claims, Principal, JWT_LIFETIME_S};
pub use crate::control::{Action, CallControl, Originate, Refusal, Reply, AGENT_FORMATS};
pub use crate::errors::ApiError;
pub use crate::limits::{Limits, Rate, RateLimits};
pub use crate::model::{normalize_permission, PERMISSIONS};
pub use crate::state::{ApiState, EngineMetricsFn};
pub use crate::wire::{call_json, parse_time, rfc3339, CallOut, Rfc3339, MAX_BODY};

/// The store, or a 500 if a handler panicked while holding it.
fn store(st: &ApiState) -> Result<std::sync::MutexGuard<'_, Store>, ApiError> {
    st.store.lock().map_err(|_| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: "the store is unavailable".into(),
    })
}

/// Runs the query `f` on a reader connection, on a blocking thread (a list of thousands
/// of calls takes milliseconds), or on the writer when there are no readers.
async fn read<T: Send + 'static>(
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

/// The router, with the envelope on every fallback.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/api/calls/list", get(list_calls))
        .route("/api/calls/create", post(create_call))
        .route("/api/calls/{id}/hangup", post(hangup))
        .route("/api/calls/{id}/hold", post(hold))
        .route("/api/calls/{id}/unhold", post(unhold))
        .route("/api/calls/{id}/transfer", post(transfer))
        .route("/api/calls/{id}/dtmf", post(dtmf))
        .route("/api/calls/{id}/recording/start", post(recording_start))
        .route("/api/calls/{id}/recording/stop", post(recording_stop))
        .route("/api/calls/{id}/recording", get(recording_download))
        .route("/api/calls/live", get(live_calls))
        .route("/api/api-keys", post(create_key).get(list_keys))
        .route("/api/api-keys/{id}", delete(revoke_key))
        .route("/api/webhooks", post(create_webhook).get(list_webhooks))
        .route("/api/webhooks/{id}", delete(delete_webhook))
        .route("/api/users", post(create_user).get(list_users))
        .route("/api/users/{id}", delete(delete_user))
        .route("/api/calls/{id}", get(get_call))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .route("/healthz", get(|| async { ok(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(|| async { Json(crate::openapi::spec()) }))
        .route("/api/v1/auth/user-login", post(login))
        .merge(protected)
        .fallback(|| async {
            ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such endpoint".into() }
        })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "method not allowed on this endpoint".into(),
            }
        })
        .with_state(state)
}

async fn list_calls(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    who.require("calls:read")?;
    let limit = match q.get("limit") {
        None => 50,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=5000).contains(&n) => n,
            _ => return Err(ApiError::field("limit", "must be an integer from 1 to 5000")),
        },
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(v) => v.parse::<u32>().map_err(|_| ApiError::field("offset", "must be a non-negative integer"))?,
    };
    let status = match q.get("status") {
        None => None,
        Some(v) => Some(CallStatus::parse(v).ok_or_else(|| {
            let known: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::field("status", &format!("must be one of {}", known.join(", ")))
        })?),
    };
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        match q.get(name) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| ApiError::field(name, "must be a UTC date (2024-01-09) or time (2024-01-09T20:00:00Z)")),
        }
    };
    let (from, to) = (time("from")?, time("to")?);
    let contact = q.get("contact_id").cloned();
    // The rows and their JSON are made on the blocking thread: thousands of calls take
    // milliseconds that the async workers (media ticks) should not wait for.
    let body = read(&st, move |s| {
        let (calls, total) =
            s.list_calls(&CallFilter { status, contact_id: contact.as_deref(), from, to, limit, offset })?;
        Ok(calls_body(&calls, total))
    })
    .await?;
    Ok(json_bytes(body))
}

/// E.164: `+`, then 2–15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else { return false };
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

async fn create_call(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    req: Request,
) -> Result<Response, ApiError> {
    who.require("calls:write")?;
    let idem_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= 255 => Some(k.trim().to_string()),
            _ => return Err(ApiError::field("Idempotency-Key", "must be 1 to 255 visible ASCII characters")),
        },
    };
    let o = json_body(req).await?;
    let contact_id = match o.get("contact_id") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => s.clone(),
        Some(_) => return Err(ApiError::field("contact_id", "must be a non-empty string of at most 128 characters")),
        None => return Err(ApiError::field("contact_id", "required")),
    };
    let phone_number = match o.get("phone_number") {
        Some(Value::String(s)) if is_e164(s) => s.clone(),
        Some(_) => return Err(ApiError::field("phone_number", "must be an E.164 number such as +14155550123")),
        None => return Err(ApiError::field("phone_number", "required")),
    };
    let from_number = match o.get("from_number") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_e164(s) => Some(s.clone()),
        Some(_) => return Err(ApiError::field("from_number", "must be an E.164 number such as +14155550123")),
    };
    let record = match o.get("record") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::field("record", "must be true or false")),
    };
    let agent_url = match o.get("agent_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(u))
            if (u.starts_with("ws://") || u.starts_with("wss://"))
                && u.len() <= 2048
                && u.parse::<axum::http::Uri>().is_ok_and(|p| p.host().is_some_and(|h| !h.is_empty())) =>
        {
            Some(u.clone())
        }
        Some(_) => return Err(ApiError::field("agent_url", "must be a ws:// or wss:// URL")),
    };
    let agent_format = match o.get("agent_format") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if AGENT_FORMATS.contains(&f.as_str()) => Some(f.clone()),
        Some(_) => {
            return Err(ApiError::field("agent_format", &format!("must be one of {}", AGENT_FORMATS.join(", "))))
        }
    };
    if agent_format.is_some() && agent_url.is_none() {
        return Err(ApiError::field("agent_format", "needs agent_url"));
    }
    if agent_url.is_some() {
        who.require("calls:originate_ai")?;
    }
    let Some(control) = st.control.clone().filter(|c| c.can_originate()) else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_trunk",
            message: "no trunk to place calls through: set DIALTONE_TRUNK".into(),
        });
    };
    let id = format!("call_{:016x}", rand::random::<u64>());
    // The body as parsed (object keys sorted), so spacing and key order do not matter.
    let request_hash = key_hash(&serde_json::to_string(&o).unwrap_or_default());
    let principal = who.name();
    let idem = idem_key.as_deref().map(|k| (principal.as_str(), k, request_hash.as_str()));
    let new = crate::store::NewCall {
        id: &id,
        contact_id: &contact_id,
        phone_number: &phone_number,
        from_number: from_number.as_deref(),
        record,
        created_at: now_ms(),
    };
    let (call, replayed) = store(&st)?.insert_call_once(&new, idem).map_err(|e| match e {
        StoreError::IdempotencyConflict => ApiError {
            status: StatusCode::CONFLICT,
            code: "idempotency_conflict",
            message: "this Idempotency-Key was used with a different request body".into(),
        },
        e => e.into(),
    })?;
    if replayed {
        let mut r = ok(call_json(&call));
        r.headers_mut().insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
        return Ok(r);
    }
    let contact_id = Some(call.contact_id.clone());
    control.originate(Originate {
        id,
        phone_number,
        from_number,
        record,
        agent_url,
        agent_format,
        contact_id,
        permit: None,
    });
    Ok((StatusCode::CREATED, ok(call_json(&call))).into_response())
}

async fn live_calls(State(st): State<ApiState>, Extension(who): Extension<Principal>) -> Result<Response, ApiError> {
    who.require("calls:live")?;
    let body = read(&st, |s| {
        let calls = s.live_calls()?;
        Ok(calls_body(&calls, calls.len() as u64))
    })
    .await?;
    Ok(json_bytes(body))
}

async fn recording_start(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&st, &who, "calls:recording", &id, Action::Record(true)).await
}

async fn recording_stop(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&st, &who, "calls:recording", &id, Action::Record(false)).await
}

/// What a `Range` header asks of a file (RFC 9110 §14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// All of it (no range we serve partially: several ranges, another unit).
    Whole,
    /// Bytes `.0` to `.1`, inclusive.
    Part(u64, u64),
    /// Nothing of it can be served (416).
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against a `len`-byte file.
pub fn parse_range(h: &str, len: u64) -> ByteRange {
    match range_of(h, len) {
        Ok(Some((a, b))) => ByteRange::Part(a, b),
        Ok(None) => ByteRange::Whole,
        Err(()) => ByteRange::Unsatisfiable,
    }
}

fn range_of(h: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |t: &str| t.trim().parse::<u64>().map_err(|_| ());
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => return Err(()),
        (true, false) => {
            let n = num(b)?;
            if n == 0 || len == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, true) => (num(a)?, len.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(len.saturating_sub(1))),
    };
    if start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn recording_download(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use crate::store::RecordingState;
    use axum::http::header;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    who.require("calls:recording")?;
    let rec = store(&st)?.recording(&id)?;
    let path = match rec {
        Some((RecordingState::Ready, p)) => p,
        Some((RecordingState::Recording, _)) => {
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                code: "recording_not_ready",
                message: "the call is still being recorded".into(),
            })
        }
        _ => return Err(ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no recording".into() }),
    };
    let gone = |e: std::io::Error| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!("the recording file is gone ({e})"),
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(gone)?;
    let len = file.metadata().await.map_err(gone)?.len();
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(h) => match parse_range(h, len) {
            ByteRange::Part(a, b) => Some((a, b)),
            ByteRange::Whole => None,
            ByteRange::Unsatisfiable => {
                let mut r = ApiError {
                    status: StatusCode::RANGE_NOT_SATISFIABLE,
                    code: "range_not_satisfiable",
                    message: format!("the recording has {len} bytes"),
                }
                .into_response();
                if let Ok(v) = format!("bytes */{len}").parse() {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(r);
            }
        },
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(gone)?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("audio/wav"));
    h.insert(header::ACCEPT_RANGES, axum::http::HeaderValue::from_static("bytes"));
    if let Ok(v) = count.to_string().parse() {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = format!("attachment; filename=\"{id}.wav\"").parse() {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if range.is_some() {
        if let Ok(v) = format!("bytes {start}-{end}/{len}").parse() {
            h.insert(header::CONTENT_RANGE, v);
        }
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(r)
}

fn user_json(u: &crate::store::User) -> Value {
    json!({"id": u.id, "email": u.email, "role": u.role, "permissions": u.permissions, "created_at": rfc3339(u.created_at)})
}

async fn create_user(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    req: Request,
) -> Result<Response, ApiError> {
    who.require("users:write")?;
    let o = json_body(req).await?;
    let email = match o.get("email") {
        Some(Value::String(e))
            if e.len() <= 254 && e.split_once('@').is_some_and(|(a, b)| !a.is_empty() && b.contains('.')) =>
        {
            e.to_ascii_lowercase()
        }
        Some(_) => return Err(ApiError::field("email", "must be an e-mail address")),
        None => return Err(ApiError::field("email", "required")),
    };
    let password = match o.get("password") {
        Some(Value::String(p)) if (8..=256).contains(&p.chars().count()) => p.clone(),
        Some(_) => return Err(ApiError::field("password", "must be 8 to 256 characters")),
        None => return Err(ApiError::field("password", "required")),
    };
    let role = match o.get("role") {
        None | Some(Value::Null) => "user".to_string(),
        Some(Value::String(r)) if r == "user" || r == "admin" => r.clone(),
        Some(_) => return Err(ApiError::field("role", "must be user or admin")),
    };
    // An admin holds every permission; a user those given.
    let all: Vec<Value> = PERMISSIONS.iter().map(|p| Value::from(*p)).collect();
    let list = match (role.as_str(), o.get("permissions")) {
        ("admin", _) => all.as_slice(),
        (_, None) => &[],
        (_, Some(Value::Array(list))) => list.as_slice(),
        (_, Some(_)) => return Err(ApiError::field("permissions", "must be a list such as [\"calls:read\"]")),
    };
    let permissions = granted(&who, list, "user")?;
    let user = crate::store::User {
        id: format!("user_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        email,
        // argon2 takes tens of milliseconds: off the async workers.
        password_hash: tokio::task::spawn_blocking(move || hash_password(&password)).await.unwrap_or_default(),
        role,
        permissions,
        created_at: now_ms(),
    };
    if store(&st)?.user_by_email(&user.email)?.is_some() {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: "email: already a user".into(),
        });
    }
    store(&st)?.insert_user(&user)?;
    Ok((StatusCode::CREATED, ok(user_json(&user))).into_response())
}

async fn list_users(State(st): State<ApiState>, Extension(who): Extension<Principal>) -> Result<Response, ApiError> {
    who.require("users:read")?;
    let users = store(&st)?.list_users()?;
    Ok(ok(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()})))
}

async fn delete_user(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require("users:write")?;
    store(&st)?.delete_user(&id).map_err(|e| match e {
        StoreError::NotFound => {
            ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such user".into() }
        }
        e => e.into(),
    })?;
    Ok(ok(json!({"id": id, "deleted": true})))
}

fn webhook_json(w: &crate::store::Webhook) -> Value {
    json!({"id": w.id, "url": w.url, "events": w.events, "created_at": rfc3339(w.created_at)})
}

async fn create_webhook(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    req: Request,
) -> Result<Response, ApiError> {
    use crate::store::WEBHOOK_EVENTS;
    who.require("webhooks:write")?;
    let o = json_body(req).await?;
    let url = match o.get("url") {
        Some(Value::String(u))
            if (u.starts_with("http://") || u.starts_with("https://"))
                && u.len() <= 2048
                && u.parse::<axum::http::Uri>().is_ok_and(|p| p.host().is_some_and(|h| !h.is_empty())) =>
        {
            u.clone()
        }
        Some(_) => return Err(ApiError::field("url", "must be an http:// or https:// URL")),
        None => return Err(ApiError::field("url", "required")),
    };
    let events = match o.get("events") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            let mut events = Vec::new();
            for e in list {
                match e.as_str().filter(|e| WEBHOOK_EVENTS.contains(e)) {
                    Some(e) if !events.iter().any(|x| x == e) => events.push(e.to_string()),
                    Some(_) => {}
                    None => {
                        return Err(ApiError::field(
                            "events",
                            &format!("unknown event {e}; known: {}", WEBHOOK_EVENTS.join(", ")),
                        ))
                    }
                }
            }
            events
        }
        Some(_) => return Err(ApiError::field("events", "must be a list of event names")),
    };
    let secret = match o.get("secret") {
        None | Some(Value::Null) => format!("whsec_{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>()),
        Some(Value::String(s)) if (16..=256).contains(&s.len()) => s.clone(),
        Some(_) => return Err(ApiError::field("secret", "must be a string of 16 to 256 characters")),
    };
    let w = crate::store::Webhook {
        id: format!("wh_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        url,
        secret,
        events,
        created_at: now_ms(),
    };
    store(&st)?.insert_webhook(&w)?;
    let mut data = webhook_json(&w);
    data["secret"] = json!(w.secret);
    Ok((StatusCode::CREATED, ok(data)).into_response())
}

async fn list_webhooks(State(st): State<ApiState>, Extension(who): Extension<Principal>) -> Result<Response, ApiError> {
    who.require("webhooks:read")?;
    let hooks = store(&st)?.list_webhooks()?;
    Ok(ok(json!({"webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>()})))
}

async fn delete_webhook(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require("webhooks:write")?;
    store(&st)?.delete_webhook(&id).map_err(|e| match e {
        StoreError::NotFound => {
            ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such webhook".into() }
        }
        e => e.into(),
    })?;
    Ok(ok(json!({"id": id, "deleted": true})))
}

/// Prometheus text (version 0.0.4): the store's calls by status, the webhook outbox, the
/// limits, and the engine's own lines.
async fn metrics(State(st): State<ApiState>) -> Response {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::with_capacity(2048);
    let (by_status, pending) =
        read(&st, |s| Ok((s.count_by_status()?, s.outbox_pending()?))).await.unwrap_or_else(|_| (Vec::new(), 0));
    out.push_str("# HELP dialtone_calls Calls in the store, by status.\n# TYPE dialtone_calls gauge\n");
    for s in CallStatus::ALL {
        let n = by_status.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "dialtone_calls{{status=\"{s}\"}} {n}");
    }
    let w = &st.webhook_stats;
    let _ = write!(
        out,
        "# HELP dialtone_webhook_deliveries_total Webhook delivery attempts, by result.\n\
         # TYPE dialtone_webhook_deliveries_total counter\n\
         dialtone_webhook_deliveries_total{{result=\"delivered\"}} {}\n\
         dialtone_webhook_deliveries_total{{result=\"failed\"}} {}\n\
         dialtone_webhook_deliveries_total{{result=\"given_up\"}} {}\n\
         # HELP dialtone_webhook_outbox_pending Webhook events waiting for delivery.\n\
         # TYPE dialtone_webhook_outbox_pending gauge\n\
         dialtone_webhook_outbox_pending {pending}\n\
         # HELP dialtone_http_rate_limited_total Requests refused with 429.\n\
         # TYPE dialtone_http_rate_limited_total counter\n\
         dialtone_http_rate_limited_total {}\n",
        w.delivered.load(Relaxed),
        w.failed.load(Relaxed),
        w.given_up.load(Relaxed),
        st.limits.refused.load(Relaxed),
    );
    if let Some(engine) = &st.engine_metrics {
        engine(&mut out);
    }
    let mut r = Response::new(axum::body::Body::from(out));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn get_call(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require("calls:read")?;
    let (call, events) = read(&st, move |s| Ok((s.get_call(&id)?, s.events(&id)?))).await?;
    let mut v = call_json(&call);
    v["events"] = json!(events
        .iter()
        .map(|e| json!({"at": rfc3339(e.at), "kind": e.kind, "detail": e.detail}))
        .collect::<Vec<_>>());
    Ok(ok(v))
}

/// Checks `perm`, that the call exists and is live, and hands `action` to the engine;
/// answers with what the engine did (202 once the request is out).
async fn act(st: &ApiState, who: &Principal, perm: &str, id: &str, action: Action) -> Result<Response, ApiError> {
    who.require(perm)?;
    let call = store(st)?.get_call(id)?;
    let live = match action {
        Action::Hangup => !call.status.is_final(),
        _ => call.status == CallStatus::InProgress,
    };
    if !live {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "call_not_live",
            message: format!("the call is {}", call.status),
        });
    }
    let Some(control) = st.control.clone() else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_engine",
            message: "no call engine".into(),
        });
    };
    let name = match &action {
        Action::Hangup => "hangup",
        Action::Hold(true) => "hold",
        Action::Hold(false) => "unhold",
        Action::Transfer(_) => "transfer",
        Action::Dtmf(_) => "dtmf",
        Action::Record(true) => "recording_start",
        Action::Record(false) => "recording_stop",
    };
    let reply = control.act(id, action);
    match tokio::time::timeout(std::time::Duration::from_secs(10), reply).await {
        Ok(Ok(Ok(()))) => Ok((StatusCode::ACCEPTED, ok(json!({"id": id, "action": name}))).into_response()),
        Ok(Ok(Err(refusal))) => Err(refusal.into()),
        Ok(Err(_)) => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_engine",
            message: "the call engine stopped".into(),
        }),
        Err(_) => Err(ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "engine_timeout",
            message: "the call engine did not answer in 10 s".into(),
        }),
    }
}

async fn json_body(req: Request) -> Result<serde_json::Map<String, Value>, ApiError> {
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

async fn hangup(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&st, &who, "calls:hangup", &id, Action::Hangup).await
}

async fn hold(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&st, &who, "calls:hold", &id, Action::Hold(true)).await
}

async fn unhold(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&st, &who, "calls:hold", &id, Action::Hold(false)).await
}

async fn transfer(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    who.require("calls:transfer")?;
    let o = json_body(req).await?;
    let dest = match o.get("destination") {
        Some(Value::String(s))
            if (s.starts_with("sip:") && s.len() > 4 && !s.contains(['<', '>', '\r', '\n'])) || is_e164(s) =>
        {
            s.clone()
        }
        Some(_) => return Err(ApiError::field("destination", "must be a sip: URI or an E.164 number")),
        None => return Err(ApiError::field("destination", "required")),
    };
    act(&st, &who, "calls:transfer", &id, Action::Transfer(dest)).await
}

async fn dtmf(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    who.require("calls:write")?;
    let o = json_body(req).await?;
    let digits = match o.get("digits") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 32
                && s.chars().all(|c| matches!(c.to_ascii_uppercase(), '0'..='9' | '*' | '#' | 'A'..='D')) =>
        {
            s.to_ascii_uppercase()
        }
        Some(_) => return Err(ApiError::field("digits", "must be 1 to 32 of 0-9 * # A-D")),
        None => return Err(ApiError::field("digits", "required")),
    };
    act(&st, &who, "calls:write", &id, Action::Dtmf(digits)).await
}

async fn login(State(st): State<ApiState>, req: Request) -> Result<Response, ApiError> {
    let who = client_addr(&req).map_or_else(|| "login:local".to_string(), |ip| format!("login:{ip}"));
    if let Err(s) = st.limits.take(&who, st.limits.limits.login, std::time::Instant::now()) {
        return Ok(too_many(s, "to log in from this address"));
    }
    let o = json_body(req).await?;
    let email = match o.get("email") {
        Some(Value::String(s)) if s.contains('@') && s.len() <= 254 => s.clone(),
        _ => return Err(ApiError::field("email", "required: an e-mail address")),
    };
    let Some(Value::String(password)) = o.get("password") else {
        return Err(ApiError::field("password", "required"));
    };
    let user = store(&st)?.user_by_email(&email)?;
    // The same answer (and about the same work) for an unknown user as for a wrong password.
    let ok_user = match user {
        Some(u) if verify_password(password, &u.password_hash) => u,
        Some(_) => {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: "wrong e-mail or password".into(),
            })
        }
        None => {
            let _ = verify_password(
                password,
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            );
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: "wrong e-mail or password".into(),
            });
        }
    };
    // An admin holds every permission, including ones added after it was created.
    let perms = match ok_user.role.as_str() {
        "admin" => PERMISSIONS.iter().map(|p| p.to_string()).collect(),
        _ => ok_user.permissions.clone(),
    };
    let token = issue_jwt(&st.jwt_secret, &ok_user.id, &perms, now_ms() / 1000);
    let user = json!({"id": ok_user.id, "email": ok_user.email, "role": ok_user.role});
    // The seed's shape (`token`, `user` at the top) inside the envelope every answer has.
    Ok(Json(
        json!({"success": true, "data": {"token": token, "user": user}, "error": null, "token": token, "user": user}),
    )
    .into_response())
}

/// The permissions in `list`, normalized and without repeats: 400 for an unknown one, 403
/// for one `who` lacks (a `what`, key or user, never holds more than its creator).
fn granted(who: &Principal, list: &[Value], what: &str) -> Result<Vec<String>, ApiError> {
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

async fn create_key(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    req: Request,
) -> Result<Response, ApiError> {
    who.require("keys:write")?;
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("the body is over {MAX_BODY} bytes"),
    })?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::field("body", &format!("not valid JSON ({e})")))?;
    let name = match v.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => s.clone(),
        Some(_) => return Err(ApiError::field("name", "must be a non-empty string of at most 128 characters")),
        None => return Err(ApiError::field("name", "required")),
    };
    let Some(list) = v.get("permissions").and_then(Value::as_array) else {
        return Err(ApiError::field("permissions", "required: a list such as [\"calls:read\"]"));
    };
    let permissions = granted(&who, list, "key")?;
    let secret = format!("dk_{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
    let key = crate::store::ApiKey {
        id: format!("key_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        name,
        permissions,
        created_by: who.name(),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    store(&st)?.insert_key(&key, &key_hash(&secret))?;
    let data = json!({
        "id": key.id, "name": key.name, "key": secret, "permissions": key.permissions,
        "created_at": rfc3339(key.created_at),
    });
    Ok((StatusCode::CREATED, ok(data)).into_response())
}

async fn list_keys(State(st): State<ApiState>, Extension(who): Extension<Principal>) -> Result<Response, ApiError> {
    who.require("keys:read")?;
    let keys = store(&st)?.list_keys()?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "permissions": k.permissions,
                "created_at": rfc3339(k.created_at),
                "last_used_at": k.last_used_at.map(rfc3339),
                "revoked_at": k.revoked_at.map(rfc3339),
            })
        })
        .collect();
    Ok(ok(json!({ "keys": keys })))
}

async fn revoke_key(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require("keys:write")?;
    store(&st)?.revoke_key(&id, now_ms()).map_err(|e| match e {
        StoreError::NotFound => {
            ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such live key".into() }
        }
        e => e.into(),
    })?;
    Ok(ok(json!({ "id": id, "revoked": true })))
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

    #[test]
    fn byte_ranges() {
        use ByteRange::*;
        assert_eq!(parse_range("bytes=0-43", 100), Part(0, 43));
        assert_eq!(parse_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Part(50, 99));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("items=0-1", 100), Whole);
        for bad in ["bytes=100-", "bytes=5-4", "bytes=-0", "bytes=x-1", "bytes=-", "bytes=7"] {
            assert_eq!(parse_range(bad, 100), Unsatisfiable, "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }
}
