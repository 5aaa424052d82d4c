//! The database under the store modules: one [`Db`], SQLite or PostgreSQL, that takes
//! [`Value`]s and gives back [`Row`]s.
//!
//! SQL is written once, in SQLite's syntax with `?1 ?2 …` placeholders; for PostgreSQL each
//! `?N` outside a quoted string becomes `$N`. Where the two dialects truly differ, the
//! caller asks [`Db::is_postgres`] in that one place. PostgreSQL infers each parameter's
//! type from where it is first used: an optional filter is written
//! `(organization_id = ?2 OR ?2 IS NULL)`, since a bare `?2 IS NULL` first says nothing;
//! arithmetic goes on the column (`last_used_at + 60000 < ?2`), since `?2 - 60000` makes
//! `?2` an INT4. Values are bound as the types PostgreSQL inferred, and columns read back
//! by their types, so that a [`Row`] holds what SQLite would have given.
//!
//! The `postgres` crate blocks on a runtime of its own and panics inside another, and the
//! API calls the store from async code; so a [`PgConn`] is a thread that owns the client,
//! and every call is a job sent to it and waited for.

use super::error::StoreError;
use super::pg::PgConn;
pub(crate) use super::value::params;
pub use super::value::{Row, Value};

/// The connection: SQLite or PostgreSQL.
pub enum Db {
    /// An SQLite database (a file or memory).
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL server, through its own thread.
    Postgres(PgConn),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_postgres() { "Db::Postgres" } else { "Db::Sqlite" })
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(*n),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl Db {
    /// Whether this is PostgreSQL (for the few statements written twice).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, StoreError> {
        match self {
            Db::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?),
            Db::Postgres(p) => p.execute(sql, params).map(|n| n as usize),
        }
    }

    /// Every row a query returns.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.query_map(sql, params, |r| Ok(r.clone()))
    }

    /// Every row a query returns, each mapped by `f` (on SQLite, as it is read).
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[Value],
        mut f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row((0..n).map(|i| r.get_ref(i).map(sqlite_value)).collect::<Result<_, _>>()?))?);
                }
                Ok(out)
            }
            Db::Postgres(p) => p.query(sql, params)?.iter().map(f).collect(),
        }
    }

    /// The first row a query returns, if any.
    pub fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row a query returns; [`StoreError::NotFound`] when there is none.
    pub fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?.ok_or(StoreError::NotFound)
    }

    /// Whether a query returns a row.
    pub fn exists(&self, sql: &str, params: &[Value]) -> Result<bool, StoreError> {
        Ok(self.query_opt(sql, params)?.is_some())
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(p) => p.batch(sql),
        }
    }

    /// Runs an `INSERT` into a table whose key is an integer `id` made by the database, and
    /// returns the new `id`.
    #[allow(dead_code)] // No store method needs the id yet; the tests use it.
    pub fn insert(&self, sql: &str, params: &[Value]) -> Result<i64, StoreError> {
        match self {
            Db::Sqlite(c) => {
                c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?;
                Ok(c.last_insert_rowid())
            }
            Db::Postgres(p) => {
                p.query(&format!("{sql} RETURNING id"), params)?.first().ok_or(StoreError::NotFound)?.get(0)
            }
        }
    }

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise.
    pub fn transaction<T>(&self, f: impl FnOnce(&Db) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // SQLite: take the write lock at once (waiting out another connection's, within the
        // busy timeout), rather than failing when a read turns into a write after another
        // connection wrote.
        self.batch(if self.is_postgres() { "BEGIN" } else { "BEGIN IMMEDIATE" })?;
        self.finish(f, "COMMIT", "ROLLBACK")
    }

    /// Runs `f` inside the current transaction so that, when it fails, what it wrote is
    /// undone and the transaction goes on.
    pub fn savepoint<T>(&self, f: impl FnOnce(&Db) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.batch("SAVEPOINT step")?;
        self.finish(f, "RELEASE SAVEPOINT step", "ROLLBACK TO SAVEPOINT step; RELEASE SAVEPOINT step")
    }

    fn finish<T>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, StoreError>,
        commit: &str,
        undo: &'static str,
    ) -> Result<T, StoreError> {
        /// Undoes on the way out unless told it is done (an error, or a panic).
        struct Undo<'a>(&'a Db, &'static str, bool);
        impl Drop for Undo<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    let _ = self.0.batch(self.1);
                }
            }
        }
        let mut guard = Undo(self, undo, false);
        let v = f(self)?;
        self.batch(commit)?;
        guard.2 = true;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::pg_sql;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            pg_sql("SELECT '?1', \"a?2\" FROM t WHERE a = ?1 AND b = ?12 AND c LIKE '%?%' AND d = ?"),
            "SELECT '?1', \"a?2\" FROM t WHERE a = $1 AND b = $12 AND c LIKE '%?%' AND d = ?"
        );
        assert_eq!(pg_sql("x = 'it''s ?1' OR y = ?2"), "x = 'it''s ?1' OR y = $2");
    }

    #[test]
    fn postgres_parameters_and_columns_take_the_types_it_infers() {
        let Some(url) = crate::store::Store::test_url().unwrap() else { return };
        let db = Db::Postgres(PgConn::connect(&url).unwrap());
        db.batch(
            "CREATE TABLE t (i2 SMALLINT, i4 INTEGER, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION, b BOOLEAN,
                             s TEXT, v VARCHAR(9), y BYTEA)",
        )
        .unwrap();
        let ins = "INSERT INTO t (i2, i4, i8, f4, f8, b, s, v, y) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
        // Each as PostgreSQL wants it: integers into any width, real and boolean columns, text.
        db.execute(ins, params![7, 8, 9, 2, 3, true, 10, "v", b"\x00y".to_vec()]).unwrap();
        db.execute(
            ins,
            params![
                None::<i64>,
                None::<i64>,
                None::<i64>,
                None::<f64>,
                None::<f64>,
                None::<bool>,
                None::<String>,
                None::<String>,
                None::<Vec<u8>>
            ],
        )
        .unwrap();
        let rows = db.query("SELECT i2, i4, i8, f4, f8, b, s, v, y, '?1' FROM t ORDER BY i8 NULLS LAST", &[]).unwrap();
        assert_eq!(
            rows[0].0,
            [
                Value::Int(7),
                Value::Int(8),
                Value::Int(9),
                Value::Real(2.0),
                Value::Real(3.0),
                Value::Int(1),
                Value::Text("10".into()),
                Value::Text("v".into()),
                Value::Blob(b"\x00y".to_vec()),
                Value::Text("?1".into()),
            ]
        );
        assert!(rows[1].0[..9].iter().all(|v| *v == Value::Null));
        // Too wide for the column: an error, not a wrapped number.
        assert!(db.execute(ins, params![70_000, 1, 1, 1, 1, 1, "s", "v", None::<Vec<u8>>]).is_err());
        // Counted and compared as SQLite would: COUNT is an integer, a comparison 0 or 1.
        let r = db.query_one("SELECT COUNT(*), 1 < 2, SUM(i8) FROM t WHERE i4 = ?1", params![8]).unwrap();
        assert_eq!((r.get::<i64>(0).unwrap(), r.get::<bool>(1).unwrap(), r.get::<i64>(2).unwrap()), (1, true, 9));
        // NUMERIC: SUM of BIGINTs an integer (as SQLite's), a fraction a real.
        let r = db
            .query_one(
                "SELECT SUM(x), CAST(-123456789012 AS NUMERIC), CAST(2.5 AS NUMERIC), CAST(-0.25 AS NUMERIC),
                        CAST(10000 AS NUMERIC), CAST(0 AS NUMERIC)
                 FROM (VALUES (CAST(9000000000000000000 AS BIGINT)), (1)) v(x)",
                &[],
            )
            .unwrap();
        assert_eq!(
            r.0,
            [
                Value::Int(9_000_000_000_000_000_001),
                Value::Int(-123_456_789_012),
                Value::Real(2.5),
                Value::Real(-0.25),
                Value::Int(10_000),
                Value::Int(0),
            ]
        );
    }

    #[test]
    fn a_lost_postgres_connection_is_made_again() {
        let Some(url) = crate::store::Store::test_url().unwrap() else { return };
        let db = Db::Postgres(PgConn::connect(&url).unwrap());
        let killer = Db::Postgres(PgConn::connect(&url).unwrap());
        let kill = |db: &Db| {
            let pid: i64 = db.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0).unwrap();
            killer.execute("SELECT pg_terminate_backend(CAST(?1 AS INTEGER), 5000)", params![pid]).unwrap();
        };
        db.batch("CREATE TABLE t (n BIGINT)").unwrap();
        kill(&db);
        // The loss shows on the next statement; the one after works again.
        assert!(db.execute("INSERT INTO t (n) VALUES (?1)", params![1]).is_err());
        db.execute("INSERT INTO t (n) VALUES (?1)", params![2]).unwrap();
        // Lost inside a transaction: nothing runs outside it, then it starts over.
        let r = db.transaction(|tx| {
            tx.execute("INSERT INTO t (n) VALUES (?1)", params![3])?;
            kill(tx);
            let _ = tx.execute("INSERT INTO t (n) VALUES (?1)", params![4]);
            tx.execute("INSERT INTO t (n) VALUES (?1)", params![5])
        });
        assert!(r.is_err());
        let n: Vec<i64> = db.query_map("SELECT n FROM t ORDER BY n", &[], |r| r.get(0)).unwrap();
        assert_eq!(n, [2]);
        // A read, and a transaction's BEGIN, that find the connection lost are sent again on
        // a new one (neither did anything on the old).
        kill(&db);
        assert_eq!(db.query_map("SELECT n FROM t ORDER BY n", &[], |r| r.get::<i64>(0)).unwrap(), [2]);
        kill(&db);
        db.transaction(|tx| tx.execute("INSERT INTO t (n) VALUES (?1)", params![6])).unwrap();
        assert_eq!(db.query_map("SELECT n FROM t ORDER BY n", &[], |r| r.get::<i64>(0)).unwrap(), [2, 6]);
    }

    #[test]
    fn values_convert_both_ways() {
        let row = Row(vec![
            Value::Int(7),
            Value::Null,
            Value::Text("a".into()),
            Value::Int(0),
            Value::Real(1.5),
            Value::Int(2),
        ]);
        assert_eq!(row.get::<i64>(0).unwrap(), 7);
        assert_eq!(row.get::<u32>(0).unwrap(), 7);
        assert_eq!(row.get::<Option<i64>>(1).unwrap(), None);
        assert_eq!(row.get::<String>(2).unwrap(), "a");
        assert!(!row.get::<bool>(3).unwrap());
        assert_eq!(row.get::<f64>(4).unwrap(), 1.5);
        assert_eq!(row.get::<f64>(5).unwrap(), 2.0);
        assert!(matches!(row.get::<String>(0), Err(StoreError::Column(_))));
        assert!(matches!(row.get::<i64>(9), Err(StoreError::Column(_))));
        let p = params![1_i64, "x", true, None::<String>, Some(2_u32), 0.5_f64];
        assert_eq!(
            p,
            [Value::Int(1), Value::Text("x".into()), Value::Int(1), Value::Null, Value::Int(2), Value::Real(0.5)]
        );
    }
}
