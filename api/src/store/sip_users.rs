//! SIP users (softphones' accounts), each in one organization; their passwords only as HA1.

use super::db::Store;
use super::error::StoreError;
use super::sql::{params, Row};
use crate::model::{Scope, SipUserRow};

const COLUMNS: &str = "id, username, ha1_md5, ha1_sha256, realm, created_at, organization_id";

fn from_row(r: &Row) -> Result<SipUserRow, StoreError> {
    Ok(SipUserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        ha1_md5: r.get(2)?,
        ha1_sha256: r.get(3)?,
        realm: r.get(4)?,
        created_at: r.get(5)?,
        organization_id: r.get(6)?,
    })
}

impl Store {
    /// Adds a SIP user; [`StoreError::Conflict`] if its username is taken (in any
    /// organization: it is the digest username).
    pub fn insert_sip_user(&mut self, u: &SipUserRow) -> Result<(), StoreError> {
        if self.conn.exists("SELECT 1 FROM sip_users WHERE username = ?1", params![&u.username])? {
            return Err(StoreError::Conflict("username"));
        }
        self.conn.execute(
            &format!("INSERT INTO sip_users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![u.id, u.username, u.ha1_md5, u.ha1_sha256, u.realm, u.created_at, u.organization_id],
        )?;
        Ok(())
    }

    /// The SIP users in `scope`, oldest first.
    pub fn sip_users(&self, scope: &Scope) -> Result<Vec<SipUserRow>, StoreError> {
        self.conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM sip_users WHERE (organization_id = ?1 OR ?1 IS NULL) ORDER BY created_at, rowid"
            ),
            params![scope.org()],
            from_row,
        )
    }

    /// Deletes SIP user `id` if it is in `scope`; `NotFound` otherwise.
    pub fn delete_sip_user(&mut self, scope: &Scope, id: &str) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "DELETE FROM sip_users WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
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

    fn user(id: &str, name: &str, org: &str) -> SipUserRow {
        SipUserRow {
            id: id.into(),
            username: name.into(),
            ha1_md5: "m".into(),
            ha1_sha256: "s".into(),
            realm: "dialtone".into(),
            created_at: 1,
            organization_id: org.into(),
        }
    }

    #[test]
    fn sip_users_are_scoped_and_named_once() {
        for mut s in Store::test_backends().unwrap() {
            s.insert_sip_user(&user("sipu_1", "alice", "org_a")).unwrap();
            assert!(matches!(
                s.insert_sip_user(&user("sipu_2", "alice", "org_b")),
                Err(StoreError::Conflict("username"))
            ));
            s.insert_sip_user(&user("sipu_2", "bob", "org_b")).unwrap();
            assert_eq!(s.sip_users(&Scope::All).unwrap().len(), 2);
            let b = Scope::Org("org_b".into());
            assert_eq!(s.sip_users(&b).unwrap()[0].username, "bob");
            assert!(matches!(s.delete_sip_user(&b, "sipu_1"), Err(StoreError::NotFound)), "another's");
            s.delete_sip_user(&Scope::All, "sipu_1").unwrap();
        }
    }
}
