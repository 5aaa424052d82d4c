//! The HTTP API (DESIGN.md "The control API"): every response is the envelope
//! `{"success": bool, "data": …, "error": null | {"code", "message"}}`, errors included
//! (unknown route 404, wrong method 405, bad parameters 400 naming the field).
//!
//! Who may do what: [`PERMISSIONS`], checked per endpoint against the caller's
//! [`Principal`] (an API key, a user's JWT, or `X-Internal-Key`). Requests are limited per
//! key and per address ([`RateLimits`]); the public endpoints are `/healthz`, `/metrics`,
//! `/api/openapi.json` and the login.

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
    /// Bridge the answered call to this voice agent (`ws://` or `wss://`).
    pub agent_url: Option<String>,
    /// The agent's audio format: `twilio` (µ-law 8 kHz in JSON, the default) or `l16-16k`.
    pub agent_format: Option<String>,
    /// The caller's contact id (told to the agent in `start`).
    pub contact_id: Option<String>,
    /// The engine's permit for this call ([`CallControl`]'s admission), if one was asked for.
    pub permit: Option<u64>,
}

/// The agent audio formats `agent_format` takes.
pub const AGENT_FORMATS: &[&str] = &["twilio", "l16-16k"];

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
    /// Start (`true`) or stop recording.
    Record(bool),
}

/// The engine side of the API: places and steers calls.
pub trait CallControl: Send + Sync {
    /// Places `call`; progress comes back through the store.
    fn originate(&self, call: Originate);
    /// Acts on the live call `id`; the reply is what the engine did.
    fn act(&self, id: &str, action: Action) -> Reply;
    /// Whether calls can be placed (a trunk is set).
    fn can_originate(&self) -> bool {
        true
    }
}

/// The engine's answer to an action: done (the request went out; its SIP outcome
/// follows as a call event), or why not.
pub type Reply = tokio::sync::oneshot::Receiver<Result<(), Refusal>>;

/// Why the call engine did not carry out an action.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The call (or its dialog) cannot do this now: 409 `call_not_live`.
    NotLive(String),
    /// The request names something the engine cannot use: 400 `invalid_request`.
    Invalid(String),
    /// Something the action needs is not configured or free: 503 `unavailable`.
    Unavailable(String),
    /// The engine tried and failed: 502 `engine_failed`.
    Failed(String),
    /// The caller's organization may not do this (a rule, named by the code): 403.
    Forbidden(&'static str, String),
    /// The caller's organization is at a limit (named by the code): 429, with the seconds
    /// to wait for `Retry-After`.
    TooMany(&'static str, String, u64),
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
    /// Request limits per key and per address.
    pub limits: Arc<RateLimits>,
    /// Webhook delivery counters.
    pub webhook_stats: Arc<crate::webhooks::Stats>,
    /// Appends the engine's Prometheus lines (calls, SIP, RTP) to `/metrics`.
    pub engine_metrics: Option<EngineMetricsFn>,
    /// Read-only connections for queries (`None`: read through the writer).
    pub readers: Option<Arc<crate::store::Readers>>,
}

/// Writes the engine's Prometheus lines.
pub type EngineMetricsFn = Arc<dyn Fn(&mut String) + Send + Sync>;

impl ApiState {
    /// A state with default limits and no engine metrics.
    pub fn new(
        store: Arc<Mutex<Store>>,
        internal_key: Option<String>,
        control: Option<Arc<dyn CallControl>>,
        jwt_secret: Arc<Vec<u8>>,
    ) -> ApiState {
        ApiState {
            store,
            internal_key,
            control,
            jwt_secret,
            limits: Arc::new(RateLimits::new(Limits::default())),
            webhook_stats: Arc::default(),
            engine_metrics: None,
            readers: None,
        }
    }
}

/// Request rates: a token bucket of `burst` requests refilled at `per_s` a second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_s: f64,
    /// How many may come at once.
    pub burst: f64,
}

/// The limits in force (`DIALTONE_RATE_LIMIT`, `DIALTONE_RATE_LIMIT_ADDR`,
/// `DIALTONE_LOGIN_LIMIT`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Per API key or user.
    pub per_key: Rate,
    /// Per client address (authenticated requests other than the internal key's).
    pub per_addr: Rate,
    /// Login attempts per client address.
    pub login: Rate,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_key: Rate { per_s: 50.0, burst: 100.0 },
            per_addr: Rate { per_s: 200.0, burst: 400.0 },
            login: Rate { per_s: 10.0 / 60.0, burst: 10.0 },
        }
    }
}

/// Token buckets per key and per address, in memory (limits are per node).
#[derive(Debug)]
pub struct RateLimits {
    /// The limits.
    pub limits: Limits,
    buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
    /// Requests refused with 429.
    pub refused: std::sync::atomic::AtomicU64,
}

impl RateLimits {
    /// Buckets for `limits`.
    pub fn new(limits: Limits) -> RateLimits {
        RateLimits { limits, buckets: Mutex::new(HashMap::new()), refused: Default::default() }
    }

    /// Takes one token from `who`'s bucket; `Err(seconds to wait)` when it is empty.
    pub fn take(&self, who: &str, rate: Rate, now: std::time::Instant) -> Result<(), u64> {
        let Ok(mut b) = self.buckets.lock() else { return Ok(()) };
        if b.len() > 100_000 {
            // Forget full buckets of idle clients rather than grow without bound.
            b.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 600);
        }
        let (tokens, at) = b.entry(who.to_string()).or_insert((rate.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate.per_s).min(rate.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Err((((1.0 - *tokens) / rate.per_s).ceil() as u64).max(1))
    }
}

fn too_many(retry_after: u64, what: &str) -> Response {
    let mut r = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!("too many requests {what}; retry in {retry_after} s"),
    }
    .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    r
}

/// The client's address, when the server was started with connect info.
fn client_addr(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
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
    "webhooks:read",
    "webhooks:write",
    "users:read",
    "users:write",
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
                    // A deleted user's tokens stop working at once.
                    match st.store.lock().map(|s| s.user_exists(&c.sub)) {
                        Ok(Ok(true)) => {}
                        _ => return unauthorized("invalid or expired token"),
                    }
                    let who = Principal::User { id: c.sub, permissions: c.perms };
                    if let Some(r) = limit(&st, &who, &req) {
                        return r;
                    }
                    req.extensions_mut().insert(who);
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
    if let Some(r) = limit(&st, &principal, &req) {
        return r;
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The per-key and per-address limits (the internal key has none): the 429 to answer.
fn limit(st: &ApiState, who: &Principal, req: &Request) -> Option<Response> {
    if matches!(who, Principal::Internal) {
        return None;
    }
    let now = std::time::Instant::now();
    let l = st.limits.limits;
    if let Err(s) = st.limits.take(&format!("key:{}", who.name()), l.per_key, now) {
        return Some(too_many(s, "for this key"));
    }
    let ip = client_addr(req)?;
    st.limits.take(&format!("addr:{ip}"), l.per_addr, now).err().map(|s| too_many(s, "from this address"))
}

/// `2024-01-09T20:00:00Z` from ms since the epoch (UTC; the civil-from-days algorithm of
/// H. Hinnant's "chrono-compatible low-level date algorithms").
pub fn rfc3339(ms: i64) -> String {
    Rfc3339(ms).to_string()
}

/// Displays ms since the epoch as [`rfc3339`] does, without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339(pub i64);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.div_euclid(1000);
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
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
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

/// A call as the API shows it (the seed's fields, and ours after them), serialized
/// straight from the stored row.
pub struct CallOut<'a>(pub &'a Call);

impl serde::Serialize for CallOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Recording<'a>(&'a str, crate::store::RecordingState);
        impl serde::Serialize for Recording<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut r = s.serialize_struct("Recording", 2)?;
                r.serialize_field("state", self.1.as_str())?;
                r.serialize_field("url", &format_args!("/api/calls/{}/recording", self.0))?;
                r.end()
            }
        }
        let c = self.0;
        let mut o = s.serialize_struct("Call", 14)?;
        o.serialize_field("id", &c.id)?;
        o.serialize_field("direction", if c.inbound { "inbound" } else { "outbound" })?;
        o.serialize_field("status", c.status.as_str())?;
        o.serialize_field("contact_id", &c.contact_id)?;
        o.serialize_field("phone_number", &c.phone_number)?;
        o.serialize_field("from_number", &c.from_number)?;
        o.serialize_field("duration", &c.duration)?;
        o.serialize_field("created_at", &Rfc3339(c.created_at))?;
        o.serialize_field("answered_at", &c.answered_at.map(Rfc3339))?;
        o.serialize_field("ended_at", &c.ended_at.map(Rfc3339))?;
        o.serialize_field("sip_status", &c.sip_status)?;
        o.serialize_field("reason", &c.reason)?;
        o.serialize_field("record", &c.record)?;
        o.serialize_field("recording", &c.recording.map(|r| Recording(&c.id, r)))?;
        o.end()
    }
}

/// A call as a JSON value (webhook payloads, one call).
pub fn call_json(c: &Call) -> Value {
    serde_json::to_value(CallOut(c)).unwrap_or(Value::Null)
}

/// `{"success": true, "data": {"calls": […], "total": n}, "error": null}`, written in one
/// pass into a buffer sized for it.
fn calls_body(calls: &[Call], total: u64) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        calls: Vec<CallOut<'a>>,
        total: u64,
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        success: bool,
        data: Data<'a>,
        error: Option<()>,
    }
    let env = Envelope { success: true, data: Data { calls: calls.iter().map(CallOut).collect(), total }, error: None };
    let mut out = Vec::with_capacity(64 + calls.len() * 360);
    let _ = serde_json::to_writer(&mut out, &env);
    out
}

fn json_bytes(body: Vec<u8>) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    r
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

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
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

    #[test]
    fn token_buckets_refill() {
        let l = RateLimits::new(Limits::default());
        let rate = Rate { per_s: 2.0, burst: 2.0 };
        let t0 = std::time::Instant::now();
        assert_eq!((l.take("a", rate, t0), l.take("a", rate, t0)), (Ok(()), Ok(())));
        assert_eq!(l.take("a", rate, t0), Err(1));
        assert_eq!(l.take("b", rate, t0), Ok(()), "buckets are per client");
        assert_eq!(l.take("a", rate, t0 + std::time::Duration::from_millis(500)), Ok(()));
        assert_eq!(l.refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn constant_time_compare() {
        assert!(same(b"key", b"key"));
        assert!(!same(b"key", b"kez") && !same(b"key", b"keys") && !same(b"", b"k"));
    }
}
