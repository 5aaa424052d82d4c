//! Users who log in for a JWT, each in one organization.

use super::db::Store;
use super::error::StoreError;
use super::sql::{params, Row};
use crate::model::{Scope, User};

const USER_COLUMNS: &str = "id, email, password_hash, role, permissions, created_at, organization_id";

fn user_from_row(r: &Row) -> Result<User, StoreError> {
    let perms: String = r.get(4)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        permissions: perms.split_whitespace().map(str::to_string).collect(),
        created_at: r.get(5)?,
        organization_id: r.get(6)?,
    })
}

/// Who a user is to the credentials check: its role and organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// `admin` or `user`.
    pub role: String,
    /// Its organization.
    pub organization_id: String,
}

impl Store {
    /// Adds a user (`email` is unique across organizations: it is the login).
    pub fn insert_user(&mut self, u: &User) -> Result<(), StoreError> {
        self.conn.execute(
            &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                u.id,
                u.email.to_ascii_lowercase(),
                u.password_hash,
                u.role,
                u.permissions.join(" "),
                u.created_at,
                u.organization_id
            ],
        )?;
        Ok(())
    }

    /// The user with this e-mail (compared case-insensitively), in any organization: the
    /// login.
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.conn
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
                params![email.to_ascii_lowercase()],
            )?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// The users in `scope`, oldest first.
    pub fn list_users(&self, scope: &Scope) -> Result<Vec<User>, StoreError> {
        self.conn.query_map(
            &format!(
                "SELECT {USER_COLUMNS} FROM users WHERE (organization_id = ?1 OR ?1 IS NULL) ORDER BY created_at, id"
            ),
            params![scope.org()],
            user_from_row,
        )
    }

    /// The role and organization of user `id` (`None`: no such user, e.g. deleted): what
    /// the credentials check needs on every request.
    pub fn user_access(&self, id: &str) -> Result<Option<Access>, StoreError> {
        self.conn
            .query_opt("SELECT role, organization_id FROM users WHERE id = ?1", params![id])?
            .map(|r| Ok(Access { role: r.get(0)?, organization_id: r.get(1)? }))
            .transpose()
    }

    /// Deletes user `id` if it is in `scope`; `NotFound` otherwise.
    pub fn delete_user(&mut self, scope: &Scope, id: &str) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "DELETE FROM users WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
            params![id, scope.org()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: &str, org: &str, at: i64) -> User {
        User {
            id: id.into(),
            email: email.into(),
            password_hash: "$argon2id$x".into(),
            role: "user".into(),
            permissions: vec!["calls:read".into()],
            created_at: at,
            organization_id: org.into(),
        }
    }

    #[test]
    fn users_log_in_by_email_in_any_case_and_are_scoped() {
        for mut s in Store::test_backends().unwrap() {
            s.insert_user(&user("user_b", "Bob@Example.com", "org_a", 2)).unwrap();
            s.insert_user(&user("user_a", "alice@example.com", "org_a", 2)).unwrap();
            s.insert_user(&user("user_c", "carol@example.com", "org_b", 1)).unwrap();
            assert!(s.insert_user(&user("user_d", "BOB@example.com", "org_b", 3)).is_err(), "one login");
            let bob = s.user_by_email("bob@EXAMPLE.com").unwrap().unwrap();
            assert_eq!((bob.id.as_str(), bob.email.as_str()), ("user_b", "bob@example.com"));
            let a = Scope::Org("org_a".into());
            let ids = |v: Vec<User>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
            assert_eq!(ids(s.list_users(&a).unwrap()), ["user_a", "user_b"], "oldest first, then by id");
            assert_eq!(ids(s.list_users(&Scope::All).unwrap()), ["user_c", "user_a", "user_b"]);
            let access = s.user_access("user_c").unwrap().unwrap();
            assert_eq!((access.role.as_str(), access.organization_id.as_str()), ("user", "org_b"));
            assert!(matches!(s.delete_user(&a, "user_c"), Err(StoreError::NotFound)), "another's");
            s.delete_user(&Scope::All, "user_c").unwrap();
            assert_eq!(s.user_access("user_c").unwrap(), None);
        }
    }
}
