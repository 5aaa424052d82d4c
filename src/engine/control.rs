//! The API's commands: place a call, act on a live one. Each is answered with what the
//! engine really did ([`Refusal`] when it could not), so the API's status code comes
//! from here and not from a guess in the handler.

use super::call::RecordAs;
use super::call::{AgentPlan, Call, Negotiation, Opening, Origin, Phase, Placing};
use super::core::Engine;
use super::io::{Action, Command, MediaCommand, Persist, Refusal};
use crate::session;
use bytes::Bytes;
use dialtone_api::store::CallStatus;
use dialtone_sip::ua::{Outgoing, UaError, UserAgent};
use std::time::Instant;

impl Engine {
    /// Carries out `cmd`; `None` when the reply comes later (never, today).
    pub(super) fn command(&mut self, now: Instant, cmd: Command, ua: &mut UserAgent) -> Option<Result<(), Refusal>> {
        Some(match cmd {
            Command::Originate(o) => self.originate(now, o, ua),
            Command::Act(id, action) => self.act(now, &id, action, ua),
            Command::Dial(d) => self.dial(*d),
            Command::Admit { org, number, call_id } => self.admit(&org, Some(&number), now).map(|permit| {
                self.permits.by_call.insert(call_id, permit);
            }),
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
                    self.cfg.trunk = Some(servers.remove(0));
                    self.cfg.trunk_alternates = servers;
                }
                Ok(())
            }
        })
    }

    fn originate(&mut self, now: Instant, o: dialtone_api::http::Originate, ua: &mut UserAgent) -> Result<(), Refusal> {
        if self.cfg.trunk.is_none() || self.cfg.trunk_host.is_none() {
            self.originate_failed(&o.id, "no trunk");
            return Err(Refusal::Unavailable("no trunk to place calls through: set DIALTONE_TRUNK".into()));
        }
        // The permit the API was given makes this call one of its organization's.
        let permit = o.permit.or_else(|| self.permits.by_call.remove(&o.id));
        let org = permit.and_then(|p| self.use_permit(p));
        let then = Opening::Place(Box::new(Placing { id: o.id.clone(), org, o }));
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

    /// The port for an API call is bound: send the INVITE through the trunk.
    pub(super) fn place(&mut self, now: Instant, p: Placing, port: u16, ua: &mut UserAgent) {
        let (Some(dest), Some(host)) = (self.cfg.trunk, self.cfg.trunk_host.clone()) else {
            self.ports.give_back(port);
            self.actions.push_back(Action::ClosePort(port));
            if let Some(org) = &p.org {
                self.org_call_ended(org);
            }
            return self.originate_failed(&p.id, "no trunk");
        };
        let o = p.o;
        let srtp = match self.sdes_for(dest.transport) {
            Ok(s) => s,
            Err(why) => {
                self.ports.give_back(port);
                self.actions.push_back(Action::ClosePort(port));
                if let Some(org) = &p.org {
                    self.org_call_ended(org);
                }
                return self.originate_failed(&o.id, why);
            }
        };
        let offer = session::offer_sdp(self.cfg.media_ip, port, srtp);
        let uri = format!("sip:{}@{host}", o.phone_number);
        let from_user = o.from_number.clone().or(self.cfg.trunk_user.clone()).unwrap_or_else(|| "dialtone".into());
        let out = Outgoing {
            request_uri: uri.clone(),
            from: format!("<sip:{from_user}@{host}>"),
            to: format!("<{uri}>"),
            dest,
            body: Some(Bytes::from(offer.to_string())),
            extra: o.sip_headers.iter().map(|(n, v)| (dialtone_sip::HeaderName::parse(n), v.clone())).collect(),
            alternates: self.cfg.trunk_alternates.clone(),
        };
        match ua.invite(out, now) {
            Ok(call) => {
                tracing::info!(%call, id = %o.id, to = %uri, "placing an API call");
                let mut c = Call::new(Origin::Api, Phase::Calling);
                c.port = Some(port);
                c.sdp = Negotiation::Offered(Box::new(offer));
                c.api_id = Some(o.id.clone());
                c.counted = p.org.is_some();
                c.org = p.org;
                c.record = o.record;
                c.agent = o.agent_url.map(|url| AgentPlan {
                    url: Some(url),
                    format: o.agent_format,
                    call_id: o.id.clone(),
                    contact_id: o.contact_id,
                    from: Some(format!("sip:{from_user}@{host}")),
                    to: Some(uri),
                });
                c.max_duration = o.max_duration.map(|s| std::time::Duration::from_secs(u64::from(s)));
                self.insert(call, c);
                if let Some(ring) = o.ring_timeout {
                    self.set_deadline(call, now + std::time::Duration::from_secs(u64::from(ring)));
                }
            }
            Err(e) => {
                self.ports.give_back(port);
                self.actions.push_back(Action::ClosePort(port));
                if let Some(org) = &p.org {
                    self.org_call_ended(org);
                }
                self.originate_failed(&o.id, &e.to_string());
            }
        }
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
            };
        if let Err(e) = &r {
            tracing::warn!(%call, id, error = ?e, "API action refused");
        }
        r
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
