//! `dialtone serve`: the driver around the call [`Engine`]. The SIP [`Driver`] owns the
//! sockets and the clock and feeds the UA; this module passes the UA's events, the
//! inbox's commands and media reports, and the timers to the engine, and has
//! [`effects`] carry out what the engine asks.

mod effects;
mod inbox;
mod node;
mod startup;
mod trunks;

use crate::config::{Inbound, Settings};
use crate::driver::{App, Driver};
use crate::engine::{self, Engine, Event};
use crate::metrics::EngineMetrics;
use dialtone_media::player::Prompt;
use dialtone_sip::ua::{UaEvent, UserAgent};
use effects::Effects;
use inbox::{Inbox, Input};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The application the SIP driver runs: the engine, what carries out its actions, and
/// the status line.
pub struct ServeApp {
    engine: Engine,
    effects: Effects,
    inputs: mpsc::UnboundedReceiver<Input>,
    next_command: u64,
    /// Figures for `/metrics`.
    metrics: Arc<EngineMetrics>,
    next_report: Instant,
    reported: (u64, u64),
    reported_media: String,
    /// How long a SIGTERM's drain waits for the live calls.
    drain_timeout: Duration,
}

impl App for ServeApp {
    fn on_event(&mut self, ev: UaEvent, ua: &mut UserAgent, now: Instant) {
        self.feed(now, Event::Sip(ev), ua);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.engine.poll_timeout().map_or(self.next_report, |t| t.min(self.next_report)))
    }

    fn on_wake(&mut self, ua: &mut UserAgent, now: Instant) {
        self.pump(ua, now);
    }

    fn on_interrupt(&mut self, ua: &mut UserAgent, now: Instant) {
        self.feed(now, Event::Shutdown, ua);
    }

    fn on_terminate(&mut self, ua: &mut UserAgent, now: Instant) -> bool {
        self.feed(now, Event::Drain(self.drain_timeout), ua);
        true
    }

    fn finished(&self) -> bool {
        self.engine.finished(Instant::now())
    }

    fn after_turn(&mut self, ua: &UserAgent) {
        self.publish(ua);
    }

    fn on_timeout(&mut self, ua: &mut UserAgent, now: Instant) {
        self.engine.handle_timeout(now, ua);
        self.drain(ua, now);
        if now >= self.next_report {
            self.report(ua, now);
        }
    }
}

impl ServeApp {
    /// One input to the engine, then everything it asks for.
    fn feed(&mut self, now: Instant, ev: Event, ua: &mut UserAgent) {
        self.engine.handle(now, ev, ua);
        self.drain(ua, now);
    }

    /// Carries out the engine's actions; a port bound (or busy) goes straight back in.
    fn drain(&mut self, ua: &mut UserAgent, now: Instant) {
        while let Some(action) = self.engine.poll_action() {
            if let Some(ev) = self.effects.carry(action) {
                self.engine.handle(now, ev, ua);
            }
        }
        self.publish(ua);
    }

    /// The figures for `/metrics`: a few atomic stores.
    fn publish(&mut self, ua: &UserAgent) {
        if let Some(status) = self.engine.trunk_status_changed() {
            if let Ok(mut s) = self.metrics.trunks.lock() {
                *s = status;
            }
        }
        let perimeter = ua.perimeter().map(|p| p.stats()).unwrap_or_default();
        self.metrics.publish(&self.engine.counters(), ua.call_count(), ua.dropped, perimeter);
    }

    /// Feeds everything waiting in the inbox.
    fn pump(&mut self, ua: &mut UserAgent, now: Instant) {
        while let Ok(input) = self.inputs.try_recv() {
            let ev = match input {
                Input::Command(cmd, reply) => {
                    self.next_command += 1;
                    if let Some(tx) = reply {
                        self.effects.replies.insert(self.next_command, tx);
                    }
                    Event::Command(self.next_command, cmd)
                }
                Input::Media { call, api_id, event } => Event::Media { call, api_id, event },
                Input::AgentHangup(call, why) => Event::AgentHangup(call, why),
                Input::Decided(call, answer) => Event::Decided(call, answer),
            };
            self.feed(now, ev, ua);
        }
    }

    /// The status line, every 10 s when something changed.
    fn report(&mut self, ua: &UserAgent, now: Instant) {
        self.next_report = now + Duration::from_secs(10);
        let c = self.engine.counters();
        if (c.offered, c.completed) != self.reported {
            self.reported = (c.offered, c.completed);
            tracing::info!(
                active = ua.call_count(),
                offered = c.offered,
                answered = c.answered,
                completed = c.completed,
                cancelled = c.cancelled,
                refused = c.refused,
                failed = c.failed,
                dropped = ua.dropped,
                "calls"
            );
        }
        let media = self.effects.totals.line();
        if media != self.reported_media {
            tracing::info!("media {media}");
            self.reported_media = media;
        }
    }
}

/// Decodes the `play:` WAV for both call rates; an unreadable file stops `serve`.
fn load_prompts(inbound: &Inbound) -> anyhow::Result<Option<(Arc<Prompt>, Arc<Prompt>)>> {
    let Inbound::Play(path) = inbound else { return Ok(None) };
    let (p8, p16) = (Prompt::load(path, 8000)?, Prompt::load(path, 16_000)?);
    tracing::info!(path = %path.display(), seconds = p8.duration().as_secs_f64(), "inbound calls hear this prompt");
    Ok(Some((Arc::new(p8), Arc::new(p16))))
}

/// Runs `serve` until interrupted.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let sockets = crate::bind_sockets(&settings).await?;
    let bound = sockets.local_addr();
    let tls_bound = sockets.tls_addr();
    let ip = crate::advertised_ip(bound.ip(), settings.sip_advertise, None);
    crate::dns::use_nameserver(settings.dns)?;
    // Every server of the trunk, in order (RFC 3263); the first is used, the others on failure.
    let mut trunk_targets = match settings.trunk.as_deref() {
        Some(trunk) => match crate::call::targets_of(trunk).await {
            Ok(t) => {
                let shown: Vec<String> = t.iter().map(|d| d.to_string()).collect();
                tracing::info!(trunk, servers = %shown.join(", "), "trunk resolved");
                t
            }
            Err(e) => {
                tracing::warn!(trunk, error = %e, "cannot resolve DIALTONE_TRUNK");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let trunk = (!trunk_targets.is_empty()).then(|| trunk_targets.remove(0));
    let trunk_alternates = trunk_targets;
    let tls = crate::tls::Client::new(settings.tls_ca.as_deref())?;
    // The TOML file's `[[trunk]]`s: the platform's, besides `default`.
    let (settings_trunks, ranges) = trunks::resolve(startup::trunk_rows(&settings.trunks), Some(&tls)).await;
    let settings_trunks: Vec<engine::Trunk> =
        settings_trunks.into_iter().map(|t| engine::Trunk { org: None, id: t.name.clone(), ..t }).collect();
    let servers: Vec<std::net::IpAddr> = trunk
        .iter()
        .chain(&trunk_alternates)
        .chain(settings_trunks.iter().flat_map(|t| &t.servers))
        .map(|d| d.addr.ip())
        .collect();
    let mut perimeter = startup::perimeter(&settings, &servers).await;
    perimeter.allow.extend(ranges);
    let mut ua = crate::user_agent(&settings, ip, bound.port(), tls_bound.map(|a| a.port()));
    ua = ua.with_perimeter(perimeter);
    // Behind NAT without a configured public address, the registrar tells us ours.
    ua.learn_address(settings.sip_advertise.is_none());
    tracing::info!(
        sip = %bound, advertised = %ip, inbound = ?settings.inbound,
        rtp = ?settings.rtp_ports, "dialtone serving SIP on UDP and TCP"
    );
    let registration = match settings.register {
        true => Some(startup::trunk_registration(&settings).await?),
        false => None,
    };
    let mut driver = Driver::new(ua, sockets, settings.sip_trace);
    if let Some(host) = startup::trunk_name(&settings) {
        // RFC 5922 §4: every server of the trunk answers for the trunk's domain.
        for t in trunk.iter().chain(&trunk_alternates) {
            tls.name(t.addr, &host);
        }
    }
    driver.set_tls_client(tls.clone());
    if let Some(a) = tls_bound {
        tracing::info!(tls = %a, "SIP over TLS");
    }
    if let Some(reg) = registration {
        tracing::info!(aor = %reg.aor, registrar = %reg.registrar, to = %reg.dest.addr, "registering");
        driver.ua().register(reg, Instant::now())?;
    }
    let prompts = load_prompts(&settings.inbound)?;
    let (inbox, inputs) = Inbox::new(driver.waker());
    startup::refresh_trunk(&settings, inbox.clone(), trunk.iter().chain(&trunk_alternates).copied().collect());
    let hangups = {
        let inbox = inbox.clone();
        crate::agent::Hangups::to(move |call, why| inbox.send(Input::AgentHangup(dialtone_sip::ua::CallRef(call), why)))
    };
    let inbound_agent = match &settings.inbound {
        Inbound::Agent(url) => Some(url.as_str()),
        _ => None,
    };
    let bridges = crate::agent::Serving::new(inbound_agent, hangups)?;
    let trunk_host = startup::trunk_host(&settings).filter(|_| trunk.is_some());
    let metrics = Arc::new(EngineMetrics::default());
    let totals = Arc::new(crate::media_io::Totals::default());
    let render = {
        let (metrics, totals) = (metrics.clone(), totals.clone());
        Arc::new(move |out: &mut String| metrics.render(&totals, out))
    };
    let control = Arc::new(inbox::Control::new(
        inbox.clone(),
        trunk_host.is_some() || !settings.trunks.is_empty(),
        settings.sip_realm.clone(),
        Some(tls),
        metrics.trunks.clone(),
    ));
    // Every call's SIP messages, for its ladder.
    let live = Arc::new(dialtone_api::live::Live::default());
    driver.set_wire_tap({
        let live = live.clone();
        Arc::new(move |sent, peer, data| {
            let dir = if sent { dialtone_api::live::Dir::Sent } else { dialtone_api::live::Dir::Received };
            let transport = match peer.transport {
                dialtone_sip::Transport::Udp => "udp",
                dialtone_sip::Transport::Tcp => "tcp",
                _ => "tls",
            };
            live.sip(dir, transport, peer.addr, data, crate::now_ms())
        })
    });
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut node = node::Node::new(&settings, {
        let metrics = metrics.clone();
        Arc::new(move || metrics.active())
    });
    node.draining = draining.clone();
    node.inbox = Some(inbox.clone());
    let node_id = node.id.clone();
    let (writer, store) = startup::start_api(&settings, control, render, live.clone(), draining.clone(), node).await?;
    let recordings = settings.data_dir.join("recordings");
    let mut effects = Effects::new(bound.ip(), recordings, bridges, writer, inbox);
    effects.live = live;
    effects.draining = draining;
    effects.prompts = prompts;
    effects.totals = totals;
    let engine = Engine::new(engine::Config {
        inbound: settings.inbound.clone(),
        media_ip: settings.media_advertise.unwrap_or(ip),
        learn_media: settings.sip_advertise.is_none() && settings.media_advertise.is_none(),
        rtp_ports: settings.rtp_ports,
        answer_after: settings.answer_after,
        record_all: settings.record,
        store: true,
        trunk,
        trunk_alternates: trunk_alternates.clone(),
        trunk_host,
        trunk_user: settings.trunk_user.clone(),
        rtp_timeout: (settings.rtp_timeout_s > 0).then(|| Duration::from_secs(settings.rtp_timeout_s)),
        seed: rand::random(),
        refer: settings.refer.clone(),
        srtp: settings.srtp,
        srtp_any_transport: settings.srtp_any_transport,
        max_calls: settings.max_calls,
        trunks: settings_trunks,
        inbound_explicit: settings.inbound_explicit,
    });
    let mut app = ServeApp {
        engine,
        effects,
        inputs,
        next_command: 0,
        metrics,
        next_report: Instant::now() + Duration::from_secs(10),
        reported: (0, 0),
        reported_media: String::new(),
        drain_timeout: Duration::from_secs(settings.drain_timeout_s),
    };
    app.engine.start(Instant::now(), driver.ua());
    let r = driver.run(&mut app).await;
    app.effects.stop_all();
    // The media tasks end on their next turn (RTCP BYE, recordings handed to the writer);
    // wait, within reason, until every recording has its final header and is stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.pump(driver.ua(), Instant::now());
        let busy = app.effects.totals.running.load(std::sync::atomic::Ordering::Acquire) > 0
            || crate::recorder::open_recordings() > 0;
        if !busy || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.pump(driver.ua(), Instant::now());
    // Calls that ended just now: their SIP messages and quality now, not 2 s later.
    app.effects.keep_details_now();
    // The last status changes and recordings reach the database before the process ends.
    if !app.effects.writer.flush(Duration::from_secs(5)) {
        tracing::warn!("the store writer did not finish in 5 s");
    }
    node::Node::leave(&node_id, &store);
    tracing::info!("media {}", app.effects.totals.line());
    r
}
