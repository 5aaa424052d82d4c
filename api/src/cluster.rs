//! Several nodes on one store (issue 18): the API on any node answers for the whole
//! cluster. A request about one call (`/api/calls/{id}/…`: its actions, its live SIP ladder
//! and quality, its recording) goes to the node that owns the call, and the owner's reply
//! comes back as it is; a new call (`POST /api/calls/create`) goes to the live node with the
//! most free capacity (this one when equal). Lists and calls read from the shared store
//! wherever they are asked.
//!
//! The forwarded request keeps the caller's credentials (the owner checks them against the
//! same store and JWT key) and carries `X-Dialtone-Forwarded` (this node's id), so it is
//! never forwarded again. It is forwarded only after this node authenticated it. The
//! forwarding itself is the middleware `handlers::forward`; this module is what the nodes
//! share to do it.

use crate::store::NodeRow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The header a forwarded request carries: the id of the node that forwarded it.
pub const FORWARDED: &str = "x-dialtone-forwarded";

/// The header that proves a request came from a node: the cluster's shared token. The
/// request limits were counted where it came in, so its owner does not count it again.
pub const NODE_TOKEN: &str = "x-dialtone-node-token";

/// This node, for forwarding.
#[derive(Debug)]
pub struct Cluster {
    /// `DIALTONE_NODE_ID`.
    pub node: String,
    /// The token every node of the cluster shares (in the store's settings).
    pub token: String,
    /// Forwards requests to the other nodes.
    pub client: reqwest::Client,
    /// The calls this node placed on each node since that node's last heartbeat (which
    /// does not count them yet): by node, (that heartbeat's time, calls).
    placed: Mutex<HashMap<String, (i64, i64)>>,
}

impl Cluster {
    /// Node `node` of a cluster whose nodes share `token`.
    pub fn new(node: &str, token: &str) -> Cluster {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Cluster { node: node.to_string(), token: token.to_string(), client, placed: Mutex::default() }
    }

    /// The node for a new call among the live `nodes`: the most free room, less what this
    /// node placed on each since its last heartbeat (so a burst between two heartbeats is
    /// spread, not all sent to the node that looked freest); this node when equal, then the
    /// first by id. Counts the call on the one picked. `None` when none has room.
    pub fn pick<'a>(&self, nodes: &'a [NodeRow]) -> Option<&'a NodeRow> {
        let mut placed = self.placed.lock().ok()?;
        placed.retain(|id, (beat, _)| nodes.iter().any(|n| n.id == *id && n.heartbeat_at == *beat));
        let room = |n: &NodeRow| n.free() - placed.get(&n.id).map_or(0, |(_, k)| *k);
        let best = nodes
            .iter()
            .filter(|n| room(n) > 0)
            .max_by_key(|n| (room(n), n.id == self.node, std::cmp::Reverse(n.id.as_str())))?;
        placed.entry(best.id.clone()).or_insert((best.heartbeat_at, 0)).1 += 1;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, free: i64, beat: i64) -> NodeRow {
        NodeRow {
            id: id.into(),
            url: String::new(),
            capacity: 100,
            live_calls: 100 - free,
            draining: false,
            started_at: 0,
            heartbeat_at: beat,
            lease_until: i64::MAX,
            lost_at: None,
        }
    }

    #[test]
    fn a_burst_between_heartbeats_is_spread_by_free_room() {
        let c = Cluster::new("b", "t");
        let nodes = [node("a", 3, 1), node("b", 2, 1), node("c", 3, 1)];
        let picks: Vec<&str> = (0..9).map(|_| c.pick(&nodes).map_or("-", |n| n.id.as_str())).collect();
        // a and c are freer; then b (this node) wins ties; none has room left at the end.
        assert_eq!(picks, ["a", "c", "b", "a", "c", "b", "a", "c", "-"]);
        // A new heartbeat counts the calls itself: the tally starts again.
        let nodes = [node("a", 0, 2), node("b", 1, 2), node("c", 5, 2)];
        assert_eq!(c.pick(&nodes).map(|n| n.id.as_str()), Some("c"));
        let draining = NodeRow { draining: true, ..node("c", 50, 3) };
        assert_eq!(c.pick(&[node("b", 1, 3), draining]).map(|n| n.id.as_str()), Some("b"));
    }
}
