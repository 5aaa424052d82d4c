//! Users who log in for a JWT.

use super::db::Store;
use super::error::StoreError;
use crate::model::User;
use rusqlite::{params, OptionalExtension};

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

impl Store {
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

    /// The role of user `id` (`None`: no such user, e.g. deleted).
    pub fn user_role(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT role FROM users WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
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
}
