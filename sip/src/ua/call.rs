//! One call's state (RFC 3261 §12–§14): its role, where it is, its dialog and the
//! requests it has in flight.

use super::*;

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
