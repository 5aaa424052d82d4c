//! PostgreSQL under [`super::sql::Db`]: the `postgres` crate blocks on a runtime of its own
//! and panics inside another, and the API calls the store from async code; so a [`PgConn`]
//! is a thread that owns the client, and every call is a job sent to it and waited for.
//! Parameters are bound as the types PostgreSQL inferred, and columns read back by their
//! types, so that a [`Row`] holds what SQLite would have given.

use super::error::StoreError;
use super::value::{Row, Value};
use std::collections::HashMap;
use std::sync::mpsc;

/// `sql` with each `?N` outside quotes written `$N`, as PostgreSQL numbers parameters.
pub(super) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            None => out.push(c),
        }
    }
    out
}

type Job = Box<dyn FnOnce(&mut PgWorker) + Send>;

/// A PostgreSQL connection on a thread of its own (see the module's doc).
pub struct PgConn {
    jobs: mpsc::Sender<Job>,
}

struct PgWorker {
    config: postgres::Config,
    client: postgres::Client,
    /// Prepared statements by their SQLite-syntax text.
    statements: HashMap<String, postgres::Statement>,
    /// A `BEGIN` was sent, and no `COMMIT` or `ROLLBACK` yet.
    in_transaction: bool,
}

impl PgConn {
    /// Connects to `url` (`postgres://user@host:port/db`, without TLS) and starts the
    /// connection's thread.
    pub fn connect(url: &str) -> Result<PgConn, StoreError> {
        let config = pg_config(url)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::channel();
        std::thread::Builder::new()
            .name("store-postgres".into())
            .spawn(move || {
                let client = match config.connect(postgres::NoTls) {
                    Ok(c) => c,
                    Err(e) => return drop(ready.send(Err(e))),
                };
                let _ = ready.send(Ok(()));
                let mut w = PgWorker { config, client, statements: HashMap::new(), in_transaction: false };
                while let Ok(job) = rx.recv() {
                    job(&mut w);
                }
            })
            .map_err(|e| StoreError::Postgres(format!("cannot start the connection's thread: {e}")))?;
        connected.recv().map_err(|_| gone())??;
        Ok(PgConn { jobs })
    }

    /// Runs `f` on the connection's thread and waits for its result.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgWorker) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs.send(Box::new(move |w| drop(tx.send(f(w))))).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    pub(super) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let (sql, params) = (sql.to_string(), params.to_vec());
        self.run(move |w| {
            let st = w.statement(&sql)?;
            let bound = bind_all(&st, &params)?;
            Ok(w.client.execute(&st, &refs(&bound))?)
        })
    }

    pub(super) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let (sql, params) = (sql.to_string(), params.to_vec());
        // A read finds a connection lost only when it uses it: it is asked again on a new
        // one (a read outside a transaction does nothing twice).
        let reads = sql.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("SELECT"));
        self.run(move |w| {
            let ask = |w: &mut PgWorker| -> Result<Vec<Row>, StoreError> {
                let st = w.statement(&sql)?;
                let bound = bind_all(&st, &params)?;
                let rows = w.client.query(&st, &refs(&bound))?;
                rows.iter().map(|r| (0..r.len()).map(|i| read(r, i)).collect::<Result<_, _>>().map(Row)).collect()
            };
            match ask(w) {
                Err(_) if reads && w.again() => ask(w),
                answer => answer,
            }
        })
    }

    pub(super) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        let sql = sql.to_string();
        self.run(move |w| {
            match sql.as_str() {
                "COMMIT" | "ROLLBACK" => {
                    w.in_transaction = false;
                    if w.client.is_closed() {
                        // What the transaction did is gone with the connection.
                        return if sql == "ROLLBACK" { Ok(()) } else { Err(lost()) };
                    }
                }
                _ => w.ready()?,
            }
            match w.client.batch_execute(&sql) {
                // A BEGIN on a connection found lost: on a new one (nothing was begun).
                Err(_) if sql == "BEGIN" && w.again() => w.client.batch_execute(&sql)?,
                r => r?,
            }
            if sql == "BEGIN" {
                w.in_transaction = true;
            }
            Ok(())
        })
    }
}

impl PgWorker {
    /// Connects again when the connection was lost (the server restarted, say), unless a
    /// transaction was under way: then every statement fails until it is rolled back, so
    /// that none of its statements runs outside it.
    fn ready(&mut self) -> Result<(), StoreError> {
        if !self.client.is_closed() {
            return Ok(());
        }
        if self.in_transaction {
            return Err(lost());
        }
        self.client = self.config.connect(postgres::NoTls)?;
        self.statements.clear();
        Ok(())
    }

    /// Whether a statement that just failed may be sent again: the connection turned out to
    /// be closed, outside a transaction (the next statement makes a new one).
    fn again(&mut self) -> bool {
        !self.in_transaction && self.client.is_closed() && self.ready().is_ok()
    }

    /// The prepared statement for `sql` (written with `?N`), prepared once.
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        self.ready()?;
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(&pg_sql(sql))?;
        if self.statements.len() >= 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

/// The connection settings in `url`, with a connect timeout (5 s) and TCP keepalives
/// (after 10 s idle) unless it says otherwise: a server cut off by the network shows as an
/// error in seconds, not a connection that hangs.
pub(crate) fn pg_config(url: &str) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(5));
    }
    config.keepalives(true);
    if !url.contains("keepalives_idle") {
        config.keepalives_idle(std::time::Duration::from_secs(10));
    }
    Ok(config)
}

fn gone() -> StoreError {
    StoreError::Unreachable("the connection's thread is gone".into())
}

fn lost() -> StoreError {
    StoreError::Unreachable("the connection was lost during a transaction".into())
}

type Param = Box<dyn postgres::types::ToSql + Sync + Send>;

fn refs(bound: &[Param]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    bound.iter().map(|b| &**b as &(dyn postgres::types::ToSql + Sync)).collect()
}

fn bind_all(st: &postgres::Statement, params: &[Value]) -> Result<Vec<Param>, StoreError> {
    if st.params().len() != params.len() {
        return Err(StoreError::Postgres(format!(
            "the statement takes {} parameters, {} given",
            st.params().len(),
            params.len()
        )));
    }
    st.params().iter().zip(params).enumerate().map(|(i, (ty, v))| bind(i + 1, v, ty)).collect()
}

/// `v` as the type PostgreSQL inferred for parameter `n`.
fn bind(n: usize, v: &Value, ty: &postgres::types::Type) -> Result<Param, StoreError> {
    use postgres::types::Type;
    let wrong = || StoreError::Postgres(format!("parameter ${n}: {v:?} cannot be sent as {ty}"));
    let int = |i: i64| -> Result<Param, StoreError> {
        Ok(if *ty == Type::INT8 {
            Box::new(i)
        } else if *ty == Type::INT4 {
            Box::new(i32::try_from(i).map_err(|_| wrong())?)
        } else if *ty == Type::INT2 {
            Box::new(i16::try_from(i).map_err(|_| wrong())?)
        } else if *ty == Type::FLOAT8 {
            Box::new(i as f64)
        } else if *ty == Type::FLOAT4 {
            Box::new(i as f32)
        } else if *ty == Type::BOOL {
            Box::new(i != 0)
        } else if is_text(ty) {
            Box::new(i.to_string())
        } else {
            return Err(wrong());
        })
    };
    Ok(match v {
        Value::Null => {
            if *ty == Type::INT8 {
                Box::new(None::<i64>)
            } else if *ty == Type::INT4 {
                Box::new(None::<i32>)
            } else if *ty == Type::INT2 {
                Box::new(None::<i16>)
            } else if *ty == Type::FLOAT8 {
                Box::new(None::<f64>)
            } else if *ty == Type::FLOAT4 {
                Box::new(None::<f32>)
            } else if *ty == Type::BOOL {
                Box::new(None::<bool>)
            } else if *ty == Type::BYTEA {
                Box::new(None::<Vec<u8>>)
            } else if is_text(ty) {
                Box::new(None::<String>)
            } else {
                return Err(wrong());
            }
        }
        Value::Int(i) => int(*i)?,
        Value::Real(f) => {
            if *ty == Type::FLOAT8 {
                Box::new(*f)
            } else if *ty == Type::FLOAT4 {
                Box::new(*f as f32)
            } else if is_text(ty) {
                Box::new(f.to_string())
            } else if f.fract() == 0.0 && f.abs() < 9.0e15 {
                int(*f as i64)?
            } else {
                return Err(wrong());
            }
        }
        Value::Text(s) => {
            if is_text(ty) {
                Box::new(s.clone())
            } else if let Ok(i) = s.parse::<i64>() {
                int(i)?
            } else {
                return Err(wrong());
            }
        }
        Value::Blob(b) => {
            if *ty == Type::BYTEA {
                Box::new(b.clone())
            } else {
                return Err(wrong());
            }
        }
    })
}

fn is_text(ty: &postgres::types::Type) -> bool {
    use postgres::types::Type;
    [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN].contains(ty)
}

/// Column `i` of `r` as a [`Value`], by its type.
fn read(r: &postgres::Row, i: usize) -> Result<Value, StoreError> {
    use postgres::types::Type;
    let ty = r.columns()[i].type_();
    let v = if *ty == Type::INT8 {
        r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
    } else if *ty == Type::INT4 {
        r.try_get::<_, Option<i32>>(i)?.map(|n| Value::Int(n.into()))
    } else if *ty == Type::INT2 {
        r.try_get::<_, Option<i16>>(i)?.map(|n| Value::Int(n.into()))
    } else if *ty == Type::FLOAT8 {
        r.try_get::<_, Option<f64>>(i)?.map(Value::Real)
    } else if *ty == Type::FLOAT4 {
        r.try_get::<_, Option<f32>>(i)?.map(|f| Value::Real(f.into()))
    } else if *ty == Type::BOOL {
        r.try_get::<_, Option<bool>>(i)?.map(|b| Value::Int(b.into()))
    } else if *ty == Type::BYTEA {
        r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)
    } else if is_text(ty) {
        r.try_get::<_, Option<String>>(i)?.map(Value::Text)
    } else if *ty == Type::NUMERIC {
        r.try_get::<_, Option<Numeric>>(i)?.map(|n| n.0)
    } else {
        return Err(StoreError::Column(format!("column {i} is of type {ty}, which the store does not read")));
    };
    Ok(v.unwrap_or(Value::Null))
}

/// A NUMERIC column (what PostgreSQL's `SUM` of BIGINTs gives): an integer as
/// [`Value::Int`], as SQLite's `SUM` would give, otherwise a [`Value::Real`].
struct Numeric(Value);

impl<'a> postgres::types::FromSql<'a> for Numeric {
    fn from_sql(_: &postgres::types::Type, raw: &'a [u8]) -> Result<Numeric, Box<dyn std::error::Error + Sync + Send>> {
        // The binary form: digit count, weight (of the first base-10000 digit), sign, scale,
        // then the digits.
        let word = |i: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
            let b = raw.get(2 * i..2 * i + 2).ok_or("a short NUMERIC")?;
            Ok(u16::from_be_bytes([b[0], b[1]]))
        };
        let (count, weight, sign) = (word(0)? as usize, word(1)? as i16, word(2)?);
        match sign {
            0x0000 | 0x4000 => {}
            _ => return Ok(Numeric(Value::Real(f64::NAN))), // NaN or an infinity
        }
        let (mut int, mut real, mut exact) = (0_i128, 0_f64, true);
        for k in 0..count {
            let d = word(4 + k)?;
            let power = i32::from(weight) - k as i32;
            real += f64::from(d) * 10_000_f64.powi(power);
            if power < 0 {
                exact &= d == 0;
            } else if exact {
                match 10_000_i128.checked_pow(power as u32).and_then(|p| p.checked_mul(i128::from(d))) {
                    Some(v) => int += v,
                    None => exact = false,
                }
            }
        }
        let negative = sign == 0x4000;
        let int = if negative { -int } else { int };
        Ok(Numeric(match i64::try_from(int) {
            Ok(n) if exact => Value::Int(n),
            _ => Value::Real(if negative { -real } else { real }),
        }))
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        *ty == postgres::types::Type::NUMERIC
    }
}
