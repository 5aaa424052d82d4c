//! Webhooks and their outbox: every event is queued, for each webhook that takes it, in
//! the transaction of the change that caused it; the sender (`crate::webhooks`) delivers
//! from here.

use super::db::Store;
use super::error::StoreError;
use super::idempotency;
use crate::model::{Delivery, Scope, Webhook};
use crate::wire::rfc3339;
use rusqlite::{params, Connection};

/// Queues `event` of organization `org` (its body `{id, event, created_at, data}` fixed
/// now) for every active webhook of that organization that takes it, inside the
/// transaction that made it happen. Returns how many.
pub(super) fn enqueue(
    conn: &Connection,
    org: &str,
    event: &str,
    data: serde_json::Value,
    at: i64,
) -> Result<usize, StoreError> {
    let hooks: Vec<(String, String)> = {
        let mut st =
            conn.prepare_cached("SELECT id, events FROM webhooks WHERE organization_id = ?1 AND active = 1")?;
        let rows = st.query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for (hook, events) in hooks {
        if !events.is_empty() && !events.split_whitespace().any(|e| e == event) {
            continue;
        }
        let body = serde_json::json!({
            "id": format!("evt_{:016x}", rand::random::<u64>()),
            "event": event,
            "created_at": rfc3339(at),
            "data": data,
        });
        conn.prepare_cached(
            "INSERT INTO webhook_outbox (webhook_id, event, payload, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![hook, event, body.to_string(), at])?;
        n += 1;
    }
    Ok(n)
}

impl Store {
    /// Adds a webhook.
    pub fn insert_webhook(&mut self, w: &Webhook) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO webhooks (id, url, secret, events, created_at, organization_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![w.id, w.url, w.secret, w.events.join(" "), w.created_at, w.organization_id],
        )?;
        Ok(())
    }

    /// The active webhooks in `scope`, newest first.
    pub fn list_webhooks(&self, scope: &Scope) -> Result<Vec<Webhook>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, url, secret, events, created_at, organization_id FROM webhooks
             WHERE active = 1 AND (?1 IS NULL OR organization_id = ?1) ORDER BY created_at DESC, id DESC",
        )?;
        let rows = st.query_map([scope.org()], |r| {
            let events: String = r.get(3)?;
            Ok(Webhook {
                id: r.get(0)?,
                url: r.get(1)?,
                secret: r.get(2)?,
                events: events.split_whitespace().map(str::to_string).collect(),
                created_at: r.get(4)?,
                organization_id: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes a webhook in `scope`; what it had not been sent yet is dropped.
    pub fn delete_webhook(&mut self, scope: &Scope, id: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE webhooks SET active = 0 WHERE id = ?1 AND active = 1 AND (?2 IS NULL OR organization_id = ?2)",
            params![id, scope.org()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "UPDATE webhook_outbox SET given_up = 1, last_error = 'webhook deleted'
             WHERE webhook_id = ?1 AND delivered_at IS NULL AND given_up = 0",
            [id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The oldest undelivered event of each webhook, if it is due by `now`, and when the
    /// next one not yet due will be (events of one webhook go out one at a time, in order).
    pub fn due_deliveries(&self, now: i64) -> Result<(Vec<Delivery>, Option<i64>), StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT o.id, o.webhook_id, w.url, w.secret, o.event, o.payload, o.attempts, o.next_attempt_at
             FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.id IN (SELECT MIN(id) FROM webhook_outbox
                            WHERE delivered_at IS NULL AND given_up = 0 GROUP BY webhook_id)",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                Delivery {
                    row: r.get(0)?,
                    webhook_id: r.get(1)?,
                    url: r.get(2)?,
                    secret: r.get(3)?,
                    event: r.get(4)?,
                    payload: r.get(5)?,
                    attempts: r.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                },
                r.get::<_, i64>(7)?,
            ))
        })?;
        let (mut due, mut next) = (Vec::new(), None::<i64>);
        for row in rows {
            let (d, at) = row?;
            if at <= now {
                due.push(d);
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok((due, next))
    }

    /// An event reached its webhook.
    pub fn delivered(&mut self, row: i64, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE webhook_outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![row, at],
        )?;
        Ok(())
    }

    /// A delivery failed: try again at `retry_at`, or never (`None`).
    pub fn delivery_failed(&mut self, row: i64, error: &str, retry_at: Option<i64>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?2,
                next_attempt_at = COALESCE(?3, next_attempt_at), given_up = ?4 WHERE id = ?1",
            params![row, error, retry_at, retry_at.is_none()],
        )?;
        Ok(())
    }

    /// Forgets delivered (or given-up) webhook events older than `events_before` and
    /// idempotency keys older than `keys_before` (ms). Returns the rows removed.
    pub fn prune(&mut self, events_before: i64, keys_before: i64) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL OR given_up = 1) AND created_at < ?1",
            [events_before],
        )?;
        let m = idempotency::forget(&self.conn, keys_before)?;
        Ok(n + m)
    }

    /// Events not delivered yet (and not given up).
    pub fn outbox_pending(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND given_up = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallStatus;
    use crate::store::calls::tests::new_call;

    #[test]
    fn the_outbox_queues_per_subscription_orders_retries_and_prunes() {
        let mut s = Store::in_memory().unwrap();
        let hook = |id: &str, events: &[&str]| Webhook {
            id: id.into(),
            url: format!("http://127.0.0.1:9/{id}"),
            secret: "s".repeat(16),
            events: events.iter().map(|e| e.to_string()).collect(),
            created_at: 0,
            organization_id: crate::model::DEFAULT_ORG.into(),
        };
        s.insert_webhook(&hook("wh_all", &[])).unwrap();
        s.insert_webhook(&hook("wh_done", &["call.completed"])).unwrap();
        // Another organization's webhook hears nothing of these calls.
        s.insert_webhook(&Webhook { organization_id: "org_b".into(), ..hook("wh_other", &[]) }).unwrap();
        s.insert_call(&new_call("call_1", "c", 1_000)).unwrap();
        s.set_status("call_1", CallStatus::InProgress, Some(200), None, 2_000).unwrap();
        s.set_status("call_1", CallStatus::Completed, None, None, 3_000).unwrap();
        assert_eq!(s.outbox_pending().unwrap(), 4, "3 for wh_all, 1 for wh_done");
        // One at a time per webhook, oldest first.
        let (due, next) = s.due_deliveries(10_000).unwrap();
        let mut firsts: Vec<(&str, &str)> = due.iter().map(|d| (d.webhook_id.as_str(), d.event.as_str())).collect();
        firsts.sort();
        assert_eq!(firsts, [("wh_all", "call.initiated"), ("wh_done", "call.completed")]);
        assert_eq!(next, None);
        let body: serde_json::Value = serde_json::from_str(&due[0].payload).unwrap();
        assert_eq!(body["data"]["id"], "call_1");
        // A failure holds the webhook's later events back until the retry is due.
        let all = due.iter().find(|d| d.webhook_id == "wh_all").unwrap().row;
        s.delivery_failed(all, "HTTP 500", Some(20_000)).unwrap();
        let (due, next) = s.due_deliveries(10_000).unwrap();
        assert_eq!(due.iter().map(|d| d.webhook_id.as_str()).collect::<Vec<_>>(), ["wh_done"]);
        assert_eq!(next, Some(20_000));
        let (due, _) = s.due_deliveries(20_000).unwrap();
        let retry = due.iter().find(|d| d.webhook_id == "wh_all").unwrap();
        assert_eq!((retry.row, retry.attempts, retry.event.as_str()), (all, 1, "call.initiated"));
        s.delivered(all, 20_001).unwrap();
        let (due, _) = s.due_deliveries(20_002).unwrap();
        assert!(due.iter().any(|d| d.event == "call.answered"));
        // Given up: skipped; deleting a webhook drops what it had pending.
        let other = Scope::Org("org_b".into());
        assert!(matches!(s.delete_webhook(&other, "wh_done"), Err(StoreError::NotFound)), "not org_b's");
        assert_eq!(s.list_webhooks(&other).unwrap().len(), 1);
        s.delete_webhook(&Scope::Org(crate::model::DEFAULT_ORG.into()), "wh_done").unwrap();
        assert_eq!(s.outbox_pending().unwrap(), 2);
        assert!(matches!(s.delete_webhook(&Scope::All, "wh_done"), Err(StoreError::NotFound)));
        // Pruning keeps what is pending.
        assert_eq!(s.prune(i64::MAX, 0).unwrap(), 2, "the delivered one and the dropped one");
        assert_eq!(s.outbox_pending().unwrap(), 2);
    }
}
