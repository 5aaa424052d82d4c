//! Phone numbers (issue 15): a number (or a pattern of them) of an organization, and what
//! its inbound calls do ([`InboundAction`]). A number is one organization's: another
//! taking it is a 409. A `webhook` action gets a signing secret (`whsec_…`), shown to the
//! number's organization; the engine learns every number each time one changes.

use super::support::{json_body, missing, store};
use super::webhooks::new_secret;
use crate::auth::Allowed;
use crate::errors::ApiError;
use crate::model::NumberRow;
use crate::routing::{is_pattern, parse_action, InboundAction};
use crate::state::ApiState;
use crate::store::Config;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

fn number_json(n: &NumberRow) -> Value {
    json!({
        "id": n.id, "organization_id": n.organization_id, "number": n.number, "action": n.action.to_json(),
        "fallback": n.fallback.as_ref().map(InboundAction::to_json), "webhook_secret": n.webhook_secret,
        "webhook_timeout_ms": n.webhook_timeout_ms, "record": n.record, "max_duration": n.max_duration,
        "pre_answer": n.pre_answer, "created_at": rfc3339(n.created_at),
    })
}

/// The fields of `o` over `base`: the ones given replace it, `null` clears an optional
/// one; `number` and `action` are required for a new number (`is_new`). Then the webhook
/// secret: kept while the action stays a webhook, made when it becomes one, dropped
/// otherwise.
fn fields(o: &Map<String, Value>, base: &mut NumberRow, is_new: bool) -> Result<(), ApiError> {
    match o.get("number") {
        None if is_new => return Err(ApiError::field("number", "required")),
        None => {}
        Some(Value::String(s)) if is_pattern(s) => base.number = s.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "number",
                "must be an E.164 number (\"+15550100\"), a prefix ending in * (\"+1555*\"), or *",
            ))
        }
    }
    match o.get("action") {
        None if is_new => return Err(ApiError::field("action", "required")),
        None => {}
        Some(v) => base.action = parse_action(v, true).map_err(|why| ApiError::field("action", &why))?,
    }
    match o.get("fallback") {
        None => {}
        Some(Value::Null) => base.fallback = None,
        Some(v) => base.fallback = Some(parse_action(v, false).map_err(|why| ApiError::field("fallback", &why))?),
    }
    match o.get("webhook_timeout_ms") {
        None => {}
        Some(v) => match v.as_u64().filter(|n| (100..=10_000).contains(n)) {
            Some(n) => base.webhook_timeout_ms = n as u32,
            None => return Err(ApiError::field("webhook_timeout_ms", "must be an integer from 100 to 10000")),
        },
    }
    match o.get("record") {
        None => {}
        Some(Value::Bool(b)) => base.record = *b,
        Some(_) => return Err(ApiError::field("record", "must be true or false")),
    }
    match o.get("max_duration") {
        None => {}
        Some(Value::Null) => base.max_duration = None,
        Some(v) => match v.as_u64().filter(|n| (1..=86_400).contains(n)) {
            Some(n) => base.max_duration = Some(n as u32),
            None => return Err(ApiError::field("max_duration", "must be an integer from 1 to 86400, or null")),
        },
    }
    match o.get("pre_answer") {
        None => {}
        Some(Value::Null) => base.pre_answer = None,
        Some(Value::String(p)) if crate::routing::is_prompt_name(p) => base.pre_answer = Some(p.clone()),
        Some(_) => {
            return Err(ApiError::field("pre_answer", "must be a prompt's file name ([A-Za-z0-9._-], .wav), or null"))
        }
    }
    match (&base.action, &base.webhook_secret) {
        (InboundAction::Webhook { .. }, Some(_)) => {}
        (InboundAction::Webhook { .. }, None) => base.webhook_secret = Some(new_secret()),
        _ => base.webhook_secret = None,
    }
    Ok(())
}

pub async fn create_number(
    State(st): State<ApiState>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let organization_id = who.org()?;
    let o = json_body(req).await?;
    let mut n = NumberRow {
        id: format!("num_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        organization_id,
        number: String::new(),
        action: InboundAction::Echo,
        fallback: None,
        webhook_secret: None,
        webhook_timeout_ms: 3000,
        record: false,
        max_duration: None,
        created_at: now_ms(),
        pre_answer: None,
    };
    fields(&o, &mut n, true)?;
    store(&st)?.insert_number(&n)?;
    st.config_changed(Config::Numbers);
    Ok((StatusCode::CREATED, ok(number_json(&n))).into_response())
}

pub async fn list_numbers(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let numbers = store(&st)?.numbers(&who.scope())?;
    Ok(ok(json!({"numbers": numbers.iter().map(number_json).collect::<Vec<_>>()})))
}

pub async fn get_number(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let n = store(&st)?.number(&who.scope(), &id).map_err(missing("number"))?;
    Ok(ok(number_json(&n)))
}

pub async fn update_number(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let scope = who.scope();
    let mut n = store(&st)?.number(&scope, &id).map_err(missing("number"))?;
    let o = json_body(req).await?;
    fields(&o, &mut n, false)?;
    store(&st)?.update_number(&scope, &n).map_err(missing("number"))?;
    st.config_changed(Config::Numbers);
    Ok(ok(number_json(&n)))
}

pub async fn delete_number(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    store(&st)?.delete_number(&who.scope(), &id).map_err(missing("number"))?;
    st.config_changed(Config::Numbers);
    Ok(ok(json!({"id": id, "deleted": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> NumberRow {
        NumberRow {
            id: "num_1".into(),
            organization_id: "org_a".into(),
            number: String::new(),
            action: InboundAction::Echo,
            fallback: None,
            webhook_secret: None,
            webhook_timeout_ms: 3000,
            record: false,
            max_duration: None,
            created_at: 0,
            pre_answer: None,
        }
    }

    #[test]
    fn a_webhook_action_has_a_secret_while_it_lasts() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        let mut n = row();
        let hook = json!({"number": "+15550100", "action": {"type": "webhook", "url": "https://x.example/call"}});
        fields(&body(hook), &mut n, true).unwrap();
        let secret = n.webhook_secret.clone().unwrap();
        assert!(secret.starts_with("whsec_") && secret.len() == 38, "{secret}");
        assert!(secret[6..].bytes().all(|b| b.is_ascii_hexdigit()));
        fields(&body(json!({"record": true, "fallback": {"type": "reject", "status": 486}})), &mut n, false).unwrap();
        assert_eq!(n.webhook_secret.as_deref(), Some(secret.as_str()), "kept while it stays a webhook");
        fields(&body(json!({"action": {"type": "echo"}})), &mut n, false).unwrap();
        assert_eq!(n.webhook_secret, None);
    }

    #[test]
    fn each_field_is_checked() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        assert!(fields(&body(json!({"action": {"type": "echo"}})), &mut row(), true)
            .unwrap_err()
            .message
            .starts_with("number: "));
        assert!(fields(&body(json!({"number": "*"})), &mut row(), true).unwrap_err().message.starts_with("action: "));
        let e = fields(&body(json!({"action": {"type": "dance"}})), &mut row(), false).unwrap_err();
        assert!(e.message.starts_with("action: unknown type"), "{}", e.message);
        for bad in [
            json!({"number": "15550100"}),
            json!({"number": null}),
            json!({"action": null}),
            json!({"fallback": {"type": "webhook", "url": "https://x.example/"}}),
            json!({"webhook_timeout_ms": 99}),
            json!({"record": 1}),
            json!({"max_duration": 0}),
        ] {
            let e = fields(&body(bad.clone()), &mut row(), false).unwrap_err();
            let field = bad.as_object().unwrap().keys().next().unwrap().clone();
            assert!(e.message.starts_with(&format!("{field}: ")), "{bad}: {}", e.message);
        }
    }
}
