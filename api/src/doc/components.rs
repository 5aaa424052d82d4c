//! `components`: security schemes, parameters, headers and the shared answers.

use super::parts::{header, ok_json, schema};
use crate::auth::JWT_LIFETIME_S;
use crate::wire::MAX_BODY;
use serde_json::{json, Value};

/// `components.securitySchemes`.
pub fn security_schemes() -> Value {
    json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "API key or JWT",
            "description": format!(
                "`Authorization: Bearer <token>`: an API key, or a JWT from `POST /api/v1/auth/user-login` \
                 (HS256, {} h).",
                JWT_LIFETIME_S / 3600
            )
        },
        "apiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An API key."
        },
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "An API key as HTTP Basic credentials: the key's id (`key_…`) as the user name, \
                the key itself as the password (how Twilio clients send an API key SID and secret)."
        },
        "internalKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Internal-Key",
            "description": "The server's `DIALTONE_INTERNAL_KEY`: every permission, no rate limit. For \
                trusted server-to-server calls only."
        }
    })
}

/// `components.parameters`.
pub fn parameters() -> Value {
    json!({
        "CallId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The call's id.",
            "schema": { "type": "string", "examples": ["call_5f0c2a9d1e3b4c7a"] }
        },
        "SipUserId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The SIP user's id.",
            "schema": { "type": "string", "examples": ["sipu_0123456789ab"] }
        },
        "TrunkId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The trunk's id.",
            "schema": { "type": "string", "examples": ["trk_0123456789ab"] }
        },
        "NumberId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The number's id.",
            "schema": { "type": "string", "examples": ["num_0123456789ab"] }
        },
        "ConferenceId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The conference's id.",
            "schema": { "type": "string", "examples": ["conf_0123456789abcdef"] }
        },
        "OrgId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The organization's id.",
            "schema": { "type": "string", "examples": ["org_0123456789ab"] }
        },
        "UserId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The user's id.",
            "schema": { "type": "string", "examples": ["user_0123456789ab"] }
        },
        "KeyId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The API key's id.",
            "schema": { "type": "string", "examples": ["key_0123456789ab"] }
        },
        "WebhookId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The webhook's id.",
            "schema": { "type": "string", "examples": ["wh_0123456789ab"] }
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "description": "Makes the create safe to retry: the same key (per caller) with the same body \
                returns the same call; with another body, 409 `idempotency_conflict`.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
        },
        "WebhookTimestamp": {
            "name": "X-Dialtone-Timestamp",
            "in": "header",
            "required": true,
            "description": "When this delivery was signed, Unix seconds.",
            "schema": { "type": "string", "pattern": "^[0-9]+$", "examples": ["1704830400"] }
        },
        "WebhookSignature": {
            "name": "X-Dialtone-Signature",
            "in": "header",
            "required": true,
            "description": "`sha256=` and the hex HMAC-SHA256, under the webhook's secret, of \
                `\"<X-Dialtone-Timestamp>.<raw body>\"`.",
            "schema": { "type": "string", "pattern": "^sha256=[0-9a-f]{64}$" }
        },
        "WebhookEvent": {
            "name": "X-Dialtone-Event",
            "in": "header",
            "description": "The event name, as in the body.",
            "schema": schema("WebhookEventName")
        }
    })
}

/// `components.headers`.
pub fn headers() -> Value {
    json!({
        "RetryAfter": {
            "description": "Seconds to wait before trying again.",
            "schema": { "type": "integer", "minimum": 1 }
        },
        "IdempotentReplayed": {
            "description": "`true` when the answer replays an earlier request with the same Idempotency-Key.",
            "schema": { "const": "true" }
        },
        "AcceptRanges": {
            "description": "Byte ranges are served.",
            "schema": { "const": "bytes" }
        },
        "ContentLength": {
            "description": "The bytes in this answer.",
            "schema": { "type": "integer", "minimum": 0 }
        },
        "ContentDisposition": {
            "description": "`attachment; filename=\"<call id>.wav\"`.",
            "schema": { "type": "string" }
        }
    })
}

/// `components.responses`: the errors, and the 202 of the call actions.
pub fn responses() -> Value {
    json!({
        "Accepted": ok_json("Handed to the engine.", schema("ActionResult")),
        "BadRequest": {
            "description": "`invalid_request`: a parameter, header or the body is invalid; the message \
                names the field (`phone_number: required`).",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "Unauthorized": {
            "description": "`unauthorized`: missing, invalid or expired credentials.",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "Forbidden": {
            "description": "`forbidden`: the credentials lack the permission this operation needs.",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "NotFound": {
            "description": "`not_found`: no such resource.",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "Conflict": {
            "description": "The resource is not in a state that allows this (`call_not_live`, \
                `idempotency_conflict`, `recording_not_ready`), or a unique field is taken (`conflict`).",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "PayloadTooLarge": {
            "description": format!("`payload_too_large`: the body is over {MAX_BODY} bytes."),
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "RangeNotSatisfiable": {
            "description": "`range_not_satisfiable`: the range is outside the file.",
            "headers": {
                "Content-Range": {
                    "description": "`bytes */<length>`.",
                    "schema": { "type": "string", "examples": ["bytes */96044"] }
                }
            },
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "TooManyRequests": {
            "description": "`rate_limited`: too many requests for this key or from this address.",
            "headers": { "Retry-After": header("RetryAfter") },
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "InternalError": {
            "description": "`internal`: the server failed; try again later.",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        },
        "ServiceUnavailable": {
            "description": "`no_trunk` or `no_engine`: the server cannot place or steer calls; \
                `node_unreachable`: several nodes share the store and the node that has the call does \
                not answer (its calls end `failed`, `node lost`, once its lease runs out).",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        }
    })
}
