//! dialtone-api: the control plane. [`store`] keeps calls, their events, API keys, users,
//! webhooks and idempotency records in SQLite; [`http`] serves the API over it.
//!
//! The layers, each importing only those below it: `model` (plain types) and `control`
//! (the engine's side); `wire` (JSON shapes, times); [`store`]; `errors`;
//! `limits`, `state`, `auth`; the handlers, one module per resource; the route table
//! (`routes`), which both [`http`]'s router and the [`openapi`] document are built from;
//! [`webhooks`] delivers the events the store queues.
#![deny(missing_docs)]

mod auth;
mod console;
mod control;
mod doc;
mod errors;
mod handlers;
mod limits;
mod model;
pub mod routes;
mod state;
mod wire;

pub mod cluster;
pub mod http;
pub mod live;
pub mod openapi;
pub mod routing;
pub mod store;
pub mod twilio;
pub mod webhooks;
