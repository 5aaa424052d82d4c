//! The registrar side (RFC 3261 §10.3): where our SIP users (softphones) can be reached.
//! A REGISTER reaches here only once its digest credentials were checked
//! ([`UserAgent::set_sip_users`]); its To must name the user it authenticated as.

use super::agent::*;
use super::helpers::*;
use super::types::*;
use crate::msg::Request;
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transaction::ServerKey;
use crate::transport::Destination;
use crate::userauth::SipUser;
use std::time::{Duration, Instant};

/// A binding's lifetime when the REGISTER names none.
pub const DEFAULT_EXPIRES: u32 = 3600;
/// The shortest we grant (423 below it, RFC 3261 §10.3 step 7).
pub const MIN_EXPIRES: u32 = 60;
/// The longest we grant.
pub const MAX_EXPIRES: u32 = 3600;

impl UserAgent {
    /// A REGISTER from `user` (authenticated): its bindings changed as it asks, answered
    /// with all of them (RFC 3261 §10.3).
    pub(super) fn on_register(&mut self, key: ServerKey, req: Request, user: SipUser, src: Destination, now: Instant) {
        let aor = req.headers.to().ok().and_then(|t| t.uri.as_sip().and_then(|s| s.user.map(str::to_string)));
        if aor.as_deref() != Some(user.username.as_str()) {
            // Credentials for one user cannot move another's bindings.
            return self.simple_response(&key, &req, 403, now);
        }
        let header_expires = req.headers.get(&HeaderName::Expires).and_then(|v| v.trim().parse::<u32>().ok());
        let values: Vec<String> = req.headers.values(&HeaderName::Contact).map(|v| v.to_string()).collect();
        let list = self.bindings.by_user.entry(user.username.clone()).or_default();
        list.retain(|b| b.expires_at > now);
        if values.iter().any(|v| v.trim() == "*") {
            // `*` removes them all, and only with Expires: 0 and alone (§10.3 step 6).
            if header_expires != Some(0) || values.len() > 1 {
                return self.simple_response(&key, &req, 400, now);
            }
            list.clear();
        }
        let mut changes = Vec::new();
        for v in values.iter().filter(|v| v.trim() != "*") {
            let Ok(c) = crate::header::NameAddr::parse(v, "Contact") else {
                return self.simple_response(&key, &req, 400, now);
            };
            let expires = c.params.value("expires").and_then(|e| e.parse::<u32>().ok()).or(header_expires);
            let expires = expires.unwrap_or(DEFAULT_EXPIRES);
            if expires != 0 && expires < MIN_EXPIRES {
                let tag = self.new_tag();
                let mut resp = make_response(&req, 423, "Interval Too Brief", Some(&tag));
                resp.headers.push(HeaderName::MinExpires, SipStr::from(MIN_EXPIRES.to_string()));
                return self.respond(&key, resp, now);
            }
            changes.push((c.uri_text.to_string(), expires.min(MAX_EXPIRES)));
        }
        let list = self.bindings.by_user.entry(user.username.clone()).or_default();
        for (contact, expires) in changes {
            list.retain(|b| !b.contact.eq_ignore_ascii_case(&contact));
            if expires > 0 {
                list.push(Binding { contact, source: src, expires_at: now + Duration::from_secs(u64::from(expires)) });
            }
        }
        let contacts: Vec<String> = list
            .iter()
            .map(|b| format!("<{}>;expires={}", b.contact, b.expires_at.saturating_duration_since(now).as_secs()))
            .collect();
        let count = contacts.len();
        let tag = self.new_tag();
        let mut resp = make_response(&req, 200, "OK", Some(&tag));
        for c in contacts {
            resp.headers.push(HeaderName::Contact, SipStr::from(c));
        }
        self.respond(&key, resp, now);
        self.events.push_back(UaEvent::UserRegistered { user: user.username, owner: user.owner, bindings: count });
    }

    /// Where `user` is registered now.
    pub fn bindings(&self, user: &str, now: Instant) -> Vec<Binding> {
        self.bindings
            .by_user
            .get(user)
            .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }
}
