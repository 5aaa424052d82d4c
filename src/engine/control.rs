//! The API's commands: place a call, act on a live one. Each is answered with what the
//! engine really did ([`Refusal`] when it could not), so the API's status code comes
//! from here and not from a guess in the handler.

use super::call::RecordAs;
use super::call::{CallId, Negotiation, Opening, Placing};
use super::core::Engine;
use super::io::{Action, Command, MediaCommand, Persist, Refusal};
use dialtone_api::store::CallStatus;
use dialtone_sip::ua::{UaError, UserAgent};
use std::time::Instant;

impl Engine {
    /// Carries out `cmd`; `None` when the reply comes later (never, today).
    pub(super) fn command(&mut self, now: Instant, cmd: Command, ua: &mut UserAgent) -> Option<Result<(), Refusal>> {
        Some(match cmd {
            Command::Originate(o) => self.originate(now, o, ua),
            Command::Act(id, action) => self.act(now, &id, action, ua),
            Command::Dial(d) => self.dial(*d),
            Command::Admit { org, number, call_id } => self.admit_call(&org, &number, &call_id, now),
            Command::Release(call_id) => {
                if let Some(p) = self.permits.by_call.remove(&call_id) {
                    self.release(p);
                }
                Ok(())
            }
            Command::SipUsers(users) => {
                tracing::info!(users = users.len(), "SIP users");
                ua.set_sip_users(users);
                Ok(())
            }
            Command::Policy { org, policy } => {
                self.set_policy(&org, policy);
                Ok(())
            }
            Command::Trunk(mut servers) => {
                // The trunk's new servers may send us requests too.
                for s in &servers {
                    ua.allow_source(s.addr.ip());
                }
                if !servers.is_empty() {
                    self.trunks.set_servers("default", servers.clone());
                    self.cfg.trunk = Some(servers.remove(0));
                    self.cfg.trunk_alternates = servers;
                }
                Ok(())
            }
            Command::Trunks(trunks) => {
                for t in &trunks {
                    for s in &t.servers {
                        ua.allow_source(s.addr.ip());
                    }
                }
                tracing::info!(trunks = trunks.len(), "the organizations' trunks");
                self.trunks.replace(true, trunks);
                self.probe_trunks(now, ua);
                self.sync_registrations(now, ua);
                Ok(())
            }
            Command::Numbers(numbers) => {
                tracing::info!(numbers = numbers.len(), "numbers");
                self.numbers = numbers;
                Ok(())
            }
            Command::TrunkRanges(ranges) => {
                ua.set_trunk_ranges(ranges);
                Ok(())
            }
            Command::Fence(on) => {
                self.fence(on, ua);
                Ok(())
            }
            Command::ConferenceAgent(member) => {
                tracing::info!(?member, "a conference's agent");
                self.actions.push_back(Action::ConferenceAgent(member));
                Ok(())
            }
        })
    }

    fn originate(&mut self, now: Instant, o: dialtone_api::http::Originate, ua: &mut UserAgent) -> Result<(), Refusal> {
        // The permit the API was given makes this call one of its organization's, with
        // its place on a trunk.
        let permit = o.permit.or_else(|| self.permits.by_call.remove(&o.id));
        let reserved = permit.and_then(|p| self.permits.trunk.remove(&p));
        let org = permit.and_then(|p| self.use_permit(p));
        let trunk = match reserved {
            Some(t) => t,
            None => {
                let candidates = self.trunks.candidates(org.as_deref(), &o.phone_number);
                match self.trunks.reserve(&candidates, &[], now) {
                    Ok(t) => t,
                    Err(_) => {
                        if let Some(org) = &org {
                            self.org_call_ended(org);
                        }
                        self.originate_failed(&o.id, "no trunk");
                        return Err(Refusal::Unavailable("no trunk to place calls through: set DIALTONE_TRUNK".into()));
                    }
                }
            }
        };
        let then = Opening::Place(Box::new(Placing { id: o.id.clone(), org, trunk, o }));
        if let Err(then) = self.open_port(then, 0) {
            self.no_port(now, then, ua);
            return Err(Refusal::Unavailable("no free RTP port".into()));
        }
        Ok(())
    }

    /// An API call could not be placed: it ends `failed` (503) with why.
    pub(super) fn originate_failed(&mut self, id: &str, why: &str) {
        let p = Persist::Status {
            id: id.to_string(),
            to: CallStatus::Failed,
            sip_status: Some(503),
            reason: Some(why.to_string()),
        };
        self.actions.push_back(Action::Persist(p));
    }

    /// An API action on a live call.
    fn act(
        &mut self,
        now: Instant,
        id: &str,
        action: dialtone_api::http::Action,
        ua: &mut UserAgent,
    ) -> Result<(), Refusal> {
        use dialtone_api::http::Action as A;
        let Some(call) = self.by_api_id(id) else {
            tracing::info!(id, ?action, "API action for a call that is no longer here");
            return Err(Refusal::NotLive("the call has ended".into()));
        };
        tracing::info!(%call, id, ?action, "API action");
        let running = self.calls.get(&call).is_some_and(|c| matches!(c.sdp, Negotiation::Running));
        let media = |engine: &mut Engine, cmd: MediaCommand| -> Result<(), Refusal> {
            if !running {
                return Err(Refusal::NotLive("the call has no media (yet)".into()));
            }
            engine.actions.push_back(Action::Media(call, cmd));
            Ok(())
        };
        let r =
            match action {
                A::Hangup => ua.hangup(call, now).map_err(refusal),
                A::Hold(on) => {
                    let r = ua.hold(call, on, now).map_err(refusal);
                    if r.is_ok() {
                        if let Some(c) = self.calls.get_mut(&call) {
                            c.pending = Some(if on { "hold" } else { "unhold" });
                        }
                        // A held peer sends nothing: that is not a dead one.
                        if running {
                            self.actions.push_back(Action::Media(call, MediaCommand::ExpectRx(!on)));
                        }
                    }
                    r
                }
                // The organization is asking: its allowed destinations hold.
                A::Transfer(dest) => self.may_reach(call, super::refer::number_in(&dest).as_deref()).and_then(|()| {
                    match (dest.starts_with("sip:"), self.cfg.trunk_host.as_deref()) {
                        (true, _) => ua.refer(call, &dest, now).map_err(refusal),
                        (false, Some(host)) => ua.refer(call, &format!("sip:{dest}@{host}"), now).map_err(refusal),
                        (false, None) => {
                            Err(Refusal::Unavailable("a transfer to a number needs a trunk: set DIALTONE_TRUNK".into()))
                        }
                    }
                }),
                A::Dtmf(digits) => media(self, MediaCommand::Dtmf(digits)),
                A::Record(on) => media(self, MediaCommand::Record(on.then(|| RecordAs::Api(id.to_string())))),
                A::TransferReplacing(other) => match self.by_api_id(&other).filter(|o| *o != call) {
                    Some(peer) => match ua.replacing_uri(peer) {
                        // The referring call's organization asked; the target is already
                        // one of its calls, so no new destination is reached.
                        Some(target) => ua.refer(call, &target, now).map_err(refusal),
                        None => Err(Refusal::NotLive(format!("{other} is not confirmed"))),
                    },
                    None => Err(Refusal::NotLive(format!("{other} is not a live call"))),
                },
                A::Bridge(other) => self.bridge(call, &other),
                A::Unbridge => self.unbridge(call, true),
                A::Conference { id: conf, muted } => self.seat(call, conf, muted),
                A::LeaveConference => self.unseat(call, true),
            };
        if let Err(e) = &r {
            tracing::warn!(%call, id, error = ?e, "API action refused");
        }
        r
    }
}

impl Engine {
    /// Joins `call`'s media with the live call the API knows as `other` (both answered,
    /// with media running; a bridge either had ends first).
    fn bridge(&mut self, call: CallId, other: &str) -> Result<(), Refusal> {
        let Some(peer) = self.by_api_id(other).filter(|p| *p != call) else {
            return Err(Refusal::NotLive(format!("{other} is not a live call")));
        };
        self.bridge_calls(call, peer)
    }

    /// Joins two calls' media (both answered, with media running).
    pub(super) fn bridge_calls(&mut self, call: CallId, peer: CallId) -> Result<(), Refusal> {
        let running = |e: &Engine, c: CallId| e.calls.get(&c).is_some_and(|c| matches!(c.sdp, Negotiation::Running));
        if !running(self, call) || !running(self, peer) {
            return Err(Refusal::NotLive("both calls need their media running (answered)".into()));
        }
        let _ = self.unbridge(call, false);
        let _ = self.unbridge(peer, false);
        // A bridge takes the calls out of their conferences (their seats are replaced).
        for c in [call, peer] {
            self.left_conference(c);
        }
        for (a, b) in [(call, peer), (peer, call)] {
            if let Some(c) = self.calls.get_mut(&a) {
                c.bridged = Some(b);
            }
        }
        tracing::info!(%call, %peer, "bridging");
        self.actions.push_back(Action::Bridge(call, peer));
        for (a, b) in [(call, peer), (peer, call)] {
            let (ida, idb) =
                (self.calls.get(&a).and_then(|c| c.api_id.clone()), self.calls.get(&b).and_then(|c| c.api_id.clone()));
            if let (Some(ida), Some(idb)) = (ida, idb) {
                self.persist_event(&ida, "bridged", idb);
            }
        }
        Ok(())
    }

    /// Ends `call`'s bridge, if it has one: both calls hear their own sources again.
    /// `asked`: the API asked (a call without a bridge is then refused).
    pub(super) fn unbridge(&mut self, call: CallId, asked: bool) -> Result<(), Refusal> {
        let Some(peer) = self.calls.get_mut(&call).and_then(|c| c.bridged.take()) else {
            return if asked { Err(Refusal::NotLive("the call is not bridged".into())) } else { Ok(()) };
        };
        if let Some(p) = self.calls.get_mut(&peer) {
            p.bridged = None;
        }
        for (a, b) in [(call, peer), (peer, call)] {
            if self.calls.contains_key(&a) {
                self.actions.push_back(Action::Unbridge(a));
                let (ida, idb) = (
                    self.calls.get(&a).and_then(|c| c.api_id.clone()),
                    self.calls.get(&b).and_then(|c| c.api_id.clone()),
                );
                if let (Some(ida), Some(idb)) = (ida, idb) {
                    self.persist_event(&ida, "unbridged", idb);
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Seats `call` (answered, media running) in conference `conf`; a call already there
    /// only changes whether it is heard. A bridge or another conference it was in ends.
    pub(super) fn seat(&mut self, call: CallId, conf: String, muted: bool) -> Result<(), Refusal> {
        let Some(c) = self.calls.get(&call) else {
            return Err(Refusal::NotLive("the call has ended".into()));
        };
        if !matches!(c.sdp, Negotiation::Running) {
            return Err(Refusal::NotLive("the call needs its media running (answered)".into()));
        }
        let api_id = c.api_id.clone();
        let already = c.conference.as_ref().is_some_and(|(id, _)| *id == conf);
        if already {
            self.actions.push_back(Action::Mute(call, muted));
        } else {
            let _ = self.unbridge(call, false);
            self.left_conference(call);
            tracing::info!(%call, conference = %conf, muted, "seated in a conference");
            self.actions.push_back(Action::Join(call, conf.clone(), muted));
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.conference = Some((conf.clone(), muted));
        }
        if let Some(id) = api_id {
            let kind = match (already, muted) {
                (false, _) => "conference_joined",
                (true, true) => "conference_muted",
                (true, false) => "conference_unmuted",
            };
            self.persist_event(&id, kind, conf);
        }
        Ok(())
    }

    /// Takes `call` out of its conference. `asked`: the API asked (a call in none is then
    /// refused).
    fn unseat(&mut self, call: CallId, asked: bool) -> Result<(), Refusal> {
        if self.calls.get(&call).is_none_or(|c| c.conference.is_none()) {
            return if asked { Err(Refusal::NotLive("the call is in no conference".into())) } else { Ok(()) };
        }
        self.left_conference(call);
        self.actions.push_back(Action::Unbridge(call));
        Ok(())
    }

    /// `call` is no longer in its conference (if it was): noted on the call and its record.
    fn left_conference(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some((conf, _)) = c.conference.take() else { return };
        if let Some(id) = c.api_id.clone() {
            self.persist_event(&id, "conference_left", conf);
        }
    }
}

/// What a UA command's error means to the API.
fn refusal(e: UaError) -> Refusal {
    match e {
        UaError::NoSuchCall => Refusal::NotLive("the call has ended".into()),
        UaError::WrongState => {
            Refusal::NotLive("the call's dialog cannot do this now (not confirmed, or another request pending)".into())
        }
        UaError::Invalid(what) => Refusal::Invalid(format!("invalid {what}")),
        e => Refusal::Failed(e.to_string()),
    }
}
