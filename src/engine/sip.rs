//! What the engine does with the UA's events: inbound calls, answers, in-dialog
//! requests, transfers, and the end of a call.

use super::call::{AgentPlan, Call, CallId, Negotiation, Opening, Origin, Phase, Transferring};
use super::core::Engine;
use super::io::{Action, MediaCommand, Persist, Refusal};
use crate::session;
use bytes::Bytes;
use dialtone_api::store::{CallStatus, DEFAULT_ORG};
use dialtone_sip::sdp::Direction;
use dialtone_sip::ua::{EndReason, Outgoing, RegistrationEvent, UaEvent, UserAgent};
use dialtone_sip::{Destination, HeaderName, Method, NameAddr, Request, Uri};
use std::time::Instant;

impl Engine {
    pub(super) fn on_sip(&mut self, now: Instant, ev: UaEvent, ua: &mut UserAgent) {
        match ev {
            UaEvent::IncomingCall { call, request, source, user } => {
                tracing::debug!(%call, from = %source, "incoming call");
                if let Some(u) = &user {
                    tracing::info!(%call, user = %u.username, org = %u.owner, "a SIP user's call");
                }
                self.incoming(now, call, &request, source, user.map(|u| u.owner), ua);
            }
            UaEvent::Confirmed { call, ack } => {
                tracing::debug!(%call, "call confirmed");
                // An INVITE without an offer: ours went in the 2xx, the answer is in the ACK.
                self.settle(call, &ack.body, "the ACK's answer gives no media");
            }
            UaEvent::InDialog { call, request } => self.in_dialog(now, call, &request, ua),
            UaEvent::Refer { call, request } => self.on_refer(now, call, &request, ua),
            UaEvent::Progress { call, response } => {
                let early = !response.body.is_empty()
                    && self.calls.get(&call).is_some_and(|c| c.early_media && matches!(c.sdp, Negotiation::Offered(_)));
                if early {
                    // RFC 3261 §13.2.1 / RFC 3960: the 18x's SDP is the answer to our offer;
                    // its media (ringback, an announcement) flows before the 2xx.
                    tracing::info!(%call, status = response.status, "early media");
                    self.settle(call, &response.body, "the 18x's answer gives no media");
                    if let Some(c) = self.calls.get_mut(&call).filter(|c| matches!(c.sdp, Negotiation::Running)) {
                        c.early = true;
                    }
                    self.persist_status(call, CallStatus::EarlyMedia, Some(response.status), None);
                } else if matches!(response.status, 180 | 183) {
                    self.persist_status(call, CallStatus::Ringing, Some(response.status), None);
                }
                if let Some(old) = self.calls.get(&call).and_then(|c| c.referrer) {
                    let _ = ua.notify_refer(old, response.status, &response.reason, now);
                }
            }
            UaEvent::Answered { call, response } => {
                if self.calls.get(&call).is_some_and(|c| c.early) && !response.body.is_empty() {
                    // The media runs since the 18x: the 2xx's SDP may move it.
                    if let Some((remote, dir)) = session::reoffer(&response.body) {
                        self.actions.push_back(Action::Media(call, MediaCommand::Update(remote, dir.sends())));
                    }
                }
                self.settle(call, &response.body, "the 2xx's answer gives no media");
                self.counters.answered += 1;
                // Answering-machine detection listens from the answer on (not to early media).
                let detect = self.calls.get(&call).filter(|c| matches!(c.sdp, Negotiation::Running));
                if let Some(mode) = detect.and_then(|c| c.machine_detection.clone()) {
                    self.actions.push_back(Action::Media(call, MediaCommand::Detect(mode)));
                }
                let referrer = match self.calls.get_mut(&call) {
                    Some(c) => {
                        c.phase = Phase::Live;
                        c.answered = true;
                        c.referrer.take()
                    }
                    None => None,
                };
                self.persist_status(call, CallStatus::InProgress, Some(response.status), None);
                self.dial_answered(now, call);
                if let Some(old) = referrer {
                    self.transfers -= 1;
                    tracing::info!(call = %old, new = %call, "transfer answered; ending the referring call");
                    let _ = ua.notify_refer(old, response.status, &response.reason, now);
                    let _ = ua.hangup(old, now);
                }
            }
            UaEvent::Reinvited { call, response } => {
                let Some(c) = self.calls.get_mut(&call) else { return };
                let Some(action) = c.pending.take() else { return };
                if response.status < 300 {
                    // Done: the call's timeline says so (`hold` / `unhold`).
                    if let Some(id) = c.api_id.clone() {
                        let detail = format!("{} {}", response.status, response.reason);
                        self.actions.push_back(Action::Persist(Persist::Event { id, kind: action.into(), detail }));
                    }
                    return;
                }
                tracing::warn!(%call, action, status = response.status, "re-INVITE refused; the session is as it was");
                if action == "hold" {
                    // Not held after all: the peer still sends.
                    self.actions.push_back(Action::Media(call, MediaCommand::ExpectRx(true)));
                }
                if let Some(id) = c.api_id.clone() {
                    let detail = format!("{} {}", response.status, response.reason);
                    let p = Persist::ActionFailed { id, action: action.into(), detail };
                    self.actions.push_back(Action::Persist(p));
                }
            }
            UaEvent::Failover { call, from, to, why } => {
                tracing::warn!(%call, %from, %to, why, "the server failed; trying the next one (RFC 3263)");
                let detail = format!("{from} {why}; now {to}");
                if let Some(id) = self.calls.get(&call).and_then(|c| c.api_id.clone()) {
                    let p = Persist::Event { id, kind: "failover".into(), detail: detail.clone() };
                    self.actions.push_back(Action::Persist(p));
                }
                if self.calls.get(&call).is_some_and(|c| c.dial.is_some()) {
                    self.actions.push_back(Action::DialNote(call, format!("failover: {detail}")));
                }
            }
            UaEvent::UserRegistered { user, owner, bindings } => {
                tracing::info!(user, org = %owner, bindings, "SIP user registered");
            }
            UaEvent::AddressLearned { addr } => {
                tracing::info!(%addr, "public address learned from the registrar (received/rport); Via and Contact use it");
                if self.cfg.learn_media {
                    self.cfg.media_ip = addr.ip();
                }
            }
            UaEvent::SourceBlocked { addr, until } => {
                let seconds = until.saturating_duration_since(now).as_secs();
                tracing::warn!(%addr, seconds, "SIP source blocked: too many refused requests; not answered for a while");
            }
            UaEvent::Registration(ev) => {
                if matches!(ev, RegistrationEvent::Unregistered { .. }) {
                    self.unregistering = false;
                }
                match &ev {
                    RegistrationEvent::Registered { .. } => self.trunks.set_registered("default", true),
                    RegistrationEvent::Failed { .. } | RegistrationEvent::Unregistered { .. } => {
                        self.trunks.set_registered("default", false)
                    }
                    _ => {}
                }
                log_registration(&ev);
            }
            UaEvent::Terminated { call, reason } => self.terminated(now, call, reason, ua),
            UaEvent::OptionsAnswered { probe, status } => self.probe_answered(now, probe, status),
            UaEvent::TrunkRegistration { key, event } => {
                match &event {
                    RegistrationEvent::Registered { .. } => self.trunks.set_registered(&key, true),
                    RegistrationEvent::Failed { .. } | RegistrationEvent::Unregistered { .. } => {
                        self.trunks.set_registered(&key, false)
                    }
                    _ => {}
                }
                tracing::info!(trunk = %key, event = ?event, "trunk registration");
            }
            _ => {}
        }
    }

    /// A new INVITE: kept in the store, then refused, or rung and answered per
    /// `DIALTONE_INBOUND` once a port is bound.
    fn incoming(
        &mut self,
        now: Instant,
        call: CallId,
        req: &Request,
        source: Destination,
        owner: Option<String>,
        ua: &mut UserAgent,
    ) {
        self.counters.offered += 1;
        if self.cfg.max_calls.is_some_and(|m| self.calls.len() + self.permits.by_id.len() >= m as usize) {
            // DIALTONE_MAX_CALLS: busy here, try elsewhere (RFC 3261 §21.5.4).
            tracing::warn!(%call, "at DIALTONE_MAX_CALLS: 503");
            self.counters.refused += 1;
            let _ = ua.reject(call, 503, now);
            return;
        }
        // RFC 3891: an INVITE that replaces one of our confirmed dialogs takes that call's
        // place; one naming no such dialog is refused.
        let replaces = match ua.replaced_call(req) {
            Ok(r) => r.filter(|old| self.calls.contains_key(old)),
            Err(status) => {
                tracing::info!(%call, status, "refusing an INVITE whose Replaces names no call of ours");
                self.counters.refused += 1;
                let _ = ua.reject(call, status, now);
                return;
            }
        };
        let mut c = Call::new(Origin::Inbound, Phase::Opening);
        c.transport = source.transport;
        let facts = super::inbound::Facts::of(req);
        let found = super::inbound::find(&self.numbers, &facts.called);
        let number = found.as_ref().map(|(row, _)| Box::new((*row).clone()));
        // The number's organization owns the call; a SIP user's call is its own
        // organization's; any other the default one's (whose policy its REFERs meet).
        let org = owner
            .or_else(|| replaces.and_then(|old| self.calls.get(&old)?.org.clone()))
            .or_else(|| number.as_ref().map(|n| n.organization_id.clone()))
            .unwrap_or_else(|| DEFAULT_ORG.to_string());
        c.org = Some(org.clone());
        c.called = found.map(|(_, n)| n).or_else(|| facts.called.first().cloned());
        c.trunk = self.trunks.by_source(source.addr.ip());
        c.asserted = facts.asserted.clone();
        let uri = |h: HeaderName, name: &'static str| {
            req.headers.get(&h).and_then(|v| NameAddr::parse(v, name).ok().map(|n| n.uri_text.to_string()))
        };
        c.agent = Some(AgentPlan {
            call_id: format!("call-{}", call.0),
            from: uri(HeaderName::From, "From"),
            to: uri(HeaderName::To, "To"),
            // The INVITE's X- headers reach the agent as Twilio's customParameters do.
            custom: facts.headers.clone(),
            ..AgentPlan::default()
        });
        if let Some(n) = &number {
            c.record = n.record;
            c.max_duration = n.max_duration.map(|s| std::time::Duration::from_secs(u64::from(s)));
        }
        let caller = party(req, HeaderName::From, "From").unwrap_or_else(|| "unknown".into());
        let caller = dialtone_api::routing::e164(&caller).unwrap_or(caller);
        c.caller = Some(caller.clone());
        if self.cfg.store {
            // Kept as `direction: inbound`: the caller (From's user, as E.164 when it is
            // a number, else its URI) as `phone_number` and `contact_id`, the number called
            // as `from_number`. Its life follows as an API call's does.
            let id = format!("call_{:016x}", self.next_seed());
            tracing::info!(%call, id = %id, caller = %caller, number = ?number.as_ref().map(|n| &n.number), "inbound call");
            let called = c.called.clone().or_else(|| party(req, HeaderName::To, "To"));
            let p = Persist::Inbound {
                id: id.clone(),
                caller,
                called,
                org,
                referred_by: None,
                sip_headers: facts.headers,
                asserted_identity: facts.asserted,
                number_id: number.as_ref().map(|n| n.id.clone()),
            };
            self.actions.push_back(Action::Persist(p));
            c.api_id = Some(id);
        }
        if let Some(old) = replaces {
            // It takes the old call's place: answered, joined to what the old one was
            // joined to (its bridge, its conference); the old one is hung up then.
            tracing::info!(%call, %old, "INVITE with Replaces: taking the call's place");
            c.replaces = Some(old);
            if let (Some(id), Some(old_id)) = (&c.api_id, self.calls.get(&old).and_then(|o| o.api_id.clone())) {
                self.persist_event(id, "replaces", old_id);
            }
            self.insert(call, c, ua);
            // Answered whatever DIALTONE_INBOUND says (the old call was let in); until it is
            // joined, it hears silence.
            self.act_inbound(now, call, Some(dialtone_api::routing::InboundAction::Echo), req.body.clone(), ua);
            if let Some(c) = self.calls.get_mut(&call) {
                c.answer_with = Some(super::SourceSpec::Silence);
            }
            return;
        }
        // A number's action; a number nobody has: DIALTONE_INBOUND while there are no
        // numbers or when it was set, else 404.
        let action = match &number {
            Some(n) => Some(n.action.clone()),
            None if self.numbers.is_empty() || self.cfg.inbound_explicit => None,
            None => Some(dialtone_api::routing::InboundAction::Reject { status: 404 }),
        };
        c.number = number;
        self.insert(call, c, ua);
        self.act_inbound(now, call, action, req.body.clone(), ua);
    }

    /// The port for an inbound call is bound: answer its offer (or offer in the 2xx).
    pub(super) fn answer_offer(&mut self, now: Instant, call: CallId, port: u16, offer: Bytes, ua: &mut UserAgent) {
        let Some(c) = self.calls.get_mut(&call) else {
            // Gone meanwhile (cancelled): the port is free again.
            self.ports.give_back(port);
            self.actions.push_back(Action::ClosePort(port));
            return;
        };
        c.port = Some(port);
        let ip = self.cfg.media_ip;
        let transport = c.transport;
        let srtp = self.sdes_for(transport);
        let srtp = match srtp {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(%call, why, "refusing the call (488)");
                return self.refuse_offer(now, call, port, 488, ua);
            }
        };
        let sdp = if offer.is_empty() {
            // No offer in the INVITE: we offer in the 2xx, the answer comes in the ACK
            // (RFC 3261 §13.2.1); the media starts then.
            let ours = session::offer_sdp(ip, port, srtp);
            let text = Bytes::from(ours.to_string());
            if let Some(c) = self.calls.get_mut(&call) {
                c.sdp = Negotiation::Offered(Box::new(ours));
            }
            text
        } else {
            match session::answer(&offer, ip, port, srtp) {
                Ok((sdp, negotiated)) => {
                    match self.media_config(call, &negotiated) {
                        Ok(config) => {
                            if let Some(c) = self.calls.get_mut(&call) {
                                c.sdp = Negotiation::Settled(Box::new(config));
                            }
                        }
                        Err(why) => tracing::warn!(%call, why, "call without media"),
                    }
                    sdp
                }
                Err(status) => return self.refuse_offer(now, call, port, status, ua),
            }
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Ringing { sdp: sdp.clone() };
        }
        if let Some(prompt) = self.calls.get(&call).and_then(|c| c.pre_answer.clone()) {
            // The number's announcement as early media: a 183 with our answer (reliable
            // where the caller supports it), the media now, the prompt before the call's
            // own source; the answer, or the refusal, when it has played.
            if ua.ring(call, 183, Some(sdp), now).is_ok() {
                self.persist_status(call, CallStatus::EarlyMedia, Some(183), None);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.early = true;
                }
                self.start_media(call);
                self.actions.push_back(Action::Announce(call, prompt));
                return;
            }
            if let Some(c) = self.calls.get_mut(&call) {
                c.pre_answer = None;
            }
        }
        // Ring (180), then answer at once or after `DIALTONE_ANSWER_AFTER_MS`.
        if ua.ring(call, 180, None, now).is_ok() {
            self.persist_status(call, CallStatus::Ringing, Some(180), None);
        }
        if self.cfg.answer_after.is_zero() {
            self.answer(now, call, ua);
        } else {
            self.answer_at.push_back((now + self.cfg.answer_after, call));
        }
    }

    /// Refuses an inbound call's offer with `status`; its port goes back.
    fn refuse_offer(&mut self, now: Instant, call: CallId, port: u16, status: u16, ua: &mut UserAgent) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.port = None;
        }
        self.ports.give_back(port);
        self.actions.push_back(Action::ClosePort(port));
        self.counters.refused += 1;
        tracing::info!(%call, status, "refusing the offer");
        let _ = ua.reject(call, status, now);
    }

    /// An inbound call's announcement (its number's `pre_answer`) has played: it is refused
    /// with its number's status, or answered and hears its own source.
    pub(super) fn announced(&mut self, now: Instant, call: CallId, ua: &mut UserAgent) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if !matches!(c.phase, Phase::Ringing { .. }) || c.pre_answer.take().is_none() {
            return;
        }
        if let Some(status) = c.refuse_after.take() {
            tracing::info!(%call, status, "announcement played: refusing the call");
            return self.refuse(now, call, status, ua);
        }
        tracing::info!(%call, "announcement played: answering");
        self.actions.push_back(Action::Unbridge(call));
        self.answer(now, call, ua);
    }

    /// Answers a ringing inbound call (the caller may have cancelled meanwhile).
    pub(super) fn answer(&mut self, now: Instant, call: CallId, ua: &mut UserAgent) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Phase::Ringing { sdp } = std::mem::replace(&mut c.phase, Phase::Live) else { return };
        if ua.answer(call, sdp, now).is_ok() {
            self.counters.answered += 1;
            c.answered = true;
            if let Some(talk) = c.max_duration {
                self.set_deadline(call, now + talk);
            }
            self.persist_status(call, CallStatus::InProgress, Some(200), None);
            self.start_media(call);
            self.take_place(now, call, ua);
        }
    }

    /// A call whose INVITE replaced another's dialog (RFC 3891) is answered: it is joined
    /// to what the old call was joined to (its bridge, its conference), and the old call
    /// is hung up (`replaced`).
    fn take_place(&mut self, now: Instant, call: CallId, ua: &mut UserAgent) {
        let Some(old) = self.calls.get_mut(&call).and_then(|c| c.replaces.take()) else { return };
        let Some(o) = self.calls.get(&old) else { return };
        let (partner, conference, old_id) = (o.bridged, o.conference.clone(), o.api_id.clone());
        if let Some(p) = partner {
            let _ = self.unbridge(old, false);
            if let Err(e) = self.bridge_calls(call, p) {
                tracing::warn!(%call, %p, error = ?e, "the replacing call cannot take the bridge");
            }
        }
        if let Some((conf, muted)) = conference {
            if let Err(e) = self.seat(call, conf, muted) {
                tracing::warn!(%call, error = ?e, "the replacing call cannot take the conference seat");
            }
        }
        if let Some(id) = old_id {
            self.persist_event(
                &id,
                "replaced",
                self.calls.get(&call).and_then(|c| c.api_id.clone()).unwrap_or_default(),
            );
        }
        tracing::info!(%call, %old, "replaced: hanging up the old call");
        self.hang_up_for(now, old, "replaced".into(), ua);
    }

    /// The answer to our offer arrived (2xx or ACK): the media can start.
    fn settle(&mut self, call: CallId, answer: &[u8], what: &str) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if !matches!(c.sdp, Negotiation::Offered(_)) {
            return;
        }
        let Negotiation::Offered(offer) = std::mem::take(&mut c.sdp) else { return };
        let config = session::negotiate(&offer, answer).and_then(|n| self.media_config(call, &n));
        match config {
            Ok(config) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.sdp = Negotiation::Settled(Box::new(config));
                }
                self.start_media(call);
            }
            Err(why) => tracing::warn!(%call, why, "{what}"),
        }
    }

    /// No port could be bound for `then`.
    pub(super) fn no_port(&mut self, now: Instant, then: Opening, ua: &mut UserAgent) {
        match then {
            Opening::Answer { call, .. } => {
                self.counters.refused += 1;
                let _ = ua.reject(call, 503, now);
            }
            Opening::Place(p) => {
                if let Some(org) = &p.org {
                    self.org_call_ended(org);
                }
                self.originate_failed(&p.id, "no free RTP port");
            }
            Opening::Transfer(t) => {
                if let Some(org) = &t.org {
                    self.org_call_ended(org);
                }
                let _ = ua.notify_refer(t.referrer, 503, "Service Unavailable", now);
            }
            Opening::Dial(_) => {
                let why = Refusal::Unavailable("no free RTP port in DIALTONE_RTP_PORTS".into());
                self.actions.push_back(Action::Dialed(Err(why)));
            }
        }
    }

    /// An in-dialog request the UA answered: a transfer's progress, a REFER, DTMF by SIP
    /// INFO, or a new offer (hold, resume, a moved peer) for the call's media.
    fn in_dialog(&mut self, now: Instant, call: CallId, req: &Request, ua: &mut UserAgent) {
        let Some(c) = self.calls.get(&call) else { return };
        match req.method {
            Method::Notify if c.dial.is_some() => self.dial_notify(now, call, req, ua),
            Method::Notify if c.api_id.is_some() => {
                // Progress of a transfer we asked for (RFC 3515 §2.4.5, a sipfrag): done
                // at a 2xx, failed at a final non-2xx.
                let frag = String::from_utf8_lossy(&req.body);
                let line = frag.lines().next().unwrap_or("").trim().to_string();
                let status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
                tracing::info!(%call, status, "transfer progress");
                match status {
                    Some(200..=299) => {
                        let _ = ua.hangup(call, now);
                    }
                    Some(300..) => {
                        if let Some(id) = c.api_id.clone() {
                            let p = Persist::ActionFailed { id, action: "transfer".into(), detail: line };
                            self.actions.push_back(Action::Persist(p));
                        }
                    }
                    _ => {}
                }
            }
            Method::Info => {
                let ct = req.headers.get(&HeaderName::ContentType).map(|v| v.as_str()).unwrap_or("");
                match session::info_dtmf(ct, &req.body) {
                    Some((digit, duration_ms)) => {
                        tracing::info!(call = call.0, digit = %digit, duration_ms, via = %"info", "dtmf received");
                        self.actions.push_back(Action::AgentDtmf(call, digit));
                    }
                    None => tracing::debug!(%call, content_type = ct, "INFO without a DTMF body"),
                }
            }
            Method::Invite | Method::Update if !req.body.is_empty() => {
                let Some((remote, dir)) = session::reoffer(&req.body) else {
                    return tracing::warn!(%call, "unreadable SDP in a re-offer; media unchanged");
                };
                tracing::info!(%call, direction = dir.as_str(), remote = ?remote, "re-offer answered");
                if matches!(c.sdp, Negotiation::Running) {
                    self.actions.push_back(Action::Media(call, MediaCommand::Update(remote, dir.sends())));
                    let rx = matches!(dir, Direction::SendRecv | Direction::RecvOnly);
                    self.actions.push_back(Action::Media(call, MediaCommand::ExpectRx(rx)));
                }
            }
            _ => {}
        }
    }

    /// A REFER on `call` (RFC 3515): accepted (202) and acted on only when the policy
    /// allows its target; otherwise 403 and the call goes on.
    fn on_refer(&mut self, now: Instant, call: CallId, req: &Request, ua: &mut UserAgent) {
        let target = req
            .headers
            .get(&HeaderName::ReferTo)
            .and_then(|v| NameAddr::parse(v, "Refer-To").ok().map(|n| n.uri_text.to_string()))
            .unwrap_or_default();
        let decided = super::refer::decide(&self.cfg.refer, &target, self.cfg.trunk, self.cfg.trunk_host.as_deref());
        match decided {
            Ok(to) => {
                // The referring call's organization pays for the new one: its limits and
                // allowed destinations hold.
                let number = super::refer::number_in(&to.uri);
                let org = match self.admit_for(call, number.as_deref(), now) {
                    Ok(org) => org,
                    Err(why) => {
                        tracing::warn!(%call, target, why = ?why, "REFER refused by the organization's policy (403)");
                        let _ = ua.answer_refer(call, false, now);
                        return;
                    }
                };
                tracing::info!(%call, target, "REFER accepted");
                let _ = ua.answer_refer(call, true, now);
                self.transfer(now, call, to.uri, to.dest, org, ua);
            }
            Err(why) => {
                tracing::warn!(%call, target, why, "REFER refused (403)");
                let _ = ua.answer_refer(call, false, now);
            }
        }
    }

    /// A REFER we accepted on `old`: call `uri` at `dest`, reporting progress to the
    /// referrer in NOTIFYs; when the new call is answered the old one is hung up.
    fn transfer(
        &mut self,
        now: Instant,
        old: CallId,
        uri: String,
        dest: Destination,
        org: Option<String>,
        ua: &mut UserAgent,
    ) {
        let then = Opening::Transfer(Box::new(Transferring { referrer: old, uri, dest, org }));
        if let Err(then) = self.open_port(then, 0) {
            self.no_port(now, then, ua);
        }
    }

    /// The port for a transfer's call is bound: place it.
    pub(super) fn place_transfer(&mut self, now: Instant, t: Transferring, port: u16, ua: &mut UserAgent) {
        let Transferring { referrer: old, uri, dest, org } = t;
        // A transfer's call is as secure as it can be; where keys cannot go, plain.
        let offer = session::offer_sdp(self.cfg.media_ip, port, self.sdes_for(dest.transport).unwrap_or(None));
        let out = Outgoing {
            request_uri: uri.clone(),
            from: format!("<sip:dialtone@{}>", crate::call::host_literal(self.cfg.media_ip)),
            to: format!("<{uri}>"),
            dest,
            body: Some(Bytes::from(offer.to_string())),
            extra: Vec::new(),
            alternates: Vec::new(),
            credentials: None,
        };
        match ua.invite(out, now) {
            Ok(new) => {
                tracing::info!(call = %old, new = %new, target = %uri, "transferring (REFER)");
                let mut c = Call::new(Origin::Transfer, Phase::Calling);
                c.port = Some(port);
                c.sdp = Negotiation::Offered(Box::new(offer));
                c.referrer = Some(old);
                // A stored call of the referring call's organization, linked to it: its
                // life shows in the API and the organization's webhooks.
                let referred_by = self.calls.get(&old).and_then(|r| r.api_id.clone());
                if let (true, Some(org)) = (self.cfg.store, &org) {
                    let id = format!("call_{:016x}", self.next_seed());
                    tracing::info!(call = %new, id = %id, referred_by = ?referred_by, "the REFER's call is kept");
                    let caller = "dialtone".to_string();
                    let p = Persist::Inbound {
                        id: id.clone(),
                        caller,
                        called: Some(uri.clone()),
                        org: org.clone(),
                        referred_by,
                        sip_headers: Vec::new(),
                        asserted_identity: None,
                        number_id: None,
                    };
                    self.actions.push_back(Action::Persist(p));
                    c.api_id = Some(id);
                }
                c.counted = org.is_some();
                c.org = org;
                self.insert(new, c, ua);
                let _ = ua.notify_refer(old, 100, "Trying", now);
            }
            Err(e) => {
                tracing::warn!(call = %old, target = %uri, error = %e, "cannot place the REFER's call");
                self.ports.give_back(port);
                self.actions.push_back(Action::ClosePort(port));
                if let Some(org) = &org {
                    self.org_call_ended(org);
                }
                let _ = ua.notify_refer(old, 400, "Bad Request", now);
            }
        }
    }

    /// The call is over: its record gets its final status, its media and port go.
    fn terminated(&mut self, now: Instant, call: CallId, reason: EndReason, ua: &mut UserAgent) {
        tracing::debug!(%call, ?reason, "call ended");
        if self.retry_elsewhere(now, call, &reason, ua) {
            return;
        }
        // Its bridge ends with it: the other call hears its own source again.
        let _ = self.unbridge(call, false);
        let Some(c) = self.remove(call) else { return };
        if let Some(old) = c.referrer {
            // The transfer failed: the referrer hears why; its call goes on.
            let status = reason.status();
            tracing::info!(call = %old, new = %call, status, "transfer failed");
            let _ = ua.notify_refer(old, status, dialtone_sip::reason_phrase(status), now);
        }
        if self.transfers > 0 {
            for other in self.calls.values_mut().filter(|o| o.referrer == Some(call)) {
                other.referrer = None;
                self.transfers -= 1;
            }
        }
        if let Some(id) = c.api_id {
            let (to, why) = end_status(&reason, c.answered, c.ended_why);
            let sip_status = match &reason {
                EndReason::LocalBye | EndReason::RemoteBye => None,
                r => Some(r.status()),
            };
            tracing::info!(%call, id = %id, status = %to, "api call");
            let by = ended_by(&reason, c.origin == Origin::Inbound).to_string();
            self.actions.push_back(Action::Persist(Persist::Event {
                id: id.clone(),
                kind: "ended_by".into(),
                detail: by,
            }));
            self.actions.push_back(Action::Persist(Persist::Status { id, to, sip_status, reason: why }));
        }
        if let Some(d) = c.dial {
            self.dial_ended(call, *d, c.answered, &reason);
        }
        if c.port.is_some() {
            self.actions.push_back(Action::EndMedia(call, c.port));
            match reason {
                EndReason::LocalBye | EndReason::RemoteBye => self.counters.completed += 1,
                EndReason::Cancelled => self.counters.cancelled += 1,
                _ => self.counters.failed += 1,
            }
        }
    }
}

/// A kept call's final status and why, from how it ended, whether it was answered, and
/// why we ended it ourselves.
pub fn end_status(reason: &EndReason, answered: bool, ours: Option<String>) -> (CallStatus, Option<String>) {
    use CallStatus as S;
    match (reason, answered) {
        (EndReason::LocalBye, true) if ours.is_some() => (S::Completed, ours),
        (EndReason::LocalBye | EndReason::RemoteBye, true) => (S::Completed, None),
        // We ended it before the answer, and the 2xx crossed our CANCEL (RFC 3261 §9.1):
        // ACKed and ended by BYE at once; for the API it was cancelled.
        (EndReason::LocalBye, false) => (S::Canceled, Some("answered as it was cancelled; ended by BYE".into())),
        (EndReason::Rejected { status: 486 | 600, reason }, _) => (S::Busy, Some(reason.clone())),
        (EndReason::Rejected { status: 408 | 480, reason }, _) => (S::NoAnswer, Some(reason.clone())),
        (EndReason::Cancelled, false) if ours.as_deref() == Some("ring_timeout") => (S::NoAnswer, ours),
        (EndReason::Cancelled, _) => (S::Canceled, None),
        (EndReason::Rejected { reason, .. }, _) => (S::Failed, Some(reason.clone())),
        (r, _) => (S::Failed, Some(format!("{r:?}"))),
    }
}

/// Who ended a call: `remote`, `dialtone` or `network`. `inbound`: the peer sent the
/// INVITE (so a CANCEL was theirs and a refusal ours).
pub fn ended_by(reason: &EndReason, inbound: bool) -> &'static str {
    match reason {
        EndReason::RemoteBye => "remote",
        EndReason::LocalBye | EndReason::SessionExpired => "dialtone",
        EndReason::Cancelled => {
            if inbound {
                "remote"
            } else {
                "dialtone"
            }
        }
        EndReason::Rejected { .. } => {
            if inbound {
                "dialtone"
            } else {
                "remote"
            }
        }
        EndReason::Timeout | EndReason::TransportError => "network",
    }
}

/// From's or To's user (else its URI), at most 128 characters.
fn party(req: &Request, h: HeaderName, name: &'static str) -> Option<String> {
    let n = NameAddr::parse(req.headers.get(&h)?, name).ok()?;
    let uri = Uri::parse(n.uri_text).ok();
    let user = uri.as_ref().and_then(|u| u.as_sip()).and_then(|s| s.user.map(str::to_string));
    Some(user.unwrap_or_else(|| n.uri_text.to_string()).chars().take(128).collect())
}

fn log_registration(ev: &RegistrationEvent) {
    match ev {
        RegistrationEvent::Registered { expires } => tracing::info!(state = %"registered", expires, "registration"),
        RegistrationEvent::Failed { status, reason, retry_in } => tracing::warn!(
            state = %"failed",
            status,
            reason = %reason,
            retry_in_s = retry_in.as_secs(),
            "registration"
        ),
        RegistrationEvent::Unregistered { status } => tracing::info!(state = %"unregistered", status, "registration"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_status_maps_how_a_call_ended() {
        let rejected = |status: u16| EndReason::Rejected { status, reason: "x".into() };
        assert_eq!(end_status(&EndReason::RemoteBye, true, None), (CallStatus::Completed, None));
        assert_eq!(
            end_status(&EndReason::LocalBye, true, Some("agent closed".into())).1.as_deref(),
            Some("agent closed")
        );
        assert_eq!(end_status(&rejected(486), false, None).0, CallStatus::Busy);
        assert_eq!(end_status(&rejected(600), false, None).0, CallStatus::Busy);
        assert_eq!(end_status(&rejected(480), false, None).0, CallStatus::NoAnswer);
        assert_eq!(end_status(&rejected(404), false, None).0, CallStatus::Failed);
        assert_eq!(end_status(&EndReason::Cancelled, false, None).0, CallStatus::Canceled);
        assert_eq!(end_status(&EndReason::Timeout, false, None), (CallStatus::Failed, Some("Timeout".into())));
        // A BYE before the answer is not a completed call.
        assert_eq!(end_status(&EndReason::RemoteBye, false, None).0, CallStatus::Failed);
        assert_eq!(end_status(&EndReason::LocalBye, false, None).0, CallStatus::Canceled);
    }

    #[test]
    fn who_ended_a_call_depends_on_its_direction() {
        let rejected = EndReason::Rejected { status: 486, reason: "Busy Here".into() };
        // (how it ended, inbound, who)
        let cases = [
            (EndReason::RemoteBye, false, "remote"),
            (EndReason::LocalBye, true, "dialtone"),
            (EndReason::Cancelled, true, "remote"),
            (EndReason::Cancelled, false, "dialtone"),
            (rejected.clone(), false, "remote"),
            (rejected, true, "dialtone"),
            (EndReason::SessionExpired, false, "dialtone"),
            (EndReason::Timeout, false, "network"),
            (EndReason::TransportError, true, "network"),
        ];
        for (reason, inbound, who) in cases {
            assert_eq!(ended_by(&reason, inbound), who, "{reason:?} inbound {inbound}");
        }
    }
}
