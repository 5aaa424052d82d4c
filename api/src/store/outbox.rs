//! Webhooks and their outbox: every event is queued, for each webhook that takes it, in
//! the transaction of the change that caused it; the sender (`crate::webhooks`) delivers
//! from here.

use super::db::Store;
use super::error::StoreError;
use super::idempotency;
use super::sql::{params, Db};
use crate::model::{Attempt, Delivery, Scope, Webhook};
use crate::wire::rfc3339;

/// Queues `event` of organization `org` (its body `{id, event, created_at, data}` fixed
/// now) for every active webhook of that organization that takes it, inside the
/// transaction that made it happen. Returns how many.
pub(super) fn enqueue(
    conn: &Db,
    org: &str,
    event: &str,
    data: serde_json::Value,
    at: i64,
) -> Result<usize, StoreError> {
    let hooks: Vec<(String, String)> = conn.query_map(
        "SELECT id, events FROM webhooks WHERE organization_id = ?1 AND active = 1",
        params![org],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
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
        conn.execute(
            "INSERT INTO webhook_outbox (webhook_id, event, payload, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![hook, event, body.to_string(), at],
        )?;
        n += 1;
    }
    Ok(n)
}

/// One kept delivery attempt, as [`Store::list_attempts`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRow {
    /// Its row.
    pub id: i64,
    /// The event name.
    pub event: String,
    /// The call the event is about, if any.
    pub call_id: Option<String>,
    /// 1 for the first try.
    pub attempt: i64,
    /// When it ended, ms.
    pub at: i64,
    /// `delivered`, `failed` (to be retried) or `given_up`.
    pub outcome: String,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i64>,
    /// The start of its answer.
    pub response: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// How long it took, ms.
    pub duration_ms: i64,
    /// When the next try is due (`failed` only), ms.
    pub next_retry_at: Option<i64>,
}

/// Keeps one attempt at outbox row `row` (its webhook, organization, event and call read
/// from the row).
fn attempt_in(
    conn: &Db,
    row: i64,
    at: i64,
    a: &Attempt,
    outcome: &str,
    retry_at: Option<i64>,
) -> Result<(), StoreError> {
    let response = a.response.as_deref().map(|r| {
        let mut end = r.len().min(Attempt::RESPONSE_MAX);
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        &r[..end]
    });
    // The call the event is about: `data.call_id`, or a call event's `data.id`.
    let call_id = if conn.is_postgres() {
        "COALESCE(o.payload::jsonb #>> '{data,call_id}',
             CASE WHEN o.event LIKE 'call.%' THEN o.payload::jsonb #>> '{data,id}' END)"
    } else {
        "COALESCE(json_extract(o.payload, '$.data.call_id'),
             CASE WHEN o.event LIKE 'call.%' THEN json_extract(o.payload, '$.data.id') END)"
    };
    conn.execute(
        &format!(
            "INSERT INTO webhook_attempts (outbox_id, webhook_id, organization_id, event, call_id, attempt, at,
                 duration_ms, status_code, response, error, outcome, next_retry_at)
             SELECT o.id, o.webhook_id, w.organization_id, o.event, {call_id}, o.attempts, ?2, ?3, ?4, ?5, ?6, ?7, ?8
             FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id WHERE o.id = ?1"
        ),
        params![row, at, a.duration_ms, a.status.map(i64::from), response, a.error, outcome, retry_at],
    )?;
    Ok(())
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
        self.conn.query_map(
            "SELECT id, url, secret, events, created_at, organization_id FROM webhooks
             WHERE active = 1 AND (organization_id = ?1 OR ?1 IS NULL) ORDER BY created_at DESC, id DESC",
            params![scope.org()],
            |r| {
                let events: String = r.get(3)?;
                Ok(Webhook {
                    id: r.get(0)?,
                    url: r.get(1)?,
                    secret: r.get(2)?,
                    events: events.split_whitespace().map(str::to_string).collect(),
                    created_at: r.get(4)?,
                    organization_id: r.get(5)?,
                })
            },
        )
    }

    /// Removes a webhook in `scope`; what it had not been sent yet is dropped.
    pub fn delete_webhook(&mut self, scope: &Scope, id: &str) -> Result<(), StoreError> {
        self.conn.transaction(|tx| {
            let n = tx.execute(
                "UPDATE webhooks SET active = 0 WHERE id = ?1 AND active = 1 AND (organization_id = ?2 OR ?2 IS NULL)",
                params![id, scope.org()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "UPDATE webhook_outbox SET given_up = 1, last_error = 'webhook deleted'
                 WHERE webhook_id = ?1 AND delivered_at IS NULL AND given_up = 0",
                params![id],
            )?;
            Ok(())
        })
    }

    /// The oldest undelivered event of each webhook, if it is due by `now`, and when the
    /// next one not yet due will be (events of one webhook go out one at a time, in order).
    /// Each is claimed for `lease_ms`: another node's sender (on a shared store) skips it
    /// until it is delivered, failed, or the lease runs out (its node died mid-delivery, and
    /// the event goes out again from here).
    pub fn due_deliveries(&self, now: i64) -> Result<(Vec<Delivery>, Option<i64>), StoreError> {
        self.claim_deliveries(now, 30_000)
    }

    /// [`Store::due_deliveries`] with leases of `lease_ms`.
    pub fn claim_deliveries(&self, now: i64, lease_ms: i64) -> Result<(Vec<Delivery>, Option<i64>), StoreError> {
        let rows = self.conn.query_map(
            "SELECT o.id, o.webhook_id, w.url, w.secret, o.event, o.payload, o.attempts,
                    CASE WHEN o.lease_until >= o.next_attempt_at THEN o.lease_until + 1 ELSE o.next_attempt_at END
             FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.id IN (SELECT MIN(id) FROM webhook_outbox
                            WHERE delivered_at IS NULL AND given_up = 0 GROUP BY webhook_id)",
            &[],
            |r| {
                Ok((
                    Delivery {
                        row: r.get(0)?,
                        webhook_id: r.get(1)?,
                        url: r.get(2)?,
                        secret: r.get(3)?,
                        event: r.get(4)?,
                        payload: r.get(5)?,
                        attempts: r.get::<i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                    },
                    r.get::<i64>(7)?,
                ))
            },
        )?;
        let (mut due, mut next) = (Vec::new(), None::<i64>);
        let me = self.node.as_deref().unwrap_or("local");
        for (d, at) in rows {
            if at <= now {
                // A conditional update: of several senders, one claims it.
                let claimed = self.conn.execute(
                    "UPDATE webhook_outbox SET leased_by = ?2, lease_until = ?3
                     WHERE id = ?1 AND delivered_at IS NULL AND given_up = 0
                       AND (lease_until IS NULL OR lease_until < ?4)",
                    params![d.row, me, now.saturating_add(lease_ms), now],
                )?;
                if claimed == 1 {
                    due.push(d);
                } else {
                    next = Some(next.map_or(now + 1000, |n| n.min(now + 1000)));
                }
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok((due, next))
    }

    /// An event reached its webhook: `attempt` is what it answered.
    pub fn delivered(&mut self, row: i64, at: i64, attempt: &Attempt) -> Result<(), StoreError> {
        self.conn.transaction(|tx| {
            tx.execute(
                "UPDATE webhook_outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL,
                    leased_by = NULL, lease_until = NULL WHERE id = ?1",
                params![row, at],
            )?;
            attempt_in(tx, row, at, attempt, "delivered", None)
        })
    }

    /// A delivery failed (`attempt.error` says why): try again at `retry_at`, or never
    /// (`None`).
    pub fn delivery_failed(
        &mut self,
        row: i64,
        at: i64,
        attempt: &Attempt,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let error = attempt.error.as_deref().unwrap_or("failed");
        let outcome = if retry_at.is_some() { "failed" } else { "given_up" };
        self.conn.transaction(|tx| {
            tx.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?2,
                    next_attempt_at = COALESCE(?3, next_attempt_at), given_up = ?4,
                    leased_by = NULL, lease_until = NULL WHERE id = ?1",
                params![row, error, retry_at, retry_at.is_none()],
            )?;
            attempt_in(tx, row, at, attempt, outcome, retry_at)
        })
    }

    /// Webhook `id`'s delivery attempts in `scope`, newest first, at most `limit`;
    /// [`StoreError::NotFound`] when the webhook is not in `scope`.
    pub fn list_attempts(&self, scope: &Scope, id: &str, limit: u32) -> Result<Vec<AttemptRow>, StoreError> {
        let known = self.conn.exists(
            "SELECT 1 FROM webhooks WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
            params![id, scope.org()],
        )?;
        if !known {
            return Err(StoreError::NotFound);
        }
        self.conn.query_map(
            "SELECT id, event, call_id, attempt, at, outcome, status_code, response, error, duration_ms, next_retry_at
             FROM webhook_attempts WHERE webhook_id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)
             ORDER BY id DESC LIMIT ?3",
            params![id, scope.org(), limit],
            |r| {
                Ok(AttemptRow {
                    id: r.get(0)?,
                    event: r.get(1)?,
                    call_id: r.get(2)?,
                    attempt: r.get(3)?,
                    at: r.get(4)?,
                    outcome: r.get(5)?,
                    status_code: r.get(6)?,
                    response: r.get(7)?,
                    error: r.get(8)?,
                    duration_ms: r.get(9)?,
                    next_retry_at: r.get(10)?,
                })
            },
        )
    }

    /// Forgets delivered (or given-up) webhook events older than `events_before` and
    /// idempotency keys older than `keys_before` (ms). Returns the rows removed.
    pub fn prune(&mut self, events_before: i64, keys_before: i64) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL OR given_up = 1) AND created_at < ?1",
            params![events_before],
        )?;
        let a = self.conn.execute("DELETE FROM webhook_attempts WHERE at < ?1", params![events_before])?;
        let m = idempotency::forget(&self.conn, keys_before)?;
        Ok(n + a + m)
    }

    /// Events not delivered yet (and not given up).
    pub fn outbox_pending(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_one("SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND given_up = 0", &[])?
            .get(0)?;
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
        for mut s in Store::test_backends().unwrap() {
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
            let failed = Attempt {
                status: Some(500),
                response: Some("oops".into()),
                error: Some("HTTP 500".into()),
                duration_ms: 3,
            };
            s.delivery_failed(all, 10_000, &failed, Some(20_000)).unwrap();
            // wh_done's event is being delivered (leased for 30 s): no sender takes it again
            // meanwhile, unless that lease runs out (its node died mid-delivery).
            let (due, next) = s.due_deliveries(10_000).unwrap();
            assert!(due.is_empty(), "{due:?}");
            assert_eq!(next, Some(20_000));
            let (due, _) = s.claim_deliveries(40_001, 1_000).unwrap();
            assert_eq!(due.iter().map(|d| d.webhook_id.as_str()).collect::<Vec<_>>(), ["wh_all", "wh_done"]);
            s.delivery_failed(all, 40_001, &failed, Some(20_000)).unwrap();
            let (due, _) = s.due_deliveries(20_000).unwrap();
            let retry = due.iter().find(|d| d.webhook_id == "wh_all").unwrap();
            assert_eq!((retry.row, retry.attempts, retry.event.as_str()), (all, 2, "call.initiated"));
            s.delivered(all, 20_001, &Attempt { status: Some(204), duration_ms: 2, ..Attempt::default() }).unwrap();
            // Both attempts are kept, newest first, for the webhook's organization only.
            let mine = Scope::Org(crate::model::DEFAULT_ORG.into());
            let tries = s.list_attempts(&mine, "wh_all", 10).unwrap();
            let seen: Vec<_> =
                tries.iter().map(|t| (t.attempt, t.outcome.as_str(), t.status_code, t.next_retry_at)).collect();
            assert_eq!(
                seen,
                [
                    (3, "delivered", Some(204), None),
                    (2, "failed", Some(500), Some(20_000)),
                    (1, "failed", Some(500), Some(20_000))
                ]
            );
            assert_eq!((tries[2].call_id.as_deref(), tries[2].response.as_deref()), (Some("call_1"), Some("oops")));
            assert!(matches!(s.list_attempts(&Scope::Org("org_b".into()), "wh_all", 10), Err(StoreError::NotFound)));
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
            assert_eq!(s.prune(i64::MAX, 0).unwrap(), 5, "the delivered one, the dropped one, the three attempts");
            assert_eq!(s.outbox_pending().unwrap(), 2);
        }
    }
}
