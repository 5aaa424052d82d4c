//! The route table: every route the API serves, once. The router
//! ([`crate::http::router`]) serves exactly these, each protected one behind the
//! credentials middleware and its permission; the OpenAPI document
//! ([`crate::openapi::spec`]) describes exactly these, with the same permission
//! (`x-permission`), tag, `operationId` and summary. Neither can list a route the other
//! lacks.

use crate::doc::operations as op;
use crate::handlers::{calls, control, health, keys, login, orgs, recordings, sip_users, users, webhooks};
use crate::state::ApiState;
use axum::routing::{on, MethodFilter, MethodRouter};
use serde_json::Value;

/// One route.
#[derive(Clone, Copy)]
pub struct Route {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The path, in axum's syntax (`/api/calls/{id}`), as the document writes it.
    pub path: &'static str,
    /// What the caller must hold; `None`: a public route (no credentials).
    pub permission: Option<&'static str>,
    /// The document's tag.
    pub tag: &'static str,
    /// The document's `operationId`.
    pub operation_id: &'static str,
    /// The document's summary.
    pub summary: &'static str,
    /// The handler, for this route's method.
    pub handler: fn(MethodFilter) -> MethodRouter<ApiState>,
    /// The rest of the operation's description: parameters, body, answers.
    pub doc: fn() -> Value,
}

impl Route {
    /// The method as axum filters it.
    pub fn filter(&self) -> MethodFilter {
        match self.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "DELETE" => MethodFilter::DELETE,
            "PATCH" => MethodFilter::PATCH,
            m => unreachable!("the route table has no {m} route"),
        }
    }
}

/// Every route.
pub const TABLE: &[Route] = &[
    Route {
        method: "GET",
        path: "/healthz",
        permission: None,
        tag: "Health",
        operation_id: "healthz",
        summary: "Liveness.",
        handler: |m| on(m, health::healthz),
        doc: op::healthz,
    },
    Route {
        method: "GET",
        path: "/metrics",
        permission: None,
        tag: "Health",
        operation_id: "metrics",
        summary: "Prometheus metrics.",
        handler: |m| on(m, health::metrics),
        doc: op::metrics,
    },
    Route {
        method: "GET",
        path: "/api/openapi.json",
        permission: None,
        tag: "Health",
        operation_id: "getOpenApi",
        summary: "This document.",
        handler: |m| on(m, health::document),
        doc: op::get_open_api,
    },
    Route {
        method: "POST",
        path: "/api/v1/auth/user-login",
        permission: None,
        tag: "Auth",
        operation_id: "userLogin",
        summary: "Log in for a JWT.",
        handler: |m| on(m, login::login),
        doc: op::user_login,
    },
    Route {
        method: "POST",
        path: "/api/api-keys",
        permission: Some("keys:write"),
        tag: "API keys",
        operation_id: "createApiKey",
        summary: "Create an API key.",
        handler: |m| on(m, keys::create_key),
        doc: op::create_api_key,
    },
    Route {
        method: "GET",
        path: "/api/api-keys",
        permission: Some("keys:read"),
        tag: "API keys",
        operation_id: "listApiKeys",
        summary: "List the API keys (never their secrets).",
        handler: |m| on(m, keys::list_keys),
        doc: op::list_api_keys,
    },
    Route {
        method: "DELETE",
        path: "/api/api-keys/{id}",
        permission: Some("keys:write"),
        tag: "API keys",
        operation_id: "revokeApiKey",
        summary: "Revoke an API key.",
        handler: |m| on(m, keys::revoke_key),
        doc: op::revoke_api_key,
    },
    Route {
        method: "POST",
        path: "/api/calls/create",
        permission: Some("calls:write"),
        tag: "Calls",
        operation_id: "createCall",
        summary: "Place a call.",
        handler: |m| on(m, calls::create_call),
        doc: op::create_call,
    },
    Route {
        method: "GET",
        path: "/api/calls/list",
        permission: Some("calls:read"),
        tag: "Calls",
        operation_id: "listCalls",
        summary: "List calls, newest first, with filters.",
        handler: |m| on(m, calls::list_calls),
        doc: op::list_calls,
    },
    Route {
        method: "GET",
        path: "/api/calls/live",
        permission: Some("calls:live"),
        tag: "Calls",
        operation_id: "liveCalls",
        summary: "The calls not yet ended (initiating, ringing, in-progress).",
        handler: |m| on(m, calls::live_calls),
        doc: op::live_calls,
    },
    Route {
        method: "GET",
        path: "/api/calls/{id}",
        permission: Some("calls:read"),
        tag: "Calls",
        operation_id: "getCall",
        summary: "One call, with its events.",
        handler: |m| on(m, calls::get_call),
        doc: op::get_call,
    },
    Route {
        method: "POST",
        path: "/api/calls/{id}/hangup",
        permission: Some("calls:hangup"),
        tag: "Call control",
        operation_id: "hangupCall",
        summary: "Hang up (BYE, or CANCEL before the answer).",
        handler: |m| on(m, control::hangup),
        doc: op::hangup_call,
    },
    Route {
        method: "POST",
        path: "/api/calls/{id}/hold",
        permission: Some("calls:hold"),
        tag: "Call control",
        operation_id: "holdCall",
        summary: "Put the call on hold (re-INVITE sendonly).",
        handler: |m| on(m, control::hold),
        doc: op::hold_call,
    },
    Route {
        method: "POST",
        path: "/api/calls/{id}/unhold",
        permission: Some("calls:hold"),
        tag: "Call control",
        operation_id: "unholdCall",
        summary: "Resume a held call (re-INVITE sendrecv).",
        handler: |m| on(m, control::unhold),
        doc: op::unhold_call,
    },
    Route {
        method: "POST",
        path: "/api/calls/{id}/transfer",
        permission: Some("calls:transfer"),
        tag: "Call control",
        operation_id: "transferCall",
        summary: "Blind transfer (REFER; BYE once the far end reports it done).",
        handler: |m| on(m, control::transfer),
        doc: op::transfer_call,
    },
    Route {
        method: "POST",
        path: "/api/calls/{id}/dtmf",
        permission: Some("calls:write"),
        tag: "Call control",
        operation_id: "sendDtmf",
        summary: "Send DTMF digits (RFC 4733).",
        handler: |m| on(m, control::dtmf),
        doc: op::send_dtmf,
    },
    Route {
        method: "POST",
        path: "/api/calls/{id}/recording/start",
        permission: Some("calls:recording"),
        tag: "Call control",
        operation_id: "startRecording",
        summary: "Start recording the call.",
        handler: |m| on(m, control::recording_start),
        doc: op::start_recording,
    },
    Route {
        method: "POST",
        path: "/api/calls/{id}/recording/stop",
        permission: Some("calls:recording"),
        tag: "Call control",
        operation_id: "stopRecording",
        summary: "Stop recording the call.",
        handler: |m| on(m, control::recording_stop),
        doc: op::stop_recording,
    },
    Route {
        method: "GET",
        path: "/api/calls/{id}/recording",
        permission: Some("calls:recording"),
        tag: "Recordings",
        operation_id: "downloadRecording",
        summary: "Download the call's recording (WAV).",
        handler: |m| on(m, recordings::recording_download),
        doc: op::download_recording,
    },
    Route {
        method: "POST",
        path: "/api/webhooks",
        permission: Some("webhooks:write"),
        tag: "Webhooks",
        operation_id: "createWebhook",
        summary: "Subscribe a URL to events.",
        handler: |m| on(m, webhooks::create_webhook),
        doc: op::create_webhook,
    },
    Route {
        method: "GET",
        path: "/api/webhooks",
        permission: Some("webhooks:read"),
        tag: "Webhooks",
        operation_id: "listWebhooks",
        summary: "List the webhooks (never their secrets).",
        handler: |m| on(m, webhooks::list_webhooks),
        doc: op::list_webhooks,
    },
    Route {
        method: "DELETE",
        path: "/api/webhooks/{id}",
        permission: Some("webhooks:write"),
        tag: "Webhooks",
        operation_id: "deleteWebhook",
        summary: "Delete a webhook.",
        handler: |m| on(m, webhooks::delete_webhook),
        doc: op::delete_webhook,
    },
    Route {
        method: "POST",
        path: "/api/users",
        permission: Some("users:write"),
        tag: "Users",
        operation_id: "createUser",
        summary: "Add a user who can log in.",
        handler: |m| on(m, users::create_user),
        doc: op::create_user,
    },
    Route {
        method: "GET",
        path: "/api/users",
        permission: Some("users:read"),
        tag: "Users",
        operation_id: "listUsers",
        summary: "List the users (never their password hashes).",
        handler: |m| on(m, users::list_users),
        doc: op::list_users,
    },
    Route {
        method: "DELETE",
        path: "/api/users/{id}",
        permission: Some("users:write"),
        tag: "Users",
        operation_id: "deleteUser",
        summary: "Delete a user; its tokens stop working at once.",
        handler: |m| on(m, users::delete_user),
        doc: op::delete_user,
    },
    Route {
        method: "POST",
        path: "/api/sip-users",
        permission: Some("sip_users:write"),
        tag: "SIP users",
        operation_id: "createSipUser",
        summary: "Add a SIP user (a softphone's account).",
        handler: |m| on(m, sip_users::create_sip_user),
        doc: op::create_sip_user,
    },
    Route {
        method: "GET",
        path: "/api/sip-users",
        permission: Some("sip_users:read"),
        tag: "SIP users",
        operation_id: "listSipUsers",
        summary: "List the SIP users (never their secrets).",
        handler: |m| on(m, sip_users::list_sip_users),
        doc: op::list_sip_users,
    },
    Route {
        method: "DELETE",
        path: "/api/sip-users/{id}",
        permission: Some("sip_users:write"),
        tag: "SIP users",
        operation_id: "deleteSipUser",
        summary: "Delete a SIP user; it can no longer register or call.",
        handler: |m| on(m, sip_users::delete_sip_user),
        doc: op::delete_sip_user,
    },
    Route {
        method: "POST",
        path: "/api/organizations",
        permission: Some("orgs:write"),
        tag: "Organizations",
        operation_id: "createOrganization",
        summary: "Create an organization (the platform's owner).",
        handler: |m| on(m, orgs::create_org),
        doc: op::create_organization,
    },
    Route {
        method: "GET",
        path: "/api/organizations",
        permission: Some("orgs:read"),
        tag: "Organizations",
        operation_id: "listOrganizations",
        summary: "List the organizations (the platform's owner: all; others: their own).",
        handler: |m| on(m, orgs::list_orgs),
        doc: op::list_organizations,
    },
    Route {
        method: "GET",
        path: "/api/organizations/{id}",
        permission: Some("orgs:read"),
        tag: "Organizations",
        operation_id: "getOrganization",
        summary: "One organization, with its call policy.",
        handler: |m| on(m, orgs::get_org),
        doc: op::get_organization,
    },
    Route {
        method: "PATCH",
        path: "/api/organizations/{id}",
        permission: Some("orgs:write"),
        tag: "Organizations",
        operation_id: "updateOrganization",
        summary: "Change an organization's call policy (limits, allowed destinations).",
        handler: |m| on(m, orgs::update_org),
        doc: op::update_organization,
    },
];

const PAIRS: [(&str, &str); TABLE.len()] = {
    let mut out = [("", ""); TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        out[i] = (TABLE[i].method, TABLE[i].path);
        i += 1;
    }
    out
};

/// Every route as (method, path): [`TABLE`] without the rest.
pub const ROUTES: &[(&str, &str)] = &PAIRS;
