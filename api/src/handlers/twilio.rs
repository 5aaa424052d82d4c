//! The Twilio-compatible call update (issue 16): `POST
//! /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with `Status=completed` (or
//! `canceled`) ends the call whose `callSid` dialtone gave its voice agent. HTTP Basic auth
//! is an API key: the user name is the key's id (`key_…`, Twilio's API key SID) and the
//! password the key itself (its secret); the AccountSid in the path is that key id or the
//! key's organization id. Answers are Twilio-shaped: the call resource, or `{"code": 20404,
//! …}` for a call that is gone or was never ours to see.

use super::support::{body_bytes, store};
use crate::auth::{Allowed, Principal};
use crate::control::Action;
use crate::model::Call;
use crate::state::ApiState;
use crate::twilio::{call_id_of, call_sid, form, rfc2822};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Twilio's error body (its REST API's shape) with `status`.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

/// 404 / 20404, as Twilio answers for a resource that is not there.
pub fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found")
}

/// Anything else under `/2010-04-01/`: only the call update is there.
pub async fn elsewhere() -> Response {
    error(
        StatusCode::NOT_FOUND,
        20404,
        "The requested resource was not found: dialtone answers only POST \
         /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json (Status=completed or canceled)",
    )
}

/// Whether `account` is the principal's key id or its organization.
fn account_is(who: &Principal, account: &str) -> bool {
    match who {
        Principal::Key { id, org, .. } => account == id || account == org,
        Principal::User { org, .. } => account == org,
        Principal::Internal { org, sole } => org.as_deref().or(sole.as_deref()).is_none_or(|o| account == o),
    }
}

/// The call as Twilio's call resource.
fn resource(c: &Call, sid: &str, account: &str, status: &str) -> Value {
    json!({
        "sid": sid,
        "account_sid": account,
        "api_version": "2010-04-01",
        "to": if c.inbound { c.from_number.clone() } else { Some(c.phone_number.clone()) },
        "from": if c.inbound { Some(c.phone_number.clone()) } else { c.from_number.clone() },
        "status": status,
        "direction": if c.inbound { "inbound" } else { "outbound-api" },
        "date_created": rfc2822(c.created_at),
        "date_updated": rfc2822(crate::wire::now_ms()),
        "start_time": c.answered_at.map(rfc2822),
        "end_time": c.ended_at.map(rfc2822),
        "duration": c.duration.map(|d| (d.round() as i64).to_string()),
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    })
}

pub async fn update_call(
    State(st): State<ApiState>,
    Path((account, file)): Path<(String, String)>,
    Allowed(who): Allowed,
    req: Request,
) -> Response {
    let Some(sid) = file.strip_suffix(".json") else { return not_found() };
    let (Some(id), true) = (call_id_of(sid), account_is(&who, &account)) else { return not_found() };
    let body = match body_bytes(req).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let fields = form(&body);
    let status = fields.iter().find(|(k, _)| k == "Status").map(|(_, v)| v.as_str());
    let status = match status {
        Some(s @ ("completed" | "canceled")) => s.to_string(),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                21218,
                &format!("Status {other:?} is not supported: dialtone updates a call only to completed or canceled"),
            )
        }
        None => {
            return error(StatusCode::BAD_REQUEST, 21218, "Status is required (completed or canceled)");
        }
    };
    let call = match store(&st).map(|s| s.get_call(&who.scope(), &id)) {
        Ok(Ok(c)) => c,
        _ => return not_found(),
    };
    // A call already over is gone, as Twilio says of it.
    if call.status.is_final() {
        return not_found();
    }
    let Some(control) = st.control.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, 20003, "no call engine");
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), control.act(&id, Action::Hangup)).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(_))) => return not_found(),
        _ => return error(StatusCode::SERVICE_UNAVAILABLE, 20003, "the call engine did not answer"),
    }
    let sid = call_sid(&id).unwrap_or_else(|| sid.to_string());
    (StatusCode::OK, axum::Json(resource(&call, &sid, &account, &status))).into_response()
}
