//! Organizations' call policies and standing, as data: the limits, the token bucket, the
//! permits handed out.

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
pub struct OrgState {
    pub(super) policy: OrgPolicy,
    /// Calls up, and permits not yet used.
    pub(super) live: u32,
    /// Its new calls' tokens.
    bucket: Bucket,
}

impl OrgState {
    /// Takes one call's token, or says how long until one is there.
    pub(super) fn take_token(&mut self, now: Instant) -> Result<(), Duration> {
        self.bucket.take(self.policy.max_calls_per_second, now)
    }
}

/// A token bucket for new calls: `rate` a second, a burst of one second's worth.
#[derive(Debug, Default, Clone)]
pub struct Bucket {
    tokens: f64,
    topped: Option<Instant>,
}

impl Bucket {
    /// Takes one token at `rate` a second (`None`: no limit), or says how long until one is there.
    pub fn take(&mut self, rate: Option<f64>, now: Instant) -> Result<(), Duration> {
        let Some(rate) = rate.filter(|r| *r > 0.0) else { return Ok(()) };
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
pub struct Permits {
    pub(super) by_id: HashMap<u64, (String, Instant)>,
    /// The permits the API asked for, by the id of the call to be.
    pub(super) by_call: HashMap<String, u64>,
    pub(super) next: u64,
    /// The trunk a permit holds a place on.
    pub(super) trunk: HashMap<u64, String>,
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
