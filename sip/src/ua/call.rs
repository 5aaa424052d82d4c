//! One call's state (RFC 3261 §12–§14): its role, where it is, its dialog and the
//! requests it has in flight.

use super::timers::*;
use super::types::*;
use crate::auth::DigestClient;
use crate::dialog::Dialog;
use crate::msg::{Request, Response};
use crate::name::HeaderName;
use crate::transaction::ServerKey;
use crate::transport::Destination;
use bytes::Bytes;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Uac,
    Uas,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// UAC: INVITE sent, nothing back but maybe 100. UAS: INVITE received.
    Calling,
    /// A provisional > 100 seen or sent.
    Early,
    /// UAS: 2xx sent, waiting for the ACK.
    Answered,
    /// Media may flow.
    Confirmed,
    /// BYE sent, waiting for its response.
    Terminating,
}

pub(super) struct Call {
    pub(super) role: Role,
    pub(super) state: State,
    /// UAC: our INVITE (for CANCEL and ACK). UAS: the received INVITE.
    pub(super) invite: Request,
    pub(super) invite_seq: u32,
    /// UAC: the targets left to try if this one fails (RFC 3263 §4.3).
    pub(super) alternates: std::collections::VecDeque<Destination>,
    pub(super) server_key: Option<ServerKey>,
    /// The peer we exchanged the INVITE with (for UAS: where responses go).
    pub(super) peer: Destination,
    pub(super) dialog: Option<Dialog>,
    pub(super) local_tag: String,
    /// UAC: a provisional arrived, so CANCEL may be sent (§9.1).
    pub(super) got_provisional: bool,
    /// UAC: hang up wanted before CANCEL was allowed, or while the 2xx is coming.
    pub(super) hangup_pending: bool,
    /// UAS: our 2xx, for retransmission until the ACK.
    pub(super) ok: Option<Bytes>,
    pub(super) ok_interval: Duration,
    pub(super) ok_give_up: Instant,
    /// The last session description we sent (answers re-INVITE/UPDATE refreshes).
    pub(super) local_sdp: Option<Bytes>,
    /// Its deadlines.
    pub(super) timers: TimerTable,
    /// Digest state for this call's challenged requests.
    pub(super) auth: Option<DigestClient>,
    /// The BYE we sent (without Via), for its challenge.
    pub(super) last_bye: Option<Request>,
    /// UAC: the RSeq of the last reliable provisional response we PRACKed (RFC 3262).
    pub(super) last_rseq: Option<u32>,
    /// The session timer in force (RFC 4028), once the session is established.
    pub(super) session_timer: Option<SessionTimer>,
    /// The peer listed UPDATE in its Allow: refreshes go as UPDATE, not re-INVITE.
    pub(super) peer_allows_update: bool,
    /// The CSeq of the REFER we accepted, for the `id` of its NOTIFYs.
    pub(super) refer_seq: Option<u32>,
    /// A REFER waiting for [`UserAgent::answer_refer`]: its transaction, itself, its CSeq.
    pub(super) refer_pending: Option<(ServerKey, Box<Request>, u32)>,
    /// Our re-INVITE, if one is under way.
    pub(super) reinvite: Reinvite,
    /// UAS: our reliable provisional responses (RFC 3262).
    pub(super) reliable: Reliable,
}

/// UAS: the reliable provisional responses of a call (RFC 3262 §3): one unacknowledged at a
/// time, sent again (T1 doubling) until its PRACK; a 2xx waits for the PRACK of one that
/// carried a session description.
#[derive(Debug, Default)]
pub(super) struct Reliable {
    /// The RSeq of the next one (random start, §3; kept below 2^31).
    pub(super) next_rseq: u32,
    /// The one not yet PRACKed: itself, its RSeq, whether it has SDP, the next interval,
    /// and when to give up.
    pub(super) unacked: Option<(Response, u32, bool, Duration, Instant)>,
    /// Our 2xx's SDP, held until that PRACK comes.
    pub(super) pending_answer: Option<Bytes>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Invite,
    Bye,
    Register,
    /// A session refresh (UPDATE or re-INVITE, RFC 4028).
    Refresh,
    /// A re-INVITE with a new offer (hold, resume).
    Reinvite,
    /// An OPTIONS probe (the CallRef is its number).
    Options,
    Other,
}

/// Our re-INVITE with a new offer (RFC 3261 §14.1), from the command to its final answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Reinvite {
    /// None under way: a new one may start.
    #[default]
    Idle,
    /// Its transaction runs: a re-offer from the peer now is glare (491, §14.2).
    InFlight(Bytes),
    /// A 491 answered it: it goes again when [`Timer::Glare`] fires.
    AwaitingRetry(Bytes),
}

impl Reinvite {
    /// Its offer, unless idle.
    pub(super) fn offer(&self) -> Option<&Bytes> {
        match self {
            Reinvite::Idle => None,
            Reinvite::InFlight(b) | Reinvite::AwaitingRetry(b) => Some(b),
        }
    }
}

/// A call's RFC 4028 session timer.
#[derive(Clone, Copy, Debug)]
pub(super) struct SessionTimer {
    /// The session interval, seconds.
    pub(super) interval: u32,
    /// We send the refreshes; otherwise we watch for the peer's.
    pub(super) we_refresh: bool,
}

impl SessionTimer {
    /// When to act after (re)arming at `now`: refresh halfway (§7.4, §9), or give up
    /// `min(32, interval / 3)` s before the interval ends (§10).
    pub(super) fn due(&self, now: Instant) -> Instant {
        let i = u64::from(self.interval);
        match self.we_refresh {
            true => now + Duration::from_millis(i * 500),
            false => now + Duration::from_secs(i - (i / 3).min(32)),
        }
    }
}

/// `Session-Expires: delta[;refresher=uac|uas]` (RFC 4028 §4).
pub(super) fn session_expires(h: &crate::msg::Headers) -> Option<(u32, Option<String>)> {
    let v = h.get(&HeaderName::SessionExpires)?;
    let mut parts = v.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case("refresher").then(|| v.trim().to_ascii_lowercase())
    });
    Some((delta, refresher))
}

pub(super) struct Registrar {
    /// Its number (what its REGISTERs' transactions are filed under).
    pub(super) n: u64,
    /// Whose it is (`default`: [`super::UserAgent::register`]'s; a trunk's id).
    pub(super) key: String,
    pub(super) reg: Registration,
    pub(super) call_id: String,
    pub(super) from_tag: String,
    pub(super) cseq: u32,
    pub(super) auth: Option<DigestClient>,
    /// The REGISTER in flight (for its challenge).
    pub(super) last: Option<Request>,
    /// Next refresh or retry.
    pub(super) timer: Option<Instant>,
    pub(super) backoff: Duration,
    /// Removing the binding (`Expires: 0`).
    pub(super) removing: bool,
    pub(super) registered: bool,
    /// A 423 raised the expiry already for this attempt.
    pub(super) raised: bool,
}

/// The expiry a 2xx to REGISTER granted our binding (§10.2.4): the `expires` parameter
/// of the Contact that is ours, else the Expires header.
pub(super) fn granted_expires(resp: &Response, our_contact: &str) -> Option<u32> {
    let ours = crate::header::NameAddr::parse(our_contact, "Contact").ok().map(|c| c.uri_text.to_string());
    for c in resp.headers.contacts().flatten() {
        if ours.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(c.uri_text)) {
            if let Some(e) = c.params.value("expires").and_then(|e| e.parse().ok()) {
                return Some(e);
            }
        }
    }
    resp.headers.get(&HeaderName::Expires).and_then(|v| v.trim().parse().ok())
}

/// Every SIP user's bindings, by user name.
#[derive(Debug, Default)]
pub struct Bindings {
    pub(super) by_user: std::collections::HashMap<String, Vec<Binding>>,
}
