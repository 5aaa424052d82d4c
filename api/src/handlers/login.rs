//! A user logs in for a JWT.

use super::support::{json_body, store};
use crate::auth::{issue_jwt, verify_password};
use crate::errors::ApiError;
use crate::limits::{client_addr, too_many};
use crate::model::{PERMISSIONS, PLATFORM_PERMISSION};
use crate::state::ApiState;
use crate::wire::now_ms;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub async fn login(State(st): State<ApiState>, req: Request) -> Result<Response, ApiError> {
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
    // An admin holds every permission of its organization; the platform's own
    // (`orgs:write`) only if it was given it (the first admin).
    let perms = match ok_user.role.as_str() {
        "admin" => PERMISSIONS
            .iter()
            .filter(|p| **p != PLATFORM_PERMISSION || ok_user.permissions.iter().any(|q| q == *p))
            .map(|p| p.to_string())
            .collect(),
        _ => ok_user.permissions.clone(),
    };
    let token = issue_jwt(&st.jwt_secret, &ok_user.id, &perms, now_ms() / 1000);
    let user = json!({"id": ok_user.id, "email": ok_user.email, "role": ok_user.role,
                      "organization_id": ok_user.organization_id});
    // The seed's shape (`token`, `user` at the top) inside the envelope every answer has.
    Ok(Json(
        json!({"success": true, "data": {"token": token, "user": user}, "error": null, "token": token, "user": user}),
    )
    .into_response())
}
