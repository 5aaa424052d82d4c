//! The conference routes as the document describes them: their schemas and operations.

use super::parts::{body, ok_json, parameter, response, response_as, schema, time, time_or_null};
use serde_json::{json, Value};

/// `components.schemas` of conferences.
pub fn conference_schemas() -> Value {
    json!({
        "Conference": {
            "type": "object",
            "required": ["id", "organization_id", "name", "status", "created_at", "ended_at", "participants"],
            "properties": {
                "id": { "type": "string", "examples": ["conf_0123456789abcdef"] },
                "organization_id": { "type": "string" },
                "name": { "type": ["string", "null"] },
                "status": { "enum": ["active", "ended"] },
                "created_at": time(),
                "ended_at": time_or_null(),
                "participants": {
                    "type": "array",
                    "description": "Every seat, in the order they were taken (a call that left and came back \
                        has two).",
                    "items": schema("ConferenceParticipant")
                }
            }
        },
        "ConferenceParticipant": {
            "type": "object",
            "required": ["call_id", "agent_id", "agent_url", "muted", "active", "joined_at", "left_at"],
            "properties": {
                "call_id": { "type": ["string", "null"], "description": "The seated call (null for an agent)." },
                "agent_id": { "type": ["string", "null"], "description": "A voice agent member (`agt_…`)." },
                "agent_url": { "type": ["string", "null"], "description": "The voice agent's URL." },
                "muted": { "type": "boolean", "description": "Hears the room but is not heard." },
                "active": { "type": "boolean", "description": "Seated now." },
                "joined_at": time(),
                "left_at": {
                    "oneOf": [time(), { "type": "null" }],
                    "description": "Taken out, the conference ended, or the call ended (its end)."
                }
            }
        },
        "ConferenceRequest": {
            "type": "object",
            "properties": { "name": { "type": ["string", "null"], "minLength": 1, "maxLength": 64 } },
            "examples": [{ "name": "escalation 4711" }]
        },
        "ParticipantRequest": {
            "type": "object",
            "description": "A call (`call_id`) or a voice agent (`agent_url`, which needs `calls:originate_ai`): \
                dialtone connects to the agent's WebSocket (Twilio Media Streams, or `l16-16k`) and it hears the \
                room's mix and is heard like any member.",
            "properties": {
                "call_id": { "type": "string", "description": "A live (answered) call of the organization." },
                "agent_url": { "type": "string", "pattern": "^wss?://" },
                "agent_format": { "enum": ["twilio", "l16-16k"], "default": "twilio" },
                "muted": { "type": "boolean", "default": false }
            },
            "oneOf": [{ "required": ["call_id"] }, { "required": ["agent_url"] }]
        }
    })
}

fn conference(description: &str) -> Value {
    ok_json(description, schema("Conference"))
}

/// `createConference`.
pub fn create_conference() -> Value {
    json!({
        "description": "A room for the organization's live calls. Each seated call is sent the sum of the others \
            (N−1: never itself), mixed at 16 kHz and resampled to each call's rate (G.711 at 8 kHz, Opus and G.722 \
            at 16 kHz); each call's recording holds what it heard and was sent. A seated call's own source (its \
            agent, its prompt) waits until it leaves.",
        "requestBody": body(schema("ConferenceRequest")),
        "responses": {
            "201": conference("Created."),
            "400": response("BadRequest"),
            "413": response("PayloadTooLarge")
        }
    })
}

/// `listConferences`.
pub fn list_conferences() -> Value {
    json!({
        "responses": {
            "200": ok_json("The organization's conferences, newest first (at most 100).", json!({
                "type": "object",
                "required": ["conferences"],
                "properties": { "conferences": { "type": "array", "items": schema("Conference") } }
            }))
        }
    })
}

/// `getConference`.
pub fn get_conference() -> Value {
    json!({
        "parameters": [parameter("ConferenceId")],
        "responses": {
            "200": conference("The conference."),
            "404": response_as("NotFound", "`not_found`: no such conference (or not the caller's).")
        }
    })
}

/// `endConference`.
pub fn end_conference() -> Value {
    json!({
        "parameters": [parameter("ConferenceId")],
        "description": "Every seated call leaves (a `conference_left` event) and hears its own source again; \
            none is hung up. An ended conference takes nobody.",
        "responses": {
            "200": conference("The conference, ended."),
            "404": response_as("NotFound", "`not_found`: no such conference.")
        }
    })
}

fn participant_op(description: &str, request: Option<Value>, ok: Value) -> Value {
    let mut op = json!({
        "description": description,
        "parameters": [parameter("ConferenceId")],
        "responses": {
            "404": response_as("NotFound", "`not_found`: no such conference, call or seat (or not the caller's)."),
            "409": response_as("Conflict", "`conference_ended`: the conference has ended; `call_not_live`: the \
                call is not answered (or has ended); `call_on_another_node` (several nodes): the call is on \
                another node than the conference's room (the first call seated chooses the room's node)."),
            "503": response_as("ServiceUnavailable", "`no_engine`: no call engine is running.")
        }
    });
    if let Some(request) = request {
        op["requestBody"] = body(request);
        op["responses"]["400"] = response("BadRequest");
        op["responses"]["413"] = response("PayloadTooLarge");
    }
    if let Value::Object(answers) = ok {
        for (code, answer) in answers {
            op["responses"][code] = answer;
        }
    }
    op
}

fn with_call(mut op: Value) -> Value {
    op["parameters"].as_array_mut().expect("an array").push(json!({
        "name": "call_id", "in": "path", "required": true,
        "description": "The seated call's id, or the agent member's (`agt_…`).",
        "schema": { "type": "string" }
    }));
    op
}

/// `addConferenceParticipant`.
pub fn add_conference_participant() -> Value {
    participant_op(
        "Seats the call: its media task's source becomes the room's mix (its agent or prompt waits), and it is \
        heard unless `muted`. A call bridged to another leaves that bridge; a call in another conference leaves \
        it. A `conference_joined` event goes on the call.",
        Some(schema("ParticipantRequest")),
        json!({ "201": conference("The conference, with the call seated.") }),
    )
}

/// `updateConferenceParticipant`.
pub fn update_conference_participant() -> Value {
    with_call(participant_op(
        "A muted call hears the room but is not heard (`conference_muted` / `conference_unmuted` events).",
        Some(json!({
            "type": "object",
            "required": ["muted"],
            "properties": { "muted": { "type": "boolean" } }
        })),
        json!({ "200": conference("The conference as it is now.") }),
    ))
}

/// `removeConferenceParticipant`.
pub fn remove_conference_participant() -> Value {
    with_call(participant_op(
        "The call leaves (`conference_left`) and hears its own source again; it is not hung up.",
        None,
        json!({ "200": conference("The conference as it is now.") }),
    ))
}
