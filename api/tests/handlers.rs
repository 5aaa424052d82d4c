//! The router driven in process (`tower::ServiceExt::oneshot`, no sockets): credentials,
//! permissions, bad input, unknown calls, and what each engine refusal answers, all in the
//! envelope; and the route table, router and OpenAPI document agreeing.

mod common;

use axum::http::StatusCode;
use common::*;
use dialtone_api::http::{Action, Refusal};
use dialtone_api::store::CallStatus;
use serde_json::{json, Value};

/// The error envelope: `success` false, `data` null, this code; returns the message.
#[track_caller]
fn error(v: &Value, code: &str) -> String {
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["data"], Value::Null, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    v["error"]["message"].as_str().expect("a message").to_string()
}

const CREATE: &str = r#"{"contact_id": "c_1", "phone_number": "+14155550123"}"#;

#[tokio::test]
async fn create_without_credentials_is_401() {
    for app in App::each() {
        let (s, v) = app.send("POST", "/api/calls/create", &[], CREATE).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(error(&v, "unauthorized").contains("missing credentials"));
        let (s, v) = app.send("POST", "/api/calls/create", &[("x-api-key", "dk_nope")], CREATE).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        error(&v, "unauthorized");
        assert!(app.engine.placed.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn create_with_a_key_lacking_the_permission_is_403() {
    for app in App::each() {
        let key = app.key(&["calls:read", "calls:hangup"]).await;
        let (s, v) = app.send("POST", "/api/calls/create", &[("x-api-key", &key)], CREATE).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(error(&v, "forbidden").contains("calls:write"));
        // Checked before the body is read: a bad body still answers 403.
        let (s, _) = app.send("POST", "/api/calls/create", &[("x-api-key", &key)], "{not json").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // The same key as Bearer; and with the permission, the call is placed.
        let bearer = format!("Bearer {key}");
        let (s, _) = app.send("POST", "/api/calls/create", &[("authorization", &bearer)], CREATE).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let key = app.key(&["calls:write"]).await;
        let (s, v) = app.send("POST", "/api/calls/create", &[("x-api-key", &key)], CREATE).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!((v["success"].clone(), v["data"]["status"].clone()), (json!(true), json!("initiating")));
        let placed = app.engine.placed.lock().unwrap();
        assert_eq!(placed.len(), 1);
        assert_eq!(
            (placed[0].id.as_str(), placed[0].phone_number.as_str()),
            (v["data"]["id"].as_str().unwrap(), "+14155550123")
        );
    }
}

#[tokio::test]
async fn malformed_json_is_400_naming_the_body() {
    for app in App::each() {
        let key = app.key(&["calls:write"]).await;
        for bad in ["{\"contact_id\": ", "[1, 2]", "\"a string\""] {
            let (s, v) = app.send("POST", "/api/calls/create", &[("x-api-key", &key)], bad).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
            assert!(error(&v, "invalid_request").starts_with("body: "), "{bad}: {v}");
        }
    }
}

#[tokio::test]
async fn a_bad_field_is_400_naming_it() {
    for app in App::each() {
        let key = app.key(&["calls:write"]).await;
        let h = [("x-api-key", key.as_str())];
        for (body, field) in [
            (json!({"contact_id": "c", "phone_number": "4155550123"}), "phone_number"),
            (json!({"contact_id": "c", "phone_number": "+0123"}), "phone_number"),
            (json!({"contact_id": "c"}), "phone_number"),
            (json!({"phone_number": "+14155550123"}), "contact_id"),
            (json!({"contact_id": "c", "phone_number": "+14155550123", "record": "yes"}), "record"),
            (json!({"contact_id": "c", "phone_number": "+14155550123", "agent_url": "http://x"}), "agent_url"),
            (json!({"contact_id": "c", "phone_number": "+14155550123", "sip_headers": {"Via": "x"}}), "sip_headers"),
            (
                json!({"contact_id": "c", "phone_number": "+14155550123", "sip_headers": {"X-A": "a\r\nVia: x"}}),
                "sip_headers",
            ),
            (json!({"contact_id": "c", "phone_number": "+14155550123", "sip_headers": ["X-A"]}), "sip_headers"),
            (json!({"contact_id": "c", "phone_number": "+14155550123", "ring_timeout": 0}), "ring_timeout"),
            (json!({"contact_id": "c", "phone_number": "+14155550123", "max_duration": "60"}), "max_duration"),
        ] {
            let (s, v) = app.send("POST", "/api/calls/create", &h, &body.to_string()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
            assert!(error(&v, "invalid_request").starts_with(&format!("{field}: ")), "{body}: {v}");
        }
        assert!(app.engine.placed.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn custom_headers_and_time_limits_reach_the_engine_and_the_record() {
    for app in App::each() {
        let key = app.key(&["calls:write", "calls:read"]).await;
        let h = [("x-api-key", key.as_str())];
        let body = json!({"contact_id": "c", "phone_number": "+14155550123", "sip_headers": {"X-Customer-Id": "c-42"},
                      "ring_timeout": 20, "max_duration": 600});
        let (s, v) = app.send("POST", "/api/calls/create", &h, &body.to_string()).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let placed = app.engine.placed.lock().unwrap().clone();
        assert_eq!(placed[0].sip_headers, vec![("X-Customer-Id".to_string(), "c-42".to_string())]);
        assert_eq!((placed[0].ring_timeout, placed[0].max_duration), (Some(20), Some(600)));
        let id = v["data"]["id"].as_str().unwrap();
        let (_, got) = app.send("GET", &format!("/api/calls/{id}"), &h, "").await;
        assert_eq!(got["data"]["sip_headers"], json!({"X-Customer-Id": "c-42"}), "{got}");
        assert_eq!((got["data"]["ring_timeout"].as_u64(), got["data"]["max_duration"].as_u64()), (Some(20), Some(600)));
    }
}

#[tokio::test]
async fn list_limits_are_checked() {
    for app in App::each() {
        let key = app.key(&["calls:read"]).await;
        let h = [("x-api-key", key.as_str())];
        for q in ["limit=5001", "limit=0", "limit=x", "offset=-1", "status=done", "from=yesterday"] {
            let (s, v) = app.send("GET", &format!("/api/calls/list?{q}"), &h, "").await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
            let field = q.split('=').next().unwrap();
            assert!(error(&v, "invalid_request").starts_with(&format!("{field}: ")), "{q}: {v}");
        }
        let (s, v) = app.send("GET", "/api/calls/list?limit=5000", &h, "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v, json!({"success": true, "data": {"calls": [], "total": 0}, "error": null}));
    }
}

#[tokio::test]
async fn an_unknown_call_is_404() {
    for app in App::each() {
        app.live_call("call_known");
        let key = app.key(&["calls:read", "calls:hold", "calls:recording"]).await;
        let h = [("x-api-key", key.as_str())];
        let (s, v) = app.send("GET", "/api/calls/call_known", &h, "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["data"]["events"].as_array().map(Vec::len), Some(2), "{v}");
        for (method, uri) in [
            ("GET", "/api/calls/call_nope"),
            ("POST", "/api/calls/call_nope/hold"),
            ("GET", "/api/calls/call_nope/recording"),
        ] {
            let (s, v) = app.send(method, uri, &h, "").await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{method} {uri}");
            error(&v, "not_found");
        }
        // No engine was asked about a call that does not exist.
        assert!(app.engine.acted.lock().unwrap().is_empty());
        // An unknown path is 404 too, without credentials (not 401).
        let (s, v) = app.send("GET", "/api/nothing/here", &[], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(error(&v, "not_found"), "no such endpoint");
    }
}

#[tokio::test]
async fn engine_refusals_map_to_their_status() {
    for app in App::each() {
        app.live_call("call_1");
        let key = app.key(&["calls:hold"]).await;
        let h = [("x-api-key", key.as_str())];
        let cases = [
            (Answer::Done, StatusCode::ACCEPTED, None),
            (Answer::Refuse(Refusal::NotLive("no dialog".into())), StatusCode::CONFLICT, Some("call_not_live")),
            (
                Answer::Refuse(Refusal::Failed("re-INVITE failed".into())),
                StatusCode::BAD_GATEWAY,
                Some("engine_failed"),
            ),
            (Answer::Refuse(Refusal::Invalid("bad".into())), StatusCode::BAD_REQUEST, Some("invalid_request")),
            (
                Answer::Refuse(Refusal::Unavailable("no port".into())),
                StatusCode::SERVICE_UNAVAILABLE,
                Some("unavailable"),
            ),
            (
                Answer::Refuse(Refusal::Forbidden("destination_forbidden", "no".into())),
                StatusCode::FORBIDDEN,
                Some("destination_forbidden"),
            ),
            (
                Answer::Refuse(Refusal::TooMany("too_many_calls", "wait".into(), 3)),
                StatusCode::TOO_MANY_REQUESTS,
                Some("too_many_calls"),
            ),
            (Answer::Drop, StatusCode::SERVICE_UNAVAILABLE, Some("no_engine")),
        ];
        for (answer, status, code) in cases {
            app.engine.answer(answer.clone());
            let (s, v) = app.send("POST", "/api/calls/call_1/hold", &h, "").await;
            assert_eq!(s, status, "{answer:?}: {v}");
            match code {
                None => {
                    assert_eq!(v, json!({"success": true, "data": {"id": "call_1", "action": "hold"}, "error": null}))
                }
                Some(code) => {
                    let m = error(&v, code);
                    if let Answer::Refuse(Refusal::NotLive(why) | Refusal::Failed(why) | Refusal::Invalid(why)) =
                        &answer
                    {
                        assert_eq!(&m, why);
                    }
                }
            }
        }
        let acted = app.engine.acted.lock().unwrap();
        assert_eq!(acted.len(), 8);
        assert!(acted.iter().all(|(id, a)| id == "call_1" && *a == Action::Hold(true)));
    }
}

#[tokio::test]
async fn an_action_on_a_call_not_live_is_409_before_the_engine() {
    for app in App::each() {
        app.live_call("call_done");
        app.store.lock().unwrap().set_status("call_done", CallStatus::Completed, None, None, 3).unwrap();
        let (s, v) = app.send("POST", "/api/calls/call_done/hold", &[("x-internal-key", INTERNAL)], "").await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(error(&v, "call_not_live"), "the call is completed");
        assert!(app.engine.acted.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_route_table_the_router_and_the_document_agree() {
    use dialtone_api::openapi::{spec, ROUTES};
    use std::collections::BTreeSet;
    for app in App::each() {
        let doc = spec();
        let (s, served) = app.send("GET", "/api/openapi.json", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(served, doc, "the router serves the document");
        let methods = ["get", "put", "post", "delete", "patch"];
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in methods.iter().filter(|m| item.get(**m).is_some()) {
                documented.insert((m.to_ascii_uppercase(), path.clone()));
            }
        }
        let table: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(table.len(), ROUTES.len(), "the table lists a route twice");
        assert_eq!(table, documented, "every route of the table is documented, and only those");
        // Every route is served: a protected one answers 401 without credentials (not 404 or
        // 405), a public one answers without them.
        for (method, path) in ROUTES {
            let uri = path.replace("{id}", "call_x");
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            let (s, v) = app.send(method, &uri, &[], "").await;
            match op.get("x-permission") {
                Some(_) => {
                    assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {v}");
                    error(&v, "unauthorized");
                }
                None => assert!(![401, 403, 404, 405].contains(&s.as_u16()), "{method} {path}: {s}"),
            }
            // Another method on the same path is 405 in the envelope.
            let other = "PUT";
            let (s, v) = app.send(other, &uri, &[], "").await;
            assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{other} {path}");
            error(&v, "method_not_allowed");
        }
        // A key holding exactly a route's x-permission gets past the check; one without it gets 403.
        for (method, path) in ROUTES {
            let Some(perm) = doc["paths"][path][method.to_ascii_lowercase()]["x-permission"].as_str() else { continue };
            let uri = path.replace("{id}", "call_x");
            let without: Vec<&str> = dialtone_api::http::PERMISSIONS.iter().copied().filter(|p| *p != perm).collect();
            let key = app.key(&without).await;
            let (s, v) = app.send(method, &uri, &[("x-api-key", &key)], "{}").await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path} without {perm}: {v}");
            assert!(error(&v, "forbidden").contains(perm));
            let key = app.key(&[perm]).await;
            // The status only: an event stream's body never ends.
            let s = app.raw(method, &uri, &[("x-api-key", &key)], "{}").await.status();
            assert!(![401, 403, 405].contains(&s.as_u16()), "{method} {path} with {perm}: {s}");
        }
    }
}

#[tokio::test]
async fn the_engine_decides_whether_a_call_may_be_placed_before_it_is_stored() {
    for app in App::each() {
        let key = app.key(&["calls:write", "calls:read"]).await;
        let h = [("x-api-key", key.as_str())];
        // At the organization's limit: 429 with Retry-After, and nothing stored or placed.
        *app.engine.admit_refusal.lock().unwrap() =
            Some(Refusal::TooMany("max_concurrent_calls", "the organization has 2 calls up, its limit".into(), 1));
        let (s, v) = app.send("POST", "/api/calls/create", &h, CREATE).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
        error(&v, "max_concurrent_calls");
        // Retry-After is a header: check it on the raw response.
        let r = app.raw("POST", "/api/calls/create", &h, CREATE).await;
        assert_eq!(r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()).as_deref(), Some("1"));
        // A destination outside the allowed ones: 403 naming the rule.
        *app.engine.admit_refusal.lock().unwrap() =
            Some(Refusal::Forbidden("destination_not_allowed", "+14155550123 is not allowed".into()));
        let (s, v) = app.send("POST", "/api/calls/create", &h, CREATE).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        error(&v, "destination_not_allowed");
        let (_, v) = app.send("GET", "/api/calls/list", &h, "").await;
        assert_eq!(v["data"]["total"], 0, "a refused call is not stored: {v}");
        assert!(app.engine.placed.lock().unwrap().is_empty());
        // Admitted: stored and placed; a replay (same Idempotency-Key) gives its place back.
        *app.engine.admit_refusal.lock().unwrap() = None;
        let h2 = [("x-api-key", key.as_str()), ("idempotency-key", "k1")];
        let (s, _) = app.send("POST", "/api/calls/create", &h2, CREATE).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = app.send("POST", "/api/calls/create", &h2, CREATE).await;
        assert_eq!(s, StatusCode::OK, "replayed");
        assert_eq!(app.engine.placed.lock().unwrap().len(), 1);
        assert_eq!(app.engine.admitted.lock().unwrap().len(), 2);
        assert_eq!(app.engine.released.lock().unwrap().len(), 1, "the replay's place is given back");
    }
}
