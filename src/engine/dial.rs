//! Calls `dialtone call` places: to any URI, rung for at most the ring timeout, hung up
//! (or transferred by REFER, RFC 3515) after the talk time, ending with an outcome.

use super::call::{Call, CallId, Dial, Dialing, Negotiation, Opening, Origin, Phase};
use super::core::Engine;
use super::io::{Action, Refusal};
use crate::session;
use bytes::Bytes;
use dialtone_sip::ua::{EndReason, Outgoing, UserAgent};
use dialtone_sip::{HeaderName, Request};
use std::time::{Duration, Instant};

impl Engine {
    /// Asks for a port for `d`; the INVITE goes once it is bound ([`Action::Dialed`]).
    pub(super) fn dial(&mut self, d: Dial) -> Result<(), Refusal> {
        self.open_port(Opening::Dial(Box::new(d)), 0)
            .map_err(|_| Refusal::Unavailable("no free RTP port in DIALTONE_RTP_PORTS".into()))
    }

    /// The port is bound: send the INVITE.
    pub(super) fn place_dial(&mut self, now: Instant, d: Dial, port: u16, ua: &mut UserAgent) {
        let srtp = match self.sdes_for(d.dest.transport) {
            Ok(s) => s,
            Err(why) => {
                self.ports.give_back(port);
                self.actions.push_back(Action::ClosePort(port));
                self.actions.push_back(Action::Dialed(Err(Refusal::Unavailable(why.into()))));
                return;
            }
        };
        let offer = session::offer_sdp(self.cfg.media_ip, port, srtp);
        let out = Outgoing {
            request_uri: d.uri.clone(),
            from: d.from,
            to: format!("<{}>", d.uri),
            dest: d.dest,
            body: Some(Bytes::from(offer.to_string())),
            extra: d.route.into_iter().map(|r| (HeaderName::Route, r)).collect(),
            alternates: d.alternates.clone(),
            credentials: None,
        };
        match ua.invite(out, now) {
            Ok(call) => {
                let mut c = Call::new(Origin::Dial, Phase::Calling);
                c.port = Some(port);
                c.sdp = Negotiation::Offered(Box::new(offer));
                c.dial = Some(Box::new(Dialing {
                    source: d.source,
                    record: d.record,
                    talk: d.talk,
                    transfer: d.transfer,
                    referred: false,
                    failed: None,
                }));
                self.insert(call, c, ua);
                self.set_deadline(call, now + d.ring_timeout);
                self.actions.push_back(Action::Dialed(Ok(call)));
            }
            Err(e) => {
                self.ports.give_back(port);
                self.actions.push_back(Action::ClosePort(port));
                self.actions.push_back(Action::Dialed(Err(Refusal::Failed(format!("cannot place the call: {e}")))));
            }
        }
    }

    /// A placed call was answered: talk until the talk time (`dialtone call`) or its
    /// `max_duration` (the API) is up; its ring timeout no longer applies.
    pub(super) fn dial_answered(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.deadline = None;
        let talk = c.dial.as_ref().map(|d| d.talk).or(c.max_duration);
        if let Some(talk) = talk {
            self.set_deadline(call, now + talk);
        }
    }

    /// An API call's deadline: not answered within its `ring_timeout` (cancel: `no-answer`),
    /// or its `max_duration` is up (BYE).
    pub(super) fn api_deadline(&mut self, now: Instant, call: CallId, ua: &mut UserAgent) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let why = if c.answered { "max_duration" } else { "ring_timeout" };
        tracing::info!(%call, why, "the call's time is up");
        c.ended_why = Some(why.into());
        let _ = ua.hangup(call, now);
    }

    /// The call's deadline: not answered in time (cancel), or the talk time is up (hang
    /// up, or transfer the far end and wait up to Timer B's 32 s for its report).
    pub(super) fn dial_deadline(&mut self, now: Instant, call: CallId, ua: &mut UserAgent) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(d) = c.dial.as_mut() else { return };
        if !c.answered {
            self.actions.push_back(Action::DialNote(call, "no answer within the ring timeout, cancelling".into()));
        }
        if let (true, false, Some(target)) = (c.answered, d.referred, d.transfer.clone()) {
            match ua.refer(call, &target, now) {
                Ok(()) => {
                    self.actions.push_back(Action::DialNote(call, format!("transferring the far end to {target}")));
                    d.referred = true;
                    d.failed = Some((408, "transfer: no final NOTIFY from the far end".into()));
                    self.set_deadline(call, now + Duration::from_secs(32));
                    return;
                }
                Err(e) => self.actions.push_back(Action::DialNote(call, format!("cannot transfer ({e}); hanging up"))),
            }
        }
        if ua.hangup(call, now).is_err() {
            self.actions.push_back(Action::DialEnded(call, Err((500, "could not hang up".into()))));
        }
    }

    /// A NOTIFY about the transfer we asked for (RFC 3515 §2.4.5: a sipfrag of the new
    /// call's status line): a final one ends our call.
    pub(super) fn dial_notify(&mut self, now: Instant, call: CallId, req: &Request, ua: &mut UserAgent) {
        let Some(d) = self.calls.get_mut(&call).and_then(|c| c.dial.as_mut()).filter(|d| d.referred) else { return };
        let frag = String::from_utf8_lossy(&req.body);
        let line = frag.lines().next().unwrap_or("").trim().to_string();
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
        match status {
            Some(s) if s >= 300 => d.failed = Some((s, format!("transfer failed: {line}"))),
            Some(s) if s >= 200 => d.failed = None,
            _ => return,
        }
        let _ = ua.hangup(call, now);
    }

    /// A placed call ended: its outcome.
    pub(super) fn dial_ended(&mut self, call: CallId, d: Dialing, answered: bool, reason: &EndReason) {
        let outcome = match (d.failed, reason, answered) {
            (Some(f), _, _) => Err(f),
            (None, EndReason::LocalBye | EndReason::RemoteBye, true) => Ok(()),
            (None, EndReason::Rejected { status, reason }, _) => Err((*status, reason.clone())),
            (None, EndReason::Cancelled, _) => Err((487, "Request Terminated".into())),
            (None, EndReason::Timeout, _) => Err((408, "Request Timeout".into())),
            (None, r, _) => Err((r.status(), format!("{r:?}"))),
        };
        self.actions.push_back(Action::DialEnded(call, outcome));
    }

    pub(super) fn set_deadline(&mut self, call: CallId, at: Instant) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.deadline = Some(at);
            self.deadlines.insert((at, call));
        }
    }
}
