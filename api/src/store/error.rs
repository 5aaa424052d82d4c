//! [`StoreError`].

use crate::model::CallStatus;

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no, or its connection is gone.
    #[error("database: {0}")]
    Postgres(String),
    /// The database does not answer: the connection is gone and cannot be made again
    /// now (a network cut, a server down). Trying later may work.
    #[error("the database does not answer: {0}")]
    Unreachable(String),
    /// A column held what the store did not expect.
    #[error("database: {0}")]
    Column(String),
    /// The database was written by a newer dialtone.
    #[error("the database is at schema version {found}, newer than this dialtone's {known}")]
    TooNew {
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A unique field (named) that is taken.
    #[error("{0}: already taken")]
    Conflict(&'static str),
    /// An `Idempotency-Key` used before with another request body.
    #[error("this Idempotency-Key was used with another request")]
    IdempotencyConflict,
    /// The organization already has as many calls up as its limit allows (counted over
    /// every node of a cluster).
    #[error("the organization has {0} calls up, its limit")]
    Full(u64),
    /// A status change that the call's life does not allow.
    #[error("a {from} call cannot become {to}")]
    BadTransition {
        /// The current status.
        from: CallStatus,
        /// The asked-for one.
        to: CallStatus,
    },
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        match e.as_db_error() {
            // The connection's own failures (class 08) and the server going away (57P01–03)
            // are the database not answering, like a broken socket.
            Some(db) if db.code().code().starts_with("08") || db.code().code().starts_with("57P0") => {
                StoreError::Unreachable(format!("{} ({})", db.message(), db.code().code()))
            }
            Some(db) => StoreError::Postgres(format!("{} ({})", db.message(), db.code().code())),
            None => StoreError::Unreachable(e.to_string()),
        }
    }
}
