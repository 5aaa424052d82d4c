//! What goes over the wire: the success envelope ([`ok`], [`json_bytes`]), a call's JSON
//! ([`CallOut`], [`call_json`]), and times as RFC 3339 ([`rfc3339`], [`parse_time`]).

use crate::model::Call;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// `{"success": true, "data": data, "error": null}`.
pub fn ok(data: Value) -> Response {
    Json(json!({"success": true, "data": data, "error": null})).into_response()
}

/// Now, ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `2024-01-09T20:00:00Z` from ms since the epoch (UTC; the civil-from-days algorithm of
/// H. Hinnant's "chrono-compatible low-level date algorithms").
pub fn rfc3339(ms: i64) -> String {
    Rfc3339(ms).to_string()
}

/// Displays ms since the epoch as [`rfc3339`] does, without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339(pub i64);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses `2024-01-09`, `2024-01-09T20:00:00Z` or `2024-01-09T20:00:00.250Z` (UTC) into
/// ms since the epoch (days-from-civil, the inverse of [`rfc3339`]).
pub fn parse_time(s: &str) -> Option<i64> {
    let num =
        |t: &str| -> Option<i64> { (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())? };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || date.len() != 10 {
        return None;
    }
    let mut ms = 0i64;
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let mut p = hms.split(':');
        let (h, mi, se) = (num(p.next()?)?, num(p.next()?)?, num(p.next()?)?);
        if p.next().is_some() || h >= 24 || mi >= 60 || se >= 61 || hms.len() != 8 {
            return None;
        }
        let frac_ms = if frac.is_empty() { 0 } else { num(&format!("{frac:0<3}")[..3])? };
        ms = ((h * 60 + mi) * 60 + se) * 1000 + frac_ms;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000 + ms)
}

/// A call as the API shows it (the seed's fields, and ours after them), serialized
/// straight from the stored row.
pub struct CallOut<'a>(pub &'a Call);

impl serde::Serialize for CallOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Recording<'a>(&'a str, crate::model::RecordingState);
        impl serde::Serialize for Recording<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut r = s.serialize_struct("Recording", 2)?;
                r.serialize_field("state", self.1.as_str())?;
                r.serialize_field("url", &format_args!("/api/calls/{}/recording", self.0))?;
                r.end()
            }
        }
        let c = self.0;
        let mut o = s.serialize_struct("Call", 27)?;
        o.serialize_field("id", &c.id)?;
        o.serialize_field("direction", if c.inbound { "inbound" } else { "outbound" })?;
        o.serialize_field("status", c.status.as_str())?;
        o.serialize_field("contact_id", &c.contact_id)?;
        o.serialize_field("phone_number", &c.phone_number)?;
        o.serialize_field("from_number", &c.from_number)?;
        o.serialize_field("duration", &c.duration)?;
        o.serialize_field("created_at", &Rfc3339(c.created_at))?;
        o.serialize_field("answered_at", &c.answered_at.map(Rfc3339))?;
        o.serialize_field("ended_at", &c.ended_at.map(Rfc3339))?;
        o.serialize_field("sip_status", &c.sip_status)?;
        o.serialize_field("reason", &c.reason)?;
        o.serialize_field("record", &c.record)?;
        o.serialize_field("recording", &c.recording.map(|r| Recording(&c.id, r)))?;
        o.serialize_field("organization_id", &c.organization_id)?;
        o.serialize_field("referred_by", &c.referred_by)?;
        o.serialize_field("sip_headers", &c.sip_headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>())?;
        o.serialize_field("ring_timeout", &c.ring_timeout)?;
        o.serialize_field("max_duration", &c.max_duration)?;
        o.serialize_field("from_display_name", &c.from_display_name)?;
        o.serialize_field("asserted_identity", &c.asserted_identity)?;
        o.serialize_field("number_id", &c.number_id)?;
        o.serialize_field("early_media", &c.early_media)?;
        o.serialize_field("machine_detection", &c.machine_detection)?;
        o.serialize_field("answered_by", &c.answered_by)?;
        o.serialize_field("answered_by_ms", &c.answered_by_ms)?;
        o.serialize_field("turns", &c.turns)?;
        o.serialize_field("ended_by", &c.ended_by)?;
        o.end()
    }
}

/// A call as a JSON value (webhook payloads, one call).
pub fn call_json(c: &Call) -> Value {
    serde_json::to_value(CallOut(c)).unwrap_or(Value::Null)
}

/// `{"success": true, "data": {"calls": […], "total": n}, "error": null}`, written in one
/// pass into a buffer sized for it.
pub fn calls_body(calls: &[Call], total: u64) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        calls: Vec<CallOut<'a>>,
        total: u64,
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        success: bool,
        data: Data<'a>,
        error: Option<()>,
    }
    let env = Envelope { success: true, data: Data { calls: calls.iter().map(CallOut).collect(), total }, error: None };
    let mut out = Vec::with_capacity(64 + calls.len() * 360);
    let _ = serde_json::to_writer(&mut out, &env);
    out
}

/// A JSON body already written.
pub fn json_bytes(body: Vec<u8>) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_830_400_000), "2024-01-09T20:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn times_parse_back() {
        for ms in [0, 1_704_830_400_000, 951_782_400_000, 4_102_444_799_000] {
            assert_eq!(parse_time(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_time("2024-01-09"), Some(1_704_758_400_000));
        assert_eq!(parse_time("2024-01-09T20:00:00.25Z"), Some(1_704_830_400_250));
        for bad in ["2024-1-9", "2024-13-01", "2024-01-09T25:00:00Z", "2024-01-09T20:00:00", "yesterday", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
