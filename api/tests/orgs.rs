//! Organizations (issue 20): two organizations, each with its admin, user, key, webhook,
//! call and recording. Table-driven over the route table, so a route added later without
//! a scope fails here: every route that takes an id answers the other organization 404
//! (or 403 where only the platform's owner may act at all), every list shows only one's
//! own rows, and the internal key acts everywhere, or inside the organization
//! `X-Organization-Id` names.

mod common;

use axum::http::StatusCode;
use common::*;
use dialtone_api::http::PERMISSIONS;
use dialtone_api::routes::TABLE;
use dialtone_api::store::{CallStatus, RecordingState, DEFAULT_ORG};
use serde_json::{json, Value};
use std::collections::HashMap;

/// One organization's rows, by kind (`call`, `key`, `webhook`, `user`, `organization`,
/// `sip_user`, `trunk`, `number`), and how its admin authenticates.
struct Org {
    id: String,
    admin: String,
    ids: HashMap<&'static str, String>,
}

async fn created(app: &App, path: &str, auth: &[(&str, &str)], body: Value) -> Value {
    let (s, v) = app.send("POST", path, auth, &body.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "POST {path}: {v}");
    v["data"].clone()
}

async fn login(app: &App, email: &str) -> String {
    let body = json!({"email": email, "password": "pw-123456789"}).to_string();
    let (s, v) = app.send("POST", "/api/v1/auth/user-login", &[], &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    format!("Bearer {}", v["token"].as_str().unwrap())
}

/// An organization made by the internal key, its admin and a user placed in it by the
/// internal key, and the admin's key, webhook and (recorded, answered) call.
async fn organization(app: &App, name: &str, dir: &std::path::Path) -> Org {
    let internal = [("x-internal-key", INTERNAL)];
    let org = created(app, "/api/organizations", &internal, json!({"name": name})).await;
    let id = org["id"].as_str().unwrap().to_string();
    let email = format!("admin@{name}.example");
    let admin = json!({"email": email, "password": "pw-123456789", "role": "admin", "organization_id": id});
    let admin_user = created(app, "/api/users", &internal, admin).await;
    assert_eq!(admin_user["organization_id"], id.as_str());
    let admin = login(app, &email).await;
    let auth = [("authorization", admin.as_str())];
    let user =
        json!({"email": format!("user@{name}.example"), "password": "pw-123456789", "permissions": ["calls:read"]});
    let user = created(app, "/api/users", &auth, user).await;
    assert_eq!(user["organization_id"], id.as_str(), "a user is made in its creator's organization");
    let perms: Vec<&str> = PERMISSIONS.iter().copied().filter(|p| *p != "orgs:write").collect();
    let key = created(app, "/api/api-keys", &auth, json!({"name": name, "permissions": perms})).await;
    let hook = created(app, "/api/webhooks", &auth, json!({"url": format!("http://127.0.0.1:9/{name}")})).await;
    let phone = json!({"username": format!("{name}-desk"), "password": "a long phone secret"});
    let phone = created(app, "/api/sip-users", &auth, phone).await;
    assert_eq!(phone["organization_id"], id.as_str());
    let trunk = json!({"name": "carrier", "uri": format!("sip:{name}.carrier.example"), "password": "pw"});
    let trunk = created(app, "/api/trunks", &auth, trunk).await;
    assert_eq!(trunk["organization_id"], id.as_str());
    let digits = if name == "acme" { "+15550100" } else { "+15550200" };
    let number = created(app, "/api/numbers", &auth, json!({"number": digits, "action": {"type": "echo"}})).await;
    assert_eq!(number["organization_id"], id.as_str());
    let call =
        created(app, "/api/calls/create", &auth, json!({"contact_id": name, "phone_number": "+14155550123"})).await;
    assert_eq!(call["organization_id"], id.as_str());
    let call_id = call["id"].as_str().unwrap().to_string();
    let conference = created(app, "/api/conferences", &auth, json!({"name": "standup"})).await;
    assert_eq!(conference["organization_id"], id.as_str());
    {
        let mut s = app.store.lock().unwrap();
        s.set_status(&call_id, CallStatus::InProgress, Some(200), None, 2).unwrap();
        let wav = dir.join(format!("{call_id}.wav"));
        std::fs::write(&wav, b"RIFF....WAVE").unwrap();
        s.set_recording(&call_id, RecordingState::Ready, Some(wav.to_str().unwrap()), 3).unwrap();
    }
    let ids = HashMap::from([
        ("call", call_id),
        ("key", key["id"].as_str().unwrap().to_string()),
        ("webhook", hook["id"].as_str().unwrap().to_string()),
        ("user", user["id"].as_str().unwrap().to_string()),
        ("organization", id.clone()),
        ("sip_user", phone["id"].as_str().unwrap().to_string()),
        ("trunk", trunk["id"].as_str().unwrap().to_string()),
        ("number", number["id"].as_str().unwrap().to_string()),
        ("conference", conference["id"].as_str().unwrap().to_string()),
    ]);
    Org { id, admin, ids }
}

/// The kind of row a route's `{id}` names. A route added with an id of a new kind must
/// be added here, and is then held to the same rule.
fn kind(path: &str) -> &'static str {
    let p = path.trim_start_matches("/api/");
    match p.split('/').next() {
        Some("calls") => "call",
        Some("api-keys") => "key",
        Some("webhooks") => "webhook",
        Some("users") => "user",
        Some("organizations") => "organization",
        Some("sip-users") => "sip_user",
        Some("trunks") => "trunk",
        Some("numbers") => "number",
        Some("conferences") => "conference",
        _ => panic!("{path} takes an id of a kind this test does not know: add it, scoped"),
    }
}

/// A body that passes the route's field checks, so the answer is about the id; `call` is
/// the acting organization's call.
fn body_for(path: &str, call: &str) -> String {
    if path.ends_with("/transfer") {
        r#"{"destination": "+14155550100"}"#.into()
    } else if path.ends_with("/dtmf") {
        r#"{"digits": "1"}"#.into()
    } else if path.ends_with("/bridge") {
        r#"{"call_id": "call_0000000000000000"}"#.into()
    } else if path.ends_with("/participants") {
        json!({"call_id": call}).to_string()
    } else if path.ends_with("/participants/{call_id}") {
        r#"{"muted": true}"#.into()
    } else {
        "{}".into()
    }
}

/// `path` with its ids: `{id}` a row of the kind the path names, `{call_id}` a call.
fn uri_of(path: &str, ids: &HashMap<&'static str, String>) -> String {
    path.replace("{id}", &ids[kind(path)]).replace("{call_id}", &ids["call"])
}

#[tokio::test]
async fn one_organization_never_reaches_anothers_rows() {
    for app in App::each() {
        let dir = std::env::temp_dir().join(format!("dialtone-orgs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = organization(&app, "acme", &dir).await;
        let b = organization(&app, "globex", &dir).await;
        let b_key = {
            let (s, v) = app.send("GET", "/api/api-keys", &[("authorization", &b.admin)], "").await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v["data"]["keys"].as_array().unwrap().len(), 1, "{v}");
            // The key's secret was shown once; make another to act with.
            let perms: Vec<&str> = PERMISSIONS.iter().copied().filter(|p| *p != "orgs:write").collect();
            let body = json!({"name": "b-acting", "permissions": perms});
            created(&app, "/api/api-keys", &[("authorization", &b.admin)], body).await["key"]
                .as_str()
                .unwrap()
                .to_string()
        };
        // B in every guise: its admin's JWT, its key, the internal key inside B.
        let guises: [(&str, Vec<(&str, &str)>); 3] = [
            ("B's admin", vec![("authorization", b.admin.as_str())]),
            ("B's key", vec![("x-api-key", b_key.as_str())]),
            ("the internal key in B", vec![("x-internal-key", INTERNAL), ("x-organization-id", b.id.as_str())]),
        ];
        let id_routes: Vec<_> = TABLE.iter().filter(|r| r.path.contains("{id}")).collect();
        assert!(id_routes.len() >= 12, "the table's id routes: {}", id_routes.len());
        for (who, auth) in &guises {
            for r in &id_routes {
                let uri = uri_of(r.path, &a.ids);
                let (s, v) = app.send(r.method, &uri, auth, &body_for(r.path, &b.ids["call"])).await;
                let platform_only = r.permission == Some("orgs:write") && !who.starts_with("the internal key");
                let want = if platform_only { StatusCode::FORBIDDEN } else { StatusCode::NOT_FOUND };
                assert_eq!(s, want, "{who}: {} {uri}: {v}", r.method);
                let code = if platform_only { "forbidden" } else { "not_found" };
                assert_eq!(v["error"]["code"], code, "{who}: {} {uri}: {v}", r.method);
            }
            // Every list shows none of A's rows (and B's own call where calls are listed).
            for r in TABLE.iter().filter(|r| r.method == "GET" && r.permission.is_some() && !r.path.contains('{')) {
                let (s, v) = app.send("GET", r.path, auth, "").await;
                assert_eq!(s, StatusCode::OK, "{who}: GET {}: {v}", r.path);
                let text = v.to_string();
                for (k, id) in &a.ids {
                    assert!(!text.contains(id.as_str()), "{who}: GET {} shows A's {k} {id}: {v}", r.path);
                }
                if r.path.starts_with("/api/calls/") {
                    assert!(text.contains(&b.ids["call"]), "{who}: GET {} lacks B's own call: {v}", r.path);
                }
            }
            let (s, v) = app.send("GET", "/api/v1/calls", auth, "").await;
            assert_eq!((s, v["data"]["total"].as_u64()), (StatusCode::OK, Some(1)), "{who}: {v}");
        }
        // The Twilio-compatible update with B's key (Basic: its id and secret) on A's call:
        // Twilio's 404 (20404), whether the path names B's key or A's organization.
        let twilio_key = created(
            &app,
            "/api/api-keys",
            &[("authorization", &b.admin)],
            json!({"name": "b-twilio", "permissions": ["calls:hangup", "calls:read"]}),
        )
        .await;
        let (kid, secret) = (twilio_key["id"].as_str().unwrap(), twilio_key["key"].as_str().unwrap());
        let basic = {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{kid}:{secret}")))
        };
        let sid = dialtone_api::twilio::call_sid(&a.ids["call"]).unwrap();
        for account in [kid, a.id.as_str()] {
            let uri = format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json");
            let (s, v) = app.send("POST", &uri, &[("authorization", &basic)], "Status=completed").await;
            assert_eq!((s, &v["code"]), (StatusCode::NOT_FOUND, &json!(20404)), "{uri}: {v}");
        }
        // Nor can A seat B's call in its own conference: B's call is not there for A.
        let a_auth = [("authorization", a.admin.as_str())];
        let uri = format!("/api/conferences/{}/participants", a.ids["conference"]);
        let (s, v) = app.send("POST", &uri, &a_auth, &json!({"call_id": b.ids["call"]}).to_string()).await;
        assert_eq!((s, &v["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{v}");
        // A reaches its own rows by every id route: nothing above was refused for want of
        // a row that is there. Destructive routes go last.
        let mut own: Vec<_> = id_routes.clone();
        own.sort_by_key(|r| r.method == "DELETE");
        for r in own {
            // A bridge needs a second live call of A's (tests/bridge.rs joins two); here the
            // body names none that exists.
            if r.permission == Some("orgs:write") || r.path.ends_with("/bridge") {
                continue;
            }
            let uri = uri_of(r.path, &a.ids);
            let (s, v) = app.send(r.method, &uri, &a_auth, &body_for(r.path, &a.ids["call"])).await;
            assert!(s.is_success(), "A: {} {uri}: {s} {v}", r.method);
        }
        // The internal key without X-Organization-Id reads across organizations.
        let internal = [("x-internal-key", INTERNAL)];
        let (s, v) = app.send("GET", "/api/calls/list", &internal, "").await;
        assert_eq!((s, v["data"]["total"].as_u64()), (StatusCode::OK, Some(2)), "{v}");
        let (s, _) = app.send("GET", &format!("/api/calls/{}", b.ids["call"]), &internal, "").await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = app.send("GET", "/api/organizations", &internal, "").await;
        assert_eq!((s, v["data"]["organizations"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{v}");
        // …and a create that needs an organization names the header.
        for (path, body) in [
            ("/api/calls/create", json!({"contact_id": "c", "phone_number": "+14155550123"})),
            ("/api/api-keys", json!({"name": "k", "permissions": ["calls:read"]})),
            ("/api/webhooks", json!({"url": "http://127.0.0.1:9/x"})),
            ("/api/users", json!({"email": "x@example.com", "password": "pw-123456789"})),
        ] {
            let (s, v) = app.send("POST", path, &internal, &body.to_string()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().starts_with("X-Organization-Id"), "{path}: {v}");
        }
        let unknown = [("x-internal-key", INTERNAL), ("x-organization-id", "org_nope")];
        let (s, v) = app.send("GET", "/api/calls/list", &unknown, "").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        // Only the platform's owner places a user in another organization or makes one.
        let body = json!({"email": "spy@example.com", "password": "pw-123456789", "organization_id": a.id});
        let (s, v) = app.send("POST", "/api/users", &[("authorization", &b.admin)], &body.to_string()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        let (s, _) =
            app.send("POST", "/api/organizations", &[("authorization", &b.admin)], r#"{"name": "mine"}"#).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let body = json!({"email": "x2@example.com", "password": "pw-123456789", "permissions": ["orgs:write"]});
        let (s, v) = app.send("POST", "/api/users", &internal_in(&b.id), &body.to_string()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "nobody is given orgs:write: {v}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn internal_in(org: &str) -> [(&'static str, &str); 2] {
    [("x-internal-key", INTERNAL), ("x-organization-id", org)]
}

#[tokio::test]
async fn webhooks_hear_only_their_organizations_events() {
    for app in App::each() {
        let dir = std::env::temp_dir().join(format!("dialtone-orgs-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = organization(&app, "acme", &dir).await;
        let b = organization(&app, "globex", &dir).await;
        let (due, _) = app.store.lock().unwrap().due_deliveries(i64::MAX).unwrap();
        assert_eq!(due.len(), 2, "one pending event per webhook: {due:?}");
        for d in due {
            let (mine, other) = if d.webhook_id == a.ids["webhook"] { (&a, &b) } else { (&b, &a) };
            assert!(d.payload.contains(&mine.ids["call"]) && !d.payload.contains(&other.ids["call"]), "{d:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn an_organizations_policy_goes_to_the_engine_and_is_checked() {
    for app in App::each() {
        let internal = [("x-internal-key", INTERNAL)];
        let body = json!({"name": "acme", "max_concurrent_calls": 2, "allowed_destinations": ["+44"]});
        let org = created(&app, "/api/organizations", &internal, body).await;
        assert_eq!((org["max_concurrent_calls"].as_u64(), &org["allowed_destinations"]), (Some(2), &json!(["+44"])));
        let uri = format!("/api/organizations/{}", org["id"].as_str().unwrap());
        let (s, v) =
            app.send("PATCH", &uri, &internal, r#"{"max_calls_per_second": 0.5, "max_concurrent_calls": null}"#).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (&v["data"]["max_concurrent_calls"], v["data"]["max_calls_per_second"].as_f64()),
            (&Value::Null, Some(0.5))
        );
        let (s, v) = app.send("PATCH", &uri, &internal, r#"{"allowed_destinations": ["44"]}"#).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().starts_with("allowed_destinations"));
        // Each change hands the engine every organization's policy again.
        let told: Vec<_> = app.engine.policies.lock().unwrap().iter().filter(|o| o.name == "acme").cloned().collect();
        assert_eq!(told.len(), 2, "created, then changed: {told:?}");
        assert_eq!((told[1].max_calls_per_second, told[1].max_concurrent_calls), (Some(0.5), None));
        let (s, _) = app.send("POST", "/api/organizations", &internal, r#"{"name": "acme"}"#).await;
        assert_eq!(s, StatusCode::CONFLICT, "names are unique");
        let (s, v) = app.send("GET", &format!("/api/organizations/{DEFAULT_ORG}"), &internal, "").await;
        assert_eq!((s, &v["data"]["name"]), (StatusCode::OK, &json!("default")));
    }
}
