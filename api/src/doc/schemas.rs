//! `components.schemas`: the envelope, calls, accounts, webhooks.

use super::parts::{schema, time, time_or_null};
use crate::model::{CallStatus, PERMISSIONS, WEBHOOK_EVENTS};
use serde_json::{json, Value};

/// An E.164 number: `+`, then 2 to 15 digits, the first not 0 (as `http::is_e164`).
const E164: &str = r"^\+[1-9][0-9]{1,14}$";

/// Every permission as it is written in the document: `resource:action`, and the
/// `resource.action` spelling accepted for it.
fn permission_names() -> Vec<String> {
    let colon = PERMISSIONS.iter().map(|p| p.to_string());
    let dot = PERMISSIONS.iter().map(|p| p.replacen(':', ".", 1));
    colon.chain(dot).collect()
}

/// The envelope, errors and shared value types.
pub fn common_schemas() -> Value {
    let statuses: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "Envelope": {
            "type": "object",
            "description": "Every answer: `data` on success, `error` otherwise.",
            "required": ["success", "data", "error"],
            "properties": {
                "success": { "type": "boolean" },
                "data": { "description": "The result; `null` on error." },
                "error": { "oneOf": [{ "type": "null" }, schema("Error")] }
            }
        },
        "ErrorEnvelope": {
            "allOf": [
                schema("Envelope"),
                {
                    "type": "object",
                    "properties": {
                        "success": { "const": false },
                        "data": { "type": "null" },
                        "error": schema("Error")
                    }
                }
            ],
            "examples": [{
                "success": false,
                "data": null,
                "error": { "code": "invalid_request", "message": "phone_number: required" }
            }]
        },
        "Error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, for programs: `invalid_request`, `unauthorized`, `forbidden`, \
                        `not_found`, `method_not_allowed`, `call_not_live`, `idempotency_conflict`, \
                        `recording_not_ready`, `payload_too_large`, `range_not_satisfiable`, \
                        `rate_limited`, `internal`, `no_trunk`, `no_engine`.",
                    "examples": ["invalid_request"]
                },
                "message": { "type": "string", "description": "For people; may change." }
            }
        },
        "E164": {
            "type": "string",
            "pattern": E164,
            "description": "An E.164 number: `+`, then 2 to 15 digits, the first not 0.",
            "examples": ["+14155550123"]
        },
        "DateOrTime": {
            "description": "A UTC date (`2024-01-09`) or time (`2024-01-09T20:00:00Z`, fractions allowed).",
            "anyOf": [
                { "type": "string", "format": "date" },
                { "type": "string", "format": "date-time", "pattern": "Z$" }
            ]
        },
        "Permission": {
            "type": "string",
            "description": "`resource:action`; `resource.action` is the same permission.",
            "enum": permission_names()
        },
        "CallStatus": {
            "type": "string",
            "description": "Forward only: initiating → ringing → in-progress → completed, or a failure \
                (busy, no-answer, failed, canceled).",
            "enum": statuses
        }
    })
}

/// Calls, their events, and the bodies of the call operations.
pub fn call_schemas() -> Value {
    json!({
        "Call": {
            "type": "object",
            "required": [
                "id", "direction", "status", "contact_id", "phone_number", "from_number", "duration",
                "created_at", "answered_at", "ended_at", "sip_status", "reason", "record", "recording"
            ],
            "properties": {
                "id": { "type": "string", "examples": ["call_5f0c2a9d1e3b4c7a"] },
                "direction": {
                    "enum": ["outbound", "inbound"],
                    "description": "`outbound`: placed with create. `inbound`: came in over SIP; then \
                                    `phone_number` and `contact_id` are the caller (From's user part, not \
                                    always E.164) and `from_number` the number called (To's user part)."
                },
                "status": schema("CallStatus"),
                "contact_id": { "type": "string" },
                "phone_number": { "type": "string", "description": "E.164 for outbound calls." },
                "from_number": { "type": ["string", "null"] },
                "duration": {
                    "type": ["number", "null"],
                    "description": "Talk time in seconds, answer to end."
                },
                "created_at": time(),
                "answered_at": time_or_null(),
                "ended_at": time_or_null(),
                "sip_status": {
                    "type": ["integer", "null"],
                    "minimum": 100,
                    "maximum": 699,
                    "description": "The last SIP status seen."
                },
                "reason": {
                    "type": ["string", "null"],
                    "description": "Why it ended (a SIP reason phrase, `restart`, …)."
                },
                "record": { "type": "boolean" },
                "recording": {
                    "oneOf": [
                        { "type": "null" },
                        {
                            "type": "object",
                            "required": ["state", "url"],
                            "properties": {
                                "state": { "enum": ["recording", "ready", "failed"] },
                                "url": {
                                    "type": "string",
                                    "description": "Where to download it once `ready`.",
                                    "examples": ["/api/calls/call_5f0c2a9d1e3b4c7a/recording"]
                                }
                            }
                        }
                    ]
                }
            }
        },
        "CallEvent": {
            "type": "object",
            "required": ["at", "kind", "detail"],
            "properties": {
                "at": time(),
                "kind": {
                    "type": "string",
                    "description": "`status`, `dtmf`, `recording`, …",
                    "examples": ["status"]
                },
                "detail": {
                    "type": "string",
                    "description": "The new status, the digit, the recording's state, …",
                    "examples": ["ringing"]
                }
            }
        },
        "CallWithEvents": {
            "allOf": [
                schema("Call"),
                {
                    "type": "object",
                    "required": ["events"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "description": "Oldest first.",
                            "items": schema("CallEvent")
                        }
                    }
                }
            ]
        },
        "CallList": {
            "type": "object",
            "required": ["calls", "total"],
            "properties": {
                "calls": { "type": "array", "items": schema("Call") },
                "total": { "type": "integer", "minimum": 0, "description": "How many match in all." }
            }
        },
        "CreateCallRequest": {
            "type": "object",
            "required": ["contact_id", "phone_number"],
            "properties": {
                "contact_id": { "type": "string", "minLength": 1, "maxLength": 128 },
                "phone_number": schema("E164"),
                "from_number": { "oneOf": [{ "type": "null" }, schema("E164")] },
                "record": { "type": ["boolean", "null"], "default": false, "description": "Record the call." },
                "agent_url": {
                    "type": "string",
                    "format": "uri",
                    "pattern": "^wss?://",
                    "description": "Bridge the answered call to this WebSocket agent (dialtone connects to \
                        it). Needs `calls:originate_ai`.",
                    "examples": ["wss://agent.example.com/media"]
                },
                "agent_format": {
                    "enum": ["twilio", "l16-16k"],
                    "default": "twilio",
                    "description": "`twilio`: the Twilio Media Streams messages (base64 µ-law 8 kHz in JSON \
                        text frames). `l16-16k`: PCM16LE 16 kHz in binary frames, events as JSON text."
                },
                "sip_headers": {
                    "type": "object",
                    "maxProperties": 20,
                    "propertyNames": { "pattern": "^[Xx]-[A-Za-z0-9.!%*_+`'~-]{1,62}$" },
                    "additionalProperties": { "type": "string", "maxLength": 256 },
                    "description": "Custom `X-` headers the INVITE carries (context for the far end or its bot).",
                    "examples": [{ "X-Customer-Id": "c-42" }]
                },
                "ring_timeout": {
                    "type": ["integer", "null"], "minimum": 1, "maximum": 300,
                    "description": "Seconds it may ring; then it is cancelled and ends `no-answer`."
                },
                "max_duration": {
                    "type": ["integer", "null"], "minimum": 1, "maximum": 86400,
                    "description": "Seconds it may talk after the answer; then dialtone hangs up (`completed`, reason `max_duration`)."
                }
            },
            "examples": [{
                "contact_id": "contact_123",
                "phone_number": "+14155550123",
                "from_number": "+14155550100"
            }]
        },
        "TransferRequest": {
            "type": "object",
            "required": ["destination"],
            "properties": {
                "destination": {
                    "description": "A `sip:` URI or an E.164 number.",
                    "anyOf": [
                        { "type": "string", "pattern": "^sip:[^<>\\r\\n]+$" },
                        schema("E164")
                    ],
                    "examples": ["sip:alice@example.com", "+14155550199"]
                }
            }
        },
        "DtmfRequest": {
            "type": "object",
            "required": ["digits"],
            "properties": {
                "digits": {
                    "type": "string",
                    "pattern": "^[0-9*#A-Da-d]{1,32}$",
                    "description": "1 to 32 of 0-9, *, #, A-D.",
                    "examples": ["1234#"]
                }
            }
        },
        "ActionResult": {
            "type": "object",
            "required": ["id", "action"],
            "properties": {
                "id": { "type": "string" },
                "action": {
                    "enum": [
                        "hangup", "hold", "unhold", "transfer", "dtmf", "recording_start", "recording_stop"
                    ]
                }
            }
        }
    })
}

/// Users, API keys and webhooks.
pub fn account_schemas() -> Value {
    json!({
        "LoginRequest": {
            "type": "object",
            "required": ["email", "password"],
            "properties": {
                "email": { "type": "string", "format": "email", "maxLength": 254 },
                "password": { "type": "string", "format": "password" }
            }
        },
        "User": {
            "type": "object",
            "required": ["id", "email", "role", "organization_id"],
            "properties": {
                "id": { "type": "string" },
                "email": { "type": "string", "format": "email" },
                "role": { "type": "string", "examples": ["admin"] },
                "organization_id": { "type": "string", "examples": ["org_default"] }
            }
        },
        "SipUser": {
            "type": "object",
            "required": ["id", "username", "realm", "organization_id", "created_at"],
            "properties": {
                "id": { "type": "string", "examples": ["sipu_0123456789ab"] },
                "username": { "type": "string" },
                "realm": { "type": "string", "examples": ["dialtone"] },
                "organization_id": { "type": "string" },
                "created_at": time()
            }
        },
        "OrganizationPolicy": {
            "type": "object",
            "properties": {
                "max_concurrent_calls": {
                    "type": ["integer", "null"], "minimum": 1, "maximum": 1000000,
                    "description": "Calls it may have up at once (its API calls and the calls its REFERs place); null: no limit. Over it, create answers 429 `max_concurrent_calls` with `Retry-After`."
                },
                "max_calls_per_second": {
                    "type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 10000,
                    "description": "Calls it may start a second; null: no limit. Over it: 429 `max_calls_per_second` with `Retry-After`."
                },
                "allowed_destinations": {
                    "type": "array",
                    "items": { "type": "string", "pattern": "^\\+[0-9]{1,15}$" },
                    "description": "E.164 prefixes its calls (API, transfer, REFER) may go to; empty: anywhere. Elsewhere: 403 `destination_not_allowed`."
                }
            }
        },
        "CreateOrganizationRequest": {
            "allOf": [
                {
                    "type": "object",
                    "required": ["name"],
                    "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 128 } }
                },
                schema("OrganizationPolicy")
            ],
            "examples": [{ "name": "Acme", "max_concurrent_calls": 10, "allowed_destinations": ["+1"] }]
        },
        "Organization": {
            "allOf": [
                {
                    "type": "object",
                    "required": ["id", "name", "created_at"],
                    "properties": {
                        "id": { "type": "string", "examples": ["org_0123456789ab"] },
                        "name": { "type": "string" },
                        "created_at": time()
                    }
                },
                schema("OrganizationPolicy")
            ]
        },
        "LoginResult": {
            "type": "object",
            "required": ["token", "user"],
            "properties": {
                "token": { "type": "string", "description": "An HS256 JWT." },
                "user": schema("User")
            }
        },
        "CreateApiKeyRequest": {
            "type": "object",
            "required": ["name", "permissions"],
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": 128 },
                "permissions": { "type": "array", "items": schema("Permission") }
            },
            "examples": [{ "name": "My API Key", "permissions": ["calls:read", "calls:write"] }]
        },
        "ApiKey": {
            "type": "object",
            "required": ["id", "name", "permissions", "created_at", "last_used_at", "revoked_at"],
            "properties": {
                "id": { "type": "string", "examples": ["key_0123456789ab"] },
                "name": { "type": "string" },
                "permissions": { "type": "array", "items": schema("Permission") },
                "created_at": time(),
                "last_used_at": time_or_null(),
                "revoked_at": time_or_null()
            }
        },
        "NewApiKey": {
            "type": "object",
            "required": ["id", "name", "key", "permissions", "created_at"],
            "properties": {
                "id": { "type": "string" },
                "name": { "type": "string" },
                "key": { "type": "string", "description": "The secret: shown this once." },
                "permissions": { "type": "array", "items": schema("Permission") },
                "created_at": time()
            }
        },
        "WebhookEventName": { "type": "string", "enum": WEBHOOK_EVENTS },
        "CreateWebhookRequest": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": { "type": "string", "format": "uri", "pattern": "^https?://", "maxLength": 2048 },
                "events": {
                    "type": "array",
                    "items": schema("WebhookEventName"),
                    "description": "The events to send; absent or empty: all."
                },
                "secret": {
                    "type": "string",
                    "minLength": 16,
                    "maxLength": 256,
                    "description": "The HMAC key; generated when absent. Shown only in the answer."
                }
            }
        },
        "Webhook": {
            "type": "object",
            "required": ["id", "url", "events", "created_at"],
            "properties": {
                "id": { "type": "string", "examples": ["wh_0123456789ab"] },
                "url": { "type": "string", "format": "uri" },
                "events": {
                    "type": "array",
                    "items": schema("WebhookEventName"),
                    "description": "Empty: all events."
                },
                "created_at": time()
            }
        },
        "NewWebhook": {
            "allOf": [
                schema("Webhook"),
                {
                    "type": "object",
                    "required": ["secret"],
                    "properties": {
                        "secret": { "type": "string", "description": "The HMAC key: shown this once." }
                    }
                }
            ]
        },
        "WebhookDelivery": {
            "type": "object",
            "description": "The body of every webhook POST.",
            "required": ["id", "event", "created_at", "data"],
            "properties": {
                "id": {
                    "type": "string",
                    "description": "The event's id, the same on every retry.",
                    "examples": ["evt_0123456789abcdef"]
                },
                "event": schema("WebhookEventName"),
                "created_at": time(),
                "data": {
                    "description": "A `Call` for `call.*`, `RecordingReady` or `DtmfReceived` otherwise."
                }
            }
        },
        "RecordingReady": {
            "type": "object",
            "required": ["call_id", "url"],
            "properties": { "call_id": { "type": "string" }, "url": { "type": "string" } }
        },
        "DtmfReceived": {
            "type": "object",
            "required": ["call_id", "digit"],
            "properties": {
                "call_id": { "type": "string" },
                "digit": { "type": "string", "pattern": "^[0-9*#A-D]$" }
            }
        },
        "Wav": { "type": "string", "contentMediaType": "audio/wav" }
    })
}
