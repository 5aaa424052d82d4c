//! The store: one SQLite database under `DIALTONE_DATA_DIR`, in WAL mode, with versioned
//! migrations (`PRAGMA user_version`). One writer owns the connection; readers may open
//! their own. Every change to a call is a row update plus an event row, in one transaction.
//!
//! A restart finds every call; [`Store::close_unfinished`] closes the ones a crash left
//! open as `failed` with reason `restart`.

use crate::wire::{call_json, rfc3339};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub use crate::model::{
    ApiKey, Call, CallEvent, CallFilter, CallStatus, Delivery, InboundCall, NewCall, RecordingState, User, Webhook,
    WEBHOOK_EVENTS,
};

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    /// An `Idempotency-Key` used before with another request body.
    #[error("this Idempotency-Key was used with another request")]
    IdempotencyConflict,
    /// A status change that the call's life does not allow.
    #[error("a {from} call cannot become {to}")]
    BadTransition {
        /// The current status.
        from: CallStatus,
        /// The asked-for one.
        to: CallStatus,
    },
}


fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let perms: String = r.get(4)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        permissions: perms.split_whitespace().map(str::to_string).collect(),
        created_at: r.get(5)?,
    })
}

const KEY_COLUMNS: &str = "id, name, permissions, created_by, created_at, last_used_at, revoked_at";

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let perms: String = r.get(2)?;
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        permissions: perms.split_whitespace().map(str::to_string).collect(),
        created_by: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

/// The schema, one migration per version; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: calls and their events, keys, users, webhooks, the outbox, idempotency.
    "CREATE TABLE calls (
        id TEXT PRIMARY KEY,
        contact_id TEXT NOT NULL,
        phone_number TEXT NOT NULL,
        from_number TEXT,
        status TEXT NOT NULL,
        sip_status INTEGER,
        reason TEXT,
        record INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        answered_at INTEGER,
        ended_at INTEGER
    );
    CREATE INDEX calls_created ON calls(created_at);
    CREATE INDEX calls_status ON calls(status, created_at);
    CREATE INDEX calls_contact ON calls(contact_id, created_at);
    CREATE TABLE call_events (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL REFERENCES calls(id),
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX call_events_call ON call_events(call_id, id);
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        permissions TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        permissions TEXT NOT NULL,
        created_by TEXT,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
    );
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        events TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE webhook_outbox (
        id INTEGER PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id),
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        delivered_at INTEGER,
        last_error TEXT
    );
    CREATE INDEX outbox_due ON webhook_outbox(delivered_at, next_attempt_at);
    CREATE TABLE idempotency (
        key TEXT NOT NULL,
        principal TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        call_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (principal, key)
    );",
    // 2: a call's recording; outbox rows' creation time and give-up mark.
    "ALTER TABLE calls ADD COLUMN recording_state TEXT;
    ALTER TABLE calls ADD COLUMN recording_path TEXT;
    ALTER TABLE webhook_outbox ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE webhook_outbox ADD COLUMN given_up INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX outbox_pending ON webhook_outbox(webhook_id, id) WHERE delivered_at IS NULL AND given_up = 0;",
    // 3: calls that came in are kept too.
    "ALTER TABLE calls ADD COLUMN direction TEXT NOT NULL DEFAULT 'outbound';",
];

/// The database.
pub struct Store {
    conn: Connection,
    /// Notified when webhook deliveries are queued.
    pub on_enqueue: Option<std::sync::Arc<tokio::sync::Notify>>,
}

/// A pool of read-only connections for the API's queries, so a long list never holds the
/// writer (which the SIP loop uses for every status change).
#[derive(Debug)]
pub struct Readers {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<Store>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Readers {
    /// Readers of the database at `path`.
    pub fn new(path: &Path) -> Readers {
        Readers { path: path.to_path_buf(), idle: std::sync::Mutex::new(Vec::new()) }
    }

    /// An idle connection, or a new one.
    pub fn get(&self) -> Result<Store, StoreError> {
        if let Some(s) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(s);
        }
        Store::open_reader(&self.path)
    }

    /// Gives a connection back (at most 8 are kept).
    pub fn put(&self, s: Store) {
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < 8 {
                v.push(s);
            }
        }
    }
}

/// One call, read through `conn` (the store's connection or a transaction on it).
fn call_in(conn: &Connection, id: &str) -> Result<Call, StoreError> {
    conn.prepare_cached(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1"))?
        .query_row([id], call_from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// [`Store::set_status`] inside `conn`'s transaction: the call and the webhooks queued.
fn status_in(
    conn: &Connection,
    id: &str,
    to: CallStatus,
    sip_status: Option<u16>,
    reason: Option<&str>,
    at: i64,
) -> Result<(Call, usize), StoreError> {
    let from: String = conn
        .prepare_cached("SELECT status FROM calls WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    let from = status_of(from)?;
    if !from.can_become(to) {
        return Err(StoreError::BadTransition { from, to });
    }
    conn.prepare_cached(
        "UPDATE calls SET status = ?2,
            sip_status = COALESCE(?3, sip_status),
            reason = COALESCE(?4, reason),
            answered_at = CASE WHEN ?2 = 'in-progress' THEN ?5 ELSE answered_at END,
            ended_at = CASE WHEN ?6 THEN ?5 ELSE ended_at END
         WHERE id = ?1",
    )?
    .execute(params![id, to.as_str(), sip_status.map(i64::from), reason, at, to.is_final()])?;
    conn.prepare_cached("INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', ?3)")?
        .execute(params![id, at, to.as_str()])?;
    let call = call_in(conn, id)?;
    let n = enqueue(conn, to.event(), call_json(&call), at)?;
    Ok((call, n))
}

/// [`Op::Inbound`] inside a transaction; the webhooks queued.
fn inbound_in(conn: &Connection, c: &InboundCall) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "INSERT INTO calls (id, contact_id, phone_number, from_number, status, record, created_at, direction)
         VALUES (?1, ?2, ?2, ?3, 'initiating', 0, ?4, 'inbound')",
    )?
    .execute(params![c.id, c.caller, c.called, c.at])?;
    conn.prepare_cached("INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', 'initiating')")?
        .execute(params![c.id, c.at])?;
    let call = call_in(conn, &c.id)?;
    enqueue(conn, "call.initiated", call_json(&call), c.at)
}

/// [`Store::dtmf_received`] inside a transaction; the webhooks queued.
fn dtmf_in(conn: &Connection, id: &str, digit: char, at: i64) -> Result<usize, StoreError> {
    conn.prepare_cached("INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'dtmf', ?3)")?
        .execute(params![id, at, digit.to_string()])?;
    enqueue(conn, "dtmf.received", serde_json::json!({"call_id": id, "digit": digit.to_string()}), at)
}

/// [`Op::ActionFailed`] inside a transaction; the webhooks queued.
fn action_failed_in(conn: &Connection, id: &str, action: &str, detail: &str, at: i64) -> Result<usize, StoreError> {
    let what = format!("{action}: {detail}");
    let n = conn
        .prepare_cached("INSERT INTO call_events (call_id, at, kind, detail) SELECT id, ?2, 'action_failed', ?3 FROM calls WHERE id = ?1")?
        .execute(params![id, at, what])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    let body = serde_json::json!({"call_id": id, "action": action, "detail": detail});
    enqueue(conn, "call.action_failed", body, at)
}

/// [`Store::set_recording`] inside a transaction; the webhooks queued.
fn recording_in(
    conn: &Connection,
    id: &str,
    state: RecordingState,
    path: Option<&str>,
    at: i64,
) -> Result<usize, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE calls SET recording_state = ?2, recording_path = COALESCE(?3, recording_path) WHERE id = ?1",
        )?
        .execute(params![id, state.as_str(), path])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    conn.prepare_cached("INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'recording', ?3)")?
        .execute(params![id, at, state.as_str()])?;
    if state != RecordingState::Ready {
        return Ok(0);
    }
    let data = serde_json::json!({"call_id": id, "url": format!("/api/calls/{id}/recording")});
    enqueue(conn, "recording.ready", data, at)
}

/// A change the SIP loop or a media task hands to the [`Writer`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A call came in: a new row, `initiating`, and `call.initiated`.
    Inbound(InboundCall),
    /// [`Store::set_status`].
    Status {
        /// The call.
        id: String,
        /// The new status.
        to: CallStatus,
        /// Its SIP status.
        sip_status: Option<u16>,
        /// Why.
        reason: Option<String>,
        /// When, ms.
        at: i64,
    },
    /// [`Store::dtmf_received`].
    Dtmf {
        /// The call.
        id: String,
        /// The digit.
        digit: char,
        /// When, ms.
        at: i64,
    },
    /// [`Store::set_recording`].
    Recording {
        /// The call.
        id: String,
        /// Its recording's state.
        state: RecordingState,
        /// The file, when it starts.
        path: Option<String>,
        /// When, ms.
        at: i64,
    },
    /// An action the engine carried out failed later (a re-INVITE refused, a transfer
    /// that did not connect): a call event and `call.action_failed`.
    ActionFailed {
        /// The call.
        id: String,
        /// `hold`, `unhold`, `transfer`.
        action: String,
        /// The status line that said no.
        detail: String,
        /// When, ms.
        at: i64,
    },
}

enum Job {
    Op(Op),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The store's one writer for the engine: a thread that applies [`Op`]s in batches (one
/// transaction for whatever queued up meanwhile), so the SIP loop and the media tasks never
/// wait on SQLite. Cloning shares the thread.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: std::sync::mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Op(op) => op.fmt(f),
            Job::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn spawn(store: std::sync::Arc<std::sync::Mutex<Store>>) -> std::io::Result<Writer> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new().name("store-writer".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let (mut ops, mut flushes) = (Vec::new(), Vec::new());
                let mut next = Some(first);
                while let Some(job) = next.take() {
                    match job {
                        Job::Op(op) => ops.push(op),
                        Job::Flush(done) => flushes.push(done),
                    }
                    if ops.len() < 1024 {
                        next = rx.try_recv().ok();
                    }
                }
                if !ops.is_empty() {
                    match store
                        .lock()
                        .map_err(|_| "the store lock is poisoned".to_string())
                        .and_then(|mut s| s.apply(&ops).map_err(|e| e.to_string()))
                    {
                        Ok(skipped) => {
                            for e in skipped {
                                tracing::debug!(error = %e, "store change skipped");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, changes = ops.len(), "cannot write call changes"),
                    }
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        })?;
        Ok(Writer { tx })
    }

    /// Queues a change; never blocks.
    pub fn send(&self, op: Op) {
        let _ = self.tx.send(Job::Op(op));
    }

    /// Waits (at most `limit`) until everything queued before is written.
    pub fn flush(&self, limit: std::time::Duration) -> bool {
        let (done, wait) = std::sync::mpsc::channel();
        self.tx.send(Job::Flush(done)).is_ok() && wait.recv_timeout(limit).is_ok()
    }
}

/// Queues `event` (its body `{id, event, created_at, data}` fixed now) for every active
/// webhook that takes it, inside the transaction that made it happen. Returns how many.
fn enqueue(conn: &Connection, event: &str, data: serde_json::Value, at: i64) -> Result<usize, StoreError> {
    let hooks: Vec<(String, String)> = {
        let mut st = conn.prepare_cached("SELECT id, events FROM webhooks WHERE active = 1")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for (hook, events) in hooks {
        if !events.is_empty() && !events.split_whitespace().any(|e| e == event) {
            continue;
        }
        let body = serde_json::json!({
            "id": format!("evt_{:016x}", rand::random::<u64>()),
            "event": event,
            "created_at": rfc3339(at),
            "data": data,
        });
        conn.prepare_cached(
            "INSERT INTO webhook_outbox (webhook_id, event, payload, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![hook, event, body.to_string(), at])?;
        n += 1;
    }
    Ok(n)
}

fn status_of(s: String) -> rusqlite::Result<CallStatus> {
    CallStatus::parse(&s).ok_or_else(|| rusqlite::Error::InvalidColumnType(0, s, rusqlite::types::Type::Text))
}

const CALL_COLUMNS: &str = "id, contact_id, phone_number, from_number, status, sip_status, reason, record, \
     created_at, answered_at, ended_at, recording_state, direction";

fn call_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Call> {
    let answered_at: Option<i64> = r.get(9)?;
    let ended_at: Option<i64> = r.get(10)?;
    Ok(Call {
        id: r.get(0)?,
        contact_id: r.get(1)?,
        phone_number: r.get(2)?,
        from_number: r.get(3)?,
        status: status_of(r.get(4)?)?,
        sip_status: r.get::<_, Option<i64>>(5)?.and_then(|s| u16::try_from(s).ok()),
        reason: r.get(6)?,
        record: r.get::<_, i64>(7)? != 0,
        created_at: r.get(8)?,
        answered_at,
        ended_at,
        duration: match (answered_at, ended_at) {
            (Some(a), Some(e)) => Some((e - a).max(0) as f64 / 1000.0),
            _ => None,
        },
        recording: r.get::<_, Option<String>>(11)?.as_deref().and_then(RecordingState::parse),
        inbound: r.get::<_, String>(12)? == "inbound",
    })
}

impl Store {
    /// Opens (or creates) `path`, in WAL mode, and brings the schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::setup(Connection::open(path)?)
    }

    /// A read-only connection to the database at `path` (which must exist, migrated): with
    /// WAL, readers see the last commit and never hold up the writer.
    pub fn open_reader(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Store { conn, on_enqueue: None })
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Store, StoreError> {
        // WAL: readers never block the writer; NORMAL sync is durable across a process
        // crash (not a power cut) at a fraction of FULL's cost.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Store { conn, on_enqueue: None };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found = self.version()?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Stores a new call (`initiating`) and its first event, and queues `call.initiated`.
    pub fn insert_call(&mut self, c: &NewCall<'_>) -> Result<Call, StoreError> {
        self.insert_call_once(c, None).map(|(call, _)| call)
    }

    /// [`insert_call`](Self::insert_call) under an idempotency key `(principal, key,
    /// request hash)`: the same key and hash give back the call made the first time
    /// (`true`: replayed) and make nothing; the same key with another hash is
    /// [`StoreError::IdempotencyConflict`].
    pub fn insert_call_once(
        &mut self,
        c: &NewCall<'_>,
        idem: Option<(&str, &str, &str)>,
    ) -> Result<(Call, bool), StoreError> {
        let tx = self.conn.transaction()?;
        if let Some((principal, key, hash)) = idem {
            let seen: Option<(String, String)> = tx
                .query_row(
                    "SELECT request_hash, call_id FROM idempotency WHERE principal = ?1 AND key = ?2",
                    params![principal, key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match seen {
                Some((h, id)) if h == hash => return Ok((call_in(&tx, &id)?, true)),
                Some(_) => return Err(StoreError::IdempotencyConflict),
                None => {
                    tx.execute(
                        "INSERT INTO idempotency (key, principal, request_hash, call_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![key, principal, hash, c.id, c.created_at],
                    )?;
                }
            }
        }
        tx.execute(
            "INSERT INTO calls (id, contact_id, phone_number, from_number, status, record, created_at)
             VALUES (?1, ?2, ?3, ?4, 'initiating', ?5, ?6)",
            params![c.id, c.contact_id, c.phone_number, c.from_number, c.record as i64, c.created_at],
        )?;
        tx.execute(
            "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', 'initiating')",
            params![c.id, c.created_at],
        )?;
        let call = call_in(&tx, c.id)?;
        let n = enqueue(&tx, "call.initiated", call_json(&call), c.created_at)?;
        tx.commit()?;
        self.notify(n);
        Ok((call, false))
    }

    /// One call.
    pub fn get_call(&self, id: &str) -> Result<Call, StoreError> {
        call_in(&self.conn, id)
    }

    /// Wakes the webhook sender when `n` deliveries were queued.
    fn notify(&self, n: usize) {
        if n > 0 {
            if let Some(w) = &self.on_enqueue {
                w.notify_one();
            }
        }
    }

    /// Moves a call to `to` at `at` (ms) with its SIP cause, and records the event. Going
    /// in-progress stamps the answer time; a final status stamps the end.
    pub fn set_status(
        &mut self,
        id: &str,
        to: CallStatus,
        sip_status: Option<u16>,
        reason: Option<&str>,
        at: i64,
    ) -> Result<Call, StoreError> {
        let tx = self.conn.transaction()?;
        let (call, n) = status_in(&tx, id, to, sip_status, reason, at)?;
        tx.commit()?;
        self.notify(n);
        Ok(call)
    }

    /// Applies `ops` in one transaction (the [`Writer`]'s batches). An op the call's life
    /// does not allow, or for an unknown call, is skipped; the others stand.
    pub fn apply(&mut self, ops: &[Op]) -> Result<Vec<StoreError>, StoreError> {
        let tx = self.conn.transaction()?;
        let (mut queued, mut skipped) = (0, Vec::new());
        for op in ops {
            let r = match op {
                Op::Inbound(c) => inbound_in(&tx, c),
                Op::Status { id, to, sip_status, reason, at } => {
                    status_in(&tx, id, *to, *sip_status, reason.as_deref(), *at).map(|(_, n)| n)
                }
                Op::Dtmf { id, digit, at } => dtmf_in(&tx, id, *digit, *at),
                Op::Recording { id, state, path, at } => recording_in(&tx, id, *state, path.as_deref(), *at),
                Op::ActionFailed { id, action, detail, at } => action_failed_in(&tx, id, action, detail, *at),
            };
            match r {
                Ok(n) => queued += n,
                Err(e) => skipped.push(e),
            }
        }
        tx.commit()?;
        self.notify(queued);
        Ok(skipped)
    }

    /// Records another event (a DTMF digit, a recording) on a call.
    pub fn add_event(&mut self, id: &str, kind: &str, detail: &str, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, at, kind, detail],
        )?;
        Ok(())
    }

    /// A call's events, oldest first.
    pub fn events(&self, id: &str) -> Result<Vec<CallEvent>, StoreError> {
        let mut st = self.conn.prepare("SELECT at, kind, detail FROM call_events WHERE call_id = ?1 ORDER BY id")?;
        let rows = st.query_map([id], |r| Ok(CallEvent { at: r.get(0)?, kind: r.get(1)?, detail: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Calls matching `f`, newest first, and how many match in all.
    pub fn list_calls(&self, f: &CallFilter<'_>) -> Result<(Vec<Call>, u64), StoreError> {
        let mut cond = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = f.status {
            args.push(s.as_str().to_string().into());
            cond.push(format!("status = ?{}", args.len()));
        }
        if let Some(c) = f.contact_id {
            args.push(c.to_string().into());
            cond.push(format!("contact_id = ?{}", args.len()));
        }
        if let Some(t) = f.from {
            args.push(t.into());
            cond.push(format!("created_at >= ?{}", args.len()));
        }
        if let Some(t) = f.to {
            args.push(t.into());
            cond.push(format!("created_at < ?{}", args.len()));
        }
        let filter = if cond.is_empty() { String::new() } else { format!("WHERE {}", cond.join(" AND ")) };
        let total: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM calls {filter}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let mut page = args.clone();
        page.push(i64::from(f.limit).into());
        page.push(i64::from(f.offset).into());
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls {filter} ORDER BY created_at DESC, id DESC LIMIT ?{} OFFSET ?{}",
            page.len() - 1,
            page.len()
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(page.iter()), call_from_row)?;
        Ok((rows.collect::<Result<_, _>>()?, total.max(0) as u64))
    }

    /// Stores an API key (its hash only; the key itself is shown once, by the caller).
    pub fn insert_key(&mut self, k: &ApiKey, key_hash: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, permissions, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![k.id, k.name, key_hash, k.permissions.join(" "), k.created_by, k.created_at],
        )?;
        Ok(())
    }

    /// Adds a user (`email` is unique).
    pub fn insert_user(&mut self, u: &User) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO users (id, email, password_hash, role, permissions, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![u.id, u.email.to_ascii_lowercase(), u.password_hash, u.role, u.permissions.join(" "), u.created_at],
        )?;
        Ok(())
    }

    /// The user with this e-mail (compared case-insensitively).
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, email, password_hash, role, permissions, created_at FROM users WHERE email = ?1",
                [email.to_ascii_lowercase()],
                user_from_row,
            )
            .optional()?)
    }

    /// Every user, oldest first.
    pub fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, email, password_hash, role, permissions, created_at FROM users ORDER BY created_at, id",
        )?;
        let rows = st.query_map([], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the user `id` exists (a deleted user's tokens are refused).
    pub fn user_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?.exists([id])?)
    }

    /// Deletes a user; `NotFound` if there is none with that id.
    pub fn delete_user(&mut self, id: &str) -> Result<(), StoreError> {
        if self.conn.execute("DELETE FROM users WHERE id = ?1", [id])? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every key, newest first (revoked ones included, marked).
    pub fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut st =
            self.conn.prepare(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"))?;
        let rows = st.query_map([], key_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The live (not revoked) key with this hash.
    pub fn key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"),
                [key_hash],
                key_from_row,
            )
            .optional()?)
    }

    /// Revokes a key; `NotFound` if there is no live key with that id.
    pub fn revoke_key(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, at])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Notes a key's use at `at`, writing at most once a minute per key.
    pub fn touch_key(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - 60000)",
            params![id, at],
        )?;
        Ok(())
    }

    /// After a crash or restart: every call still open is closed as `failed`, reason
    /// `restart`, ended `at`, and `call.failed` is queued for it. Returns how many.
    pub fn close_unfinished(&mut self, at: i64) -> Result<usize, StoreError> {
        let open: Vec<String> = {
            let mut st =
                self.conn.prepare("SELECT id FROM calls WHERE status IN ('initiating', 'ringing', 'in-progress')")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let tx = self.conn.transaction()?;
        let mut queued = 0;
        for id in &open {
            tx.execute(
                "UPDATE calls SET status = 'failed', reason = 'restart', ended_at = ?2 WHERE id = ?1",
                params![id, at],
            )?;
            tx.execute(
                "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', 'failed')",
                params![id, at],
            )?;
            let call = call_in(&tx, id)?;
            queued += enqueue(&tx, "call.failed", call_json(&call), at)?;
        }
        // Nothing records before startup: a recording still marked as running was cut off
        // (the recorder rewrote its header every second, so the file plays) or its end was
        // not written; either way it is what there is.
        let cut: Vec<String> = {
            let mut st = tx.prepare("SELECT id FROM calls WHERE recording_state = 'recording'")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for id in &cut {
            queued += recording_in(&tx, id, RecordingState::Ready, None, at)?;
        }
        tx.commit()?;
        self.notify(queued);
        Ok(open.len())
    }

    /// Calls not over yet, newest first.
    pub fn live_calls(&self) -> Result<Vec<Call>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE status IN ('initiating', 'ringing', 'in-progress')
             ORDER BY created_at DESC, id DESC"
        ))?;
        let rows = st.query_map([], call_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many calls are in each status.
    pub fn count_by_status(&self) -> Result<Vec<(CallStatus, u64)>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT status, COUNT(*) FROM calls GROUP BY status")?;
        let rows = st.query_map([], |r| Ok((status_of(r.get(0)?)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A DTMF digit heard on a call: an event and `dtmf.received`.
    pub fn dtmf_received(&mut self, id: &str, digit: char, at: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let n = dtmf_in(&tx, id, digit, at)?;
        tx.commit()?;
        self.notify(n);
        Ok(())
    }

    /// A call's recording changed: started (`path`), ready (`recording.ready` is queued)
    /// or failed.
    pub fn set_recording(
        &mut self,
        id: &str,
        state: RecordingState,
        path: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let n = recording_in(&tx, id, state, path, at)?;
        tx.commit()?;
        self.notify(n);
        Ok(())
    }

    /// A call's recording: its state and file.
    pub fn recording(&self, id: &str) -> Result<Option<(RecordingState, String)>, StoreError> {
        let row: (Option<String>, Option<String>) = self
            .conn
            .query_row("SELECT recording_state, recording_path FROM calls WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .ok_or(StoreError::NotFound)?;
        Ok(match row {
            (Some(s), Some(p)) => RecordingState::parse(&s).map(|s| (s, p)),
            _ => None,
        })
    }

    /// Adds a webhook.
    pub fn insert_webhook(&mut self, w: &Webhook) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO webhooks (id, url, secret, events, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![w.id, w.url, w.secret, w.events.join(" "), w.created_at],
        )?;
        Ok(())
    }

    /// The active webhooks, newest first.
    pub fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, url, secret, events, created_at FROM webhooks WHERE active = 1 ORDER BY created_at DESC, id DESC",
        )?;
        let rows = st.query_map([], |r| {
            let events: String = r.get(3)?;
            Ok(Webhook {
                id: r.get(0)?,
                url: r.get(1)?,
                secret: r.get(2)?,
                events: events.split_whitespace().map(str::to_string).collect(),
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes a webhook; what it had not been sent yet is dropped.
    pub fn delete_webhook(&mut self, id: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        if tx.execute("UPDATE webhooks SET active = 0 WHERE id = ?1 AND active = 1", [id])? == 0 {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "UPDATE webhook_outbox SET given_up = 1, last_error = 'webhook deleted'
             WHERE webhook_id = ?1 AND delivered_at IS NULL AND given_up = 0",
            [id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The oldest undelivered event of each webhook, if it is due by `now`, and when the
    /// next one not yet due will be (events of one webhook go out one at a time, in order).
    pub fn due_deliveries(&self, now: i64) -> Result<(Vec<Delivery>, Option<i64>), StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT o.id, o.webhook_id, w.url, w.secret, o.event, o.payload, o.attempts, o.next_attempt_at
             FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.id IN (SELECT MIN(id) FROM webhook_outbox
                            WHERE delivered_at IS NULL AND given_up = 0 GROUP BY webhook_id)",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                Delivery {
                    row: r.get(0)?,
                    webhook_id: r.get(1)?,
                    url: r.get(2)?,
                    secret: r.get(3)?,
                    event: r.get(4)?,
                    payload: r.get(5)?,
                    attempts: r.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                },
                r.get::<_, i64>(7)?,
            ))
        })?;
        let (mut due, mut next) = (Vec::new(), None::<i64>);
        for row in rows {
            let (d, at) = row?;
            if at <= now {
                due.push(d);
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok((due, next))
    }

    /// An event reached its webhook.
    pub fn delivered(&mut self, row: i64, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE webhook_outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![row, at],
        )?;
        Ok(())
    }

    /// A delivery failed: try again at `retry_at`, or never (`None`).
    pub fn delivery_failed(&mut self, row: i64, error: &str, retry_at: Option<i64>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?2,
                next_attempt_at = COALESCE(?3, next_attempt_at), given_up = ?4 WHERE id = ?1",
            params![row, error, retry_at, retry_at.is_none()],
        )?;
        Ok(())
    }

    /// Forgets delivered (or given-up) webhook events older than `events_before` and
    /// idempotency keys older than `keys_before` (ms). Returns the rows removed.
    pub fn prune(&mut self, events_before: i64, keys_before: i64) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL OR given_up = 1) AND created_at < ?1",
            [events_before],
        )?;
        let m = self.conn.execute("DELETE FROM idempotency WHERE created_at < ?1", [keys_before])?;
        Ok(n + m)
    }

    /// Events not delivered yet (and not given up).
    pub fn outbox_pending(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND given_up = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_call<'a>(id: &'a str, contact: &'a str, at: i64) -> NewCall<'a> {
        NewCall {
            id,
            contact_id: contact,
            phone_number: "+15551230000",
            from_number: None,
            record: false,
            created_at: at,
        }
    }

    #[test]
    fn the_outbox_queues_per_subscription_orders_retries_and_prunes() {
        let mut s = Store::in_memory().unwrap();
        let hook = |id: &str, events: &[&str]| Webhook {
            id: id.into(),
            url: format!("http://127.0.0.1:9/{id}"),
            secret: "s".repeat(16),
            events: events.iter().map(|e| e.to_string()).collect(),
            created_at: 0,
        };
        s.insert_webhook(&hook("wh_all", &[])).unwrap();
        s.insert_webhook(&hook("wh_done", &["call.completed"])).unwrap();
        s.insert_call(&new_call("call_1", "c", 1_000)).unwrap();
        s.set_status("call_1", CallStatus::InProgress, Some(200), None, 2_000).unwrap();
        s.set_status("call_1", CallStatus::Completed, None, None, 3_000).unwrap();
        assert_eq!(s.outbox_pending().unwrap(), 4, "3 for wh_all, 1 for wh_done");
        // One at a time per webhook, oldest first.
        let (due, next) = s.due_deliveries(10_000).unwrap();
        let mut firsts: Vec<(&str, &str)> = due.iter().map(|d| (d.webhook_id.as_str(), d.event.as_str())).collect();
        firsts.sort();
        assert_eq!(firsts, [("wh_all", "call.initiated"), ("wh_done", "call.completed")]);
        assert_eq!(next, None);
        let body: serde_json::Value = serde_json::from_str(&due[0].payload).unwrap();
        assert_eq!(body["data"]["id"], "call_1");
        // A failure holds the webhook's later events back until the retry is due.
        let all = due.iter().find(|d| d.webhook_id == "wh_all").unwrap().row;
        s.delivery_failed(all, "HTTP 500", Some(20_000)).unwrap();
        let (due, next) = s.due_deliveries(10_000).unwrap();
        assert_eq!(due.iter().map(|d| d.webhook_id.as_str()).collect::<Vec<_>>(), ["wh_done"]);
        assert_eq!(next, Some(20_000));
        let (due, _) = s.due_deliveries(20_000).unwrap();
        let retry = due.iter().find(|d| d.webhook_id == "wh_all").unwrap();
        assert_eq!((retry.row, retry.attempts, retry.event.as_str()), (all, 1, "call.initiated"));
        s.delivered(all, 20_001).unwrap();
        let (due, _) = s.due_deliveries(20_002).unwrap();
        assert!(due.iter().any(|d| d.event == "call.answered"));
        // Given up: skipped; deleting a webhook drops what it had pending.
        s.delete_webhook("wh_done").unwrap();
        assert_eq!(s.outbox_pending().unwrap(), 2);
        assert!(matches!(s.delete_webhook("wh_done"), Err(StoreError::NotFound)));
        // Pruning keeps what is pending.
        assert_eq!(s.prune(i64::MAX, 0).unwrap(), 2, "the delivered one and the dropped one");
        assert_eq!(s.outbox_pending().unwrap(), 2);
    }

    #[test]
    fn the_writer_applies_batches_and_skips_what_a_call_cannot_do() {
        let store = std::sync::Arc::new(std::sync::Mutex::new(Store::in_memory().unwrap()));
        store.lock().unwrap().insert_call(&new_call("call_w", "c", 1)).unwrap();
        let w = Writer::spawn(store.clone()).unwrap();
        let status = |to, at| Op::Status { id: "call_w".into(), to, sip_status: None, reason: None, at };
        w.send(status(CallStatus::InProgress, 2));
        w.send(Op::Dtmf { id: "call_w".into(), digit: '5', at: 3 });
        w.send(status(CallStatus::Ringing, 4)); // backwards: skipped
        w.send(Op::Recording { id: "nope".into(), state: RecordingState::Ready, path: None, at: 5 });
        w.send(status(CallStatus::Completed, 6));
        assert!(w.flush(std::time::Duration::from_secs(5)));
        let s = store.lock().unwrap();
        let c = s.get_call("call_w").unwrap();
        assert_eq!((c.status, c.answered_at, c.ended_at), (CallStatus::Completed, Some(2), Some(6)));
        let ev: Vec<String> = s.events("call_w").unwrap().into_iter().map(|e| e.detail).collect();
        assert_eq!(ev, ["initiating", "in-progress", "5", "completed"]);
    }

    #[test]
    fn idempotency_keys_replay_or_conflict() {
        let mut s = Store::in_memory().unwrap();
        let (c, replayed) = s.insert_call_once(&new_call("call_a", "c", 1), Some(("key_1", "k", "h1"))).unwrap();
        assert_eq!((c.id.as_str(), replayed), ("call_a", false));
        let (c, replayed) = s.insert_call_once(&new_call("call_b", "c", 2), Some(("key_1", "k", "h1"))).unwrap();
        assert_eq!((c.id.as_str(), replayed), ("call_a", true));
        assert!(matches!(
            s.insert_call_once(&new_call("call_c", "c", 3), Some(("key_1", "k", "h2"))),
            Err(StoreError::IdempotencyConflict)
        ));
        // Keys are per principal.
        let (c, _) = s.insert_call_once(&new_call("call_d", "c", 4), Some(("key_2", "k", "h2"))).unwrap();
        assert_eq!(c.id, "call_d");
        assert_eq!(s.list_calls(&CallFilter { limit: 10, ..CallFilter::default() }).unwrap().1, 2);
    }

    #[test]
    fn a_call_lives_initiating_to_completed_with_its_events_and_duration() {
        let mut s = Store::in_memory().unwrap();
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
        let c = s.insert_call(&new_call("call_1", "contact_1", 1_000)).unwrap();
        assert_eq!((c.status, c.duration), (CallStatus::Initiating, None));
        s.set_status("call_1", CallStatus::Ringing, Some(180), None, 2_000).unwrap();
        s.set_status("call_1", CallStatus::InProgress, Some(200), None, 3_000).unwrap();
        let c = s.set_status("call_1", CallStatus::Completed, None, Some("BYE"), 123_500).unwrap();
        assert_eq!(c.status, CallStatus::Completed);
        assert_eq!((c.answered_at, c.ended_at, c.duration), (Some(3_000), Some(123_500), Some(120.5)));
        assert_eq!(c.sip_status, Some(200));
        let ev: Vec<String> = s.events("call_1").unwrap().into_iter().map(|e| e.detail).collect();
        assert_eq!(ev, ["initiating", "ringing", "in-progress", "completed"]);
        // Never out of a final state, never backwards.
        assert!(matches!(
            s.set_status("call_1", CallStatus::InProgress, None, None, 200_000),
            Err(StoreError::BadTransition { .. })
        ));
        assert!(matches!(s.set_status("nope", CallStatus::Failed, None, None, 1), Err(StoreError::NotFound)));
    }

    #[test]
    fn list_filters_pages_and_counts() {
        let mut s = Store::in_memory().unwrap();
        for i in 0..30 {
            let id = format!("call_{i:02}");
            let contact = if i % 3 == 0 { "c_a" } else { "c_b" };
            s.insert_call(&new_call(&id, contact, 1_000 + i)).unwrap();
            if i % 2 == 0 {
                s.set_status(&id, CallStatus::Failed, Some(503), None, 5_000).unwrap();
            }
        }
        let (page, total) = s.list_calls(&CallFilter { limit: 5, ..CallFilter::default() }).unwrap();
        assert_eq!((page.len(), total), (5, 30));
        assert_eq!(page[0].id, "call_29", "newest first");
        let f = CallFilter {
            status: Some(CallStatus::Failed),
            contact_id: Some("c_a"),
            limit: 50,
            ..CallFilter::default()
        };
        let (rows, total) = s.list_calls(&f).unwrap();
        assert_eq!(total, 5); // i in {0, 6, 12, 18, 24}
        assert!(rows.iter().all(|c| c.status == CallStatus::Failed && c.contact_id == "c_a"));
        let f = CallFilter { from: Some(1_010), to: Some(1_020), limit: 50, offset: 2, ..CallFilter::default() };
        let (rows, total) = s.list_calls(&f).unwrap();
        assert_eq!((rows.len(), total), (8, 10));
    }

    #[test]
    fn a_restart_finds_every_call_and_closes_the_unfinished() {
        let dir = std::env::temp_dir().join(format!("dialtone-store-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dialtone.db");
        {
            let mut s = Store::open(&path).unwrap();
            s.insert_call(&new_call("call_done", "c", 1)).unwrap();
            s.set_status("call_done", CallStatus::Busy, Some(486), Some("Busy Here"), 2).unwrap();
            s.insert_call(&new_call("call_live", "c", 3)).unwrap();
            s.set_status("call_live", CallStatus::InProgress, Some(200), None, 4).unwrap();
            s.insert_call(&new_call("call_new", "c", 5)).unwrap();
            // Dropped without closing: as after a crash.
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.close_unfinished(10).unwrap(), 2);
        let (all, total) = s.list_calls(&CallFilter { limit: 10, ..CallFilter::default() }).unwrap();
        assert_eq!(total, 3);
        for c in &all {
            match c.id.as_str() {
                "call_done" => assert_eq!(c.status, CallStatus::Busy),
                _ => assert_eq!(
                    (c.status, c.reason.as_deref(), c.ended_at),
                    (CallStatus::Failed, Some("restart"), Some(10))
                ),
            }
        }
        assert_eq!(s.events("call_live").unwrap().last().unwrap().detail, "failed");
        // Reopening is idempotent: the schema is not applied twice.
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(Store::setup(conn), Err(StoreError::TooNew { found: 99, .. })));
    }
}

