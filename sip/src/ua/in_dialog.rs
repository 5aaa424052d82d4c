//! Requests inside an established dialog (RFC 3261 §12.2, §14, §15; RFC 3515): BYE,
//! re-INVITE and UPDATE, INFO, REFER and NOTIFY, both ways.

use super::agent::*;
use super::call::*;
use super::helpers::*;
use super::timers::*;
use super::types::*;
use crate::auth::Target;
use crate::method::Method;
use crate::msg::{Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transaction::{ClientKey, ServerKey};
use bytes::Bytes;
use std::time::{Duration, Instant};

impl UserAgent {
    pub(super) fn on_in_dialog(&mut self, key: ServerKey, req: Request, tag: SipStr, now: Instant) {
        let Ok(call_id) = req.headers.call_id().cloned() else { return };
        let Some(&call) = self.by_dialog.get(&(call_id, tag)) else {
            return self.simple_response(&key, &req, 481, now);
        };
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(c) = self.calls.get_mut(&call) else {
            return self.simple_response(&key, &req, 481, now);
        };
        let in_order = c.dialog.as_mut().is_some_and(|d| d.accept_remote_seq(seq, &req.method));
        if !in_order {
            let mut resp = make_response(&req, 500, "Out of Order CSeq", None);
            resp.headers.push(HeaderName::RetryAfter, SipStr::from_static("1"));
            return self.respond(&key, resp, now);
        }
        match req.method {
            Method::Bye => {
                let resp = make_response(&req, 200, "OK", None);
                self.respond(&key, resp, now);
                self.end_call(call, EndReason::RemoteBye);
            }
            Method::Invite | Method::Update
                if !req.body.is_empty()
                    && self.calls.get(&call).is_some_and(|c| matches!(c.reinvite, Reinvite::InFlight(_))) =>
            {
                // Glare (§14.2): our own offer is out; the peer retries after a while.
                let mut resp = make_response(&req, 491, "Request Pending", None);
                resp.headers.push(HeaderName::RetryAfter, SipStr::from_static("2"));
                self.respond(&key, resp, now);
            }
            Method::Invite | Method::Update => {
                // Target refresh (§12.2.2); the session is refreshed with what we sent.
                let Some(c) = self.calls.get_mut(&call) else { return };
                if let Some(d) = c.dialog.as_mut() {
                    d.refresh_target(&req.headers);
                }
                // A new offer: answer with our last SDP, directions mirrored (hold/resume).
                if !req.body.is_empty() {
                    let last = c.local_sdp.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
                    let offer = String::from_utf8_lossy(&req.body);
                    if let Some(Ok(answer)) = last.map(|l| crate::sdp::reanswer(&l, &offer)) {
                        c.local_sdp = Some(Bytes::from(answer.to_string()));
                    }
                }
                // A session refresh (RFC 4028 §9): the interval may change; whoever the
                // request names refreshes (absent: its sender, if it supports timers).
                let mut se_header = None;
                if let Some((interval, refresher)) = session_expires(&req.headers) {
                    let sender_supports = has_option_tag(&req.headers, &HeaderName::Supported, "timer");
                    let refresher = refresher
                        .filter(|r| r == "uac" || r == "uas")
                        .unwrap_or_else(|| if sender_supports { "uac" } else { "uas" }.to_string());
                    c.session_timer = Some(SessionTimer { interval, we_refresh: refresher == "uas" });
                    se_header = Some((format!("{interval};refresher={refresher}"), sender_supports));
                }
                let sdp = c.local_sdp.clone();
                let transport = c.peer.transport;
                let mut resp = make_response(&req, 200, "OK", None);
                resp.headers.push(HeaderName::Contact, SipStr::from(self.contact(transport)));
                if let Some((se, require)) = se_header {
                    resp.headers.push(HeaderName::SessionExpires, SipStr::from(se));
                    if require {
                        resp.headers.push(HeaderName::Require, SipStr::from_static("timer"));
                    }
                }
                self.arm_session_timer(call, now);
                if let Some(sdp) = sdp.filter(|_| !req.body.is_empty() || req.method == Method::Invite) {
                    resp.headers.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
                    resp.body = sdp;
                }
                self.respond(&key, resp, now);
                self.events.push_back(UaEvent::InDialog { call, request: Box::new(req) });
            }
            Method::Prack => self.on_prack(call, key, req, now),
            Method::Info | Method::Options | Method::Notify => {
                let resp = make_response(&req, 200, "OK", None);
                self.respond(&key, resp, now);
                self.events.push_back(UaEvent::InDialog { call, request: Box::new(req) });
            }
            Method::Refer => {
                // RFC 3515 §2.4.2: exactly one Refer-To; accepted at once, progress follows
                // in NOTIFYs ([`UserAgent::notify_refer`]) as the user places the new call.
                let targets = req.headers.count(&HeaderName::ReferTo);
                let ok = targets == 1
                    && req
                        .headers
                        .get(&HeaderName::ReferTo)
                        .is_some_and(|v| crate::header::NameAddr::parse(v, "Refer-To").is_ok());
                if !ok {
                    let mut resp = make_response(&req, 400, "Bad Refer-To", None);
                    resp.headers
                        .push(HeaderName::Warning, SipStr::from_static("399 dialtone \"exactly one valid Refer-To\""));
                    return self.respond(&key, resp, now);
                }
                // The user decides ([`UserAgent::answer_refer`]): a REFER asks us to place a
                // call, which not everyone may ask for.
                let Some(c) = self.calls.get_mut(&call) else { return };
                if c.refer_pending.is_some() {
                    let resp = make_response(&req, 491, "Request Pending", None);
                    return self.respond(&key, resp, now);
                }
                c.refer_pending = Some((key, Box::new(req.clone()), seq));
                self.events.push_back(UaEvent::Refer { call, request: Box::new(req) });
            }
            Method::Other(_) => self.simple_response(&key, &req, 501, now),
            _ => self.simple_response(&key, &req, 405, now),
        }
    }

    /// Answers the REFER [`UaEvent::Refer`] reported: `202 Accepted` (progress then
    /// follows in NOTIFYs, [`UserAgent::notify_refer`]) or `403 Forbidden`.
    pub fn answer_refer(&mut self, call: CallRef, accept: bool, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let (key, req, seq) = c.refer_pending.take().ok_or(UaError::WrongState)?;
        let resp = match accept {
            true => {
                c.refer_seq = Some(seq);
                make_response(&req, 202, "Accepted", None)
            }
            false => make_response(&req, 403, "Forbidden", None),
        };
        self.respond(&key, resp, now);
        Ok(())
    }

    /// Ends a call however it stands: BYE when confirmed, CANCEL while our INVITE is
    /// pending, 480 for an incoming call not yet answered.
    pub fn hangup(&mut self, call: CallRef, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        match (c.role, c.state) {
            (_, State::Terminating) => Ok(()),
            (_, State::Confirmed) => self.send_bye(call, now),
            (Role::Uas, State::Answered) => {
                // Wait for the ACK, then BYE (§15); if it never comes, the ACK timer ends it.
                c.hangup_pending = true;
                Ok(())
            }
            (Role::Uas, _) => self.reject(call, 480, now),
            (Role::Uac, _) => {
                c.hangup_pending = true;
                if c.got_provisional {
                    self.send_cancel(call, now);
                }
                Ok(())
            }
        }
    }

    pub(super) fn send_bye(&mut self, call: CallRef, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let d = c.dialog.as_mut().ok_or(UaError::WrongState)?;
        let mut bye = d.make_request(Method::Bye);
        let dest = next_hop(d, &c.peer);
        c.state = State::Terminating;
        c.timers.stop(Timer::Ok2xx);
        // A peer that challenged the INVITE gets the credentials again (§22.1 lets it
        // challenge the BYE too; then they are answered afresh).
        if let Some(a) = c.auth.as_mut() {
            let uri = bye.uri.to_string();
            if let Ok(hs) = a.authorize(Target { method: "BYE", uri: &uri, body: &[] }) {
                for h in &hs {
                    h.apply_to(&mut bye.headers);
                }
            }
        }
        bye.headers.push(HeaderName::UserAgent, SipStr::from(self.cfg.user_agent.as_str()));
        c.last_bye = Some(bye.clone());
        self.send_in_dialog(call, bye, dest, Purpose::Bye, now);
        Ok(())
    }

    /// Reports the progress of the call a REFER we accepted asked for: a NOTIFY whose
    /// message/sipfrag body is `SIP/2.0 <status> <reason>`; a final status (≥ 200) ends
    /// the implicit subscription (`Subscription-State: terminated`).
    pub fn notify_refer(&mut self, call: CallRef, status: u16, reason: &str, now: Instant) -> Result<(), UaError> {
        let transport = self.calls.get(&call).ok_or(UaError::NoSuchCall)?.peer.transport;
        let contact = self.contact(transport);
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let refer_seq = c.refer_seq.ok_or(UaError::WrongState)?;
        if matches!(c.state, State::Terminating) {
            return Err(UaError::WrongState);
        }
        let d = c.dialog.as_mut().ok_or(UaError::WrongState)?;
        let mut req = d.make_request(Method::Notify);
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Event, SipStr::from(format!("refer;id={refer_seq}")));
        let state =
            if status >= 200 { "terminated;reason=noresource".to_string() } else { "active;expires=60".to_string() };
        h.push(HeaderName::SubscriptionState, SipStr::from(state));
        h.push(HeaderName::ContentType, SipStr::from_static("message/sipfrag;version=2.0"));
        req.body = Bytes::from(format!("SIP/2.0 {status} {reason}\r\n"));
        if status >= 200 {
            c.refer_seq = None;
        }
        self.send_in_dialog(call, req, dest, Purpose::Other, now);
        Ok(())
    }

    /// Asks the peer to call `target` (a blind transfer, RFC 3515): a REFER in the
    /// dialog. Its NOTIFYs arrive as [`UaEvent::InDialog`]; hang up when one reports 2xx.
    pub fn refer(&mut self, call: CallRef, target: &str, now: Instant) -> Result<(), UaError> {
        crate::uri::Uri::parse(target).map_err(|_| UaError::Invalid("Refer-To URI"))?;
        let transport = self.calls.get(&call).ok_or(UaError::NoSuchCall)?.peer.transport;
        let contact = self.contact(transport);
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.state != State::Confirmed {
            return Err(UaError::WrongState);
        }
        let d = c.dialog.as_mut().ok_or(UaError::WrongState)?;
        let referred_by =
            crate::header::NameAddr::parse(&d.local, "From").map(|n| format!("<{}>", n.uri_text)).unwrap_or_default();
        let mut req = d.make_request(Method::Refer);
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::ReferTo, SipStr::from(format!("<{target}>")));
        if !referred_by.is_empty() {
            h.push(HeaderName::ReferredBy, SipStr::from(referred_by));
        }
        self.send_in_dialog(call, req, dest, Purpose::Other, now);
        Ok(())
    }

    /// The URI that makes whoever is sent it take `call`'s place (an attended transfer's
    /// Refer-To, RFC 3891 §5 and RFC 5589): the peer's Contact with an escaped `Replaces`
    /// header naming our dialog with it as the peer sees it (`to-tag` its tag, `from-tag`
    /// ours). `None` unless the call is confirmed.
    pub fn replacing_uri(&self, call: CallRef) -> Option<String> {
        let c = self.calls.get(&call).filter(|c| c.state == State::Confirmed)?;
        let d = c.dialog.as_ref()?;
        let escape = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z'
                    | b'a'..=b'z'
                    | b'0'..=b'9'
                    | b'-'
                    | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')' => (b as char).to_string(),
                    other => format!("%{other:02X}"),
                })
                .collect()
        };
        let replaces = format!("{};to-tag={};from-tag={}", d.id.call_id, d.id.remote_tag, d.id.local_tag);
        let target = d.remote_target.as_str();
        // The Contact's URI without its own headers (`?…`), then ours.
        let target = target.split('?').next().unwrap_or(target);
        Some(format!("{target}?Replaces={}", escape(&replaces)))
    }

    /// The call an INVITE's `Replaces` header (RFC 3891 §6.1) names: `Ok(None)` without
    /// one; the call when it names one of our dialogs (its `to-tag` ours, its `from-tag` the
    /// peer's) that is confirmed; otherwise the status to refuse the INVITE with: 400 for a
    /// header that does not parse, 481 for no such dialog (or an early one), 486 for a
    /// confirmed one the header wants only while early (`early-only`).
    pub fn replaced_call(&self, invite: &Request) -> Result<Option<CallRef>, u16> {
        let Some(v) = invite.headers.get(&HeaderName::Replaces) else { return Ok(None) };
        let mut parts = v.split(';').map(str::trim);
        let call_id = parts.next().filter(|c| !c.is_empty()).ok_or(400u16)?;
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            match p.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim())) {
                Some((k, v)) if k == "to-tag" => to_tag = Some(v),
                Some((k, v)) if k == "from-tag" => from_tag = Some(v),
                None if p.eq_ignore_ascii_case("early-only") => early_only = true,
                _ => {}
            }
        }
        let (Some(to_tag), Some(from_tag)) = (to_tag, from_tag) else { return Err(400) };
        let key = (SipStr::from(call_id.to_string()), SipStr::from(to_tag.to_string()));
        let call = *self.by_dialog.get(&key).ok_or(481u16)?;
        let c = self.calls.get(&call).ok_or(481u16)?;
        let d = c.dialog.as_ref().ok_or(481u16)?;
        if d.id.remote_tag.as_str() != from_tag || c.state != State::Confirmed {
            return Err(481);
        }
        if early_only {
            return Err(486);
        }
        Ok(Some(call))
    }

    /// Sends a new offer in the call (a re-INVITE, §14.1): hold (`a=sendonly`), resume,
    /// a new address. The answer comes as [`UaEvent::Reinvited`]. Refused while another
    /// of ours is pending; a 491 (glare, §14.2) is retried after the §14.1 delay.
    pub fn reinvite(&mut self, call: CallRef, sdp: Bytes, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.state != State::Confirmed || c.reinvite != Reinvite::Idle {
            return Err(UaError::WrongState);
        }
        c.reinvite = Reinvite::InFlight(sdp);
        self.send_reinvite(call, now);
        Ok(())
    }

    /// Puts the peer on hold (our last SDP offered `sendonly`, RFC 3264 §8.4) or takes it
    /// off (`sendrecv`), by re-INVITE; the `o=` version goes up.
    pub fn hold(&mut self, call: CallRef, on: bool, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::NoSuchCall)?;
        let last = c.local_sdp.as_ref().ok_or(UaError::WrongState)?;
        let text = std::str::from_utf8(last).map_err(|_| UaError::Invalid("our SDP"))?;
        let sdp = crate::sdp::hold_offer(text, on).map_err(|_| UaError::Invalid("our SDP"))?;
        self.reinvite(call, Bytes::from(sdp.to_string()), now)
    }

    pub(super) fn send_reinvite(&mut self, call: CallRef, now: Instant) {
        let Some(transport) = self.calls.get(&call).map(|c| c.peer.transport) else { return };
        let contact = self.contact(transport);
        let Some(c) = self.calls.get_mut(&call) else { return };
        let (Some(sdp), Some(d)) = (c.reinvite.offer().cloned(), c.dialog.as_mut()) else { return };
        c.reinvite = Reinvite::InFlight(sdp.clone());
        let mut req = d.make_request(Method::Invite);
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        h.push(HeaderName::Supported, SipStr::from_static(SUPPORTED_UAC));
        if let Some(t) = c.session_timer {
            let who = if t.we_refresh { "uac" } else { "uas" };
            h.push(HeaderName::SessionExpires, SipStr::from(format!("{};refresher={who}", t.interval)));
        }
        h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
        req.body = sdp;
        self.send_in_dialog(call, req, dest, Purpose::Reinvite, now);
    }

    pub(super) fn on_reinvite_response(&mut self, call: CallRef, key: ClientKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let status = resp.status;
        let offer = std::mem::take(&mut c.reinvite).offer().cloned();
        if (200..300).contains(&status) {
            if let (Some(d), Ok(cs)) = (c.dialog.as_mut(), resp.headers.cseq()) {
                d.refresh_target(&resp.headers);
                let ack = d.request_with_seq(Method::Ack, cs.seq);
                let dest = next_hop(d, &c.peer);
                c.local_sdp = offer;
                self.send_ack(key, ack, dest);
            }
            // A re-INVITE refreshes the session too (RFC 4028 §7).
            self.arm_session_timer(call, now);
            self.events.push_back(UaEvent::Reinvited { call, response: Box::new(resp) });
            return;
        }
        if status == 491 {
            // §14.1: the Call-ID's owner waits 2.1–4 s, the other side 0–2 s.
            let r = self.random();
            let Some(c) = self.calls.get_mut(&call) else { return };
            let ms = match c.role {
                Role::Uac => 2100 + r % 1901,
                Role::Uas => r % 2001,
            };
            self.timers.arm(&mut c.timers, call, Timer::Glare, now + Duration::from_millis(ms));
            if let Some(offer) = offer {
                c.reinvite = Reinvite::AwaitingRetry(offer);
            }
            return;
        }
        if matches!(status, 408 | 481) {
            let _ = self.send_bye(call, now);
            return self.end_call(call, EndReason::Rejected { status, reason: resp.reason.to_string() });
        }
        self.events.push_back(UaEvent::Reinvited { call, response: Box::new(resp) });
    }

    /// Our BYE was challenged: send a new one with credentials. False when it cannot be
    /// answered (the call then ends as if the BYE had been answered).
    pub(super) fn retry_bye_with_auth(&mut self, call: CallRef, resp: &Response, now: Instant) -> bool {
        let fresh = self.digest();
        let Some(c) = self.calls.get_mut(&call) else { return false };
        let Some(prev) = c.last_bye.take() else { return false };
        let digest = match c.auth.as_mut() {
            Some(a) => a,
            None => match fresh {
                Some(f) => c.auth.insert(f),
                None => return false,
            },
        };
        let Ok(headers) = digest.respond(&prev, resp) else { return false };
        let Some(d) = c.dialog.as_mut() else { return false };
        let mut bye = d.make_request(Method::Bye);
        let dest = next_hop(d, &c.peer);
        for h in &headers {
            h.apply_to(&mut bye.headers);
        }
        bye.headers.push(HeaderName::UserAgent, SipStr::from(self.cfg.user_agent.as_str()));
        c.last_bye = Some(bye.clone());
        self.send_in_dialog(call, bye, dest, Purpose::Bye, now);
        true
    }
}
