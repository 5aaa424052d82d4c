//! dialtone-api: the control plane. [`store`] keeps calls, their events, API keys, users,
//! webhooks and idempotency records in SQLite; [`http`] serves the API over it.
//!
//! The layers, each importing only those below it: [`model`] (plain types) and
//! [`control`] (the engine's side); [`wire`] (JSON shapes, times); [`store`]; [`errors`];
//! [`limits`], [`state`], [`auth`]; the handlers; and [`http`], which wires them into the
//! router. [`openapi`] describes it; [`webhooks`] delivers the events the store queues.
#![deny(missing_docs)]

mod auth;
mod control;
mod errors;
mod limits;
mod model;
mod state;
mod wire;

pub mod http;
pub mod openapi;
pub mod store;
pub mod webhooks;
