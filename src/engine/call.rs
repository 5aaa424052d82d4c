//! One call: everything the engine knows of it, in one value.

use bytes::Bytes;
use dialtone_media::session::SessionConfig;
use dialtone_sip::sdp::SessionDescription;
use dialtone_sip::ua::CallRef;
use dialtone_sip::Destination;
use std::path::PathBuf;
use std::time::Duration;

/// The one identity of a call: the UA's handle on its INVITE dialog. The API's id, the
/// agent bridge's label and the media task are all keyed on it.
pub type CallId = CallRef;

/// Who started the call, which decides what it hears and how its end is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// It came in (`DIALTONE_INBOUND` decides what it hears).
    Inbound,
    /// The API placed it (it hears its own agent or silence).
    Api,
    /// We placed it for a REFER on another call (it hears what inbound calls hear).
    Transfer,
    /// `dialtone call` placed it.
    Dial,
}

/// Where a call is in its life (RFC 3261 §13: early → confirmed → terminated, seen
/// from the application).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// An inbound call waiting for its port to be bound.
    Opening,
    /// An inbound call rung (180), waiting for its answer time; the answer's SDP is ready.
    Ringing {
        /// The body of our 2xx.
        sdp: Bytes,
    },
    /// Our INVITE is out, no final response yet.
    Calling,
    /// Answered (our 2xx sent, or theirs received).
    Live,
    /// Refused by us; its `Terminated` is still to come.
    Refused,
    /// An inbound call rung while its number's call webhook decides; the INVITE's offer
    /// waits here.
    Asking {
        /// The INVITE's body.
        offer: Bytes,
    },
}

/// The offer/answer state of a call's media.
#[derive(Debug, Default)]
pub enum Negotiation {
    /// No media (the answer could not be used, or none yet).
    #[default]
    None,
    /// Our offer is out (INVITE or 2xx); its answer comes in the 2xx or the ACK.
    Offered(Box<SessionDescription>),
    /// Settled, the media starts at the answer.
    Settled(Box<SessionConfig>),
    /// The media task runs.
    Running,
}

/// An agent to bridge the call to once answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentPlan {
    /// The API call's own agent; `None`: the inbound one (`DIALTONE_INBOUND=agent:`).
    pub url: Option<String>,
    /// The API's `agent_format`, if it named one.
    pub format: Option<String>,
    /// `start.customParameters.call_id`: the API id, else `call-<n>`.
    pub call_id: String,
    /// The API's contact id.
    pub contact_id: Option<String>,
    /// From's URI.
    pub from: Option<String>,
    /// To's URI.
    pub to: Option<String>,
    /// More `start.customParameters`: the inbound INVITE's `X-` headers, a call
    /// webhook's `custom_parameters`.
    pub custom: Vec<(String, String)>,
}

/// One call.
#[derive(Debug)]
pub struct Call {
    /// Who started it.
    pub origin: Origin,
    /// Where it is.
    pub phase: Phase,
    /// Its RTP port (RTCP the one above), held until it ends.
    pub port: Option<u16>,
    /// Its media's offer/answer.
    pub sdp: Negotiation,
    /// The API's id (calls kept in the store).
    pub api_id: Option<String>,
    /// The organization it belongs to: one that placed it (the API, a transfer it asked
    /// for); the default one for calls that came in (until numbers belong to
    /// organizations, issue 15).
    pub org: Option<String>,
    /// It holds one of its organization's places (the calls it placed; not calls that
    /// came in), given back when it ends.
    pub counted: bool,
    /// The transport its signalling came over (SDES keys go only over TLS).
    pub transport: dialtone_sip::Transport,
    /// The agent it is bridged to once answered.
    pub agent: Option<AgentPlan>,
    /// Record it (`record: true`, `DIALTONE_RECORD`).
    pub record: bool,
    /// It was answered (its end is `completed`).
    pub answered: bool,
    /// Why we ended it ourselves, for its record.
    pub ended_why: Option<String>,
    /// A re-INVITE we sent for the API (`hold`, `unhold`), until its final response.
    pub pending: Option<&'static str>,
    /// The call whose REFER placed this one, until this one is answered or fails.
    pub referrer: Option<CallId>,
    /// Its own deadline (a placed call's ring timeout or talk time).
    pub deadline: Option<std::time::Instant>,
    /// An API call's longest talk (`max_duration`), counted from the answer.
    pub max_duration: Option<std::time::Duration>,
    /// What `dialtone call` asked of it.
    pub dial: Option<Box<Dialing>>,
    /// An API call's trunk and what it was placed with (for the next trunk).
    pub route: Option<Box<Route>>,
    /// An inbound call's number (the organization's routing of it).
    pub number: Option<Box<dialtone_api::store::NumberRow>>,
    /// The E.164 number an inbound call called.
    pub called: Option<String>,
    /// An inbound call's caller (From's user, E.164 when it reads as one).
    pub caller: Option<String>,
    /// The trunk an inbound call came through (its id), if from one.
    pub trunk: Option<String>,
    /// The caller's asserted identity (P-Asserted-Identity, Remote-Party-ID).
    pub asserted: Option<String>,
    /// What an inbound call hears once answered, when its number decided it.
    pub answer_with: Option<SourceSpec>,
    /// A placed call's media may start at a 183 with SDP (before the answer).
    pub early_media: bool,
    /// Its media started before the answer.
    pub early: bool,
    /// The call its media is joined to.
    pub bridged: Option<CallId>,
    /// The conference it is seated in, and whether it is muted there.
    pub conference: Option<(String, bool)>,
    /// An inbound call's announcement before the answer (its number's `pre_answer`),
    /// until it has been played; then it is answered, or refused with `refuse_after`.
    pub pre_answer: Option<String>,
    /// The status to refuse with once the announcement is over (a `reject` number).
    pub refuse_after: Option<u16>,
    /// The call whose dialog this one's INVITE replaces (RFC 3891), until it takes its place.
    pub replaces: Option<CallId>,
    /// Answering-machine detection asked for (an API call's `machine_detection`).
    pub machine_detection: Option<String>,
}

/// An API call's way out: the trunk it is on, those it tried, what it asked for.
#[derive(Debug)]
pub struct Route {
    /// The trunk holding its place.
    pub trunk: String,
    /// The trunks that failed it.
    pub tried: Vec<String>,
    /// What the API asked for.
    pub o: dialtone_api::http::Originate,
}

impl Call {
    /// A call in `phase` with nothing else known yet.
    pub fn new(origin: Origin, phase: Phase) -> Call {
        Call {
            origin,
            phase,
            port: None,
            sdp: Negotiation::None,
            api_id: None,
            org: None,
            counted: false,
            transport: dialtone_sip::Transport::Udp,
            agent: None,
            record: false,
            answered: false,
            ended_why: None,
            pending: None,
            referrer: None,
            deadline: None,
            max_duration: None,
            dial: None,
            route: None,
            number: None,
            called: None,
            caller: None,
            trunk: None,
            asserted: None,
            answer_with: None,
            early_media: false,
            early: false,
            bridged: None,
            conference: None,
            pre_answer: None,
            refuse_after: None,
            replaces: None,
            machine_detection: None,
        }
    }
}

/// What the engine does once a port's sockets are bound.
#[derive(Debug)]
pub enum Opening {
    /// Answer the inbound call with this offer (empty: we offer in the 2xx).
    Answer {
        /// The call.
        call: CallId,
        /// The INVITE's body.
        offer: Bytes,
    },
    /// Place the API's call.
    Place(Box<Placing>),
    /// Place the call a REFER asked for.
    Transfer(Box<Transferring>),
    /// Place the command line's call.
    Dial(Box<Dial>),
}

impl Opening {
    /// Bind attempts made for this opening so far are counted by the engine; this names
    /// the call for the log.
    pub fn label(&self) -> String {
        match self {
            Opening::Answer { call, .. } => call.to_string(),
            Opening::Place(p) => p.id.clone(),
            Opening::Transfer(t) => format!("transfer for {}", t.referrer),
            Opening::Dial(d) => d.uri.clone(),
        }
    }
}

/// An API call waiting for its port.
#[derive(Debug)]
pub struct Placing {
    /// The API's id.
    pub id: String,
    /// The organization it counts against.
    pub org: Option<String>,
    /// The trunk holding its place.
    pub trunk: String,
    /// What the API asked for.
    pub o: dialtone_api::http::Originate,
}

/// A call to place from the command line.
#[derive(Debug)]
pub struct Dial {
    /// The Request-URI (and To).
    pub uri: String,
    /// Where the INVITE goes.
    pub dest: Destination,
    /// Where it goes next if that server fails (RFC 3263).
    pub alternates: Vec<Destination>,
    /// From, as a name-addr.
    pub from: String,
    /// A Route header (the trunk as a loose-routing outbound proxy).
    pub route: Option<String>,
    /// What the call hears once answered.
    pub source: SourceSpec,
    /// Record it into this WAV.
    pub record: Option<PathBuf>,
    /// Hang up (or transfer) this long after the answer.
    pub talk: Duration,
    /// Cancel when not answered within this.
    pub ring_timeout: Duration,
    /// At the end of the talk time, REFER the far end here instead of hanging up.
    pub transfer: Option<String>,
}

/// A placed call's own state.
#[derive(Debug)]
pub struct Dialing {
    /// What it hears.
    pub source: SourceSpec,
    /// Where it is recorded.
    pub record: Option<PathBuf>,
    /// How long it talks.
    pub talk: Duration,
    /// Where the far end is transferred at the end.
    pub transfer: Option<String>,
    /// The REFER went out.
    pub referred: bool,
    /// How the call ends if nothing better is heard (a transfer that did not report).
    pub failed: Option<(u16, String)>,
}

/// A call a REFER asked for, waiting for its port.
#[derive(Debug)]
pub struct Transferring {
    /// The call that sent the REFER.
    pub referrer: CallId,
    /// The Refer-To URI (or the trunk's for a number).
    pub uri: String,
    /// Where to send the INVITE.
    pub dest: Destination,
    /// The organization it counts against (its referrer's).
    pub org: Option<String>,
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
    /// A prompt of `DATA_DIR/prompts` by name (a number's or a call webhook's).
    Play(String),
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
