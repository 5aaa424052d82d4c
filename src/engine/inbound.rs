//! Inbound routing (issue 15): the number an INVITE calls (Request-URI user, `To`,
//! `P-Called-Party-ID`, `Diversion`, read as E.164) picks the organization's number and
//! its action: answer with an agent, a prompt or the echo, refuse, forward (302), or ask
//! the number's call webhook while the caller hears ringing, falling back when it does
//! not answer well in time.

use super::call::{AgentPlan, CallId, Opening, Phase, SourceSpec};
use super::core::Engine;
use super::io::{Action, Ask};
use dialtone_api::routing::{self, Decision, InboundAction};
use dialtone_api::store::NumberRow;
use dialtone_sip::ua::UserAgent;
use dialtone_sip::{HeaderName, NameAddr, Request, Uri};
use std::time::{Duration, Instant};

/// What an INVITE says of itself for routing: the numbers it may be calling, in order of
/// authority, its `X-` headers, and the caller's asserted identity.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts {
    /// E.164 numbers from the Request-URI, To, P-Called-Party-ID, Diversion.
    pub called: Vec<String>,
    /// Its `X-` headers (at most 20, values at most 256 characters).
    pub headers: Vec<(String, String)>,
    /// `P-Asserted-Identity` (RFC 3325), else `Remote-Party-ID`: its URI.
    pub asserted: Option<String>,
}

impl Facts {
    /// Reads them from `req`.
    pub fn of(req: &Request) -> Facts {
        let mut called = Vec::new();
        let mut push = |user: Option<String>| {
            if let Some(n) = user.as_deref().and_then(routing::e164) {
                if !called.contains(&n) {
                    called.push(n);
                }
            }
        };
        push(req.uri().ok().and_then(|u| user_of(&u)));
        for name in ["To", "P-Called-Party-ID", "Diversion"] {
            let h = HeaderName::parse(name);
            push(req.headers.get(&h).and_then(|v| first_uri_user(v)));
        }
        let mut headers = Vec::new();
        for h in &req.headers.0 {
            let name = h.name.as_str();
            if name.len() > 2 && name[..2].eq_ignore_ascii_case("x-") && headers.len() < 20 {
                let value: String = h.value.as_str().chars().filter(|c| !c.is_control()).take(256).collect();
                headers.push((name.to_string(), value.trim().to_string()));
            }
        }
        let asserted = ["P-Asserted-Identity", "Remote-Party-ID"].iter().find_map(|n| {
            let v = req.headers.get(&HeaderName::parse(n))?;
            let first = v.as_str().split(',').next()?;
            let uri = NameAddr::parse(first, "P-Asserted-Identity").ok()?.uri_text.to_string();
            Some(uri.chars().take(256).collect())
        });
        Facts { called, headers, asserted }
    }
}

fn user_of(uri: &Uri<'_>) -> Option<String> {
    match uri.as_sip() {
        Some(s) => s.user.map(str::to_string),
        // tel: URIs (RFC 3966) are the number itself.
        None => Some(uri.to_string()),
    }
}

fn first_uri_user(value: &str) -> Option<String> {
    let first = value.split(',').next()?;
    let n = NameAddr::parse(first, "header").ok()?;
    user_of(&Uri::parse(n.uri_text).ok()?)
}

/// The number among `numbers` that the first of `called` matching any is for (the exact
/// number before the longest prefix), and that called number.
pub fn find<'a>(numbers: &'a [NumberRow], called: &[String]) -> Option<(&'a NumberRow, String)> {
    called.iter().find_map(|n| {
        numbers
            .iter()
            .filter_map(|row| routing::specificity(&row.number, n).map(|s| (s, row)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, row)| (row, n.clone()))
    })
}

impl Engine {
    /// Does `action` for the inbound call `call` (`None`: `DIALTONE_INBOUND`), whose
    /// INVITE carried `offer`.
    pub(super) fn act_inbound(
        &mut self,
        now: Instant,
        call: CallId,
        action: Option<InboundAction>,
        offer: bytes::Bytes,
        ua: &mut UserAgent,
    ) {
        // The number's announcement before the answer (early media, when there is an offer
        // to answer in a 183): then a `reject` refuses, anything else answers.
        let pre_answer = self.calls.get(&call).and_then(|c| c.number.as_ref()?.pre_answer.clone());
        let pre_answer = pre_answer.filter(|_| !offer.is_empty());
        let answer_with = match action {
            None if self.cfg.inbound == crate::config::Inbound::Reject => return self.refuse(now, call, 603, ua),
            None => None,
            Some(InboundAction::Reject { status }) if pre_answer.is_some() => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.refuse_after = Some(status);
                }
                None
            }
            Some(InboundAction::Reject { status }) => return self.refuse(now, call, status, ua),
            Some(InboundAction::Forward { to }) => return self.forward(now, call, &to, ua),
            Some(InboundAction::Webhook { url }) => return self.ask_webhook(now, call, url, offer, ua),
            Some(InboundAction::Echo) => Some(SourceSpec::Echo),
            Some(InboundAction::Play { prompt }) => Some(SourceSpec::Play(prompt)),
            Some(InboundAction::Agent { url, format }) => {
                let plan = self.calls.get(&call).and_then(|c| c.agent.clone()).unwrap_or_default();
                Some(SourceSpec::Agent(AgentPlan { url: Some(url), format, ..plan }))
            }
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.answer_with = answer_with;
            c.pre_answer = pre_answer;
            c.phase = Phase::Opening;
        }
        if let Err(then) = self.open_port(Opening::Answer { call, offer }, 0) {
            tracing::warn!(%call, "no free RTP port: 503");
            self.no_port(now, then, ua);
        }
    }

    /// Refuses an inbound call with `status`.
    pub(super) fn refuse(&mut self, now: Instant, call: CallId, status: u16, ua: &mut UserAgent) {
        self.counters.refused += 1;
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Refused;
        }
        tracing::info!(%call, status, "refusing the call");
        let _ = ua.reject(call, status, now);
    }

    /// Sends the caller to `to` (RFC 3261 §21.3.3, 302): a SIP URI, or a number at the
    /// host of the trunk that would carry the organization's call to it.
    fn forward(&mut self, now: Instant, call: CallId, to: &str, ua: &mut UserAgent) {
        let target = if to.starts_with("sip:") || to.starts_with("sips:") {
            Some(to.to_string())
        } else {
            let org = self.calls.get(&call).and_then(|c| c.org.clone());
            let trunk = self.trunks.candidates(org.as_deref(), to).into_iter().next();
            trunk.and_then(|t| self.trunks.get(&t).map(|t| format!("sip:{to}@{}", t.host)))
        };
        let Some(target) = target else {
            tracing::warn!(%call, to, "no trunk to forward the call through: 480");
            return self.refuse(now, call, 480, ua);
        };
        tracing::info!(%call, to = %target, "forwarding the call (302)");
        self.counters.refused += 1;
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Refused;
        }
        if let Some(id) = self.calls.get(&call).and_then(|c| c.api_id.clone()) {
            self.persist_event(&id, "forwarded", target.clone());
        }
        let _ = ua.redirect(call, &target, now);
    }

    /// Rings, and asks the number's webhook what to do; the answer comes as
    /// [`super::Event::Decided`], or the fallback when it is late.
    fn ask_webhook(&mut self, now: Instant, call: CallId, url: String, offer: bytes::Bytes, ua: &mut UserAgent) {
        let _ = ua.ring(call, 180, None, now);
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(number) = c.number.clone() else { return };
        c.phase = Phase::Asking { offer };
        let timeout = Duration::from_millis(u64::from(number.webhook_timeout_ms));
        let plan = c.agent.clone().unwrap_or_default();
        let body = serde_json::json!({
            "event": "call.incoming",
            "call_id": c.api_id.clone().unwrap_or_else(|| plan.call_id.clone()),
            "from": c.caller,
            "to": c.called,
            "number": number.number,
            "number_id": number.id,
            "trunk": c.trunk,
            "sip_headers": plan.custom.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "asserted_identity": c.asserted,
        });
        tracing::info!(%call, url, "asking the number's call webhook");
        self.actions.push_back(Action::Ask(Box::new(Ask {
            call,
            url,
            secret: number.webhook_secret.clone().unwrap_or_default(),
            timeout,
            body: body.to_string(),
        })));
        // Should the driver never report, the fallback holds a little after the deadline.
        self.set_deadline(call, now + timeout + Duration::from_secs(1));
    }

    /// The call webhook's answer (or why there is none): act on it, or on the fallback.
    pub(super) fn decided(&mut self, now: Instant, call: CallId, answer: Result<Decision, String>, ua: &mut UserAgent) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Phase::Asking { offer } = std::mem::replace(&mut c.phase, Phase::Opening) else { return };
        c.deadline = None;
        let fallback = c.number.as_ref().and_then(|n| n.fallback.clone());
        let id = c.api_id.clone();
        let (action, detail) = match answer {
            Ok(d) => {
                c.record |= d.record;
                if let Some(plan) = c.agent.as_mut() {
                    plan.custom.extend(d.custom);
                }
                let detail = format!("answered: {}", d.action.kind());
                (d.action, detail)
            }
            Err(why) => {
                let action = fallback.unwrap_or(InboundAction::Reject { status: 480 });
                let detail = format!("{why}; fallback: {}", action.kind());
                tracing::warn!(%call, why, fallback = action.kind(), "the call webhook did not decide");
                (action, detail)
            }
        };
        if let Some(id) = id {
            self.persist_event(&id, "webhook", detail);
        }
        self.act_inbound(now, call, Some(action), offer, ua);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_sip::Message;

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:0015550100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:+15550199@carrier>;tag=a\r\nTo: <sip:+15550111@carrier>\r\nCall-ID: c1\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match dialtone_sip::parse_datagram(bytes::Bytes::from(text)).unwrap() {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_facts_of_an_invite() {
        let f = Facts::of(&invite(
            "X-Customer-Id: c-42\r\nP-Asserted-Identity: \"Ann\" <sip:+15550199@carrier>\r\n\
             Diversion: <sip:+15550222@carrier>;reason=unconditional\r\n",
        ));
        assert_eq!(f.called, ["+15550100", "+15550111", "+15550222"]);
        assert_eq!(f.headers, [("X-Customer-Id".to_string(), "c-42".to_string())]);
        assert_eq!(f.asserted.as_deref(), Some("sip:+15550199@carrier"));
    }

    #[test]
    fn the_exact_number_then_the_longest_prefix_of_the_first_called_number() {
        let row = |id: &str, number: &str| NumberRow {
            id: id.into(),
            organization_id: "o".into(),
            number: number.into(),
            action: InboundAction::Echo,
            fallback: None,
            webhook_secret: None,
            webhook_timeout_ms: 3000,
            record: false,
            max_duration: None,
            created_at: 0,
            pre_answer: None,
        };
        let numbers = [row("all", "*"), row("us", "+1555*"), row("one", "+15550111")];
        let called = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(find(&numbers, &called(&["+15550111"])).unwrap().0.id, "one");
        assert_eq!(find(&numbers, &called(&["+15550100", "+15550111"])).unwrap().0.id, "us");
        assert_eq!(find(&numbers, &called(&["+4420"])).unwrap().0.id, "all");
        assert!(find(&numbers[1..], &called(&["+4420"])).is_none());
    }
}
