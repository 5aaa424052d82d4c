//! The organizations' own SIP trunks (issue 15), each in one organization, named once in
//! it; their lists as JSON arrays.

use super::db::Store;
use super::error::StoreError;
use super::sql::{params, Row};
use crate::model::{Scope, TrunkRow};

const COLUMNS: &str = "id, organization_id, name, uri, username, password, allowed_cidrs, prefixes, priority, \
    max_concurrent_calls, max_calls_per_second, codecs, srtp, asserted_identity, privacy, options_interval, created_at, register";

/// A JSON array of strings as stored (an unreadable one as empty).
fn list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn json_list(l: &[String]) -> String {
    serde_json::to_string(l).unwrap_or_else(|_| "[]".into())
}

fn from_row(r: &Row) -> Result<TrunkRow, StoreError> {
    let u32_of = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
    Ok(TrunkRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        name: r.get(2)?,
        uri: r.get(3)?,
        username: r.get(4)?,
        password: r.get(5)?,
        allowed_cidrs: list(r.get(6)?),
        prefixes: list(r.get(7)?),
        priority: u32::try_from(r.get::<i64>(8)?).unwrap_or(100),
        max_concurrent_calls: u32_of(r.get(9)?),
        max_calls_per_second: r.get(10)?,
        codecs: list(r.get(11)?),
        srtp: r.get(12)?,
        asserted_identity: r.get(13)?,
        privacy: r.get(14)?,
        options_interval: u32_of(r.get(15)?),
        created_at: r.get(16)?,
        register: r.get(17)?,
    })
}

impl Store {
    /// Adds a trunk; [`StoreError::Conflict`]`("name")` if its organization has one of that name.
    pub fn insert_trunk(&mut self, t: &TrunkRow) -> Result<(), StoreError> {
        self.check_trunk_name(t)?;
        self.conn.execute(
            &format!(
                "INSERT INTO trunks ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
            ),
            params![
                t.id,
                t.organization_id,
                t.name,
                t.uri,
                t.username,
                t.password,
                json_list(&t.allowed_cidrs),
                json_list(&t.prefixes),
                i64::from(t.priority),
                t.max_concurrent_calls.map(i64::from),
                t.max_calls_per_second,
                json_list(&t.codecs),
                t.srtp,
                t.asserted_identity,
                t.privacy,
                t.options_interval.map(i64::from),
                t.created_at,
                t.register,
            ],
        )?;
        Ok(())
    }

    /// `Conflict("name")` if another trunk of `t`'s organization has `t`'s name.
    fn check_trunk_name(&self, t: &TrunkRow) -> Result<(), StoreError> {
        let taken = self.conn.exists(
            "SELECT 1 FROM trunks WHERE organization_id = ?1 AND name = ?2 AND id <> ?3",
            params![t.organization_id, t.name, t.id],
        )?;
        if taken {
            return Err(StoreError::Conflict("name"));
        }
        Ok(())
    }

    /// The trunks in `scope`, oldest first.
    pub fn trunks(&self, scope: &Scope) -> Result<Vec<TrunkRow>, StoreError> {
        self.conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM trunks WHERE (organization_id = ?1 OR ?1 IS NULL) ORDER BY created_at, rowid"
            ),
            params![scope.org()],
            from_row,
        )
    }

    /// Trunk `id`, if it is in `scope`; `NotFound` otherwise.
    pub fn trunk(&self, scope: &Scope, id: &str) -> Result<TrunkRow, StoreError> {
        from_row(&self.conn.query_one(
            &format!("SELECT {COLUMNS} FROM trunks WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)"),
            params![id, scope.org()],
        )?)
    }

    /// Replaces trunk `t.id` (its organization and creation time stay); `NotFound` if it is
    /// not in `scope`, `Conflict("name")` if the new name is taken in its organization.
    pub fn update_trunk(&mut self, scope: &Scope, t: &TrunkRow) -> Result<(), StoreError> {
        let stored = self.trunk(scope, &t.id)?;
        self.check_trunk_name(&TrunkRow { organization_id: stored.organization_id, ..t.clone() })?;
        let n = self.conn.execute(
            "UPDATE trunks SET name = ?2, uri = ?3, username = ?4, password = ?5, allowed_cidrs = ?6, prefixes = ?7,
                    priority = ?8, max_concurrent_calls = ?9, max_calls_per_second = ?10, codecs = ?11, srtp = ?12,
                    asserted_identity = ?13, privacy = ?14, options_interval = ?15, register = ?17
             WHERE id = ?1 AND (organization_id = ?16 OR ?16 IS NULL)",
            params![
                t.id,
                t.name,
                t.uri,
                t.username,
                t.password,
                json_list(&t.allowed_cidrs),
                json_list(&t.prefixes),
                i64::from(t.priority),
                t.max_concurrent_calls.map(i64::from),
                t.max_calls_per_second,
                json_list(&t.codecs),
                t.srtp,
                t.asserted_identity,
                t.privacy,
                t.options_interval.map(i64::from),
                scope.org(),
                t.register,
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes trunk `id` if it is in `scope`; `NotFound` otherwise.
    pub fn delete_trunk(&mut self, scope: &Scope, id: &str) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "DELETE FROM trunks WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
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

    fn trunk(id: &str, name: &str, org: &str, at: i64) -> TrunkRow {
        TrunkRow {
            id: id.into(),
            organization_id: org.into(),
            name: name.into(),
            uri: "sip:carrier.example.com;transport=tls".into(),
            username: Some("acct".into()),
            password: Some("secret".into()),
            allowed_cidrs: vec!["192.0.2.0/24".into()],
            prefixes: vec!["+44".into(), "+1555".into()],
            priority: 10,
            max_concurrent_calls: Some(30),
            max_calls_per_second: Some(2.5),
            codecs: vec!["PCMA".into(), "opus".into()],
            srtp: Some("mandatory".into()),
            asserted_identity: true,
            privacy: false,
            register: false,
            options_interval: Some(30),
            created_at: at,
        }
    }

    #[test]
    fn trunks_are_kept_whole() {
        for mut s in Store::test_backends().unwrap() {
            let t = trunk("trk_1", "main", "org_a", 5);
            s.insert_trunk(&t).unwrap();
            assert_eq!(s.trunk(&Scope::All, "trk_1").unwrap(), t);
            let mut changed = TrunkRow {
                username: None,
                password: None,
                allowed_cidrs: vec![],
                max_calls_per_second: None,
                srtp: None,
                options_interval: None,
                priority: 0,
                ..t.clone()
            };
            changed.organization_id = "org_other".into();
            s.update_trunk(&Scope::Org("org_a".into()), &changed).unwrap();
            let got = s.trunk(&Scope::All, "trk_1").unwrap();
            assert_eq!(got, TrunkRow { organization_id: "org_a".into(), ..changed }, "the organization stays");
        }
    }

    #[test]
    fn trunks_are_scoped_and_named_once_per_organization() {
        for mut s in Store::test_backends().unwrap() {
            s.insert_trunk(&trunk("trk_2", "main", "org_a", 2)).unwrap();
            s.insert_trunk(&trunk("trk_1", "backup", "org_a", 2)).unwrap();
            assert!(matches!(s.insert_trunk(&trunk("trk_3", "main", "org_a", 3)), Err(StoreError::Conflict("name"))));
            s.insert_trunk(&trunk("trk_3", "main", "org_b", 1)).unwrap();
            let ids = |v: Vec<TrunkRow>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
            assert_eq!(ids(s.trunks(&Scope::All).unwrap()), ["trk_3", "trk_2", "trk_1"], "by created_at, then as made");
            let (a, b) = (Scope::Org("org_a".into()), Scope::Org("org_b".into()));
            assert_eq!(ids(s.trunks(&a).unwrap()), ["trk_2", "trk_1"]);
            assert_eq!(ids(s.trunks(&b).unwrap()), ["trk_3"], "another's are absent from the list");
            assert!(matches!(s.trunk(&b, "trk_1"), Err(StoreError::NotFound)));
            let renamed = TrunkRow { name: "hijacked".into(), ..trunk("trk_1", "backup", "org_a", 2) };
            assert!(matches!(s.update_trunk(&b, &renamed), Err(StoreError::NotFound)));
            assert!(matches!(s.delete_trunk(&b, "trk_1"), Err(StoreError::NotFound)));
            assert_eq!(s.trunk(&a, "trk_1").unwrap().name, "backup", "untouched");
            let clash = TrunkRow { name: "main".into(), ..trunk("trk_1", "backup", "org_a", 2) };
            assert!(matches!(s.update_trunk(&a, &clash), Err(StoreError::Conflict("name"))));
            s.update_trunk(&a, &trunk("trk_1", "backup", "org_a", 2)).unwrap();
            s.delete_trunk(&a, "trk_1").unwrap();
            assert!(matches!(s.trunk(&Scope::All, "trk_1"), Err(StoreError::NotFound)));
            assert!(matches!(s.delete_trunk(&a, "trk_1"), Err(StoreError::NotFound)));
        }
    }
}
