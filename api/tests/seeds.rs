//! Every curl example of the two seed documents (`shared/seeds/000_…`, `001_…`), replayed as
//! written (method, path with its query, headers, body), with only the placeholders filled
//! (`YOUR_API_KEY`, the `ak_…` key, the e-mail and password): each succeeds, and the answer
//! has the seed's field names.

mod common;

use axum::http::StatusCode;
use common::*;
use dialtone_api::http::{hash_password, PERMISSIONS};
use dialtone_api::store::{User, DEFAULT_ORG};
use serde_json::Value;

const EMAIL: &str = "owner@example.com";
const PASSWORD: &str = "your-password";

fn admin(app: &App) {
    let user = User {
        id: "user_seed".into(),
        email: EMAIL.into(),
        password_hash: hash_password(PASSWORD),
        role: "admin".into(),
        permissions: PERMISSIONS.iter().map(|p| p.to_string()).collect(),
        created_at: 1,
        organization_id: DEFAULT_ORG.into(),
    };
    app.store.lock().unwrap().insert_user(&user).unwrap();
}

#[track_caller]
fn ok(s: StatusCode, v: &Value, what: &str) {
    assert!(s.is_success(), "{what}: {s} {v}");
    assert_eq!(v["success"], true, "{what}: {v}");
    assert_eq!(v["error"], Value::Null, "{what}: {v}");
}

#[tokio::test]
async fn the_seed_000_examples_work_as_written() {
    for app in App::each() {
        let key = app.key(&["calls:read", "calls:write", "keys:read", "keys:write"]).await;
        let h = [("x-api-key", key.as_str()), ("Content-Type", "application/json")];

        // Create API Key.
        let body = "{\n\"name\": \"My API Key\",\n\"permissions\": [\n\"calls:read\",\n\"calls:write\"\n]\n}";
        let (s, v) = app.send("POST", "/api/api-keys", &h, body).await;
        ok(s, &v, "POST /api/api-keys");
        for f in ["id", "name", "key", "created_at"] {
            assert!(v["data"][f].is_string(), "{f}: {v}");
        }
        assert_eq!(v["data"]["name"], "My API Key");

        // Get All API Keys.
        let (s, v) = app.send("GET", "/api/api-keys", &h[..1], "").await;
        ok(s, &v, "GET /api/api-keys");
        let keys = v["data"]["keys"].as_array().expect("data.keys");
        assert!(keys.iter().any(|k| k["name"] == "My API Key"), "{v}");
        for f in ["id", "name", "created_at"] {
            assert!(keys[0][f].is_string(), "{f}: {v}");
        }

        // Create Call (the seed's own from_number, +0987654321, is a caller ID, not E.164).
        let body =
        "{\n\"contact_id\": \"contact_123\",\n\"phone_number\": \"+1234567890\",\n\"from_number\": \"+0987654321\"\n}";
        let (s, v) = app.send("POST", "/api/calls/create", &h, body).await;
        ok(s, &v, "POST /api/calls/create");
        assert_eq!(v["data"]["status"], "initiating", "{v}");
        assert_eq!(
            (&v["data"]["contact_id"], &v["data"]["phone_number"]),
            (&"contact_123".into(), &"+1234567890".into())
        );
        assert!(v["data"]["id"].is_string() && v["data"]["created_at"].is_string(), "{v}");
        let placed = app.engine.placed.lock().unwrap().clone();
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].from_number.as_deref(), Some("+0987654321"));

        // Get All Calls.
        let (s, v) = app.send("GET", "/api/calls/list?limit=50&status=completed", &h[..1], "").await;
        ok(s, &v, "GET /api/calls/list");
        assert!(v["data"]["calls"].is_array() && v["data"]["total"].is_number(), "{v}");
    }
}

#[tokio::test]
async fn the_seed_001_examples_work_as_written() {
    for app in App::each() {
        admin(&app);
        let key = app.key(&["calls.read"]).await;

        // `curl -X GET https://your-server:8000/api/v1/calls -H "X-API-Key: ak_…"`
        let (s, v) = app.send("GET", "/api/v1/calls", &[("X-API-Key", &key)], "").await;
        ok(s, &v, "GET /api/v1/calls");
        assert!(v["data"]["calls"].is_array(), "{v}");

        // The user login, and the token used as the seed says.
        let body = format!(r#"{{"email": "{EMAIL}", "password": "{PASSWORD}"}}"#);
        let (s, v) = app.send("POST", "/api/v1/auth/user-login", &[("Content-Type", "application/json")], &body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let token = v["token"].as_str().expect("token at the top, as the seed shows").to_string();
        for f in ["id", "email", "role"] {
            assert!(v["user"][f].is_string(), "user.{f}: {v}");
        }
        let bearer = format!("Bearer {token}");
        let (s, v) = app.send("GET", "/api/v1/calls", &[("Authorization", &bearer)], "").await;
        ok(s, &v, "GET /api/v1/calls with the JWT");
    }
}

#[tokio::test]
async fn every_route_answers_under_api_v1_too() {
    for app in App::each() {
        // Unauthenticated: a protected route under /api/v1/ answers 401 (it exists), an
        // unknown one 404.
        for path in
            ["/api/v1/calls/list", "/api/v1/api-keys", "/api/v1/calls/live", "/api/v1/webhooks", "/api/v1/users"]
        {
            let (s, v) = app.send("GET", path, &[], "").await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: {v}");
        }
        let (s, _) = app.send("GET", "/api/v1/nothing-here", &[], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = app
            .send(
                "POST",
                "/api/v1/calls",
                &[("x-internal-key", INTERNAL), ("x-organization-id", DEFAULT_ORG)],
                r#"{"contact_id": "c", "phone_number": "+14155550123"}"#,
            )
            .await;
        ok(s, &v, "POST /api/v1/calls");
    }
}
