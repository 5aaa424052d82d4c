//! The public endpoints: liveness, Prometheus metrics, the OpenAPI document.

use super::support::read;
use crate::model::CallStatus;
use crate::state::ApiState;
use crate::wire::ok;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Liveness: `ok`, or 503 `draining` once a SIGTERM asked this node to finish its calls
/// and take no new ones (a load balancer then sends new work elsewhere).
pub async fn healthz(State(st): State<ApiState>) -> Response {
    if st.draining.load(std::sync::atomic::Ordering::Relaxed) {
        let mut r = ok(json!({"status": "draining"}));
        *r.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
        return r;
    }
    ok(json!({"status": "ok"}))
}

/// The OpenAPI document, made once when the router is built ([`crate::http::router`]
/// hands it to this route as an extension).
#[derive(Clone, Debug)]
pub struct Document(pub Arc<Value>);

/// `GET /api/openapi.json`.
pub async fn document(Extension(Document(doc)): Extension<Document>) -> Json<Value> {
    Json((*doc).clone())
}

/// Prometheus text (version 0.0.4): the store's calls by status, the webhook outbox, the
/// limits, and the engine's own lines.
pub async fn metrics(State(st): State<ApiState>) -> Response {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::with_capacity(2048);
    let (by_status, pending) =
        read(&st, |s| Ok((s.count_by_status()?, s.outbox_pending()?))).await.unwrap_or_else(|_| (Vec::new(), 0));
    out.push_str("# HELP dialtone_calls Calls in the store, by status.\n# TYPE dialtone_calls gauge\n");
    for s in CallStatus::ALL {
        let n = by_status.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "dialtone_calls{{status=\"{s}\"}} {n}");
    }
    let w = &st.webhook_stats;
    let _ = write!(
        out,
        "# HELP dialtone_webhook_deliveries_total Webhook delivery attempts, by result.\n\
         # TYPE dialtone_webhook_deliveries_total counter\n\
         dialtone_webhook_deliveries_total{{result=\"delivered\"}} {}\n\
         dialtone_webhook_deliveries_total{{result=\"failed\"}} {}\n\
         dialtone_webhook_deliveries_total{{result=\"given_up\"}} {}\n\
         # HELP dialtone_webhook_outbox_pending Webhook events waiting for delivery.\n\
         # TYPE dialtone_webhook_outbox_pending gauge\n\
         dialtone_webhook_outbox_pending {pending}\n\
         # HELP dialtone_http_rate_limited_total Requests refused with 429.\n\
         # TYPE dialtone_http_rate_limited_total counter\n\
         dialtone_http_rate_limited_total {}\n",
        w.delivered.load(Relaxed),
        w.failed.load(Relaxed),
        w.given_up.load(Relaxed),
        st.limits.refused.load(Relaxed),
    );
    if let Some(engine) = &st.engine_metrics {
        engine(&mut out);
    }
    let mut r = Response::new(axum::body::Body::from(out));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
