//! Conferences: rooms an organization seats its live calls in; each call is sent the sum
//! of the others (never itself). The engine mixes; the store keeps who sat in which room
//! and when, and whether they were heard. A voice agent can be a member too (`agent_url`):
//! dialtone connects to it; it hears the room and is heard.

use super::control::engine_act;
use super::support::{json_body, missing, store};
use crate::auth::Allowed;
use crate::control::{Action, AgentMember, AGENT_FORMATS};
use crate::errors::ApiError;
use crate::model::ConferenceRow;
use crate::state::ApiState;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn conference_json(c: &ConferenceRow) -> Value {
    let participants: Vec<Value> = c
        .participants
        .iter()
        .map(|p| {
            let (call_id, agent_id) = match p.agent_url {
                Some(_) => (None, Some(&p.member)),
                None => (Some(&p.member), None),
            };
            json!({"call_id": call_id, "agent_id": agent_id, "agent_url": p.agent_url, "muted": p.muted,
                   "active": p.active(), "joined_at": rfc3339(p.joined_at), "left_at": p.left_at.map(rfc3339)})
        })
        .collect();
    json!({"id": c.id, "organization_id": c.organization_id, "name": c.name,
           "status": if c.ended_at.is_some() { "ended" } else { "active" },
           "created_at": rfc3339(c.created_at), "ended_at": c.ended_at.map(rfc3339),
           "participants": participants})
}

/// `muted` from the body: a boolean, `default` when absent (`None` default: required).
fn muted(o: &serde_json::Map<String, Value>, default: Option<bool>) -> Result<bool, ApiError> {
    match (o.get("muted"), default) {
        (Some(Value::Bool(m)), _) => Ok(*m),
        (Some(_), _) => Err(ApiError::field("muted", "must be true or false")),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(ApiError::field("muted", "required")),
    }
}

pub async fn create_conference(
    State(st): State<ApiState>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let organization_id = who.org()?;
    let o = json_body(req).await?;
    let name = match o.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if (1..=64).contains(&n.chars().count()) && !n.chars().any(char::is_control) => {
            Some(n.clone())
        }
        Some(_) => return Err(ApiError::field("name", "must be 1 to 64 characters")),
    };
    let c = ConferenceRow {
        id: format!("conf_{:016x}", rand::random::<u64>()),
        organization_id,
        name,
        created_at: now_ms(),
        ended_at: None,
        participants: Vec::new(),
    };
    store(&st)?.insert_conference(&c)?;
    Ok((StatusCode::CREATED, ok(conference_json(&c))).into_response())
}

pub async fn list_conferences(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let list = store(&st)?.conferences(&who.scope(), 100)?;
    Ok(ok(json!({"conferences": list.iter().map(conference_json).collect::<Vec<_>>()})))
}

pub async fn get_conference(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let c = store(&st)?.conference(&who.scope(), &id).map_err(missing("conference"))?;
    Ok(ok(conference_json(&c)))
}

/// Ends the conference: every call still seated leaves it (and hears its own source again;
/// no call is hung up).
pub async fn end_conference(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let c = store(&st)?.conference(&who.scope(), &id).map_err(missing("conference"))?;
    for p in c.participants.iter().filter(|p| p.active()) {
        if p.agent_url.is_some() {
            let _ = agent_member(&st, AgentMember::Leave { id: p.member.clone() }).await;
        } else {
            // A call that ended meanwhile has left already.
            let _ = engine_act(&st, &who, &p.member, Action::LeaveConference).await;
        }
    }
    let mut s = store(&st)?;
    s.end_conference(&who.scope(), &id, now_ms()).map_err(missing("conference"))?;
    Ok(ok(conference_json(&s.conference(&who.scope(), &id)?)))
}

/// The conference, if the caller's and not ended (409 `conference_ended`).
fn open_conference(st: &ApiState, who: &crate::auth::Principal, id: &str) -> Result<ConferenceRow, ApiError> {
    let c = store(st)?.conference(&who.scope(), id).map_err(missing("conference"))?;
    if c.ended_at.is_some() {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "conference_ended",
            message: format!("conference {id} has ended"),
        });
    }
    Ok(c)
}

/// Hands a conference's agent member change to the engine; what it did.
async fn agent_member(st: &ApiState, member: AgentMember) -> Result<(), ApiError> {
    let Some(control) = st.control.clone() else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_engine",
            message: "no call engine".into(),
        });
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), control.conference_agent(member)).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(refusal))) => Err(refusal.into()),
        _ => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_engine",
            message: "the call engine did not answer".into(),
        }),
    }
}

/// Seats a voice agent (`agent_url`, needs `calls:originate_ai`) in the conference.
async fn add_agent(
    st: &ApiState,
    who: &crate::auth::Principal,
    id: &str,
    o: &serde_json::Map<String, Value>,
    muted: bool,
) -> Result<Response, ApiError> {
    if o.contains_key("call_id") {
        return Err(ApiError::field("call_id", "not with agent_url"));
    }
    who.require("calls:originate_ai")?;
    let url = match o.get("agent_url") {
        Some(Value::String(u))
            if (u.starts_with("ws://") || u.starts_with("wss://"))
                && u.len() <= 2048
                && !u.contains(char::is_whitespace) =>
        {
            u.clone()
        }
        _ => return Err(ApiError::field("agent_url", "must be a ws:// or wss:// URL")),
    };
    let format = match o.get("agent_format") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if AGENT_FORMATS.contains(&f.as_str()) => Some(f.clone()),
        Some(_) => return Err(ApiError::field("agent_format", "must be \"twilio\" or \"l16-16k\"")),
    };
    open_conference(st, who, id)?;
    let agent = format!("agt_{:016x}", rand::random::<u64>());
    let join = AgentMember::Join {
        conference: id.to_string(),
        id: agent.clone(),
        url: url.clone(),
        format: format.clone(),
        muted,
    };
    agent_member(st, join).await?;
    let mut s = store(st)?;
    s.join_agent(id, &agent, &url, format.as_deref(), muted, now_ms())?;
    Ok((StatusCode::CREATED, ok(conference_json(&s.conference(&who.scope(), id)?))).into_response())
}

/// Seats a live call (answered, the caller's) in the conference, or a voice agent.
pub async fn add_participant(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let o = json_body(req).await?;
    if o.contains_key("agent_url") {
        let muted = muted(&o, Some(false))?;
        return add_agent(&st, &who, &id, &o, muted).await;
    }
    let call = match o.get("call_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => s.clone(),
        Some(_) => return Err(ApiError::field("call_id", "must be a call's id")),
        None => return Err(ApiError::field("call_id", "required (or agent_url)")),
    };
    let muted = muted(&o, Some(false))?;
    open_conference(&st, &who, &id)?;
    engine_act(&st, &who, &call, Action::Conference { id: id.clone(), muted }).await?;
    let mut s = store(&st)?;
    s.join_conference(&id, &call, muted, now_ms())?;
    Ok((StatusCode::CREATED, ok(conference_json(&s.conference(&who.scope(), &id)?))).into_response())
}

/// The conference (the caller's, not ended) and the member seated in it now (404
/// otherwise): `true` for a voice agent, `false` for a call.
fn seated(st: &ApiState, who: &crate::auth::Principal, id: &str, member: &str) -> Result<bool, ApiError> {
    let c = open_conference(st, who, id)?;
    match c.participants.iter().find(|p| p.member == member && p.active()) {
        Some(p) => Ok(p.agent_url.is_some()),
        None => Err(ApiError::not_found("participant")),
    }
}

/// Mutes or unmutes a seated call: a muted one hears the room but is not heard.
pub async fn update_participant(
    State(st): State<ApiState>,
    Path((id, call)): Path<(String, String)>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let o = json_body(req).await?;
    let muted = muted(&o, None)?;
    if seated(&st, &who, &id, &call)? {
        agent_member(&st, AgentMember::Mute { id: call.clone(), muted }).await?;
        store(&st)?.mute_agent(&id, &call, muted).map_err(missing("participant"))?;
    } else {
        engine_act(&st, &who, &call, Action::Conference { id: id.clone(), muted }).await?;
        store(&st)?.mute_participant(&id, &call, muted).map_err(missing("participant"))?;
    }
    let s = store(&st)?;
    Ok(ok(conference_json(&s.conference(&who.scope(), &id)?)))
}

/// Takes a call out of the conference: it hears its own source again (it is not hung up).
pub async fn remove_participant(
    State(st): State<ApiState>,
    Path((id, call)): Path<(String, String)>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    if seated(&st, &who, &id, &call)? {
        agent_member(&st, AgentMember::Leave { id: call.clone() }).await?;
        let mut s = store(&st)?;
        s.leave_agent(&id, &call, now_ms())?;
        return Ok(ok(conference_json(&s.conference(&who.scope(), &id)?)));
    }
    match engine_act(&st, &who, &call, Action::LeaveConference).await {
        // A call that has ended (or is no longer seated in the engine) has left already.
        Ok(_) => {}
        Err(e) if e.code == "call_not_live" => {}
        Err(e) => return Err(e),
    }
    let mut s = store(&st)?;
    s.leave_conference(Some(&id), &call, now_ms())?;
    Ok(ok(conference_json(&s.conference(&who.scope(), &id)?)))
}
