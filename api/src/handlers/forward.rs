//! The middleware that sends a request to the node it belongs to ([`crate::cluster`]): a
//! call's requests to its owner, a new call to the freest node.

use super::support::{body_bytes, read, store};
use crate::auth::Principal;
use crate::cluster::{Cluster, FORWARDED, NODE_TOKEN};
use crate::errors::ApiError;
use crate::state::ApiState;
use crate::store::Owned;
use crate::wire::now_ms;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What a request is about, for forwarding.
#[derive(Debug, PartialEq)]
enum Target {
    /// A new call: the freest node places it.
    Create,
    /// Call `id`: its owner answers.
    Call(String),
    /// Conference `id`'s room (ending it, a seated call's mute or leave): its node answers.
    Conference(String),
    /// A member seated in conference `id`: its node, or, while nobody is seated, the node of
    /// the call to seat (the room moves there).
    Seat(String),
}

/// The target of `method path`, if it is one a node forwards.
fn target(method: &str, path: &str) -> Option<Target> {
    // Twilio's call update (a hang-up) is about one call.
    if let Some(rest) = path.strip_prefix("/2010-04-01/Accounts/") {
        let sid = rest.split_once("/Calls/")?.1.strip_suffix(".json")?;
        return crate::twilio::call_id_of(sid).map(Target::Call);
    }
    let rest = path.strip_prefix("/api/v1/").or_else(|| path.strip_prefix("/api/"))?;
    if let Some(rest) = rest.strip_prefix("conferences/") {
        let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
        return match (method, what) {
            (_, _) if id.is_empty() => None,
            // The conference as stored: any node reads it.
            ("GET", "") => None,
            ("POST", "participants") => Some(Target::Seat(id.to_string())),
            _ => Some(Target::Conference(id.to_string())),
        };
    }
    let rest = rest.strip_prefix("calls")?;
    if method == "POST" && (rest.is_empty() || rest == "/create") {
        return Some(Target::Create);
    }
    let (id, what) = rest.strip_prefix('/')?.split_once('/')?;
    (!id.is_empty() && !what.is_empty() && !matches!(id, "list" | "live" | "events" | "create"))
        .then(|| Target::Call(id.to_string()))
}

/// The middleware (after authentication): forwards to the node a request belongs to, or
/// lets this node answer.
pub async fn forward(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let Some(cluster) = st.cluster.clone() else { return next.run(req).await };
    if req.headers().contains_key(FORWARDED) {
        return next.run(req).await;
    }
    let now = now_ms();
    let Some(what) = target(req.method().as_str(), req.uri().path()) else { return next.run(req).await };
    let create = what == Target::Create;
    // A seat's call decides, while the room is empty: the body is read for it.
    let (req, call) = match &what {
        Target::Seat(_) => {
            let (parts, body) = req.into_parts();
            let bytes = match body_bytes(Request::from_parts(parts.clone(), body)).await {
                Ok(b) => b,
                Err(e) => return e.into_response(),
            };
            let call = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("call_id").and_then(|c| c.as_str()).map(str::to_string));
            (Request::from_parts(parts, axum::body::Body::from(bytes)), call)
        }
        _ => (req, None),
    };
    let me = cluster.node.clone();
    let found = match what {
        Target::Create => read(&st, move |s| s.live_nodes(now)).await.map(|nodes| cluster.pick(&nodes).cloned()),
        Target::Call(id) => read(&st, move |s| s.owner(Owned::Call, &id, now)).await,
        Target::Conference(id) => read(&st, move |s| s.owner(Owned::Conference, &id, now)).await,
        Target::Seat(id) => {
            // Only the caller's own call moves only the caller's own room.
            let scope = req.extensions().get::<Principal>().map(Principal::scope);
            let (room, asking) = (id.clone(), scope.clone());
            let found = read(&st, move |s| {
                let mine = |c: &String| asking.as_ref().is_some_and(|sc| s.get_call(sc, c).is_ok());
                let call = call.filter(mine).map(|c| s.owner(Owned::Call, &c, now)).transpose()?.flatten();
                Ok((s.owner(Owned::Conference, &room, now)?, call))
            })
            .await;
            match found {
                // Nobody seated: the room moves to where the call is.
                Ok((room, Some(call))) if room.as_ref().is_none_or(|r| r.id != call.id) => {
                    let moved = scope.map(|sc| store(&st).map(|mut w| w.move_conference(&sc, &id, &call.id)));
                    match moved.transpose() {
                        Ok(Some(Ok(true))) => Ok(Some(call)),
                        _ => Ok(room),
                    }
                }
                Ok((room, _)) => Ok(room),
                Err(e) => Err(e),
            }
        }
    };
    let target = match found {
        Ok(Some(n)) if n.id != me => n,
        // This node, or none has room, or the owner is gone: this node answers as it
        // would alone.
        _ => return next.run(req).await,
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
            message: format!("the node that has this ({}) does not answer: {e}", target.id),
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
        let call = |id: &str| Some(Target::Call(id.to_string()));
        assert_eq!(target("POST", "/api/calls/create"), Some(Target::Create));
        assert_eq!(target("POST", "/api/v1/calls"), Some(Target::Create));
        assert_eq!(target("GET", "/api/v1/calls"), None, "the list reads the shared store");
        assert_eq!(target("POST", "/api/calls/call_1/hangup"), call("call_1"));
        assert_eq!(target("POST", "/api/v1/calls/call_1/recording/start"), call("call_1"));
        assert_eq!(target("GET", "/api/calls/call_1/sip"), call("call_1"));
        assert_eq!(target("GET", "/api/calls/call_1"), None, "the call itself reads the shared store");
        assert_eq!(target("GET", "/api/calls/live"), None);
        assert_eq!(target("GET", "/api/calls/events"), None);
        assert_eq!(target("GET", "/api/keys"), None);
        assert_eq!(target("POST", "/api/calls//hangup"), None);
        let sid = "CA00000000000000ab00000000000000ab";
        assert_eq!(
            target("POST", &format!("/2010-04-01/Accounts/AC1/Calls/{sid}.json")),
            call("call_00000000000000ab")
        );
        assert_eq!(target("POST", "/2010-04-01/Accounts/AC1/Calls/CAnot.json"), None);
        let conf = |id: &str| Some(Target::Conference(id.to_string()));
        assert_eq!(target("GET", "/api/conferences/conf_1"), None);
        assert_eq!(target("GET", "/api/conferences"), None);
        assert_eq!(target("POST", "/api/conferences"), None, "a new room is where it is asked for");
        assert_eq!(target("DELETE", "/api/conferences/conf_1"), conf("conf_1"));
        assert_eq!(target("POST", "/api/v1/conferences/conf_1/participants"), Some(Target::Seat("conf_1".into())));
        assert_eq!(target("PATCH", "/api/conferences/conf_1/participants/call_2"), conf("conf_1"));
        assert_eq!(target("DELETE", "/api/conferences/conf_1/participants/call_2"), conf("conf_1"));
    }
}
