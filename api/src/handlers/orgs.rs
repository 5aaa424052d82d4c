//! Organizations: the platform's owner creates them and reads every one; anyone holding
//! `orgs:read` reads its own. Their call policies go to the engine as they change.

use super::support::{json_body, store};
use crate::auth::{Allowed, Principal};
use crate::errors::ApiError;
use crate::model::{Organization, Scope};
use crate::state::ApiState;
use crate::store::Config;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

fn org_json(o: &Organization) -> Value {
    json!({
        "id": o.id, "name": o.name, "created_at": rfc3339(o.created_at),
        "max_concurrent_calls": o.max_concurrent_calls,
        "max_calls_per_second": o.max_calls_per_second,
        "allowed_destinations": o.allowed_destinations,
    })
}

/// Which organizations `who` reads: every one for the platform's owner (the internal key
/// only the one `X-Organization-Id` names, when it names one), else its own.
fn orgs_scope(who: &Principal) -> Scope {
    match who {
        Principal::Internal { .. } => who.scope(),
        _ if who.is_platform() => Scope::All,
        _ => who.scope(),
    }
}

/// The call policy fields of `o` over `base` (absent: unchanged; `null`: no limit).
fn policy(o: &Map<String, Value>, base: &mut Organization) -> Result<(), ApiError> {
    match o.get("max_concurrent_calls") {
        None => {}
        Some(Value::Null) => base.max_concurrent_calls = None,
        Some(v) => match v.as_u64().filter(|n| (1..=1_000_000).contains(n)) {
            Some(n) => base.max_concurrent_calls = Some(n as u32),
            None => {
                return Err(ApiError::field("max_concurrent_calls", "must be an integer from 1 to 1000000, or null"))
            }
        },
    }
    match o.get("max_calls_per_second") {
        None => {}
        Some(Value::Null) => base.max_calls_per_second = None,
        Some(v) => match v.as_f64().filter(|n| *n > 0.0 && *n <= 10_000.0) {
            Some(n) => base.max_calls_per_second = Some(n),
            None => {
                return Err(ApiError::field("max_calls_per_second", "must be a number over 0, at most 10000, or null"))
            }
        },
    }
    match o.get("allowed_destinations") {
        None => {}
        Some(Value::Null) => base.allowed_destinations.clear(),
        Some(Value::Array(list)) if list.len() <= 1000 => {
            let mut out = Vec::new();
            for p in list {
                match p.as_str().filter(|p| is_prefix(p)) {
                    Some(p) if !out.iter().any(|q| q == p) => out.push(p.to_string()),
                    Some(_) => {}
                    None => {
                        return Err(ApiError::field(
                            "allowed_destinations",
                            &format!("{p} is not an E.164 prefix such as \"+44\" or \"+1555\""),
                        ))
                    }
                }
            }
            base.allowed_destinations = out;
        }
        Some(_) => return Err(ApiError::field("allowed_destinations", "must be a list of E.164 prefixes")),
    }
    Ok(())
}

/// `+` and 1–15 digits.
fn is_prefix(p: &str) -> bool {
    p.strip_prefix('+').is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

pub async fn create_org(State(st): State<ApiState>, _: Allowed, req: Request) -> Result<Response, ApiError> {
    let o = json_body(req).await?;
    let name = match o.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => s.trim().to_string(),
        Some(_) => return Err(ApiError::field("name", "must be a non-empty string of at most 128 characters")),
        None => return Err(ApiError::field("name", "required")),
    };
    let mut org = Organization {
        id: format!("org_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        name,
        created_at: now_ms(),
        max_concurrent_calls: None,
        max_calls_per_second: None,
        allowed_destinations: Vec::new(),
    };
    policy(&o, &mut org)?;
    store(&st)?.insert_org(&org)?;
    st.config_changed(Config::Orgs);
    Ok((StatusCode::CREATED, ok(org_json(&org))).into_response())
}

pub async fn list_orgs(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let orgs = store(&st)?.orgs(&orgs_scope(&who))?;
    Ok(ok(json!({"organizations": orgs.iter().map(org_json).collect::<Vec<_>>()})))
}

pub async fn get_org(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    match store(&st)?.org(&orgs_scope(&who), &id)? {
        Some(o) => Ok(ok(org_json(&o))),
        None => Err(ApiError::not_found("organization")),
    }
}

pub async fn update_org(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let scope = orgs_scope(&who);
    let Some(mut org) = store(&st)?.org(&scope, &id)? else { return Err(ApiError::not_found("organization")) };
    let o = json_body(req).await?;
    if o.contains_key("name") {
        return Err(ApiError::field("name", "an organization's name does not change"));
    }
    policy(&o, &mut org)?;
    store(&st)?.set_org_policy(&scope, &org)?;
    st.config_changed(Config::Orgs);
    Ok(ok(org_json(&org)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_checked_field_by_field() {
        let mut org = Organization {
            id: "org_x".into(),
            name: "x".into(),
            created_at: 0,
            max_concurrent_calls: Some(2),
            max_calls_per_second: None,
            allowed_destinations: vec!["+44".into()],
        };
        let body = |v: Value| v.as_object().cloned().unwrap();
        policy(&body(json!({"max_calls_per_second": 0.5, "allowed_destinations": ["+1555", "+1555"]})), &mut org)
            .unwrap();
        assert_eq!(org.max_concurrent_calls, Some(2), "absent: unchanged");
        assert_eq!((org.max_calls_per_second, org.allowed_destinations.clone()), (Some(0.5), vec!["+1555".into()]));
        policy(&body(json!({"max_concurrent_calls": null})), &mut org).unwrap();
        assert_eq!(org.max_concurrent_calls, None);
        for bad in [
            json!({"max_concurrent_calls": 0}),
            json!({"max_concurrent_calls": "3"}),
            json!({"max_calls_per_second": -1}),
            json!({"allowed_destinations": ["44"]}),
            json!({"allowed_destinations": "+44"}),
        ] {
            let e = policy(&body(bad.clone()), &mut org).unwrap_err();
            let field = bad.as_object().unwrap().keys().next().unwrap().clone();
            assert!(e.message.starts_with(&field), "{bad}: {}", e.message);
        }
    }
}
