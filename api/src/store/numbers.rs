//! Phone numbers (and number patterns) and what their inbound calls do (issue 15): each in
//! one organization, and unique across all of them (a call to a number is one
//! organization's). Actions as JSON ([`InboundAction`] through serde).

use super::db::Store;
use super::error::StoreError;
use super::sql::{params, Row};
use crate::model::{NumberRow, Scope};
use crate::routing::InboundAction;

const COLUMNS: &str = "id, organization_id, number, action, fallback, webhook_secret, webhook_timeout_ms, record, \
                       max_duration, created_at, pre_answer";

fn action(r: &Row, i: usize) -> Result<Option<InboundAction>, StoreError> {
    let Some(text) = r.get::<Option<String>>(i)? else { return Ok(None) };
    serde_json::from_str(&text).map(Some).map_err(|e| StoreError::Column(format!("column {i}: {e}")))
}

fn from_row(r: &Row) -> Result<NumberRow, StoreError> {
    let u32_of = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
    Ok(NumberRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        number: r.get(2)?,
        action: action(r, 3)?.ok_or_else(|| StoreError::Column("a number without an action".into()))?,
        fallback: action(r, 4)?,
        webhook_secret: r.get(5)?,
        webhook_timeout_ms: u32_of(r.get(6)?).unwrap_or(3000),
        record: r.get(7)?,
        max_duration: u32_of(r.get(8)?),
        created_at: r.get(9)?,
        pre_answer: r.get(10)?,
    })
}

fn json(a: &InboundAction) -> String {
    a.to_json().to_string()
}

impl Store {
    /// Adds a number; [`StoreError::Conflict`]`("number")` if any organization has it.
    pub fn insert_number(&mut self, n: &NumberRow) -> Result<(), StoreError> {
        self.check_number_free(n)?;
        self.conn.execute(
            &format!("INSERT INTO numbers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                n.id,
                n.organization_id,
                n.number,
                json(&n.action),
                n.fallback.as_ref().map(json),
                n.webhook_secret,
                i64::from(n.webhook_timeout_ms),
                n.record,
                n.max_duration.map(i64::from),
                n.created_at,
                n.pre_answer,
            ],
        )?;
        Ok(())
    }

    /// `Conflict("number")` if a number other than `n.id` is `n.number` (in any organization).
    fn check_number_free(&self, n: &NumberRow) -> Result<(), StoreError> {
        let taken =
            self.conn.exists("SELECT 1 FROM numbers WHERE number = ?1 AND id <> ?2", params![n.number, n.id])?;
        if taken {
            return Err(StoreError::Conflict("number"));
        }
        Ok(())
    }

    /// The numbers in `scope`, oldest first.
    pub fn numbers(&self, scope: &Scope) -> Result<Vec<NumberRow>, StoreError> {
        self.conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM numbers WHERE (organization_id = ?1 OR ?1 IS NULL) ORDER BY created_at, rowid"
            ),
            params![scope.org()],
            from_row,
        )
    }

    /// Number `id`, if it is in `scope`; `NotFound` otherwise.
    pub fn number(&self, scope: &Scope, id: &str) -> Result<NumberRow, StoreError> {
        from_row(&self.conn.query_one(
            &format!("SELECT {COLUMNS} FROM numbers WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)"),
            params![id, scope.org()],
        )?)
    }

    /// Replaces number `n.id` (its organization and creation time stay); `NotFound` if it
    /// is not in `scope`, `Conflict("number")` if the new number is taken.
    pub fn update_number(&mut self, scope: &Scope, n: &NumberRow) -> Result<(), StoreError> {
        self.number(scope, &n.id)?;
        self.check_number_free(n)?;
        let changed = self.conn.execute(
            "UPDATE numbers SET number = ?2, action = ?3, fallback = ?4, webhook_secret = ?5,
                    webhook_timeout_ms = ?6, record = ?7, max_duration = ?8, pre_answer = ?10
             WHERE id = ?1 AND (organization_id = ?9 OR ?9 IS NULL)",
            params![
                n.id,
                n.number,
                json(&n.action),
                n.fallback.as_ref().map(json),
                n.webhook_secret,
                i64::from(n.webhook_timeout_ms),
                n.record,
                n.max_duration.map(i64::from),
                scope.org(),
                n.pre_answer,
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes number `id` if it is in `scope`; `NotFound` otherwise.
    pub fn delete_number(&mut self, scope: &Scope, id: &str) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "DELETE FROM numbers WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
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

    fn number(id: &str, n: &str, org: &str, at: i64) -> NumberRow {
        NumberRow {
            id: id.into(),
            organization_id: org.into(),
            number: n.into(),
            action: InboundAction::Webhook { url: "https://example.com/call".into() },
            fallback: Some(InboundAction::Reject { status: 486 }),
            webhook_secret: Some("whsec_0123".into()),
            webhook_timeout_ms: 2500,
            record: true,
            max_duration: Some(600),
            created_at: at,
            pre_answer: Some("welcome.wav".into()),
        }
    }

    #[test]
    fn numbers_are_kept_whole() {
        for mut s in Store::test_backends().unwrap() {
            let n = number("num_1", "+15550100", "org_a", 1);
            s.insert_number(&n).unwrap();
            assert_eq!(s.number(&Scope::All, "num_1").unwrap(), n);
            let changed = NumberRow {
                number: "+1555*".into(),
                action: InboundAction::Agent { url: "wss://a.example/x".into(), format: Some("l16-16k".into()) },
                fallback: None,
                webhook_secret: None,
                record: false,
                max_duration: None,
                organization_id: "org_b".into(),
                ..n.clone()
            };
            s.update_number(&Scope::Org("org_a".into()), &changed).unwrap();
            let got = s.number(&Scope::All, "num_1").unwrap();
            assert_eq!(got, NumberRow { organization_id: "org_a".into(), ..changed }, "the organization stays");
        }
    }

    #[test]
    fn numbers_are_scoped_and_unique_across_organizations() {
        for mut s in Store::test_backends().unwrap() {
            s.insert_number(&number("num_1", "+15550100", "org_a", 1)).unwrap();
            s.insert_number(&number("num_2", "+44*", "org_a", 2)).unwrap();
            let clash = number("num_3", "+15550100", "org_b", 3);
            assert!(matches!(s.insert_number(&clash), Err(StoreError::Conflict("number"))), "taken by another");
            s.insert_number(&number("num_3", "*", "org_b", 3)).unwrap();
            let (a, b) = (Scope::Org("org_a".into()), Scope::Org("org_b".into()));
            let ids = |v: Vec<NumberRow>| v.into_iter().map(|n| n.id).collect::<Vec<_>>();
            assert_eq!(ids(s.numbers(&Scope::All).unwrap()), ["num_1", "num_2", "num_3"]);
            assert_eq!(ids(s.numbers(&a).unwrap()), ["num_1", "num_2"]);
            assert_eq!(ids(s.numbers(&b).unwrap()), ["num_3"], "another's are absent from the list");
            assert!(matches!(s.number(&b, "num_1"), Err(StoreError::NotFound)));
            assert!(matches!(s.update_number(&b, &number("num_1", "+1999", "org_b", 1)), Err(StoreError::NotFound)));
            assert!(matches!(s.delete_number(&b, "num_1"), Err(StoreError::NotFound)));
            assert_eq!(s.number(&a, "num_1").unwrap().number, "+15550100", "untouched");
            let onto_b = number("num_1", "*", "org_a", 1);
            assert!(matches!(s.update_number(&a, &onto_b), Err(StoreError::Conflict("number"))));
            s.update_number(&a, &number("num_1", "+15550100", "org_a", 1)).unwrap();
            s.delete_number(&a, "num_1").unwrap();
            assert!(matches!(s.number(&Scope::All, "num_1"), Err(StoreError::NotFound)));
        }
    }
}
