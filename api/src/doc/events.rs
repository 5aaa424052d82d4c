//! The webhook events as the document's top-level `webhooks`, and how they are delivered.

use super::parts::{body, parameter, schema};
use crate::model::WEBHOOK_EVENTS;
use crate::webhooks::{MAX_ATTEMPTS, MAX_BACKOFF_MS};
use serde_json::{json, Value};

/// What answering-machine detection says answered.
pub const ANSWERED_BY: [&str; 6] =
    ["human", "machine_start", "machine_end_beep", "machine_end_silence", "fax", "unknown"];

/// `call.completed` → `onCallCompleted`.
pub fn webhook_operation_id(event: &str) -> String {
    let mut id = String::from("on");
    for part in event.split(['.', '_']) {
        let mut c = part.chars();
        if let Some(first) = c.next() {
            id.extend(first.to_uppercase());
            id.push_str(c.as_str());
        }
    }
    id
}

/// The top-level `webhooks`: one POST per event, as a receiver sees it.
pub fn webhooks() -> Value {
    let mut out = serde_json::Map::new();
    for &event in WEBHOOK_EVENTS {
        let (data, what) = match event {
            "recording.ready" => (schema("RecordingReady"), "A call's recording is finished and can be downloaded."),
            "dtmf.received" => (schema("DtmfReceived"), "A DTMF digit was heard on a call."),
            "call.initiated" => (schema("Call"), "A call was created."),
            "call.ringing" => (schema("Call"), "The far end is ringing."),
            "call.answered" => (schema("Call"), "The call was answered."),
            "call.completed" => (schema("Call"), "The call ended after an answer."),
            "call.failed" => (schema("Call"), "The call ended unanswered: busy, no-answer, failed or canceled."),
            "call.answered_by" => (
                json!({
                    "type": "object",
                    "required": ["call_id", "answered_by", "decision_ms"],
                    "properties": {
                        "call_id": { "type": "string" },
                        "answered_by": { "enum": ANSWERED_BY },
                        "decision_ms": { "type": "integer", "description": "Audio analysed after the answer, ms." }
                    }
                }),
                "Answering-machine detection decided who answered a call made with `machine_detection`.",
            ),
            _ => (json!({ "type": "object" }), "An event."),
        };
        let op = json!({
            "post": {
                "tags": ["Webhooks"],
                "operationId": webhook_operation_id(event),
                "summary": format!("`{event}`: {what}"),
                "description": "Sent to every webhook subscribed to this event (or to all). Check the signature \
                    before trusting the body, and reject stale timestamps.",
                "parameters": [
                    parameter("WebhookTimestamp"),
                    parameter("WebhookSignature"),
                    parameter("WebhookEvent"),
                ],
                "requestBody": body(json!({
                    "allOf": [
                        schema("WebhookDelivery"),
                        { "type": "object", "properties": { "event": { "const": event }, "data": data } }
                    ]
                })),
                "responses": {
                    "2XX": { "description": "Delivered: the event is not sent again." },
                    "default": { "description": "Not delivered (as is no answer within 10 s): retried with backoff." }
                },
                "security": []
            }
        });
        out.insert(event.to_string(), op);
    }
    Value::Object(out)
}

/// How webhooks are delivered, signed and retried.
pub fn delivery() -> String {
    format!(
        "Events are delivered as `POST <url>` with a JSON body `{{id, event, created_at, data}}` and the headers \
         `X-Dialtone-Timestamp` (Unix seconds), `X-Dialtone-Event` and `X-Dialtone-Signature: sha256=<hex>`, the \
         HMAC-SHA256 under the webhook's secret of `\"<timestamp>.<body>\"` (the raw body bytes). A delivery that \
         fails (no answer within 10 s, or a status other than 2xx) is retried with exponential backoff (doubling, at \
         most {} min between tries) from an outbox persisted with the change that caused the event, so nothing is \
         lost across restarts; after {MAX_ATTEMPTS} tries the event is given up. Each webhook gets its events one at \
         a time, in the order they happened.",
        MAX_BACKOFF_MS / 60_000
    )
}
