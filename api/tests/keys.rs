//! Keys belong to their creator (issue 20): each user lists only their own, cannot revoke
//! another's (404, as if it did not exist), an admin can and lists them all with
//! `?scope=organization`; a key acts as its creator and stops when the creator is deleted.

mod common;

use axum::http::StatusCode;
use common::*;
use dialtone_api::http::hash_password;
use dialtone_api::store::{Scope, User, DEFAULT_ORG};
use serde_json::{json, Value};

fn user(app: &App, id: &str, role: &str) {
    let u = User {
        id: id.into(),
        email: format!("{id}@example.com"),
        password_hash: hash_password("pw-123456789"),
        role: role.into(),
        permissions: ["keys:read", "keys:write", "calls:read"].iter().map(|p| p.to_string()).collect(),
        created_at: 1,
        organization_id: DEFAULT_ORG.into(),
    };
    app.store.lock().unwrap().insert_user(&u).unwrap();
}

async fn login(app: &App, id: &str) -> String {
    let body = json!({"email": format!("{id}@example.com"), "password": "pw-123456789"}).to_string();
    let (s, v) = app.send("POST", "/api/v1/auth/user-login", &[], &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    format!("Bearer {}", v["token"].as_str().unwrap())
}

async fn create_key(app: &App, auth: &str, name: &str) -> (String, String) {
    let body = json!({"name": name, "permissions": ["keys:read", "keys:write"]}).to_string();
    let (s, v) = app.send("POST", "/api/api-keys", &[("authorization", auth)], &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (v["data"]["id"].as_str().unwrap().to_string(), v["data"]["key"].as_str().unwrap().to_string())
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> =
        v["data"]["keys"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap().to_string()).collect();
    n.sort();
    n
}

#[tokio::test]
async fn each_user_sees_and_revokes_only_their_own_keys() {
    for app in App::each() {
        user(&app, "user_alice", "user");
        user(&app, "user_bob", "user");
        user(&app, "user_root", "admin");
        let (alice, bob, root) =
            (login(&app, "user_alice").await, login(&app, "user_bob").await, login(&app, "user_root").await);
        let (alice_key_id, alice_key) = create_key(&app, &alice, "alice-1").await;
        let (bob_key_id, _) = create_key(&app, &bob, "bob-1").await;
        // A key acts as its creator: what it creates is its creator's.
        let (_, _) = create_key(&app, &format!("Bearer {alice_key}"), "alice-2").await;

        let (_, v) = app.send("GET", "/api/api-keys", &[("authorization", &alice)], "").await;
        assert_eq!(names(&v), ["alice-1", "alice-2"]);
        let (_, v) = app.send("GET", "/api/api-keys", &[("x-api-key", &alice_key)], "").await;
        assert_eq!(names(&v), ["alice-1", "alice-2"], "a key lists its creator's keys");
        let (_, v) = app.send("GET", "/api/api-keys", &[("authorization", &bob)], "").await;
        assert_eq!(names(&v), ["bob-1"]);
        // The list tells keys apart by their secret's start, and shows when each was last used
        // (Alice's first key made her second), never the secret.
        let (_, v) = app.send("GET", "/api/api-keys", &[("authorization", &alice)], "").await;
        let first = v["data"]["keys"].as_array().unwrap().iter().find(|k| k["name"] == "alice-1").unwrap().clone();
        assert_eq!(first["prefix"].as_str(), Some(&alice_key[..7]), "{v}");
        assert!(first["last_used_at"].is_string(), "{v}");
        assert!(!v.to_string().contains(&alice_key), "{v}");

        // Another user's key is not there for Alice: 404, and it keeps working.
        let (s, v) = app.send("DELETE", &format!("/api/api-keys/{bob_key_id}"), &[("authorization", &alice)], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        let (s, _) = app.send("GET", "/api/api-keys?scope=organization", &[("authorization", &alice)], "").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "only admins see every key");

        // The admin lists them all and may revoke any.
        let (_, v) = app.send("GET", "/api/api-keys?scope=organization", &[("authorization", &root)], "").await;
        assert_eq!(names(&v), ["alice-1", "alice-2", "bob-1"]);
        let (s, v) = app.send("DELETE", &format!("/api/api-keys/{bob_key_id}"), &[("authorization", &root)], "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, _) =
            app.send("DELETE", &format!("/api/api-keys/{alice_key_id}"), &[("authorization", &alice)], "").await;
        assert_eq!(s, StatusCode::OK, "her own");
    }
}

#[tokio::test]
async fn a_key_stops_when_its_creator_is_deleted() {
    for app in App::each() {
        user(&app, "user_carol", "user");
        let carol = login(&app, "user_carol").await;
        let (_, key) = create_key(&app, &carol, "carol-1").await;
        let (s, _) = app.send("GET", "/api/api-keys", &[("x-api-key", &key)], "").await;
        assert_eq!(s, StatusCode::OK);
        app.store.lock().unwrap().delete_user(&Scope::All, "user_carol").unwrap();
        let (s, v) = app.send("GET", "/api/api-keys", &[("x-api-key", &key)], "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
}

#[tokio::test]
async fn a_key_made_by_a_key_before_keys_had_owners_acts_for_that_keys_creator() {
    use dialtone_api::http::key_hash;
    use dialtone_api::store::ApiKey;
    for app in App::each() {
        user(&app, "user_dave", "user");
        let dave = login(&app, "user_dave").await;
        let (parent_id, _) = create_key(&app, &dave, "dave-1").await;
        // As stored before: `created_by` names the key that made it.
        let old = ApiKey {
            id: "key_legacy0001".into(),
            name: "legacy".into(),
            permissions: vec!["keys:read".into()],
            created_by: parent_id,
            created_at: 2,
            last_used_at: None,
            revoked_at: None,
            organization_id: DEFAULT_ORG.into(),
            prefix: None,
        };
        app.store.lock().unwrap().insert_key(&old, &key_hash("dk_legacy")).unwrap();
        let (s, v) = app.send("GET", "/api/api-keys", &[("x-api-key", "dk_legacy")], "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(names(&v), ["dave-1"], "Dave's keys (the legacy one was stored under its parent key)");
        app.store.lock().unwrap().delete_user(&Scope::All, "user_dave").unwrap();
        let (s, _) = app.send("GET", "/api/api-keys", &[("x-api-key", "dk_legacy")], "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}
