//! `serve`'s startup: the trunk registration, the store and the HTTP API.

use super::inbox::{Control, Inbox};
use crate::config::Settings;
use dialtone_api::store::{Config, Scope, Writer, DEFAULT_ORG};
use dialtone_sip::ua::Registration;
use dialtone_sip::{Transport, Uri};
use std::net::SocketAddr;
use std::sync::Arc;

/// The registration `DIALTONE_REGISTER=true` keeps with the trunk: AOR
/// `sip:<DIALTONE_TRUNK_USER>@<trunk host>`, Request-URI the trunk's domain (RFC 3261 §10.2).
pub async fn trunk_registration(settings: &Settings) -> anyhow::Result<Registration> {
    let Some(trunk) = settings.trunk.as_deref() else {
        anyhow::bail!("DIALTONE_REGISTER=true needs DIALTONE_TRUNK, the registrar's SIP URI (e.g. sip:sip.example.com)")
    };
    let Some(user) = settings.trunk_user.as_deref() else {
        anyhow::bail!("DIALTONE_REGISTER=true needs DIALTONE_TRUNK_USER (and usually DIALTONE_TRUNK_PASSWORD)")
    };
    let uri = Uri::parse(trunk).map_err(|e| anyhow::anyhow!("DIALTONE_TRUNK {trunk:?}: {e}"))?;
    let Some(sip) = uri.as_sip() else { anyhow::bail!("DIALTONE_TRUNK must be a sip: URI, not {trunk:?}") };
    let (transport, addr) = crate::call::destination_of(trunk).await?;
    let host = sip.host.to_string();
    let hostport = match sip.port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let registrar = match transport {
        Transport::Udp => format!("sip:{hostport}"),
        t => format!("sip:{hostport};transport={}", t.as_str().to_lowercase()),
    };
    Ok(Registration {
        registrar,
        aor: format!("sip:{user}@{host}"),
        dest: dialtone_sip::Destination { transport, addr },
        expires: 3600,
    })
}

/// The inbound perimeter: `DIALTONE_TRUNK_ALLOW` (default loopback), the trunk's servers
/// (`servers`, RFC 3263) and every address the trunk's host resolves to.
pub async fn perimeter(settings: &Settings, servers: &[std::net::IpAddr]) -> dialtone_sip::perimeter::PerimeterConfig {
    use dialtone_sip::perimeter::Cidr;
    let mut p = settings.perimeter.clone();
    p.allow.extend(servers.iter().map(|ip| Cidr::host(*ip)));
    if let Some(sip) = settings.trunk.as_deref().and_then(|t| Uri::parse(t).ok()) {
        if let Some(sip) = sip.as_sip() {
            let port = sip.port.unwrap_or(5060);
            match sip.host.ip() {
                Some(ip) => p.allow.push(Cidr::host(ip)),
                None => match tokio::net::lookup_host((sip.host.to_string(), port)).await {
                    Ok(addrs) => p.allow.extend(addrs.map(|a| Cidr::host(a.ip()))),
                    Err(e) => {
                        tracing::warn!(host = %sip.host, error = %e, "cannot resolve the trunk for the perimeter")
                    }
                },
            }
        }
    }
    let allowed: Vec<String> = p.allow.iter().map(|c| c.to_string()).collect();
    tracing::info!(allow = %allowed.join(","), deny = ?p.deny, block_after = p.block_after,
        block_s = p.block_for.as_secs(), "SIP requests are taken only from these addresses");
    p
}

/// Opens the store under `DIALTONE_DATA_DIR` (closing calls a crash left open) and serves
/// the HTTP API on `DIALTONE_HTTP_LISTEN`, its call commands going into `inbox`. Returns
/// the store's writer thread.
pub async fn start_api(
    settings: &Settings,
    control: Arc<Control>,
    engine_metrics: dialtone_api::http::EngineMetricsFn,
    live: Arc<dialtone_api::live::Live>,
    draining: Arc<std::sync::atomic::AtomicBool>,
    node: super::node::Node,
) -> anyhow::Result<(Writer, Arc<std::sync::Mutex<dialtone_api::store::Store>>)> {
    use dialtone_api::store::{Readers, Store};
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| anyhow::anyhow!("creating DIALTONE_DATA_DIR {}: {e}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("dialtone.db");
    let (mut store, readers, db) = match &settings.database_url {
        Some(url) => {
            let store = Store::open_url(url).map_err(|e| anyhow::anyhow!("opening DIALTONE_DATABASE_URL: {e}"))?;
            (store, Readers::for_url(url), "postgresql".to_string())
        }
        None => {
            let store = Store::open(&path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
            (store, Readers::new(&path), path.display().to_string())
        }
    };
    // On a store of its own every call left open is this node's (whatever it was called);
    // on a shared one, only those of its name.
    if settings.database_url.is_some() {
        store.set_node(&node.id);
    }
    let now_ms = crate::now_ms();
    let closed = store.close_unfinished(now_ms)?;
    store.set_node(&node.id);
    if closed > 0 {
        tracing::warn!(calls = closed, "calls left unfinished by the last run closed as failed (reason restart)");
    }
    if settings.internal_key.is_none() {
        tracing::info!("no DIALTONE_INTERNAL_KEY: the API refuses every protected request");
    }
    // The first admin, from DIALTONE_ADMIN_EMAIL / DIALTONE_ADMIN_PASSWORD.
    if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
        if store.user_by_email(email)?.is_none() {
            let all = dialtone_api::http::PERMISSIONS.iter().map(|p| p.to_string()).collect();
            let user = dialtone_api::store::User {
                id: format!("user_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
                email: email.clone(),
                password_hash: dialtone_api::http::hash_password(password),
                role: "admin".into(),
                permissions: all,
                created_at: now_ms,
                organization_id: DEFAULT_ORG.into(),
            };
            store.insert_user(&user)?;
            tracing::info!(email = %email, "admin user created (the platform's owner, in the default organization)");
        }
    }
    // The default organization's call policy from the settings, when they give one; then
    // every organization's policy goes to the engine.
    if settings.max_concurrent_calls.is_some()
        || settings.max_calls_per_second.is_some()
        || !settings.allowed_destinations.is_empty()
    {
        if let Some(mut org) = store.org(&Scope::All, DEFAULT_ORG)? {
            org.max_concurrent_calls = settings.max_concurrent_calls.or(org.max_concurrent_calls);
            org.max_calls_per_second = settings.max_calls_per_second.or(org.max_calls_per_second);
            if !settings.allowed_destinations.is_empty() {
                org.allowed_destinations = settings.allowed_destinations.clone();
            }
            store.set_org_policy(&Scope::All, &org)?;
        }
    }
    let jwt_secret = Arc::new(match &settings.database_url {
        // Every node signs and checks the same tokens.
        Some(_) if std::env::var("DIALTONE_JWT_SECRET").is_err() => {
            store.shared_setting("jwt_secret", &random_hex(32))?.into_bytes()
        }
        _ => jwt_secret(&settings.data_dir)?,
    });
    let store = Arc::new(std::sync::Mutex::new(store));
    // Every call is kept (inbound ones too) and can be steered; calls go out only through
    // a trunk (without one, create answers 503).
    let control: Arc<dyn dialtone_api::http::CallControl> = control;
    let control = Some(control);
    // SQLite has one writer: the engine's and the API's changes share its connection. On
    // PostgreSQL the engine's writer has a connection of its own, so the API's inserts do not
    // queue behind the engine's batches (each statement there is a round trip).
    let engine_store = match &settings.database_url {
        Some(url) => {
            let mut s = Store::open_url(url).map_err(|e| anyhow::anyhow!("opening DIALTONE_DATABASE_URL: {e}"))?;
            s.set_node(&node.id);
            Arc::new(std::sync::Mutex::new(s))
        }
        None => store.clone(),
    };
    let writer = Writer::spawn(engine_store.clone()).map_err(|e| anyhow::anyhow!("starting the store writer: {e}"))?;
    let webhooks_wake = Arc::new(tokio::sync::Notify::new());
    for s in [&store, &engine_store] {
        if let Ok(mut s) = s.lock() {
            s.on_enqueue = Some(webhooks_wake.clone());
        }
    }
    let mut state =
        dialtone_api::http::ApiState::new(store.clone(), settings.internal_key.clone(), control, jwt_secret);
    // The engine is handed every organization's policy, SIP users, trunks and numbers.
    for kind in Config::ALL {
        state.push_config(kind)?;
    }
    if let Ok(mut s) = engine_store.lock() {
        s.on_change = Some(state.call_feed.clone());
    }
    use dialtone_api::http::{Limits, Rate, RateLimits};
    state.limits = Arc::new(RateLimits::new(Limits {
        per_key: Rate { per_s: settings.rate_limit, burst: 2.0 * settings.rate_limit },
        per_org: Rate { per_s: settings.rate_limit_org, burst: 2.0 * settings.rate_limit_org },
        per_addr: Rate { per_s: settings.rate_limit_addr, burst: 2.0 * settings.rate_limit_addr },
        login: Rate { per_s: settings.login_limit / 60.0, burst: settings.login_limit.max(1.0) },
    }));
    state.sip_realm = Arc::from(settings.sip_realm.as_str());
    state.readers = Some(Arc::new(readers));
    if let Some(url) = &settings.database_url {
        let fresh = random_hex(32);
        let token =
            store.lock().map_err(|_| anyhow::anyhow!("the store lock"))?.shared_setting("node_token", &fresh)?;
        state.cluster = Some(Arc::new(dialtone_api::cluster::Cluster::new(&node.id, &token)));
        // The live event stream hears the other nodes' calls too, and the engine what
        // changed through their APIs.
        let told = state.clone();
        let reload = move |kind| {
            if let Err(e) = told.push_config(kind) {
                tracing::warn!(error = %e, ?kind, "cannot hand the engine what another node changed");
            }
        };
        dialtone_api::store::listen(url, &node.id, state.call_feed.clone(), reload)?;
    }
    node.spawn(store.clone());
    let kept = store.clone();
    state.engine_metrics = Some(engine_metrics);
    state.live = live;
    state.draining = draining;
    dialtone_api::webhooks::spawn(store, webhooks_wake, settings.webhook_retry_ms as i64, state.webhook_stats.clone());
    let listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding the HTTP API on {}: {e}", settings.http_listen))?;
    tracing::info!(http = %listener.local_addr()?, db = %db, "HTTP API listening");
    let app = dialtone_api::http::router(state);
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    Ok((writer, kept))
}

/// Looks the trunk up again as its DNS records expire (their TTL, between 1 s and an hour),
/// and hands the engine its servers when they change (RFC 3263 §4: results are cached per
/// TTL). `servers` is what the first lookup gave.
pub fn refresh_trunk(settings: &Settings, inbox: Inbox, mut servers: Vec<dialtone_sip::Destination>) {
    let Some(trunk) = settings.trunk.clone().filter(|_| trunk_name(settings).is_some()) else { return };
    tokio::spawn(async move {
        let mut wait = std::time::Duration::from_secs(1);
        loop {
            if let Ok(dns) = crate::dns::global() {
                match dns.targets(&trunk).await {
                    Ok(t) => {
                        wait = t.ttl.unwrap_or(std::time::Duration::from_secs(300));
                        if !t.targets.is_empty() && t.targets != servers {
                            let shown: Vec<String> = t.targets.iter().map(|d| d.to_string()).collect();
                            tracing::info!(trunk, servers = %shown.join(", "), "trunk servers changed");
                            servers = t.targets.clone();
                            inbox.send(super::inbox::Input::Command(crate::engine::Command::Trunk(t.targets), None));
                        }
                    }
                    Err(e) => tracing::warn!(trunk, error = %e, "cannot look the trunk up again; keeping its servers"),
                }
            }
            tokio::time::sleep(wait.clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(3600)))
                .await;
        }
    });
}

/// The trunk's host name (not an IP address), which its TLS certificate must carry.
pub fn trunk_name(settings: &Settings) -> Option<String> {
    let uri = Uri::parse(settings.trunk.as_deref()?).ok()?;
    let sip = uri.as_sip()?;
    sip.host.ip().is_none().then(|| sip.host.to_string())
}

/// The trunk's host\[:port\] from `DIALTONE_TRUNK`, for Request-URIs and From.
pub fn trunk_host(settings: &Settings) -> Option<String> {
    let uri = Uri::parse(settings.trunk.as_deref()?).ok()?;
    let sip = uri.as_sip()?;
    Some(match sip.port {
        Some(p) => format!("{}:{p}", sip.host),
        None => sip.host.to_string(),
    })
}

/// `bytes` random bytes in hex: a secret the nodes of a cluster share (the first to start
/// stores it).
fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// The JWT signing key: `DIALTONE_JWT_SECRET`, else 32 random bytes generated once and kept
/// in `DATA_DIR/jwt.secret` (mode 0600), so tokens survive a restart.
fn jwt_secret(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(s) = std::env::var("DIALTONE_JWT_SECRET") {
        if s.len() >= 32 {
            return Ok(s.into_bytes());
        }
        anyhow::bail!("DIALTONE_JWT_SECRET must be at least 32 characters");
    }
    let path = data_dir.join("jwt.secret");
    if let Ok(b) = std::fs::read(&path) {
        if b.len() >= 32 {
            return Ok(b);
        }
    }
    let secret: [u8; 32] = rand::random();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, &secret)?;
    Ok(secret.to_vec())
}

/// The TOML file's `[[trunk]]`s as the rows the API would store (the platform's: no
/// organization).
pub fn trunk_rows(tables: &[crate::config::TrunkTable]) -> Vec<dialtone_api::store::TrunkRow> {
    tables
        .iter()
        .map(|t| dialtone_api::store::TrunkRow {
            id: t.name.clone(),
            organization_id: String::new(),
            name: t.name.clone(),
            uri: t.uri.clone(),
            username: t.username.clone(),
            password: t.password.clone(),
            allowed_cidrs: t.allowed_cidrs.clone(),
            prefixes: t.prefixes.clone(),
            priority: t.priority.unwrap_or(100),
            max_concurrent_calls: t.max_concurrent_calls,
            max_calls_per_second: t.max_calls_per_second,
            codecs: t.codecs.clone(),
            srtp: t.srtp.clone(),
            asserted_identity: t.asserted_identity,
            privacy: t.privacy,
            options_interval: t.options_interval,
            created_at: 0,
            register: t.register,
        })
        .collect()
}
