//! Organizations and their call policies.

use super::db::Store;
use super::error::StoreError;
use super::sql::{params, Row};
use crate::model::{Organization, Scope};

const ORG_COLUMNS: &str = "id, name, created_at, max_concurrent_calls, max_calls_per_second, allowed_destinations";

fn org_from_row(r: &Row) -> Result<Organization, StoreError> {
    let dest: String = r.get(5)?;
    Ok(Organization {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        max_concurrent_calls: r.get::<Option<i64>>(3)?.and_then(|n| u32::try_from(n).ok()),
        max_calls_per_second: r.get(4)?,
        allowed_destinations: dest.split_whitespace().map(str::to_string).collect(),
    })
}

impl Store {
    /// Adds an organization; [`StoreError::Conflict`] if its name is taken.
    pub fn insert_org(&mut self, o: &Organization) -> Result<(), StoreError> {
        if self.conn.exists("SELECT 1 FROM organizations WHERE name = ?1", params![&o.name])? {
            return Err(StoreError::Conflict("name"));
        }
        self.conn.execute(
            &format!("INSERT INTO organizations ({ORG_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                o.id,
                o.name,
                o.created_at,
                o.max_concurrent_calls.map(i64::from),
                o.max_calls_per_second,
                o.allowed_destinations.join(" ")
            ],
        )?;
        Ok(())
    }

    /// The organizations in `scope`, oldest first.
    pub fn orgs(&self, scope: &Scope) -> Result<Vec<Organization>, StoreError> {
        self.conn.query_map(
            &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE (id = ?1 OR ?1 IS NULL) ORDER BY created_at, id"),
            params![scope.org()],
            org_from_row,
        )
    }

    /// The only organization, while there is just one.
    pub fn sole_org(&self) -> Result<Option<String>, StoreError> {
        let ids: Vec<String> = self.conn.query_map("SELECT id FROM organizations LIMIT 2", &[], |r| r.get(0))?;
        Ok(if ids.len() == 1 { ids.into_iter().next() } else { None })
    }

    /// The organization `id`, if it is in `scope`.
    pub fn org(&self, scope: &Scope, id: &str) -> Result<Option<Organization>, StoreError> {
        if scope.org().is_some_and(|o| o != id) {
            return Ok(None);
        }
        self.conn
            .query_opt(&format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1"), params![id])?
            .as_ref()
            .map(org_from_row)
            .transpose()
    }

    /// Replaces organization `o.id`'s call policy (its name stays); `NotFound` if it is
    /// not in `scope`.
    pub fn set_org_policy(&mut self, scope: &Scope, o: &Organization) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE organizations SET max_concurrent_calls = ?2, max_calls_per_second = ?3, allowed_destinations = ?4
             WHERE id = ?1 AND (id = ?5 OR ?5 IS NULL)",
            params![
                o.id,
                o.max_concurrent_calls.map(i64::from),
                o.max_calls_per_second,
                o.allowed_destinations.join(" "),
                scope.org()
            ],
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
    use crate::model::DEFAULT_ORG;

    fn org(id: &str, name: &str) -> Organization {
        Organization {
            id: id.into(),
            name: name.into(),
            created_at: 1,
            max_concurrent_calls: Some(3),
            max_calls_per_second: Some(1.5),
            allowed_destinations: vec!["+44".into(), "+1555".into()],
        }
    }

    #[test]
    fn organizations_are_scoped_and_named_once() {
        for mut s in Store::test_backends().unwrap() {
            assert_eq!(s.orgs(&Scope::All).unwrap()[0].name, "default", "the migration makes the default one");
            assert_eq!(s.sole_org().unwrap().as_deref(), Some(DEFAULT_ORG));
            s.insert_org(&org("org_a", "acme")).unwrap();
            assert_eq!(s.sole_org().unwrap(), None, "two: none is the only one");
            assert!(matches!(s.insert_org(&org("org_b", "acme")), Err(StoreError::Conflict("name"))));
            s.insert_org(&org("org_b", "globex")).unwrap();
            assert_eq!(s.orgs(&Scope::All).unwrap().len(), 3);
            let mine = Scope::Org("org_a".into());
            assert_eq!(s.orgs(&mine).unwrap(), vec![org("org_a", "acme")]);
            assert!(s.org(&mine, "org_b").unwrap().is_none(), "another's is as missing");
            assert!(s.org(&mine, DEFAULT_ORG).unwrap().is_none());
            let mut changed = org("org_b", "ignored");
            changed.allowed_destinations.clear();
            assert!(matches!(s.set_org_policy(&mine, &changed), Err(StoreError::NotFound)));
            s.set_org_policy(&Scope::All, &changed).unwrap();
            let b = s.org(&Scope::All, "org_b").unwrap().unwrap();
            assert_eq!((b.name.as_str(), b.allowed_destinations.len()), ("globex", 0));
        }
    }
}
