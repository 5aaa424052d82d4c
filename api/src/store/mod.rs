//! The store: one SQLite database under `DIALTONE_DATA_DIR`, in WAL mode, with versioned
//! migrations (`PRAGMA user_version`), or a PostgreSQL database ([`Store::open_url`]) with
//! the same migrations in its dialect. One writer owns the connection; readers may open
//! their own. Every change to a call is a row update plus an event row, in one transaction.
//!
//! A restart finds every call; [`Store::close_unfinished`] closes the ones a crash left
//! open as `failed` with reason `restart`.

//!
//! One module per group of tables: `calls` (calls, their events and recordings),
//! `conferences` (and their participants), `idempotency`, `keys`, `orgs` (organizations), `sip_users`, `trunks` and `numbers`
//! (inbound routing), `users`, `outbox` (webhooks and their deliveries), `nodes` (several
//! nodes on one store: heartbeats, leases, owners, shared settings and buckets); `sql` is the
//! database under them all (SQLite or PostgreSQL); `db` opens the database and migrates it
//! (`pg_migrations` is the schema in PostgreSQL's dialect); the [`Writer`] thread applies the
//! engine's changes in batches.
//! This file only names them.

mod calls;
mod conferences;
mod db;
mod error;
mod idempotency;
mod keys;
mod nodes;
mod numbers;
mod orgs;
mod outbox;
mod pg;
mod pg_migrations;
mod sip_users;
mod sql;
mod trunks;
mod users;
mod value;
mod writer;

pub use crate::model::{
    ApiKey, Call, CallEvent, CallFilter, CallStatus, ConferenceRow, Delivery, InboundCall, NewCall, NumberRow,
    Organization, ParticipantRow, RecordingState, Scope, SipUserRow, TrunkRow, User, Webhook, DEFAULT_ORG,
    WEBHOOK_EVENTS,
};
pub use db::{Readers, Store};
pub use error::StoreError;
pub use nodes::{listen, Config, NodeRow, Owned};
pub use outbox::AttemptRow;
pub use users::Access;
pub use writer::{Op, Writer};
