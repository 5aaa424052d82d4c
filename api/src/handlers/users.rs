//! Users who log in for a JWT: created in the creator's organization (in another only by
//! the platform's owner), seen and managed by their organization only.

use super::support::{granted, json_body, missing, store};
use crate::auth::{hash_password, Allowed};
use crate::errors::ApiError;
use crate::model::{Scope, User, PERMISSIONS, PLATFORM_PERMISSION};
use crate::state::ApiState;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn user_json(u: &User) -> Value {
    json!({"id": u.id, "email": u.email, "role": u.role, "permissions": u.permissions,
           "created_at": rfc3339(u.created_at), "organization_id": u.organization_id})
}

pub async fn create_user(
    State(st): State<ApiState>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let o = json_body(req).await?;
    let organization_id = match o.get("organization_id") {
        None | Some(Value::Null) => who.org()?,
        Some(Value::String(id)) if who.is_platform() => match store(&st)?.org(&Scope::All, id)? {
            Some(org) => org.id,
            None => return Err(ApiError::field("organization_id", "no such organization")),
        },
        Some(Value::String(_)) => {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: "organization_id: only the platform's owner places users in another organization".into(),
            })
        }
        Some(_) => return Err(ApiError::field("organization_id", "must be an organization id")),
    };
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
    // An admin holds every permission of its organization; a user those given. Only the
    // platform's owner holds the platform's (`orgs:write`), and gives it to nobody.
    if o.get("permissions").and_then(Value::as_array).is_some_and(|l| l.iter().any(|p| p == PLATFORM_PERMISSION)) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!("permissions: {PLATFORM_PERMISSION} belongs to the platform's owner only"),
        });
    }
    let all: Vec<Value> = PERMISSIONS.iter().filter(|p| **p != PLATFORM_PERMISSION).map(|p| Value::from(*p)).collect();
    let list = match (role.as_str(), o.get("permissions")) {
        ("admin", _) => all.as_slice(),
        (_, None) => &[],
        (_, Some(Value::Array(list))) => list.as_slice(),
        (_, Some(_)) => return Err(ApiError::field("permissions", "must be a list such as [\"calls:read\"]")),
    };
    let permissions = granted(&who, list, "user")?;
    let user = User {
        id: format!("user_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        email,
        // argon2 takes tens of milliseconds: off the async workers.
        password_hash: tokio::task::spawn_blocking(move || hash_password(&password)).await.unwrap_or_default(),
        role,
        permissions,
        created_at: now_ms(),
        organization_id,
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

pub async fn list_users(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let users = store(&st)?.list_users(&who.scope())?;
    Ok(ok(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()})))
}

pub async fn delete_user(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    store(&st)?.delete_user(&who.scope(), &id).map_err(missing("user"))?;
    Ok(ok(json!({"id": id, "deleted": true})))
}
