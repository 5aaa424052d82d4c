//! Several nodes on one store (issue 18): each node's heartbeat row (its API's address,
//! capacity, live calls, lease), the node that owns each call, a lost node's calls closed
//! by a survivor, and settings every node shares.

use super::calls::close_open_in;
use super::db::Store;
use super::error::StoreError;
use super::sql::{params, Row};

/// One node, as its last heartbeat left it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    /// `DIALTONE_NODE_ID`.
    pub id: String,
    /// Where the other nodes reach its HTTP API (`http://host:port`).
    pub url: String,
    /// Calls it takes at most.
    pub capacity: i64,
    /// Calls it had up at the heartbeat.
    pub live_calls: i64,
    /// Draining (a SIGTERM): no new call goes to it.
    pub draining: bool,
    /// When it started, ms.
    pub started_at: i64,
    /// Its last heartbeat, ms.
    pub heartbeat_at: i64,
    /// Alive until then (ms) unless it beats again.
    pub lease_until: i64,
    /// When a survivor found its lease run out and closed its calls, ms.
    pub lost_at: Option<i64>,
}

impl NodeRow {
    /// Calls it could still take (0 when draining or lost).
    pub fn free(&self) -> i64 {
        if self.draining || self.lost_at.is_some() {
            0
        } else {
            (self.capacity - self.live_calls).max(0)
        }
    }
}

const COLUMNS: &str = "id, url, capacity, live_calls, draining, started_at, heartbeat_at, lease_until, lost_at";

fn from_row(r: &Row) -> Result<NodeRow, StoreError> {
    Ok(NodeRow {
        id: r.get(0)?,
        url: r.get(1)?,
        capacity: r.get(2)?,
        live_calls: r.get(3)?,
        draining: r.get(4)?,
        started_at: r.get(5)?,
        heartbeat_at: r.get(6)?,
        lease_until: r.get(7)?,
        lost_at: r.get(8)?,
    })
}

impl Store {
    /// This store writes for node `id`: the calls it inserts are that node's, and
    /// [`Store::close_unfinished`] closes only that node's.
    pub fn set_node(&mut self, id: &str) {
        self.node = Some(id.to_string());
    }

    /// The node this store writes for.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Node `n.id`'s heartbeat: its row written (made at its first), its lease renewed to
    /// `n.lease_until`, and a lost mark cleared (it came back). When it had been marked lost
    /// (another node took it over while it could not beat), when that was.
    pub fn heartbeat(&mut self, n: &NodeRow) -> Result<Option<i64>, StoreError> {
        let lock = if self.conn.is_postgres() { " FOR UPDATE" } else { "" };
        self.conn.transaction(|tx| {
            let lost = match tx.query_opt(&format!("SELECT lost_at FROM nodes WHERE id = ?1{lock}"), params![n.id])? {
                Some(r) => r.get(0)?,
                None => None,
            };
            tx.execute(
                &format!(
                    "INSERT INTO nodes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)
                     ON CONFLICT (id) DO UPDATE SET url = excluded.url, capacity = excluded.capacity,
                        live_calls = excluded.live_calls, draining = excluded.draining,
                        started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                        lease_until = excluded.lease_until, lost_at = NULL"
                ),
                params![n.id, n.url, n.capacity, n.live_calls, n.draining, n.started_at, n.heartbeat_at, n.lease_until],
            )?;
            Ok(lost)
        })
    }

    /// The calls of node `id` another node closed as `node lost` at `lost_at` (when it
    /// took this one over): the ones it must not carry on.
    pub fn calls_taken_over(&self, id: &str, lost_at: i64) -> Result<Vec<String>, StoreError> {
        self.conn.query_map(
            "SELECT id FROM calls WHERE node_id = ?1 AND reason = 'node lost' AND ended_at >= ?2",
            params![id, lost_at],
            |r| r.get(0),
        )
    }

    /// Every node the store knows, by id.
    pub fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        self.conn.query_map(&format!("SELECT {COLUMNS} FROM nodes ORDER BY id"), &[], from_row)
    }

    /// The nodes alive at `now` (lease not run out, not lost), by id.
    pub fn live_nodes(&self, now: i64) -> Result<Vec<NodeRow>, StoreError> {
        self.conn.query_map(
            &format!("SELECT {COLUMNS} FROM nodes WHERE lease_until >= ?1 AND lost_at IS NULL ORDER BY id"),
            params![now],
            from_row,
        )
    }

    /// The node that has call or conference `id` (`of`), if it is alive at `now`.
    pub fn owner(&self, of: Owned, id: &str, now: i64) -> Result<Option<NodeRow>, StoreError> {
        let table = match of {
            Owned::Call => "calls",
            Owned::Conference => "conferences",
        };
        self.conn
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM nodes WHERE id = (SELECT node_id FROM {table} WHERE id = ?1)
                 AND lease_until >= ?2 AND lost_at IS NULL"
                ),
                params![id, now],
            )?
            .map(|r| from_row(&r))
            .transpose()
    }

    /// A node leaving on its own (a clean stop): its row goes, so nobody sends it work.
    pub fn remove_node(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM nodes WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Takes over node `id` if its lease ran out before `now` and nobody did yet: marks it
    /// lost and closes its open calls as `failed`, reason `node lost` (their events and
    /// `call.failed` queued), in one transaction. Whether this caller did it; of several
    /// survivors trying at once, one does (the mark is a conditional update).
    pub fn take_over_lost(&mut self, id: &str, now: i64) -> Result<Option<usize>, StoreError> {
        let r = self.conn.transaction(|tx| {
            let won = tx.execute(
                "UPDATE nodes SET lost_at = ?2 WHERE id = ?1 AND lost_at IS NULL AND lease_until < ?2",
                params![id, now],
            )?;
            if won == 0 {
                return Ok(None);
            }
            close_open_in(tx, "node_id = ?1", Some(id), "node lost", now).map(Some)
        })?;
        if let Some((_, queued)) = r {
            self.notify(queued);
        }
        Ok(r.map(|(closed, _)| closed))
    }

    /// The node that owns call `id` (any organization's: the API forwards to it, and the
    /// owner answers for the caller's scope).
    pub fn call_node(&self, id: &str) -> Result<Option<String>, StoreError> {
        match self.conn.query_opt("SELECT node_id FROM calls WHERE id = ?1", params![id])? {
            Some(r) => r.get(0),
            None => Ok(None),
        }
    }

    /// The shared bucket `key` (its tokens and when they were last counted, `None` before
    /// its first use) handed to `spend`, which says what is left and its answer; kept as of
    /// `now` (ms). Every node takes from the same row, locked for the read and the write, so a
    /// limit holds across them (the arithmetic is the caller's: `limits::Rate`).
    pub fn with_bucket<T>(
        &mut self,
        key: &str,
        now: i64,
        spend: impl FnOnce(Option<(f64, i64)>) -> (f64, T),
    ) -> Result<T, StoreError> {
        let lock = if self.conn.is_postgres() { " FOR UPDATE" } else { "" };
        self.conn.transaction(|tx| {
            let row =
                tx.query_opt(&format!("SELECT tokens, at FROM rate_buckets WHERE key = ?1{lock}"), params![key])?;
            let bucket = match row {
                Some(r) => Some((r.get(0)?, r.get(1)?)),
                None => None,
            };
            let (left, answer) = spend(bucket);
            tx.execute(
                "INSERT INTO rate_buckets (key, tokens, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                params![key, left, now],
            )?;
            Ok(answer)
        })
    }

    /// The shared setting `key`: the one stored, or `value` stored now (the first node to
    /// ask decides, for all).
    pub fn shared_setting(&mut self, key: &str, value: &str) -> Result<String, StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![key, value],
        )?;
        self.conn.query_one("SELECT value FROM settings WHERE key = ?1", params![key])?.get(0)
    }
}

/// What a node has: a call, or a conference's room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owned {
    /// A call (`calls.node_id`).
    Call,
    /// A conference (`conferences.node_id`).
    Conference,
}

/// What the engine is handed from the store, changed through the API of any node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// Organizations' call policies.
    Orgs,
    /// SIP users (who may register).
    SipUsers,
    /// Trunks.
    Trunks,
    /// Numbers (what an inbound call to each does).
    Numbers,
}

impl Config {
    /// All of them.
    pub const ALL: [Config; 4] = [Config::Orgs, Config::SipUsers, Config::Trunks, Config::Numbers];

    fn as_str(self) -> &'static str {
        match self {
            Config::Orgs => "orgs",
            Config::SipUsers => "sip_users",
            Config::Trunks => "trunks",
            Config::Numbers => "numbers",
        }
    }

    fn parse(s: &str) -> Option<Config> {
        Config::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl Store {
    /// On a shared store, tells the other nodes that `kind` changed (`pg_notify` on
    /// `dialtone_config`); they hand it to their engines again.
    pub fn config_changed(&self, kind: Config) {
        if let (Some(node), true) = (&self.node, self.conn.is_postgres()) {
            let said = format!("{node} {}", kind.as_str());
            if let Err(e) = self.conn.execute("SELECT pg_notify('dialtone_config', ?1)", params![said]) {
                tracing::warn!(error = %e, "the other nodes were not told of a change");
            }
        }
    }
}

/// On a shared store, what the other nodes say: every call another node changes (its
/// `pg_notify` on `dialtone_calls`) is sent to `feed`, the live event stream's source, as
/// this node's own changes are; every change of the engine's configuration another node
/// made (`dialtone_config`) is handed to `reload`, and all of it each time the connection
/// is made (so nothing said before it, or while it was down, is missed). A thread of its own keeps a
/// connection listening (a new one each second when it breaks) for as long as the process
/// runs.
pub fn listen(
    url: &str,
    me: &str,
    feed: tokio::sync::broadcast::Sender<String>,
    reload: impl Fn(Config) + Send + 'static,
) -> Result<(), StoreError> {
    let config = super::pg::pg_config(url)?;
    let me = me.to_string();
    std::thread::Builder::new()
        .name("store-listen".into())
        .spawn(move || loop {
            match config.connect(postgres::NoTls) {
                Ok(mut client) => {
                    if let Err(e) = client.batch_execute("LISTEN dialtone_calls; LISTEN dialtone_config") {
                        tracing::warn!(error = %e, "cannot listen to the other nodes");
                    } else {
                        Config::ALL.into_iter().for_each(&reload);
                        use postgres::fallible_iterator::FallibleIterator;
                        let mut notes = client.notifications();
                        let mut notes = notes.blocking_iter();
                        while let Ok(Some(note)) = notes.next() {
                            let Some((node, what)) = note.payload().split_once(' ') else { continue };
                            if node == me {
                                continue;
                            }
                            if note.channel() == "dialtone_config" {
                                if let Some(kind) = Config::parse(what) {
                                    reload(kind);
                                }
                            } else if feed.receiver_count() > 0 {
                                let _ = feed.send(what.to_string());
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot connect to listen to the other nodes"),
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        })
        .map_err(|e| StoreError::Postgres(format!("cannot start the listening thread: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallStatus, InboundCall, Scope};
    use crate::store::Op;

    #[test]
    fn an_organizations_last_place_goes_to_one_call_whichever_node_asks() {
        use crate::store::calls::tests::new_call;
        for (mut a, mut b) in Store::test_pairs().unwrap() {
            a.set_node("a");
            b.set_node("b");
            a.insert_call_within(&new_call("call_1", "c", 1), None, Some(2)).unwrap();
            b.insert_call_within(&new_call("call_2", "c", 2), None, Some(2)).unwrap();
            let third = a.insert_call_within(&new_call("call_3", "c", 3), None, Some(2));
            assert!(matches!(third, Err(StoreError::Full(2))), "{third:?}");
            assert!(matches!(b.get_call(&Scope::All, "call_3"), Err(StoreError::NotFound)), "nothing stored");
            // Another organization's calls are not counted; a call that ended frees its place.
            let mut other = new_call("call_4", "c", 4);
            other.organization_id = "org_other";
            b.insert_call_within(&other, None, Some(1)).unwrap();
            b.set_status("call_1", CallStatus::Failed, Some(486), None, 5).unwrap();
            a.insert_call_within(&new_call("call_3", "c", 6), None, Some(2)).unwrap();
        }
        // Eight nodes asking at once for an organization that has three places: three calls.
        for open in Store::test_openers().unwrap() {
            let made: Vec<bool> = (0..8)
                .map(|i| {
                    let open = open.clone();
                    std::thread::spawn(move || {
                        let mut s = open();
                        s.set_node(&format!("n{i}"));
                        match s.insert_call_within(&new_call(&format!("call_{i}"), "c", i), None, Some(3)) {
                            Ok(_) => true,
                            Err(StoreError::Full(3)) => false,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert_eq!(made.iter().filter(|m| **m).count(), 3, "{made:?}");
            assert_eq!(open().live_calls(&Scope::All).unwrap().len(), 3);
        }
    }

    fn node(id: &str, lease_until: i64) -> NodeRow {
        NodeRow {
            id: id.into(),
            url: format!("http://{id}"),
            capacity: 10,
            live_calls: 2,
            draining: false,
            started_at: 1,
            heartbeat_at: 2,
            lease_until,
            lost_at: None,
        }
    }

    fn inbound(id: &str) -> Op {
        Op::Inbound(InboundCall {
            id: id.into(),
            caller: "+15550000001".into(),
            called: None,
            at: 5,
            organization_id: crate::model::DEFAULT_ORG.into(),
            referred_by: None,
            sip_headers: Vec::new(),
            asserted_identity: None,
            number_id: None,
        })
    }

    #[test]
    fn heartbeats_leases_and_a_lost_nodes_calls_closed_once() {
        for (mut a, mut b) in Store::test_pairs().unwrap() {
            a.set_node("a");
            b.set_node("b");
            a.heartbeat(&node("a", 100)).unwrap();
            b.heartbeat(&node("b", 1000)).unwrap();
            assert_eq!(a.live_nodes(50).unwrap().len(), 2);
            assert_eq!(a.nodes().unwrap()[0].free(), 8);
            // Each node's calls are its own.
            a.apply(&[inbound("call_a")]).unwrap();
            b.apply(&[inbound("call_b")]).unwrap();
            assert_eq!(b.call_node("call_a").unwrap().as_deref(), Some("a"));
            assert_eq!(a.call_node("call_b").unwrap().as_deref(), Some("b"));
            assert_eq!(a.call_node("nope").unwrap(), None);
            // a's lease runs out: not before, and once.
            assert_eq!(b.take_over_lost("a", 100).unwrap(), None, "the lease runs to 100");
            assert_eq!(b.take_over_lost("a", 101).unwrap(), Some(1));
            assert_eq!(b.take_over_lost("a", 102).unwrap(), None, "taken over already");
            let lost = b.get_call(&Scope::All, "call_a").unwrap();
            assert_eq!((lost.status, lost.reason.as_deref()), (CallStatus::Failed, Some("node lost")));
            assert_eq!(b.get_call(&Scope::All, "call_b").unwrap().status, CallStatus::Initiating);
            assert_eq!(b.live_nodes(101).unwrap().iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["b"]);
            // a comes back: alive again, with nothing of its own left open.
            a.heartbeat(&node("a", 200)).unwrap();
            assert_eq!(a.close_unfinished(150).unwrap(), 0, "a restart closes only a's calls");
            assert_eq!(a.live_nodes(150).unwrap().len(), 2);
            assert_eq!(b.close_unfinished(150).unwrap(), 1);
            a.remove_node("a").unwrap();
            assert_eq!(a.nodes().unwrap().len(), 1);
        }
    }

    #[test]
    fn a_shared_setting_is_decided_by_the_first_to_ask() {
        for mut s in Store::test_backends().unwrap() {
            assert_eq!(s.shared_setting("jwt", "one").unwrap(), "one");
            assert_eq!(s.shared_setting("jwt", "two").unwrap(), "one");
        }
    }
}
