//! API keys: stored by the hash of their secret, never the secret; each in its creator's
//! organization.

use super::db::Store;
use super::error::StoreError;
use super::sql::{params, Row};
use crate::model::{ApiKey, Scope};

const KEY_COLUMNS: &str =
    "id, name, permissions, created_by, created_at, last_used_at, revoked_at, organization_id, prefix";

fn key_from_row(r: &Row) -> Result<ApiKey, StoreError> {
    let perms: String = r.get(2)?;
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        permissions: perms.split_whitespace().map(str::to_string).collect(),
        created_by: r.get::<Option<String>>(3)?.unwrap_or_default(),
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
        organization_id: r.get(7)?,
        prefix: r.get(8)?,
    })
}

impl Store {
    /// Stores an API key (its hash only; the key itself is shown once, by the caller).
    pub fn insert_key(&mut self, k: &ApiKey, key_hash: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, permissions, created_by, created_at, organization_id, prefix)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                k.id,
                k.name,
                key_hash,
                k.permissions.join(" "),
                k.created_by,
                k.created_at,
                k.organization_id,
                k.prefix
            ],
        )?;
        Ok(())
    }

    /// The keys in `scope`, newest first (revoked ones included, marked).
    pub fn list_keys(&self, scope: &Scope) -> Result<Vec<ApiKey>, StoreError> {
        self.conn.query_map(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE (organization_id = ?1 OR ?1 IS NULL)
             ORDER BY created_at DESC, id DESC"
            ),
            params![scope.org()],
            key_from_row,
        )
    }

    /// The keys in `scope` that `owner` created (keys act as their creator), newest first.
    pub fn keys_of(&self, scope: &Scope, owner: &str) -> Result<Vec<ApiKey>, StoreError> {
        self.conn.query_map(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE created_by = ?1 AND (organization_id = ?2 OR ?2 IS NULL)
             ORDER BY created_at DESC, id DESC"
            ),
            params![owner, scope.org()],
            key_from_row,
        )
    }

    /// The key with this id in `scope`, revoked or not.
    pub fn key(&self, scope: &Scope, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.conn
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)"),
                params![id, scope.org()],
            )?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    /// The live (not revoked) key with this hash, in any organization: the credentials
    /// check, which learns the key's organization from it.
    pub fn key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.conn
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"),
                params![key_hash],
            )?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    /// Revokes a key; `NotFound` if there is no live key with that id in `scope`.
    pub fn revoke_key(&mut self, scope: &Scope, id: &str, at: i64) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE api_keys SET revoked_at = ?2
             WHERE id = ?1 AND revoked_at IS NULL AND (organization_id = ?3 OR ?3 IS NULL)",
            params![id, at, scope.org()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Notes a key's use at `at`, writing at most once a minute per key.
    pub fn touch_key(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        // `last_used_at + 60000 < ?2`: with `?2 - 60000` PostgreSQL takes ?2 for an INT4.
        self.conn.execute(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at + 60000 < ?2)",
            params![id, at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, owner: &str, org: &str, at: i64) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: format!("name of {id}"),
            permissions: vec!["calls:read".into(), "keys:write".into()],
            created_by: owner.into(),
            created_at: at,
            last_used_at: None,
            revoked_at: None,
            organization_id: org.into(),
            prefix: Some("dk_1234".into()),
        }
    }

    #[test]
    fn keys_are_found_by_hash_touched_once_a_minute_and_revoked() {
        for mut s in Store::test_backends().unwrap() {
            s.insert_key(&key("key_1", "user_a", "org_a", 1), "hash_1").unwrap();
            s.insert_key(&key("key_2", "user_b", "org_a", 2), "hash_2").unwrap();
            s.insert_key(&key("key_3", "user_c", "org_b", 3), "hash_3").unwrap();
            assert_eq!(s.key_by_hash("hash_1").unwrap().unwrap(), key("key_1", "user_a", "org_a", 1));
            let a = Scope::Org("org_a".into());
            let ids = |v: Vec<ApiKey>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
            assert_eq!(ids(s.list_keys(&a).unwrap()), ["key_2", "key_1"], "newest first");
            assert_eq!(ids(s.keys_of(&a, "user_a").unwrap()), ["key_1"]);
            assert!(s.key(&a, "key_3").unwrap().is_none(), "another organization's");
            // Times are ms since the epoch: past 32 bits.
            let now = 1_800_000_000_000;
            s.touch_key("key_1", now).unwrap();
            s.touch_key("key_1", now + 30_000).unwrap();
            assert_eq!(s.key(&a, "key_1").unwrap().unwrap().last_used_at, Some(now), "not within the minute");
            s.touch_key("key_1", now + 61_000).unwrap();
            assert_eq!(s.key(&a, "key_1").unwrap().unwrap().last_used_at, Some(now + 61_000));
            assert!(matches!(s.revoke_key(&Scope::Org("org_b".into()), "key_1", now), Err(StoreError::NotFound)));
            s.revoke_key(&a, "key_1", now).unwrap();
            assert!(s.key_by_hash("hash_1").unwrap().is_none(), "revoked");
            assert_eq!(s.key(&a, "key_1").unwrap().unwrap().revoked_at, Some(now));
            assert!(matches!(s.revoke_key(&a, "key_1", now), Err(StoreError::NotFound)), "once");
        }
    }
}
