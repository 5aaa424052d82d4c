//! The call engine (DESIGN.md, "The call engine"): one [`Engine`] owns every call of
//! `serve` as one [`Call`] value keyed by one [`CallId`].
//!
//! It is sans-IO, like the SIP and media cores under it: it never reads the clock, opens a
//! socket, touches a file or spawns. Its inputs are [`Event`]s, each with the `now` the
//! driver read; it drives the sans-IO [`UserAgent`] it is handed (whose transmits the
//! driver sends); everything else it wants done comes out of [`Engine::poll_action`] as an
//! [`Action`] (bind a port, start or steer a call's media, persist a change, answer a
//! command). After every input the driver drains `poll_action` until `None`, then sleeps
//! until [`Engine::poll_timeout`] or the next input.
//!
//! Binding a port is the one round trip: [`Action::OpenPort`] asks the driver to bind a
//! port's RTP and RTCP sockets, and the driver answers at once with
//! [`Event::PortOpened`] (or `PortBusy`, another program has it: the engine tries the next).
//!
//! `sim` runs whole calls against an in-memory peer with a clock it advances.

mod call;
mod control;
mod dial;
mod policy;
mod refer;
mod sip;

#[cfg(test)]
mod sim;

pub use call::Dial;
pub use call::{AgentPlan, Call, CallId, Negotiation, Origin, Phase};
pub use control::{Command, Refusal};
pub use dial::DialOutcome;
pub use policy::{OrgPolicy, PERMIT_TTL};

use crate::config::Inbound;
use crate::ports::PortPool;
use call::Opening;
use dialtone_api::store::{CallStatus, RecordingState};
use dialtone_media::session::SessionConfig;
use dialtone_sip::ua::UserAgent;
use dialtone_sip::Destination;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What the engine is told.
#[derive(Debug)]
pub enum Event {
    /// The UA's news.
    Sip(dialtone_sip::ua::UaEvent),
    /// The driver bound this port's sockets for [`Action::OpenPort`].
    PortOpened(u16),
    /// This port is taken by another program.
    PortBusy(u16),
    /// A call's media reports; `api_id` is the stored call it belongs to (a recording's
    /// end may come after the call's).
    Media {
        /// The call.
        call: CallId,
        /// Its API id.
        api_id: Option<String>,
        /// What happened.
        event: MediaEvent,
    },
    /// A call's agent bridge asks for the hang-up (agent unreachable or gone), saying why.
    AgentHangup(CallId, String),
    /// An API command; its [`Action::Reply`] carries `id`.
    Command(u64, Command),
    /// Ctrl-C / SIGTERM: end every call and the registration, then stop.
    Shutdown,
}

/// What a call's media task reports.
#[derive(Debug)]
pub enum MediaEvent {
    /// An RFC 4733 digit heard.
    Dtmf(char),
    /// A recording started into this file.
    RecordingStarted(String),
    /// A recording is complete: stereo frames written, or why not.
    RecordingDone(String, Result<u64, String>),
    /// Nothing came from the peer for this long.
    RtpTimeout(Duration),
}

/// What the driver is asked to do.
#[derive(Debug)]
pub enum Action {
    /// Bind RTP on this port and RTCP on the one above; answer with [`Event::PortOpened`]
    /// or [`Event::PortBusy`] before any other input.
    OpenPort(u16),
    /// Start a call's media on its port's sockets.
    StartMedia(Box<MediaStart>),
    /// Steer a call's running media.
    Media(CallId, MediaCommand),
    /// A call ended: stop its media, close its port's sockets.
    EndMedia(CallId, Option<u16>),
    /// Close a port's sockets that no call's media took.
    ClosePort(u16),
    /// A digit the caller sent by SIP INFO, for the call's agent bridge.
    AgentDtmf(CallId, char),
    /// Keep this in the store.
    Persist(Persist),
    /// The outcome of [`Event::Command`] `id`.
    Reply(u64, Result<(), Refusal>),
    /// A [`Command::Dial`]'s INVITE went out as this call, or could not.
    Dialed(Result<CallId, Refusal>),
    /// A dialled call ended, with its outcome.
    DialEnded(CallId, DialOutcome),
    /// What a dialled call's user is told of the engine's own steps (`dialtone call`
    /// prints it).
    DialNote(CallId, String),
}

/// Everything a call's media task needs besides its sockets.
#[derive(Debug)]
pub struct MediaStart {
    /// The call.
    pub call: CallId,
    /// Its port (the sockets the driver bound).
    pub port: u16,
    /// The stored call's id.
    pub api_id: Option<String>,
    /// What offer/answer settled.
    pub config: SessionConfig,
    /// What the call hears.
    pub source: SourceSpec,
    /// Record it into `DATA_DIR/recordings/<stem>.wav`.
    pub record: Option<RecordAs>,
    /// Hang up after this long without media from the peer.
    pub rtp_timeout: Option<Duration>,
}

/// What a call hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// Silence.
    Silence,
    /// Its own audio back.
    Echo,
    /// The `play:` prompt.
    Prompt,
    /// A voice agent.
    Agent(AgentPlan),
    /// The sound card (`dialtone call --device`).
    Device,
}

/// A recording's file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordAs {
    /// `<api id>.wav`, or `<api id>-<n>.wav` for the first n not yet taken.
    Api(String),
    /// `<unix ms>-<call>.wav` (calls not in the store).
    Anonymous(u64),
    /// This file (`dialtone call --record`).
    Path(std::path::PathBuf),
}

/// A command to a call's running media.
#[derive(Debug, PartialEq, Eq)]
pub enum MediaCommand {
    /// Send RFC 4733 digits.
    Dtmf(String),
    /// A new offer/answer: where the peer wants RTP (`None`: unchanged) and whether we send.
    Update(Option<SocketAddr>, bool),
    /// Whether the peer is expected to send (not while held).
    ExpectRx(bool),
    /// Start recording as this, or stop.
    Record(Option<RecordAs>),
}

/// A change to keep in the store (the driver stamps the wall-clock time).
#[derive(Debug, PartialEq, Eq)]
pub enum Persist {
    /// An inbound call's new row.
    Inbound {
        /// Its API id.
        id: String,
        /// The caller.
        caller: String,
        /// The number called.
        called: Option<String>,
    },
    /// A status change.
    Status {
        /// The call.
        id: String,
        /// The new status.
        to: CallStatus,
        /// The SIP status behind it.
        sip_status: Option<u16>,
        /// Why.
        reason: Option<String>,
    },
    /// A digit heard.
    Dtmf {
        /// The call.
        id: String,
        /// The digit.
        digit: char,
    },
    /// The recording's state.
    Recording {
        /// The call.
        id: String,
        /// Its state.
        state: RecordingState,
        /// The file, when it starts.
        path: Option<String>,
    },
    /// An API action the engine carried out failed later (a re-INVITE refused, a
    /// transfer that did not connect).
    ActionFailed {
        /// The call.
        id: String,
        /// `hold`, `unhold`, `transfer`.
        action: String,
        /// The status line that said no.
        detail: String,
    },
}

/// How the engine places calls and what inbound calls get.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DIALTONE_INBOUND`.
    pub inbound: Inbound,
    /// The address in our SDP.
    pub media_ip: IpAddr,
    /// `DIALTONE_RTP_PORTS`.
    pub rtp_ports: (u16, u16),
    /// `DIALTONE_ANSWER_AFTER_MS`.
    pub answer_after: Duration,
    /// `DIALTONE_RECORD`: record every call.
    pub record_all: bool,
    /// Calls are kept in the store (the API runs).
    pub store: bool,
    /// The trunk's resolved address.
    pub trunk: Option<Destination>,
    /// The trunk's host\[:port\] for Request-URIs and From; `None`: the API places no calls.
    pub trunk_host: Option<String>,
    /// `DIALTONE_TRUNK_USER`, From's user when the API names no `from_number`.
    pub trunk_user: Option<String>,
    /// `DIALTONE_RTP_TIMEOUT`.
    pub rtp_timeout: Option<Duration>,
    /// Seeds the media's SSRCs and the SDP session ids (the driver picks it at random).
    pub seed: u64,
    /// `DIALTONE_REFER`, `DIALTONE_REFER_ALLOW`.
    pub refer: crate::config::ReferPolicy,
}

/// Counters for the status line and `/metrics`.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// INVITEs received.
    pub offered: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls refused (488, 503, reject mode).
    pub refused: u64,
    /// Calls ended normally.
    pub completed: u64,
    /// Calls cancelled by the caller.
    pub cancelled: u64,
    /// Calls that ended otherwise (no ACK, transport error).
    pub failed: u64,
}

/// The call engine.
pub struct Engine {
    cfg: Config,
    calls: HashMap<CallId, Call>,
    /// The API's id → the call.
    by_api: HashMap<String, CallId>,
    ports: PortPool,
    /// Ports being bound, and what follows; with the attempts made.
    opening: HashMap<u16, (Opening, u8)>,
    /// Inbound calls' answer times, in order (the delay is constant).
    answer_at: VecDeque<(Instant, CallId)>,
    /// Calls' own deadlines ([`Call::deadline`]); an entry the call no longer holds is stale.
    deadlines: BTreeSet<(Instant, CallId)>,
    actions: VecDeque<Action>,
    counters: Counters,
    /// Shutting down: stop once every call is gone and the registration removed, or then.
    stop_by: Option<Instant>,
    unregistering: bool,
    /// Calls placed for a REFER not yet answered (most of the time none).
    transfers: usize,
    /// A counter for SDP session ids and SSRC seeds.
    sequence: u64,
    /// Organizations' policies and standing.
    orgs: HashMap<String, policy::OrgState>,
    /// Permits handed out by [`Engine::admit`], not yet used.
    permits: policy::Permits,
}

/// Bind attempts before a call is refused for want of a port.
const BIND_TRIES: u8 = 4;

impl Engine {
    /// An engine with no calls.
    pub fn new(cfg: Config) -> Engine {
        let ports = PortPool::new(cfg.rtp_ports.0, cfg.rtp_ports.1);
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
            transfers: 0,
            sequence: 0,
            orgs: HashMap::new(),
            permits: policy::Permits::default(),
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, ev: Event, ua: &mut UserAgent) {
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
        }
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
        [answer, deadline, self.stop_by].into_iter().flatten().min()
    }

    /// Answers the inbound calls whose time has come; acts on calls' deadlines.
    pub fn handle_timeout(&mut self, now: Instant, ua: &mut UserAgent) {
        while let Some(&(at, call)) = self.deadlines.first().filter(|(at, _)| *at <= now) {
            self.deadlines.pop_first();
            match self.calls.get_mut(&call) {
                Some(c) if c.deadline == Some(at) => c.deadline = None,
                _ => continue,
            }
            self.dial_deadline(now, call, ua);
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

    /// RTP ports free.
    pub fn free_ports(&self) -> usize {
        self.ports.available()
    }

    fn on_media(&mut self, now: Instant, call: CallId, api_id: Option<String>, ev: MediaEvent, ua: &mut UserAgent) {
        if let MediaEvent::RtpTimeout(after) = ev {
            tracing::warn!(%call, seconds = after.as_secs(), "no media from the peer: hanging up");
            let why = format!("rtp timeout ({} s without media)", after.as_secs());
            return self.hang_up_for(now, call, why, ua);
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
            MediaEvent::RtpTimeout(_) => return,
        };
        self.actions.push_back(Action::Persist(p));
    }

    /// Hangs up a call we decided to end, keeping why for its record.
    fn hang_up_for(&mut self, now: Instant, call: CallId, why: String, ua: &mut UserAgent) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.ended_why = Some(why);
            let _ = ua.hangup(call, now);
        }
    }

    fn shutdown(&mut self, now: Instant, ua: &mut UserAgent) {
        // Hang up every call, then give the BYEs a moment to be answered.
        for call in self.calls.keys().copied().collect::<Vec<_>>() {
            let _ = ua.hangup(call, now);
        }
        // And remove our registration (bounded: a registrar that does not answer does
        // not hold the exit up beyond the BYEs' wait).
        self.unregistering = ua.unregister(now);
        let wait = if !self.calls.is_empty() || self.unregistering { 2000 } else { 0 };
        self.stop_by = Some(now + Duration::from_millis(wait));
    }

    /// Takes a free port and asks the driver to bind it for `then`.
    fn open_port(&mut self, then: Opening, tries: u8) -> Result<(), Opening> {
        match self.ports.take() {
            Some(port) => {
                self.opening.insert(port, (then, tries + 1));
                self.actions.push_back(Action::OpenPort(port));
                Ok(())
            }
            None => Err(then),
        }
    }

    fn port_opened(&mut self, now: Instant, port: u16, ua: &mut UserAgent) {
        let Some((then, _)) = self.opening.remove(&port) else { return };
        match then {
            Opening::Answer { call, offer } => self.answer_offer(now, call, port, offer, ua),
            Opening::Place(p) => self.place(now, *p, port, ua),
            Opening::Transfer(t) => self.place_transfer(now, *t, port, ua),
            Opening::Dial(d) => self.place_dial(now, *d, port, ua),
        }
    }

    fn port_busy(&mut self, now: Instant, port: u16, ua: &mut UserAgent) {
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
    fn next_seed(&mut self) -> u64 {
        self.sequence += 1;
        self.cfg.seed ^ self.sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The media settings offer/answer settled.
    fn media_config(&mut self, call: CallId, n: &dialtone_sip::sdp::Negotiated) -> Result<SessionConfig, String> {
        let seed = self.next_seed();
        crate::session::session_config(n, seed, &format!("dialtone-{}", call.0))
    }

    /// Starts the media of an answered call whose offer/answer is settled.
    fn start_media(&mut self, call: CallId) {
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
        let source = match (agent, &self.cfg.inbound) {
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
    fn persist_status(&mut self, call: CallId, to: CallStatus, sip_status: Option<u16>, reason: Option<String>) {
        let Some(id) = self.calls.get(&call).and_then(|c| c.api_id.clone()) else { return };
        tracing::info!(%call, id = %id, status = %to, "api call");
        self.actions.push_back(Action::Persist(Persist::Status { id, to, sip_status, reason }));
    }

    /// Adds a call, indexed by its API id.
    fn insert(&mut self, call: CallId, c: Call) {
        if let Some(id) = &c.api_id {
            self.by_api.insert(id.clone(), call);
        }
        if c.referrer.is_some() {
            self.transfers += 1;
        }
        self.calls.insert(call, c);
    }

    /// Removes a call and frees its port.
    fn remove(&mut self, call: CallId) -> Option<Call> {
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
        if let Some(org) = &c.org {
            self.org_call_ended(org);
        }
        Some(c)
    }
}
