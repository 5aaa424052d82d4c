//! The bodies of the root crate's fuzz targets, one plain function per target, shared by
//! the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`, nightly) and the stable replay of the
//! committed corpora (`tests/fuzz_corpus.rs`, `fixtures/fuzz/<target>/`). Each panics on a
//! property violation; none may panic on any input otherwise.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dialtone_api::http::{router, ApiState, Limits, Rate, RateLimits};
use dialtone_api::store::Store;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tower::ServiceExt as _;

/// A target: its name and its body.
pub type FuzzTarget = (&'static str, fn(&[u8]));

/// The targets by name, for the replay test.
pub const TARGETS: &[FuzzTarget] = &[("agent_messages", agent_messages), ("api_bodies", api_bodies)];

/// `agent_messages`: the agent's WebSocket messages (`media`, `mark`, `clear`, anything
/// else; binary frames in `l16-16k`) through a bridge session, as
/// `dialtone::agent::fuzz::messages` lays them out. Never panics; a message is counted
/// malformed at most once.
pub fn agent_messages(data: &[u8]) {
    let o = dialtone::agent::fuzz::messages(data);
    assert!(o.malformed <= o.handled, "{o:?}");
}

/// The POST endpoints whose JSON bodies are fuzzed, picked by the input's first byte
/// (modulo their number, so `0`…`9` pick them in order). Login is left out: every
/// well-formed body costs an argon2 verification (tens of ms).
pub const ENDPOINTS: &[&str] = &[
    "/api/calls/create",
    "/api/api-keys",
    "/api/users",
    "/api/webhooks",
    "/api/calls/call_0000000000000001/transfer",
    "/api/calls/call_0000000000000001/dtmf",
    "/api/trunks",
    "/api/numbers",
    "/api/calls/call_0000000000000001/bridge",
    "/api/organizations",
];

const KEY: &str = "fuzz-internal-key";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"))
}

/// `api_bodies`: byte 0 picks an endpoint of [`ENDPOINTS`], the rest is the JSON body,
/// POSTed through the real router (fresh in-memory store, the internal key, no engine, no
/// rate limit). Whatever the body: the answer is the JSON envelope with `success` matching
/// the status, never a 500, and a body that is not a JSON object is a 400 naming `body`.
pub fn api_bodies(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let path = ENDPOINTS[usize::from(pick) % ENDPOINTS.len()];
    let store = Store::in_memory().expect("an in-memory store");
    let mut state = ApiState::new(Arc::new(Mutex::new(store)), Some(KEY.into()), None, Arc::new(b"fuzz".to_vec()));
    let lots = Rate { per_s: 1e12, burst: 1e12 };
    state.limits = Arc::new(RateLimits::new(Limits { per_key: lots, per_org: lots, per_addr: lots, login: lots }));
    let req = Request::post(path)
        .header("x-internal-key", KEY)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let (status, answer) = runtime().block_on(async {
        let resp = router(state).oneshot(req).await.expect("the router is infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("the answer's body");
        (status, bytes)
    });
    let v: Value = serde_json::from_slice(&answer)
        .unwrap_or_else(|e| panic!("{status}: the answer is not JSON ({e}): {}", String::from_utf8_lossy(&answer)));
    assert_eq!(v["success"].as_bool(), Some(status.is_success()), "{status} {v}");
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    if !status.is_success() {
        assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string(), "{status} {v}");
    }
    if !matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(_))) && path != "/api/api-keys" {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| m.starts_with("body:")), "{v}");
    }
}
