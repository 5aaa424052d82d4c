//! The HTTP API (DESIGN.md "The control API"): every response is the envelope
//! `{"success": bool, "data": …, "error": null | {"code", "message"}}`, errors included
//! (unknown route 404, wrong method 405, bad parameters 400 naming the field).
//!
//! This first slice serves `GET /healthz`, `GET /api/calls/list` and `GET /api/calls/{id}`
//! from the store, behind `X-Internal-Key` (compared in constant time; with no key
//! configured every protected request is refused). API keys, JWTs, permissions and the
//! call-control endpoints come next (issue 5).

use crate::store::{Call, CallFilter, CallStatus, Store, StoreError};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A call the API asks the engine to place (it is already stored as `initiating`).
#[derive(Clone, Debug)]
pub struct Originate {
    /// The call's id.
    pub id: String,
    /// E.164 number to call.
    pub phone_number: String,
    /// E.164 number to call from.
    pub from_number: Option<String>,
    /// Record the call.
    pub record: bool,
}

/// Something to do to a live call.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// BYE (or CANCEL before the answer).
    Hangup,
    /// Hold (`true`) or resume, by re-INVITE.
    Hold(bool),
    /// Blind transfer to this SIP URI (REFER).
    Transfer(String),
    /// RFC 4733 digits.
    Dtmf(String),
}

/// The engine side of the API: places and steers calls.
pub trait CallControl: Send + Sync {
    /// Places `call`; progress comes back through the store.
    fn originate(&self, call: Originate);
    /// Acts on the live call `id`.
    fn act(&self, id: &str, action: Action);
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The store (one writer; reads take the same lock for now).
    pub store: Arc<Mutex<Store>>,
    /// `DIALTONE_INTERNAL_KEY`: full access when it matches.
    pub internal_key: Option<String>,
    /// Places calls; `None` without a trunk (create then answers 503).
    pub control: Option<Arc<dyn CallControl>>,
    /// The HS256 key for user JWTs.
    pub jwt_secret: Arc<Vec<u8>>,
}

/// How long a user's JWT lives.
pub const JWT_LIFETIME_S: i64 = 24 * 3600;

/// The claims of our JWTs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, s since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// The user's permissions.
    pub perms: Vec<String>,
}

/// An argon2id PHC string for `password` (a random salt).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let Ok(salt) = SaltString::encode_b64(&rand::random::<[u8; 16]>()) else { return String::new() };
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
}

fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A signed HS256 JWT for a user.
pub fn issue_jwt(secret: &[u8], user_id: &str, perms: &[String], now_s: i64) -> String {
    let claims = Claims { sub: user_id.into(), iat: now_s, exp: now_s + JWT_LIFETIME_S, perms: perms.to_vec() };
    let Ok(key) = jsonwebtoken::EncodingKey::from_secret(secret) else { return String::new() };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap_or_default()
}

/// The claims of a valid token: HS256 only (`alg` pinned: `none` and others refused), not expired.
pub fn check_jwt(secret: &[u8], token: &str) -> Option<Claims> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "sub"]);
    let key = jsonwebtoken::DecodingKey::from_secret(secret).ok()?;
    jsonwebtoken::decode::<Claims>(token, &key, &v).ok().map(|d| d.claims)
}

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// An API error: its HTTP status, a machine code and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// 400 naming the offending field.
    pub fn field(field: &str, why: &str) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "invalid_request", message: format!("{field}: {why}") }
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
            e => ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal", message: e.to_string() },
        }
    }
}

/// The store, or a 500 if a handler panicked while holding it.
fn store(st: &ApiState) -> Result<std::sync::MutexGuard<'_, Store>, ApiError> {
    st.store.lock().map_err(|_| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: "the store is unavailable".into(),
    })
}

fn ok(data: Value) -> Response {
    Json(json!({"success": true, "data": data, "error": null})).into_response()
}

/// The permissions a key or user can hold (`resource:action`; `resource.action` is read
/// as the same).
pub const PERMISSIONS: &[&str] = &[
    "calls:read",
    "calls:write",
    "calls:hangup",
    "calls:hold",
    "calls:transfer",
    "calls:recording",
    "calls:live",
    "calls:originate_ai",
    "calls:click_to_call",
    "keys:read",
    "keys:write",
];

/// `calls.read` → `calls:read`; `None` for an unknown permission.
pub fn normalize_permission(p: &str) -> Option<&'static str> {
    let p = p.trim().replacen('.', ":", 1);
    PERMISSIONS.iter().copied().find(|k| *k == p)
}

/// Who is asking.
#[derive(Clone, Debug)]
pub enum Principal {
    /// `X-Internal-Key`: everything.
    Internal,
    /// A user with a JWT.
    User {
        /// The user id.
        id: String,
        /// Its permissions.
        permissions: Vec<String>,
    },
    /// An API key and what it may do.
    Key {
        /// Its id.
        id: String,
        /// Its permissions (normalized).
        permissions: Vec<String>,
    },
}

impl Principal {
    /// Whether it holds `perm`.
    pub fn may(&self, perm: &str) -> bool {
        match self {
            Principal::Internal => true,
            Principal::Key { permissions, .. } | Principal::User { permissions, .. } => {
                permissions.iter().any(|p| p == perm)
            }
        }
    }

    fn require(&self, perm: &str) -> Result<(), ApiError> {
        if self.may(perm) {
            return Ok(());
        }
        Err(ApiError { status: StatusCode::FORBIDDEN, code: "forbidden", message: format!("this key lacks {perm}") })
    }

    fn name(&self) -> String {
        match self {
            Principal::Internal => "internal".into(),
            Principal::Key { id, .. } | Principal::User { id, .. } => id.clone(),
        }
    }
}

/// The SHA-256 of a key, hex: what the store keeps.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
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
        .route("/api/api-keys", post(create_key).get(list_keys))
        .route("/api/api-keys/{id}", delete(revoke_key))
        .route("/api/calls/{id}", get(get_call))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .route("/healthz", get(|| async { ok(json!({"status": "ok"})) }))
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

/// Equal in constant time for equal lengths (the length itself is not secret here).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_auth(State(st): State<ApiState>, headers: HeaderMap, mut req: Request, next: Next) -> Response {
    let unauthorized = |m: &str| {
        ApiError { status: StatusCode::UNAUTHORIZED, code: "unauthorized", message: m.into() }.into_response()
    };
    let principal = if let Some(g) = headers.get("x-internal-key") {
        match st.internal_key.as_deref() {
            Some(k) if same(g.as_bytes(), k.as_bytes()) => Principal::Internal,
            _ => return unauthorized("invalid credentials"),
        }
    } else {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let key = bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return unauthorized("missing credentials (Authorization: Bearer, X-API-Key or X-Internal-Key)");
        };
        if key.matches('.').count() == 2 {
            // A JWT (header.payload.signature); API keys have no dots.
            return match check_jwt(&st.jwt_secret, key) {
                Some(c) => {
                    req.extensions_mut().insert(Principal::User { id: c.sub, permissions: c.perms });
                    next.run(req).await
                }
                None => unauthorized("invalid or expired token"),
            };
        }
        let Ok(mut store) = st.store.lock() else { return unauthorized("the store is unavailable") };
        match store.key_by_hash(&key_hash(key)) {
            Ok(Some(k)) => {
                let _ = store.touch_key(&k.id, now_ms());
                Principal::Key { id: k.id, permissions: k.permissions }
            }
            _ => return unauthorized("invalid credentials"),
        }
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// `2024-01-09T20:00:00Z` from ms since the epoch (UTC; the civil-from-days algorithm of
/// H. Hinnant's "chrono-compatible low-level date algorithms").
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses `2024-01-09`, `2024-01-09T20:00:00Z` or `2024-01-09T20:00:00.250Z` (UTC) into
/// ms since the epoch (days-from-civil, the inverse of [`rfc3339`]).
pub fn parse_time(s: &str) -> Option<i64> {
    let num =
        |t: &str| -> Option<i64> { (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())? };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || date.len() != 10 {
        return None;
    }
    let mut ms = 0i64;
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let mut p = hms.split(':');
        let (h, mi, se) = (num(p.next()?)?, num(p.next()?)?, num(p.next()?)?);
        if p.next().is_some() || h >= 24 || mi >= 60 || se >= 61 || hms.len() != 8 {
            return None;
        }
        let frac_ms = if frac.is_empty() { 0 } else { num(&format!("{frac:0<3}")[..3])? };
        ms = ((h * 60 + mi) * 60 + se) * 1000 + frac_ms;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000 + ms)
}

/// A call as the API shows it (the seed's fields, and ours after them).
pub fn call_json(c: &Call) -> Value {
    json!({
        "id": c.id,
        "status": c.status.as_str(),
        "contact_id": c.contact_id,
        "phone_number": c.phone_number,
        "from_number": c.from_number,
        "duration": c.duration,
        "created_at": rfc3339(c.created_at),
        "answered_at": c.answered_at.map(rfc3339),
        "ended_at": c.ended_at.map(rfc3339),
        "sip_status": c.sip_status,
        "reason": c.reason,
        "record": c.record,
    })
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
    let filter = CallFilter { status, contact_id: q.get("contact_id").map(String::as_str), from, to, limit, offset };
    let (calls, total) = store(&st)?.list_calls(&filter)?;
    Ok(ok(json!({"calls": calls.iter().map(call_json).collect::<Vec<_>>(), "total": total})))
}

/// E.164: `+`, then 2–15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else { return false };
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn create_call(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    req: Request,
) -> Result<Response, ApiError> {
    who.require("calls:write")?;
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("the body is over {MAX_BODY} bytes"),
    })?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::field("body", &format!("not valid JSON ({e})")))?;
    let Some(o) = v.as_object() else { return Err(ApiError::field("body", "must be a JSON object")) };
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
    let Some(control) = st.control.clone() else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_trunk",
            message: "no trunk to place calls through: set DIALTONE_TRUNK".into(),
        });
    };
    let id = format!("call_{:016x}", rand::random::<u64>());
    let call = store(&st)?.insert_call(&crate::store::NewCall {
        id: &id,
        contact_id: &contact_id,
        phone_number: &phone_number,
        from_number: from_number.as_deref(),
        record,
        created_at: now_ms(),
    })?;
    control.originate(Originate { id, phone_number, from_number, record });
    Ok((StatusCode::CREATED, ok(call_json(&call))).into_response())
}

async fn get_call(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require("calls:read")?;
    let store = store(&st)?;
    let call = store.get_call(&id)?;
    let events = store.events(&id)?;
    let mut v = call_json(&call);
    v["events"] = json!(events
        .iter()
        .map(|e| json!({"at": rfc3339(e.at), "kind": e.kind, "detail": e.detail}))
        .collect::<Vec<_>>());
    Ok(ok(v))
}

/// Checks `perm`, that the call exists and is live, and hands `action` to the engine.
fn act(st: &ApiState, who: &Principal, perm: &str, id: &str, action: Action) -> Result<Response, ApiError> {
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
    };
    control.act(id, action);
    Ok((StatusCode::ACCEPTED, ok(json!({"id": id, "action": name}))).into_response())
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
    act(&st, &who, "calls:hangup", &id, Action::Hangup)
}

async fn hold(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&st, &who, "calls:hold", &id, Action::Hold(true))
}

async fn unhold(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&st, &who, "calls:hold", &id, Action::Hold(false))
}

async fn transfer(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
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
    act(&st, &who, "calls:transfer", &id, Action::Transfer(dest))
}

async fn dtmf(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
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
    act(&st, &who, "calls:write", &id, Action::Dtmf(digits))
}

async fn login(State(st): State<ApiState>, req: Request) -> Result<Response, ApiError> {
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
    let token = issue_jwt(&st.jwt_secret, &ok_user.id, &ok_user.permissions, now_ms() / 1000);
    let user = json!({"id": ok_user.id, "email": ok_user.email, "role": ok_user.role});
    // The seed's shape (`token`, `user` at the top) inside the envelope every answer has.
    Ok(Json(
        json!({"success": true, "data": {"token": token, "user": user}, "error": null, "token": token, "user": user}),
    )
    .into_response())
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
    let mut permissions = Vec::new();
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
                message: format!("permissions: a key cannot grant {n}, which its creator lacks"),
            });
        }
        if !permissions.iter().any(|q| q == n) {
            permissions.push(n.to_string());
        }
    }
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
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_830_400_000), "2024-01-09T20:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn times_parse_back() {
        for ms in [0, 1_704_830_400_000, 951_782_400_000, 4_102_444_799_000] {
            assert_eq!(parse_time(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_time("2024-01-09"), Some(1_704_758_400_000));
        assert_eq!(parse_time("2024-01-09T20:00:00.25Z"), Some(1_704_830_400_250));
        for bad in ["2024-1-9", "2024-13-01", "2024-01-09T25:00:00Z", "2024-01-09T20:00:00", "yesterday", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn e164() {
        assert!(is_e164("+14155550123") && is_e164("+44"));
        assert!(!is_e164("14155550123") && !is_e164("+0123") && !is_e164("+1") && !is_e164("+1415555012345678"));
        assert!(!is_e164("+1-415") && !is_e164(""));
    }

    #[test]
    fn constant_time_compare() {
        assert!(same(b"key", b"key"));
        assert!(!same(b"key", b"kez") && !same(b"key", b"keys") && !same(b"", b"k"));
    }
}
