//! The UAC side (RFC 3261 §8.1, §13.2): our INVITEs, their responses, CANCEL, PRACK
//! (RFC 3262) and digest challenges (§22).

use super::agent::*;
use super::call::*;
use super::helpers::*;
use super::timers::*;
use super::types::*;
use crate::auth::DigestClient;
use crate::dialog::{Dialog, DialogState};
use crate::method::Method;
use crate::msg::{Message, Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transaction::{build_cancel, ClientKey};
use std::time::Instant;

impl UserAgent {
    pub(super) fn on_invite_response(&mut self, call: CallRef, key: ClientKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            if (200..300).contains(&resp.status) {
                if let Some((dest, ack)) = self.acks.get(&key).cloned() {
                    self.tx.send_stateless(dest, ack);
                }
            }
            return;
        };
        let status = resp.status;
        if status < 200 {
            c.got_provisional = true;
            let has_tag = resp.headers.to().is_ok_and(|t| t.tag().is_some());
            if has_tag && c.dialog.is_none() {
                c.dialog = Dialog::new_uac(&c.invite, &resp);
            }
            if c.hangup_pending {
                self.send_cancel(call, now);
                return;
            }
            if status > 100 {
                c.state = State::Early;
                if has_option_tag(&resp.headers, &HeaderName::Require, "100rel") {
                    self.send_prack(call, &resp, now);
                }
                self.events.push_back(UaEvent::Progress { call, response: Box::new(resp) });
            }
            return;
        }
        if matches!(status, 401 | 407) && !c.hangup_pending && (self.cfg.credentials.is_some() || c.auth.is_some()) {
            return self.retry_invite_with_auth(call, resp, now);
        }
        if status == 422 && !c.hangup_pending {
            // RFC 4028 §7.4: ask again with at least the peer's Min-SE (once: a second 422
            // for a larger interval than we sent ends the call).
            let min_se = resp.headers.get(&HeaderName::MinSe).and_then(|v| v.trim().parse::<u32>().ok());
            let sent = session_expires(&c.invite.headers).map(|(d, _)| d).unwrap_or(0);
            if let Some(min_se) = min_se.filter(|m| *m > sent) {
                let mut req = c.invite.clone();
                req.headers.set(HeaderName::SessionExpires, SipStr::from(min_se.to_string()));
                req.headers.set(HeaderName::MinSe, SipStr::from(min_se.to_string()));
                return self.resend_invite(call, req, now);
            }
        }
        if status == 503 && !c.hangup_pending && !c.alternates.is_empty() {
            let why = format!("503 {}", resp.reason);
            if self.fail_over(call, why, now) {
                return;
            }
        }
        let Some(c) = self.calls.get_mut(&call) else { return };
        if status >= 300 {
            let reason = if status == 487 && c.hangup_pending {
                EndReason::Cancelled
            } else {
                EndReason::Rejected { status, reason: resp.reason.to_string() }
            };
            return self.end_call(call, reason);
        }
        // 2xx: confirm the dialog and ACK (§13.2.2.4). A retransmission is re-ACKed.
        if let Some((dest, ack)) = self.acks.get(&key).cloned() {
            self.tx.send_stateless(dest, ack);
            return;
        }
        let first = c.dialog.as_ref().is_none_or(|d| d.state == DialogState::Early);
        let mut dialog = match Dialog::new_uac(&c.invite, &resp) {
            Some(d) => d,
            None => return,
        };
        if let Some(old) = c.dialog.as_ref() {
            dialog.local_seq = dialog.local_seq.max(old.local_seq);
        }
        let mut ack = dialog.request_with_seq(Method::Ack, c.invite_seq);
        // The ACK for a 2xx carries the INVITE's credentials (RFC 3261 §22.1).
        for name in [HeaderName::Authorization, HeaderName::ProxyAuthorization] {
            for v in c.invite.headers.get_all(&name) {
                ack.headers.push(name.clone(), v.clone());
            }
        }
        let transport = c.peer.transport;
        let dest = next_hop(&dialog, &c.peer);
        dialog.state = DialogState::Confirmed;
        c.dialog = Some(dialog.clone());
        c.state = State::Confirmed;
        c.peer_allows_update = has_option_tag(&resp.headers, &HeaderName::Allow, "UPDATE");
        if first {
            // RFC 4028 §7.2: the 2xx says who refreshes; without Session-Expires, no timer.
            c.session_timer = session_expires(&resp.headers).map(|(interval, refresher)| SessionTimer {
                interval,
                we_refresh: refresher.as_deref() == Some("uac"),
            });
        }
        let pending = c.hangup_pending;
        let via = self.via(transport);
        ack.headers.push_front(HeaderName::Via, SipStr::from(via));
        let bytes = Message::Request(ack).to_bytes();
        self.tx.send_stateless(dest, bytes.clone());
        self.acks.insert(key, (dest, bytes));
        self.by_dialog.insert((dialog.id.call_id.clone(), dialog.id.local_tag.clone()), call);
        if pending {
            let _ = self.send_bye(call, now);
            return;
        }
        if first {
            self.arm_session_timer(call, now);
            self.events.push_back(UaEvent::Answered { call, response: Box::new(resp) });
        }
    }

    /// Places a call: an INVITE to `out.request_uri` sent to `out.dest`.
    pub fn invite(&mut self, out: Outgoing, now: Instant) -> Result<CallRef, UaError> {
        let Outgoing { request_uri, from, to, dest, body, extra, alternates, credentials } = out;
        let (request_uri, from, to) = (request_uri.as_str(), from.as_str(), to.as_str());
        crate::uri::Uri::parse(request_uri).map_err(|_| UaError::Invalid("request URI"))?;
        crate::header::NameAddr::parse(from, "From").map_err(|_| UaError::Invalid("From"))?;
        crate::header::NameAddr::parse(to, "To").map_err(|_| UaError::Invalid("To"))?;
        self.local_addr(dest.transport)?;
        let call = CallRef(self.next_call);
        self.next_call += 1;
        let tag = self.new_tag();
        let host = self.local_addr(dest.transport)?.ip();
        let call_id = format!("{:016x}@{}", self.random(), host);
        let mut req = Request::new(Method::Invite, SipStr::from(request_uri));
        let via = self.via(dest.transport);
        let h = &mut req.headers;
        h.push(HeaderName::Via, via);
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, SipStr::from(format!("{from};tag={tag}")));
        h.push(HeaderName::To, to);
        h.push(HeaderName::CallId, SipStr::from(call_id));
        h.push(HeaderName::CSeq, "1 INVITE");
        h.push(HeaderName::Contact, SipStr::from(self.contact(dest.transport)));
        h.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        h.push(HeaderName::Supported, SipStr::from_static(SUPPORTED_UAC));
        h.push(HeaderName::UserAgent, SipStr::from(self.cfg.user_agent.as_str()));
        if let Some(se) = self.cfg.session_expires {
            h.push(HeaderName::SessionExpires, SipStr::from(se.max(self.cfg.min_se).to_string()));
        }
        for (n, v) in extra {
            h.push(n, v);
        }
        if let Some(b) = &body {
            h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
            req.body = b.clone();
        }
        let key = self.tx.send_request(req.clone(), dest, now);
        self.by_client.insert(key, (call, Purpose::Invite));
        let auth = credentials.map(|c| DigestClient::new(c, self.random()));
        self.calls.insert(
            call,
            Call {
                role: Role::Uac,
                state: State::Calling,
                invite: req,
                invite_seq: 1,
                alternates: alternates.into(),
                server_key: None,
                peer: dest,
                dialog: None,
                local_tag: tag,
                got_provisional: false,
                hangup_pending: false,
                ok: None,
                ok_interval: self.cfg.timers.t1,
                ok_give_up: now,
                local_sdp: body,
                timers: TimerTable::default(),
                auth,
                last_bye: None,
                last_rseq: None,
                session_timer: None,
                peer_allows_update: false,
                refer_seq: None,
                refer_pending: None,
                reinvite: Reinvite::Idle,
                reliable: Reliable::default(),
            },
        );
        Ok(call)
    }

    pub(super) fn send_cancel(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.state == State::Terminating {
            return;
        }
        c.state = State::Terminating;
        let cancel = build_cancel(&c.invite);
        let dest = c.peer;
        let key = self.tx.send_request(cancel, dest, now);
        self.by_client.insert(key, (call, Purpose::Other));
    }

    /// A reliable provisional response (Require: 100rel, RSeq): PRACK it once, in its
    /// early dialog, with RAck (RFC 3262 §7.2). Retransmissions (the same RSeq, or an
    /// older one) are not PRACKed again.
    pub(super) fn send_prack(&mut self, call: CallRef, resp: &Response, now: Instant) {
        let Some(rseq) = resp.headers.get(&HeaderName::RSeq).and_then(|v| v.trim().parse::<u32>().ok()) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.last_rseq.is_some_and(|l| rseq <= l) {
            return;
        }
        // The early dialog this response belongs to (forked responses with another tag
        // would need one each; we follow the first).
        let same_dialog = c.dialog.as_ref().is_some_and(|d| {
            resp.headers.to().ok().and_then(|t| t.tag().map(|t| t == d.id.remote_tag.as_str())).unwrap_or(false)
        });
        if !same_dialog {
            return;
        }
        c.last_rseq = Some(rseq);
        let invite_seq = c.invite_seq;
        let Some(d) = c.dialog.as_mut() else { return };
        d.refresh_target(&resp.headers);
        let mut prack = d.make_request(Method::Prack);
        let dest = next_hop(d, &c.peer);
        prack.headers.push(HeaderName::RAck, SipStr::from(format!("{rseq} {invite_seq} INVITE")));
        self.send_in_dialog(call, prack, dest, Purpose::Other, now);
    }

    pub(super) fn digest(&mut self) -> Option<DigestClient> {
        let creds = self.cfg.credentials.clone()?;
        Some(DigestClient::new(creds, self.random()))
    }

    /// Our INVITE was challenged: send it again with credentials (same Call-ID and tags,
    /// CSeq one up, a new branch; the transaction layer ACKed the 401/407). A challenge
    /// we cannot answer, or a second one for credentials already refused, ends the call
    /// with the challenge's status.
    pub(super) fn retry_invite_with_auth(&mut self, call: CallRef, resp: Response, now: Instant) {
        let fresh = self.digest();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let digest = match c.auth.as_mut() {
            Some(d) => d,
            None => c.auth.insert(match fresh {
                Some(d) => d,
                None => return,
            }),
        };
        let headers = match digest.respond(&c.invite, &resp) {
            Ok(h) => h,
            Err(e) => {
                let reason = format!("{} ({e})", resp.reason);
                return self.end_call(call, EndReason::Rejected { status: resp.status, reason });
            }
        };
        let mut req = c.invite.clone();
        for h in &headers {
            h.apply_to(&mut req.headers);
        }
        let realms = headers.iter().map(|h| h.realm.clone()).collect();
        self.events.push_back(UaEvent::Challenged { call, status: resp.status, realms });
        self.resend_invite(call, req, now);
    }

    /// Moves the call's INVITE to its next target, if it has one and nothing was settled
    /// with this one: `true` when it did.
    pub(super) fn fail_over(&mut self, call: CallRef, why: String, now: Instant) -> bool {
        let Some(c) = self.calls.get_mut(&call) else { return false };
        if c.hangup_pending || c.state == State::Confirmed {
            return false;
        }
        let Some(next) = c.alternates.pop_front() else { return false };
        let from = std::mem::replace(&mut c.peer, next);
        let req = c.invite.clone();
        self.events.push_back(UaEvent::Failover { call, from, to: next, why });
        self.resend_invite(call, req, now);
        true
    }

    /// Sends the call's INVITE again as `req` (changed headers) in a new transaction: same
    /// Call-ID and From tag, CSeq one up, a new branch (§8.1.3.5, §22.2).
    pub(super) fn resend_invite(&mut self, call: CallRef, mut req: Request, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.invite_seq += 1;
        let seq = c.invite_seq;
        req.headers.set(HeaderName::CSeq, SipStr::from(format!("{seq} INVITE")));
        // An early dialog from the refused attempt does not carry over.
        c.dialog = None;
        c.got_provisional = false;
        c.last_rseq = None;
        c.state = State::Calling;
        let dest = c.peer;
        let via = self.via(dest.transport);
        req.headers.remove(&HeaderName::Via);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req.clone(), dest, now);
        self.by_client.insert(key, (call, Purpose::Invite));
        if let Some(c) = self.calls.get_mut(&call) {
            c.invite = req;
        }
    }
}
