//! Small builders of OpenAPI JSON: references, the envelope, bodies, times.

use serde_json::{json, Value};

/// A reference to `#/components/schemas/{name}`.
pub fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A reference to `#/components/responses/{name}`.
pub fn response(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// A reference to a shared response with this operation's own description (OpenAPI 3.1
/// lets a Reference Object override `description`).
pub fn response_as(name: &str, description: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}"), "description": description })
}

/// A reference to `#/components/parameters/{name}`.
pub fn parameter(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// A reference to `#/components/headers/{name}`.
pub fn header(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// The success envelope around `data`.
pub fn envelope(data: Value) -> Value {
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
pub fn ok_json(description: &str, data: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": envelope(data) } } })
}

/// A JSON request body.
pub fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// A UTC timestamp as the API writes it.
pub fn time() -> Value {
    json!({ "type": "string", "format": "date-time", "examples": ["2024-01-09T20:00:00Z"] })
}

/// A UTC timestamp or `null`.
pub fn time_or_null() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time", "examples": ["2024-01-09T20:02:00Z"] })
}

/// One object with the members of all of `parts`.
pub fn merge<const N: usize>(parts: [Value; N]) -> Value {
    let mut out = serde_json::Map::new();
    for part in parts {
        if let Value::Object(o) = part {
            out.extend(o);
        }
    }
    Value::Object(out)
}
