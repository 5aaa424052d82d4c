//! The engine's contract with its driver: what it is told ([`Event`], [`Command`]), what it
//! asks for ([`Action`]), and how it is set up ([`Config`]).

use super::call::{CallId, Dial, RecordAs, SourceSpec};
use crate::config::Inbound;
use dialtone_api::store::{CallStatus, RecordingState};
use dialtone_media::session::SessionConfig;
use dialtone_sip::Destination;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use dialtone_api::http::Refusal;

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
    /// SIGTERM: take no new call, let the live ones finish for this long at most, then
    /// stop (a second one: [`Event::Shutdown`]'s hang-up at once).
    Drain(Duration),
    /// A call webhook's answer to [`Action::Ask`], or why there is none.
    Decided(CallId, Result<dialtone_api::routing::Decision, String>),
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
    /// What the call is sent (a prompt, an announcement) has ended.
    SourceFinished,
    /// Answering-machine detection decided who answered (`human`, `machine_start`, …),
    /// after this much of the callee's audio (ms).
    AnsweredBy(String, u32),
    /// A voice-agent call's turn-taking figures, as its media ended.
    Turns(serde_json::Value),
}

/// What the API asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Place a call the API stored as `initiating` (its progress goes to the store; the
    /// reply says only that the engine took it).
    Originate(dialtone_api::http::Originate),
    /// Act on the live call the API knows as `id`.
    Act(String, dialtone_api::http::Action),
    /// May `org` place the API's call `call_id` to `number`? A yes holds its place (the
    /// permit) until the call's `Originate` uses it, `Release` gives it back, or it lapses.
    Admit {
        /// The organization.
        org: String,
        /// The number called.
        number: String,
        /// The API's id for the call to be.
        call_id: String,
    },
    /// The API could not store the admitted call `call_id`: its place is free again.
    Release(String),
    /// The trunk's servers are now these, in order (its DNS records changed).
    Trunk(Vec<Destination>),
    /// The organizations' trunks are now these (resolved).
    Trunks(Vec<super::trunk::Trunk>),
    /// Requests from these ranges are the trunks' (their `allowed_cidrs`).
    TrunkRanges(Vec<dialtone_sip::perimeter::Cidr>),
    /// The numbers are now these (added, changed, deleted, or read at start).
    Numbers(Vec<dialtone_api::store::NumberRow>),
    /// Our SIP users are now these (added, deleted, or read at start).
    SipUsers(Vec<dialtone_sip::userauth::SipUser>),
    /// Organization `org`'s call policy is now this (created, changed, or read at start).
    Policy {
        /// The organization.
        org: String,
        /// Its limits and allowed destinations.
        policy: super::org::OrgPolicy,
    },
    /// Place `dialtone call`'s call (the INVITE's fate follows as [`Action::Dialed`]).
    Dial(Box<Dial>),
    /// A voice agent joins, is muted in, or leaves a conference (the media side does it).
    ConferenceAgent(dialtone_api::http::AgentMember),
    /// Several nodes: this node cannot reach the shared store for most of its lease
    /// (`true`), so another may take it over: no new calls (the UA answers 503, the API's
    /// creates are refused) until it can again (`false`).
    Fence(bool),
}

/// What the driver is asked to do.
#[derive(Debug)]
pub enum Action {
    /// The engine started draining: `/healthz` says so.
    Draining,
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
    /// The SIP dialog with this Call-ID (second) belongs to the API call (first): its
    /// messages are the call's ladder.
    SipDialog(String, String),
    /// A digit the caller sent by SIP INFO, for the call's agent bridge.
    AgentDtmf(CallId, char),
    /// Who answered (answering-machine detection), after this many ms, for the call's
    /// agent bridge.
    AgentAnsweredBy(CallId, String, u32),
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
    /// POST this to a number's call webhook (signed), and answer with [`Event::Decided`].
    Ask(Box<Ask>),
    /// Join the two calls' media: each is sent what the other hears.
    Bridge(CallId, CallId),
    /// A voice agent joins, is muted in, or leaves a conference.
    ConferenceAgent(dialtone_api::http::AgentMember),
    /// The call is sent its own source again (its bridge or conference is over).
    Unbridge(CallId),
    /// Seat the call in this conference's room (its media's source becomes the room's mix).
    Join(CallId, String, bool),
    /// The call, in a conference, is heard (`false`) or not (`true`).
    Mute(CallId, bool),
    /// Send the call this prompt (by name) before its own source, which it hears again
    /// after [`Action::Unbridge`].
    Announce(CallId, String),
}

/// A call webhook request.
#[derive(Debug, PartialEq, Eq)]
pub struct Ask {
    /// The call waiting for it.
    pub call: CallId,
    /// Where to POST.
    pub url: String,
    /// The number's signing secret.
    pub secret: String,
    /// How long it may take.
    pub timeout: Duration,
    /// The JSON body.
    pub body: String,
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
    /// Start answering-machine detection on what the callee sends (`detect`,
    /// `detect_message_end`).
    Detect(String),
}

/// A change to keep in the store (the driver stamps the wall-clock time).
#[derive(Debug, PartialEq, Eq)]
pub enum Persist {
    /// A new row for a call the engine started: one that came in, or a REFER's.
    Inbound {
        /// Its API id.
        id: String,
        /// The caller.
        caller: String,
        /// The number called.
        called: Option<String>,
        /// Its organization.
        org: String,
        /// The call whose REFER placed it (then `called` is its target and it goes out).
        referred_by: Option<String>,
        /// Its INVITE's `X-` headers.
        sip_headers: Vec<(String, String)>,
        /// The caller's asserted identity.
        asserted_identity: Option<String>,
        /// The number it called (its id).
        number_id: Option<String>,
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
    /// Another event in the call's life (`failover`).
    Event {
        /// The call.
        id: String,
        /// What kind.
        kind: String,
        /// What happened.
        detail: String,
    },
    /// A voice-agent call's turn-taking figures.
    Turns {
        /// The call.
        id: String,
        /// `{summary, turns, barge_ins}`.
        turns: serde_json::Value,
    },
    /// Who answered, as answering-machine detection decided.
    AnsweredBy {
        /// The call.
        id: String,
        /// `human`, `machine_start`, …
        answered_by: String,
        /// How long after the media started it was decided, ms.
        after_ms: u32,
    },
}

/// How the engine places calls and what inbound calls get.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DIALTONE_INBOUND`.
    pub inbound: Inbound,
    /// The address in our SDP.
    pub media_ip: IpAddr,
    /// Take the public address a registrar reports (`UaEvent::AddressLearned`) for media
    /// too (no `DIALTONE_MEDIA_ADVERTISE`).
    pub learn_media: bool,
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
    /// The trunk's other servers, in order (RFC 3263), for failover.
    pub trunk_alternates: Vec<Destination>,
    /// `DIALTONE_SRTP`: SDES-SRTP offered and accepted (`None`: plain RTP).
    pub srtp: Option<dialtone_sip::sdp::sdes::SrtpMode>,
    /// `DIALTONE_SRTP_ANY_TRANSPORT`: SDES keys may go over plain SIP, not only TLS.
    pub srtp_any_transport: bool,
    /// `DIALTONE_MAX_CALLS`: calls up at once, every kind (`None`: as many as ports allow).
    pub max_calls: Option<u32>,
    /// `DIALTONE_INBOUND` was set: calls to numbers nobody has get it; otherwise (once
    /// there are numbers) they get 404.
    pub inbound_explicit: bool,
    /// The settings' other trunks (the TOML file's `[[trunk]]`), besides `default`.
    pub trunks: Vec<super::trunk::Trunk>,
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

/// How a placed call ended: `Ok` answered and ended cleanly, else the SIP status and why.
pub type DialOutcome = Result<(), (u16, String)>;
