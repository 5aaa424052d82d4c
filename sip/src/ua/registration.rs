//! Registration with a registrar (RFC 3261 §10): REGISTER, its refresh, retries and removal.

use super::*;

/// What became of our registration (RFC 3261 §10).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// The registrar accepted the binding for `expires` seconds; it is refreshed before then.
    Registered {
        /// The expiry the registrar granted.
        expires: u32,
    },
    /// A REGISTER failed; it is tried again after `retry_in`.
    Failed {
        /// The status (408 for no response, 503 for a transport failure).
        status: u16,
        /// Why, for the log.
        reason: String,
        /// When the next attempt goes.
        retry_in: Duration,
    },
    /// The binding was removed (`Expires: 0` answered), or the attempt to remove it ended.
    Unregistered {
        /// The final status of the un-REGISTER.
        status: u16,
    },
}

/// A registration to keep with [`UserAgent::register`].
#[derive(Clone, Debug)]
pub struct Registration {
    /// The registrar's Request-URI (`sip:domain`, §10.2).
    pub registrar: String,
    /// The address of record (To and From), e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Where REGISTERs go.
    pub dest: Destination,
    /// The expiry to ask for, in seconds.
    pub expires: u32,
}

/// The first retry after a failed REGISTER; it doubles up to [`REGISTER_RETRY_MAX`].
pub const REGISTER_RETRY_MIN: Duration = Duration::from_secs(5);
/// The longest wait between failed REGISTER attempts.
pub const REGISTER_RETRY_MAX: Duration = Duration::from_secs(300);

/// When to refresh a binding granted for `expires` seconds: halfway for short ones, a
/// minute before the end for long ones.
pub fn refresh_after(expires: u32) -> Duration {
    if expires <= 120 {
        Duration::from_millis(u64::from(expires.max(1)) * 500)
    } else {
        Duration::from_secs(u64::from(expires - 60))
    }
}

pub(super) struct Registrar {
    pub(super) reg: Registration,
    pub(super) call_id: String,
    pub(super) from_tag: String,
    pub(super) cseq: u32,
    pub(super) auth: Option<DigestClient>,
    /// The REGISTER in flight (for its challenge).
    pub(super) last: Option<Request>,
    /// Next refresh or retry.
    pub(super) timer: Option<Instant>,
    pub(super) backoff: Duration,
    /// Removing the binding (`Expires: 0`).
    pub(super) removing: bool,
    pub(super) registered: bool,
    /// A 423 raised the expiry already for this attempt.
    pub(super) raised: bool,
}

/// The expiry a 2xx to REGISTER granted our binding (§10.2.4): the `expires` parameter
/// of the Contact that is ours, else the Expires header.
pub(super) fn granted_expires(resp: &Response, our_contact: &str) -> Option<u32> {
    let ours = crate::header::NameAddr::parse(our_contact, "Contact").ok().map(|c| c.uri_text.to_string());
    for c in resp.headers.contacts().flatten() {
        if ours.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(c.uri_text)) {
            if let Some(e) = c.params.value("expires").and_then(|e| e.parse().ok()) {
                return Some(e);
            }
        }
    }
    resp.headers.get(&HeaderName::Expires).and_then(|v| v.trim().parse().ok())
}

impl UserAgent {
    /// Registers `reg` now and keeps it registered: refreshed before the granted expiry
    /// runs out, retried with backoff after failures (honouring Retry-After), 423 answered
    /// with the registrar's Min-Expires, challenges answered with the credentials. Events
    /// come as [`UaEvent::Registration`]. Replaces an earlier registration.
    pub fn register(&mut self, reg: Registration, now: Instant) -> Result<(), UaError> {
        crate::uri::Uri::parse(&reg.registrar).map_err(|_| UaError::Invalid("registrar URI"))?;
        crate::uri::Uri::parse(&reg.aor).map_err(|_| UaError::Invalid("address of record"))?;
        let host = self.local_addr(reg.dest.transport)?.ip();
        let call_id = format!("{:016x}@{}", self.random(), host);
        let from_tag = self.new_tag();
        let auth = self.digest();
        self.registrar = Some(Registrar {
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
        self.send_register(Vec::new(), now);
        Ok(())
    }

    /// Removes the binding (`Expires: 0`) and stops refreshing. Returns whether an
    /// un-REGISTER went out ([`RegistrationEvent::Unregistered`] follows).
    pub fn unregister(&mut self, now: Instant) -> bool {
        let Some(r) = self.registrar.as_mut() else { return false };
        if r.removing {
            return true;
        }
        r.removing = true;
        r.timer = None;
        if !r.registered && r.last.is_none() {
            self.registrar = None;
            return false;
        }
        self.send_register(Vec::new(), now);
        true
    }

    /// Whether a binding is in place.
    pub fn is_registered(&self) -> bool {
        self.registrar.as_ref().is_some_and(|r| r.registered)
    }

    pub(super) fn send_register(&mut self, challenged: Vec<AuthHeader>, now: Instant) {
        let Some(transport) = self.registrar.as_ref().map(|r| r.reg.dest.transport) else { return };
        let via = self.via(transport);
        let contact = self.contact(transport);
        let ua = self.cfg.user_agent.clone();
        let Some(r) = self.registrar.as_mut() else { return };
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
        self.by_client.insert(key, (CallRef(0), Purpose::Register));
    }

    pub(super) fn on_register_response(&mut self, resp: Response, now: Instant) {
        let Some(transport) = self.registrar.as_ref().map(|r| r.reg.dest.transport) else { return };
        let contact = self.contact(transport);
        let Some(r) = self.registrar.as_mut() else { return };
        let status = resp.status;
        if (200..300).contains(&status) {
            r.backoff = REGISTER_RETRY_MIN;
            r.raised = false;
            if r.removing {
                self.registrar = None;
                self.events.push_back(UaEvent::Registration(RegistrationEvent::Unregistered { status }));
                return;
            }
            let expires = granted_expires(&resp, &contact).unwrap_or(r.reg.expires);
            if expires == 0 {
                // The registrar kept no binding of ours: try again later.
                return self.register_failed(status, "registrar granted no binding".into(), None, now);
            }
            let Some(r) = self.registrar.as_mut() else { return };
            r.registered = true;
            r.timer = Some(now + refresh_after(expires));
            self.events.push_back(UaEvent::Registration(RegistrationEvent::Registered { expires }));
            return;
        }
        if matches!(status, 401 | 407) {
            let answered = match (r.auth.as_mut(), r.last.as_ref()) {
                (Some(a), Some(last)) => a.respond(last, &resp).map_err(|e| e.to_string()),
                _ => Err("no credentials (set DIALTONE_TRUNK_USER and DIALTONE_TRUNK_PASSWORD)".into()),
            };
            return match answered {
                Ok(headers) => self.send_register(headers, now),
                Err(why) => {
                    if let Some(a) = r.auth.as_mut() {
                        a.clear();
                    }
                    self.register_failed(status, why, None, now)
                }
            };
        }
        if status == 423 && !r.removing && !r.raised {
            let min = resp.headers.get(&HeaderName::MinExpires).and_then(|v| v.trim().parse::<u32>().ok());
            if let Some(min) = min.filter(|m| *m > r.reg.expires) {
                r.reg.expires = min;
                r.raised = true;
                return self.send_register(Vec::new(), now);
            }
        }
        let retry_after = resp
            .headers
            .get(&HeaderName::RetryAfter)
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<u64>().ok()))
            .map(Duration::from_secs);
        self.register_failed(status, resp.reason.to_string(), retry_after, now);
    }

    pub(super) fn register_failed(&mut self, status: u16, reason: String, retry_after: Option<Duration>, now: Instant) {
        let Some(r) = self.registrar.as_mut() else { return };
        if r.removing {
            self.registrar = None;
            self.events.push_back(UaEvent::Registration(RegistrationEvent::Unregistered { status }));
            return;
        }
        r.registered = false;
        r.raised = false;
        let retry_in = retry_after.unwrap_or(r.backoff).clamp(Duration::from_secs(1), REGISTER_RETRY_MAX);
        r.backoff = (r.backoff * 2).min(REGISTER_RETRY_MAX);
        r.timer = Some(now + retry_in);
        self.events.push_back(UaEvent::Registration(RegistrationEvent::Failed { status, reason, retry_in }));
    }
}
