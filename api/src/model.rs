//! The plain types of the control plane: calls and their life ([`CallStatus`]), recordings,
//! webhooks and their deliveries, users, API keys, and the permissions ([`PERMISSIONS`]).
//! No I/O: the store keeps these, the handlers show them.

use serde::Serialize;

/// Where a call is in its life (the seed's `status` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    /// Created; the INVITE is going out.
    Initiating,
    /// The far end is ringing (18x).
    Ringing,
    /// Media flows before the answer (a 183 with SDP: ringback, announcements).
    EarlyMedia,
    /// Answered.
    InProgress,
    /// Ended after an answer.
    Completed,
    /// 486/600.
    Busy,
    /// Not answered in time (408/480/487 on our timeout).
    NoAnswer,
    /// Any other failure (including `restart`).
    Failed,
    /// Cancelled before the answer.
    Canceled,
}

impl CallStatus {
    /// Every status, in life order.
    pub const ALL: [CallStatus; 9] = [
        CallStatus::Initiating,
        CallStatus::Ringing,
        CallStatus::EarlyMedia,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Initiating => "initiating",
            CallStatus::Ringing => "ringing",
            CallStatus::EarlyMedia => "early-media",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The webhook event a change to this status sends.
    pub fn event(self) -> &'static str {
        match self {
            CallStatus::Initiating => "call.initiated",
            CallStatus::Ringing | CallStatus::EarlyMedia => "call.ringing",
            CallStatus::InProgress => "call.answered",
            CallStatus::Completed => "call.completed",
            CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Failed | CallStatus::Canceled => "call.failed",
        }
    }

    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        !matches!(self, CallStatus::Initiating | CallStatus::Ringing | CallStatus::EarlyMedia | CallStatus::InProgress)
    }

    /// Whether a call may go from `self` to `to`: forward only, never out of a final state.
    pub fn can_become(self, to: CallStatus) -> bool {
        use CallStatus::*;
        match (self, to) {
            (a, b) if a == b => false,
            (a, _) if a.is_final() => false,
            (Initiating, _) => true,
            (Ringing, Initiating) => false,
            (Ringing, _) => true,
            (EarlyMedia, Initiating | Ringing) => false,
            (EarlyMedia, _) => true,
            (InProgress, Completed | Failed) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for CallStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Call {
    /// `call_<hex>`.
    pub id: String,
    /// The caller's contact id.
    pub contact_id: String,
    /// The number called (E.164).
    pub phone_number: String,
    /// The number called from, if given.
    pub from_number: Option<String>,
    /// Status.
    pub status: CallStatus,
    /// The last SIP status seen.
    pub sip_status: Option<u16>,
    /// Why it ended (`restart`, a SIP reason phrase, …).
    pub reason: Option<String>,
    /// Record it.
    pub record: bool,
    /// Created, ms since the Unix epoch.
    pub created_at: i64,
    /// Answered.
    pub answered_at: Option<i64>,
    /// Ended.
    pub ended_at: Option<i64>,
    /// Talk time in seconds (answer to end).
    pub duration: Option<f64>,
    /// Its recording, if one was started.
    pub recording: Option<RecordingState>,
    /// It came in (rather than being placed by the API).
    pub inbound: bool,
    /// The organization it belongs to.
    pub organization_id: String,
    /// The call whose REFER placed it, if one did.
    pub referred_by: Option<String>,
    /// The `X-` headers its INVITE carried (placed or received), name and value.
    pub sip_headers: Vec<(String, String)>,
    /// Seconds it may ring before it is cancelled (`no-answer`).
    pub ring_timeout: Option<u32>,
    /// Seconds it may talk before dialtone hangs up.
    pub max_duration: Option<u32>,
    /// The caller's name it was placed with.
    pub from_display_name: Option<String>,
    /// An inbound call's asserted caller (RFC 3325 P-Asserted-Identity, or Remote-Party-ID).
    pub asserted_identity: Option<String>,
    /// The number an inbound call reached (`num_…`).
    pub number_id: Option<String>,
    /// Its media was asked to start at a 183 with SDP.
    pub early_media: bool,
    /// Answering-machine detection asked for (`detect`, `detect_message_end`).
    pub machine_detection: Option<String>,
    /// Who answered, as detected: `human`, `machine_start`, `machine_end_beep`,
    /// `machine_end_silence`, `fax`, `unknown`.
    pub answered_by: Option<String>,
    /// How long after the answer it was decided, ms.
    pub answered_by_ms: Option<u32>,
    /// A voice-agent call's turn-taking: `{summary, turns, barge_ins, playout}` (issue 21).
    pub turns: Option<serde_json::Value>,
    /// Who ended it: `remote` (the other party hung up, cancelled or refused), `dialtone`
    /// (the API, a limit, the agent, a refusal of ours) or `network` (no answer from the
    /// peer, a transport failure).
    pub ended_by: Option<String>,
}

/// Where a call's recording is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingState {
    /// Being written.
    Recording,
    /// Finished: the file has its final header and can be downloaded.
    Ready,
    /// The file could not be written.
    Failed,
}

impl RecordingState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Ready => "ready",
            RecordingState::Failed => "failed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<RecordingState> {
        [RecordingState::Recording, RecordingState::Ready, RecordingState::Failed].into_iter().find(|r| r.as_str() == s)
    }
}

/// A webhook subscription.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Webhook {
    /// `wh_<hex>`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The HMAC key (shown once, at creation).
    #[serde(skip)]
    pub secret: String,
    /// The events it gets (empty: all).
    pub events: Vec<String>,
    /// Created, ms.
    pub created_at: i64,
    /// The organization whose events it gets.
    pub organization_id: String,
}

/// The webhook events, in a call's life order.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "call.initiated",
    "call.ringing",
    "call.answered",
    "call.completed",
    "call.failed",
    "recording.ready",
    "dtmf.received",
    "call.action_failed",
    "call.answered_by",
];

/// One event due for delivery to one webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The outbox row.
    pub row: i64,
    /// The webhook.
    pub webhook_id: String,
    /// Its URL.
    pub url: String,
    /// Its HMAC key.
    pub secret: String,
    /// The event name.
    pub event: String,
    /// The JSON body, fixed when the event happened.
    pub payload: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// What one delivery attempt got back, kept for the console's delivery list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attempt {
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// The start of its body (at most [`Attempt::RESPONSE_MAX`] bytes, as text).
    pub response: Option<String>,
    /// Why it failed (`HTTP 500`, a connection error, a timeout); `None` when delivered.
    pub error: Option<String>,
    /// How long the attempt took, ms.
    pub duration_ms: u32,
}

impl Attempt {
    /// How much of a receiver's answer is kept.
    pub const RESPONSE_MAX: usize = 1024;
}

/// A new call for [`Store::insert_call`].
#[derive(Clone, Debug)]
pub struct NewCall<'a> {
    /// Its id.
    pub id: &'a str,
    /// Contact id.
    pub contact_id: &'a str,
    /// E.164 number.
    pub phone_number: &'a str,
    /// From number.
    pub from_number: Option<&'a str>,
    /// Record it.
    pub record: bool,
    /// Now, ms.
    pub created_at: i64,
    /// The organization placing it.
    pub organization_id: &'a str,
    /// `X-` headers for its INVITE.
    pub sip_headers: &'a [(String, String)],
    /// Ring timeout, s.
    pub ring_timeout: Option<u32>,
    /// Longest talk, s.
    pub max_duration: Option<u32>,
    /// The caller's name for From.
    pub from_display_name: Option<&'a str>,
    /// Start the media at a 183 with SDP.
    pub early_media: bool,
    /// Answering-machine detection (`detect`, `detect_message_end`).
    pub machine_detection: Option<&'a str>,
}

impl<'a> NewCall<'a> {
    /// A call `id` to `phone_number` for `contact_id` in `organization_id`, made at
    /// `created_at` (ms), with every option off (set the fields to change them).
    pub fn new(
        id: &'a str,
        contact_id: &'a str,
        phone_number: &'a str,
        organization_id: &'a str,
        created_at: i64,
    ) -> NewCall<'a> {
        NewCall {
            id,
            contact_id,
            phone_number,
            from_number: None,
            record: false,
            created_at,
            organization_id,
            sip_headers: &[],
            ring_timeout: None,
            max_duration: None,
            from_display_name: None,
            early_media: false,
            machine_detection: None,
        }
    }
}

/// A call the engine started for [`Op::Inbound`]: one that came in (`phone_number` is the
/// caller, From's user; `from_number` the number called, To's user; `contact_id` the
/// caller too), or one a REFER asked for (`referred_by` names the referring call;
/// `called` is the target, stored as `phone_number`, and the call is outbound).
#[derive(Clone, Debug, PartialEq)]
pub struct InboundCall {
    /// Its id.
    pub id: String,
    /// The caller.
    pub caller: String,
    /// The number or user called.
    pub called: Option<String>,
    /// When it came, ms.
    pub at: i64,
    /// The organization it belongs to.
    pub organization_id: String,
    /// The call whose REFER placed it.
    pub referred_by: Option<String>,
    /// Its INVITE's `X-` headers.
    pub sip_headers: Vec<(String, String)>,
    /// The caller's asserted identity (P-Asserted-Identity, Remote-Party-ID).
    pub asserted_identity: Option<String>,
    /// The number it called (`num_…`).
    pub number_id: Option<String>,
}

/// Filters for [`Store::list_calls`].
#[derive(Clone, Debug, Default)]
pub struct CallFilter<'a> {
    /// Only this status.
    pub status: Option<CallStatus>,
    /// Only this contact.
    pub contact_id: Option<&'a str>,
    /// Created at or after, ms.
    pub from: Option<i64>,
    /// Created before, ms.
    pub to: Option<i64>,
    /// Only calls whose number (called or calling) contains this.
    pub number: Option<&'a str>,
    /// Only inbound (`true`) or outbound (`false`) calls.
    pub inbound: Option<bool>,
    /// At most this many (the API caps it at 5000).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// One change in a call's life.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallEvent {
    /// When, ms.
    pub at: i64,
    /// `status`, `dtmf`, `recording`, …
    pub kind: String,
    /// The new status, the digit, …
    pub detail: String,
}

/// A user who logs in for a JWT.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// `user_<hex>`.
    pub id: String,
    /// E-mail (stored lower-case).
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// `admin`, …
    pub role: String,
    /// Permissions.
    pub permissions: Vec<String>,
    /// Created, ms.
    pub created_at: i64,
    /// The organization it belongs to.
    pub organization_id: String,
}

/// An API key as stored (without its secret).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiKey {
    /// `key_<hex>`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Permissions, `resource:action`.
    pub permissions: Vec<String>,
    /// Who created it (`internal`, a key id, a user id).
    pub created_by: String,
    /// Created, ms.
    pub created_at: i64,
    /// Last used (to the minute), ms.
    pub last_used_at: Option<i64>,
    /// Revoked, ms.
    pub revoked_at: Option<i64>,
    /// The organization it belongs to (its creator's).
    pub organization_id: String,
    /// The secret's first characters (`dk_` and 4 hex digits: 16 of its 128 bits), so a
    /// person can tell their keys apart; `None` for keys made before it was kept.
    pub prefix: Option<String>,
}

/// A SIP user (a softphone's account): it may REGISTER to dialtone and call from
/// anywhere with its digest credentials. The password is kept only as HA1 for MD5 and
/// SHA-256 (RFC 8760), for the realm it was made in.
#[derive(Clone, Debug, PartialEq)]
pub struct SipUserRow {
    /// `sipu_<hex>`.
    pub id: String,
    /// Its user name (unique: it is the digest username and its address's user part).
    pub username: String,
    /// H(username:realm:password) with MD5, hex.
    pub ha1_md5: String,
    /// The same with SHA-256, hex.
    pub ha1_sha256: String,
    /// The realm the HA1s are for.
    pub realm: String,
    /// Created, ms.
    pub created_at: i64,
    /// Its organization.
    pub organization_id: String,
}

/// A SIP trunk an organization places its calls through (issue 15). The trunks from the
/// settings (`DIALTONE_TRUNK*`, the TOML file's `[[trunk]]`) are the platform's and are not
/// stored; these are the organizations' own.
#[derive(Clone, Debug, PartialEq)]
pub struct TrunkRow {
    /// `trk_<hex>`.
    pub id: String,
    /// Its organization (only its calls use it).
    pub organization_id: String,
    /// Its name (unique in the organization).
    pub name: String,
    /// Where INVITEs go: a `sip:`/`sips:` URI, `;transport=udp|tcp|tls`.
    pub uri: String,
    /// Digest user for its challenges.
    pub username: Option<String>,
    /// Digest password (kept as given: a digest client needs it).
    pub password: Option<String>,
    /// Addresses it may send us requests from (CIDRs), besides its own.
    pub allowed_cidrs: Vec<String>,
    /// E.164 prefixes of the numbers it serves (`+44`); empty: every number.
    pub prefixes: Vec<String>,
    /// Among trunks matching as long a prefix, lower first.
    pub priority: u32,
    /// Calls it may carry at once.
    pub max_concurrent_calls: Option<u32>,
    /// Calls it may start a second.
    pub max_calls_per_second: Option<f64>,
    /// Codecs offered, in this order (`opus`, `PCMU`, `PCMA`); empty: all, ours.
    pub codecs: Vec<String>,
    /// `off`, `optional`, `mandatory`; `None`: `DIALTONE_SRTP`.
    pub srtp: Option<String>,
    /// Send `P-Asserted-Identity` with the caller's number (RFC 3325).
    pub asserted_identity: bool,
    /// Send `Privacy: id` (RFC 3325): the carrier withholds the caller's number.
    pub privacy: bool,
    /// Send OPTIONS this often (seconds) and mark it down when unanswered; `None`: never.
    pub options_interval: Option<u32>,
    /// Created, ms.
    pub created_at: i64,
    /// Keep a registration with it (`sip:<username>@<host>`, with its credentials).
    pub register: bool,
}

/// A phone number (or a pattern of them) of an organization, and what its inbound calls do.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberRow {
    /// `num_<hex>`.
    pub id: String,
    /// Its organization: the calls to it are its calls.
    pub organization_id: String,
    /// E.164 (`+15550100`), or a prefix ending in `*` (`+1555*`), or `*`; unique.
    pub number: String,
    /// What its calls do.
    pub action: crate::routing::InboundAction,
    /// What they do when the call webhook does not answer in time or answers badly
    /// (`None`: 480).
    pub fallback: Option<crate::routing::InboundAction>,
    /// The call webhook's signing secret (`whsec_<hex>`), for a `webhook` action.
    pub webhook_secret: Option<String>,
    /// How long the call webhook has to answer, ms.
    pub webhook_timeout_ms: u32,
    /// Record its calls.
    pub record: bool,
    /// Hang its calls up after this many seconds of talk.
    pub max_duration: Option<u32>,
    /// Created, ms.
    pub created_at: i64,
    /// A prompt (in `DATA_DIR/prompts/`, by name) its callers hear before the answer, as
    /// early media in a 183 (reliable where they support it, RFC 3262); then the action
    /// answers, or a `reject` refuses with its status.
    pub pre_answer: Option<String>,
}

/// Whose rows a store query reaches: one organization's, or every one (only the internal
/// key without `X-Organization-Id`, and the platform's owner reading organizations).
/// Every store query on an owned row takes one, so no handler reaches a row without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// This organization's rows only; another's are as missing.
    Org(String),
    /// Every organization's.
    All,
}

impl Scope {
    /// The organization, or `None` for all (what the store binds to
    /// `(?n IS NULL OR organization_id = ?n)`).
    pub fn org(&self) -> Option<&str> {
        match self {
            Scope::Org(o) => Some(o),
            Scope::All => None,
        }
    }
}

/// The organization every row belonged to before there were organizations, and inbound
/// calls belong to until numbers do (issue 15); the platform's owner is in it.
pub const DEFAULT_ORG: &str = "org_default";

/// An organization: a customer of the platform, owning users, keys, calls, webhooks.
#[derive(Clone, Debug, PartialEq)]
pub struct Organization {
    /// `org_<hex>`.
    pub id: String,
    /// Its name (unique).
    pub name: String,
    /// Created, ms.
    pub created_at: i64,
    /// Calls it may have up at once (`None`: no limit).
    pub max_concurrent_calls: Option<u32>,
    /// Calls it may start a second.
    pub max_calls_per_second: Option<f64>,
    /// E.164 prefixes its calls may go to (empty: anywhere).
    pub allowed_destinations: Vec<String>,
}

/// A conference: a room live calls are seated in (each hears the others).
#[derive(Clone, Debug, PartialEq)]
pub struct ConferenceRow {
    /// `conf_<hex>`.
    pub id: String,
    /// Its organization (only its calls sit in it).
    pub organization_id: String,
    /// A name of the caller's choosing.
    pub name: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once ended (`DELETE`): nobody sits in it any more.
    pub ended_at: Option<i64>,
    /// Everyone who sat in it, in the order they came.
    pub participants: Vec<ParticipantRow>,
}

/// A call's seat in a conference, from its join to its leave.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantRow {
    /// The call (`call_…`), or the voice agent (`agt_…`).
    pub member: String,
    /// A voice agent's URL (`None`: the member is a call).
    pub agent_url: Option<String>,
    /// Not heard by the others.
    pub muted: bool,
    /// Unix ms.
    pub joined_at: i64,
    /// Unix ms: it was taken out, the conference ended, or the call ended (its end).
    pub left_at: Option<i64>,
}

impl ParticipantRow {
    /// Still seated.
    pub fn active(&self) -> bool {
        self.left_at.is_none()
    }
}

/// The permissions a key or user can hold (`resource:action`; `resource.action` is read
/// as the same).
pub const PERMISSIONS: &[&str] = &[
    "calls:read",
    "calls:write",
    "calls:hangup",
    "calls:hold",
    "calls:transfer",
    "calls:recording",
    "calls:live",
    "calls:originate_ai",
    "calls:click_to_call",
    "keys:read",
    "keys:write",
    "webhooks:read",
    "webhooks:write",
    "users:read",
    "users:write",
    "orgs:read",
    "orgs:write",
    "sip_users:read",
    "sip_users:write",
    "trunks:read",
    "trunks:write",
    "numbers:read",
    "numbers:write",
    "conferences:read",
    "conferences:write",
];

/// The permission only the platform's owner (the first admin) and the internal key hold:
/// creating organizations, and placing users in one.
pub const PLATFORM_PERMISSION: &str = "orgs:write";

/// `calls.read` → `calls:read`; `None` for an unknown permission.
pub fn normalize_permission(p: &str) -> Option<&'static str> {
    let p = p.trim().replacen('.', ":", 1);
    PERMISSIONS.iter().copied().find(|k| *k == p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use CallStatus::*;
        assert!(Initiating.can_become(Busy) && Ringing.can_become(InProgress) && InProgress.can_become(Completed));
        assert!(!InProgress.can_become(Ringing) && !Completed.can_become(Failed) && !Ringing.can_become(Initiating));
        assert!(!InProgress.can_become(Busy));
        for s in CallStatus::ALL {
            assert_eq!(CallStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(CallStatus::parse("done"), None);
    }
}
