//! Who may cause a call, decided in one place (issue 20): each organization's limits on
//! the calls it places (how many at once, how many a second) and where they may go
//! (Twilio's "geo permissions" are the model). The API asks for a permit before it stores
//! a call ([`Engine::admit`]); the permit becomes the call when it is placed, or lapses.

use super::{CallId, Engine, Refusal};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// An organization's call policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrgPolicy {
    /// Calls it may have up at once (placed by the API, or by a transfer it asked for).
    pub max_concurrent_calls: Option<u32>,
    /// Calls it may start a second (a token bucket with a burst of one second's worth).
    pub max_calls_per_second: Option<f64>,
    /// E.164 prefixes (`+44`, `+1555`) its calls may go to; empty: anywhere.
    pub allowed_destinations: Vec<String>,
}

impl OrgPolicy {
    /// Whether `number` is a destination this policy allows.
    pub fn allows(&self, number: &str) -> bool {
        let n = normalize(number);
        self.allowed_destinations.is_empty() || self.allowed_destinations.iter().any(|p| n.starts_with(&normalize(p)))
    }
}

/// `+` and digits, whatever the number was written with.
fn normalize(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    format!("+{digits}")
}

/// How long a permit waits for its call before it lapses.
pub const PERMIT_TTL: Duration = Duration::from_secs(30);

/// One organization's standing.
#[derive(Debug, Default)]
pub(super) struct OrgState {
    pub(super) policy: OrgPolicy,
    /// Calls up, and permits not yet used.
    pub(super) live: u32,
    /// Tokens for new calls, and when they were last topped up.
    tokens: f64,
    topped: Option<Instant>,
}

impl OrgState {
    /// Takes one call's token, or says how long until one is there.
    fn take_token(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.policy.max_calls_per_second.filter(|r| *r > 0.0) else { return Ok(()) };
        let burst = rate.max(1.0);
        let elapsed = self.topped.map_or(f64::INFINITY, |t| now.saturating_duration_since(t).as_secs_f64());
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.topped = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }
}

/// Permits handed out and not yet used: permit → (organization, lapses at).
#[derive(Debug, Default)]
pub(super) struct Permits {
    pub(super) by_id: HashMap<u64, (String, Instant)>,
    next: u64,
}

impl Engine {
    /// Sets (or replaces) an organization's policy.
    pub fn set_policy(&mut self, org: &str, policy: OrgPolicy) {
        self.orgs.entry(org.to_string()).or_default().policy = policy;
    }

    /// May `org` place a call to `number` (`None`: not a number, a SIP URI a policy named)
    /// now? A permit, counted as one of its calls until it is used by
    /// [`super::Command::Originate`] or lapses after [`PERMIT_TTL`].
    pub fn admit(&mut self, org: &str, number: Option<&str>, now: Instant) -> Result<u64, Refusal> {
        self.expire_permits(now);
        let st = self.orgs.entry(org.to_string()).or_default();
        if let Some(number) = number.filter(|n| !st.policy.allows(n)) {
            return Err(Refusal::Forbidden(
                "destination_not_allowed",
                format!("{number} is not among the organization's allowed destinations"),
            ));
        }
        if st.policy.max_concurrent_calls.is_some_and(|m| st.live >= m) {
            return Err(Refusal::TooMany(
                "max_concurrent_calls",
                format!("the organization has {} calls up, its limit", st.live),
                1,
            ));
        }
        if let Err(wait) = st.take_token(now) {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Refusal::TooMany(
                "max_calls_per_second",
                "the organization's calls a second are used up".into(),
                secs,
            ));
        }
        st.live += 1;
        self.permits.next += 1;
        let id = self.permits.next;
        self.permits.by_id.insert(id, (org.to_string(), now + PERMIT_TTL));
        Ok(id)
    }

    /// Gives a permit back unused (the API could not store its call).
    pub fn release(&mut self, permit: u64) {
        if let Some((org, _)) = self.permits.by_id.remove(&permit) {
            self.org_call_ended(&org);
        }
    }

    /// Turns a permit into the call it admitted; `false` when it lapsed or never was.
    pub(super) fn use_permit(&mut self, permit: u64) -> Option<String> {
        self.permits.by_id.remove(&permit).map(|(org, _)| org)
    }

    /// One of `org`'s calls ended.
    pub(super) fn org_call_ended(&mut self, org: &str) {
        if let Some(st) = self.orgs.get_mut(org) {
            st.live = st.live.saturating_sub(1);
        }
    }

    /// A transfer `call` asked for: the same rules as the organization's own calls.
    pub(super) fn admit_for(
        &mut self,
        call: CallId,
        number: Option<&str>,
        now: Instant,
    ) -> Result<Option<String>, Refusal> {
        let Some(org) = self.calls.get(&call).and_then(|c| c.org.clone()) else { return Ok(None) };
        let permit = self.admit(&org, number, now)?;
        Ok(self.use_permit(permit))
    }

    fn expire_permits(&mut self, now: Instant) {
        let lapsed: Vec<u64> = self.permits.by_id.iter().filter(|(_, (_, at))| *at <= now).map(|(id, _)| *id).collect();
        for id in lapsed {
            self.release(id);
        }
    }

    /// Calls `org` has up (and permits it holds).
    pub fn org_live(&self, org: &str) -> u32 {
        self.orgs.get(org).map_or(0, |s| s.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_however_the_number_is_written() {
        let p = OrgPolicy { allowed_destinations: vec!["+44".into(), "1555".into()], ..OrgPolicy::default() };
        assert!(p.allows("+442071234567"));
        assert!(p.allows("+1 555 123 4567"));
        assert!(!p.allows("+19005550100"));
        assert!(OrgPolicy::default().allows("+19005550100"), "empty: anywhere");
    }

    #[test]
    fn the_token_bucket_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut st = OrgState {
            policy: OrgPolicy { max_calls_per_second: Some(2.0), ..Default::default() },
            ..Default::default()
        };
        assert!(st.take_token(t0).is_ok());
        assert!(st.take_token(t0).is_ok());
        let wait = st.take_token(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(st.take_token(t0 + Duration::from_millis(500)).is_ok());
    }
}
