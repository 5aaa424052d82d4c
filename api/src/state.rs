//! What the handlers share: [`ApiState`].

use crate::control::CallControl;
use crate::limits::{Limits, RateLimits};
use crate::model::Scope;
use crate::store::{Config, Readers, Store, StoreError};
use std::sync::{Arc, Mutex};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The store (one writer; reads take the same lock for now).
    pub store: Arc<Mutex<Store>>,
    /// `DIALTONE_INTERNAL_KEY`: full access when it matches.
    pub internal_key: Option<String>,
    /// Places calls; `None` without a trunk (create then answers 503).
    pub control: Option<Arc<dyn CallControl>>,
    /// The HS256 key for user JWTs.
    pub jwt_secret: Arc<Vec<u8>>,
    /// Request limits per key and per address.
    pub limits: Arc<RateLimits>,
    /// Webhook delivery counters.
    pub webhook_stats: Arc<crate::webhooks::Stats>,
    /// Appends the engine's Prometheus lines (calls, SIP, RTP) to `/metrics`.
    pub engine_metrics: Option<EngineMetricsFn>,
    /// Read-only connections for queries (`None`: read through the writer).
    pub readers: Option<Arc<Readers>>,
    /// The realm SIP users' digest credentials are for (`DIALTONE_SIP_REALM`).
    pub sip_realm: Arc<str>,
    /// The ids of calls as they change (the store's [`Store::on_change`]): the live event
    /// stream's source.
    pub call_feed: tokio::sync::broadcast::Sender<String>,
    /// Running calls' SIP messages and quality figures (before their end stores them).
    pub live: Arc<crate::live::Live>,
    /// Set when a SIGTERM started draining: `/healthz` answers 503 `draining`.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Several nodes on one store: requests about another node's call go to it.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Writes the engine's Prometheus lines.
pub type EngineMetricsFn = Arc<dyn Fn(&mut String) + Send + Sync>;

impl ApiState {
    /// A state with default limits and no engine metrics.
    pub fn new(
        store: Arc<Mutex<Store>>,
        internal_key: Option<String>,
        control: Option<Arc<dyn CallControl>>,
        jwt_secret: Arc<Vec<u8>>,
    ) -> ApiState {
        // Bounded: a stream that falls this far behind is told to resync.
        let (call_feed, _) = tokio::sync::broadcast::channel(1024);
        if let Ok(mut s) = store.lock() {
            s.on_change = Some(call_feed.clone());
        }
        ApiState {
            store,
            internal_key,
            control,
            jwt_secret,
            limits: Arc::new(RateLimits::new(Limits::default())),
            webhook_stats: Arc::default(),
            engine_metrics: None,
            readers: None,
            sip_realm: Arc::from("dialtone"),
            call_feed,
            live: Arc::default(),
            draining: Arc::default(),
            cluster: None,
        }
    }

    /// Hands the engine what `kind` is in the store now (every organization's): after a
    /// change here, or another node's ([`Store::config_changed`], heard by
    /// [`crate::store::listen`]).
    pub fn push_config(&self, kind: Config) -> Result<(), StoreError> {
        let Some(c) = &self.control else { return Ok(()) };
        let s = self.store.lock().map_err(|_| StoreError::Column("the store lock".into()))?;
        match kind {
            Config::Orgs => s.orgs(&Scope::All)?.iter().for_each(|o| c.set_policy(o)),
            Config::SipUsers => c.set_sip_users(s.sip_users(&Scope::All)?),
            Config::Trunks => c.set_trunks(s.trunks(&Scope::All)?),
            Config::Numbers => c.set_numbers(s.numbers(&Scope::All)?),
        }
        Ok(())
    }

    /// `kind` changed through this node's API: its engine is told, and on a shared store
    /// every other node's.
    pub(crate) fn config_changed(&self, kind: Config) {
        if let Err(e) = self.push_config(kind) {
            tracing::warn!(error = %e, ?kind, "cannot hand the engine what changed");
        }
        if let Ok(s) = self.store.lock() {
            s.config_changed(kind);
        }
    }
}
