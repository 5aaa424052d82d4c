//! The UA's public vocabulary: its settings, calls, events and errors, and the
//! registration it keeps.

use crate::auth::Credentials;
use crate::msg::{Request, Response};
use crate::name::HeaderName;
use crate::transaction::TimerConfig;
use crate::transport::{Destination, Transport};
use crate::validate::Policy;
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Methods we implement, for Allow (§20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK";

/// Option tags we support, for Supported (as a UAS we send reliable provisional
/// responses, RFC 3262, when the caller supports them and there is early media).
pub const SUPPORTED: &str = "100rel, replaces, timer";

/// What our INVITEs say we support: as a UAC we also answer reliable provisional
/// responses with PRACK (RFC 3262).
pub const SUPPORTED_UAC: &str = "100rel, replaces, timer";

/// Body types we accept, for Accept.
pub const ACCEPT: &str = "application/sdp";

/// UA settings.
#[derive(Clone, Debug)]
pub struct UaConfig {
    /// T1/T2/T4.
    pub timers: TimerConfig,
    /// What our requests and responses carry in User-Agent / Server.
    pub user_agent: String,
    /// What we accept (schemes, extensions, body types).
    pub policy: Policy,
    /// The user part of our Contact.
    pub contact_user: String,
    /// The address we advertise (Via sent-by, Contact) for UDP.
    pub udp_addr: Option<SocketAddr>,
    /// The address we advertise for TCP.
    pub tcp_addr: Option<SocketAddr>,
    /// The address we advertise for TLS (our TLS listener; without one, peers can answer
    /// on the connections we open but cannot open one to us).
    pub tls_addr: Option<SocketAddr>,
    /// Seed for tags, branches and Call-IDs (the driver passes randomness).
    pub seed: u64,
    /// Digest credentials for 401/407 challenges (RFC 3261 §22) to our requests: the
    /// INVITE, BYE and REGISTER. Without them a challenge ends the request with its status.
    pub credentials: Option<Credentials>,
    /// The session interval our INVITEs ask for (RFC 4028 Session-Expires), seconds;
    /// `None` asks for none (the peer may still impose one).
    pub session_expires: Option<u32>,
    /// The smallest session interval we accept (Min-SE); RFC 4028 §4 makes it at least
    /// 90 s between conforming peers. Lower only for tests.
    pub min_se: u32,
    /// Who may send us requests outside our dialogs; `None`: anyone.
    pub perimeter: Option<crate::perimeter::PerimeterConfig>,
    /// Learn our public address from the `received`/`rport` a registrar stamps on our
    /// REGISTER's Via (RFC 3581) and advertise it from then on (behind NAT, when no
    /// address is configured).
    pub learn_address: bool,
    /// The realm our SIP users' digest credentials are for.
    pub realm: String,
    /// The digest algorithms our SIP users are challenged with, most preferred first
    /// (MD5 and SHA-256; empty: SHA-256 then MD5).
    pub digest: Vec<crate::auth::Algorithm>,
}

impl Default for UaConfig {
    fn default() -> Self {
        UaConfig {
            timers: TimerConfig::default(),
            user_agent: concat!("dialtone/", env!("CARGO_PKG_VERSION")).into(),
            policy: Policy::default(),
            contact_user: "dialtone".into(),
            udp_addr: None,
            tcp_addr: None,
            tls_addr: None,
            seed: 0x5eed,
            credentials: None,
            session_expires: Some(1800),
            min_se: 90,
            perimeter: None,
            learn_address: false,
            realm: "dialtone".into(),
            digest: Vec::new(),
        }
    }
}

/// An outbound call to place with [`UserAgent::invite`].
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The Request-URI.
    pub request_uri: String,
    /// Our From value (name-addr or addr-spec, without tag).
    pub from: String,
    /// The To value.
    pub to: String,
    /// Where the INVITE goes.
    pub dest: Destination,
    /// The SDP offer, if any.
    pub body: Option<Bytes>,
    /// Extra headers.
    pub extra: Vec<(HeaderName, String)>,
    /// Where to try next, in order, if `dest` times out, fails or answers 503 before
    /// anything else (RFC 3263 §4.3: the next of the targets DNS gave).
    pub alternates: Vec<Destination>,
    /// Digest credentials for this call's challenges (a trunk's own); `None`: the UA's.
    pub credentials: Option<crate::auth::Credentials>,
}

/// A handle on one call (one INVITE dialog) of this UA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CallRef(pub u64);

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// We sent BYE.
    LocalBye,
    /// The peer sent BYE.
    RemoteBye,
    /// The INVITE was cancelled (by the peer for calls we received, by us for ours).
    Cancelled,
    /// The INVITE got (or we sent) a final non-2xx response.
    Rejected {
        /// The status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// No final response (Timer B), or no ACK for our 2xx.
    Timeout,
    /// The session timer ran out without a refresh (RFC 4028 §10); we sent BYE.
    SessionExpired,
    /// The transport failed.
    TransportError,
}

impl EndReason {
    /// The SIP status that best describes the end (200 for a normal hangup).
    pub fn status(&self) -> u16 {
        match self {
            EndReason::LocalBye | EndReason::RemoteBye => 200,
            EndReason::Cancelled => 487,
            EndReason::Rejected { status, .. } => *status,
            EndReason::Timeout | EndReason::SessionExpired => 408,
            EndReason::TransportError => 503,
        }
    }
}

/// What the UA tells its user.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum UaEvent {
    /// A registration of [`UserAgent::register_as`] (a trunk's) changed.
    TrunkRegistration {
        /// Its key.
        key: String,
        /// What happened.
        event: RegistrationEvent,
    },
    /// The answer to [`UserAgent::options`]: its final status, or `None` (no answer
    /// within Timer F, or the transport failed).
    OptionsAnswered {
        /// The probe's number.
        probe: u64,
        /// The status.
        status: Option<u16>,
    },
    /// A new INVITE arrived; answer with [`UserAgent::ring`], [`UserAgent::answer`] or
    /// [`UserAgent::reject`].
    IncomingCall {
        /// The call.
        call: CallRef,
        /// The INVITE (its body is the offer, if any).
        request: Box<Request>,
        /// Where it came from.
        source: Destination,
        /// The SIP user it authenticated as (a softphone of ours), if it did.
        user: Option<crate::userauth::SipUser>,
    },
    /// A provisional response (> 100) to our INVITE.
    Progress {
        /// The call.
        call: CallRef,
        /// The response (183 may carry an SDP answer).
        response: Box<Response>,
    },
    /// Our INVITE got a 2xx; the ACK has been sent.
    Answered {
        /// The call.
        call: CallRef,
        /// The 2xx (its body is the answer).
        response: Box<Response>,
    },
    /// The ACK for our 2xx arrived.
    Confirmed {
        /// The call.
        call: CallRef,
        /// The ACK (it may carry the answer when the INVITE had no offer).
        ack: Box<Request>,
    },
    /// An in-dialog request the UA answered itself that the user may care about (INFO,
    /// re-INVITE, UPDATE).
    InDialog {
        /// The call.
        call: CallRef,
        /// The request.
        request: Box<Request>,
    },
    /// The peer asks us to call someone (REFER, RFC 3515); answer it with
    /// [`UserAgent::answer_refer`] before anything else is done for the call.
    Refer {
        /// The call.
        call: CallRef,
        /// The REFER (exactly one valid Refer-To).
        request: Box<Request>,
    },
    /// Our INVITE was challenged (401/407) and has been sent again with credentials.
    Challenged {
        /// The call.
        call: CallRef,
        /// 401 or 407.
        status: u16,
        /// The realm(s) answered.
        realms: Vec<String>,
    },
    /// Our re-INVITE ([`UserAgent::reinvite`]) was answered: the 2xx carries the answer
    /// (apply it to the media), or it failed and the session is as it was (§14.1).
    Reinvited {
        /// The call.
        call: CallRef,
        /// The final response.
        response: Box<Response>,
    },
    /// The registration's state changed (see [`UserAgent::register`]).
    Registration(RegistrationEvent),
    /// One of our SIP users registered (or removed) its bindings.
    UserRegistered {
        /// The user.
        user: String,
        /// Whose it is.
        owner: String,
        /// How many bindings it has now (0: unregistered).
        bindings: usize,
    },
    /// A registrar saw us at `addr` (its `received`/`rport`), not the address we
    /// advertised: Via and Contact name it from now on, and the registration is renewed
    /// with it.
    AddressLearned {
        /// Our address as the far side sees it.
        addr: SocketAddr,
    },
    /// Our INVITE moved to the next target (RFC 3263 §4.3): `from` timed out, failed or
    /// answered 503.
    Failover {
        /// The call.
        call: CallRef,
        /// The target given up.
        from: Destination,
        /// The one tried now.
        to: Destination,
        /// Why (`timeout`, `transport error`, `503 Service Unavailable`).
        why: String,
    },
    /// The perimeter stopped answering `addr` for a while (its requests were refused too
    /// often); told once per block.
    SourceBlocked {
        /// The source.
        addr: std::net::IpAddr,
        /// For how long.
        until: std::time::Instant,
    },
    /// The call is over; the handle is no longer valid.
    Terminated {
        /// The call.
        call: CallRef,
        /// Why.
        reason: EndReason,
    },
}

/// Errors from UA commands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UaError {
    /// No such call (it ended, or never existed).
    #[error("no such call")]
    NoSuchCall,
    /// The command does not fit the call's state.
    #[error("call is in the wrong state for this")]
    WrongState,
    /// A URI or header value given to the command is malformed.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// No local address for the transport.
    #[error("no local address for {0}")]
    NoTransport(Transport),
}

/// What became of our registration (RFC 3261 §10).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// The registrar accepted the binding for `expires` seconds; it is refreshed before then.
    Registered {
        /// The expiry the registrar granted.
        expires: u32,
    },
    /// A REGISTER failed; it is tried again after `retry_in`.
    Failed {
        /// The status (408 for no response, 503 for a transport failure).
        status: u16,
        /// Why, for the log.
        reason: String,
        /// When the next attempt goes.
        retry_in: Duration,
    },
    /// The binding was removed (`Expires: 0` answered), or the attempt to remove it ended.
    Unregistered {
        /// The final status of the un-REGISTER.
        status: u16,
    },
}

/// A registration to keep with [`UserAgent::register`].
#[derive(Clone, Debug)]
pub struct Registration {
    /// The registrar's Request-URI (`sip:domain`, §10.2).
    pub registrar: String,
    /// The address of record (To and From), e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Where REGISTERs go.
    pub dest: Destination,
    /// The expiry to ask for, in seconds.
    pub expires: u32,
}

/// The first retry after a failed REGISTER; it doubles up to [`REGISTER_RETRY_MAX`].
pub const REGISTER_RETRY_MIN: Duration = Duration::from_secs(5);

/// The longest wait between failed REGISTER attempts.
pub const REGISTER_RETRY_MAX: Duration = Duration::from_secs(300);

/// When to refresh a binding granted for `expires` seconds: halfway for short ones, a
/// minute before the end for long ones.
pub fn refresh_after(expires: u32) -> Duration {
    if expires <= 120 {
        Duration::from_millis(u64::from(expires.max(1)) * 500)
    } else {
        Duration::from_secs(u64::from(expires - 60))
    }
}

/// Where one of a SIP user's devices is (a REGISTER's binding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Its Contact URI.
    pub contact: String,
    /// Where its REGISTER came from (behind NAT, where to send).
    pub source: Destination,
    /// When it lapses.
    pub expires_at: std::time::Instant,
}
