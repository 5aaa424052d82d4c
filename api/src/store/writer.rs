//! The store's one writer for the engine: [`Op`]s applied in batches on a thread.

use super::calls::{
    action_failed_in, answered_by_in, detail_in, dtmf_in, event_in, inbound_in, recording_in, status_in, turns_in,
};
use super::db::Store;
use super::error::StoreError;
use crate::model::{CallStatus, InboundCall, RecordingState};

/// A change the SIP loop or a media task hands to the [`Writer`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A call came in: a new row, `initiating`, and `call.initiated`.
    Inbound(InboundCall),
    /// [`Store::set_status`].
    Status {
        /// The call.
        id: String,
        /// The new status.
        to: CallStatus,
        /// Its SIP status.
        sip_status: Option<u16>,
        /// Why.
        reason: Option<String>,
        /// When, ms.
        at: i64,
    },
    /// [`Store::dtmf_received`].
    Dtmf {
        /// The call.
        id: String,
        /// The digit.
        digit: char,
        /// When, ms.
        at: i64,
    },
    /// [`Store::set_recording`].
    Recording {
        /// The call.
        id: String,
        /// Its recording's state.
        state: RecordingState,
        /// The file, when it starts.
        path: Option<String>,
        /// When, ms.
        at: i64,
    },
    /// An action the engine carried out failed later (a re-INVITE refused, a transfer
    /// that did not connect): a call event and `call.action_failed`.
    ActionFailed {
        /// The call.
        id: String,
        /// `hold`, `unhold`, `transfer`.
        action: String,
        /// The status line that said no.
        detail: String,
        /// When, ms.
        at: i64,
    },
    /// Who answered, as answering-machine detection decided: kept on the call, an event,
    /// and `call.answered_by`.
    AnsweredBy {
        /// The call.
        id: String,
        /// `human`, `machine_start`, … (`AnsweredBy`'s names).
        answered_by: String,
        /// How long after the answer it was decided, ms.
        after_ms: u32,
        /// When, ms.
        at: i64,
    },
    /// A voice-agent call's turn-taking figures (kept on the call, shown by the API and in
    /// `call.completed`).
    Turns {
        /// The call.
        id: String,
        /// `{summary, turns, barge_ins, playout}`.
        turns: serde_json::Value,
    },
    /// A call's SIP messages and quality samples, kept at its end (each `None`: none).
    Detail {
        /// The call.
        id: String,
        /// `{messages, truncated}`.
        sip: Option<serde_json::Value>,
        /// `{codec, interval_ms, samples, summary}`.
        quality: Option<serde_json::Value>,
    },
    /// Another event in a call's life (`failover`: its INVITE moved to the next server).
    Event {
        /// The call.
        id: String,
        /// What kind.
        kind: String,
        /// What happened.
        detail: String,
        /// When, ms.
        at: i64,
    },
}

impl Op {
    /// The call it changes.
    pub fn call_id(&self) -> &str {
        match self {
            Op::Inbound(c) => &c.id,
            Op::Status { id, .. }
            | Op::Dtmf { id, .. }
            | Op::Recording { id, .. }
            | Op::ActionFailed { id, .. }
            | Op::AnsweredBy { id, .. }
            | Op::Turns { id, .. }
            | Op::Detail { id, .. }
            | Op::Event { id, .. } => id,
        }
    }
}

enum Job {
    Op(Op),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The store's one writer for the engine: a thread that applies [`Op`]s in batches (one
/// transaction for whatever queued up meanwhile), so the SIP loop and the media tasks never
/// wait on the database. Cloning shares the thread.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: std::sync::mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Op(op) => op.fmt(f),
            Job::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn spawn(store: std::sync::Arc<std::sync::Mutex<Store>>) -> std::io::Result<Writer> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new().name("store-writer".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let (mut ops, mut flushes) = (Vec::new(), Vec::new());
                let mut next = Some(first);
                while let Some(job) = next.take() {
                    match job {
                        Job::Op(op) => ops.push(op),
                        Job::Flush(done) => flushes.push(done),
                    }
                    if ops.len() < 1024 {
                        next = rx.try_recv().ok();
                    }
                }
                // A batch the database would not take (it is unreachable, say) is tried
                // again until it does, in order; what comes meanwhile waits its turn.
                let mut wait = std::time::Duration::from_millis(100);
                let mut failing_since: Option<std::time::Instant> = None;
                while !ops.is_empty() {
                    let applied = match store.lock() {
                        Ok(mut s) => s.apply(&ops),
                        Err(_) => {
                            tracing::error!(changes = ops.len(), "the store lock is poisoned: call changes lost");
                            break;
                        }
                    };
                    match applied {
                        Ok(skipped) => {
                            for e in skipped {
                                tracing::debug!(error = %e, "store change skipped");
                            }
                            if let Some(since) = failing_since {
                                tracing::info!(changes = ops.len(), after_ms = since.elapsed().as_millis() as u64,
                                    "call changes written after all");
                            }
                            break;
                        }
                        Err(e) => {
                            if failing_since.is_none() {
                                tracing::warn!(error = %e, changes = ops.len(), "cannot write call changes: trying again");
                            }
                            failing_since.get_or_insert_with(std::time::Instant::now);
                            std::thread::sleep(wait);
                            wait = (wait * 2).min(std::time::Duration::from_secs(2));
                        }
                    }
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        })?;
        Ok(Writer { tx })
    }

    /// Queues a change; never blocks.
    pub fn send(&self, op: Op) {
        let _ = self.tx.send(Job::Op(op));
    }

    /// Waits (at most `limit`) until everything queued before is written.
    pub fn flush(&self, limit: std::time::Duration) -> bool {
        let (done, wait) = std::sync::mpsc::channel();
        self.tx.send(Job::Flush(done)).is_ok() && wait.recv_timeout(limit).is_ok()
    }
}

impl Store {
    /// Applies `ops` in one transaction (the [`Writer`]'s batches). An op the call's life
    /// does not allow, or for an unknown call, is skipped; the others stand.
    pub fn apply(&mut self, ops: &[Op]) -> Result<Vec<StoreError>, StoreError> {
        let node = self.node.clone();
        let (queued, skipped) = self.conn.transaction(|tx| {
            let (mut queued, mut skipped) = (0, Vec::new());
            for op in ops {
                // Each op in a savepoint: one that fails leaves nothing half-written, and
                // (PostgreSQL) does not abort the others.
                let r = tx.savepoint(|tx| match op {
                    Op::Inbound(c) => inbound_in(tx, c, node.as_deref()),
                    Op::Status { id, to, sip_status, reason, at } => {
                        status_in(tx, id, *to, *sip_status, reason.as_deref(), *at).map(|(_, n)| n)
                    }
                    Op::Dtmf { id, digit, at } => dtmf_in(tx, id, *digit, *at),
                    Op::Recording { id, state, path, at } => recording_in(tx, id, *state, path.as_deref(), *at),
                    Op::ActionFailed { id, action, detail, at } => action_failed_in(tx, id, action, detail, *at),
                    Op::Turns { id, turns } => turns_in(tx, id, turns),
                    Op::Detail { id, sip, quality } => detail_in(tx, id, sip.as_ref(), quality.as_ref()),
                    Op::AnsweredBy { id, answered_by, after_ms, at } => {
                        answered_by_in(tx, id, answered_by, *after_ms, *at)
                    }
                    Op::Event { id, kind, detail, at } => event_in(tx, id, kind, detail, *at),
                });
                match r {
                    Ok(n) => queued += n,
                    Err(e) => skipped.push(e),
                }
            }
            Ok((queued, skipped))
        })?;
        self.notify(queued);
        let mut ids: Vec<&str> = ops.iter().map(Op::call_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().for_each(|id| self.changed(id));
        Ok(skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::calls::tests::new_call;
    use crate::store::sql::params;

    #[test]
    fn the_writer_applies_batches_and_skips_what_a_call_cannot_do() {
        for s in Store::test_backends().unwrap() {
            let store = std::sync::Arc::new(std::sync::Mutex::new(s));
            store.lock().unwrap().insert_call(&new_call("call_w", "c", 1)).unwrap();
            let w = Writer::spawn(store.clone()).unwrap();
            let status = |to, at| Op::Status { id: "call_w".into(), to, sip_status: None, reason: None, at };
            w.send(status(CallStatus::InProgress, 2));
            w.send(Op::Dtmf { id: "call_w".into(), digit: '5', at: 3 });
            w.send(status(CallStatus::Ringing, 4)); // backwards: skipped
            w.send(Op::Recording { id: "nope".into(), state: RecordingState::Ready, path: None, at: 5 });
            w.send(status(CallStatus::Completed, 6));
            assert!(w.flush(std::time::Duration::from_secs(5)));
            let s = store.lock().unwrap();
            let c = s.get_call(&crate::model::Scope::All, "call_w").unwrap();
            assert_eq!((c.status, c.answered_at, c.ended_at), (CallStatus::Completed, Some(2), Some(6)));
            let ev: Vec<String> =
                s.events(&crate::model::Scope::All, "call_w").unwrap().into_iter().map(|e| e.detail).collect();
            assert_eq!(ev, ["initiating", "in-progress", "5", "completed"]);
        }
    }

    #[test]
    fn a_batch_the_database_did_not_take_is_written_when_it_answers_again() {
        let Some(url) = Store::test_url().unwrap() else { return };
        let store = std::sync::Arc::new(std::sync::Mutex::new(Store::open_url(&url).unwrap()));
        store.lock().unwrap().insert_call(&new_call("call_r", "c", 1)).unwrap();
        let w = Writer::spawn(store.clone()).unwrap();
        // The writer's connection is cut (as a network cut or a server restart would): the
        // next statement fails, the batch is tried again on a new connection.
        let killer = Store::open_url(&url).unwrap();
        let pid: i64 = store.lock().unwrap().conn.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0).unwrap();
        killer.conn.execute("SELECT pg_terminate_backend(CAST(?1 AS INTEGER), 5000)", params![pid]).unwrap();
        w.send(Op::Status { id: "call_r".into(), to: CallStatus::InProgress, sip_status: None, reason: None, at: 2 });
        assert!(w.flush(std::time::Duration::from_secs(10)));
        let c = store.lock().unwrap().get_call(&crate::model::Scope::All, "call_r").unwrap();
        assert_eq!(c.status, CallStatus::InProgress);
    }
}
