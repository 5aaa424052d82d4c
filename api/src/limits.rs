//! Request limits: token buckets per key and per client address ([`RateLimits`]), and the
//! 429 answer.

use crate::errors::ApiError;
use crate::store::{Store, StoreError};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Mutex;

/// Request rates: a token bucket of `burst` requests refilled at `per_s` a second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_s: f64,
    /// How many may come at once.
    pub burst: f64,
}

impl Rate {
    /// A bucket holding `tokens`, refilled for `elapsed_s` seconds, gives one for a request:
    /// the tokens left, and `Err(seconds to wait)` when there was none to give.
    pub fn spend(self, tokens: f64, elapsed_s: f64) -> (f64, Result<(), u64>) {
        let tokens = (tokens + elapsed_s * self.per_s).min(self.burst);
        if tokens >= 1.0 {
            (tokens - 1.0, Ok(()))
        } else {
            (tokens, Err((((1.0 - tokens) / self.per_s).ceil() as u64).max(1)))
        }
    }
}

impl Rate {
    /// [`Rate::spend`] on the bucket `key` in the shared store (every node takes from the
    /// same row), as of `now` (ms); a bucket not used before starts full.
    pub fn spend_shared(self, store: &mut Store, key: &str, now: i64) -> Result<Result<(), u64>, StoreError> {
        store.with_bucket(key, now, |bucket| {
            let (tokens, at) = bucket.unwrap_or((self.burst, now));
            self.spend(tokens, (now - at).max(0) as f64 / 1000.0)
        })
    }
}

/// The limits in force (`DIALTONE_RATE_LIMIT`, `DIALTONE_RATE_LIMIT_ORG`,
/// `DIALTONE_RATE_LIMIT_ADDR`, `DIALTONE_LOGIN_LIMIT`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Per API key or user.
    pub per_key: Rate,
    /// Per organization: all its keys and users together.
    pub per_org: Rate,
    /// Per client address (authenticated requests other than the internal key's).
    pub per_addr: Rate,
    /// Login attempts per client address.
    pub login: Rate,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_key: Rate { per_s: 50.0, burst: 100.0 },
            per_org: Rate { per_s: 200.0, burst: 400.0 },
            per_addr: Rate { per_s: 200.0, burst: 400.0 },
            login: Rate { per_s: 10.0 / 60.0, burst: 10.0 },
        }
    }
}

/// Token buckets per key and per address, in memory (limits are per node).
#[derive(Debug)]
pub struct RateLimits {
    /// The limits.
    pub limits: Limits,
    buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
    /// Requests refused with 429.
    pub refused: std::sync::atomic::AtomicU64,
}

impl RateLimits {
    /// Buckets for `limits`.
    pub fn new(limits: Limits) -> RateLimits {
        RateLimits { limits, buckets: Mutex::new(HashMap::new()), refused: Default::default() }
    }

    /// Takes one token from `who`'s bucket; `Err(seconds to wait)` when it is empty.
    pub fn take(&self, who: &str, rate: Rate, now: std::time::Instant) -> Result<(), u64> {
        let Ok(mut b) = self.buckets.lock() else { return Ok(()) };
        if b.len() > 100_000 {
            // Forget full buckets of idle clients rather than grow without bound.
            b.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 600);
        }
        let (tokens, at) = b.entry(who.to_string()).or_insert((rate.burst, now));
        let answer;
        (*tokens, answer) = rate.spend(*tokens, now.duration_since(*at).as_secs_f64());
        *at = now;
        self.counted(answer)
    }

    /// [`RateLimits::take`] from the bucket in the shared `store` (several nodes), as of
    /// `now` (ms): a key's limit is the same whichever nodes its requests reach.
    pub fn take_shared(
        &self,
        store: &mut Store,
        who: &str,
        rate: Rate,
        now: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        Ok(self.counted(rate.spend_shared(store, who, now)?))
    }

    /// `answer`, a refusal counted.
    fn counted(&self, answer: Result<(), u64>) -> Result<(), u64> {
        if answer.is_err() {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        answer
    }
}

/// The 429 answer, with `Retry-After`.
pub fn too_many(retry_after: u64, what: &str) -> Response {
    let mut r = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!("too many requests {what}; retry in {retry_after} s"),
    }
    .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    r
}

/// The client's address, when the server was started with connect info.
pub fn client_addr(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_buckets_refill() {
        let l = RateLimits::new(Limits::default());
        let rate = Rate { per_s: 2.0, burst: 2.0 };
        let t0 = std::time::Instant::now();
        assert_eq!((l.take("a", rate, t0), l.take("a", rate, t0)), (Ok(()), Ok(())));
        assert_eq!(l.take("a", rate, t0), Err(1));
        assert_eq!(l.take("b", rate, t0), Ok(()), "buckets are per client");
        assert_eq!(l.take("a", rate, t0 + std::time::Duration::from_millis(500)), Ok(()));
        assert_eq!(l.refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn a_shared_bucket_limits_every_node_together() {
        let (l, rate) = (RateLimits::new(Limits::default()), Rate { per_s: 1.0, burst: 2.0 });
        for (mut a, mut b) in Store::test_pairs().unwrap() {
            // 2 at once, then 1 a second, whichever node asks.
            assert_eq!(l.take_shared(&mut a, "key:k", rate, 1_000).unwrap(), Ok(()));
            assert_eq!(l.take_shared(&mut b, "key:k", rate, 1_000).unwrap(), Ok(()));
            assert_eq!(l.take_shared(&mut a, "key:k", rate, 1_000).unwrap(), Err(1));
            assert_eq!(l.take_shared(&mut b, "key:k", rate, 1_500).unwrap(), Err(1));
            assert_eq!(l.take_shared(&mut b, "key:k", rate, 2_000).unwrap(), Ok(()));
            assert_eq!(l.take_shared(&mut a, "key:other", rate, 2_000).unwrap(), Ok(()), "buckets are per key");
        }
    }
}
