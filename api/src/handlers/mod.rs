//! The handlers, one module per resource. The route table ([`crate::routes`]) says which
//! serves what and with which permission; [`crate::auth::Allowed`] checks it. This file
//! only names them.

pub mod calls;
pub mod conferences;
pub mod control;
pub mod forward;
pub mod health;
pub mod keys;
pub mod login;
pub mod numbers;
pub mod orgs;
pub mod recordings;
pub mod sip_users;
pub mod support;
pub mod trunks;
pub mod twilio;
pub mod users;
pub mod webhooks;
