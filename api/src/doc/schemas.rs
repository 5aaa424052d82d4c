//! `components.schemas`: the envelope, calls, accounts, webhooks, inbound routing (trunks,
//! numbers, the call webhook).

use super::parts::{schema, time, time_or_null};
use crate::control::AGENT_FORMATS;
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
                        `not_found`, `method_not_allowed`, `conflict`, `call_not_live`, `idempotency_conflict`, \
                        `recording_not_ready`, `payload_too_large`, `range_not_satisfiable`, \
                        `rate_limited`, `internal`, `no_trunk`, `no_engine`, `node_unreachable`.",
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
            "description": "Forward only: initiating → ringing → early-media (a 183 with SDP: media before \
                the answer, for calls made with `early_media`) → in-progress → completed, or a failure (busy, \
                no-answer, failed, canceled).",
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
                                    `phone_number` and `contact_id` are the caller (From's user part, as \
                                    E.164 when it reads as a number) and `from_number` the number called (E.164: \
                                    the Request-URI's, To's, P-Called-Party-ID's or Diversion's user)."
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
                },
                "organization_id": { "type": "string" },
                "referred_by": { "type": ["string", "null"], "description": "The call whose REFER placed it." },
                "sip_headers": {
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                    "description": "The `X-` headers of its INVITE: those create put on it, or those an inbound \
                        call came with."
                },
                "ring_timeout": { "type": ["integer", "null"] },
                "max_duration": { "type": ["integer", "null"] },
                "from_display_name": { "type": ["string", "null"], "description": "The caller's name it was placed with." },
                "asserted_identity": {
                    "type": ["string", "null"],
                    "description": "An inbound call's caller as its trunk asserted it (RFC 3325 `P-Asserted-Identity`, \
                        else `Remote-Party-ID`): a URI."
                },
                "number_id": { "type": ["string", "null"], "description": "The number an inbound call reached." },
                "early_media": { "type": "boolean", "description": "Created with `early_media`." },
                "machine_detection": { "enum": ["detect", "detect_message_end", null] },
                "answered_by": {
                    "oneOf": [{ "enum": super::events::ANSWERED_BY }, { "type": "null" }],
                    "description": "Who answered, once answering-machine detection has decided (also the \
                        `call.answered_by` webhook event and an `answered_by` call event)."
                },
                "answered_by_ms": {
                    "type": ["integer", "null"],
                    "description": "How much of the answered call's audio the decision took, ms."
                },
                "ended_by": {
                    "enum": ["remote", "dialtone", "network", null],
                    "description": "Who ended the call: `remote` (the other party hung up, cancelled or refused), \
                        `dialtone` (the API, a limit, the agent or a refusal of ours; `reason` says which) or \
                        `network` (no answer from the peer, a transport failure). Also an `ended_by` call event."
                },
                "turns": {
                    "type": ["object", "null"],
                    "description": "A voice-agent call's turn-taking, from speech detected on both directions: \
                        `summary` (turns, answered, response latency p50/p95/max ms, barge-ins, of them stopped and \
                        cleared, talk-over ms), `turns` (caller start/end, agent start, latency ms), `barge_ins` \
                        (when, time to stop, cleared) and `playout`, the health of the agent's audio: its `summary` \
                        (segments, gaps inside a segment where the playout ran dry and its audio came back within \
                        1 s, their ms and longest, `agent_gaps` (nothing was queued) vs `dialtone_gaps` (audio was \
                        waiting in the bridge), `bursts` (segments queued 500 ms or more ahead: sent faster than \
                        real time), `max_queued_ms`, `late_starts` (first audio waited 60 ms or more in dialtone), \
                        `max_start_delay_ms`) and its `segments` (start/end ms, audio ms, gaps, gap ms, max gap ms, \
                        dialtone gaps, max queued ms, start delay ms). Kept as the call ends (and so in \
                        `call.completed`)."
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
                "from_display_name": {
                    "type": ["string", "null"], "minLength": 1, "maxLength": 64,
                    "description": "The caller's name in From (and in `P-Asserted-Identity` where the trunk asserts it)."
                },
                "record": { "type": ["boolean", "null"], "default": false, "description": "Record the call." },
                "early_media": {
                    "type": ["boolean", "null"], "default": false,
                    "description": "Start the media at a 183 with SDP, before the answer: the carrier's ringback or \
                        announcement is recorded and sent to `agent_url`. Without an agent the early media is \
                        always recorded; with one that did not ask, the media starts at the answer."
                },
                "machine_detection": {
                    "enum": ["detect", "detect_message_end", null],
                    "description": "Answering-machine detection on the callee's audio once answered: `detect` \
                        decides `human`, `machine_start`, `fax` or `unknown` as soon as it can; `detect_message_end` \
                        waits, for a machine, for the end of its greeting (`machine_end_beep`, \
                        `machine_end_silence`). The result is kept on the call (`answered_by`), sent as the \
                        `call.answered_by` webhook event, and to the agent as an `answered_by` message."
                },
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
            "description": "Blind (`destination`) or attended (`replaces_call_id`: the far end is REFERred to the \
                other call's far end with `Replaces`, RFC 3891/5589, and takes that call's place).",
            "oneOf": [{ "required": ["destination"] }, { "required": ["replaces_call_id"] }],
            "properties": {
                "replaces_call_id": { "type": "string", "description": "Another live call of yours." },
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
                "prefix": {
                    "type": ["string", "null"], "examples": ["dk_1a2b"],
                    "description": "The secret's first characters (16 of its 128 bits), to tell keys apart."
                },
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
        "CallSip": {
            "type": "object",
            "required": ["call_id", "messages", "truncated"],
            "properties": {
                "call_id": { "type": "string" },
                "truncated": { "type": "boolean", "description": "A dialog had more than 100 messages." },
                "messages": { "type": "array", "items": {
                    "type": "object",
                    "required": ["at", "offset_ms", "direction", "transport", "peer", "label", "first_line", "cseq", "text"],
                    "properties": {
                        "at": time(),
                        "offset_ms": { "type": "integer", "description": "Since the first message." },
                        "direction": { "enum": ["sent", "received"] },
                        "transport": { "enum": ["udp", "tcp", "tls"] },
                        "peer": { "type": "string", "examples": ["127.0.0.1:5080"] },
                        "label": { "type": "string", "examples": ["INVITE", "200 OK"] },
                        "first_line": { "type": "string" },
                        "cseq": { "type": "string", "examples": ["1 INVITE"] },
                        "text": { "type": "string", "description": "The whole message (cut at 8 KiB)." }
                    }
                }}
            }
        },
        "QualitySide": {
            "type": "object",
            "required": ["packets", "loss_pct", "jitter_ms", "rtt_ms", "mos"],
            "properties": {
                "packets": { "type": "integer" },
                "loss_pct": { "type": ["number", "null"] },
                "jitter_ms": { "type": ["number", "null"] },
                "rtt_ms": { "type": ["number", "null"], "description": "From RTCP (RFC 3550 §6.4.1)." },
                "mos": { "type": ["number", "null"], "minimum": 1, "maximum": 4.5 }
            }
        },
        "CallQuality": {
            "type": "object",
            "required": ["call_id", "codec", "interval_ms", "samples", "summary"],
            "properties": {
                "call_id": { "type": "string" },
                "codec": { "type": ["string", "null"] },
                "interval_ms": { "type": "integer" },
                "samples": { "type": "array", "items": {
                    "type": "object",
                    "required": ["t_ms", "inbound", "outbound"],
                    "properties": {
                        "t_ms": { "type": "integer", "description": "Since the media started." },
                        "inbound": schema("QualitySide"),
                        "outbound": schema("QualitySide")
                    }
                }},
                "summary": { "type": ["object", "null"], "properties": {
                    "inbound": { "type": "object" }, "outbound": { "type": "object" }
                }}
            }
        },
        "DeliveryAttempt": {
            "type": "object",
            "description": "One attempt to deliver one event to one webhook.",
            "required": ["id", "event", "call_id", "attempt", "at", "outcome", "status_code", "response", "error",
                         "duration_ms", "next_retry_at"],
            "properties": {
                "id": { "type": "integer" },
                "event": schema("WebhookEventName"),
                "call_id": { "type": ["string", "null"], "description": "The call the event is about." },
                "attempt": { "type": "integer", "minimum": 1 },
                "at": time(),
                "outcome": {
                    "enum": ["delivered", "failed", "given_up"],
                    "description": "`failed`: to be tried again at `next_retry_at`; `given_up`: never again."
                },
                "status_code": { "type": ["integer", "null"], "description": "The receiver's HTTP status, if it answered." },
                "response": { "type": ["string", "null"], "description": "The first KiB of its answer." },
                "error": { "type": ["string", "null"], "description": "Why it failed." },
                "duration_ms": { "type": "integer" },
                "next_retry_at": { "oneOf": [time(), { "type": "null" }] }
            }
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

/// A number pattern: E.164, a prefix ending in `*`, or `*` (as `routing::is_pattern`).
const PATTERN: &str = r"^(\+[1-9][0-9]{1,14}|(\+[1-9][0-9]{0,14})?\*)$";

/// Trunks, numbers, inbound actions, and the call webhook's request and answer.
pub fn routing_schemas() -> Value {
    json!({
        "TrunkFields": {
            "type": "object",
            "description": "A trunk's settable fields. In a PATCH, the ones given replace the stored ones and \
                `null` clears an optional one (a list: empties it).",
            "properties": {
                "name": {
                    "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
                    "description": "Unique in the organization."
                },
                "uri": {
                    "type": "string", "pattern": "^sips?:", "maxLength": 256,
                    "description": "Where INVITEs go; `;transport=` udp, tcp or tls.",
                    "examples": ["sip:sip.carrier.example;transport=tls"]
                },
                "username": {
                    "type": ["string", "null"], "minLength": 1, "maxLength": 128,
                    "description": "The digest user for its challenges."
                },
                "password": {
                    "type": ["string", "null"], "minLength": 1, "maxLength": 128, "writeOnly": true,
                    "description": "The digest password: never shown (`has_password`)."
                },
                "allowed_cidrs": {
                    "type": ["array", "null"], "maxItems": 50,
                    "items": { "type": "string", "examples": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"] },
                    "description": "IPv4/IPv6 addresses or CIDRs it may send us requests from, besides its own."
                },
                "prefixes": {
                    "type": ["array", "null"], "maxItems": 100,
                    "items": { "type": "string", "pattern": "^\\+[0-9]{1,15}$" },
                    "description": "The E.164 prefixes it serves (the longest match wins); empty: every number."
                },
                "priority": {
                    "type": "integer", "minimum": 0, "maximum": 1000, "default": 100,
                    "description": "Among trunks matching as long a prefix, lower first."
                },
                "max_concurrent_calls": {
                    "type": ["integer", "null"], "minimum": 1, "maximum": 100000,
                    "description": "Calls it may carry at once; null: no limit."
                },
                "max_calls_per_second": {
                    "type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 10000,
                    "description": "Calls it may start a second; null: no limit."
                },
                "codecs": {
                    "type": ["array", "null"], "uniqueItems": true,
                    "items": { "enum": ["opus", "G722", "PCMU", "PCMA"] },
                    "default": [],
                    "description": "Codecs offered, in this order; empty: all, dialtone's order."
                },
                "srtp": {
                    "enum": ["off", "optional", "mandatory", null],
                    "description": "null: `DIALTONE_SRTP`."
                },
                "asserted_identity": {
                    "type": "boolean", "default": false,
                    "description": "Send `P-Asserted-Identity` with the caller's number (RFC 3325)."
                },
                "privacy": {
                    "type": "boolean", "default": false,
                    "description": "Send `Privacy: id` (RFC 3325): the carrier withholds the caller's number."
                },
                "register": {
                    "type": "boolean", "default": false,
                    "description": "Keep a registration with it (`sip:<username>@<host>`, RFC 3261 §10); needs \
                        `username` and `password`. Its state is `status.registered`."
                },
                "options_interval": {
                    "type": ["integer", "null"], "minimum": 5, "maximum": 3600,
                    "description": "Send OPTIONS this often (seconds) and mark it down when unanswered; null: never."
                }
            }
        },
        "TrunkRequest": {
            "allOf": [schema("TrunkFields"), { "type": "object", "required": ["name", "uri"] }],
            "examples": [{
                "name": "carrier-eu", "uri": "sip:sip.carrier.example;transport=tls", "username": "acct-1",
                "password": "s3cret", "prefixes": ["+44", "+33"], "codecs": ["opus", "PCMA"], "srtp": "mandatory"
            }]
        },
        "TrunkStatus": {
            "type": "object",
            "description": "How the engine sees the trunk now.",
            "required": ["up", "registered", "options_rtt_ms", "last_options_at", "last_options_status", "calls"],
            "properties": {
                "up": { "type": "boolean", "description": "Answering (its OPTIONS are answered, or it is not probed)." },
                "registered": {
                    "type": ["boolean", "null"],
                    "description": "Registered with it; null: it is not registered with."
                },
                "options_rtt_ms": {
                    "type": ["integer", "null"], "minimum": 0,
                    "description": "The last OPTIONS round trip."
                },
                "last_options_at": {
                    "oneOf": [time(), { "type": "null" }],
                    "description": "When the last OPTIONS was answered or given up; null: not probed (yet)."
                },
                "last_options_status": {
                    "type": ["integer", "null"],
                    "description": "Its answer's status; null: no answer (or not probed)."
                },
                "calls": {
                    "type": "integer", "minimum": 0,
                    "description": "Calls on it now (and places held for calls about to go out)."
                }
            }
        },
        "Trunk": {
            "type": "object",
            "description": "A stored trunk of an organization (`source: api`).",
            "required": [
                "id", "organization_id", "source", "name", "uri", "username", "has_password", "allowed_cidrs",
                "prefixes", "priority", "max_concurrent_calls", "max_calls_per_second", "codecs", "srtp",
                "asserted_identity", "privacy", "register", "options_interval", "created_at", "status"
            ],
            "properties": {
                "id": { "type": "string", "examples": ["trk_0123456789ab"] },
                "organization_id": { "type": "string" },
                "source": { "const": "api" },
                "name": { "type": "string" },
                "uri": { "type": "string" },
                "username": { "type": ["string", "null"] },
                "has_password": { "type": "boolean", "description": "A password is set (it is never shown)." },
                "allowed_cidrs": { "type": "array", "items": { "type": "string" } },
                "prefixes": { "type": "array", "items": { "type": "string" } },
                "priority": { "type": "integer" },
                "max_concurrent_calls": { "type": ["integer", "null"] },
                "max_calls_per_second": { "type": ["number", "null"] },
                "codecs": { "type": "array", "items": { "enum": ["opus", "G722", "PCMU", "PCMA"] } },
                "srtp": { "enum": ["off", "optional", "mandatory", null] },
                "asserted_identity": { "type": "boolean" },
                "privacy": { "type": "boolean" },
                "register": { "type": "boolean" },
                "options_interval": { "type": ["integer", "null"] },
                "created_at": time(),
                "status": {
                    "oneOf": [{ "type": "null" }, schema("TrunkStatus")],
                    "description": "null: the engine does not report it (yet)."
                }
            }
        },
        "SettingsTrunk": {
            "type": "object",
            "description": "A trunk of the platform (`DIALTONE_TRUNK*`, the settings file's `[[trunk]]`): every \
                organization's calls may use it; read-only here.",
            "required": ["id", "name", "uri", "source", "organization_id", "status"],
            "properties": {
                "id": { "type": "string", "examples": ["default"] },
                "name": { "type": "string" },
                "uri": { "type": "string" },
                "source": { "const": "settings" },
                "organization_id": { "type": "null" },
                "status": schema("TrunkStatus")
            }
        },
        "InboundAction": {
            "description": "What an inbound call to a number does.",
            "oneOf": [
                {
                    "type": "object",
                    "title": "agent",
                    "description": "Answer and bridge to a voice agent over WebSocket.",
                    "required": ["type", "url"],
                    "properties": {
                        "type": { "const": "agent" },
                        "url": { "type": "string", "pattern": "^wss?://" },
                        "format": { "enum": AGENT_FORMATS, "default": "twilio" }
                    }
                },
                {
                    "type": "object",
                    "title": "webhook",
                    "description": "Ask this URL what to do (`CallWebhookRequest`, answered by a \
                        `CallWebhookAnswer`) while the caller hears ringing. Not as a fallback.",
                    "required": ["type", "url"],
                    "properties": {
                        "type": { "const": "webhook" },
                        "url": { "type": "string", "pattern": "^https?://", "maxLength": 2048 }
                    }
                },
                {
                    "type": "object",
                    "title": "play",
                    "description": "Answer and play a WAV prompt from `DATA_DIR/prompts/`.",
                    "required": ["type", "prompt"],
                    "properties": {
                        "type": { "const": "play" },
                        "prompt": { "type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*\\.[Ww][Aa][Vv]$", "maxLength": 128 }
                    }
                },
                {
                    "type": "object",
                    "title": "echo",
                    "description": "Answer and send the caller's audio back.",
                    "required": ["type"],
                    "properties": { "type": { "const": "echo" } }
                },
                {
                    "type": "object",
                    "title": "reject",
                    "description": "Refuse with a SIP status.",
                    "required": ["type"],
                    "properties": {
                        "type": { "const": "reject" },
                        "status": { "type": "integer", "minimum": 400, "maximum": 699, "default": 603 }
                    }
                },
                {
                    "type": "object",
                    "title": "forward",
                    "description": "Send the caller elsewhere (a 302 to the target).",
                    "required": ["type", "to"],
                    "properties": {
                        "type": { "const": "forward" },
                        "to": {
                            "anyOf": [{ "type": "string", "pattern": "^sips?:" }, schema("E164")],
                            "examples": ["sip:desk@pbx.example", "+14155550199"]
                        }
                    }
                }
            ],
            "discriminator": { "propertyName": "type" }
        },
        "NumberFields": {
            "type": "object",
            "description": "A number's settable fields. In a PATCH, the ones given replace the stored ones and \
                `null` clears an optional one.",
            "properties": {
                "number": {
                    "type": "string", "pattern": PATTERN,
                    "description": "E.164, a prefix ending in `*`, or `*`; unique across organizations.",
                    "examples": ["+14155550100", "+1415*"]
                },
                "action": schema("InboundAction"),
                "fallback": {
                    "oneOf": [{ "type": "null" }, schema("InboundAction")],
                    "description": "What the call does when the call webhook does not answer in time or answers \
                        badly (not a `webhook`); null: 480."
                },
                "webhook_timeout_ms": {
                    "type": "integer", "minimum": 100, "maximum": 10000, "default": 3000,
                    "description": "How long the call webhook has to answer."
                },
                "record": { "type": "boolean", "default": false, "description": "Record its calls." },
                "max_duration": {
                    "type": ["integer", "null"], "minimum": 1, "maximum": 86400,
                    "description": "Hang its calls up after this many seconds of talk."
                },
                "pre_answer": {
                    "type": ["string", "null"], "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*\\.[Ww][Aa][Vv]$", "maxLength": 128,
                    "description": "A prompt in `DATA_DIR/prompts/` its callers hear before the answer, as early \
                        media in a 183 with SDP (reliable, RFC 3262, when the caller supports 100rel: the 200 waits \
                        for its PRACK); then the action answers, or a `reject` refuses with its status."
                }
            }
        },
        "NumberRequest": {
            "allOf": [schema("NumberFields"), { "type": "object", "required": ["number", "action"] }],
            "examples": [{
                "number": "+14155550100",
                "action": { "type": "webhook", "url": "https://app.example/calls/incoming" },
                "fallback": { "type": "agent", "url": "wss://agent.example/media" }
            }]
        },
        "Number": {
            "type": "object",
            "required": [
                "id", "organization_id", "number", "action", "fallback", "webhook_secret", "webhook_timeout_ms",
                "record", "max_duration", "pre_answer", "created_at"
            ],
            "properties": {
                "id": { "type": "string", "examples": ["num_0123456789ab"] },
                "organization_id": { "type": "string" },
                "number": { "type": "string", "pattern": PATTERN },
                "action": schema("InboundAction"),
                "fallback": { "oneOf": [{ "type": "null" }, schema("InboundAction")] },
                "webhook_secret": {
                    "type": ["string", "null"], "pattern": "^whsec_[0-9a-f]{32}$",
                    "description": "For a `webhook` action: the key of the call webhook's signature \
                        (`X-Dialtone-Signature`); null otherwise."
                },
                "webhook_timeout_ms": { "type": "integer" },
                "record": { "type": "boolean" },
                "max_duration": { "type": ["integer", "null"] },
                "pre_answer": { "type": ["string", "null"] },
                "created_at": time()
            }
        },
        "CallWebhookRequest": {
            "type": "object",
            "description": "What dialtone POSTs to a number's `webhook` URL when a call to it comes in, while the \
                caller hears ringing. Signed like the event webhooks, with the number's `webhook_secret`: \
                `X-Dialtone-Timestamp` (Unix seconds) and `X-Dialtone-Signature: sha256=<hex>`, the HMAC-SHA256 of \
                `\"<timestamp>.<raw body>\"`. Answer 200 with a `CallWebhookAnswer` within the number's \
                `webhook_timeout_ms`; otherwise (or answered badly) its `fallback` holds, else 480.",
            "required": ["event", "call_id", "from", "to", "number", "number_id", "trunk", "sip_headers", "asserted_identity"],
            "properties": {
                "event": { "const": "call.incoming" },
                "call_id": { "type": "string", "examples": ["call_5f0c2a9d1e3b4c7a"] },
                "from": { "type": "string", "description": "The caller (From's user, E.164 when it reads as one)." },
                "to": { "type": "string", "description": "The number called, as E.164 (from the Request-URI, To, \
                    P-Called-Party-ID or Diversion, the first that matches a number)." },
                "number_id": { "type": "string", "description": "The number's id (`num_…`)." },
                "number": { "type": "string", "description": "The number (or pattern) that matched.", "pattern": PATTERN },
                "trunk": {
                    "type": ["string", "null"],
                    "description": "The id of the trunk the call came from; null: not from a known trunk."
                },
                "sip_headers": {
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                    "description": "The `X-` headers the INVITE carried.",
                    "examples": [{ "X-Customer-Id": "c-42" }]
                },
                "asserted_identity": {
                    "type": ["string", "null"],
                    "description": "The `P-Asserted-Identity` the trunk vouched for, if any."
                }
            }
        },
        "CallWebhookAnswer": {
            "type": "object",
            "description": "What a call webhook answers: what the call does.",
            "required": ["action"],
            "properties": {
                "action": {
                    "enum": ["answer", "play", "echo", "forward", "reject"],
                    "description": "`answer`: bridge to the voice agent `agent_url`. `play`: play `prompt`. \
                        `echo`. `forward`: to `to`. `reject`: with `status`."
                },
                "agent_url": { "type": "string", "pattern": "^wss?://", "description": "For `answer`." },
                "agent_format": { "enum": AGENT_FORMATS, "default": "twilio", "description": "For `answer`." },
                "custom_parameters": {
                    "type": "object", "maxProperties": 20,
                    "propertyNames": { "maxLength": 64 },
                    "additionalProperties": { "type": "string", "maxLength": 1024 },
                    "description": "Handed to the agent in `start.customParameters` (never SIP headers)."
                },
                "record": { "type": ["boolean", "null"], "default": false, "description": "Record the call." },
                "prompt": { "type": "string", "description": "For `play`: a `.wav` file in `DATA_DIR/prompts/`." },
                "to": { "type": "string", "description": "For `forward`: a `sip:`/`sips:` URI or an E.164 number." },
                "status": {
                    "type": "integer", "minimum": 400, "maximum": 699, "default": 603,
                    "description": "For `reject`."
                }
            },
            "examples": [
                {
                    "action": "answer", "agent_url": "wss://agent.example/media",
                    "custom_parameters": { "tier": "gold" }, "record": true
                },
                { "action": "reject", "status": 486 }
            ]
        }
    })
}
