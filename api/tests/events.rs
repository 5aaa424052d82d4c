//! `GET /api/calls/events` (issue 17's live view): server-sent events of the caller's
//! organization's calls, a snapshot first, then each change, whether the API's handlers or
//! the engine's writer made it; never another organization's call.

mod common;

use axum::http::StatusCode;
use common::*;
use dialtone_api::store::{CallStatus, NewCall, Op, DEFAULT_ORG};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

type Events = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Send>>;

/// Opens the stream with `auth`.
async fn open(app: &App, auth: &str) -> Events {
    let r = app.raw("GET", "/api/calls/events", &[("authorization", auth)], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    Box::pin(r.into_body().into_data_stream())
}

/// The next event that is not a comment: its name and data.
async fn next(events: &mut Events) -> (String, Value) {
    let chunk = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream is open")
        .expect("a chunk");
    let text = String::from_utf8(chunk.to_vec()).unwrap();
    let event = text.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_else(|| panic!("{text:?}"));
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    assert!(text.ends_with("\n\n"), "{text:?}");
    (event.to_string(), serde_json::from_str(data).unwrap())
}

/// Nothing arrives within `ms`.
async fn quiet(events: &mut Events, ms: u64) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(ms), events.next()).await {
        panic!("unexpected {got:?}");
    }
}

fn new_call<'a>(id: &'a str, org: &'a str) -> NewCall<'a> {
    NewCall::new(id, "c", "+15551230000", org, 1)
}

#[tokio::test]
async fn each_organization_sees_its_own_calls_change() {
    for app in App::each() {
        let internal = [("x-internal-key", INTERNAL)];
        let (s, other) = app.send("POST", "/api/organizations", &internal, &json!({"name": "other"}).to_string()).await;
        assert_eq!(s, StatusCode::CREATED, "{other}");
        let other = other["data"]["id"].as_str().unwrap().to_string();
        let ours = format!("Bearer {}", app.key(&["calls:live"]).await);
        let theirs = {
            let h = [("x-internal-key", INTERNAL), ("x-organization-id", other.as_str())];
            let body = json!({"name": "theirs", "permissions": ["calls:live"]}).to_string();
            let (s, v) = app.send("POST", "/api/api-keys", &h, &body).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            format!("Bearer {}", v["data"]["key"].as_str().unwrap())
        };
        app.live_call("call_before");

        // The snapshot: the live calls, each organization its own.
        let mut a = open(&app, &ours).await;
        let (event, data) = next(&mut a).await;
        assert_eq!(event, "snapshot");
        assert_eq!(data["total"], 1, "{data}");
        assert_eq!(data["calls"][0]["id"], "call_before");
        let mut b = open(&app, &theirs).await;
        let (event, data) = next(&mut b).await;
        assert_eq!((event.as_str(), &data["total"]), ("snapshot", &json!(0)), "{data}");

        // Their call changes first; ours is never told.
        {
            let mut s = app.store.lock().unwrap();
            s.insert_call(&new_call("call_theirs", &other)).unwrap();
            s.insert_call(&new_call("call_ours", DEFAULT_ORG)).unwrap();
        }
        let (event, data) = next(&mut a).await;
        assert_eq!((event.as_str(), &data["id"], &data["status"]), ("call", &json!("call_ours"), &json!("initiating")));
        let (event, data) = next(&mut b).await;
        assert_eq!((event.as_str(), &data["id"]), ("call", &json!("call_theirs")));
        quiet(&mut b, 300).await;

        // A change through the engine's writer (one batch, one event per call).
        let ring = |id: &str, to| Op::Status { id: id.into(), to, sip_status: Some(180), reason: None, at: 5 };
        app.store
            .lock()
            .unwrap()
            .apply(&[ring("call_ours", CallStatus::Ringing), ring("call_theirs", CallStatus::Ringing)])
            .unwrap();
        let (_, data) = next(&mut a).await;
        assert_eq!((&data["id"], &data["status"]), (&json!("call_ours"), &json!("ringing")));
        quiet(&mut a, 300).await;
        let (_, data) = next(&mut b).await;
        assert_eq!((&data["id"], &data["status"]), (&json!("call_theirs"), &json!("ringing")));

        // A hang-up through the API is a change too.
        app.store.lock().unwrap().set_status("call_ours", CallStatus::Completed, Some(200), Some("hangup"), 9).unwrap();
        let (_, data) = next(&mut a).await;
        assert_eq!((&data["id"], &data["status"]), (&json!("call_ours"), &json!("completed")));
        quiet(&mut b, 300).await;
    }
}

#[tokio::test]
async fn the_stream_needs_calls_live() {
    for app in App::each() {
        let key = format!("Bearer {}", app.key(&["calls:read"]).await);
        let r = app.raw("GET", "/api/calls/events", &[("authorization", &key)], "").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = app.raw("GET", "/api/calls/events", &[], "").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}
