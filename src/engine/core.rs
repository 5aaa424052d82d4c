//! The engine itself: its calls, the dispatch of inputs, its timers, and what every call
//! shares (ports, media start, persistence, the index by API id).

use super::call::{AgentPlan, Call, CallId, Negotiation, Opening, Origin, RecordAs, SourceSpec};
use super::io::{Action, Config, Counters, Event, MediaEvent, MediaStart, Persist};
use super::org::{OrgState, Permits};
use crate::config::Inbound;
use crate::ports::PortPool;
use dialtone_api::store::{CallStatus, RecordingState};
use dialtone_media::session::SessionConfig;
use dialtone_sip::ua::UserAgent;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The call engine.
pub struct Engine {
    pub(super) cfg: Config,
    pub(super) calls: HashMap<CallId, Call>,
    /// The API's id → the call.
    pub(super) by_api: HashMap<String, CallId>,
    pub(super) ports: PortPool,
    /// Ports being bound, and what follows; with the attempts made.
    pub(super) opening: HashMap<u16, (Opening, u8)>,
    /// Inbound calls' answer times, in order (the delay is constant).
    pub(super) answer_at: VecDeque<(Instant, CallId)>,
    /// Calls' own deadlines ([`Call::deadline`]); an entry the call no longer holds is stale.
    pub(super) deadlines: BTreeSet<(Instant, CallId)>,
    pub(super) actions: VecDeque<Action>,
    pub(super) counters: Counters,
    /// Shutting down: stop once every call is gone and the registration removed, or then.
    pub(super) stop_by: Option<Instant>,
    pub(super) unregistering: bool,
    /// Draining since a SIGTERM: no new calls; the live ones end by this time at the latest.
    pub(super) draining: Option<Instant>,
    /// Cut off from the shared store ([`super::Command::Fence`]): no new calls for now.
    pub(super) fenced: bool,
    /// Calls placed for a REFER not yet answered (most of the time none).
    pub(super) transfers: usize,
    /// A counter for SDP session ids and SSRC seeds.
    pub(super) sequence: u64,
    /// Organizations' policies and standing.
    pub(super) orgs: HashMap<String, OrgState>,
    /// Permits handed out by [`Engine::admit`], not yet used.
    pub(super) permits: Permits,
    /// The trunks and their standing.
    pub(super) trunks: super::trunk::Trunks,
    /// OPTIONS probes out: probe → trunk.
    pub(super) probes: HashMap<u64, String>,
    /// The numbers and what their calls do.
    pub(super) numbers: Vec<dialtone_api::store::NumberRow>,
    /// The first input was handled (the settings' trunks are registered and probed).
    pub(super) started: bool,
    /// What each trunk's registration was made with.
    pub(super) registered_as: HashMap<String, (String, dialtone_sip::auth::Credentials)>,
}

/// Bind attempts before a call is refused for want of a port.
const BIND_TRIES: u8 = 4;

impl Engine {
    /// An engine with no calls.
    pub fn new(cfg: Config) -> Engine {
        let ports = PortPool::new(cfg.rtp_ports.0, cfg.rtp_ports.1);
        let mut trunks = super::trunk::Trunks::default();
        let mut settings = Vec::new();
        if let (Some(dest), Some(host)) = (cfg.trunk, &cfg.trunk_host) {
            // `DIALTONE_TRUNK*`: the platform's trunk named `default`, every number's.
            let servers = std::iter::once(dest).chain(cfg.trunk_alternates.iter().copied()).collect();
            let mut t = super::trunk::Trunk::new("default", &format!("sip:{host}"), host, servers);
            t.from_user = cfg.trunk_user.clone();
            settings.push(t);
        }
        settings.extend(cfg.trunks.iter().cloned());
        trunks.replace(false, settings);
        Engine {
            cfg,
            calls: HashMap::new(),
            by_api: HashMap::new(),
            ports,
            opening: HashMap::new(),
            answer_at: VecDeque::new(),
            deadlines: BTreeSet::new(),
            actions: VecDeque::new(),
            counters: Counters::default(),
            stop_by: None,
            unregistering: false,
            draining: None,
            fenced: false,
            transfers: 0,
            sequence: 0,
            orgs: HashMap::new(),
            permits: Permits::default(),
            trunks,
            probes: HashMap::new(),
            numbers: Vec::new(),
            started: false,
            registered_as: HashMap::new(),
        }
    }

    /// Starts what the settings' trunks ask for: their registrations and first OPTIONS
    /// (done by the first input otherwise).
    pub fn start(&mut self, now: Instant, ua: &mut UserAgent) {
        if !self.started {
            self.started = true;
            self.sync_registrations(now, ua);
            self.probe_trunks(now, ua);
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, ev: Event, ua: &mut UserAgent) {
        self.start(now, ua);
        match ev {
            Event::Sip(ev) => self.on_sip(now, ev, ua),
            Event::PortOpened(port) => self.port_opened(now, port, ua),
            Event::PortBusy(port) => self.port_busy(now, port, ua),
            Event::Media { call, api_id, event } => self.on_media(now, call, api_id, event, ua),
            Event::AgentHangup(call, why) => self.hang_up_for(now, call, why, ua),
            Event::Command(id, cmd) => {
                let r = self.command(now, cmd, ua);
                if let Some(r) = r {
                    self.actions.push_back(Action::Reply(id, r));
                }
            }
            Event::Shutdown => self.shutdown(now, ua),
            Event::Drain(timeout) => self.drain(now, timeout, ua),
            Event::Decided(call, answer) => self.decided(now, call, answer, ua),
        }
        self.drained(now, ua);
    }

    /// The driver's next chore, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Engine::handle_timeout`] is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let answer = self.answer_at.front().map(|(t, _)| *t);
        let deadline = self.deadlines.first().map(|(t, _)| *t);
        let drain = self.draining.filter(|_| self.stop_by.is_none());
        [answer, deadline, self.stop_by, drain, self.trunks.next_probe()].into_iter().flatten().min()
    }

    /// Answers the inbound calls whose time has come; acts on calls' deadlines.
    pub fn handle_timeout(&mut self, now: Instant, ua: &mut UserAgent) {
        if self.stop_by.is_none() && self.draining.is_some_and(|until| until <= now) {
            tracing::warn!(calls = self.calls.len(), "drain timeout: hanging up the calls left");
            for call in self.calls.keys().copied().collect::<Vec<_>>() {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ended_why.get_or_insert_with(|| "drain timeout".into());
                }
            }
            self.shutdown(now, ua);
        }
        if self.trunks.next_probe().is_some_and(|t| t <= now) {
            self.probe_trunks(now, ua);
        }
        while let Some(&(at, call)) = self.deadlines.first().filter(|(at, _)| *at <= now) {
            self.deadlines.pop_first();
            match self.calls.get_mut(&call) {
                Some(c) if c.deadline == Some(at) => c.deadline = None,
                _ => continue,
            }
            if self.calls.get(&call).is_some_and(|c| c.dial.is_some()) {
                self.dial_deadline(now, call, ua);
            } else if self.calls.get(&call).is_some_and(|c| matches!(c.phase, super::call::Phase::Asking { .. })) {
                self.decided(now, call, Err("no answer in time".into()), ua);
            } else {
                self.api_deadline(now, call, ua);
            }
        }
        while self.answer_at.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, call)) = self.answer_at.pop_front() {
                self.answer(now, call, ua);
            }
        }
    }

    /// Shut down and nothing is left to wait for.
    pub fn finished(&self, now: Instant) -> bool {
        self.stop_by.is_some_and(|s| (self.calls.is_empty() && !self.unregistering) || now >= s)
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The calls (for the driver's status line and tests).
    pub fn calls(&self) -> &HashMap<CallId, Call> {
        &self.calls
    }

    /// The call the API knows as `id`.
    pub fn by_api_id(&self, id: &str) -> Option<CallId> {
        self.by_api.get(id).copied()
    }

    /// Every trunk's status, when it changed since the last time asked.
    pub fn trunk_status_changed(&mut self) -> Option<Vec<dialtone_api::http::TrunkStatus>> {
        self.trunks.take_changed()
    }

    /// RTP ports free.
    pub fn free_ports(&self) -> usize {
        self.ports.available()
    }

    pub(super) fn on_media(
        &mut self,
        now: Instant,
        call: CallId,
        api_id: Option<String>,
        ev: MediaEvent,
        ua: &mut UserAgent,
    ) {
        if let MediaEvent::RtpTimeout(after) = ev {
            tracing::warn!(%call, seconds = after.as_secs(), "no media from the peer: hanging up");
            let why = format!("rtp timeout ({} s without media)", after.as_secs());
            return self.hang_up_for(now, call, why, ua);
        }
        if let MediaEvent::SourceFinished = ev {
            return self.announced(now, call, ua);
        }
        if let MediaEvent::AnsweredBy(who, after_ms) = &ev {
            tracing::info!(%call, answered_by = %who, after_ms, "answering-machine detection");
            self.actions.push_back(Action::AgentAnsweredBy(call, who.clone(), *after_ms));
        }
        let Some(id) = api_id else { return };
        let recording = |state, path| Persist::Recording { id: id.clone(), state, path };
        let p = match ev {
            MediaEvent::Dtmf(digit) => Persist::Dtmf { id: id.clone(), digit },
            MediaEvent::RecordingStarted(path) => recording(RecordingState::Recording, Some(path)),
            MediaEvent::RecordingDone(path, Ok(frames)) => {
                tracing::info!(id = %id, path, frames, "recording ready");
                recording(RecordingState::Ready, None)
            }
            MediaEvent::RecordingDone(path, Err(e)) => {
                tracing::warn!(id = %id, path, error = %e, "recording failed");
                recording(RecordingState::Failed, None)
            }
            MediaEvent::AnsweredBy(answered_by, after_ms) => {
                Persist::AnsweredBy { id: id.clone(), answered_by, after_ms }
            }
            MediaEvent::Turns(turns) => Persist::Turns { id: id.clone(), turns },
            MediaEvent::RtpTimeout(_) | MediaEvent::SourceFinished => return,
        };
        self.actions.push_back(Action::Persist(p));
    }

    /// Hangs up a call we decided to end, keeping why for its record.
    pub(super) fn hang_up_for(&mut self, now: Instant, call: CallId, why: String, ua: &mut UserAgent) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.ended_why = Some(why);
            let _ = ua.hangup(call, now);
        }
    }

    /// SIGTERM: stop taking calls (the UA answers new INVITEs and OPTIONS 503, the API
    /// refuses new calls, the registrations are removed) and let the live calls finish,
    /// for `timeout` at most; then [`Engine::shutdown`].
    pub(super) fn drain(&mut self, now: Instant, timeout: Duration, ua: &mut UserAgent) {
        if self.draining.is_some() || self.stop_by.is_some() {
            // A second signal: end the calls now.
            return self.shutdown(now, ua);
        }
        tracing::info!(calls = self.calls.len(), timeout_s = timeout.as_secs(), "draining");
        self.draining = Some(now + timeout);
        ua.set_draining(Some(timeout.as_secs().clamp(1, u32::MAX as u64) as u32));
        self.unregistering = ua.unregister(now);
        self.actions.push_back(Action::Draining);
    }

    /// Cut off from the shared store, or back ([`super::Command::Fence`]).
    pub(super) fn fence(&mut self, on: bool, ua: &mut UserAgent) {
        if on == self.fenced {
            return;
        }
        self.fenced = on;
        if self.draining.is_none() {
            // Retry-After: a few heartbeats.
            ua.set_draining(on.then_some(5));
        }
        if on {
            tracing::error!(calls = self.calls.len(), "cut off from the shared store: taking no new calls");
        } else {
            tracing::info!("the shared store answers again: taking calls");
        }
    }

    /// Draining and no call is left: stop.
    fn drained(&mut self, now: Instant, ua: &mut UserAgent) {
        if self.draining.is_some() && self.stop_by.is_none() && self.calls.is_empty() && self.opening.is_empty() {
            tracing::info!("drained: no call left");
            self.shutdown(now, ua);
        }
    }

    /// Whether a SIGTERM started draining.
    pub fn draining(&self) -> bool {
        self.draining.is_some()
    }

    pub(super) fn shutdown(&mut self, now: Instant, ua: &mut UserAgent) {
        // Hang up every call, then give the BYEs a moment to be answered.
        for call in self.calls.keys().copied().collect::<Vec<_>>() {
            let _ = ua.hangup(call, now);
        }
        // And remove our registration (bounded: a registrar that does not answer does
        // not hold the exit up beyond the BYEs' wait); a drain already did.
        self.unregistering |= ua.unregister(now);
        let wait = if !self.calls.is_empty() || self.unregistering { 2000 } else { 0 };
        self.stop_by = Some(now + Duration::from_millis(wait));
    }

    /// Takes a free port and asks the driver to bind it for `then`.
    pub(super) fn open_port(&mut self, then: Opening, tries: u8) -> Result<(), Opening> {
        match self.ports.take() {
            Some(port) => {
                self.opening.insert(port, (then, tries + 1));
                self.actions.push_back(Action::OpenPort(port));
                Ok(())
            }
            None => Err(then),
        }
    }

    pub(super) fn port_opened(&mut self, now: Instant, port: u16, ua: &mut UserAgent) {
        let Some((then, _)) = self.opening.remove(&port) else { return };
        match then {
            Opening::Answer { call, offer } => self.answer_offer(now, call, port, offer, ua),
            Opening::Place(p) => self.place(now, *p, port, ua),
            Opening::Transfer(t) => self.place_transfer(now, *t, port, ua),
            Opening::Dial(d) => self.place_dial(now, *d, port, ua),
        }
    }

    pub(super) fn port_busy(&mut self, now: Instant, port: u16, ua: &mut UserAgent) {
        let Some((then, tries)) = self.opening.remove(&port) else { return };
        tracing::debug!(port, "RTP port busy");
        self.ports.give_back(port);
        let then = if tries < BIND_TRIES {
            match self.open_port(then, tries) {
                Ok(()) => return,
                Err(then) => then,
            }
        } else {
            then
        };
        tracing::warn!(call = %then.label(), "no free RTP port");
        self.no_port(now, then, ua);
    }

    /// A seed for a call's media, different for every call.
    pub(super) fn next_seed(&mut self) -> u64 {
        self.sequence += 1;
        self.cfg.seed ^ self.sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The SDES-SRTP side of an offer or answer on signalling over `transport`: none with
    /// SRTP off; fresh keys when they may travel there (TLS, or
    /// `DIALTONE_SRTP_ANY_TRANSPORT`); else none if SRTP is optional, and `Err` if it is
    /// mandatory (the keys would go in the clear).
    pub(super) fn sdes_for(
        &self,
        transport: dialtone_sip::Transport,
    ) -> Result<Option<dialtone_sip::sdp::sdes::Sdes>, &'static str> {
        self.sdes_with(self.cfg.srtp, transport)
    }

    /// [`Engine::sdes_for`] with SRTP `mode` (a trunk's own policy) instead of `DIALTONE_SRTP`.
    pub(super) fn sdes_with(
        &self,
        mode: Option<dialtone_sip::sdp::sdes::SrtpMode>,
        transport: dialtone_sip::Transport,
    ) -> Result<Option<dialtone_sip::sdp::sdes::Sdes>, &'static str> {
        use dialtone_sip::sdp::sdes::SrtpMode;
        let Some(mode) = mode else { return Ok(None) };
        if transport == dialtone_sip::Transport::Tls || self.cfg.srtp_any_transport {
            return Ok(Some(crate::session::sdes(mode)));
        }
        match mode {
            SrtpMode::Optional => Ok(None),
            SrtpMode::Mandatory => {
                Err("SRTP is mandatory but the signalling is not TLS, so the keys would go in the clear \
                 (DIALTONE_SRTP_ANY_TRANSPORT=true sends them anyway)")
            }
        }
    }

    /// The media settings offer/answer settled.
    pub(super) fn media_config(
        &mut self,
        call: CallId,
        n: &dialtone_sip::sdp::Negotiated,
    ) -> Result<SessionConfig, String> {
        let seed = self.next_seed();
        crate::session::session_config(n, seed, &format!("dialtone-{}", call.0))
    }

    /// Starts the media of an answered call whose offer/answer is settled.
    pub(super) fn start_media(&mut self, call: CallId) {
        let inbound_agent = matches!(self.cfg.inbound, Inbound::Agent(_));
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(port) = c.port.filter(|_| matches!(c.sdp, Negotiation::Settled(_))) else { return };
        let Negotiation::Settled(config) = std::mem::replace(&mut c.sdp, Negotiation::Running) else { return };
        // `DIALTONE_INBOUND` is for the calls that come in (and the transfers they ask
        // for): a call the API placed gets its own agent or silence, never the echo.
        let api_placed = c.origin == Origin::Api;
        if let Some(d) = &c.dial {
            let (source, record) = (d.source.clone(), d.record.clone().map(RecordAs::Path));
            let start = MediaStart { call, port, api_id: None, config: *config, source, record, rtp_timeout: None };
            self.actions.push_back(Action::StartMedia(Box::new(start)));
            return;
        }
        let agent = c.agent.take().filter(|a| a.url.is_some() || (inbound_agent && !api_placed));
        let decided = c.answer_with.take();
        let source = match (agent, &self.cfg.inbound) {
            // The number (or its webhook) decided what the call hears.
            _ if decided.is_some() => match decided {
                Some(SourceSpec::Agent(mut plan)) => {
                    if let Some(id) = &c.api_id {
                        plan.call_id = id.clone();
                    }
                    SourceSpec::Agent(plan)
                }
                Some(other) => other,
                None => SourceSpec::Silence,
            },
            (Some(mut plan), _) => {
                if let Some(id) = &c.api_id {
                    plan.call_id = id.clone();
                }
                SourceSpec::Agent(plan)
            }
            (None, _) if api_placed => SourceSpec::Silence,
            (None, Inbound::Play(_)) => SourceSpec::Prompt,
            (None, Inbound::Echo) => SourceSpec::Echo,
            (None, Inbound::Agent(_)) => SourceSpec::Agent(AgentPlan {
                call_id: c.api_id.clone().unwrap_or_else(|| format!("call-{}", call.0)),
                ..AgentPlan::default()
            }),
            _ => SourceSpec::Silence,
        };
        let record = if self.cfg.record_all || (self.cfg.store && c.record) {
            Some(match &c.api_id {
                Some(id) => RecordAs::Api(id.clone()),
                None => RecordAs::Anonymous(call.0),
            })
        } else {
            None
        };
        let api_id = c.api_id.clone();
        let rtp_timeout = self.cfg.rtp_timeout;
        let start = MediaStart { call, port, api_id, config: *config, source, record, rtp_timeout };
        self.actions.push_back(Action::StartMedia(Box::new(start)));
    }

    /// Persists a kept call's new status (a change its life does not allow is ignored by
    /// the store).
    pub(super) fn persist_status(
        &mut self,
        call: CallId,
        to: CallStatus,
        sip_status: Option<u16>,
        reason: Option<String>,
    ) {
        let Some(id) = self.calls.get(&call).and_then(|c| c.api_id.clone()) else { return };
        tracing::info!(%call, id = %id, status = %to, "api call");
        self.actions.push_back(Action::Persist(Persist::Status { id, to, sip_status, reason }));
    }

    /// Adds a call, indexed by its API id.
    pub(super) fn insert(&mut self, call: CallId, c: Call, ua: &UserAgent) {
        if let Some(id) = &c.api_id {
            self.by_api.insert(id.clone(), call);
            if let Some(sip) = ua.sip_call_id(call) {
                self.actions.push_back(Action::SipDialog(id.clone(), sip));
            }
        }
        if c.referrer.is_some() {
            self.transfers += 1;
        }
        self.calls.insert(call, c);
    }

    /// Removes a call and frees its port.
    pub(super) fn remove(&mut self, call: CallId) -> Option<Call> {
        let c = self.calls.remove(&call)?;
        if let Some(id) = &c.api_id {
            self.by_api.remove(id);
        }
        if c.referrer.is_some() {
            self.transfers -= 1;
        }
        if let Some(port) = c.port {
            self.ports.give_back(port);
        }
        if let Some(org) = c.org.as_deref().filter(|_| c.counted) {
            self.org_call_ended(org);
        }
        self.route_ended(&c);
        Some(c)
    }
}
