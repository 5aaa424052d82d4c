//! This node among several on one store (issue 18): its heartbeat (API address, capacity,
//! live calls, draining, lease) every fifth of the lease, and, on a shared store, taking
//! over the nodes whose lease ran out: their open calls closed as `failed`, reason
//! `node lost` (their webhook events go out from the survivors' outbox senders).

use crate::engine::Command;
use dialtone_api::store::{NodeRow, Store};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// This node.
pub struct Node {
    /// `DIALTONE_NODE_ID`.
    pub id: String,
    /// `DIALTONE_NODE_URL`.
    pub url: String,
    /// Calls it takes at most (`DIALTONE_MAX_CALLS`, else its RTP ports' pairs).
    pub capacity: i64,
    /// `DIALTONE_NODE_LEASE`.
    pub lease: Duration,
    /// Several nodes share the store (PostgreSQL): look after the others too.
    pub shared: bool,
    /// Calls up now.
    pub live_calls: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// Set when a SIGTERM started draining.
    pub draining: Arc<AtomicBool>,
    /// When it started, ms.
    pub started_at: i64,
    /// The engine's inbox: told when this node is cut off from the shared store, and of
    /// the calls another node took over meanwhile.
    pub inbox: Option<super::inbox::Inbox>,
    /// The last heartbeat stored, ms.
    beat_at: i64,
    /// Cut off (told to the engine).
    fenced: bool,
}

impl Node {
    /// This node from the settings: its id defaults to `<hostname>:<SIP port>`, its URL to
    /// `http://<DIALTONE_HTTP_LISTEN>` (loopback when that is a wildcard address).
    pub fn new(settings: &crate::config::Settings, live_calls: Arc<dyn Fn() -> u64 + Send + Sync>) -> Node {
        let id = if settings.node_id.is_empty() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "dialtone".into());
            format!("{}:{}", host.trim(), settings.sip_listen.port())
        } else {
            settings.node_id.clone()
        };
        let url = if settings.node_url.is_empty() {
            let mut at = settings.http_listen;
            if at.ip().is_unspecified() {
                at.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{at}")
        } else {
            settings.node_url.trim_end_matches('/').to_string()
        };
        let ports = i64::from(settings.rtp_ports.1.saturating_sub(settings.rtp_ports.0)) / 2;
        Node {
            id,
            url,
            capacity: settings.max_calls.map_or(ports.max(1), i64::from),
            lease: Duration::from_secs(settings.node_lease_s),
            shared: settings.database_url.is_some(),
            live_calls,
            draining: Arc::default(),
            started_at: crate::now_ms(),
            inbox: None,
            beat_at: crate::now_ms(),
            fenced: false,
        }
    }

    /// Beats now and every fifth of the lease, for as long as the process runs.
    pub fn spawn(mut self, store: Arc<Mutex<Store>>) {
        tracing::info!(node = %self.id, url = %self.url, capacity = self.capacity, shared = self.shared, "node");
        tokio::spawn(async move {
            let every = (self.lease / 5).max(Duration::from_millis(200));
            loop {
                self.beat(&store);
                tokio::time::sleep(every).await;
            }
        });
    }

    fn beat(&mut self, store: &Mutex<Store>) {
        let now = crate::now_ms();
        let Ok(mut s) = store.lock() else { return };
        let row = NodeRow {
            id: self.id.clone(),
            url: self.url.clone(),
            capacity: self.capacity,
            live_calls: (self.live_calls)() as i64,
            draining: self.draining.load(Relaxed),
            started_at: self.started_at,
            heartbeat_at: now,
            lease_until: now + self.lease.as_millis() as i64,
            lost_at: None,
        };
        let lost_at = match s.heartbeat(&row) {
            Ok(lost_at) => lost_at,
            Err(e) => {
                tracing::warn!(error = %e, "node heartbeat not stored");
                // A beat before the lease runs out, another node may take this one over:
                // it takes no new calls until it can beat again.
                let lease = self.lease.as_millis() as i64;
                if self.shared && now - self.beat_at >= lease - lease / 5 {
                    self.fence(true);
                }
                return;
            }
        };
        self.beat_at = now;
        self.fence(false);
        if let Some(lost_at) = lost_at {
            // Another node closed this one's calls as failed (node lost): they end here too.
            let calls = s.calls_taken_over(&self.id, lost_at).unwrap_or_default();
            tracing::error!(calls = calls.len(), "this node had been taken over: hanging up the calls closed as lost");
            for id in calls {
                self.tell(Command::Act(id, dialtone_api::http::Action::Hangup));
            }
        }
        if !self.shared {
            return;
        }
        let nodes = match s.nodes() {
            Ok(n) => n,
            Err(e) => return tracing::warn!(error = %e, "cannot read the nodes"),
        };
        for n in nodes.iter().filter(|n| n.id != self.id && n.lost_at.is_none() && n.lease_until < now) {
            match s.take_over_lost(&n.id, now) {
                Ok(Some(closed)) => tracing::warn!(node = %n.id, calls = closed,
                    silent_ms = now - n.heartbeat_at, "node lost: its open calls closed as failed (node lost)"),
                Ok(None) => {}
                Err(e) => tracing::warn!(node = %n.id, error = %e, "cannot take the lost node over"),
            }
        }
    }

    /// Tells the engine this node is cut off from the shared store, or no longer.
    fn fence(&mut self, on: bool) {
        if self.fenced != on {
            self.fenced = on;
            self.tell(Command::Fence(on));
        }
    }

    fn tell(&self, cmd: Command) {
        if let Some(inbox) = &self.inbox {
            inbox.send(super::inbox::Input::Command(cmd, None));
        }
    }

    /// A clean stop: the node's row goes, so no other node sends it work or takes it over.
    pub fn leave(id: &str, store: &Mutex<Store>) {
        if let Ok(mut s) = store.lock() {
            if let Err(e) = s.remove_node(id) {
                tracing::warn!(error = %e, "node row not removed");
            }
        }
    }
}
