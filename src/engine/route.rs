//! Outbound routing (issue 15): an API call gets a place on a trunk when it is admitted
//! (the longest matching prefix, then priority; a trunk at its limit is skipped, 429 when
//! none has room), goes out through it with that trunk's caller-ID rules, codecs and SRTP,
//! and moves to the next trunk when one fails it (408, 5xx, no answer within Timer B, a
//! transport failure). Every attempt is an event on the call.

use super::call::{Call, CallId, Negotiation, Origin, Phase, Placing, Route};
use super::core::Engine;
use super::io::{Action, Persist, Refusal};
use super::trunk::{NoTrunk, Trunk};
use crate::session;
use bytes::Bytes;
use dialtone_api::http::Originate;
use dialtone_sip::sdp::SessionDescription;
use dialtone_sip::ua::{EndReason, Outgoing, UserAgent};
use dialtone_sip::HeaderName;
use std::time::Instant;

impl Engine {
    /// May `org` place call `call_id` to `number` now? Its own policy, the global cap, and
    /// a trunk with room; a yes holds the call's places until it is placed or lapses.
    pub(super) fn admit_call(&mut self, org: &str, number: &str, call_id: &str, now: Instant) -> Result<(), Refusal> {
        if self.draining.is_some() || self.stop_by.is_some() {
            return Err(Refusal::Unavailable("dialtone is draining (shutting down): place the call elsewhere".into()));
        }
        if self.fenced {
            return Err(Refusal::Unavailable(
                "this node cannot reach the shared store: place the call through another node".into(),
            ));
        }
        if let Some(max) = self.cfg.max_calls {
            let busy = self.calls.len() + self.permits.by_id.len();
            if busy >= max as usize {
                return Err(Refusal::TooMany("max_calls", format!("dialtone has {busy} calls up, its limit"), 1));
            }
        }
        let candidates = self.trunks.candidates(Some(org), number);
        if candidates.is_empty() {
            return Err(Refusal::Unavailable(format!("no trunk serves {number}")));
        }
        let permit = self.admit(org, Some(number), now)?;
        match self.trunks.reserve(&candidates, &[], now) {
            Ok(trunk) => {
                self.permits.trunk.insert(permit, trunk);
                self.permits.by_call.insert(call_id.to_string(), permit);
                Ok(())
            }
            Err(no) => {
                self.release(permit);
                match no {
                    NoTrunk::Full(wait) => Err(Refusal::TooMany(
                        "trunk_limit",
                        format!("every trunk for {number} is at its limit"),
                        wait.as_secs_f64().ceil().max(1.0) as u64,
                    )),
                    NoTrunk::Down => Err(Refusal::Unavailable(format!(
                        "every trunk for {number} is down (its OPTIONS go unanswered)"
                    ))),
                    NoTrunk::None => Err(Refusal::Unavailable(format!("no trunk serves {number}"))),
                }
            }
        }
    }

    /// The port for an API call is bound: send the INVITE through its trunk.
    pub(super) fn place(&mut self, now: Instant, p: Placing, port: u16, ua: &mut UserAgent) {
        let Placing { id, org, trunk, o } = p;
        let mut route = Box::new(Route { trunk, tried: Vec::new(), o });
        let offer = match self.trunk_offer(&route.trunk, port) {
            Ok(offer) => offer,
            Err(why) => {
                self.trunks.give_back(&route.trunk);
                self.ports.give_back(port);
                self.actions.push_back(Action::ClosePort(port));
                if let Some(org) = &org {
                    self.org_call_ended(org);
                }
                return self.originate_failed(&id, &why);
            }
        };
        let mut c = Call::new(Origin::Api, Phase::Calling);
        c.port = Some(port);
        c.api_id = Some(id.clone());
        c.counted = org.is_some();
        c.org = org;
        c.record = route.o.record;
        // Early media (a 183's): recorded, and to the agent when asked; a call with an agent
        // that did not ask starts its media at the answer, with its agent.
        c.early_media = route.o.early_media || route.o.agent_url.is_none();
        c.machine_detection = route.o.machine_detection.clone();
        c.max_duration = route.o.max_duration.map(|s| std::time::Duration::from_secs(u64::from(s)));
        let deadline = route.o.ring_timeout.map(|s| now + std::time::Duration::from_secs(u64::from(s)));
        loop {
            match self.send_through_trunk(now, &route, &offer, ua) {
                Ok((call, from, to)) => {
                    c.sdp = Negotiation::Offered(Box::new(offer));
                    c.agent = route.o.agent_url.clone().map(|url| super::call::AgentPlan {
                        url: Some(url),
                        format: route.o.agent_format.clone(),
                        call_id: id.clone(),
                        contact_id: route.o.contact_id.clone(),
                        from: Some(from),
                        to: Some(to),
                        custom: Vec::new(),
                    });
                    c.route = Some(route);
                    self.insert(call, c, ua);
                    if let Some(at) = deadline {
                        self.set_deadline(call, at);
                    }
                    return;
                }
                Err(why) => {
                    // This trunk cannot be used at all: the next one, if any.
                    if !self.next_trunk(now, &id, c.org.as_deref(), &mut route, &why) {
                        self.trunks.give_back(&route.trunk);
                        self.ports.give_back(port);
                        self.actions.push_back(Action::ClosePort(port));
                        if let Some(org) = c.org.as_deref().filter(|_| c.counted) {
                            self.org_call_ended(org);
                        }
                        return self.originate_failed(&id, &why);
                    }
                }
            }
        }
    }

    /// Our offer for a call through trunk `id` on `port`: its codecs, its SRTP policy.
    fn trunk_offer(&self, id: &str, port: u16) -> Result<SessionDescription, String> {
        let t = self.trunks.get(id).ok_or_else(|| format!("trunk {id} is gone"))?;
        let transport = t.servers.first().map(|d| d.transport).ok_or("the trunk has no server")?;
        let srtp = match t.srtp {
            None => self.sdes_for(transport),
            Some(mode) => self.sdes_with(mode, transport),
        }
        .map_err(str::to_string)?;
        Ok(session::offer_with_codecs(self.cfg.media_ip, port, srtp, &t.codecs))
    }

    /// Sends the INVITE of `route`'s call through its trunk: the call, its From and To.
    fn send_through_trunk(
        &mut self,
        now: Instant,
        route: &Route,
        offer: &SessionDescription,
        ua: &mut UserAgent,
    ) -> Result<(CallId, String, String), String> {
        let t = self.trunks.get(&route.trunk).ok_or_else(|| format!("trunk {} is gone", route.trunk))?;
        let out = outgoing(t, &route.o, Bytes::from(offer.to_string()))?;
        let (from, to) = (out.from.clone(), out.request_uri.clone());
        let detail = format!("trunk {} ({}): INVITE {to}", t.name, out.dest);
        let call = ua.invite(out, now).map_err(|e| format!("trunk {}: {e}", route.trunk))?;
        tracing::info!(%call, id = %route.o.id, trunk = %route.trunk, to = %to, "placing an API call");
        self.persist_event(&route.o.id, "attempt", detail);
        Ok((call, from, to))
    }

    /// Moves `route` to the next trunk with room that it has not tried; false when none
    /// is left. The move is an event on the call.
    fn next_trunk(&mut self, now: Instant, id: &str, org: Option<&str>, route: &mut Route, why: &str) -> bool {
        let candidates = self.trunks.candidates(org, &route.o.phone_number);
        let mut skip = route.tried.clone();
        skip.push(route.trunk.clone());
        let Ok(next) = self.trunks.reserve(&candidates, &skip, now) else { return false };
        self.trunks.give_back(&route.trunk);
        let old = std::mem::replace(&mut route.trunk, next);
        let name = |e: &Engine, t: &str| e.trunks.get(t).map_or_else(|| t.to_string(), |t| t.name.clone());
        let detail = format!("trunk {}: {why}; trying trunk {}", name(self, &old), name(self, &route.trunk));
        tracing::warn!(id, detail, "trunk failover");
        self.persist_event(id, "failover", detail);
        route.tried.push(old);
        true
    }

    /// An API call through a trunk failed before the answer: when the failure is the
    /// trunk's (408, 5xx, Timer B, transport) and another trunk has room, the call goes
    /// on there as a new INVITE on the same port with the same offer. True when it did.
    pub(super) fn retry_elsewhere(
        &mut self,
        now: Instant,
        call: CallId,
        reason: &EndReason,
        ua: &mut UserAgent,
    ) -> bool {
        let trunks_fault = match reason {
            EndReason::Rejected { status, .. } => *status == 408 || (500..=599).contains(status),
            EndReason::Timeout | EndReason::TransportError => true,
            _ => false,
        };
        let Some(c) = self.calls.get(&call) else { return false };
        if !trunks_fault || c.answered || c.ended_why.is_some() || c.route.is_none() || c.api_id.is_none() {
            return false;
        }
        let why = match reason {
            EndReason::Rejected { status, reason } => format!("{status} {reason}"),
            EndReason::Timeout => "no answer within Timer B".to_string(),
            _ => "transport failure".to_string(),
        };
        let Some(mut c) = self.calls.remove(&call) else { return false };
        let id = c.api_id.clone().unwrap_or_default();
        self.by_api.remove(&id);
        let Some(mut route) = c.route.take() else { return false };
        let offer = match std::mem::take(&mut c.sdp) {
            Negotiation::Offered(o) => *o,
            _ => {
                c.route = Some(route);
                self.by_api.insert(id, call);
                self.calls.insert(call, c);
                return false;
            }
        };
        let deadline = c.deadline.take();
        while self.next_trunk(now, &id, c.org.as_deref(), &mut route, &why) {
            match self.send_through_trunk(now, &route, &offer, ua) {
                Ok((new, ..)) => {
                    c.sdp = Negotiation::Offered(Box::new(offer));
                    c.route = Some(route);
                    self.insert(new, c, ua);
                    if let Some(at) = deadline {
                        self.set_deadline(new, at);
                    }
                    return true;
                }
                Err(e) => tracing::warn!(id, error = %e, "cannot use the next trunk"),
            }
        }
        // None left: the call ends as the last trunk left it.
        c.sdp = Negotiation::Offered(Box::new(offer));
        c.route = Some(route);
        self.by_api.insert(id, call);
        self.calls.insert(call, c);
        false
    }

    /// Registers with the trunks that ask for it and are not yet, and un-registers from
    /// those gone or no longer asking (the settings' `default` registration is `serve`'s).
    pub(super) fn sync_registrations(&mut self, now: Instant, ua: &mut UserAgent) {
        let wanted = self.trunks.registrations();
        let have = ua.registrations();
        for key in have.iter().filter(|k| k.as_str() != "default") {
            if !wanted.iter().any(|(id, ..)| id == key) {
                tracing::info!(trunk = %key, "un-registering from a trunk");
                ua.unregister_key(key, now);
            }
        }
        for (id, reg, creds) in wanted {
            // A trunk whose registrar, address of record or credentials changed registers anew.
            let what = (format!("{} {} {}", reg.registrar, reg.aor, reg.dest), creds.clone());
            if have.contains(&id) && self.registered_as.get(&id) == Some(&what) {
                continue;
            }
            self.registered_as.insert(id.clone(), what);
            tracing::info!(trunk = %id, aor = %reg.aor, registrar = %reg.registrar, "registering with a trunk");
            if let Err(e) = ua.register_as(&id, reg, Some(creds), now) {
                tracing::warn!(trunk = %id, error = %e, "cannot register");
            }
        }
    }

    /// Sends the OPTIONS keep-alives that are due.
    pub(super) fn probe_trunks(&mut self, now: Instant, ua: &mut UserAgent) {
        for (id, dest, host) in self.trunks.due_probes(now) {
            match ua.options(dest, &format!("sip:{host}"), now) {
                Ok(probe) => {
                    self.probes.insert(probe, id);
                }
                Err(e) => {
                    tracing::warn!(trunk = %id, error = %e, "cannot send OPTIONS");
                    self.trunks.probed(&id, None, now);
                }
            }
        }
    }

    /// A trunk's OPTIONS was answered (or not).
    pub(super) fn probe_answered(&mut self, now: Instant, probe: u64, status: Option<u16>) {
        if let Some(id) = self.probes.remove(&probe) {
            self.trunks.probed(&id, status, now);
        }
    }

    /// An event in a kept call's life.
    pub(super) fn persist_event(&mut self, id: &str, kind: &str, detail: String) {
        let p = Persist::Event { id: id.to_string(), kind: kind.into(), detail };
        self.actions.push_back(Action::Persist(p));
    }

    /// A call routed through a trunk is over: its place there is free.
    pub(super) fn route_ended(&mut self, c: &Call) {
        if let Some(r) = &c.route {
            self.trunks.give_back(&r.trunk);
        }
    }
}

/// The INVITE of `o` through trunk `t`: the number at the trunk's host; From the call's
/// number (or the trunk's user) with its display name, or anonymous with `Privacy: id`;
/// `P-Asserted-Identity` when the trunk asserts; the call's `X-` headers.
pub(super) fn outgoing(t: &Trunk, o: &Originate, body: Bytes) -> Result<Outgoing, String> {
    let (dest, alternates) = t.servers.split_first().ok_or("the trunk has no server")?;
    let uri = format!("sip:{}@{}", o.phone_number, t.host);
    let user = o.from_number.clone().or(t.from_user.clone()).unwrap_or_else(|| "dialtone".into());
    let identity = format!("sip:{user}@{}", t.host);
    let display = o.from_display_name.as_deref().map(quoted);
    let mut extra: Vec<(HeaderName, String)> =
        o.sip_headers.iter().map(|(n, v)| (HeaderName::parse(n), v.clone())).collect();
    let from = if t.privacy {
        // RFC 3323 §4.1.1.3: an anonymous From; the carrier learns who calls from the PAI.
        extra.push((HeaderName::parse("Privacy"), "id".into()));
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_string()
    } else {
        match &display {
            Some(d) => format!("{d} <{identity}>"),
            None => format!("<{identity}>"),
        }
    };
    if t.asserted_identity || t.privacy {
        let pai = match &display {
            Some(d) => format!("{d} <{identity}>"),
            None => format!("<{identity}>"),
        };
        extra.push((HeaderName::parse("P-Asserted-Identity"), pai));
    }
    Ok(Outgoing {
        request_uri: uri.clone(),
        from,
        to: format!("<{uri}>"),
        dest: *dest,
        body: Some(body),
        extra,
        alternates: alternates.to_vec(),
        credentials: t.credentials.clone(),
    })
}

/// A display name as a quoted-string (RFC 3261 §25.1): `"` and `\` escaped.
fn quoted(name: &str) -> String {
    let inner: String = name
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] })
        .collect();
    format!("\"{inner}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_sip::{Destination, Transport};

    fn originate() -> Originate {
        Originate {
            id: "call_1".into(),
            phone_number: "+15550100".into(),
            from_number: Some("+15550199".into()),
            from_display_name: Some("Ann \"A\" Lee".into()),
            record: false,
            agent_url: None,
            agent_format: None,
            contact_id: None,
            permit: None,
            sip_headers: vec![("X-Customer-Id".into(), "c-42".into())],
            ring_timeout: None,
            max_duration: None,
            early_media: false,
            machine_detection: None,
        }
    }

    fn trunk() -> Trunk {
        let d = |p: u16| Destination { transport: Transport::Udp, addr: ([127, 0, 0, 1], p).into() };
        Trunk::new("t", "sip:carrier.example", "carrier.example", vec![d(5060), d(5061)])
    }

    #[test]
    fn caller_id_follows_the_trunk() {
        let t = trunk();
        let out = outgoing(&t, &originate(), Bytes::new()).unwrap();
        assert_eq!(out.request_uri, "sip:+15550100@carrier.example");
        assert_eq!(out.from, "\"Ann \\\"A\\\" Lee\" <sip:+15550199@carrier.example>");
        assert_eq!(out.alternates.len(), 1);
        assert!(out.extra.iter().all(|(n, _)| n.as_str() != "P-Asserted-Identity"));
        let mut t = trunk();
        t.privacy = true;
        let out = outgoing(&t, &originate(), Bytes::new()).unwrap();
        assert!(out.from.contains("anonymous.invalid"));
        let h = |n: &str| out.extra.iter().find(|(h, _)| h.as_str().eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        assert_eq!(h("Privacy").as_deref(), Some("id"));
        assert_eq!(h("P-Asserted-Identity").as_deref(), Some("\"Ann \\\"A\\\" Lee\" <sip:+15550199@carrier.example>"));
        assert_eq!(h("X-Customer-Id").as_deref(), Some("c-42"));
    }
}
