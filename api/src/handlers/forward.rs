//! The middleware that sends a request to the node it belongs to ([`crate::cluster`]): a
//! call's requests to its owner, a new call to the freest node.

use super::support::{body_bytes, read};
use crate::cluster::{Cluster, FORWARDED, NODE_TOKEN};
use crate::errors::ApiError;
use crate::state::ApiState;
use crate::wire::now_ms;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What a request is about, for forwarding.
#[derive(Debug, PartialEq)]
enum Target<'a> {
    /// A new call: the freest node places it.
    Create,
    /// Call `id`: its owner answers.
    Call(&'a str),
}

/// The target of `method path`, if it is one a node forwards.
fn target<'a>(method: &str, path: &'a str) -> Option<Target<'a>> {
    let rest = path.strip_prefix("/api/v1/").or_else(|| path.strip_prefix("/api/"))?;
    let rest = rest.strip_prefix("calls")?;
    if method == "POST" && (rest.is_empty() || rest == "/create") {
        return Some(Target::Create);
    }
    let (id, what) = rest.strip_prefix('/')?.split_once('/')?;
    (!id.is_empty() && !what.is_empty() && !matches!(id, "list" | "live" | "events" | "create"))
        .then_some(Target::Call(id))
}

/// The middleware (after authentication): forwards to the node a request belongs to, or
/// lets this node answer.
pub async fn forward(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let Some(cluster) = st.cluster.clone() else { return next.run(req).await };
    if req.headers().contains_key(FORWARDED) {
        return next.run(req).await;
    }
    let now = now_ms();
    let what = target(req.method().as_str(), req.uri().path());
    let create = what == Some(Target::Create);
    let target = match what {
        None => return next.run(req).await,
        Some(Target::Create) => {
            let Ok(nodes) = read(&st, move |s| s.live_nodes(now)).await else { return next.run(req).await };
            match cluster.pick(&nodes) {
                Some(n) if n.id != cluster.node => n.clone(),
                // This node, or none has room (this one then answers as it would alone).
                _ => return next.run(req).await,
            }
        }
        Some(Target::Call(id)) => {
            let id = id.to_string();
            let owner = read(&st, move |s| {
                let Some(node) = s.call_node(&id)? else { return Ok(None) };
                Ok(s.live_nodes(now)?.into_iter().find(|n| n.id == node))
            })
            .await;
            match owner {
                Ok(Some(n)) if n.id != cluster.node => n,
                _ => return next.run(req).await,
            }
        }
    };
    match send(&cluster, &target.url, req).await {
        Ok(r) => r,
        Err((e, Some(req))) if create => {
            tracing::warn!(node = %target.id, error = %e, "cannot reach the freest node: placing the call here");
            next.run(req).await
        }
        Err((e, _)) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "node_unreachable",
            message: format!("the node that has this call ({}) does not answer: {e}", target.id),
        }
        .into_response(),
    }
}

/// Sends `req` to the node at `base` and gives back its answer; on failure why, and the
/// request again when the node never got it.
async fn send(cluster: &Cluster, base: &str, req: Request) -> Result<Response, (String, Option<Request>)> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str()).to_string();
    let bytes = match body_bytes(Request::from_parts(parts.clone(), body)).await {
        Ok(b) => b,
        Err(e) => return Ok(e.into_response()),
    };
    let mut out = cluster.client.request(parts.method.clone(), format!("{base}{path}"));
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            out = out.header(name, value);
        }
    }
    out = out.header(FORWARDED, cluster.node.as_str()).header(NODE_TOKEN, cluster.token.as_str()).body(bytes.clone());
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => {
            let again = e.is_connect().then(|| Request::from_parts(parts, axum::body::Body::from(bytes)));
            return Err((e.to_string(), again));
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.map_err(|e| (e.to_string(), None))?;
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = status;
    for (name, value) in &headers {
        if !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding") {
            r.headers_mut().append(name, value.clone());
        }
    }
    if let Ok(v) = HeaderValue::from_str(&cluster.node) {
        r.headers_mut().insert("x-dialtone-via", v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_forwarded_and_where() {
        assert_eq!(target("POST", "/api/calls/create"), Some(Target::Create));
        assert_eq!(target("POST", "/api/v1/calls"), Some(Target::Create));
        assert_eq!(target("GET", "/api/v1/calls"), None, "the list reads the shared store");
        assert_eq!(target("POST", "/api/calls/call_1/hangup"), Some(Target::Call("call_1")));
        assert_eq!(target("POST", "/api/v1/calls/call_1/recording/start"), Some(Target::Call("call_1")));
        assert_eq!(target("GET", "/api/calls/call_1/sip"), Some(Target::Call("call_1")));
        assert_eq!(target("GET", "/api/calls/call_1"), None, "the call itself reads the shared store");
        assert_eq!(target("GET", "/api/calls/live"), None);
        assert_eq!(target("GET", "/api/calls/events"), None);
        assert_eq!(target("GET", "/api/keys"), None);
        assert_eq!(target("POST", "/api/calls//hangup"), None);
    }
}
