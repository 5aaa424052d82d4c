//! API keys: created (the secret shown once), listed, revoked.

use super::support::{granted, store};
use crate::auth::{key_hash, Allowed};
use crate::errors::ApiError;
use crate::model::ApiKey;
use crate::state::ApiState;
use crate::store::StoreError;
use crate::wire::{now_ms, ok, rfc3339, MAX_BODY};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub async fn create_key(State(st): State<ApiState>, Allowed(who): Allowed, req: Request) -> Result<Response, ApiError> {
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
    let key = ApiKey {
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

pub async fn list_keys(State(st): State<ApiState>, _: Allowed) -> Result<Response, ApiError> {
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

pub async fn revoke_key(State(st): State<ApiState>, Path(id): Path<String>, _: Allowed) -> Result<Response, ApiError> {
    store(&st)?.revoke_key(&id, now_ms()).map_err(|e| match e {
        StoreError::NotFound => {
            ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such live key".into() }
        }
        e => e.into(),
    })?;
    Ok(ok(json!({ "id": id, "revoked": true })))
}
