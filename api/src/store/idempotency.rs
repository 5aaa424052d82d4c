//! `Idempotency-Key` records: a key (per principal) names the call its first request made.

use super::error::StoreError;
use super::sql::{params, Db};

/// Claims `key` for `principal`'s request with body hash `hash`, making call `call_id` at
/// `at`: `Ok(None)` the first time (the record is written with the transaction `conn`
/// is in), `Ok(Some(id))` of the call made before for the same hash, or
/// [`StoreError::IdempotencyConflict`] for another hash.
pub(super) fn claim(
    conn: &Db,
    (principal, key, hash): (&str, &str, &str),
    call_id: &str,
    at: i64,
) -> Result<Option<String>, StoreError> {
    let seen = || -> Result<Option<(String, String)>, StoreError> {
        conn.query_opt(
            "SELECT request_hash, call_id FROM idempotency WHERE principal = ?1 AND key = ?2",
            params![principal, key],
        )?
        .map(|r| Ok((r.get(0)?, r.get(1)?)))
        .transpose()
    };
    let earlier = match seen()? {
        Some(s) => s,
        None => {
            // Several nodes on one store may take the same key at the same moment: the
            // primary key lets one insert; the others (PostgreSQL makes them wait for its
            // commit) insert nothing and read what it wrote.
            let took = conn.execute(
                "INSERT INTO idempotency (key, principal, request_hash, call_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (principal, key) DO NOTHING",
                params![key, principal, hash, call_id, at],
            )?;
            if took == 1 {
                return Ok(None);
            }
            seen()?.ok_or(StoreError::IdempotencyConflict)?
        }
    };
    match earlier {
        (h, id) if h == hash => Ok(Some(id)),
        _ => Err(StoreError::IdempotencyConflict),
    }
}

/// Forgets the records older than `before` (ms); returns how many.
pub(super) fn forget(conn: &Db, before: i64) -> Result<usize, StoreError> {
    conn.execute("DELETE FROM idempotency WHERE created_at < ?1", params![before])
}

#[cfg(test)]
mod tests {
    use crate::model::CallFilter;
    use crate::store::calls::tests::new_call;
    use crate::store::{Store, StoreError};

    /// Requests with one key on several nodes at once (connections of their own): one call
    /// is made, every other request gets it back.
    #[test]
    fn one_key_asked_at_once_on_several_connections_makes_one_call() {
        for open in Store::test_openers().unwrap() {
            let made: Vec<String> = (0..8)
                .map(|i| {
                    let open = open.clone();
                    std::thread::spawn(move || {
                        let mut s = open();
                        let id = format!("call_{i}");
                        s.insert_call_once(&new_call(&id, "c", 1), Some(("p", "same-key", "h"))).unwrap().0.id
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert!(made.iter().all(|id| *id == made[0]), "{made:?}");
            let s = open();
            assert_eq!(
                s.list_calls(&crate::model::Scope::All, &CallFilter { limit: 10, ..CallFilter::default() }).unwrap().1,
                1
            );
        }
    }

    #[test]
    fn idempotency_keys_replay_or_conflict() {
        for mut s in Store::test_backends().unwrap() {
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
            assert_eq!(
                s.list_calls(&crate::model::Scope::All, &CallFilter { limit: 10, ..CallFilter::default() }).unwrap().1,
                2
            );
        }
    }
}
