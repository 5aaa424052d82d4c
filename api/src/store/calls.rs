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
#[path = "calls_tests.rs"]
pub(crate) mod tests;
