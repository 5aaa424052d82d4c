//! Calls, their events and their recordings: one row per call, an event row for every
//! change, in the transaction that queues the change's webhooks (its organization's).
//! What the API reads takes a [`Scope`]; the engine's changes name the call by the id it
//! was given and need none.

use super::db::Store;
use super::error::StoreError;
use super::idempotency;
use super::outbox::enqueue;
use super::sql::{params, Db, Row, Value};
use crate::model::{Call, CallEvent, CallFilter, CallStatus, InboundCall, NewCall, RecordingState, Scope};
use crate::wire::call_json;

/// One call, read through `conn` (the store's connection or a transaction on it).
pub(super) fn call_in(conn: &Db, id: &str) -> Result<Call, StoreError> {
    call_from_row(&conn.query_one(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1"), params![id])?)
}

/// The organization call `id` belongs to.
fn org_of(conn: &Db, id: &str) -> Result<String, StoreError> {
    conn.query_one("SELECT organization_id FROM calls WHERE id = ?1", params![id])?.get(0)
}

/// [`Store::set_status`] inside `conn`'s transaction: the call and the webhooks queued.
pub(super) fn status_in(
    conn: &Db,
    id: &str,
    to: CallStatus,
    sip_status: Option<u16>,
    reason: Option<&str>,
    at: i64,
) -> Result<(Call, usize), StoreError> {
    // On PostgreSQL, where other nodes may write too, the row stays locked until the change
    // commits; SQLite has one writer at a time anyway.
    let sql = if conn.is_postgres() {
        "SELECT status FROM calls WHERE id = ?1 FOR UPDATE"
    } else {
        "SELECT status FROM calls WHERE id = ?1"
    };
    let from: String = conn.query_one(sql, params![id])?.get(0)?;
    let from = status_of(from)?;
    if !from.can_become(to) {
        return Err(StoreError::BadTransition { from, to });
    }
    conn.execute(
        "UPDATE calls SET status = ?2,
            sip_status = COALESCE(?3, sip_status),
            reason = COALESCE(?4, reason),
            answered_at = CASE WHEN ?2 = 'in-progress' THEN ?5 ELSE answered_at END,
            ended_at = CASE WHEN ?6 <> 0 THEN ?5 ELSE ended_at END
         WHERE id = ?1",
        params![id, to.as_str(), sip_status.map(i64::from), reason, at, to.is_final()],
    )?;
    conn.execute(
        "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', ?3)",
        params![id, at, to.as_str()],
    )?;
    let call = call_in(conn, id)?;
    let n = enqueue(conn, &call.organization_id, to.event(), call_json(&call), at)?;
    Ok((call, n))
}

/// [`Op::Inbound`] inside a transaction; the webhooks queued.
pub(super) fn inbound_in(conn: &Db, c: &InboundCall, node: Option<&str>) -> Result<usize, StoreError> {
    match &c.referred_by {
        None => conn.execute(
            "INSERT INTO calls (id, contact_id, phone_number, from_number, status, record, created_at, direction,
                                    organization_id, sip_headers, asserted_identity, number_id)
                 VALUES (?1, ?2, ?2, ?3, 'initiating', 0, ?4, 'inbound', ?5, ?6, ?7, ?8)",
            params![
                c.id,
                c.caller,
                c.called,
                c.at,
                c.organization_id,
                (!c.sip_headers.is_empty()).then(|| serde_json::to_string(&c.sip_headers).unwrap_or_default()),
                c.asserted_identity,
                c.number_id
            ],
        )?,
        // A REFER's call goes out, to the target, for the referring call's contact.
        Some(by) => conn.execute(
            "INSERT INTO calls (id, contact_id, phone_number, from_number, status, record, created_at, direction,
                                    organization_id, referred_by)
                 VALUES (?1, COALESCE((SELECT contact_id FROM calls WHERE id = ?6), ?2), COALESCE(?3, ''), NULL,
                         'initiating', 0, ?4, 'outbound', ?5, ?6)",
            params![c.id, c.caller, c.called, c.at, c.organization_id, by],
        )?,
    };
    conn.execute("UPDATE calls SET node_id = ?2 WHERE id = ?1", params![c.id, node])?;
    conn.execute(
        "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', 'initiating')",
        params![c.id, c.at],
    )?;
    let call = call_in(conn, &c.id)?;
    enqueue(conn, &c.organization_id, "call.initiated", call_json(&call), c.at)
}

/// [`Store::dtmf_received`] inside a transaction; the webhooks queued.
pub(super) fn dtmf_in(conn: &Db, id: &str, digit: char, at: i64) -> Result<usize, StoreError> {
    let org = org_of(conn, id)?;
    conn.execute(
        "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'dtmf', ?3)",
        params![id, at, digit.to_string()],
    )?;
    enqueue(conn, &org, "dtmf.received", serde_json::json!({"call_id": id, "digit": digit.to_string()}), at)
}

/// [`Op::ActionFailed`] inside a transaction; the webhooks queued.
pub(super) fn action_failed_in(conn: &Db, id: &str, action: &str, detail: &str, at: i64) -> Result<usize, StoreError> {
    let what = format!("{action}: {detail}");
    let org = org_of(conn, id)?;
    conn.execute(
        "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'action_failed', ?3)",
        params![id, at, what],
    )?;
    let body = serde_json::json!({"call_id": id, "action": action, "detail": detail});
    enqueue(conn, &org, "call.action_failed", body, at)
}

/// Call `id`'s turn-taking figures (replacing what was kept before).
pub(super) fn turns_in(conn: &Db, id: &str, turns: &serde_json::Value) -> Result<usize, StoreError> {
    conn.execute("UPDATE calls SET turns = ?2 WHERE id = ?1", params![id, turns.to_string()])?;
    Ok(0)
}

/// Another event in call `id`'s life; `ended_by` (who ended it: `remote`, `dialtone`,
/// `network`) is also kept on the call.
pub(super) fn event_in(conn: &Db, id: &str, kind: &str, detail: &str, at: i64) -> Result<usize, StoreError> {
    conn.execute(
        "INSERT INTO call_events (call_id, at, kind, detail) SELECT id, ?2, ?3, ?4 FROM calls WHERE id = ?1",
        params![id, at, kind, detail],
    )?;
    if kind == "ended_by" {
        conn.execute("UPDATE calls SET ended_by = ?2 WHERE id = ?1", params![id, detail])?;
    }
    Ok(0)
}

/// Call `id`'s SIP messages and quality samples (each kept only when given).
pub(super) fn detail_in(
    conn: &Db,
    id: &str,
    sip: Option<&serde_json::Value>,
    quality: Option<&serde_json::Value>,
) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE calls SET sip_ladder = COALESCE(?2, sip_ladder), quality = COALESCE(?3, quality) WHERE id = ?1",
        params![id, sip.map(|v| v.to_string()), quality.map(|v| v.to_string())],
    )?;
    Ok(0)
}

/// Who answered call `id` (answering-machine detection), decided `after_ms` after the
/// answer: kept on the call, an `answered_by` event, and `call.answered_by` queued.
pub(super) fn answered_by_in(
    conn: &Db,
    id: &str,
    answered_by: &str,
    after_ms: u32,
    at: i64,
) -> Result<usize, StoreError> {
    let org = org_of(conn, id)?;
    conn.execute(
        "UPDATE calls SET answered_by = ?2, answered_by_ms = ?3 WHERE id = ?1",
        params![id, answered_by, i64::from(after_ms)],
    )?;
    conn.execute(
        "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'answered_by', ?3)",
        params![id, at, answered_by],
    )?;
    let body = serde_json::json!({"call_id": id, "answered_by": answered_by, "decision_ms": after_ms});
    enqueue(conn, &org, "call.answered_by", body, at)
}

/// [`Store::set_recording`] inside a transaction; the webhooks queued.
pub(super) fn recording_in(
    conn: &Db,
    id: &str,
    state: RecordingState,
    path: Option<&str>,
    at: i64,
) -> Result<usize, StoreError> {
    let org = org_of(conn, id)?;
    conn.execute(
        "UPDATE calls SET recording_state = ?2, recording_path = COALESCE(?3, recording_path) WHERE id = ?1",
        params![id, state.as_str(), path],
    )?;
    conn.execute(
        "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'recording', ?3)",
        params![id, at, state.as_str()],
    )?;
    if state != RecordingState::Ready {
        return Ok(0);
    }
    let data = serde_json::json!({"call_id": id, "url": format!("/api/calls/{id}/recording")});
    enqueue(conn, &org, "recording.ready", data, at)
}

fn status_of(s: String) -> Result<CallStatus, StoreError> {
    CallStatus::parse(&s).ok_or_else(|| StoreError::Column(format!("{s:?} is not a call status")))
}

const CALL_COLUMNS: &str = "id, contact_id, phone_number, from_number, status, sip_status, reason, record, \
     created_at, answered_at, ended_at, recording_state, direction, organization_id, referred_by, sip_headers, \
     ring_timeout, max_duration, from_display_name, asserted_identity, number_id, early_media, machine_detection, \
     answered_by, answered_by_ms, turns, ended_by";

fn call_from_row(r: &Row) -> Result<Call, StoreError> {
    let answered_at: Option<i64> = r.get(9)?;
    let ended_at: Option<i64> = r.get(10)?;
    Ok(Call {
        id: r.get(0)?,
        contact_id: r.get(1)?,
        phone_number: r.get(2)?,
        from_number: r.get(3)?,
        status: status_of(r.get(4)?)?,
        sip_status: r.get::<Option<i64>>(5)?.and_then(|s| u16::try_from(s).ok()),
        reason: r.get(6)?,
        record: r.get::<i64>(7)? != 0,
        created_at: r.get(8)?,
        answered_at,
        ended_at,
        duration: match (answered_at, ended_at) {
            (Some(a), Some(e)) => Some((e - a).max(0) as f64 / 1000.0),
            _ => None,
        },
        recording: r.get::<Option<String>>(11)?.as_deref().and_then(RecordingState::parse),
        inbound: r.get::<String>(12)? == "inbound",
        organization_id: r.get(13)?,
        referred_by: r.get(14)?,
        sip_headers: r
            .get::<Option<String>>(15)?
            .and_then(|j| serde_json::from_str::<Vec<(String, String)>>(&j).ok())
            .unwrap_or_default(),
        ring_timeout: r.get::<Option<i64>>(16)?.and_then(|n| u32::try_from(n).ok()),
        max_duration: r.get::<Option<i64>>(17)?.and_then(|n| u32::try_from(n).ok()),
        from_display_name: r.get(18)?,
        asserted_identity: r.get(19)?,
        number_id: r.get(20)?,
        early_media: r.get::<i64>(21)? != 0,
        machine_detection: r.get(22)?,
        answered_by: r.get(23)?,
        answered_by_ms: r.get::<Option<i64>>(24)?.and_then(|n| u32::try_from(n).ok()),
        turns: r.get::<Option<String>>(25)?.and_then(|j| serde_json::from_str(&j).ok()),
        ended_by: r.get(26)?,
    })
}

impl Store {
    /// Stores a new call (`initiating`) and its first event, and queues `call.initiated`.
    pub fn insert_call(&mut self, c: &NewCall<'_>) -> Result<Call, StoreError> {
        self.insert_call_once(c, None).map(|(call, _)| call)
    }

    /// [`insert_call`](Self::insert_call) under an idempotency key `(principal, key,
    /// request hash)`: the same key and hash give back the call made the first time
    /// (`true`: replayed) and make nothing; the same key with another hash is
    /// [`StoreError::IdempotencyConflict`].
    pub fn insert_call_once(
        &mut self,
        c: &NewCall<'_>,
        idem: Option<(&str, &str, &str)>,
    ) -> Result<(Call, bool), StoreError> {
        self.insert_call_within(c, idem, None)
    }

    /// [`insert_call_once`](Self::insert_call_once), refused with [`StoreError::Full`] when
    /// the organization already has `max_live` calls up in the store (every node's): the
    /// count and the insert are one transaction, and on PostgreSQL the organization's row
    /// is locked for it, so two nodes cannot both take the last place.
    pub fn insert_call_within(
        &mut self,
        c: &NewCall<'_>,
        idem: Option<(&str, &str, &str)>,
        max_live: Option<u32>,
    ) -> Result<(Call, bool), StoreError> {
        let node = self.node.clone();
        let lock = if self.conn.is_postgres() { " FOR UPDATE" } else { "" };
        let done = self.conn.transaction(|tx| {
            if let Some(idem) = idem {
                if let Some(id) = idempotency::claim(tx, idem, c.id, c.created_at)? {
                    return Ok(Err(call_in(tx, &id)?));
                }
            }
            if let Some(max) = max_live {
                tx.query_opt(&format!("SELECT id FROM organizations WHERE id = ?1{lock}"), params![c.organization_id])?;
                let live: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM calls WHERE organization_id = ?1
                         AND status IN ('initiating', 'ringing', 'in-progress')",
                        params![c.organization_id],
                    )?
                    .get(0)?;
                if live >= i64::from(max) {
                    return Err(StoreError::Full(live as u64));
                }
            }
            tx.execute(
            "INSERT INTO calls (id, contact_id, phone_number, from_number, status, record, created_at, organization_id,
                                sip_headers, ring_timeout, max_duration, from_display_name, early_media,
                                machine_detection, node_id)
             VALUES (?1, ?2, ?3, ?4, 'initiating', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                c.id,
                c.contact_id,
                c.phone_number,
                c.from_number,
                c.record as i64,
                c.created_at,
                c.organization_id,
                (!c.sip_headers.is_empty()).then(|| serde_json::to_string(c.sip_headers).unwrap_or_default()),
                c.ring_timeout.map(i64::from),
                c.max_duration.map(i64::from),
                c.from_display_name,
                c.early_media as i64,
                c.machine_detection,
                node
            ],
        )?;
            tx.execute(
                "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', 'initiating')",
                params![c.id, c.created_at],
            )?;
            let call = call_in(tx, c.id)?;
            let n = enqueue(tx, c.organization_id, "call.initiated", call_json(&call), c.created_at)?;
            Ok(Ok((call, n)))
        })?;
        // The same key and request: the call made the first time, nothing new.
        let (call, n) = match done {
            Ok(made) => made,
            Err(replayed) => return Ok((replayed, true)),
        };
        self.notify(n);
        self.changed(c.id);
        Ok((call, false))
    }

    /// One call, if it is in `scope` (another organization's is [`StoreError::NotFound`]).
    pub fn get_call(&self, scope: &Scope, id: &str) -> Result<Call, StoreError> {
        match call_in(&self.conn, id)? {
            c if scope.org().is_none_or(|o| o == c.organization_id) => Ok(c),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Call `id`'s stored SIP messages (`sip`) or quality samples (otherwise), if it is in
    /// `scope` (else [`StoreError::NotFound`]); `None` when none were stored.
    pub fn call_detail(&self, scope: &Scope, id: &str, sip: bool) -> Result<Option<serde_json::Value>, StoreError> {
        let sql = if sip {
            "SELECT organization_id, sip_ladder FROM calls WHERE id = ?1"
        } else {
            "SELECT organization_id, quality FROM calls WHERE id = ?1"
        };
        let row: Option<(String, Option<String>)> =
            self.conn.query_opt(sql, params![id])?.map(|r| Ok::<_, StoreError>((r.get(0)?, r.get(1)?))).transpose()?;
        match row {
            Some((org, text)) if scope.org().is_none_or(|o| o == org) => {
                Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
            }
            _ => Err(StoreError::NotFound),
        }
    }

    /// Moves a call to `to` at `at` (ms) with its SIP cause, and records the event. Going
    /// in-progress stamps the answer time; a final status stamps the end.
    pub fn set_status(
        &mut self,
        id: &str,
        to: CallStatus,
        sip_status: Option<u16>,
        reason: Option<&str>,
        at: i64,
    ) -> Result<Call, StoreError> {
        let (call, n) = self.conn.transaction(|tx| status_in(tx, id, to, sip_status, reason, at))?;
        self.notify(n);
        self.changed(id);
        Ok(call)
    }

    /// Records another event (a DTMF digit, a recording) on a call.
    pub fn add_event(&mut self, id: &str, kind: &str, detail: &str, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, at, kind, detail],
        )?;
        self.changed(id);
        Ok(())
    }

    /// The events of call `id` in `scope`, oldest first (none for another organization's).
    pub fn events(&self, scope: &Scope, id: &str) -> Result<Vec<CallEvent>, StoreError> {
        self.conn.query_map(
            "SELECT e.at, e.kind, e.detail FROM call_events e JOIN calls c ON c.id = e.call_id
             WHERE e.call_id = ?1 AND (c.organization_id = ?2 OR ?2 IS NULL) ORDER BY e.id",
            params![id, scope.org()],
            |r| Ok(CallEvent { at: r.get(0)?, kind: r.get(1)?, detail: r.get(2)? }),
        )
    }

    /// Calls in `scope` matching `f`, newest first, and how many match in all.
    pub fn list_calls(&self, scope: &Scope, f: &CallFilter<'_>) -> Result<(Vec<Call>, u64), StoreError> {
        let mut cond = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(o) = scope.org() {
            args.push(o.to_string().into());
            cond.push(format!("organization_id = ?{}", args.len()));
        }
        if let Some(s) = f.status {
            args.push(s.as_str().to_string().into());
            cond.push(format!("status = ?{}", args.len()));
        }
        if let Some(c) = f.contact_id {
            args.push(c.to_string().into());
            cond.push(format!("contact_id = ?{}", args.len()));
        }
        if let Some(t) = f.from {
            args.push(t.into());
            cond.push(format!("created_at >= ?{}", args.len()));
        }
        if let Some(t) = f.to {
            args.push(t.into());
            cond.push(format!("created_at < ?{}", args.len()));
        }
        if let Some(n) = f.number {
            // A substring, `%`, `_` and `\` taken literally.
            let escaped = n.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            args.push(format!("%{escaped}%").into());
            let i = args.len();
            // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does the same.
            let like = if self.conn.is_postgres() { "ILIKE" } else { "LIKE" };
            cond.push(format!(
                "(phone_number {like} ?{i} ESCAPE '\\' OR COALESCE(from_number, '') {like} ?{i} ESCAPE '\\')"
            ));
        }
        if let Some(inbound) = f.inbound {
            args.push(if inbound { "inbound" } else { "outbound" }.to_string().into());
            cond.push(format!("direction = ?{}", args.len()));
        }
        let filter = if cond.is_empty() { String::new() } else { format!("WHERE {}", cond.join(" AND ")) };
        let total: i64 = self.conn.query_one(&format!("SELECT COUNT(*) FROM calls {filter}"), &args)?.get(0)?;
        let mut page = args.clone();
        page.push(i64::from(f.limit).into());
        page.push(i64::from(f.offset).into());
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls {filter} ORDER BY created_at DESC, id DESC LIMIT ?{} OFFSET ?{}",
            page.len() - 1,
            page.len()
        );
        Ok((self.conn.query_map(&sql, &page, call_from_row)?, total.max(0) as u64))
    }

    /// After a crash or restart: every call of this node ([`Store::set_node`]; every call
    /// when none is set, and those stored before nodes were) still open is closed as
    /// `failed`, reason `restart`, ended `at`, and `call.failed` is queued for it. Returns
    /// how many.
    pub fn close_unfinished(&mut self, at: i64) -> Result<usize, StoreError> {
        let node = self.node.clone();
        let (n, queued) = self.conn.transaction(|tx| {
            close_open_in(tx, "(node_id = ?1 OR node_id IS NULL OR ?1 IS NULL)", node.as_deref(), "restart", at)
        })?;
        self.notify(queued);
        Ok(n)
    }
}

/// Closes the open calls the `filter` (on `node`, `?1`) picks as `failed` for `reason`,
/// their events and webhooks queued, and their cut-off recordings as ready: (calls closed,
/// webhooks queued).
pub(super) fn close_open_in(
    tx: &Db,
    filter: &str,
    node: Option<&str>,
    reason: &str,
    at: i64,
) -> Result<(usize, usize), StoreError> {
    let open: Vec<String> = tx.query_map(
        &format!("SELECT id FROM calls WHERE status IN ('initiating', 'ringing', 'in-progress') AND {filter}"),
        params![node],
        |r| r.get(0),
    )?;
    let mut queued = 0;
    for id in &open {
        tx.execute(
            "UPDATE calls SET status = 'failed', reason = ?3, ended_at = ?2 WHERE id = ?1",
            params![id, at, reason],
        )?;
        tx.execute(
            "INSERT INTO call_events (call_id, at, kind, detail) VALUES (?1, ?2, 'status', 'failed')",
            params![id, at],
        )?;
        let call = call_in(tx, id)?;
        queued += enqueue(tx, &call.organization_id, "call.failed", call_json(&call), at)?;
    }
    // Nothing records before startup: a recording still marked as running was cut
    // off (the recorder rewrote its header every second, so the file plays) or its
    // end was not written; either way it is what there is.
    let cut: Vec<String> = tx.query_map(
        &format!("SELECT id FROM calls WHERE recording_state = 'recording' AND {filter}"),
        params![node],
        |r| r.get(0),
    )?;
    for id in &cut {
        queued += recording_in(tx, id, RecordingState::Ready, None, at)?;
    }
    Ok((open.len(), queued))
}

impl Store {
    /// Calls in `scope` not over yet, newest first.
    pub fn live_calls(&self, scope: &Scope) -> Result<Vec<Call>, StoreError> {
        self.conn.query_map(
            &format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE status IN ('initiating', 'ringing', 'in-progress')
                 AND (organization_id = ?1 OR ?1 IS NULL) ORDER BY created_at DESC, id DESC"
            ),
            params![scope.org()],
            call_from_row,
        )
    }

    /// How many calls are in each status.
    pub fn count_by_status(&self) -> Result<Vec<(CallStatus, u64)>, StoreError> {
        self.conn.query_map("SELECT status, COUNT(*) FROM calls GROUP BY status", &[], |r| {
            Ok((status_of(r.get(0)?)?, r.get::<i64>(1)?.max(0) as u64))
        })
    }

    /// A DTMF digit heard on a call: an event and `dtmf.received`.
    pub fn dtmf_received(&mut self, id: &str, digit: char, at: i64) -> Result<(), StoreError> {
        let n = self.conn.transaction(|tx| dtmf_in(tx, id, digit, at))?;
        self.notify(n);
        self.changed(id);
        Ok(())
    }

    /// A call's recording changed: started (`path`), ready (`recording.ready` is queued)
    /// or failed.
    pub fn set_recording(
        &mut self,
        id: &str,
        state: RecordingState,
        path: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        let n = self.conn.transaction(|tx| recording_in(tx, id, state, path, at))?;
        self.notify(n);
        self.changed(id);
        Ok(())
    }

    /// The recording of call `id` in `scope`: its state and file.
    pub fn recording(&self, scope: &Scope, id: &str) -> Result<Option<(RecordingState, String)>, StoreError> {
        let r = self.conn.query_one(
            "SELECT recording_state, recording_path FROM calls WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
            params![id, scope.org()],
        )?;
        let row: (Option<String>, Option<String>) = (r.get(0)?, r.get(1)?);
        Ok(match row {
            (Some(s), Some(p)) => RecordingState::parse(&s).map(|s| (s, p)),
            _ => None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::db::MIGRATIONS;
    use crate::store::Op;

    pub(crate) fn new_call<'a>(id: &'a str, contact: &'a str, at: i64) -> NewCall<'a> {
        NewCall::new(id, contact, "+15551230000", crate::model::DEFAULT_ORG, at)
    }

    #[test]
    fn a_call_lives_initiating_to_completed_with_its_events_and_duration() {
        for mut s in Store::test_backends().unwrap() {
            assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
            let c = s.insert_call(&new_call("call_1", "contact_1", 1_000)).unwrap();
            assert_eq!((c.status, c.duration), (CallStatus::Initiating, None));
            s.set_status("call_1", CallStatus::Ringing, Some(180), None, 2_000).unwrap();
            s.set_status("call_1", CallStatus::InProgress, Some(200), None, 3_000).unwrap();
            let c = s.set_status("call_1", CallStatus::Completed, None, Some("BYE"), 123_500).unwrap();
            assert_eq!(c.status, CallStatus::Completed);
            assert_eq!((c.answered_at, c.ended_at, c.duration), (Some(3_000), Some(123_500), Some(120.5)));
            assert_eq!(c.sip_status, Some(200));
            let ev: Vec<String> = s.events(&Scope::All, "call_1").unwrap().into_iter().map(|e| e.detail).collect();
            assert_eq!(ev, ["initiating", "ringing", "in-progress", "completed"]);
            // Never out of a final state, never backwards.
            assert!(matches!(
                s.set_status("call_1", CallStatus::InProgress, None, None, 200_000),
                Err(StoreError::BadTransition { .. })
            ));
            assert!(matches!(s.set_status("nope", CallStatus::Failed, None, None, 1), Err(StoreError::NotFound)));
        }
    }

    #[test]
    fn list_filters_pages_and_counts() {
        for mut s in Store::test_backends().unwrap() {
            for i in 0..30 {
                let id = format!("call_{i:02}");
                let contact = if i % 3 == 0 { "c_a" } else { "c_b" };
                s.insert_call(&new_call(&id, contact, 1_000 + i)).unwrap();
                if i % 2 == 0 {
                    s.set_status(&id, CallStatus::Failed, Some(503), None, 5_000).unwrap();
                }
            }
            let (page, total) = s.list_calls(&Scope::All, &CallFilter { limit: 5, ..CallFilter::default() }).unwrap();
            assert_eq!((page.len(), total), (5, 30));
            assert_eq!(page[0].id, "call_29", "newest first");
            let f = CallFilter {
                status: Some(CallStatus::Failed),
                contact_id: Some("c_a"),
                limit: 50,
                ..CallFilter::default()
            };
            let (rows, total) = s.list_calls(&Scope::All, &f).unwrap();
            assert_eq!(total, 5); // i in {0, 6, 12, 18, 24}
            assert!(rows.iter().all(|c| c.status == CallStatus::Failed && c.contact_id == "c_a"));
            let f = CallFilter { from: Some(1_010), to: Some(1_020), limit: 50, offset: 2, ..CallFilter::default() };
            let (rows, total) = s.list_calls(&Scope::All, &f).unwrap();
            assert_eq!((rows.len(), total), (8, 10));
        }
    }

    #[test]
    fn what_the_engine_writes_is_read_back_whole() {
        for mut s in Store::test_backends().unwrap() {
            let headers = vec![("X-Campaign".to_string(), "spring".to_string())];
            let c = NewCall {
                from_number: Some("+15550001"),
                record: true,
                sip_headers: &headers,
                ring_timeout: Some(25),
                max_duration: Some(3_600),
                from_display_name: Some("Acme"),
                early_media: true,
                machine_detection: Some("detect"),
                ..new_call("call_out", "contact_9", 1_000)
            };
            s.insert_call(&c).unwrap();
            let inbound = InboundCall {
                id: "call_in".into(),
                caller: "+4420_7946%0000".into(),
                called: Some("+15550100".into()),
                at: 2_000,
                organization_id: crate::model::DEFAULT_ORG.into(),
                referred_by: None,
                sip_headers: headers.clone(),
                asserted_identity: Some("sip:+4420@carrier".into()),
                number_id: Some("num_1".into()),
            };
            let referred = InboundCall {
                id: "call_ref".into(),
                caller: "ignored".into(),
                called: Some("+15550199".into()),
                at: 3_000,
                referred_by: Some("call_out".into()),
                sip_headers: Vec::new(),
                asserted_identity: None,
                number_id: None,
                ..inbound.clone()
            };
            let turns = serde_json::json!({"summary": {"turns": 2}});
            let sip = serde_json::json!({"messages": ["INVITE"], "truncated": false});
            let ops = [
                Op::Inbound(inbound),
                Op::Inbound(referred),
                Op::Status {
                    id: "call_out".into(),
                    to: CallStatus::InProgress,
                    sip_status: Some(200),
                    reason: None,
                    at: 4_000,
                },
                Op::AnsweredBy { id: "call_out".into(), answered_by: "human".into(), after_ms: 1_250, at: 5_000 },
                Op::ActionFailed {
                    id: "call_out".into(),
                    action: "hold".into(),
                    detail: "488 Not Here".into(),
                    at: 5_500,
                },
                Op::Turns { id: "call_out".into(), turns: turns.clone() },
                Op::Event { id: "call_out".into(), kind: "ended_by".into(), detail: "remote".into(), at: 6_000 },
                Op::Event { id: "nope".into(), kind: "failover".into(), detail: "x".into(), at: 6_000 },
                Op::Status {
                    id: "call_out".into(),
                    to: CallStatus::Completed,
                    sip_status: None,
                    reason: Some("BYE".into()),
                    at: 6_000,
                },
                Op::Detail { id: "call_out".into(), sip: Some(sip.clone()), quality: None },
            ];
            assert!(s.apply(&ops).unwrap().is_empty(), "all applied");
            s.set_recording("call_out", RecordingState::Recording, Some("/rec/call_out.wav"), 4_100).unwrap();
            s.dtmf_received("call_out", '#', 4_200).unwrap();
            s.add_event("call_out", "note", "by hand", 4_300).unwrap();

            let out = s.get_call(&Scope::All, "call_out").unwrap();
            assert_eq!(
                (out.status, out.sip_status, out.reason.as_deref()),
                (CallStatus::Completed, Some(200), Some("BYE"))
            );
            assert_eq!((out.answered_at, out.ended_at, out.duration), (Some(4_000), Some(6_000), Some(2.0)));
            assert!(out.record && out.early_media && !out.inbound);
            assert_eq!(out.sip_headers, headers);
            assert_eq!((out.ring_timeout, out.max_duration), (Some(25), Some(3_600)));
            assert_eq!(
                (out.from_number.as_deref(), out.from_display_name.as_deref()),
                (Some("+15550001"), Some("Acme"))
            );
            assert_eq!(out.machine_detection.as_deref(), Some("detect"));
            assert_eq!((out.answered_by.as_deref(), out.answered_by_ms), (Some("human"), Some(1_250)));
            assert_eq!(out.turns, Some(turns));
            assert_eq!(out.ended_by.as_deref(), Some("remote"));
            assert_eq!(out.recording, Some(RecordingState::Recording));
            assert_eq!(
                s.recording(&Scope::All, "call_out").unwrap(),
                Some((RecordingState::Recording, "/rec/call_out.wav".into()))
            );
            assert_eq!(s.call_detail(&Scope::All, "call_out", true).unwrap(), Some(sip));
            assert_eq!(s.call_detail(&Scope::All, "call_out", false).unwrap(), None);
            let other = Scope::Org("org_other".into());
            assert!(matches!(s.call_detail(&other, "call_out", true), Err(StoreError::NotFound)));
            assert!(matches!(s.recording(&other, "call_out"), Err(StoreError::NotFound)));
            let kinds: Vec<(String, String)> =
                s.events(&Scope::All, "call_out").unwrap().into_iter().map(|e| (e.kind, e.detail)).collect();
            let kinds: Vec<(&str, &str)> = kinds.iter().map(|(k, d)| (k.as_str(), d.as_str())).collect();
            assert_eq!(
                kinds,
                [
                    ("status", "initiating"),
                    ("status", "in-progress"),
                    ("answered_by", "human"),
                    ("action_failed", "hold: 488 Not Here"),
                    ("ended_by", "remote"),
                    ("status", "completed"),
                    ("recording", "recording"),
                    ("dtmf", "#"),
                    ("note", "by hand"),
                ]
            );

            let inb = s.get_call(&Scope::All, "call_in").unwrap();
            assert!(inb.inbound);
            assert_eq!((inb.phone_number.as_str(), inb.from_number.as_deref()), ("+4420_7946%0000", Some("+15550100")));
            assert_eq!(
                (inb.asserted_identity.as_deref(), inb.number_id.as_deref()),
                (Some("sip:+4420@carrier"), Some("num_1"))
            );
            let rf = s.get_call(&Scope::All, "call_ref").unwrap();
            assert_eq!(
                (rf.contact_id.as_str(), rf.phone_number.as_str()),
                ("contact_9", "+15550199"),
                "the referring call's contact"
            );
            assert_eq!((rf.referred_by.as_deref(), rf.inbound), (Some("call_out"), false));

            // The number filter: a substring of either number, `%` and `_` taken literally.
            let numbers = |n| {
                let f = CallFilter { number: Some(n), limit: 10, ..CallFilter::default() };
                let mut ids: Vec<String> = s.list_calls(&Scope::All, &f).unwrap().0.into_iter().map(|c| c.id).collect();
                ids.sort();
                ids
            };
            assert_eq!(numbers("0_7946%"), ["call_in"]);
            assert_eq!(numbers("4_2"), Vec::<String>::new(), "_ is not a wildcard (+442…)");
            assert_eq!(numbers("%"), ["call_in"], "nor %");
            assert_eq!(numbers("5550001"), ["call_out"], "the from number too");
            assert_eq!(numbers("55501"), ["call_in", "call_ref"]);
            let f = CallFilter { inbound: Some(true), limit: 10, ..CallFilter::default() };
            assert_eq!(s.list_calls(&Scope::All, &f).unwrap().1, 1);

            let live: Vec<String> = s.live_calls(&Scope::All).unwrap().into_iter().map(|c| c.id).collect();
            assert_eq!(live, ["call_ref", "call_in"], "newest first");
            assert!(s.live_calls(&other).unwrap().is_empty());
            let mut counts = s.count_by_status().unwrap();
            counts.sort_by_key(|(st, _)| st.as_str());
            assert_eq!(counts, [(CallStatus::Completed, 1), (CallStatus::Initiating, 2)]);
        }
    }

    #[test]
    fn a_restart_finds_every_call_and_closes_the_unfinished() {
        let dir = std::env::temp_dir().join(format!("dialtone-store-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dialtone.db");
        restart(&|| Store::open(&path).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(url) = Store::test_url().unwrap() {
            restart(&|| Store::open_url(&url).unwrap());
        }
    }

    /// The restart test on the database `open` opens (again).
    fn restart(open: &dyn Fn() -> Store) {
        {
            let mut s = open();
            s.insert_call(&new_call("call_done", "c", 1)).unwrap();
            s.set_status("call_done", CallStatus::Busy, Some(486), Some("Busy Here"), 2).unwrap();
            s.insert_call(&new_call("call_live", "c", 3)).unwrap();
            s.set_status("call_live", CallStatus::InProgress, Some(200), None, 4).unwrap();
            s.insert_call(&new_call("call_new", "c", 5)).unwrap();
            // Dropped without closing: as after a crash.
        }
        let mut s = open();
        assert_eq!(s.close_unfinished(10).unwrap(), 2);
        let (all, total) = s.list_calls(&Scope::All, &CallFilter { limit: 10, ..CallFilter::default() }).unwrap();
        assert_eq!(total, 3);
        for c in &all {
            match c.id.as_str() {
                "call_done" => assert_eq!(c.status, CallStatus::Busy),
                _ => assert_eq!(
                    (c.status, c.reason.as_deref(), c.ended_at),
                    (CallStatus::Failed, Some("restart"), Some(10))
                ),
            }
        }
        assert_eq!(s.events(&Scope::All, "call_live").unwrap().last().unwrap().detail, "failed");
        // Reopening is idempotent: the schema is not applied twice.
        drop(s);
        let s = open();
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
    }
}
