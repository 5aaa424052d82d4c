//! The UAS side (RFC 3261 §8.2, §13.3): new requests, INVITEs we receive, ringing,
//! answering, refusing, ACK and CANCEL.

use super::agent::*;
use super::call::*;
use super::helpers::*;
use super::timers::*;
use super::types::*;
use crate::dialog::{Dialog, DialogState};
use crate::method::Method;
use crate::msg::{reason_phrase, Message, Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transaction::ServerKey;
use crate::transport::Destination;
use bytes::Bytes;
use std::time::Instant;

impl UserAgent {
    pub(super) fn on_new_request(&mut self, key: ServerKey, req: Request, src: Destination, now: Instant) {
        let to_tag = req.headers.to().ok().and_then(|t| t.tag().map(SipStr::from));
        if let Some(tag) = to_tag {
            return self.on_in_dialog(key, req, tag, now);
        }
        if let (Some(secs), Method::Invite | Method::Options) = (self.draining, &req.method) {
            let tag = self.new_tag();
            let mut resp = make_response(&req, 503, "Service Unavailable", Some(&tag));
            resp.headers.push(HeaderName::RetryAfter, SipStr::from(secs.to_string()));
            resp.headers.push(HeaderName::Server, SipStr::from(self.cfg.user_agent.as_str()));
            return self.respond(&key, resp, now);
        }
        match req.method {
            Method::Invite => self.on_invite(key, req, src, now),
            Method::Register => match self.current_user.clone() {
                Some(user) => self.on_register(key, req, user, src, now),
                None => self.simple_response(&key, &req, 405, now),
            },
            Method::Options => {
                let tag = self.new_tag();
                let mut resp = make_response(&req, 200, "OK", Some(&tag));
                resp.headers.push(HeaderName::Allow, SipStr::from_static(ALLOW));
                resp.headers.push(HeaderName::Accept, SipStr::from_static(ACCEPT));
                resp.headers.push(HeaderName::AcceptEncoding, SipStr::from_static("identity"));
                resp.headers.push(HeaderName::AcceptLanguage, SipStr::from_static("en"));
                resp.headers.push(HeaderName::Supported, SipStr::from_static(SUPPORTED));
                resp.headers.push(HeaderName::Server, SipStr::from(self.cfg.user_agent.as_str()));
                self.respond(&key, resp, now);
            }
            Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Notify => {
                self.simple_response(&key, &req, 481, now)
            }
            // A REFER outside any dialog (RFC 3515 allows it) is not something we act on.
            Method::Refer => self.simple_response(&key, &req, 403, now),
            Method::Other(_) => self.simple_response(&key, &req, 501, now),
            _ => self.simple_response(&key, &req, 405, now),
        }
    }

    pub(super) fn on_invite(&mut self, key: ServerKey, req: Request, src: Destination, now: Instant) {
        if session_expires(&req.headers).is_some_and(|(delta, _)| delta < self.cfg.min_se) {
            // RFC 4028 §8.1: too short a session interval.
            let tag = self.new_tag();
            let mut resp = make_response(&req, 422, "Session Interval Too Small", Some(&tag));
            resp.headers.push(HeaderName::MinSe, SipStr::from(self.cfg.min_se.to_string()));
            return self.respond(&key, resp, now);
        }
        let peer_allows_update = has_option_tag(&req.headers, &HeaderName::Allow, "UPDATE");
        let call = CallRef(self.next_call);
        self.next_call += 1;
        let local_tag = self.new_tag();
        let Some(dialog) = Dialog::new_uas(&req, &local_tag) else {
            return self.simple_response(&key, &req, 400, now);
        };
        let invite_seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        self.by_dialog.insert((dialog.id.call_id.clone(), SipStr::from(local_tag.as_str())), call);
        self.by_server.insert(key.clone(), call);
        let peer = response_destination(&req, &src);
        self.calls.insert(
            call,
            Call {
                role: Role::Uas,
                state: State::Calling,
                invite: req.clone(),
                invite_seq,
                alternates: Default::default(),
                server_key: Some(key),
                peer,
                dialog: Some(dialog),
                local_tag,
                got_provisional: false,
                hangup_pending: false,
                ok: None,
                ok_interval: self.cfg.timers.t1,
                ok_give_up: now,
                local_sdp: None,
                timers: TimerTable::default(),
                auth: None,
                last_bye: None,
                last_rseq: None,
                session_timer: None,
                peer_allows_update,
                refer_seq: None,
                refer_pending: None,
                reinvite: Reinvite::Idle,
                reliable: Reliable::default(),
            },
        );
        let user = self.current_user.clone();
        self.events.push_back(UaEvent::IncomingCall { call, request: Box::new(req), source: src, user });
    }

    pub(super) fn on_ack(&mut self, ack: Request, now: Instant) {
        let (Ok(call_id), Ok(to)) = (ack.headers.call_id(), ack.headers.to()) else { return };
        let Some(tag) = to.tag() else { return };
        let key = (call_id.clone(), SipStr::from(tag));
        let Some(&call) = self.by_dialog.get(&key) else { return };
        let Some(c) = self.calls.get_mut(&call) else { return };
        let seq = ack.headers.cseq().map(|c| c.seq).unwrap_or(0);
        if c.role == Role::Uas && c.state == State::Answered && seq == c.invite_seq {
            c.state = State::Confirmed;
            c.ok = None;
            c.timers.stop(Timer::Ok2xx);
            if let Some(d) = c.dialog.as_mut() {
                d.state = DialogState::Confirmed;
            }
            if c.hangup_pending {
                let _ = self.send_bye(call, now);
                return;
            }
            self.arm_session_timer(call, now);
            self.events.push_back(UaEvent::Confirmed { call, ack: Box::new(ack) });
        }
    }

    pub(super) fn on_cancel(&mut self, key: ServerKey, invite: Option<ServerKey>, req: Request, now: Instant) {
        let call = invite.as_ref().and_then(|k| self.by_server.get(k).copied());
        let pending =
            call.and_then(|c| self.calls.get(&c)).is_some_and(|c| matches!(c.state, State::Calling | State::Early));
        match (call, pending) {
            (Some(call), true) => {
                let ok = make_response(&req, 200, "OK", None);
                self.respond(&key, ok, now);
                let _ = self.reject(call, 487, now);
                // reject() reported Rejected; report the cancel instead.
                if let Some(UaEvent::Terminated { reason, .. }) = self.events.back_mut() {
                    *reason = EndReason::Cancelled;
                }
            }
            _ => self.simple_response(&key, &req, 481, now),
        }
    }

    pub(super) fn on_stray_response(&mut self, resp: Response) {
        // A 2xx retransmitted after the INVITE transaction ended: re-ACK if we know it.
        let Ok(branch) = resp.headers.top_via().map(|v| v.branch().unwrap_or("").to_string()) else { return };
        if let Some((dest, ack)) = self.acks.iter().find(|(k, _)| k.branch() == branch).map(|(_, v)| v.clone()) {
            self.tx.send_stateless(dest, ack);
        }
    }

    pub(super) fn uas_call(&mut self, call: CallRef) -> Result<&mut Call, UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.role != Role::Uas || !matches!(c.state, State::Calling | State::Early) {
            return Err(UaError::WrongState);
        }
        Ok(c)
    }

    /// Sends a provisional response (180 Ringing, or 183 with an early SDP answer).
    ///
    /// RFC 3262: when the caller requires `100rel`, every provisional response we send is
    /// reliable, so one without SDP is not sent at all (a UAS need send none but 100); when
    /// it supports `100rel`, one with SDP (early media) is sent reliably, so the early
    /// session cannot be lost. A reliable one carries `Require: 100rel` and an `RSeq`, is
    /// sent again until its PRACK, and only one may be unacknowledged at a time
    /// ([`UaError::WrongState`] otherwise).
    pub fn ring(&mut self, call: CallRef, status: u16, sdp: Option<Bytes>, now: Instant) -> Result<(), UaError> {
        if !(101..200).contains(&status) {
            return Err(UaError::Invalid("provisional status"));
        }
        let transport = self.uas_call(call)?.peer.transport;
        let contact = self.contact(transport);
        let t1 = self.cfg.timers.t1;
        let first_rseq = 1 + (self.random() % 0x3fff_ffff) as u32;
        self.uas_call(call)?;
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let required = has_option_tag(&c.invite.headers, &HeaderName::Require, "100rel");
        let supported = required || has_option_tag(&c.invite.headers, &HeaderName::Supported, "100rel");
        let reliable = required || (supported && sdp.is_some());
        if required && sdp.is_none() {
            return Ok(());
        }
        if reliable && c.reliable.unacked.is_some() {
            return Err(UaError::WrongState);
        }
        let mut resp = make_response(&c.invite, status, reason_phrase(status), Some(&c.local_tag));
        copy_record_route(&c.invite, &mut resp);
        resp.headers.push(HeaderName::Contact, SipStr::from(contact));
        let has_sdp = sdp.is_some();
        if let Some(sdp) = sdp {
            resp.headers.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
            resp.body = sdp;
        }
        if reliable {
            if c.reliable.next_rseq == 0 {
                c.reliable.next_rseq = first_rseq;
            }
            let rseq = c.reliable.next_rseq;
            c.reliable.next_rseq += 1;
            resp.headers.push(HeaderName::Require, SipStr::from_static("100rel"));
            resp.headers.push(HeaderName::RSeq, SipStr::from(rseq.to_string()));
            resp.headers.push(HeaderName::Allow, SipStr::from_static(ALLOW));
            c.reliable.unacked = Some((resp.clone(), rseq, has_sdp, t1, now + t1 * 64));
            // Over a stream the transport does not lose it; the give-up still holds.
            let next = if transport.is_reliable() { now + t1 * 64 } else { now + t1 };
            self.timers.arm(&mut c.timers, call, Timer::Reliable1xx, next);
        }
        c.state = State::Early;
        let key = c.server_key.clone().ok_or(UaError::WrongState)?;
        self.respond(&key, resp, now);
        Ok(())
    }

    /// Our reliable provisional response is not PRACKed yet: send it again (T1 doubling),
    /// or after 64·T1 refuse the call with 504 (RFC 3262 §3: "SHOULD reject … with a 5xx").
    pub(super) fn on_reliable_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some((resp, _, _, interval, give_up)) = c.reliable.unacked.as_mut() else { return };
        if now >= *give_up {
            c.reliable.unacked = None;
            c.reliable.pending_answer = None;
            let _ = self.reject(call, 504, now);
            return;
        }
        let resp = resp.clone();
        *interval *= 2;
        let next = (now + *interval).min(*give_up);
        let Some(key) = c.server_key.clone() else { return };
        self.timers.arm(&mut c.timers, call, Timer::Reliable1xx, next);
        self.respond(&key, resp, now);
    }

    /// A PRACK (RFC 3262 §4): its RAck names our unacknowledged reliable provisional
    /// response (RSeq, the INVITE's CSeq and method): 200, and a 2xx that waited for it
    /// goes out; anything else is 481.
    pub(super) fn on_prack(&mut self, call: CallRef, key: ServerKey, req: Request, now: Instant) {
        let rack = req.headers.get(&HeaderName::RAck).map(|v| v.split_whitespace().map(str::to_string).collect());
        let rack: Vec<String> = rack.unwrap_or_default();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let matches = match (c.reliable.unacked.as_ref(), rack.as_slice()) {
            (Some((_, rseq, _, _, _)), [r, cseq, method]) => {
                r.parse::<u32>().ok() == Some(*rseq)
                    && cseq.parse::<u32>().ok() == Some(c.invite_seq)
                    && method.eq_ignore_ascii_case("INVITE")
            }
            _ => false,
        };
        if !matches {
            return self.simple_response(&key, &req, 481, now);
        }
        c.reliable.unacked = None;
        c.timers.stop(Timer::Reliable1xx);
        let waiting = c.reliable.pending_answer.take();
        self.respond(&key, make_response(&req, 200, "OK", None), now);
        if let Some(sdp) = waiting {
            let _ = self.answer(call, sdp, now);
        }
    }

    /// Answers with 200 OK and an SDP answer; retransmitted until the ACK (§13.3.1.4).
    pub fn answer(&mut self, call: CallRef, sdp: Bytes, now: Instant) -> Result<(), UaError> {
        let transport = self.uas_call(call)?.peer.transport;
        let contact = self.contact(transport);
        let (allow, supported, ua) = (ALLOW, SUPPORTED, self.cfg.user_agent.clone());
        let t1 = self.cfg.timers.t1;
        self.uas_call(call)?;
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.reliable.unacked.as_ref().is_some_and(|(_, _, has_sdp, _, _)| *has_sdp) {
            // RFC 3262 §3: no 2xx before the PRACK of a reliable provisional response that
            // carried a session description; it goes when the PRACK comes.
            c.reliable.pending_answer = Some(sdp);
            return Ok(());
        }
        let mut resp = make_response(&c.invite, 200, "OK", Some(&c.local_tag));
        copy_record_route(&c.invite, &mut resp);
        let h = &mut resp.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Allow, SipStr::from_static(allow));
        h.push(HeaderName::Supported, SipStr::from_static(supported));
        h.push(HeaderName::Server, SipStr::from(ua));
        if let Some((interval, refresher)) = session_expires(&c.invite.headers) {
            // RFC 4028 §9: the caller's interval; it refreshes when it can.
            let caller_supports = has_option_tag(&c.invite.headers, &HeaderName::Supported, "timer");
            let refresher = refresher
                .filter(|r| r == "uac" || r == "uas")
                .unwrap_or_else(|| if caller_supports { "uac" } else { "uas" }.to_string());
            h.push(HeaderName::SessionExpires, SipStr::from(format!("{interval};refresher={refresher}")));
            if caller_supports {
                h.push(HeaderName::Require, SipStr::from_static("timer"));
            }
            c.session_timer = Some(SessionTimer { interval, we_refresh: refresher == "uas" });
        }
        h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
        resp.body = sdp.clone();
        c.local_sdp = Some(sdp);
        c.state = State::Answered;
        let bytes = Message::Response(resp.clone()).to_bytes();
        c.ok = Some(bytes);
        c.ok_interval = t1;
        c.ok_give_up = now + t1 * 64;
        let reliable = c.peer.transport.is_reliable();
        let first = if reliable { now + t1 * 64 } else { now + t1 };
        self.timers.arm(&mut c.timers, call, Timer::Ok2xx, first);
        let key = c.server_key.clone().ok_or(UaError::WrongState)?;
        self.respond(&key, resp, now);
        Ok(())
    }

    /// Refuses an incoming call with a final status (4xx–6xx).
    pub fn reject(&mut self, call: CallRef, status: u16, now: Instant) -> Result<(), UaError> {
        self.reject_with(call, status, None, now)
    }

    /// Sends the caller to `target` (302 Moved Temporarily, RFC 3261 §21.3.3: its Contact).
    pub fn redirect(&mut self, call: CallRef, target: &str, now: Instant) -> Result<(), UaError> {
        crate::uri::Uri::parse(target).map_err(|_| UaError::Invalid("redirect target"))?;
        self.reject_with(call, 302, Some(target), now)
    }

    fn reject_with(&mut self, call: CallRef, status: u16, contact: Option<&str>, now: Instant) -> Result<(), UaError> {
        if !(300..700).contains(&status) {
            return Err(UaError::Invalid("final status"));
        }
        let c = self.uas_call(call)?;
        let mut resp = make_response(&c.invite, status, reason_phrase(status), Some(&c.local_tag));
        if let Some(target) = contact {
            resp.headers.push(HeaderName::Contact, SipStr::from(format!("<{target}>")));
        }
        let key = c.server_key.clone().ok_or(UaError::WrongState)?;
        self.respond(&key, resp, now);
        self.end_call(call, EndReason::Rejected { status, reason: reason_phrase(status).into() });
        Ok(())
    }
}
