//! Placing and reading calls.

use super::support::{is_e164, json_body, limit, read, store};
use crate::auth::{key_hash, Allowed};
use crate::control::{Originate, Refusal, AGENT_FORMATS};
use crate::errors::ApiError;
use crate::model::{CallFilter, CallStatus, NewCall};
use crate::state::ApiState;
use crate::store::StoreError;
use crate::wire::{call_json, calls_body, json_bytes, now_ms, ok, parse_time, rfc3339};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn list_calls(
    State(st): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let limit = limit(&q, 50, 5000)?;
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
    let number = match q.get("number") {
        Some(n) if n.is_empty() || n.len() > 64 || n.chars().any(char::is_control) => {
            return Err(ApiError::field("number", "must be 1 to 64 printable characters"))
        }
        n => n.cloned(),
    };
    let inbound = match q.get("direction").map(String::as_str) {
        None => None,
        Some("inbound") => Some(true),
        Some("outbound") => Some(false),
        Some(_) => return Err(ApiError::field("direction", "must be inbound or outbound")),
    };
    let csv = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
    };
    let scope = who.scope();
    // The rows and their JSON are made on the blocking thread: thousands of calls take
    // milliseconds that the async workers (media ticks) should not wait for.
    let body = read(&st, move |s| {
        let f = CallFilter {
            status,
            contact_id: contact.as_deref(),
            from,
            to,
            number: number.as_deref(),
            inbound,
            limit,
            offset,
        };
        let (calls, total) = s.list_calls(&scope, &f)?;
        Ok(if csv { (calls_csv(&calls), total) } else { (calls_body(&calls, total), total) })
    })
    .await?;
    if !csv {
        return Ok(json_bytes(body.0));
    }
    let total = body.1.to_string();
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"calls.csv\""),
            (axum::http::HeaderName::from_static("x-total-count"), total.as_str()),
        ],
        body.0,
    )
        .into_response())
}

/// The CSV export's columns.
const CSV_COLUMNS: [&str; 12] = [
    "id",
    "direction",
    "status",
    "phone_number",
    "from_number",
    "contact_id",
    "created_at",
    "answered_at",
    "ended_at",
    "duration",
    "sip_status",
    "reason",
];

/// Calls as CSV (RFC 4180: CRLF, fields quoted when they hold `,`, `"` or a line break), a
/// header line first. A field a spreadsheet would run as a formula (`=`, `@`, or `+`/`-`
/// not followed by digits only) gets a leading `'`.
fn calls_csv(calls: &[crate::model::Call]) -> Vec<u8> {
    fn field(out: &mut String, v: &str) {
        let formula = v.starts_with(['=', '@', '\t', '\r'])
            || (v.starts_with(['+', '-']) && !v[1..].chars().all(|c| c.is_ascii_digit()));
        let v = if formula { format!("'{v}") } else { v.to_string() };
        if v.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&v.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&v);
        }
    }
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for c in calls {
        let row = [
            c.id.clone(),
            if c.inbound { "inbound" } else { "outbound" }.to_string(),
            c.status.as_str().to_string(),
            c.phone_number.clone(),
            c.from_number.clone().unwrap_or_default(),
            c.contact_id.clone(),
            rfc3339(c.created_at),
            c.answered_at.map(rfc3339).unwrap_or_default(),
            c.ended_at.map(rfc3339).unwrap_or_default(),
            c.duration.map(|d| d.to_string()).unwrap_or_default(),
            c.sip_status.map(|s| s.to_string()).unwrap_or_default(),
            c.reason.clone().unwrap_or_default(),
        ];
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, v);
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

pub async fn create_call(
    State(st): State<ApiState>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
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
        // Caller ID handed to the trunk: `+` and 1–15 digits (the seed's `+0987654321`).
        Some(Value::String(s)) if is_caller_id(s) => Some(s.clone()),
        Some(_) => return Err(ApiError::field("from_number", "must be + and 1 to 15 digits, such as +14155550123")),
    };
    let from_display_name = match o.get("from_display_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Some(_) => {
            return Err(ApiError::field("from_display_name", "must be 1 to 64 characters without control characters"))
        }
    };
    let early_media = match o.get("early_media") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::field("early_media", "must be true or false")),
    };
    let machine_detection = match o.get("machine_detection") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if crate::control::MACHINE_DETECTION.contains(&m.as_str()) => Some(m.clone()),
        Some(_) => return Err(ApiError::field("machine_detection", "must be \"detect\" or \"detect_message_end\"")),
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
    let sip_headers = sip_headers(o.get("sip_headers"))?;
    let seconds = |name: &str, max: u32| -> Result<Option<u32>, ApiError> {
        match o.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64().filter(|n| (1..=u64::from(max)).contains(n)) {
                Some(n) => Ok(Some(n as u32)),
                None => Err(ApiError::field(name, &format!("must be a whole number of seconds from 1 to {max}"))),
            },
        }
    };
    let ring_timeout = seconds("ring_timeout", 300)?;
    let max_duration = seconds("max_duration", 86_400)?;
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
    let org = who.org()?;
    let id = format!("call_{:016x}", rand::random::<u64>());
    // The engine decides whether the organization may place it (limits, destinations),
    // before anything is stored.
    match tokio::time::timeout(std::time::Duration::from_secs(10), control.admit(&org, &phone_number, &id)).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(refusal))) => return Ok(refused(refusal)),
        _ => {
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "no_engine",
                message: "the call engine did not answer".into(),
            })
        }
    }
    let max_live = match cluster_limits(&st, &org).await {
        Ok(max) => max,
        Err(r) => {
            control.release(&id);
            return Ok(*r);
        }
    };
    // The body as parsed (object keys sorted), so spacing and key order do not matter.
    let request_hash = key_hash(&serde_json::to_string(&o).unwrap_or_default());
    let principal = who.name();
    let idem = idem_key.as_deref().map(|k| (principal.as_str(), k, request_hash.as_str()));
    let new = NewCall {
        id: &id,
        contact_id: &contact_id,
        phone_number: &phone_number,
        from_number: from_number.as_deref(),
        record,
        created_at: now_ms(),
        organization_id: &org,
        sip_headers: &sip_headers,
        ring_timeout,
        max_duration,
        from_display_name: from_display_name.as_deref(),
        early_media,
        machine_detection: machine_detection.as_deref(),
    };
    let (call, replayed) = match store(&st).map(|mut s| s.insert_call_within(&new, idem, max_live)) {
        Ok(Ok(r)) => r,
        Err(e) => {
            control.release(&id);
            return Err(e);
        }
        Ok(Err(e)) => {
            control.release(&id);
            return match e {
                StoreError::IdempotencyConflict => Err(ApiError {
                    status: StatusCode::CONFLICT,
                    code: "idempotency_conflict",
                    message: "this Idempotency-Key was used with a different request body".into(),
                }),
                StoreError::Full(_) => Ok(refused(Refusal::TooMany("max_concurrent_calls", e.to_string(), 1))),
                e => Err(e.into()),
            };
        }
    };
    if replayed {
        control.release(&id);
        let mut r = ok(call_json(&call));
        r.headers_mut().insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
        return Ok(r);
    }
    let contact_id = Some(call.contact_id.clone());
    control.originate(Originate {
        id,
        phone_number,
        from_number,
        from_display_name,
        record,
        agent_url,
        agent_format,
        contact_id,
        permit: None,
        sip_headers,
        ring_timeout,
        max_duration,
        early_media,
        machine_detection,
    });
    Ok((StatusCode::CREATED, ok(call_json(&call))).into_response())
}

pub async fn live_calls(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let scope = who.scope();
    let body = read(&st, move |s| {
        let calls = s.live_calls(&scope)?;
        Ok(calls_body(&calls, calls.len() as u64))
    })
    .await?;
    Ok(json_bytes(body))
}

/// How often an idle event stream sends a comment line, so proxies keep it open.
const EVENTS_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// One server-sent event.
fn sse(event: &str, data: &Value) -> axum::body::Bytes {
    axum::body::Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// `GET /api/calls/events`: the caller's calls as they change, as server-sent events
/// (`text/event-stream`): first `snapshot` (the live calls, as `GET /api/calls/live`),
/// then a `call` (the call, as `GET /api/calls/{id}` without events) each time one of its
/// organization's calls is created or changes, `resync` when the stream fell behind (fetch
/// the live calls again), and a comment line every 15 s while idle. Other organizations'
/// calls never appear: each change is read back through the caller's scope. Read with
/// `fetch` and the `Authorization` header (the browser's `EventSource` cannot send one;
/// no token goes in the URL).
pub async fn call_events(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    use tokio::sync::broadcast::error::RecvError;
    let scope = who.scope();
    // Subscribed before the snapshot is read: no change between the two is missed.
    let rx = st.call_feed.subscribe();
    let snapshot_scope = scope.clone();
    let live = read(&st, move |s| s.live_calls(&snapshot_scope)).await?;
    let first = sse("snapshot", &calls_body_value(&live));
    let state = (rx, st, scope, Some(first));
    let stream = futures_util::stream::unfold(state, |(mut rx, st, scope, first)| async move {
        if let Some(first) = first {
            return Some((Ok::<_, std::convert::Infallible>(first), (rx, st, scope, None)));
        }
        loop {
            let item = match tokio::time::timeout(EVENTS_KEEPALIVE, rx.recv()).await {
                Err(_) => axum::body::Bytes::from_static(b": keep-alive\n\n"),
                Ok(Ok(id)) => {
                    let sc = scope.clone();
                    match read(&st, move |s| s.get_call(&sc, &id)).await {
                        Ok(call) => sse("call", &call_json(&call)),
                        // Another organization's call, or gone: not this stream's.
                        Err(_) => continue,
                    }
                }
                Ok(Err(RecvError::Lagged(n))) => sse("resync", &json!({"missed": n})),
                Ok(Err(RecvError::Closed)) => return None,
            };
            return Some((Ok(item), (rx, st, scope, None)));
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/event-stream"), (axum::http::header::CACHE_CONTROL, "no-cache")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// `{calls, total}`, as `data` of the live calls' answer.
fn calls_body_value(calls: &[crate::model::Call]) -> Value {
    json!({"calls": calls.iter().map(call_json).collect::<Vec<_>>(), "total": calls.len()})
}

pub async fn get_call(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let scope = who.scope();
    let (call, events) = read(&st, move |s| Ok((s.get_call(&scope, &id)?, s.events(&scope, &id)?))).await?;
    let mut v = call_json(&call);
    v["events"] = json!(events
        .iter()
        .map(|e| json!({"at": rfc3339(e.at), "kind": e.kind, "detail": e.detail}))
        .collect::<Vec<_>>());
    Ok(ok(v))
}

/// `sip_headers`: at most 20 `X-` headers (a token name, a value of printable characters
/// without CR or LF, at most 256), for the INVITE.
fn sip_headers(v: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |why: &str| ApiError::field("sip_headers", why);
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Some(map) = v.as_object() else { return Err(bad("must be an object of X- header names and string values")) };
    if map.len() > 20 {
        return Err(bad("at most 20 headers"));
    }
    let mut out = Vec::new();
    for (name, value) in map {
        let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
        if !(name.len() > 2 && name.len() <= 64 && name[..2].eq_ignore_ascii_case("x-") && name.chars().all(token)) {
            return Err(bad(&format!("{name:?} is not an X- header name")));
        }
        let Some(value) = value.as_str().filter(|s| {
            s.len() <= 256
                && s.chars()
                    .all(|c| c == ' ' || c == '\t' || (c.is_ascii_graphic()) || (!c.is_ascii() && !c.is_control()))
        }) else {
            return Err(bad(&format!("{name}: the value must be a string of at most 256 printable characters")));
        };
        out.push((name.clone(), value.trim().to_string()));
    }
    Ok(out)
}

/// A caller ID: `+` and 1–15 digits.
fn is_caller_id(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The engine's refusal of a new call: 403 naming the rule, or 429 with `Retry-After`.
/// On several nodes (a shared store), an organization's limits hold across all of them, not
/// only on the node placing the call (its engine checked those): its calls a second are
/// taken from a bucket in the store now, and its calls up are counted there as the call
/// is stored (the limit given back). One node alone: nothing to do.
async fn cluster_limits(st: &ApiState, org: &str) -> Result<Option<u32>, Box<Response>> {
    if st.cluster.is_none() {
        return Ok(None);
    }
    let failed = |e: ApiError| Box::new(e.into_response());
    let id = org.to_string();
    // Read on a reader connection: the writer's lock is for the writes.
    let Some(o) = read(st, move |s| s.org(&crate::model::Scope::All, &id)).await.map_err(failed)? else {
        return Ok(None);
    };
    if let Some(per_s) = o.max_calls_per_second.filter(|r| *r > 0.0) {
        let rate = crate::limits::Rate { per_s, burst: per_s.max(1.0) };
        let taken = rate
            .spend_shared(&mut *store(st).map_err(failed)?, &format!("org-calls:{org}"), now_ms())
            .map_err(|e| failed(e.into()))?;
        if let Err(secs) = taken {
            let why = "the organization's calls a second are used up (across the nodes)".to_string();
            return Err(Box::new(refused(Refusal::TooMany("max_calls_per_second", why, secs))));
        }
    }
    Ok(o.max_concurrent_calls)
}

fn refused(r: Refusal) -> Response {
    let wait = match &r {
        Refusal::TooMany(_, _, secs) => Some(*secs),
        _ => None,
    };
    let mut resp = ApiError::from(r).into_response();
    if let Some(secs) = wait.and_then(|s| axum::http::HeaderValue::from_str(&s.to_string()).ok()) {
        resp.headers_mut().insert(axum::http::header::RETRY_AFTER, secs);
    }
    resp
}

/// `GET /api/calls/{id}/sip`: the SIP messages of the call's dialogs, in order (stored at
/// its end; while it runs, those seen so far).
pub async fn get_call_sip(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    detail(st, id, who.scope(), true).await
}

/// `GET /api/calls/{id}/quality`: the call's quality samples (stored at its end; while it
/// runs, the latest).
pub async fn get_call_quality(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    detail(st, id, who.scope(), false).await
}

async fn detail(st: ApiState, id: String, scope: crate::model::Scope, sip: bool) -> Result<Response, ApiError> {
    let key = id.clone();
    let stored = read(&st, move |s| s.call_detail(&scope, &key, sip)).await?;
    let live = || if sip { st.live.ladder(&id) } else { st.live.quality(&id) };
    let mut v = match stored.or_else(live) {
        Some(v) => v,
        None if sip => json!({"messages": [], "truncated": false}),
        None => json!({"codec": null, "interval_ms": 1000, "samples": [], "summary": null}),
    };
    v["call_id"] = json!(id);
    Ok(ok(v))
}
