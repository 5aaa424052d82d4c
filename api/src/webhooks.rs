//! Signed webhooks, delivered from the persisted outbox.
//!
//! Every event is written to `webhook_outbox` in the same transaction as the change that
//! caused it ([`Store`](crate::store::Store)), so nothing is lost by a crash: the sender
//! below picks up whatever is undelivered when it starts. Each webhook gets its events one
//! at a time, in the order they happened; a failed delivery (no answer in 10 s, or a
//! status other than 2xx) is retried with exponential backoff, and after
//! [`MAX_ATTEMPTS`] the event is given up and kept with its last error.
//!
//! Each POST carries `X-Dialtone-Timestamp` (Unix seconds) and `X-Dialtone-Signature:
//! sha256=<hex>`, the HMAC-SHA256 (RFC 2104) under the webhook's secret of
//! `"<timestamp>.<body>"`, so a receiver can check both origin and freshness.

use crate::model::{Attempt, Delivery};
use crate::store::Store;
use crate::wire::now_ms;
use hmac::{KeyInit, Mac};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Deliveries tried before an event is given up.
pub const MAX_ATTEMPTS: u32 = 12;
/// The longest wait between two tries.
pub const MAX_BACKOFF_MS: i64 = 3_600_000;
/// Delivered events are kept this long (ms), then pruned.
pub const KEEP_EVENTS_MS: i64 = 7 * 24 * 3_600_000;
/// An `Idempotency-Key` holds this long (ms).
pub const KEEP_IDEMPOTENCY_MS: i64 = 24 * 3_600_000;

/// `sha256=<hex>`: the HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// When to try again after `attempts` failed tries (`base_ms`, doubling, at most an
/// hour), or `None` to give up.
pub fn retry_at(now_ms: i64, attempts: u32, base_ms: i64) -> Option<i64> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let wait = base_ms.saturating_mul(1i64 << attempts.saturating_sub(1).min(30)).min(MAX_BACKOFF_MS);
    Some(now_ms + wait)
}

/// Process-wide delivery counters (for `/metrics`).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events delivered.
    pub delivered: std::sync::atomic::AtomicU64,
    /// Failed tries.
    pub failed: std::sync::atomic::AtomicU64,
    /// Events given up.
    pub given_up: std::sync::atomic::AtomicU64,
}

/// Starts the sender: it delivers what is due, sleeps until the next retry or until
/// `wake` (the store notifies it on every new event), and never ends.
pub fn spawn(store: Arc<Mutex<Store>>, wake: Arc<Notify>, base_backoff_ms: i64, stats: Arc<Stats>) {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dialtone-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => return tracing::error!(error = %e, "webhooks: cannot build the HTTP client; none will be sent"),
        };
        loop {
            let due = store
                .lock()
                .map_err(|_| "the store is unavailable".to_string())
                .and_then(|s| s.due_deliveries(now_ms()).map_err(|e| e.to_string()));
            let (due, next) = match due {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: cannot read the outbox");
                    (Vec::new(), Some(now_ms() + 1000))
                }
            };
            if due.is_empty() {
                let wait = next.map_or(60_000, |t| (t - now_ms()).clamp(5, 60_000));
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                }
                continue;
            }
            // One event per webhook at a time, the webhooks in parallel.
            let mut set = tokio::task::JoinSet::new();
            for d in due {
                let client = client.clone();
                set.spawn(async move {
                    let r = deliver(&client, &d).await;
                    (d, r)
                });
            }
            while let Some(Ok((d, r))) = set.join_next().await {
                let now = now_ms();
                let Ok(mut s) = store.lock() else { continue };
                let (ok, attempt) = r;
                let written = if ok {
                    stats.delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    s.delivered(d.row, now, &attempt)
                } else {
                    stats.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let e = attempt.error.as_deref().unwrap_or("failed");
                    let again = retry_at(now, d.attempts + 1, base_backoff_ms);
                    match again {
                        Some(at) => tracing::info!(
                            webhook = %d.webhook_id, event = %d.event, attempt = d.attempts + 1,
                            retry_in_ms = at - now, error = %e, "webhook delivery failed"
                        ),
                        None => {
                            stats.given_up.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::warn!(webhook = %d.webhook_id, event = %d.event, error = %e, "webhook event given up")
                        }
                    }
                    s.delivery_failed(d.row, now, &attempt, again)
                };
                if let Err(e) = written {
                    tracing::warn!(error = %e, "webhooks: cannot update the outbox");
                }
            }
        }
    });
}

/// Asks a number's call webhook what to do with a call (issue 15): `body` POSTed and
/// signed as the event webhooks are (`X-Dialtone-Event: call.incoming`), within
/// `timeout`; the answer read by [`crate::routing::parse_answer`]. `Err` says why there is
/// no usable answer (late, unreachable, not 2xx, not a decision).
pub async fn ask(
    url: &str,
    secret: &str,
    body: String,
    timeout: std::time::Duration,
) -> Result<crate::routing::Decision, String> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| reqwest::Client::builder().build().unwrap_or_default());
    let ts = now_ms() / 1000;
    let sent = client
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("x-dialtone-event", "call.incoming")
        .header("x-dialtone-timestamp", ts.to_string())
        .header("x-dialtone-signature", sign(secret.as_bytes(), ts, body.as_bytes()))
        .body(body);
    let r =
        sent.send().await.map_err(|e| if e.is_timeout() { "no answer in time".to_string() } else { format!("{e}") })?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status().as_u16()));
    }
    let bytes =
        r.bytes().await.map_err(|e| if e.is_timeout() { "no answer in time".to_string() } else { format!("{e}") })?;
    if bytes.len() > 64 * 1024 {
        return Err("the answer is over 64 KiB".into());
    }
    crate::routing::parse_answer(&bytes)
}

/// One POST: what the receiver answered (delivered when 2xx), or why it did not.
async fn deliver(client: &reqwest::Client, d: &Delivery) -> (bool, Attempt) {
    let ts = now_ms() / 1000;
    let started = std::time::Instant::now();
    let sent = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-dialtone-event", &d.event)
        .header("x-dialtone-timestamp", ts.to_string())
        .header("x-dialtone-signature", sign(d.secret.as_bytes(), ts, d.payload.as_bytes()))
        .body(d.payload.clone())
        .send()
        .await;
    let took = |started: std::time::Instant| started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    let mut r = match sent {
        Ok(r) => r,
        Err(e) => {
            return (false, Attempt { error: Some(format!("{e}")), duration_ms: took(started), ..Attempt::default() })
        }
    };
    let status = r.status();
    // The start of the answer, for the console; the rest is not read.
    let mut body = Vec::new();
    while body.len() < Attempt::RESPONSE_MAX {
        match tokio::time::timeout(Duration::from_secs(2), r.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(Attempt::RESPONSE_MAX);
    let response = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
    let ok = status.is_success();
    let error = (!ok).then(|| format!("HTTP {}", status.as_u16()));
    (ok, Attempt { status: Some(status.as_u16()), response, error, duration_ms: took(started) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". Our
        // message is "<timestamp>.<body>", so split the data at a '.' we make up: none
        // there, so check the MAC directly over the same bytes.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn signature_covers_timestamp_and_body() {
        let s = sign(b"secret", 1_700_000_000, b"{}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert_ne!(s, sign(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(s, sign(b"secret", 1_700_000_000, b"{ }"));
        assert_ne!(s, sign(b"other", 1_700_000_000, b"{}"));
        assert_eq!(s, sign(b"secret", 1_700_000_000, b"{}"));
    }

    #[test]
    fn backoff_doubles_caps_and_gives_up() {
        assert_eq!(retry_at(0, 1, 1000), Some(1000));
        assert_eq!(retry_at(0, 2, 1000), Some(2000));
        assert_eq!(retry_at(0, 5, 1000), Some(16_000));
        assert_eq!(retry_at(0, 11, 1000), Some(1_024_000));
        assert_eq!(retry_at(0, 11, 10_000), Some(MAX_BACKOFF_MS));
        assert_eq!(retry_at(0, MAX_ATTEMPTS, 1000), None);
    }
}
