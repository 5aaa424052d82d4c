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
        Cluster { node: node.to_string(), token: token.to_string(), client }
    }
}
