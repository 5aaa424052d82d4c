//! The database: [`Store`] (one connection: the writer's, or a read-only one), opening it
//! (SQLite in WAL mode, or PostgreSQL from a URL), the versioned migrations in both
//! dialects, and the [`Readers`] pool.

use super::error::StoreError;
use super::pg::PgConn;
use super::pg_migrations::PG_MIGRATIONS;
use super::sql::{params, Db};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// The schema, one migration per version; never edit one that has shipped. Each has its
/// PostgreSQL twin in [`PG_MIGRATIONS`] (store/pg_migrations.rs), at the same index.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 4: organizations; every owned row belongs to one (what there was, to `default`);
    // the first admin is the platform's owner; a REFER's call names the call that asked.
    "CREATE TABLE organizations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        max_concurrent_calls INTEGER,
        max_calls_per_second REAL,
        allowed_destinations TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO organizations (id, name, created_at) VALUES ('org_default', 'default', 0);
    ALTER TABLE users ADD COLUMN organization_id TEXT NOT NULL DEFAULT 'org_default';
    ALTER TABLE api_keys ADD COLUMN organization_id TEXT NOT NULL DEFAULT 'org_default';
    ALTER TABLE calls ADD COLUMN organization_id TEXT NOT NULL DEFAULT 'org_default';
    ALTER TABLE calls ADD COLUMN referred_by TEXT;
    ALTER TABLE webhooks ADD COLUMN organization_id TEXT NOT NULL DEFAULT 'org_default';
    CREATE INDEX calls_org ON calls(organization_id, created_at);
    CREATE INDEX users_org ON users(organization_id, created_at);
    CREATE INDEX api_keys_org ON api_keys(organization_id, created_by);
    CREATE INDEX webhooks_org ON webhooks(organization_id, active);
    UPDATE users SET permissions = permissions || ' orgs:read orgs:write'
     WHERE id = (SELECT id FROM users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1);",
    // 5: SIP users (softphones' accounts), by organization; the admins may manage them.
    "CREATE TABLE sip_users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        ha1_md5 TEXT NOT NULL,
        ha1_sha256 TEXT NOT NULL,
        realm TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        organization_id TEXT NOT NULL
    );
    CREATE INDEX sip_users_org ON sip_users(organization_id, created_at);",
    // 6: what a call was placed with: custom X- headers (JSON), ring timeout, longest talk.
    "ALTER TABLE calls ADD COLUMN sip_headers TEXT;
    ALTER TABLE calls ADD COLUMN ring_timeout INTEGER;
    ALTER TABLE calls ADD COLUMN max_duration INTEGER;",
    // 7: the organizations' own SIP trunks and their phone numbers (issue 15); lists and
    // actions as JSON.
    "CREATE TABLE trunks (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        name TEXT NOT NULL,
        uri TEXT NOT NULL,
        username TEXT,
        password TEXT,
        allowed_cidrs TEXT NOT NULL DEFAULT '[]',
        prefixes TEXT NOT NULL DEFAULT '[]',
        priority INTEGER NOT NULL DEFAULT 100,
        max_concurrent_calls INTEGER,
        max_calls_per_second REAL,
        codecs TEXT NOT NULL DEFAULT '[]',
        srtp TEXT,
        asserted_identity INTEGER NOT NULL DEFAULT 0,
        privacy INTEGER NOT NULL DEFAULT 0,
        options_interval INTEGER,
        created_at INTEGER NOT NULL,
        register INTEGER NOT NULL DEFAULT 0,
        UNIQUE (organization_id, name)
    );
    CREATE INDEX trunks_org ON trunks(organization_id, created_at);
    CREATE TABLE numbers (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        number TEXT NOT NULL UNIQUE,
        action TEXT NOT NULL,
        fallback TEXT,
        webhook_secret TEXT,
        webhook_timeout_ms INTEGER NOT NULL DEFAULT 3000,
        record INTEGER NOT NULL DEFAULT 0,
        max_duration INTEGER,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX numbers_org ON numbers(organization_id, created_at);",
    // 8: caller ID: the display name an API call was placed with; an inbound call's
    // asserted identity (RFC 3325) and the number it called; early media asked for.
    "ALTER TABLE calls ADD COLUMN from_display_name TEXT;
    ALTER TABLE calls ADD COLUMN asserted_identity TEXT;
    ALTER TABLE calls ADD COLUMN number_id TEXT;
    ALTER TABLE calls ADD COLUMN early_media INTEGER NOT NULL DEFAULT 0;",
    // 9: conferences and who sat in them (a seat per join: a call may leave and come back).
    "CREATE TABLE conferences (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        name TEXT,
        created_at INTEGER NOT NULL,
        ended_at INTEGER
    );
    CREATE INDEX conferences_org ON conferences(organization_id, created_at);
    CREATE TABLE conference_participants (
        id INTEGER PRIMARY KEY,
        conference_id TEXT NOT NULL REFERENCES conferences(id),
        call_id TEXT NOT NULL REFERENCES calls(id),
        muted INTEGER NOT NULL DEFAULT 0,
        joined_at INTEGER NOT NULL,
        left_at INTEGER
    );
    CREATE INDEX conference_participants_conf ON conference_participants(conference_id, id);
    CREATE INDEX conference_participants_call ON conference_participants(call_id, left_at);",
    // 10: an announcement a number's callers hear before the answer (early media).
    "ALTER TABLE numbers ADD COLUMN pre_answer TEXT;",
    // 11: answering-machine detection: asked for, and who answered (and when it was known).
    "ALTER TABLE calls ADD COLUMN machine_detection TEXT;
    ALTER TABLE calls ADD COLUMN answered_by TEXT;
    ALTER TABLE calls ADD COLUMN answered_by_ms INTEGER;",
    // 12: voice agents as conference members (each its own WebSocket, not a call).
    "CREATE TABLE conference_agents (
        id TEXT PRIMARY KEY,
        conference_id TEXT NOT NULL REFERENCES conferences(id),
        url TEXT NOT NULL,
        format TEXT,
        muted INTEGER NOT NULL DEFAULT 0,
        joined_at INTEGER NOT NULL,
        left_at INTEGER
    );
    CREATE INDEX conference_agents_conf ON conference_agents(conference_id, joined_at);",
    // 13: a voice-agent call's turns (response latency, barge-ins, talk-over), as JSON.
    "ALTER TABLE calls ADD COLUMN turns TEXT;",
    // 14: every webhook delivery attempt (the console's delivery list), pruned with the outbox.
    "CREATE TABLE webhook_attempts (
        id INTEGER PRIMARY KEY,
        outbox_id INTEGER NOT NULL,
        webhook_id TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        event TEXT NOT NULL,
        call_id TEXT,
        attempt INTEGER NOT NULL,
        at INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        status_code INTEGER,
        response TEXT,
        error TEXT,
        outcome TEXT NOT NULL,
        next_retry_at INTEGER
    );
    CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id);",
    // 15: a call's SIP messages and quality samples, as JSON, stored at its end.
    "ALTER TABLE calls ADD COLUMN sip_ladder TEXT;
    ALTER TABLE calls ADD COLUMN quality TEXT;
    ALTER TABLE calls ADD COLUMN ended_by TEXT;",
    // 16: the start of an API key's secret, to tell keys apart.
    "ALTER TABLE api_keys ADD COLUMN prefix TEXT;",
    // 17: several nodes on one store (issue 18): each node's heartbeat and lease, the node
    // that owns each call, settings every node shares (the JWT key), the outbox row a
    // node's sender is delivering (its lease), and request limits' buckets every node takes
    // from.
    "CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        live_calls INTEGER NOT NULL DEFAULT 0,
        draining INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        lease_until INTEGER NOT NULL,
        lost_at INTEGER
    );
    ALTER TABLE calls ADD COLUMN node_id TEXT;
    CREATE INDEX calls_node ON calls(node_id, status);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    ALTER TABLE webhook_outbox ADD COLUMN leased_by TEXT;
    ALTER TABLE webhook_outbox ADD COLUMN lease_until INTEGER;
    CREATE TABLE rate_buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL);",
    // 18: an organization's calls up, counted across the nodes when a call is created; the
    // node a conference's room is on.
    "CREATE INDEX calls_org_live ON calls(organization_id) WHERE status IN ('initiating', 'ringing', 'in-progress');
    ALTER TABLE conferences ADD COLUMN node_id TEXT;",
];

/// The environment variable naming a PostgreSQL server the store's tests also run on.
const TEST_DATABASE_VAR: &str = "DIALTONE_TEST_DATABASE_URL";

/// The advisory lock held while PostgreSQL is migrated, so that nodes starting together
/// migrate once ("dialtone" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x6469_616c_746f_6e65;

/// The database.
pub struct Store {
    pub(super) conn: Db,
    /// Notified when webhook deliveries are queued.
    pub on_enqueue: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// Told the id of every call that changed (a new call, a status, an event), after the
    /// change is committed: the API's live event stream.
    pub on_change: Option<tokio::sync::broadcast::Sender<String>>,
    /// The node this store writes for ([`Store::set_node`]): the owner of the calls it
    /// inserts, and whose unfinished calls a restart closes.
    pub(super) node: Option<String>,
}

/// Where [`Readers`] connect.
enum Source {
    Path(PathBuf),
    Url(String),
}

/// A pool of read-only connections for the API's queries, so a long list never holds the
/// writer (which the SIP loop uses for every status change).
pub struct Readers {
    source: Source,
    idle: std::sync::Mutex<Vec<Store>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Path(p) => f.debug_struct("Readers").field("path", p).finish(),
            // The URL may hold a password.
            Source::Url(_) => f.debug_struct("Readers").field("url", &"postgres://…").finish(),
        }
    }
}

impl Readers {
    /// Readers of the SQLite database at `path`.
    pub fn new(path: &Path) -> Readers {
        Readers { source: Source::Path(path.to_path_buf()), idle: std::sync::Mutex::new(Vec::new()) }
    }

    /// Readers of the PostgreSQL database at `url` (which must be migrated: see
    /// [`Store::open_url`]).
    pub fn for_url(url: &str) -> Readers {
        Readers { source: Source::Url(url.to_string()), idle: std::sync::Mutex::new(Vec::new()) }
    }

    /// An idle connection, or a new one.
    pub fn get(&self) -> Result<Store, StoreError> {
        if let Some(s) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(s);
        }
        match &self.source {
            Source::Path(p) => Store::open_reader(p),
            Source::Url(u) => {
                // Read-only, as SQLite's readers are.
                let s = Store::connect_url(u)?;
                s.conn.batch("SET default_transaction_read_only = on")?;
                Ok(s)
            }
        }
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

/// Whether `url` names a PostgreSQL database.
pub(super) fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Opens (or creates) `path`, in WAL mode, and brings the schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::setup(Connection::open(path)?)
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user@host:port/db`) and
    /// brings its schema up to date; several nodes may do so at once.
    pub fn open_url(url: &str) -> Result<Store, StoreError> {
        let mut store = Store::connect_url(url)?;
        store.migrate()?;
        Ok(store)
    }

    /// A connection to the PostgreSQL database at `url`, as it is (not migrated).
    fn connect_url(url: &str) -> Result<Store, StoreError> {
        if !is_postgres_url(url) {
            return Err(StoreError::Postgres("not a postgres:// URL".into()));
        }
        Ok(Store { conn: Db::Postgres(PgConn::connect(url)?), on_enqueue: None, on_change: None, node: None })
    }

    /// A fresh store for tests: a private in-memory SQLite database, or, when
    /// `DIALTONE_TEST_DATABASE_URL` names a PostgreSQL server, a new schema of its own there
    /// (see [`Store::test_url`]).
    pub fn for_tests() -> Result<Store, StoreError> {
        match Store::test_url()? {
            Some(url) => Store::open_url(&url),
            None => Store::in_memory(),
        }
    }

    /// Fresh stores for tests, one per backend: SQLite in memory, and PostgreSQL (a new
    /// schema) when `DIALTONE_TEST_DATABASE_URL` is set. A test that runs its body on each
    /// runs on both.
    pub fn test_backends() -> Result<Vec<Store>, StoreError> {
        let mut all = vec![Store::in_memory()?];
        if let Some(url) = Store::test_url()? {
            all.push(Store::open_url(&url)?);
        }
        Ok(all)
    }

    /// Two connections to one fresh database, per backend (a SQLite file; a new PostgreSQL
    /// schema when `DIALTONE_TEST_DATABASE_URL` is set): two nodes' stores, for tests.
    pub fn test_pairs() -> Result<Vec<(Store, Store)>, StoreError> {
        let dir =
            std::env::temp_dir().join(format!("dialtone-pair-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("a temporary directory for the tests' database");
        let path = dir.join("dialtone.db");
        let mut all = vec![(Store::open(&path)?, Store::open(&path)?)];
        if let Some(url) = Store::test_url()? {
            all.push((Store::open_url(&url)?, Store::open_url(&url)?));
        }
        Ok(all)
    }

    /// Per backend, a way to open another connection to one fresh database (a SQLite file;
    /// a new PostgreSQL schema when `DIALTONE_TEST_DATABASE_URL` is set), migrated: many
    /// nodes' stores, for tests that race them.
    #[allow(clippy::type_complexity)]
    pub fn test_openers() -> Result<Vec<std::sync::Arc<dyn Fn() -> Store + Send + Sync>>, StoreError> {
        let dir =
            std::env::temp_dir().join(format!("dialtone-race-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("a temporary directory for the tests' database");
        let path = dir.join("dialtone.db");
        let mut all: Vec<std::sync::Arc<dyn Fn() -> Store + Send + Sync>> =
            vec![std::sync::Arc::new(move || Store::open(&path).expect("the test database"))];
        if let Some(url) = Store::test_url()? {
            all.push(std::sync::Arc::new(move || Store::open_url(&url).expect("the test database")));
        }
        for open in &all {
            drop(open());
        }
        Ok(all)
    }

    /// When `DIALTONE_TEST_DATABASE_URL` names a PostgreSQL server (a throw-away one:
    /// `tools/pg-scratch`), a new empty schema there and the URL that works in it (its
    /// `search_path`); `None` when the variable is unset or empty. The schemas are left
    /// behind.
    pub fn test_url() -> Result<Option<String>, StoreError> {
        let Some(server) = std::env::var(TEST_DATABASE_VAR).ok().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("t_{}_{n}_{:08x}", std::process::id(), rand::random::<u32>());
        Store::connect_url(&server)?.conn.batch(&format!("CREATE SCHEMA {schema}"))?;
        let sep = if server.contains('?') { '&' } else { '?' };
        Ok(Some(format!("{server}{sep}options=-c%20search_path%3D{schema}")))
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
        Ok(Store { conn: Db::Sqlite(conn), on_enqueue: None, on_change: None, node: None })
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?)
    }

    pub(super) fn setup(conn: Connection) -> Result<Store, StoreError> {
        // WAL: readers never block the writer; NORMAL sync is durable across a process
        // crash (not a power cut) at a fraction of FULL's cost.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Store { conn: Db::Sqlite(conn), on_enqueue: None, on_change: None, node: None };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        match &self.conn {
            Db::Sqlite(c) => Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?),
            Db::Postgres(_) => self.conn.query_one("SELECT version FROM schema_version", &[])?.get(0),
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        if let Db::Sqlite(_) = self.conn {
            let found = self.version()?;
            if found > known {
                return Err(StoreError::TooNew { found, known });
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                self.conn.transaction(|db| {
                    db.batch(sql)?;
                    db.batch(&format!("PRAGMA user_version = {}", i + 1))
                })?;
            }
            return Ok(());
        }
        // One migration per transaction, each under the lock and after reading the version
        // again: another node may have done it meanwhile.
        loop {
            let done = self.conn.transaction(|db| {
                db.batch(&format!(
                    "SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK});
                     CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
                     INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);"
                ))?;
                let found: i64 = db.query_one("SELECT version FROM schema_version", &[])?.get(0)?;
                if found > known {
                    return Err(StoreError::TooNew { found, known });
                }
                if found == known {
                    return Ok(true);
                }
                db.batch(PG_MIGRATIONS[found as usize])?;
                db.execute("UPDATE schema_version SET version = ?1", params![found + 1])?;
                Ok(false)
            })?;
            if done {
                return Ok(());
            }
        }
    }
    /// Call `id` changed (committed): tells the live event stream, if any listens, and on a
    /// shared store the other nodes' streams ([`super::listen_calls`]).
    pub(super) fn changed(&self, id: &str) {
        if let Some(tx) = self.on_change.as_ref().filter(|t| t.receiver_count() > 0) {
            let _ = tx.send(id.to_string());
        }
        if let (Some(node), true) = (&self.node, self.conn.is_postgres()) {
            let said = format!("{node} {id}");
            if let Err(e) = self.conn.execute("SELECT pg_notify('dialtone_calls', ?1)", params![said]) {
                tracing::debug!(error = %e, "the other nodes were not told of a call's change");
            }
        }
    }

    /// Wakes the webhook sender when `n` deliveries were queued.
    pub(super) fn notify(&self, n: usize) {
        if n > 0 {
            if let Some(w) = &self.on_enqueue {
                w.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_database_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(Store::setup(conn), Err(StoreError::TooNew { found: 99, .. })));
    }

    #[test]
    fn both_dialects_have_every_migration() {
        assert_eq!(MIGRATIONS.len(), PG_MIGRATIONS.len());
    }

    #[test]
    fn a_newer_postgres_database_is_refused() {
        let Some(url) = Store::test_url().unwrap() else { return };
        let s = Store::open_url(&url).unwrap();
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
        s.conn.execute("UPDATE schema_version SET version = 99", &[]).unwrap();
        assert!(matches!(Store::open_url(&url), Err(StoreError::TooNew { found: 99, .. })));
    }

    #[test]
    fn postgres_nodes_starting_together_migrate_once() {
        let Some(url) = Store::test_url().unwrap() else { return };
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || Store::open_url(&url).map(|s| s.version()))
            })
            .collect();
        for n in nodes {
            assert_eq!(n.join().unwrap().unwrap().unwrap(), MIGRATIONS.len() as i64);
        }
        let s = Store::open_url(&url).unwrap();
        let rows = s.conn.query("SELECT COUNT(*) FROM schema_version", &[]).unwrap();
        assert_eq!(rows[0].get::<i64>(0).unwrap(), 1);
    }

    #[test]
    fn postgres_readers_see_what_the_writer_committed() {
        let Some(url) = Store::test_url().unwrap() else { return };
        let mut w = Store::open_url(&url).unwrap();
        let readers = Readers::for_url(&url);
        let r = readers.get().unwrap();
        assert!(r.list_calls(&crate::model::Scope::All, &Default::default()).unwrap().0.is_empty());
        w.insert_call(&crate::store::calls::tests::new_call("call_r", "c", 1)).unwrap();
        let call = r.get_call(&crate::model::Scope::All, "call_r").unwrap();
        assert_eq!(call.id, "call_r");
        assert!(r.conn.execute("DELETE FROM calls", &[]).is_err(), "read-only");
        readers.put(r);
        assert!(format!("{readers:?}").contains("postgres://…"), "no URL (nor password) in logs");
    }

    #[test]
    fn open_url_wants_a_postgres_url() {
        assert!(matches!(Store::open_url("sqlite:///tmp/x.db"), Err(StoreError::Postgres(_))));
    }

    #[test]
    fn inserts_return_the_new_id_and_transactions_undo_on_error() {
        for s in Store::test_backends().unwrap() {
            s.conn
                .execute(
                    "INSERT INTO calls (id, contact_id, phone_number, status, created_at) VALUES ('c1', 'c', 'p', 'initiating', 1)",
                    &[],
                )
                .unwrap();
            let sql = "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'k', 'd')";
            let first = s.conn.insert(sql, params!["c1", 1]).unwrap();
            let second = s.conn.insert(sql, params!["c1", 2]).unwrap();
            assert!(second > first, "{first} then {second}");
            let r: Result<(), StoreError> = s.conn.transaction(|tx| {
                tx.execute(sql, params!["c1", 3])?;
                Err(StoreError::NotFound)
            });
            assert!(matches!(r, Err(StoreError::NotFound)));
            let n: i64 = s.conn.query_one("SELECT COUNT(*) FROM call_events", &[]).unwrap().get(0).unwrap();
            assert_eq!(n, 2, "the failed transaction left nothing");
        }
    }
}
