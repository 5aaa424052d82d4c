//! Each operation of the control API as the document describes it: parameters, request
//! body, answers. The route table ([`crate::routes`]) names them, with each route's method,
//! path, tag, `operationId`, summary and permission.

use super::events::delivery;
use super::parts::{body, envelope, header, ok_json, parameter, response, response_as, schema};
use crate::auth::JWT_LIFETIME_S;
use serde_json::{json, Value};

/// `healthz`.
pub fn healthz() -> Value {
    json!({
        "responses": {
            "200": ok_json("Alive.", json!({
                "type": "object",
                "required": ["status"],
                "properties": { "status": { "const": "ok" } }
            })),
            "503": ok_json("Draining: a SIGTERM asked this node to finish its calls and take no new ones.", json!({
                "type": "object",
                "required": ["status"],
                "properties": { "status": { "const": "draining" } }
            }))
        }
    })
}

/// `metrics`.
pub fn metrics() -> Value {
    json!({
        "description": "Prometheus text format 0.0.4 (not the envelope): calls by status, webhook \
            deliveries and outbox, requests refused by rate limits, and the engine's SIP, RTP and call \
            counters.",
        "responses": {
            "200": {
                "description": "The metrics.",
                "content": {
                    "text/plain": {
                        "schema": { "type": "string" },
                        "example": "# TYPE dialtone_calls gauge\ndialtone_calls{status=\"completed\"} 3\n"
                    }
                }
            }
        }
    })
}

/// `getOpenApi`.
pub fn get_open_api() -> Value {
    json!({
        "description": "The OpenAPI 3.1 document itself (not wrapped in the envelope).",
        "responses": {
            "200": {
                "description": "The document.",
                "content": { "application/json": { "schema": { "type": "object" } } }
            }
        }
    })
}

/// `userLogin`.
pub fn user_login() -> Value {
    json!({
        "description": format!(
            "Checks the e-mail and password and returns an HS256 JWT valid for {} h, to send as \
             `Authorization: Bearer <token>`. It carries the user's permissions (an admin holds them \
             all). `token` and `user` are also at the top level of the answer, as the seed shows them. \
             Attempts are limited per client address (429).",
            JWT_LIFETIME_S / 3600
        ),
        "requestBody": body(schema("LoginRequest")),
        "responses": {
            "200": {
                "description": "Logged in.",
                "content": {
                    "application/json": {
                        "schema": {
                            "allOf": [
                                envelope(schema("LoginResult")),
                                {
                                    "type": "object",
                                    "required": ["token", "user"],
                                    "properties": { "token": { "type": "string" }, "user": schema("User") }
                                }
                            ]
                        }
                    }
                }
            },
            "400": response("BadRequest"),
            "401": response_as("Unauthorized", "`unauthorized`: wrong e-mail or password."),
            "413": response("PayloadTooLarge"),
            "429": response_as("TooManyRequests", "`rate_limited`: too many attempts from this address."),
            "500": response("InternalError")
        }
    })
}

/// `createApiKey`.
pub fn create_api_key() -> Value {
    json!({
        "description": "The key itself (`key`) is in this answer only: it is stored hashed. A key \
            cannot hold a permission its creator lacks (403).",
        "requestBody": body(schema("CreateApiKeyRequest")),
        "responses": {
            "201": ok_json("Created; `key` is shown this once.", schema("NewApiKey")),
            "400": response("BadRequest"),
            "403": response_as(
                "Forbidden",
                "`forbidden`: the caller lacks `keys:write`, or a permission it asks the key to hold."
            ),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listApiKeys`.
pub fn list_api_keys() -> Value {
    json!({
        "description": "The caller's own keys (a key lists its creator's); `scope=organization` lists every key, for admins.",
        "parameters": [{
            "name": "scope", "in": "query", "required": false,
            "schema": { "type": "string", "enum": ["user", "organization"], "default": "user" }
        }],
        "responses": {
            "200": ok_json("The keys.", json!({
                "type": "object",
                "required": ["keys"],
                "properties": { "keys": { "type": "array", "items": schema("ApiKey") } }
            }))
        }
    })
}

/// `revokeApiKey`.
pub fn revoke_api_key() -> Value {
    json!({
        "description": "The key stops working at once; it stays listed with `revoked_at`. Another user's key answers 404 unless the caller is an admin.",
        "parameters": [parameter("KeyId")],
        "responses": {
            "200": ok_json("Revoked.", json!({
                "type": "object",
                "required": ["id", "revoked"],
                "properties": { "id": { "type": "string" }, "revoked": { "const": true } }
            })),
            "404": response_as("NotFound", "`not_found`: no such live key.")
        }
    })
}

/// `createUser`.
pub fn create_user() -> Value {
    json!({
        "description": "The password is stored as argon2id. `role: admin` holds every permission; a \
            `user` holds the `permissions` given, never more than the creator holds (403).",
        "requestBody": body(json!({
            "type": "object",
            "required": ["email", "password"],
            "properties": {
                "email": { "type": "string", "format": "email", "maxLength": 254 },
                "password": { "type": "string", "minLength": 8, "maxLength": 256 },
                "role": { "enum": ["user", "admin"], "default": "user" },
                "permissions": { "type": "array", "items": schema("Permission") }
            }
        })),
        "responses": {
            "201": ok_json("Created.", schema("User")),
            "400": response("BadRequest"),
            "409": response_as("Conflict", "`conflict`: a user with that e-mail exists."),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listUsers`.
pub fn list_users() -> Value {
    json!({
        "responses": {
            "200": ok_json("The users.", json!({
                "type": "object",
                "required": ["users"],
                "properties": { "users": { "type": "array", "items": schema("User") } }
            }))
        }
    })
}

/// `deleteUser`.
pub fn delete_user() -> Value {
    json!({
        "parameters": [parameter("UserId")],
        "responses": {
            "200": ok_json("Deleted.", json!({
                "type": "object",
                "required": ["id", "deleted"],
                "properties": { "id": { "type": "string" }, "deleted": { "const": true } }
            })),
            "404": response_as("NotFound", "`not_found`: no such user.")
        }
    })
}

/// `createCall`.
pub fn create_call() -> Value {
    json!({
        "description": "Stores the call as `initiating` and sends the INVITE through the trunk; follow \
            it with `GET /api/calls/{id}` or webhooks. With `agent_url` the answered call is bridged to \
            that WebSocket agent, which also needs `calls:originate_ai`. With `Idempotency-Key`, a retry \
            with the same key and body returns the same call (200, `Idempotent-Replayed: true`) \
            instead of placing another.",
        "parameters": [parameter("IdempotencyKey")],
        "requestBody": body(schema("CreateCallRequest")),
        "responses": {
            "201": ok_json("Created; the call is being placed.", schema("Call")),
            "200": {
                "description": "A replay: this Idempotency-Key was already used with this body; the \
                    call it created, as it is now.",
                "headers": { "Idempotent-Replayed": header("IdempotentReplayed") },
                "content": { "application/json": { "schema": envelope(schema("Call")) } }
            },
            "400": response("BadRequest"),
            "403": response_as(
                "Forbidden",
                "`forbidden`: the caller lacks `calls:write` (or `calls:originate_ai` with `agent_url`)."
            ),
            "409": response_as(
                "Conflict",
                "`idempotency_conflict`: this Idempotency-Key was used with a different body."
            ),
            "413": response("PayloadTooLarge"),
            "503": response_as("ServiceUnavailable", "`no_trunk`: no trunk to place calls through.")
        }
    })
}

/// `listCalls`.
pub fn list_calls() -> Value {
    json!({
        "parameters": [
            {
                "name": "limit",
                "in": "query",
                "description": "How many calls at most.",
                "schema": { "type": "integer", "minimum": 1, "maximum": 5000, "default": 50 }
            },
            {
                "name": "offset",
                "in": "query",
                "description": "How many to skip.",
                "schema": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 0 }
            },
            {
                "name": "status",
                "in": "query",
                "description": "Only calls with this status.",
                "schema": schema("CallStatus")
            },
            {
                "name": "contact_id",
                "in": "query",
                "description": "Only calls for this contact.",
                "schema": { "type": "string" }
            },
            {
                "name": "from",
                "in": "query",
                "description": "Only calls created at or after this UTC date or time.",
                "schema": schema("DateOrTime")
            },
            {
                "name": "to",
                "in": "query",
                "description": "Only calls created before this UTC date or time.",
                "schema": schema("DateOrTime")
            },
            {
                "name": "number",
                "in": "query",
                "description": "Only calls whose called or calling number contains this (a substring; `%` and `_` \
                    are literal).",
                "schema": { "type": "string", "minLength": 1, "maxLength": 64 }
            },
            {
                "name": "direction",
                "in": "query",
                "description": "Only inbound or only outbound calls.",
                "schema": { "type": "string", "enum": ["inbound", "outbound"] }
            },
            {
                "name": "format",
                "in": "query",
                "description": "`csv`: the page as CSV (RFC 4180, a header line, `Content-Disposition: attachment`, \
                    the match count in `X-Total-Count`; a field a spreadsheet would run as a formula gets a \
                    leading `'`).",
                "schema": { "type": "string", "enum": ["json", "csv"], "default": "json" }
            }
        ],
        "responses": {
            "200": {
                "description": "The page of calls, and how many match in all.",
                "content": {
                    "application/json": { "schema": envelope(schema("CallList")) },
                    "text/csv": {
                        "schema": {
                            "type": "string",
                            "description": "id,direction,status,phone_number,from_number,contact_id,created_at,\
                                answered_at,ended_at,duration,sip_status,reason"
                        }
                    }
                }
            },
            "400": response("BadRequest")
        }
    })
}

/// `liveCalls`.
pub fn live_calls() -> Value {
    json!({
        "responses": { "200": ok_json("The live calls.", schema("CallList")) }
    })
}

/// `callEvents`.
pub fn call_events() -> Value {
    json!({
        "description": "A stream of server-sent events (`text/event-stream`, kept open): first `event: snapshot` \
            with `data` `{calls, total}` (the live calls, as `GET /api/calls/live`), then `event: call` with `data` \
            the call (as in `GET /api/calls/{id}`, without `events`) each time one of the caller's organization's \
            calls is created or changes (status, DTMF, recording, an event), `event: resync` with `data` \
            `{missed}` when the stream fell more than 1024 changes behind (fetch the live calls again), and a \
            comment line (`: keep-alive`) every 15 s while idle. Browsers read it with `fetch` and the \
            `Authorization` header (`EventSource` cannot send one; no credential belongs in a URL).",
        "responses": {
            "200": {
                "description": "The stream.",
                "content": { "text/event-stream": { "schema": { "type": "string" } } }
            }
        }
    })
}

/// `getCall`.
pub fn get_call() -> Value {
    json!({
        "parameters": [parameter("CallId")],
        "responses": {
            "200": ok_json("The call.", schema("CallWithEvents")),
            "404": response_as("NotFound", "`not_found`: no such call.")
        }
    })
}

/// `getCallSip`.
pub fn get_call_sip() -> Value {
    json!({
        "description": "Every SIP message of the call's dialogs that dialtone sent or received (REGISTER and \
            OPTIONS aside), in order: at most 100 per dialog (then `truncated`), each at most 8 KiB. While the \
            call runs, those seen so far (kept in memory, bounded); stored with the call at its end.",
        "parameters": [parameter("CallId")],
        "responses": {
            "200": ok_json("The call's messages.", schema("CallSip")),
            "404": response_as("NotFound", "`not_found`: no such call.")
        }
    })
}

/// `getCallQuality`.
pub fn get_call_quality() -> Value {
    json!({
        "description": "Per direction, each `interval_ms` (1 s, doubling past 600 samples): packets, loss, \
            jitter, round trip and an estimated MOS (ITU-T G.107 E-model with its defaults; G.711 with packet loss \
            concealment: Ie 0, Bpl 25.1). Inbound figures are dialtone's own; outbound ones are what the peer's \
            RTCP reports say (null without them). While the call runs, the latest; stored with the call at its end.",
        "parameters": [parameter("CallId")],
        "responses": {
            "200": ok_json("The call's quality.", schema("CallQuality")),
            "404": response_as("NotFound", "`not_found`: no such call.")
        }
    })
}

/// `downloadRecording`.
pub fn download_recording() -> Value {
    json!({
        "description": "The whole file, or one byte range with `Range: bytes=a-b`, `bytes=a-` or \
            `bytes=-n` (206). Several ranges or another unit get the whole file.",
        "parameters": [
            parameter("CallId"),
            {
                "name": "Range",
                "in": "header",
                "description": "One byte range (RFC 9110 §14).",
                "schema": { "type": "string", "pattern": "^bytes=", "examples": ["bytes=0-1023"] }
            }
        ],
        "responses": {
            "200": {
                "description": "The recording.",
                "headers": {
                    "Accept-Ranges": header("AcceptRanges"),
                    "Content-Length": header("ContentLength"),
                    "Content-Disposition": header("ContentDisposition")
                },
                "content": { "audio/wav": { "schema": schema("Wav") } }
            },
            "206": {
                "description": "The requested range.",
                "headers": {
                    "Content-Range": {
                        "description": "`bytes <start>-<end>/<length>`.",
                        "schema": { "type": "string", "examples": ["bytes 0-1023/96044"] }
                    },
                    "Accept-Ranges": header("AcceptRanges"),
                    "Content-Length": header("ContentLength"),
                    "Content-Disposition": header("ContentDisposition")
                },
                "content": { "audio/wav": { "schema": schema("Wav") } }
            },
            "404": response_as(
                "NotFound",
                "`not_found`: no such call, it has no recording (or it failed), or the file is gone."
            ),
            "409": response_as("Conflict", "`recording_not_ready`: the call is still being recorded."),
            "416": response("RangeNotSatisfiable")
        }
    })
}

/// `createWebhook`.
pub fn create_webhook() -> Value {
    let delivery = delivery();
    json!({
        "description": format!(
            "The secret (given, or generated) is in this answer only. See `webhooks` in this document \
             for each event's body. {delivery}"
        ),
        "requestBody": body(schema("CreateWebhookRequest")),
        "responses": {
            "201": ok_json("Created; `secret` is shown this once.", schema("NewWebhook")),
            "400": response("BadRequest"),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listWebhooks`.
pub fn list_webhooks() -> Value {
    json!({
        "responses": {
            "200": ok_json("The webhooks, newest first.", json!({
                "type": "object",
                "required": ["webhooks"],
                "properties": { "webhooks": { "type": "array", "items": schema("Webhook") } }
            }))
        }
    })
}

/// `listWebhookDeliveries`.
pub fn list_webhook_deliveries() -> Value {
    json!({
        "description": "Every attempt to deliver the webhook's events, newest first: what the receiver \
            answered (its status and the first KiB of its body) or why it failed, and when the next try is \
            due. Kept as long as the delivered events are.",
        "parameters": [parameter("WebhookId"), {
            "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 50 }
        }],
        "responses": {
            "200": ok_json("The attempts, newest first.", json!({
                "type": "object",
                "required": ["deliveries"],
                "properties": { "deliveries": { "type": "array", "items": schema("DeliveryAttempt") } }
            })),
            "400": response("BadRequest"),
            "404": response_as("NotFound", "`not_found`: no such webhook.")
        }
    })
}

/// `deleteWebhook`.
pub fn delete_webhook() -> Value {
    json!({
        "description": "Its undelivered events are dropped.",
        "parameters": [parameter("WebhookId")],
        "responses": {
            "200": ok_json("Deleted.", json!({
                "type": "object",
                "required": ["id", "deleted"],
                "properties": { "id": { "type": "string" }, "deleted": { "const": true } }
            })),
            "404": response_as("NotFound", "`not_found`: no such webhook.")
        }
    })
}

/// `hangupCall`.
pub fn hangup_call() -> Value {
    action("initiating, ringing or in-progress", None)
}

/// `holdCall`.
pub fn hold_call() -> Value {
    action("in-progress", None)
}

/// `unholdCall`.
pub fn unhold_call() -> Value {
    action("in-progress", None)
}

/// `transferCall`.
pub fn transfer_call() -> Value {
    action("in-progress", Some(schema("TransferRequest")))
}

/// `bridgeCall`.
pub fn bridge_call() -> Value {
    let mut op = action(
        "in-progress",
        Some(json!({
            "type": "object",
            "required": ["call_id"],
            "properties": { "call_id": { "type": "string", "description": "The other live call (404 if not yours)." } }
        })),
    );
    op["description"] = json!(
        "Relays media between this call and `call_id`, both answered: each is sent what the \
        other's far end says (resampled when their rates differ), instead of its own agent or silence; each call's \
        recording holds both sides. A call already bridged leaves its old bridge. A `bridged` event goes on both \
        calls; when either ends (or `unbridge`), the other hears its own source again (`unbridged`)."
    );
    op
}

/// `unbridgeCall`.
pub fn unbridge_call() -> Value {
    action("in-progress and bridged", None)
}

/// `sendDtmf`.
pub fn send_dtmf() -> Value {
    action("in-progress", Some(schema("DtmfRequest")))
}

/// `startRecording`.
pub fn start_recording() -> Value {
    action("in-progress", None)
}

/// `stopRecording`.
pub fn stop_recording() -> Value {
    action("in-progress", None)
}

/// A call action (hangup, hold, …): 202 once handed to the engine, 409 unless the call is
/// `live`; `request`, its body's schema.
fn action(live: &str, request: Option<Value>) -> Value {
    let mut op = json!({
        "description": format!("Asks the engine to act on the call; the outcome shows up in the call's status and \
            events. The call must be {live}."),
        "parameters": [parameter("CallId")],
        "responses": {
            "202": response("Accepted"),
            "404": response_as("NotFound", "`not_found`: no such call."),
            "409": response_as("Conflict", &format!("`call_not_live`: the call is not {live}.")),
            "503": response_as("ServiceUnavailable", "`no_engine`: no call engine is running."),
        }
    });
    if let Some(schema) = request {
        op["requestBody"] = body(schema);
        op["responses"]["400"] = response("BadRequest");
        op["responses"]["413"] = response("PayloadTooLarge");
    }
    op
}

/// `createOrganization`.
pub fn create_organization() -> Value {
    json!({
        "description": "Only the platform's owner (the internal key, or the first admin) holds `orgs:write`. \
            Users, API keys, calls, webhooks and recordings each belong to one organization; one organization \
            never sees another's (404). Add its first user with `POST /api/users` and `organization_id`.",
        "requestBody": body(schema("CreateOrganizationRequest")),
        "responses": {
            "201": ok_json("Created.", schema("Organization")),
            "400": response("BadRequest"),
            "409": response_as("Conflict", "`conflict`: an organization with that name exists."),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listOrganizations`.
pub fn list_organizations() -> Value {
    json!({
        "responses": {
            "200": ok_json("The organizations, oldest first: every one for the platform's owner, else the caller's own.", json!({
                "type": "object",
                "required": ["organizations"],
                "properties": { "organizations": { "type": "array", "items": schema("Organization") } }
            }))
        }
    })
}

/// `getOrganization`.
pub fn get_organization() -> Value {
    json!({
        "parameters": [parameter("OrgId")],
        "responses": {
            "200": ok_json("The organization.", schema("Organization")),
            "404": response_as("NotFound", "`not_found`: no such organization (or not the caller's).")
        }
    })
}

/// `updateOrganization`.
pub fn update_organization() -> Value {
    json!({
        "description": "The fields given replace the stored ones (`null`: no limit); the engine applies them to the next call.",
        "parameters": [parameter("OrgId")],
        "requestBody": body(schema("OrganizationPolicy")),
        "responses": {
            "200": ok_json("The organization as it is now.", schema("Organization")),
            "400": response("BadRequest"),
            "404": response_as("NotFound", "`not_found`: no such organization.")
        }
    })
}

/// `createSipUser`.
pub fn create_sip_user() -> Value {
    json!({
        "description": "A softphone's account in the caller's organization: it may REGISTER to dialtone (digest, \
            SHA-256 or MD5, realm `DIALTONE_SIP_REALM`) and call from any address; its calls belong to the \
            organization. The password is kept only as HA1 and is never shown again.",
        "requestBody": body(json!({
            "type": "object",
            "required": ["username", "password"],
            "properties": {
                "username": { "type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$" },
                "password": { "type": "string", "minLength": 12, "maxLength": 256 }
            }
        })),
        "responses": {
            "201": ok_json("Created.", schema("SipUser")),
            "400": response("BadRequest"),
            "409": response_as("Conflict", "`conflict`: that username is taken."),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listSipUsers`.
pub fn list_sip_users() -> Value {
    json!({
        "responses": {
            "200": ok_json("The organization's SIP users.", json!({
                "type": "object",
                "required": ["sip_users"],
                "properties": { "sip_users": { "type": "array", "items": schema("SipUser") } }
            }))
        }
    })
}

/// `deleteSipUser`.
pub fn delete_sip_user() -> Value {
    json!({
        "parameters": [parameter("SipUserId")],
        "responses": {
            "200": ok_json("Deleted.", json!({
                "type": "object",
                "required": ["id", "deleted"],
                "properties": { "id": { "type": "string" }, "deleted": { "const": true } }
            })),
            "404": response_as("NotFound", "`not_found`: no such SIP user.")
        }
    })
}

/// A delete's answer: `{"id", "deleted": true}`.
fn deleted() -> Value {
    ok_json(
        "Deleted.",
        json!({
            "type": "object",
            "required": ["id", "deleted"],
            "properties": { "id": { "type": "string" }, "deleted": { "const": true } }
        }),
    )
}

/// `createTrunk`.
pub fn create_trunk() -> Value {
    json!({
        "description": "A SIP trunk of the caller's organization: only its calls go out through it (the \
            platform's trunks, from the settings, serve every organization). The password is kept for digest \
            challenges and never shown: the trunk says `has_password`. The engine learns every trunk at once.",
        "requestBody": body(schema("TrunkRequest")),
        "responses": {
            "201": ok_json("Created.", schema("Trunk")),
            "400": response("BadRequest"),
            "409": response_as("Conflict", "`conflict`: the organization has a trunk of that name."),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listTrunks`.
pub fn list_trunks() -> Value {
    json!({
        "description": "The organization's trunks, oldest first (`source: api`), then the platform's from the \
            settings (`source: settings`, `organization_id` null, read-only: only their id, name, URI and status).",
        "responses": {
            "200": ok_json("The trunks.", json!({
                "type": "object",
                "required": ["trunks"],
                "properties": {
                    "trunks": {
                        "type": "array",
                        "items": { "oneOf": [schema("Trunk"), schema("SettingsTrunk")] }
                    }
                }
            }))
        }
    })
}

/// `getTrunk`.
pub fn get_trunk() -> Value {
    json!({
        "parameters": [parameter("TrunkId")],
        "responses": {
            "200": ok_json("The trunk.", schema("Trunk")),
            "404": response_as("NotFound", "`not_found`: no such trunk (or not the caller's).")
        }
    })
}

/// `updateTrunk`.
pub fn update_trunk() -> Value {
    json!({
        "description": "The fields given replace the stored ones; `null` clears an optional one (and empties a \
            list). The engine applies the change to the next call.",
        "parameters": [parameter("TrunkId")],
        "requestBody": body(schema("TrunkFields")),
        "responses": {
            "200": ok_json("The trunk as it is now.", schema("Trunk")),
            "400": response("BadRequest"),
            "404": response_as("NotFound", "`not_found`: no such trunk."),
            "409": response_as("Conflict", "`conflict`: the organization has another trunk of that name."),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `deleteTrunk`.
pub fn delete_trunk() -> Value {
    json!({
        "parameters": [parameter("TrunkId")],
        "responses": {
            "200": deleted(),
            "404": response_as("NotFound", "`not_found`: no such trunk.")
        }
    })
}

/// `createNumber`.
pub fn create_number() -> Value {
    json!({
        "description": "A phone number of the caller's organization (or a pattern: `+1555*`, `*`), and what its \
            inbound calls do. The exact number beats every pattern, a longer prefix a shorter one. A number is \
            one organization's: taken by any, it is a 409. With a `webhook` action dialtone asks the URL what \
            to do (`CallWebhookRequest`, signed with `webhook_secret`; it answers a `CallWebhookAnswer` within \
            `webhook_timeout_ms`, else the `fallback` holds, else 480).",
        "requestBody": body(schema("NumberRequest")),
        "responses": {
            "201": ok_json("Created.", schema("Number")),
            "400": response("BadRequest"),
            "409": response_as("Conflict", "`conflict`: that number is taken."),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listNumbers`.
pub fn list_numbers() -> Value {
    json!({
        "responses": {
            "200": ok_json("The organization's numbers, oldest first.", json!({
                "type": "object",
                "required": ["numbers"],
                "properties": { "numbers": { "type": "array", "items": schema("Number") } }
            }))
        }
    })
}

/// `getNumber`.
pub fn get_number() -> Value {
    json!({
        "parameters": [parameter("NumberId")],
        "responses": {
            "200": ok_json("The number.", schema("Number")),
            "404": response_as("NotFound", "`not_found`: no such number (or not the caller's).")
        }
    })
}

/// `updateNumber`.
pub fn update_number() -> Value {
    json!({
        "description": "The fields given replace the stored ones; `null` clears an optional one. Its webhook \
            secret stays while the action stays a `webhook`, is made when it becomes one, and goes otherwise.",
        "parameters": [parameter("NumberId")],
        "requestBody": body(schema("NumberFields")),
        "responses": {
            "200": ok_json("The number as it is now.", schema("Number")),
            "400": response("BadRequest"),
            "404": response_as("NotFound", "`not_found`: no such number."),
            "409": response_as("Conflict", "`conflict`: that number is taken."),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `deleteNumber`.
pub fn delete_number() -> Value {
    json!({
        "parameters": [parameter("NumberId")],
        "responses": {
            "200": deleted(),
            "404": response_as("NotFound", "`not_found`: no such number.")
        }
    })
}

pub fn twilio_update_call() -> Value {
    let twilio_error = |what: &str| {
        json!({
            "description": what,
            "content": { "application/json": { "schema": {
                "type": "object",
                "required": ["code", "message", "more_info", "status"],
                "properties": {
                    "code": { "type": "integer", "examples": [20404] },
                    "message": { "type": "string" },
                    "more_info": { "type": "string" },
                    "status": { "type": "integer" }
                }
            } } }
        })
    };
    json!({
        "description": "For voice-agent frameworks written for Twilio (Pipecat's Twilio serializer, for one), \
            which end their call by POSTing `Status=completed` to Twilio's REST API at a configurable base URL: \
            point it at dialtone. `CallSid` is the `start.callSid` dialtone gave the agent (`CA` and the API \
            call id's 16 hex digits twice). Authentication is HTTP Basic with an API key holding \
            `calls:hangup`: the user name is the key's id (`key_…`, where Twilio's API key SID goes) and the \
            password is the key itself (where Twilio's secret or auth token goes); `AccountSid` in the path \
            is that key id or the key's organization id. `Status=completed` hangs up (BYE), `canceled` \
            cancels a call not yet answered. Every other path under `/2010-04-01/` answers Twilio's 404.",
        "parameters": [
            { "name": "account_sid", "in": "path", "required": true, "schema": { "type": "string" },
              "description": "The API key's id, or its organization's id." },
            { "name": "call_sid", "in": "path", "required": true,
              "schema": { "type": "string", "pattern": "^CA[0-9a-f]{32}\\.json$" },
              "description": "The call's sid and `.json`." }
        ],
        "requestBody": {
            "required": true,
            "content": { "application/x-www-form-urlencoded": { "schema": {
                "type": "object",
                "required": ["Status"],
                "properties": { "Status": { "enum": ["completed", "canceled"] } }
            } } }
        },
        "responses": {
            "200": {
                "description": "Twilio's call resource, its status the one asked for.",
                "content": { "application/json": { "schema": {
                    "type": "object",
                    "required": ["sid", "account_sid", "status", "direction", "uri"],
                    "properties": {
                        "sid": { "type": "string" }, "account_sid": { "type": "string" },
                        "api_version": { "const": "2010-04-01" },
                        "to": { "type": ["string", "null"] }, "from": { "type": ["string", "null"] },
                        "status": { "enum": ["completed", "canceled"] },
                        "direction": { "enum": ["inbound", "outbound-api"] },
                        "date_created": { "type": "string" }, "date_updated": { "type": "string" },
                        "start_time": { "type": ["string", "null"] }, "end_time": { "type": ["string", "null"] },
                        "duration": { "type": ["string", "null"] }, "uri": { "type": "string" }
                    }
                } } }
            },
            "400": twilio_error("21218: `Status` missing or not `completed`/`canceled`."),
            "401": response_as("Unauthorized", "No valid credentials."),
            "404": twilio_error("20404: no such call for these credentials, or it is over.")
        }
    })
}
