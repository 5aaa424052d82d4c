//! SIP users: softphones' accounts in an organization. Made with a password that is kept
//! only as HA1 (MD5 and SHA-256, for the realm); the engine learns the whole list each
//! time it changes.

use super::support::{json_body, missing, store};
use crate::auth::Allowed;
use crate::errors::ApiError;
use crate::model::SipUserRow;
use crate::state::ApiState;
use crate::store::Config;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn sip_user_json(u: &SipUserRow) -> Value {
    json!({"id": u.id, "username": u.username, "realm": u.realm, "organization_id": u.organization_id,
           "created_at": rfc3339(u.created_at)})
}

/// H(username:realm:password) with MD5 and with SHA-256, hex.
pub fn ha1s(username: &str, realm: &str, password: &str) -> (String, String) {
    let text = format!("{username}:{realm}:{password}");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let md5 = <md5::Md5 as md5::Digest>::digest(text.as_bytes());
    let sha = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    (hex(&md5), hex(&sha))
}

pub async fn create_sip_user(
    State(st): State<ApiState>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let organization_id = who.org()?;
    let o = json_body(req).await?;
    let username = match o.get("username") {
        Some(Value::String(u))
            if (1..=64).contains(&u.len())
                && u.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+')) =>
        {
            u.clone()
        }
        Some(_) => return Err(ApiError::field("username", "must be 1 to 64 of A-Z a-z 0-9 . _ - +")),
        None => return Err(ApiError::field("username", "required")),
    };
    let password = match o.get("password") {
        Some(Value::String(p)) if (12..=256).contains(&p.chars().count()) => p.clone(),
        Some(_) => return Err(ApiError::field("password", "must be 12 to 256 characters")),
        None => return Err(ApiError::field("password", "required")),
    };
    let (ha1_md5, ha1_sha256) = ha1s(&username, &st.sip_realm, &password);
    let u = SipUserRow {
        id: format!("sipu_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        username,
        ha1_md5,
        ha1_sha256,
        realm: st.sip_realm.to_string(),
        created_at: now_ms(),
        organization_id,
    };
    store(&st)?.insert_sip_user(&u)?;
    st.config_changed(Config::SipUsers);
    Ok((StatusCode::CREATED, ok(sip_user_json(&u))).into_response())
}

pub async fn list_sip_users(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let users = store(&st)?.sip_users(&who.scope())?;
    Ok(ok(json!({"sip_users": users.iter().map(sip_user_json).collect::<Vec<_>>()})))
}

pub async fn delete_sip_user(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    store(&st)?.delete_sip_user(&who.scope(), &id).map_err(missing("SIP user"))?;
    st.config_changed(Config::SipUsers);
    Ok(ok(json!({"id": id, "deleted": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_is_rfc_2617s() {
        // RFC 2617 §3.5's example user.
        let (md5, sha) = ha1s("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(md5, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(sha.len(), 64);
    }
}
