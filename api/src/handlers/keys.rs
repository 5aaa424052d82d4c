//! API keys: created (the secret shown once), listed, revoked.

use super::support::{granted, json_body, missing, store};
use crate::auth::{key_hash, Allowed};
use crate::errors::ApiError;
use crate::model::ApiKey;
use crate::state::ApiState;
use crate::store::StoreError;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub async fn create_key(State(st): State<ApiState>, Allowed(who): Allowed, req: Request) -> Result<Response, ApiError> {
    let organization_id = who.org()?;
    let v = json_body(req).await?;
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
        created_by: who.owner(),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
        organization_id,
        prefix: Some(secret[..7].to_string()),
    };
    store(&st)?.insert_key(&key, &key_hash(&secret))?;
    let data = json!({
        "id": key.id, "name": key.name, "key": secret, "permissions": key.permissions,
        "created_at": rfc3339(key.created_at),
    });
    Ok((StatusCode::CREATED, ok(data)).into_response())
}

/// `?scope=organization`: every key of the organization (its admins only); else the
/// caller's own (a key's: its creator's).
#[derive(serde::Deserialize, Default)]
pub struct KeyScope {
    scope: Option<String>,
}

pub async fn list_keys(
    State(st): State<ApiState>,
    Query(q): Query<KeyScope>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let scope = who.scope();
    let keys = match q.scope.as_deref() {
        Some("organization") if who.is_admin() => store(&st)?.list_keys(&scope)?,
        Some("organization") => {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: "scope=organization is for admins".into(),
            })
        }
        None | Some("user") => match who {
            crate::auth::Principal::Internal { .. } => store(&st)?.list_keys(&scope)?,
            _ => store(&st)?.keys_of(&scope, &who.owner())?,
        },
        Some(_) => return Err(ApiError::field("scope", "must be user or organization")),
    };
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "permissions": k.permissions, "prefix": k.prefix,
                "created_at": rfc3339(k.created_at),
                "last_used_at": k.last_used_at.map(rfc3339),
                "revoked_at": k.revoked_at.map(rfc3339),
                "organization_id": k.organization_id,
            })
        })
        .collect();
    Ok(ok(json!({ "keys": keys })))
}

pub async fn revoke_key(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    // Another user's key is not there for you (404), unless you are its organization's
    // admin; another organization's is not there at all.
    let scope = who.scope();
    let mut s = store(&st)?;
    let visible = s.key(&scope, &id)?.is_some_and(|k| who.is_admin() || k.created_by == who.owner());
    let r = if visible { s.revoke_key(&scope, &id, now_ms()) } else { Err(StoreError::NotFound) };
    r.map_err(missing("live key"))?;
    Ok(ok(json!({ "id": id, "revoked": true })))
}
