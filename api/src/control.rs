//! The engine side of the API: what the handlers ask of the call engine ([`CallControl`])
//! and how it answers ([`Reply`], [`Refusal`]). Plain types; no HTTP, no store.

/// A call the API asks the engine to place (it is already stored as `initiating`).
#[derive(Clone, Debug)]
pub struct Originate {
    /// The call's id.
    pub id: String,
    /// E.164 number to call.
    pub phone_number: String,
    /// E.164 number to call from.
    pub from_number: Option<String>,
    /// The caller's name for From (and `P-Asserted-Identity`).
    pub from_display_name: Option<String>,
    /// Record the call.
    pub record: bool,
    /// Bridge the answered call to this voice agent (`ws://` or `wss://`).
    pub agent_url: Option<String>,
    /// The agent's audio format: `twilio` (µ-law 8 kHz in JSON, the default) or `l16-16k`.
    pub agent_format: Option<String>,
    /// The caller's contact id (told to the agent in `start`).
    pub contact_id: Option<String>,
    /// The engine's permit for this call ([`CallControl`]'s admission), if one was asked for.
    pub permit: Option<u64>,
    /// `X-` headers for the INVITE.
    pub sip_headers: Vec<(String, String)>,
    /// Cancel it (`no-answer`) if not answered within this many seconds.
    pub ring_timeout: Option<u32>,
    /// Hang up this many seconds after the answer.
    pub max_duration: Option<u32>,
    /// Start the media at a 183 with SDP (recorded, and to the agent), before the answer.
    pub early_media: bool,
    /// Answering-machine detection: `detect` or `detect_message_end` ([`MACHINE_DETECTION`]).
    pub machine_detection: Option<String>,
}

/// What `machine_detection` takes: `detect` (the result as soon as it is known) or
/// `detect_message_end` (for a machine, wait for the end of its greeting: the beep).
pub const MACHINE_DETECTION: &[&str] = &["detect", "detect_message_end"];

/// The agent audio formats `agent_format` takes.
pub const AGENT_FORMATS: &[&str] = &["twilio", "l16-16k"];

/// Something to do to a live call.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// BYE (or CANCEL before the answer).
    Hangup,
    /// Hold (`true`) or resume, by re-INVITE.
    Hold(bool),
    /// Blind transfer to this SIP URI (REFER).
    Transfer(String),
    /// Attended transfer (RFC 5589): REFER the far end to the far end of the live call of
    /// this id, with `Replaces` (RFC 3891) so that it takes that call's place.
    TransferReplacing(String),
    /// RFC 4733 digits.
    Dtmf(String),
    /// Start (`true`) or stop recording.
    Record(bool),
    /// Join this call's media with the live call of this id (each hears the other).
    Bridge(String),
    /// End the call's bridge: it hears its own source again (its agent, or silence).
    Unbridge,
    /// Seat the call in conference `id` (it is sent the sum of the other members; it is
    /// heard unless `muted`). A call already there only changes whether it is heard.
    Conference {
        /// The conference.
        id: String,
        /// Not heard by the others.
        muted: bool,
    },
    /// Take the call out of its conference: it hears its own source again.
    LeaveConference,
}

/// A voice agent as a conference's member (not a call): it hears the room and is heard.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentMember {
    /// Seat agent `id` (`agt_…`) in `conference`: dialtone connects to `url` and speaks
    /// `format` (`twilio`, `l16-16k`) with it.
    Join {
        /// The conference.
        conference: String,
        /// The member's id.
        id: String,
        /// The agent's URL (`ws://`, `wss://`).
        url: String,
        /// Its audio format.
        format: Option<String>,
        /// Not heard by the others.
        muted: bool,
    },
    /// Mutes (or unmutes) agent `id`.
    Mute {
        /// The member's id.
        id: String,
        /// Not heard by the others.
        muted: bool,
    },
    /// Agent `id` leaves (its WebSocket is sent `stop`).
    Leave {
        /// The member's id.
        id: String,
    },
}

/// The engine side of the API: places and steers calls.
pub trait CallControl: Send + Sync {
    /// Places `call`; progress comes back through the store.
    fn originate(&self, call: Originate);
    /// Acts on the live call `id`; the reply is what the engine did.
    fn act(&self, id: &str, action: Action) -> Reply;
    /// Whether calls can be placed (a trunk is set).
    fn can_originate(&self) -> bool {
        true
    }
    /// May organization `org` place call `call_id` to `number` now (its limits and allowed
    /// destinations)? A yes holds the call's place until [`CallControl::originate`] uses it
    /// or [`CallControl::release`] gives it back. By default, yes.
    fn admit(&self, _org: &str, _number: &str, _call_id: &str) -> Reply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(Ok(()));
        rx
    }
    /// Gives back the place [`CallControl::admit`] held for `call_id` (it was not placed).
    fn release(&self, _call_id: &str) {}
    /// Sets organization `org`'s call policy (its limits and allowed destinations), when it
    /// is created or changed and for every stored one at start.
    fn set_policy(&self, _org: &crate::model::Organization) {}
    /// Every SIP user, when one is added or deleted, and at start: they may REGISTER and
    /// call with their digest credentials.
    fn set_sip_users(&self, _users: Vec<crate::model::SipUserRow>) {}
    /// Every organization's trunks, when one is added, changed or deleted, and at start.
    fn set_trunks(&self, _trunks: Vec<crate::model::TrunkRow>) {}
    /// Every number, when one is added, changed or deleted, and at start.
    fn set_numbers(&self, _numbers: Vec<crate::model::NumberRow>) {}
    /// Seats, mutes or takes out a voice agent as a conference member. By default there
    /// is no media engine to do it: unavailable.
    fn conference_agent(&self, _member: AgentMember) -> Reply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(Err(Refusal::Unavailable("no media engine for agents in conferences".into())));
        rx
    }
    /// How every trunk is doing now (the settings' and the organizations').
    fn trunk_status(&self) -> Vec<TrunkStatus> {
        Vec::new()
    }
}

/// How a trunk is doing, as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TrunkStatus {
    /// Its id (`default` and the names of the settings' trunks, `trk_…` for stored ones).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its organization; `None`: the platform's (from the settings), any organization's calls use it.
    pub organization_id: Option<String>,
    /// Its URI.
    pub uri: String,
    /// Answering (its OPTIONS are answered, or it is not probed).
    pub up: bool,
    /// Registered with it (`None`: it is not registered with).
    pub registered: Option<bool>,
    /// The last OPTIONS round trip, ms.
    pub options_rtt_ms: Option<u64>,
    /// When the last OPTIONS was answered or given up (the engine's monotonic clock; the
    /// API turns it into a date when it shows it); `None`: not probed yet.
    pub last_options_at: Option<std::time::Instant>,
    /// Its answer's status (`None`: no answer, or not probed yet).
    pub last_options_status: Option<u16>,
    /// Calls on it now (and places held for calls about to go out).
    pub calls: u32,
}

pub use crate::model::DEFAULT_ORG;

/// The engine's answer to an action: done (the request went out; its SIP outcome
/// follows as a call event), or why not.
pub type Reply = tokio::sync::oneshot::Receiver<Result<(), Refusal>>;

/// Why the call engine did not carry out an action.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The call (or its dialog) cannot do this now: 409 `call_not_live`.
    NotLive(String),
    /// The request names something the engine cannot use: 400 `invalid_request`.
    Invalid(String),
    /// Something the action needs is not configured or free: 503 `unavailable`.
    Unavailable(String),
    /// The engine tried and failed: 502 `engine_failed`.
    Failed(String),
    /// The caller's organization may not do this (a rule, named by the code): 403.
    Forbidden(&'static str, String),
    /// The caller's organization is at a limit (named by the code): 429, with the seconds
    /// to wait for `Retry-After`.
    TooMany(&'static str, String, u64),
}
