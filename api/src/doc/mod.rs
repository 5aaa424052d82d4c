//! The pieces of the OpenAPI document ([`crate::openapi`] puts them together with the
//! route table): each operation's parameters, bodies and answers, the shared components,
//! the schemas, and the webhook events. This file only names them.

pub mod components;
pub mod conferences;
pub mod events;
pub mod operations;
pub mod parts;
pub mod schemas;
