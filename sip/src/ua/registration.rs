//! Registration with a registrar (RFC 3261 §10): REGISTER, its refresh, retries and removal.

use super::agent::*;
use super::call::*;
use super::types::*;
use crate::auth::{AuthHeader, Target};
use crate::method::Method;
use crate::msg::{Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transport::Transport;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The key of [`UserAgent::register`]'s registration.
const DEFAULT_KEY: &str = "default";

impl UserAgent {
    /// Registers `reg` now and keeps it registered: refreshed before the granted expiry
    /// runs out, retried with backoff after failures (honouring Retry-After), 423 answered
    /// with the registrar's Min-Expires, challenges answered with the credentials. Events
    /// come as [`UaEvent::Registration`]. Replaces an earlier registration.
    pub fn register(&mut self, reg: Registration, now: Instant) -> Result<(), UaError> {
        self.register_as(DEFAULT_KEY, reg, None, now)
    }

    /// Another registration, kept as `key` (a trunk's), with its own `credentials` (`None`:
    /// the UA's); its events come as [`UaEvent::TrunkRegistration`]. Replaces an earlier
    /// registration of that key.
    pub fn register_as(
        &mut self,
        key: &str,
        reg: Registration,
        credentials: Option<crate::auth::Credentials>,
        now: Instant,
    ) -> Result<(), UaError> {
        crate::uri::Uri::parse(&reg.registrar).map_err(|_| UaError::Invalid("registrar URI"))?;
        crate::uri::Uri::parse(&reg.aor).map_err(|_| UaError::Invalid("address of record"))?;
        let host = self.local_addr(reg.dest.transport)?.ip();
        let call_id = format!("{:016x}@{}", self.random(), host);
        let from_tag = self.new_tag();
        let auth = match credentials {
            Some(c) => Some(crate::auth::DigestClient::new(c, self.random())),
            None => self.digest(),
        };
        self.registrars.retain(|r| r.key != key);
        self.next_registrar += 1;
        let n = self.next_registrar;
        self.registrars.push(Registrar {
            n,
            key: key.to_string(),
            reg,
            call_id,
            from_tag,
            cseq: 0,
            auth,
            last: None,
            timer: None,
            backoff: REGISTER_RETRY_MIN,
            removing: false,
            registered: false,
            raised: false,
        });
        self.send_register(n, Vec::new(), now);
        Ok(())
    }

    /// Removes every binding (`Expires: 0`) and stops refreshing. Returns whether an
    /// un-REGISTER went out ([`RegistrationEvent::Unregistered`] follows).
    pub fn unregister(&mut self, now: Instant) -> bool {
        let keys: Vec<String> = self.registrars.iter().map(|r| r.key.clone()).collect();
        let mut any = false;
        for k in keys {
            any |= self.unregister_key(&k, now);
        }
        any
    }

    /// Removes the registration `key` (a deleted trunk's); whether an un-REGISTER went out.
    pub fn unregister_key(&mut self, key: &str, now: Instant) -> bool {
        let Some(r) = self.registrars.iter_mut().find(|r| r.key == key) else { return false };
        if r.removing {
            return true;
        }
        r.removing = true;
        r.timer = None;
        let n = r.n;
        if !r.registered && r.last.is_none() {
            self.registrars.retain(|r| r.n != n);
            return false;
        }
        self.send_register(n, Vec::new(), now);
        true
    }

    /// Whether the main binding ([`UserAgent::register`]'s) is in place.
    pub fn is_registered(&self) -> bool {
        self.registered(DEFAULT_KEY)
    }

    /// Whether registration `key` is in place.
    pub fn registered(&self, key: &str) -> bool {
        self.registrars.iter().any(|r| r.key == key && r.registered)
    }

    /// The registrations' keys.
    pub fn registrations(&self) -> Vec<String> {
        self.registrars.iter().filter(|r| !r.removing).map(|r| r.key.clone()).collect()
    }

    /// Tells the registration's user: [`UaEvent::Registration`] for the main one,
    /// [`UaEvent::TrunkRegistration`] for the others.
    fn registration_event(&mut self, key: &str, event: RegistrationEvent) {
        self.events.push_back(if key == DEFAULT_KEY {
            UaEvent::Registration(event)
        } else {
            UaEvent::TrunkRegistration { key: key.to_string(), event }
        });
    }

    /// The registrar `n`.
    fn registrar(&mut self, n: u64) -> Option<&mut Registrar> {
        self.registrars.iter_mut().find(|r| r.n == n)
    }

    pub(super) fn send_register(&mut self, n: u64, challenged: Vec<AuthHeader>, now: Instant) {
        let Some(transport) = self.registrar(n).map(|r| r.reg.dest.transport) else { return };
        let via = self.via(transport);
        let contact = self.contact(transport);
        let ua = self.cfg.user_agent.clone();
        let Some(r) = self.registrar(n) else { return };
        r.cseq += 1;
        let expires = if r.removing { 0 } else { r.reg.expires };
        let mut req = Request::new(Method::Register, SipStr::from(r.reg.registrar.as_str()));
        let h = &mut req.headers;
        h.push(HeaderName::Via, via);
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, SipStr::from(format!("<{}>;tag={}", r.reg.aor, r.from_tag)));
        h.push(HeaderName::To, SipStr::from(format!("<{}>", r.reg.aor)));
        h.push(HeaderName::CallId, SipStr::from(r.call_id.as_str()));
        h.push(HeaderName::CSeq, SipStr::from(format!("{} REGISTER", r.cseq)));
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Expires, SipStr::from(expires.to_string()));
        h.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        h.push(HeaderName::UserAgent, SipStr::from(ua));
        let auth = if challenged.is_empty() {
            // A refresh carries the credentials the last challenge asked for.
            let target = Target { method: "REGISTER", uri: &r.reg.registrar, body: &[] };
            r.auth.as_mut().and_then(|a| a.authorize(target).ok()).unwrap_or_default()
        } else {
            challenged
        };
        for a in &auth {
            a.apply_to(&mut req.headers);
        }
        r.last = Some(req.clone());
        let dest = r.reg.dest;
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (CallRef(n), Purpose::Register));
    }

    pub(super) fn on_register_response(&mut self, n: u64, resp: Response, now: Instant) {
        let Some(transport) = self.registrar(n).map(|r| r.reg.dest.transport) else { return };
        let contact = self.contact(transport);
        let Some(r) = self.registrar(n) else { return };
        let status = resp.status;
        if (200..300).contains(&status) && !r.removing && self.learned_address(transport, &resp) {
            // Renew the binding at the address the registrar can reach.
            return self.send_register(n, Vec::new(), now);
        }
        let Some(r) = self.registrar(n) else { return };
        if (200..300).contains(&status) {
            r.backoff = REGISTER_RETRY_MIN;
            r.raised = false;
            if r.removing {
                let key = r.key.clone();
                self.registrars.retain(|r| r.n != n);
                self.registration_event(&key, RegistrationEvent::Unregistered { status });
                return;
            }
            let expires = granted_expires(&resp, &contact).unwrap_or(r.reg.expires);
            if expires == 0 {
                // The registrar kept no binding of ours: try again later.
                return self.register_failed(n, status, "registrar granted no binding".into(), None, now);
            }
            let Some(r) = self.registrar(n) else { return };
            r.registered = true;
            r.timer = Some(now + refresh_after(expires));
            let key = r.key.clone();
            self.registration_event(&key, RegistrationEvent::Registered { expires });
            return;
        }
        if matches!(status, 401 | 407) {
            let answered = match (r.auth.as_mut(), r.last.as_ref()) {
                (Some(a), Some(last)) => a.respond(last, &resp).map_err(|e| e.to_string()),
                _ => Err("no credentials (set DIALTONE_TRUNK_USER and DIALTONE_TRUNK_PASSWORD)".into()),
            };
            return match answered {
                Ok(headers) => self.send_register(n, headers, now),
                Err(why) => {
                    if let Some(a) = r.auth.as_mut() {
                        a.clear();
                    }
                    self.register_failed(n, status, why, None, now)
                }
            };
        }
        if status == 423 && !r.removing && !r.raised {
            let min = resp.headers.get(&HeaderName::MinExpires).and_then(|v| v.trim().parse::<u32>().ok());
            if let Some(min) = min.filter(|m| *m > r.reg.expires) {
                r.reg.expires = min;
                r.raised = true;
                return self.send_register(n, Vec::new(), now);
            }
        }
        let retry_after = resp
            .headers
            .get(&HeaderName::RetryAfter)
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<u64>().ok()))
            .map(Duration::from_secs);
        self.register_failed(n, status, resp.reason.to_string(), retry_after, now);
    }

    /// With [`UaConfig::learn_address`]: the address the registrar saw us at, if it is not
    /// the one we advertise, becomes ours (`true`).
    fn learned_address(&mut self, transport: Transport, resp: &Response) -> bool {
        if !self.cfg.learn_address || transport != Transport::Udp {
            return false;
        }
        let Ok(via) = resp.headers.top_via() else { return false };
        let Some(ip) = via.received().and_then(|r| r.trim_matches(['[', ']']).parse::<IpAddr>().ok()) else {
            return false;
        };
        let Ok(ours) = self.local_addr(transport) else { return false };
        let port = match via.rport() {
            Some(Some(p)) => p,
            _ => ours.port(),
        };
        let seen = SocketAddr::new(ip, port);
        if seen == ours {
            return false;
        }
        self.cfg.udp_addr = Some(seen);
        self.events.push_back(UaEvent::AddressLearned { addr: seen });
        true
    }

    pub(super) fn register_failed(
        &mut self,
        n: u64,
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let Some(r) = self.registrar(n) else { return };
        if r.removing {
            let key = r.key.clone();
            self.registrars.retain(|r| r.n != n);
            self.registration_event(&key, RegistrationEvent::Unregistered { status });
            return;
        }
        r.registered = false;
        r.raised = false;
        let retry_in = retry_after.unwrap_or(r.backoff).clamp(Duration::from_secs(1), REGISTER_RETRY_MAX);
        r.backoff = (r.backoff * 2).min(REGISTER_RETRY_MAX);
        r.timer = Some(now + retry_in);
        let key = r.key.clone();
        self.registration_event(&key, RegistrationEvent::Failed { status, reason, retry_in });
    }
}
