//! Seeds a dialtone database with finished calls for `benches/api_load.sh`.
//!
//!   cargo run --release --example seed_calls -- <dialtone.db> <count> [--days D]
//!       [--contacts C] [--end-ms MS] [--seed S]
//!
//! Goes through the real `dialtone_api::store::Store` (`Store::open`, `insert_call`,
//! `set_status`), so the schema, the indexes and the `call_events` rows are the ones
//! `dialtone serve` writes. The store has no batch API: every call is one transaction per
//! status change (3.3 on average), each a WAL commit with `synchronous=NORMAL`.
//!
//! Calls are spread evenly (with jitter) over the `D` days (default 90) before `--end-ms`
//! (default: now), to `C` contacts (default 2000, `contact_0` … `contact_{C-1}`), with a mix
//! of outcomes: 55 % completed (ringing, answered, 20–600 s of talk, BYE), 15 % no-answer
//! (480/487), 10 % busy (486), 12 % failed (503/404/408), 8 % canceled (487). No call is left
//! open, so `serve` starts without closing any. Deterministic for a given `--seed`.
//! Prints one line: `seeded N calls in S s (R calls/s), created_at FROM..TO ms`.

use dialtone_api::store::{CallStatus, NewCall, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("seed_calls: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: seed_calls <dialtone.db> <count> [--days D] [--contacts C] [--end-ms MS] [--seed S]";
    let db = args.next().ok_or(usage)?;
    let count: u64 = args.next().ok_or(usage)?.parse()?;
    let (mut days, mut contacts, mut seed) = (90u64, 2000u64, 1u64);
    let mut end_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    while let Some(a) = args.next() {
        let v = args.next().ok_or(usage)?;
        match a.as_str() {
            "--days" => days = v.parse()?,
            "--contacts" => contacts = v.parse()?,
            "--end-ms" => end_ms = v.parse()?,
            "--seed" => seed = v.parse()?,
            _ => return Err(usage.into()),
        }
    }
    if count == 0 || days == 0 || contacts == 0 {
        return Err("count, --days and --contacts must be positive".into());
    }
    let mut store = Store::open(std::path::Path::new(&db))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let span = (days * 86_400_000) as i64;
    // The last call must have ended (talk up to 600 s) before end_ms.
    let start_ms = end_ms - span - 700_000;
    let step = span as f64 / count as f64;
    let t0 = Instant::now();
    let mut counts = [0u64; 8];
    for i in 0..count {
        let created = start_ms + (i as f64 * step) as i64 + rng.random_range(0..step.max(1.0) as i64);
        let id = format!("call_{:016x}", rng.random::<u64>());
        let contact = format!("contact_{}", rng.random_range(0..contacts));
        let phone = format!("+1555{:07}", rng.random_range(0..10_000_000u32));
        let from = format!("+1415{:07}", rng.random_range(0..10_000_000u32));
        store.insert_call(&NewCall {
            id: &id,
            contact_id: &contact,
            phone_number: &phone,
            from_number: rng.random_bool(0.8).then_some(from.as_str()),
            record: rng.random_bool(0.2),
            created_at: created,
            organization_id: dialtone_api::store::DEFAULT_ORG,
            sip_headers: &[],
            ring_timeout: None,
            max_duration: None,
            from_display_name: None,
            early_media: false,
            machine_detection: None,
        })?;
        let ring = created + rng.random_range(300..3_000);
        let roll = rng.random_range(0..100u32);
        let last = match roll {
            0..55 => {
                store.set_status(&id, CallStatus::Ringing, Some(180), None, ring)?;
                let answer = ring + rng.random_range(1_000..20_000);
                store.set_status(&id, CallStatus::InProgress, Some(200), None, answer)?;
                let end = answer + rng.random_range(20_000..600_000);
                store.set_status(&id, CallStatus::Completed, None, Some("BYE"), end)?
            }
            55..70 => {
                store.set_status(&id, CallStatus::Ringing, Some(180), None, ring)?;
                let (code, why) =
                    if rng.random_bool(0.5) { (480, "Temporarily Unavailable") } else { (487, "ring timeout") };
                store.set_status(&id, CallStatus::NoAnswer, Some(code), Some(why), ring + 30_000)?
            }
            70..80 => store.set_status(&id, CallStatus::Busy, Some(486), Some("Busy Here"), ring)?,
            80..92 => {
                let (code, why) = match rng.random_range(0..3) {
                    0 => (503, "Service Unavailable"),
                    1 => (404, "Not Found"),
                    _ => (408, "Request Timeout"),
                };
                store.set_status(&id, CallStatus::Failed, Some(code), Some(why), ring)?
            }
            _ => {
                store.set_status(&id, CallStatus::Ringing, Some(180), None, ring)?;
                store.set_status(&id, CallStatus::Canceled, Some(487), Some("Request Terminated"), ring + 8_000)?
            }
        };
        counts[CallStatus::ALL.iter().position(|s| *s == last.status).unwrap_or(0)] += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    let mix: Vec<String> = CallStatus::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{}={n}", s.as_str()))
        .collect();
    println!(
        "seeded {count} calls in {secs:.1} s ({:.0} calls/s), created_at {start_ms}..{end_ms} ms, {}",
        count as f64 / secs,
        mix.join(" ")
    );
    Ok(())
}
