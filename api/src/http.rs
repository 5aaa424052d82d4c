//! The HTTP API (DESIGN.md "The control API"): every response is the envelope
//! `{"success": bool, "data": …, "error": null | {"code", "message"}}`, errors included
//! (unknown route 404, wrong method 405, bad parameters 400 naming the field).
//!
//! Who may do what: [`PERMISSIONS`], checked per endpoint against the caller's
//! [`Principal`] (an API key, a user's JWT, or `X-Internal-Key`). Requests are limited per
//! key and per address ([`RateLimits`]); the public endpoints are `/healthz`, `/metrics`,
//! `/api/openapi.json` and the login.

//!
//! This module puts the layers together ([`router`]) and names, as before, what the rest
//! of dialtone uses: the engine's side ([`CallControl`], [`Originate`], [`Action`],
//! [`Refusal`]), [`ApiState`], the limits, passwords and JWTs.

use crate::auth::{require_auth, Required};
use crate::handlers::health::Document;
use crate::routes::TABLE;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::Router;
use std::sync::Arc;

pub use crate::auth::{check_jwt, hash_password, issue_jwt, key_hash, Claims, Principal, JWT_LIFETIME_S};
pub use crate::control::{
    Action, AgentMember, CallControl, Originate, Refusal, Reply, TrunkStatus, AGENT_FORMATS, DEFAULT_ORG,
};
pub use crate::errors::ApiError;
pub use crate::handlers::recordings::{parse_range, ByteRange};
pub use crate::handlers::support::is_e164;
pub use crate::limits::{Limits, Rate, RateLimits};
pub use crate::model::{normalize_permission, PERMISSIONS};
pub use crate::state::{ApiState, EngineMetricsFn};
pub use crate::wire::{call_json, parse_time, rfc3339, CallOut, Rfc3339, MAX_BODY};

/// The router: every route of [`crate::routes::TABLE`], the protected ones behind the
/// credentials middleware (a `route_layer`, so an unknown path is still 404, not 401) and
/// their permission; the envelope on every fallback.
pub fn router(state: ApiState) -> Router {
    let (mut public, mut protected) = (Router::new(), Router::new());
    for r in TABLE {
        // Every route is served under `/api/` and `/api/v1/` (the seed `001`'s base); the
        // seed's `GET|POST /api/v1/calls` are the calls list and create.
        let mut paths = vec![r.path.to_string(), versioned(r.path)];
        match (r.method, r.path) {
            ("GET", "/api/calls/list") | ("POST", "/api/calls/create") => {
                paths.extend(["/api/calls".to_string(), "/api/v1/calls".to_string()])
            }
            _ => {}
        }
        paths.dedup();
        for path in paths {
            let handler = (r.handler)(r.filter());
            match r.permission {
                None => public = public.route(&path, handler),
                Some(perm) => protected = protected.route(&path, handler.route_layer(Extension(Required(perm)))),
            }
        }
    }
    // Authenticated first, then (several nodes) sent to the node the request belongs to.
    let protected = protected
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::handlers::forward::forward))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_auth));
    // Under Twilio's prefix only the call update is there; the rest answers Twilio's 404.
    let public = public.route("/2010-04-01/{*rest}", axum::routing::any(crate::handlers::twilio::elsewhere));
    public
        .route_layer(Extension(Document(Arc::new(crate::openapi::spec()))))
        .merge(crate::console::router())
        .merge(protected)
        .fallback(|| async {
            ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such endpoint".into() }
        })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "method not allowed on this endpoint".into(),
            }
        })
        .with_state(state)
}

/// `/api/x` as `/api/v1/x` (and `/api/v1/x` as `/api/x`).
fn versioned(path: &str) -> String {
    match (path.strip_prefix("/api/v1/"), path.strip_prefix("/api/")) {
        (Some(rest), _) => format!("/api/{rest}"),
        (None, Some(rest)) => format!("/api/v1/{rest}"),
        _ => path.to_string(),
    }
}
