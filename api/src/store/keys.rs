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
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE (?1 IS NULL OR organization_id = ?1)
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
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE created_by = ?1 AND (?2 IS NULL OR organization_id = ?2)
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
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR organization_id = ?2)"),
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
             WHERE id = ?1 AND revoked_at IS NULL AND (?3 IS NULL OR organization_id = ?3)",
            params![id, at, scope.org()],
        )?;
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
}
