//! The OpenAPI 3.1 document of the control API ([`spec`]), served at `/api/openapi.json`.
//!
//! It describes every route of the route table ([`crate::routes`], listed here as
//! [`ROUTES`]), from the table itself: the same paths, methods and permissions as the router
//! serves. The tests below check that every `$ref` resolves: parameters, bodies with their limits, the
//! `{success, data, error}` envelope, the errors, who may call what (`x-permission`), and
//! the signed webhook deliveries (the top-level `webhooks`).

use crate::auth::JWT_LIFETIME_S;
use crate::doc::components::{headers, parameters, responses, security_schemes};
use crate::doc::conferences::conference_schemas;
use crate::doc::events::{delivery, webhooks};
use crate::doc::parts::{merge, response};
use crate::doc::schemas::{account_schemas, call_schemas, common_schemas, routing_schemas};
use crate::routes::TABLE;
use crate::wire::MAX_BODY;
use serde_json::{json, Map, Value};

pub use crate::routes::ROUTES;

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
        "x-dialtone-aliases": {
            "description": "Every path is also served with `/api/v1/` in place of `/api/` (and the login at `/api/auth/user-login`); `GET /api/v1/calls` (and `/api/calls`) lists calls like `GET /api/calls/list`, `POST /api/v1/calls` creates one like `POST /api/calls/create`.",
        },
        "tags": [
            { "name": "Health", "description": "Liveness, metrics and this document (public)." },
            { "name": "Auth", "description": "Users log in for a JWT." },
            { "name": "API keys", "description": "Keys for programs; shown once at creation." },
            { "name": "Calls", "description": "Place calls and read them." },
            { "name": "Call control", "description": "Act on a live call." },
            { "name": "Recordings", "description": "A call's recording." },
            { "name": "Webhooks", "description": format!("Signed event deliveries. {delivery}") },
            { "name": "Users", "description": "People who log in for a JWT." },
            { "name": "SIP users", "description": "Softphones' accounts: they REGISTER to dialtone and call with digest credentials." },
            { "name": "Trunks", "description": "An organization's own SIP trunks, for its calls; the platform's (from the settings) are listed too." },
            { "name": "Numbers", "description": "An organization's phone numbers and what their inbound calls do: an agent, a call webhook (`CallWebhookRequest`, answered by a `CallWebhookAnswer`), a prompt, echo, reject or forward." },
            { "name": "Conferences", "description": "Rooms an organization seats its live calls in: each call is sent the sum of the others (never itself), mixed at 16 kHz and sent at each call's own rate; a muted call hears but is not heard." },
            { "name": "Organizations", "description": "The platform's customers: every user, key, call, webhook and recording belongs to one, and one never sees another's (404). The internal key acts in every one, or in the one `X-Organization-Id` names." }
        ],
        "security": [{ "bearer": [] }, { "apiKey": [] }, { "basic": [] }, { "internalKey": [] }],
        "paths": paths(),
        "webhooks": webhooks(),
        "components": {
            "securitySchemes": security_schemes(),
            "parameters": parameters(),
            "headers": headers(),
            "responses": responses(),
            "schemas": merge([common_schemas(), call_schemas(), account_schemas(), routing_schemas(), conference_schemas()])
        }
    })
}

/// `paths`: every route of the table, its operation described by the table (tag,
/// `operationId`, summary, permission) and its `doc`.
fn paths() -> Value {
    let mut paths = Map::new();
    for r in TABLE {
        let mut op = (r.doc)();
        op["tags"] = json!([r.tag]);
        op["operationId"] = json!(r.operation_id);
        op["summary"] = json!(r.summary);
        let op = match r.permission {
            None => public(op),
            Some(perm) => protected(perm, op),
        };
        let item = paths.entry(r.path).or_insert_with(|| json!({}));
        item[r.method.to_ascii_lowercase()] = op;
    }
    Value::Object(paths)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::events::webhook_operation_id;
    use crate::doc::schemas::{account_schemas, call_schemas, common_schemas, routing_schemas};
    use crate::model::{CallStatus, PERMISSIONS, WEBHOOK_EVENTS};
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
        let n = count(common_schemas())
            + count(call_schemas())
            + count(account_schemas())
            + count(routing_schemas())
            + count(crate::doc::conferences::conference_schemas());
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
