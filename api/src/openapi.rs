//! The OpenAPI 3.1 document of the control API ([`spec`]), served at `/api/openapi.json`.
//!
//! It describes every route in [`ROUTES`] (the tests below check that the document and the
//! list agree, and that every `$ref` resolves): parameters, bodies with their limits, the
//! `{success, data, error}` envelope, the errors, who may call what (`x-permission`), and
//! the signed webhook deliveries (the top-level `webhooks`).

use crate::auth::JWT_LIFETIME_S;
use crate::model::PERMISSIONS;
use crate::model::{CallStatus, WEBHOOK_EVENTS};
use crate::webhooks::{MAX_ATTEMPTS, MAX_BACKOFF_MS};
use crate::wire::MAX_BODY;
use serde_json::{json, Value};

/// Every route the API serves: (method, path in axum syntax). The document describes
/// exactly these, and the router serves exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/v1/auth/user-login"),
    ("POST", "/api/api-keys"),
    ("GET", "/api/api-keys"),
    ("DELETE", "/api/api-keys/{id}"),
    ("POST", "/api/calls/create"),
    ("GET", "/api/calls/list"),
    ("GET", "/api/calls/live"),
    ("GET", "/api/calls/{id}"),
    ("POST", "/api/calls/{id}/hangup"),
    ("POST", "/api/calls/{id}/hold"),
    ("POST", "/api/calls/{id}/unhold"),
    ("POST", "/api/calls/{id}/transfer"),
    ("POST", "/api/calls/{id}/dtmf"),
    ("POST", "/api/calls/{id}/recording/start"),
    ("POST", "/api/calls/{id}/recording/stop"),
    ("GET", "/api/calls/{id}/recording"),
    ("POST", "/api/webhooks"),
    ("GET", "/api/webhooks"),
    ("DELETE", "/api/webhooks/{id}"),
    ("POST", "/api/users"),
    ("GET", "/api/users"),
    ("DELETE", "/api/users/{id}"),
];

/// An E.164 number: `+`, then 2 to 15 digits, the first not 0 (as `http::is_e164`).
const E164: &str = r"^\+[1-9][0-9]{1,14}$";

/// A reference to `#/components/schemas/{name}`.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A reference to `#/components/responses/{name}`.
fn response(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// A reference to a shared response with this operation's own description (OpenAPI 3.1
/// lets a Reference Object override `description`).
fn response_as(name: &str, description: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}"), "description": description })
}

/// A reference to `#/components/parameters/{name}`.
fn parameter(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// A reference to `#/components/headers/{name}`.
fn header(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// The success envelope around `data`.
fn envelope(data: Value) -> Value {
    json!({
        "allOf": [
            schema("Envelope"),
            {
                "type": "object",
                "properties": { "success": { "const": true }, "data": data, "error": { "type": "null" } }
            }
        ]
    })
}

/// A JSON answer in the envelope.
fn ok_json(description: &str, data: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": envelope(data) } } })
}

/// A JSON request body.
fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// A UTC timestamp as the API writes it.
fn time() -> Value {
    json!({ "type": "string", "format": "date-time", "examples": ["2024-01-09T20:00:00Z"] })
}

/// A UTC timestamp or `null`.
fn time_or_null() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time", "examples": ["2024-01-09T20:02:00Z"] })
}

/// A public operation: no credentials.
fn public(mut op: Value) -> Value {
    op["security"] = json!([]);
    op
}

/// An operation that needs credentials holding `perm`: its `x-permission`, and the answers
/// every such operation can give (401, 403, 429, 500) unless it describes them itself.
fn protected(perm: &str, mut op: Value) -> Value {
    op["x-permission"] = json!(perm);
    if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
        for (code, name) in
            [("401", "Unauthorized"), ("403", "Forbidden"), ("429", "TooManyRequests"), ("500", "InternalError")]
        {
            r.entry(code).or_insert_with(|| response(name));
        }
    }
    op
}

/// A call action (hangup, hold, …): 202 once handed to the engine, 409 unless the call is live.
fn action(perm: &str, operation_id: &str, summary: &str, live: &str, request: Option<Value>) -> Value {
    let mut op = json!({
        "tags": ["Call control"],
        "operationId": operation_id,
        "summary": summary,
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
    protected(perm, op)
}

/// `call.completed` → `onCallCompleted`.
fn webhook_operation_id(event: &str) -> String {
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
fn webhooks() -> Value {
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

/// Every permission as it is written in the document: `resource:action`, and the
/// `resource.action` spelling accepted for it.
fn permission_names() -> Vec<String> {
    let colon = PERMISSIONS.iter().map(|p| p.to_string());
    let dot = PERMISSIONS.iter().map(|p| p.replacen(':', ".", 1));
    colon.chain(dot).collect()
}

/// How webhooks are delivered, signed and retried.
fn delivery() -> String {
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

/// One object with the members of all of `parts`.
fn merge<const N: usize>(parts: [Value; N]) -> Value {
    let mut out = serde_json::Map::new();
    for part in parts {
        if let Value::Object(o) = part {
            out.extend(o);
        }
    }
    Value::Object(out)
}

/// The OpenAPI 3.1 document of the control API.
pub fn spec() -> Value {
    let delivery = delivery();
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "dialtone control API",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Place, watch and steer SIP calls; API keys; signed webhooks.",
            "description": format!(
                "Every answer, errors included, is the envelope `{{\"success\": bool, \"data\": …, \"error\": null | \
                 {{\"code\", \"message\"}}}}`; a bad parameter answers 400 naming the field.\n\n\
                 Credentials: `Authorization: Bearer <API key or JWT>`, `X-API-Key: <API key>`, or \
                 `X-Internal-Key` (full access, not rate limited). A JWT comes from `POST /api/v1/auth/user-login` \
                 and lives {} h. Each operation needs the permission in its `x-permission`; `calls:read` and \
                 `calls.read` spellings are the same. Keys are shown once and stored hashed; a key never grants \
                 more than its creator holds.\n\n\
                 Requests are limited per key and per client address (`DIALTONE_RATE_LIMIT`, \
                 `DIALTONE_RATE_LIMIT_ADDR`; logins by `DIALTONE_LOGIN_LIMIT`): over the limit answers 429 with \
                 `Retry-After`. Bodies are at most {MAX_BODY} bytes (413).",
                JWT_LIFETIME_S / 3600
            ),
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" }
        },
        "servers": [{ "url": "http://127.0.0.1:8080", "description": "The default `DIALTONE_HTTP_LISTEN`." }],
        "tags": [
            { "name": "Health", "description": "Liveness, metrics and this document (public)." },
            { "name": "Auth", "description": "Users log in for a JWT." },
            { "name": "API keys", "description": "Keys for programs; shown once at creation." },
            { "name": "Calls", "description": "Place calls and read them." },
            { "name": "Call control", "description": "Act on a live call." },
            { "name": "Recordings", "description": "A call's recording." },
            { "name": "Webhooks", "description": format!("Signed event deliveries. {delivery}") },
            { "name": "Users", "description": "People who log in for a JWT." }
        ],
        "security": [{ "bearer": [] }, { "apiKey": [] }, { "internalKey": [] }],
        "paths": merge([
            health_and_auth_paths(),
            key_paths(),
            call_paths(),
            control_paths(),
            recording_paths(),
            webhook_paths(),
            user_paths(),
        ]),
        "webhooks": webhooks(),
        "components": {
            "securitySchemes": security_schemes(),
            "parameters": parameters(),
            "headers": headers(),
            "responses": responses(),
            "schemas": merge([common_schemas(), call_schemas(), account_schemas()])
        }
    })
}

/// The public paths: health, metrics, this document, and the login.
fn health_and_auth_paths() -> Value {
    json!({
        "/healthz": {
            "get": public(json!({
                "tags": ["Health"],
                "operationId": "healthz",
                "summary": "Liveness.",
                "responses": {
                    "200": ok_json("Alive.", json!({
                        "type": "object",
                        "required": ["status"],
                        "properties": { "status": { "const": "ok" } }
                    }))
                }
            }))
        },
        "/metrics": {
            "get": public(json!({
                "tags": ["Health"],
                "operationId": "metrics",
                "summary": "Prometheus metrics.",
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
            }))
        },
        "/api/openapi.json": {
            "get": public(json!({
                "tags": ["Health"],
                "operationId": "getOpenApi",
                "summary": "This document.",
                "description": "The OpenAPI 3.1 document itself (not wrapped in the envelope).",
                "responses": {
                    "200": {
                        "description": "The document.",
                        "content": { "application/json": { "schema": { "type": "object" } } }
                    }
                }
            }))
        },
        "/api/v1/auth/user-login": {
            "post": public(json!({
                "tags": ["Auth"],
                "operationId": "userLogin",
                "summary": "Log in for a JWT.",
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
            }))
        }
    })
}

/// The API key paths.
fn key_paths() -> Value {
    json!({
        "/api/api-keys": {
            "post": protected("keys:write", json!({
                "tags": ["API keys"],
                "operationId": "createApiKey",
                "summary": "Create an API key.",
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
            })),
            "get": protected("keys:read", json!({
                "tags": ["API keys"],
                "operationId": "listApiKeys",
                "summary": "List the API keys (never their secrets).",
                "responses": {
                    "200": ok_json("The keys.", json!({
                        "type": "object",
                        "required": ["keys"],
                        "properties": { "keys": { "type": "array", "items": schema("ApiKey") } }
                    }))
                }
            }))
        },
        "/api/api-keys/{id}": {
            "delete": protected("keys:write", json!({
                "tags": ["API keys"],
                "operationId": "revokeApiKey",
                "summary": "Revoke an API key.",
                "description": "The key stops working at once; it stays listed with `revoked_at`.",
                "parameters": [parameter("KeyId")],
                "responses": {
                    "200": ok_json("Revoked.", json!({
                        "type": "object",
                        "required": ["id", "revoked"],
                        "properties": { "id": { "type": "string" }, "revoked": { "const": true } }
                    })),
                    "404": response_as("NotFound", "`not_found`: no such live key.")
                }
            }))
        }
    })
}

/// Users (who log in for a JWT).
fn user_paths() -> Value {
    json!({
        "/api/users": {
            "post": protected("users:write", json!({
                "tags": ["Users"],
                "operationId": "createUser",
                "summary": "Add a user who can log in.",
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
            })),
            "get": protected("users:read", json!({
                "tags": ["Users"],
                "operationId": "listUsers",
                "summary": "List the users (never their password hashes).",
                "responses": {
                    "200": ok_json("The users.", json!({
                        "type": "object",
                        "required": ["users"],
                        "properties": { "users": { "type": "array", "items": schema("User") } }
                    }))
                }
            }))
        },
        "/api/users/{id}": {
            "delete": protected("users:write", json!({
                "tags": ["Users"],
                "operationId": "deleteUser",
                "summary": "Delete a user; its tokens stop working at once.",
                "parameters": [parameter("UserId")],
                "responses": {
                    "200": ok_json("Deleted.", json!({
                        "type": "object",
                        "required": ["id", "deleted"],
                        "properties": { "id": { "type": "string" }, "deleted": { "const": true } }
                    })),
                    "404": response_as("NotFound", "`not_found`: no such user.")
                }
            }))
        }
    })
}

/// Placing and reading calls.
fn call_paths() -> Value {
    json!({
        "/api/calls/create": {
            "post": protected("calls:write", json!({
                "tags": ["Calls"],
                "operationId": "createCall",
                "summary": "Place a call.",
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
            }))
        },
        "/api/calls/list": {
            "get": protected("calls:read", json!({
                "tags": ["Calls"],
                "operationId": "listCalls",
                "summary": "List calls, newest first, with filters.",
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
                    }
                ],
                "responses": {
                    "200": ok_json("The page of calls, and how many match in all.", schema("CallList")),
                    "400": response("BadRequest")
                }
            }))
        },
        "/api/calls/live": {
            "get": protected("calls:live", json!({
                "tags": ["Calls"],
                "operationId": "liveCalls",
                "summary": "The calls not yet ended (initiating, ringing, in-progress).",
                "responses": { "200": ok_json("The live calls.", schema("CallList")) }
            }))
        },
        "/api/calls/{id}": {
            "get": protected("calls:read", json!({
                "tags": ["Calls"],
                "operationId": "getCall",
                "summary": "One call, with its events.",
                "parameters": [parameter("CallId")],
                "responses": {
                    "200": ok_json("The call.", schema("CallWithEvents")),
                    "404": response_as("NotFound", "`not_found`: no such call.")
                }
            }))
        }
    })
}

/// Acting on live calls.
fn control_paths() -> Value {
    json!({
        "/api/calls/{id}/hangup": {
            "post": action(
                "calls:hangup",
                "hangupCall",
                "Hang up (BYE, or CANCEL before the answer).",
                "initiating, ringing or in-progress",
                None
            )
        },
        "/api/calls/{id}/hold": {
            "post": action("calls:hold", "holdCall", "Put the call on hold (re-INVITE sendonly).", "in-progress", None)
        },
        "/api/calls/{id}/unhold": {
            "post": action("calls:hold", "unholdCall", "Resume a held call (re-INVITE sendrecv).", "in-progress", None)
        },
        "/api/calls/{id}/transfer": {
            "post": action(
                "calls:transfer",
                "transferCall",
                "Blind transfer (REFER; BYE once the far end reports it done).",
                "in-progress",
                Some(schema("TransferRequest"))
            )
        },
        "/api/calls/{id}/dtmf": {
            "post": action(
                "calls:write",
                "sendDtmf",
                "Send DTMF digits (RFC 4733).",
                "in-progress",
                Some(schema("DtmfRequest"))
            )
        },
        "/api/calls/{id}/recording/start": {
            "post": action("calls:recording", "startRecording", "Start recording the call.", "in-progress", None)
        },
        "/api/calls/{id}/recording/stop": {
            "post": action("calls:recording", "stopRecording", "Stop recording the call.", "in-progress", None)
        }
    })
}

/// Downloading a recording.
fn recording_paths() -> Value {
    json!({
        "/api/calls/{id}/recording": {
            "get": protected("calls:recording", json!({
                "tags": ["Recordings"],
                "operationId": "downloadRecording",
                "summary": "Download the call's recording (WAV).",
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
            }))
        }
    })
}

/// Managing webhooks.
fn webhook_paths() -> Value {
    let delivery = delivery();
    json!({
        "/api/webhooks": {
            "post": protected("webhooks:write", json!({
                "tags": ["Webhooks"],
                "operationId": "createWebhook",
                "summary": "Subscribe a URL to events.",
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
            })),
            "get": protected("webhooks:read", json!({
                "tags": ["Webhooks"],
                "operationId": "listWebhooks",
                "summary": "List the webhooks (never their secrets).",
                "responses": {
                    "200": ok_json("The webhooks, newest first.", json!({
                        "type": "object",
                        "required": ["webhooks"],
                        "properties": { "webhooks": { "type": "array", "items": schema("Webhook") } }
                    }))
                }
            }))
        },
        "/api/webhooks/{id}": {
            "delete": protected("webhooks:write", json!({
                "tags": ["Webhooks"],
                "operationId": "deleteWebhook",
                "summary": "Delete a webhook.",
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
            }))
        }
    })
}

/// `components.securitySchemes`.
fn security_schemes() -> Value {
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
fn parameters() -> Value {
    json!({
        "CallId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The call's id.",
            "schema": { "type": "string", "examples": ["call_5f0c2a9d1e3b4c7a"] }
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
fn headers() -> Value {
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
fn responses() -> Value {
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
                `idempotency_conflict`, `recording_not_ready`).",
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
            "description": "`no_trunk` or `no_engine`: the server cannot place or steer calls.",
            "content": { "application/json": { "schema": schema("ErrorEnvelope") } }
        }
    })
}

/// The envelope, errors and shared value types.
fn common_schemas() -> Value {
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
fn call_schemas() -> Value {
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
fn account_schemas() -> Value {
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
            "required": ["id", "email", "role"],
            "properties": {
                "id": { "type": "string" },
                "email": { "type": "string", "format": "email" },
                "role": { "type": "string", "examples": ["admin"] }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    /// Every operation: (where, operation), for `paths` and `webhooks`.
    fn operations(doc: &Value) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        for section in ["paths", "webhooks"] {
            for (path, item) in doc[section].as_object().expect(section) {
                for m in METHODS {
                    if let Some(op) = item.get(*m) {
                        out.push((format!("{section} {m} {path}"), op));
                    }
                }
            }
        }
        out
    }

    /// `v`, or what it refers to.
    fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling {r}")),
            None => v,
        }
    }

    #[test]
    fn is_openapi_3_1_json() {
        let doc = spec();
        let text = serde_json::to_string(&doc).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        assert!(doc["paths"].is_object() && doc["components"].is_object());
    }

    #[test]
    fn operations_have_responses_and_unique_ids() {
        let doc = spec();
        let mut ids = HashSet::new();
        let ops = operations(&doc);
        assert!(ops.len() > ROUTES.len(), "the webhooks are operations too");
        for (at, op) in ops {
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{at}: no responses"));
            assert!(!responses.is_empty(), "{at}: empty responses");
            for (code, r) in responses {
                let ok = code == "default"
                    || (code.len() == 3 && (code.ends_with("XX") || code.parse::<u16>().is_ok_and(|c| c >= 100)));
                assert!(ok, "{at}: bad status {code}");
                assert!(deref(&doc, r)["description"].is_string(), "{at} {code}: no description");
            }
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{at}: no operationId"));
            assert!(ids.insert(id.to_string()), "{at}: operationId {id} used twice");
        }
    }

    #[test]
    fn every_ref_resolves() {
        fn walk(doc: &Value, v: &Value, n: &mut usize) {
            match v {
                Value::Object(o) => {
                    if let Some(r) = o.get("$ref") {
                        let r = r.as_str().expect("$ref is a string");
                        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not in the document"));
                        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
                        *n += 1;
                    }
                    o.values().for_each(|v| walk(doc, v, n));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(doc, v, n)),
                _ => {}
            }
        }
        let doc = spec();
        let mut n = 0;
        walk(&doc, &doc, &mut n);
        assert!(n > 50, "only {n} refs");
    }

    #[test]
    fn routes_match_the_paths() {
        let doc = spec();
        let paths = doc["paths"].as_object().unwrap();
        let routes: BTreeSet<(String, String)> =
            ROUTES.iter().map(|(m, p)| (m.to_ascii_lowercase(), p.to_string())).collect();
        assert_eq!(routes.len(), ROUTES.len(), "ROUTES lists a route twice");
        for (m, p) in &routes {
            assert!(paths.get(p).and_then(|i| i.get(m)).is_some(), "{m} {p} is not documented");
        }
        for (p, item) in paths {
            for m in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                assert!(routes.contains(&(m.to_string(), p.clone())), "{m} {p} is documented but not in ROUTES");
            }
        }
    }

    #[test]
    fn merged_parts_do_not_overlap() {
        let count = |v: Value| v.as_object().map_or(0, |o| o.len());
        let paths = [health_and_auth_paths(), key_paths(), call_paths(), control_paths(), recording_paths()];
        let n: usize = paths.into_iter().map(count).sum::<usize>() + count(webhook_paths()) + count(user_paths());
        assert_eq!(n, spec()["paths"].as_object().unwrap().len());
        let n = count(common_schemas()) + count(call_schemas()) + count(account_schemas());
        assert_eq!(n, spec()["components"]["schemas"].as_object().unwrap().len());
    }

    #[test]
    fn path_parameters_are_declared() {
        let doc = spec();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let names: Vec<&str> =
                path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
            for m in METHODS {
                let Some(op) = item.get(*m) else { continue };
                let params: Vec<&Value> =
                    op["parameters"].as_array().map(|a| a.iter().map(|p| deref(&doc, p)).collect()).unwrap_or_default();
                for name in &names {
                    let p = params.iter().find(|p| p["in"] == "path" && p["name"] == *name);
                    assert!(p.is_some_and(|p| p["required"] == true), "{m} {path}: no required path parameter {name}");
                }
                assert_eq!(params.iter().filter(|p| p["in"] == "path").count(), names.len(), "{m} {path}");
            }
        }
    }

    #[test]
    fn security_and_permissions() {
        let doc = spec();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
        assert_eq!(schemes["internalKey"]["name"], "X-Internal-Key");
        for alt in doc["security"].as_array().unwrap() {
            for name in alt.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "unknown scheme {name}");
            }
        }
        let public = ["/healthz", "/metrics", "/api/openapi.json", "/api/v1/auth/user-login"];
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                let Some(op) = item.get(*m) else { continue };
                if public.contains(&path.as_str()) {
                    assert_eq!(op["security"], json!([]), "{m} {path} is public");
                    assert!(op.get("x-permission").is_none(), "{m} {path}");
                } else {
                    assert!(op.get("security").is_none(), "{m} {path} takes the document's security");
                    let perm = op["x-permission"].as_str().unwrap_or_else(|| panic!("{m} {path}: no x-permission"));
                    assert!(PERMISSIONS.contains(&perm), "{m} {path}: unknown permission {perm}");
                    for code in ["401", "403", "429"] {
                        assert!(op["responses"].get(code).is_some(), "{m} {path}: no {code}");
                    }
                }
            }
        }
    }

    #[test]
    fn shared_pieces() {
        let doc = spec();
        let c = &doc["components"];
        for code in
            ["BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict", "PayloadTooLarge", "TooManyRequests"]
        {
            assert!(c["responses"][code]["content"]["application/json"].is_object(), "{code}");
        }
        assert!(deref(&doc, &c["responses"]["TooManyRequests"]["headers"]["Retry-After"])["schema"].is_object());
        for s in ["Envelope", "Error", "Call", "CallEvent", "ApiKey", "Webhook"] {
            assert!(c["schemas"][s].is_object(), "{s}");
        }
        let statuses: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(c["schemas"]["CallStatus"]["enum"], json!(statuses));
        assert_eq!(c["schemas"]["E164"]["pattern"], r"^\+[1-9][0-9]{1,14}$");
        let create = &c["schemas"]["CreateCallRequest"];
        assert_eq!(create["required"], json!(["contact_id", "phone_number"]));
        assert_eq!(create["properties"]["contact_id"]["maxLength"], 128);
        let events: Vec<&str> = doc["webhooks"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(events.len(), WEBHOOK_EVENTS.len());
        assert!(WEBHOOK_EVENTS.iter().all(|e| events.contains(e)));
        assert_eq!(webhook_operation_id("recording.ready"), "onRecordingReady");
        assert_eq!(webhook_operation_id("dtmf.received"), "onDtmfReceived");
    }
}
