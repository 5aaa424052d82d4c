//! The router driven in process (`tower::ServiceExt::oneshot`, no sockets) with a fake
//! call engine: shared by the API's tests.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use dialtone_api::http::{router, Action, ApiState, CallControl, Originate, Refusal, Reply, TrunkStatus};
use dialtone_api::store::{CallStatus, NewCall, NumberRow, Organization, Store, TrunkRow, DEFAULT_ORG};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub const INTERNAL: &str = "internal-test-key";

/// What the fake engine does with the next action.
#[derive(Clone, Debug)]
pub enum Answer {
    Done,
    Refuse(Refusal),
    /// Drops the reply sender: the engine went away.
    Drop,
}

/// A call engine that answers as told and remembers what it was asked.
pub struct Fake {
    pub answer: Mutex<Answer>,
    pub acted: Mutex<Vec<(String, Action)>>,
    pub placed: Mutex<Vec<Originate>>,
    /// What the next admission answers (`None`: yes).
    pub admit_refusal: Mutex<Option<Refusal>>,
    /// Calls admitted, and those given back.
    pub admitted: Mutex<Vec<String>>,
    pub released: Mutex<Vec<String>>,
    /// The organization policies it was told.
    pub policies: Mutex<Vec<Organization>>,
    /// Every list of trunks and of numbers it was handed, in order.
    pub trunks: Mutex<Vec<Vec<TrunkRow>>>,
    pub numbers: Mutex<Vec<Vec<NumberRow>>>,
    /// What `trunk_status` answers.
    pub trunk_status: Mutex<Vec<TrunkStatus>>,
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake {
            answer: Mutex::new(Answer::Done),
            acted: Mutex::default(),
            placed: Mutex::default(),
            admit_refusal: Mutex::default(),
            admitted: Mutex::default(),
            released: Mutex::default(),
            policies: Mutex::default(),
            trunks: Mutex::default(),
            numbers: Mutex::default(),
            trunk_status: Mutex::default(),
        })
    }

    pub fn answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }
}

impl CallControl for Fake {
    fn admit(&self, _org: &str, _number: &str, call_id: &str) -> Reply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        match self.admit_refusal.lock().unwrap().clone() {
            Some(r) => drop(tx.send(Err(r))),
            None => {
                self.admitted.lock().unwrap().push(call_id.to_string());
                drop(tx.send(Ok(())));
            }
        }
        rx
    }

    fn release(&self, call_id: &str) {
        self.released.lock().unwrap().push(call_id.to_string());
    }

    fn set_policy(&self, org: &Organization) {
        self.policies.lock().unwrap().push(org.clone());
    }

    fn set_trunks(&self, trunks: Vec<TrunkRow>) {
        self.trunks.lock().unwrap().push(trunks);
    }

    fn set_numbers(&self, numbers: Vec<NumberRow>) {
        self.numbers.lock().unwrap().push(numbers);
    }

    fn trunk_status(&self) -> Vec<TrunkStatus> {
        self.trunk_status.lock().unwrap().clone()
    }

    fn originate(&self, call: Originate) {
        self.placed.lock().unwrap().push(call);
    }

    fn act(&self, id: &str, action: Action) -> Reply {
        self.acted.lock().unwrap().push((id.to_string(), action));
        let (tx, rx) = tokio::sync::oneshot::channel();
        match self.answer.lock().unwrap().clone() {
            Answer::Done => drop(tx.send(Ok(()))),
            Answer::Refuse(r) => drop(tx.send(Err(r))),
            Answer::Drop => drop(tx),
        }
        rx
    }
}

pub struct App {
    pub router: Router,
    pub store: Arc<Mutex<Store>>,
    pub engine: Arc<Fake>,
}

impl App {
    /// An app on each backend: SQLite in memory, and PostgreSQL (a fresh schema) when
    /// DIALTONE_TEST_DATABASE_URL is set. A test runs its body on each.
    pub fn each() -> Vec<App> {
        Store::test_backends().unwrap().into_iter().map(App::on).collect()
    }

    fn on(store: Store) -> App {
        let store = Arc::new(Mutex::new(store));
        let engine = Fake::new();
        let control: Arc<dyn CallControl> = engine.clone();
        let state = ApiState::new(store.clone(), Some(INTERNAL.into()), Some(control), Arc::new(vec![7; 32]));
        App { router: router(state), store, engine }
    }

    /// The response itself (headers included).
    pub async fn raw(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> axum::response::Response {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = req.header("content-type", "application/json");
        self.router.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap()
    }

    pub async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let r = self.router.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let status = r.status();
        if r.headers().get("content-type").is_some_and(|t| t == "text/event-stream") {
            // An event stream never ends: its first event's data (the snapshot).
            use futures_util::StreamExt;
            let mut events = r.into_body().into_data_stream();
            let first = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await;
            let first = first.expect("a first event").expect("the stream is open").unwrap();
            let text = String::from_utf8_lossy(&first).to_string();
            let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            return (status, json!({"data": serde_json::from_str::<Value>(data).unwrap()}));
        }
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
        (status, v)
    }

    /// A new API key of the default organization holding `perms`, made through the API
    /// with the internal key.
    pub async fn key(&self, perms: &[&str]) -> String {
        let body = json!({"name": "test", "permissions": perms}).to_string();
        let h = [("x-internal-key", INTERNAL), ("x-organization-id", DEFAULT_ORG)];
        let (s, v) = self.send("POST", "/api/api-keys", &h, &body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["data"]["key"].as_str().unwrap().to_string()
    }

    /// A stored call, answered (`in-progress`).
    pub fn live_call(&self, id: &str) {
        let mut s = self.store.lock().unwrap();
        s.insert_call(&NewCall::new(id, "c", "+15551230000", DEFAULT_ORG, 1)).unwrap();
        s.set_status(id, CallStatus::InProgress, Some(200), None, 2).unwrap();
    }
}
