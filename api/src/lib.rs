//! dialtone-api: the control plane. [`store`] keeps calls, their events, API keys, users,
//! webhooks and idempotency records in SQLite; the HTTP API (issue 5) is built on it.
#![deny(missing_docs)]

pub mod http;
pub mod openapi;
pub mod store;
pub mod webhooks;
