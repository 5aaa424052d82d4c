//! Who may cause a call, decided in one place (issue 20): each organization's limits on
//! the calls it places (how many at once, how many a second) and where they may go
//! (Twilio's "geo permissions" are the model). The API asks for a permit before it stores
//! a call ([`Engine::admit`]); the permit becomes the call when it is placed, or lapses.

use super::call::CallId;
use super::core::Engine;
use super::io::Refusal;
use super::org::{OrgPolicy, PERMIT_TTL};
use std::time::Instant;

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
        if let Some(trunk) = self.permits.trunk.remove(&permit) {
            self.trunks.give_back(&trunk);
        }
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

    /// May `call`'s organization send it on to `number` (an API transfer: the far end
    /// places that call, but the organization asked for it)? 403 `destination_not_allowed`
    /// outside its allowed destinations.
    pub(super) fn may_reach(&self, call: CallId, number: Option<&str>) -> Result<(), Refusal> {
        let org = self.calls.get(&call).and_then(|c| c.org.as_deref());
        let policy = org.and_then(|o| self.orgs.get(o)).map(|s| &s.policy);
        match (number, policy) {
            (Some(n), Some(p)) if !p.allows(n) => Err(Refusal::Forbidden(
                "destination_not_allowed",
                format!("{n} is not among the organization's allowed destinations"),
            )),
            _ => Ok(()),
        }
    }

    fn expire_permits(&mut self, now: Instant) {
        let lapsed: Vec<u64> = self.permits.by_id.iter().filter(|(_, (_, at))| *at <= now).map(|(id, _)| *id).collect();
        for id in lapsed {
            self.release(id);
        }
        let live = &self.permits.by_id;
        self.permits.by_call.retain(|_, p| live.contains_key(p));
    }

    /// Calls `org` has up (and permits it holds).
    pub fn org_live(&self, org: &str) -> u32 {
        self.orgs.get(org).map_or(0, |s| s.live)
    }
}
