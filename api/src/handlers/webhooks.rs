//! Webhook subscriptions.

use super::support::{json_body, limit, missing, read, store};
use crate::auth::Allowed;
use crate::errors::ApiError;
use crate::model::{Webhook, WEBHOOK_EVENTS};
use crate::state::ApiState;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;

fn webhook_json(w: &Webhook) -> Value {
    json!({"id": w.id, "url": w.url, "events": w.events, "created_at": rfc3339(w.created_at),
           "organization_id": w.organization_id})
}

/// A new signing secret: `whsec_` and 32 random hex digits.
pub fn new_secret() -> String {
    format!("whsec_{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
}

pub async fn create_webhook(
    State(st): State<ApiState>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let organization_id = who.org()?;
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
        None | Some(Value::Null) => new_secret(),
        Some(Value::String(s)) if (16..=256).contains(&s.len()) => s.clone(),
        Some(_) => return Err(ApiError::field("secret", "must be a string of 16 to 256 characters")),
    };
    let w = Webhook {
        id: format!("wh_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        url,
        secret,
        events,
        created_at: now_ms(),
        organization_id,
    };
    store(&st)?.insert_webhook(&w)?;
    let mut data = webhook_json(&w);
    data["secret"] = json!(w.secret);
    Ok((StatusCode::CREATED, ok(data)).into_response())
}

pub async fn list_webhooks(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let hooks = store(&st)?.list_webhooks(&who.scope())?;
    Ok(ok(json!({"webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>()})))
}

pub async fn delete_webhook(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    store(&st)?.delete_webhook(&who.scope(), &id).map_err(missing("webhook"))?;
    Ok(ok(json!({"id": id, "deleted": true})))
}

/// `GET /api/webhooks/{id}/deliveries`: every attempt to deliver the webhook's events,
/// newest first (`limit`, 1–500, default 50).
pub async fn list_deliveries(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let limit = limit(&q, 50, 500)?;
    let scope = who.scope();
    let rows = read(&st, move |s| s.list_attempts(&scope, &id, limit)).await.map_err(|e| match e.code {
        "not_found" => ApiError::not_found("webhook"),
        _ => e,
    })?;
    let list: Vec<Value> = rows
        .iter()
        .map(|a| {
            json!({"id": a.id, "event": a.event, "call_id": a.call_id, "attempt": a.attempt,
                   "at": rfc3339(a.at), "outcome": a.outcome, "status_code": a.status_code,
                   "response": a.response, "error": a.error, "duration_ms": a.duration_ms,
                   "next_retry_at": a.next_retry_at.map(rfc3339)})
        })
        .collect();
    Ok(ok(json!({"deliveries": list})))
}
