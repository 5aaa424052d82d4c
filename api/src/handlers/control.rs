//! Acting on a live call: each action is handed to the engine ([`CallControl`]), which
//! answers with what it did.

use super::support::{is_e164, json_body, read, store};
use crate::auth::{Allowed, Principal};
use crate::control::Action;
use crate::errors::ApiError;
use crate::model::CallStatus;
use crate::state::ApiState;
use crate::wire::ok;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Checks that the call exists and is live, and hands `action` to the engine; answers with
/// what the engine did (202 once the request is out). The route's permission was checked
/// ([`Allowed`]).
async fn act(st: &ApiState, who: &Principal, id: &str, action: Action) -> Result<Response, ApiError> {
    let name = engine_act(st, who, id, action).await?;
    Ok((StatusCode::ACCEPTED, ok(json!({"id": id, "action": name}))).into_response())
}

/// [`act`]'s steps up to the engine's answer: the action's name once the engine did it.
pub(super) async fn engine_act(
    st: &ApiState,
    who: &Principal,
    id: &str,
    action: Action,
) -> Result<&'static str, ApiError> {
    // Another organization's call is not there (404).
    let call = store(st)?.get_call(&who.scope(), id)?;
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
    // Several nodes: a call's media is on the node that has it (requests about the call
    // itself are sent there; a conference's room is on one node and cannot seat it).
    if let Some(cluster) = &st.cluster {
        let id = id.to_string();
        let node = read(st, move |s| s.call_node(&id)).await?;
        if let Some(node) = node.filter(|n| *n != cluster.node) {
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                code: "call_on_another_node",
                message: format!(
                    "the call is on node {node}, this is {}: a conference's calls must all be on its node \
                     (the first call seated chooses it)",
                    cluster.node
                ),
            });
        }
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
        Action::Transfer(_) | Action::TransferReplacing(_) => "transfer",
        Action::Dtmf(_) => "dtmf",
        Action::Record(true) => "recording_start",
        Action::Record(false) => "recording_stop",
        Action::Bridge(_) => "bridge",
        Action::Unbridge => "unbridge",
        Action::Conference { .. } => "conference",
        Action::LeaveConference => "conference_leave",
    };
    let reply = control.act(id, action);
    match tokio::time::timeout(std::time::Duration::from_secs(10), reply).await {
        Ok(Ok(Ok(()))) => Ok(name),
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

pub async fn hangup(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    act(&st, &who, &id, Action::Hangup).await
}

pub async fn hold(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    act(&st, &who, &id, Action::Hold(true)).await
}

pub async fn unhold(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    act(&st, &who, &id, Action::Hold(false)).await
}

pub async fn transfer(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let o = json_body(req).await?;
    if let Some(v) = o.get("replaces_call_id") {
        // Attended: the far end takes the other call's place (REFER with Replaces).
        let other = match v {
            Value::String(s) if !s.is_empty() && s.len() <= 64 && *s != id => s.clone(),
            _ => return Err(ApiError::field("replaces_call_id", "must be another live call's id")),
        };
        if o.get("destination").is_some() {
            return Err(ApiError::field("destination", "not with replaces_call_id"));
        }
        answered_peer(&st, &who, &other)?;
        return act(&st, &who, &id, Action::TransferReplacing(other)).await;
    }
    let dest = match o.get("destination") {
        Some(Value::String(s))
            if (s.starts_with("sip:") && s.len() > 4 && !s.contains(['<', '>', '\r', '\n'])) || is_e164(s) =>
        {
            s.clone()
        }
        Some(_) => return Err(ApiError::field("destination", "must be a sip: URI or an E.164 number")),
        None => return Err(ApiError::field("destination", "required")),
    };
    act(&st, &who, &id, Action::Transfer(dest)).await
}

pub async fn bridge(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let o = json_body(req).await?;
    let other = match o.get("call_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 && *s != id => s.clone(),
        Some(_) => return Err(ApiError::field("call_id", "must be another call's id")),
        None => return Err(ApiError::field("call_id", "required")),
    };
    // Another organization's call is not there (404), before anything of the other's is said.
    store(&st)?.get_call(&who.scope(), &id)?;
    answered_peer(&st, &who, &other)?;
    let answer = act(&st, &who, &id, Action::Bridge(other.clone())).await?;
    // A bridge takes both calls out of any conference they sat in.
    let mut s = store(&st)?;
    for call in [&id, &other] {
        s.leave_conference(None, call, crate::wire::now_ms())?;
    }
    Ok(answer)
}

/// The other call an action names (a bridge's, an attended transfer's): one the caller may
/// see (another organization's is not there: 404), and answered (409 otherwise).
pub(super) fn answered_peer(st: &ApiState, who: &Principal, other: &str) -> Result<(), ApiError> {
    let peer = store(st)?.get_call(&who.scope(), other)?;
    if peer.status != CallStatus::InProgress {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "call_not_live",
            message: format!("call {other} is {}", peer.status),
        });
    }
    Ok(())
}

pub async fn unbridge(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    act(&st, &who, &id, Action::Unbridge).await
}

pub async fn dtmf(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
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
    act(&st, &who, &id, Action::Dtmf(digits)).await
}

pub async fn recording_start(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    act(&st, &who, &id, Action::Record(true)).await
}

pub async fn recording_stop(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    act(&st, &who, &id, Action::Record(false)).await
}
