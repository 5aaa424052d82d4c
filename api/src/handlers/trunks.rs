//! SIP trunks (issue 15): an organization's own carriers, which only its calls use. The
//! password is kept as given (a digest client needs it) and never shown: `has_password`
//! says whether there is one. The list also shows the platform's trunks (from the
//! settings, read-only) with how the engine sees each; the engine learns every stored
//! trunk each time one changes.

use super::support::{json_body, missing, store};
use crate::auth::Allowed;
use crate::control::TrunkStatus;
use crate::errors::ApiError;
use crate::model::TrunkRow;
use crate::routing::is_sip_uri;
use crate::state::ApiState;
use crate::store::Config;
use crate::wire::{now_ms, ok, rfc3339};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// The codecs a trunk may offer.
pub const CODECS: &[&str] = &["opus", "G722", "PCMU", "PCMA"];
/// The SRTP modes.
pub const SRTP_MODES: &[&str] = &["off", "optional", "mandatory"];
/// The transports a trunk's URI may name.
pub const TRANSPORTS: &[&str] = &["udp", "tcp", "tls"];

fn status_json(s: &TrunkStatus) -> Value {
    json!({"up": s.up, "registered": s.registered, "options_rtt_ms": s.options_rtt_ms,
           "last_options_at": s.last_options_at.map(|at| rfc3339(now_ms() - at.elapsed().as_millis() as i64)), "last_options_status": s.last_options_status,
           "calls": s.calls})
}

fn trunk_json(t: &TrunkRow, statuses: &[TrunkStatus]) -> Value {
    let status = statuses.iter().find(|s| s.id == t.id).map(status_json).unwrap_or(Value::Null);
    json!({
        "id": t.id, "organization_id": t.organization_id, "source": "api", "name": t.name, "uri": t.uri,
        "username": t.username, "has_password": t.password.is_some(),
        "allowed_cidrs": t.allowed_cidrs, "prefixes": t.prefixes, "priority": t.priority,
        "max_concurrent_calls": t.max_concurrent_calls, "max_calls_per_second": t.max_calls_per_second,
        "codecs": t.codecs, "srtp": t.srtp, "asserted_identity": t.asserted_identity, "privacy": t.privacy, "register": t.register,
        "options_interval": t.options_interval, "created_at": rfc3339(t.created_at), "status": status,
    })
}

/// A trunk of the settings (the platform's), as the list shows it.
fn settings_trunk_json(s: &TrunkStatus) -> Value {
    json!({"id": s.id, "name": s.name, "uri": s.uri, "source": "settings", "organization_id": null,
           "status": status_json(s)})
}

/// How the engine sees every trunk now (none without an engine).
fn statuses(st: &ApiState) -> Vec<TrunkStatus> {
    st.control.as_ref().map(|c| c.trunk_status()).unwrap_or_default()
}

/// `1`–`64` of `[A-Za-z0-9._-]`.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A `sip:`/`sips:` URI whose `;transport=`, if it has one, is udp, tcp or tls.
fn is_trunk_uri(u: &str) -> bool {
    if !is_sip_uri(u) {
        return false;
    }
    let lower = u.to_ascii_lowercase();
    lower.split(';').skip(1).filter_map(|p| p.strip_prefix("transport=")).all(|t| {
        let t = t.split(['?', '>']).next().unwrap_or("");
        TRANSPORTS.contains(&t)
    })
}

/// An IPv4/IPv6 address, or one with a prefix length (`/0`–`/32`, `/0`–`/128`).
fn is_cidr(s: &str) -> bool {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match len {
        None => true,
        Some(l) => {
            !l.is_empty()
                && l.len() <= 3
                && l.bytes().all(|b| b.is_ascii_digit())
                && l.parse::<u32>().is_ok_and(|n| n <= max)
        }
    }
}

/// `+` and 1–15 digits.
fn is_prefix(p: &str) -> bool {
    p.strip_prefix('+').is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// An optional string field of 1–128 characters (absent: unchanged; `null`: none).
fn opt_text(o: &Map<String, Value>, name: &str, base: &mut Option<String>) -> Result<(), ApiError> {
    match o.get(name) {
        None => {}
        Some(Value::Null) => *base = None,
        Some(Value::String(s)) if (1..=128).contains(&s.chars().count()) => *base = Some(s.clone()),
        Some(_) => return Err(ApiError::field(name, "must be a string of 1 to 128 characters, or null")),
    }
    Ok(())
}

/// An optional integer field in `lo..=hi` (absent: unchanged; `null`: none).
fn opt_int(o: &Map<String, Value>, name: &str, lo: u64, hi: u64, base: &mut Option<u32>) -> Result<(), ApiError> {
    match o.get(name) {
        None => {}
        Some(Value::Null) => *base = None,
        Some(v) => match v.as_u64().filter(|n| (lo..=hi).contains(n)) {
            Some(n) => *base = Some(n as u32),
            None => return Err(ApiError::field(name, &format!("must be an integer from {lo} to {hi}, or null"))),
        },
    }
    Ok(())
}

/// A boolean field (absent: unchanged).
fn boolean(o: &Map<String, Value>, name: &str, base: &mut bool) -> Result<(), ApiError> {
    match o.get(name) {
        None => {}
        Some(Value::Bool(b)) => *base = *b,
        Some(_) => return Err(ApiError::field(name, "must be true or false")),
    }
    Ok(())
}

/// A list field of at most `max` strings, each passing `check` (absent: unchanged; `null`:
/// empty); repeats are dropped, or refused where `no_repeats`.
fn list(
    o: &Map<String, Value>,
    name: &str,
    max: usize,
    what: &str,
    check: impl Fn(&str) -> bool,
    no_repeats: bool,
    base: &mut Vec<String>,
) -> Result<(), ApiError> {
    match o.get(name) {
        None => {}
        Some(Value::Null) => base.clear(),
        Some(Value::Array(items)) if items.len() <= max => {
            let mut out: Vec<String> = Vec::new();
            for item in items {
                match item.as_str().filter(|s| check(s)) {
                    Some(s) if out.iter().any(|x| x == s) => {
                        if no_repeats {
                            return Err(ApiError::field(name, &format!("{s} is listed twice")));
                        }
                    }
                    Some(s) => out.push(s.to_string()),
                    None => return Err(ApiError::field(name, &format!("{item} is not {what}"))),
                }
            }
            *base = out;
        }
        Some(_) => return Err(ApiError::field(name, &format!("must be a list of at most {max} of {what}"))),
    }
    Ok(())
}

/// The fields of `o` over `base`: the ones given replace it, `null` clears an optional
/// one; `name` and `uri` are required where `base` has none (a new trunk).
fn fields(o: &Map<String, Value>, base: &mut TrunkRow) -> Result<(), ApiError> {
    match o.get("name") {
        None if base.name.is_empty() => return Err(ApiError::field("name", "required")),
        None => {}
        Some(Value::String(s)) if is_name(s) => base.name = s.clone(),
        Some(_) => return Err(ApiError::field("name", "must be 1 to 64 of A-Z a-z 0-9 . _ -")),
    }
    match o.get("uri") {
        None if base.uri.is_empty() => return Err(ApiError::field("uri", "required")),
        None => {}
        Some(Value::String(s)) if is_trunk_uri(s) => base.uri = s.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "uri",
                "must be a sip: or sips: URI with a host (at most 256 characters), its transport udp, tcp or tls",
            ))
        }
    }
    opt_text(o, "username", &mut base.username)?;
    opt_text(o, "password", &mut base.password)?;
    list(o, "allowed_cidrs", 50, "an IPv4/IPv6 address or CIDR", is_cidr, false, &mut base.allowed_cidrs)?;
    list(o, "prefixes", 100, "an E.164 prefix such as \"+44\"", is_prefix, false, &mut base.prefixes)?;
    match o.get("priority") {
        None => {}
        Some(v) => match v.as_u64().filter(|n| *n <= 1000) {
            Some(n) => base.priority = n as u32,
            None => return Err(ApiError::field("priority", "must be an integer from 0 to 1000")),
        },
    }
    opt_int(o, "max_concurrent_calls", 1, 100_000, &mut base.max_concurrent_calls)?;
    match o.get("max_calls_per_second") {
        None => {}
        Some(Value::Null) => base.max_calls_per_second = None,
        Some(v) => match v.as_f64().filter(|n| *n > 0.0 && *n <= 10_000.0) {
            Some(n) => base.max_calls_per_second = Some(n),
            None => {
                return Err(ApiError::field("max_calls_per_second", "must be a number over 0, at most 10000, or null"))
            }
        },
    }
    let codec = |c: &str| CODECS.contains(&c);
    list(o, "codecs", CODECS.len(), "opus, G722, PCMU or PCMA", codec, true, &mut base.codecs)?;
    match o.get("srtp") {
        None => {}
        Some(Value::Null) => base.srtp = None,
        Some(Value::String(s)) if SRTP_MODES.contains(&s.as_str()) => base.srtp = Some(s.clone()),
        Some(_) => return Err(ApiError::field("srtp", "must be off, optional, mandatory, or null")),
    }
    boolean(o, "asserted_identity", &mut base.asserted_identity)?;
    boolean(o, "privacy", &mut base.privacy)?;
    boolean(o, "register", &mut base.register)?;
    if base.register && (base.username.is_none() || base.password.is_none()) {
        return Err(ApiError::field("register", "needs username and password"));
    }
    opt_int(o, "options_interval", 5, 3600, &mut base.options_interval)?;
    Ok(())
}

pub async fn create_trunk(
    State(st): State<ApiState>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let organization_id = who.org()?;
    let o = json_body(req).await?;
    let mut t = TrunkRow {
        id: format!("trk_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        organization_id,
        name: String::new(),
        uri: String::new(),
        username: None,
        password: None,
        allowed_cidrs: Vec::new(),
        prefixes: Vec::new(),
        priority: 100,
        max_concurrent_calls: None,
        max_calls_per_second: None,
        codecs: Vec::new(),
        srtp: None,
        asserted_identity: false,
        privacy: false,
        register: false,
        options_interval: None,
        created_at: now_ms(),
    };
    fields(&o, &mut t)?;
    store(&st)?.insert_trunk(&t)?;
    st.config_changed(Config::Trunks);
    Ok((StatusCode::CREATED, ok(trunk_json(&t, &statuses(&st)))).into_response())
}

pub async fn list_trunks(State(st): State<ApiState>, Allowed(who): Allowed) -> Result<Response, ApiError> {
    let trunks = store(&st)?.trunks(&who.scope())?;
    let statuses = statuses(&st);
    let mut out: Vec<Value> = trunks.iter().map(|t| trunk_json(t, &statuses)).collect();
    out.extend(statuses.iter().filter(|s| s.organization_id.is_none()).map(settings_trunk_json));
    Ok(ok(json!({ "trunks": out })))
}

pub async fn get_trunk(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    let t = store(&st)?.trunk(&who.scope(), &id).map_err(missing("trunk"))?;
    Ok(ok(trunk_json(&t, &statuses(&st))))
}

pub async fn update_trunk(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
    req: Request,
) -> Result<Response, ApiError> {
    let scope = who.scope();
    let mut t = store(&st)?.trunk(&scope, &id).map_err(missing("trunk"))?;
    let o = json_body(req).await?;
    fields(&o, &mut t)?;
    store(&st)?.update_trunk(&scope, &t).map_err(missing("trunk"))?;
    st.config_changed(Config::Trunks);
    Ok(ok(trunk_json(&t, &statuses(&st))))
}

pub async fn delete_trunk(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    store(&st)?.delete_trunk(&who.scope(), &id).map_err(missing("trunk"))?;
    st.config_changed(Config::Trunks);
    Ok(ok(json!({"id": id, "deleted": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_cidrs_and_prefixes_are_checked() {
        assert!(is_trunk_uri("sip:carrier.example.com") && is_trunk_uri("sips:a@b.example:5061;transport=TLS"));
        assert!(is_trunk_uri("sip:10.0.0.1:5060;transport=tcp;lr"));
        assert!(!is_trunk_uri("sip:carrier.example.com;transport=sctp") && !is_trunk_uri("http://x"));
        assert!(!is_trunk_uri("sip:carrier.example.com;transport="));
        assert!(is_cidr("192.0.2.1") && is_cidr("192.0.2.0/24") && is_cidr("2001:db8::/32") && is_cidr("::1/128"));
        assert!(!is_cidr("192.0.2.0/33") && !is_cidr("2001:db8::/129") && !is_cidr("192.0.2.0/") && !is_cidr("x/8"));
        assert!(!is_cidr("192.0.2.0/+8") && !is_cidr("192.0.2.0/24/1"));
        assert!(is_prefix("+44") && !is_prefix("44") && !is_prefix("+") && !is_prefix("+1234567890123456"));
        assert!(is_name("main-1.eu_west") && !is_name("") && !is_name("a b") && !is_name(&"x".repeat(65)));
    }

    #[test]
    fn fields_replace_and_null_clears() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        let mut t = TrunkRow {
            id: "trk_1".into(),
            organization_id: "org_a".into(),
            name: String::new(),
            uri: String::new(),
            username: None,
            password: None,
            allowed_cidrs: vec![],
            prefixes: vec![],
            priority: 100,
            max_concurrent_calls: None,
            max_calls_per_second: None,
            codecs: vec![],
            srtp: None,
            asserted_identity: false,
            privacy: false,
            register: false,
            options_interval: None,
            created_at: 0,
        };
        assert!(fields(&body(json!({"uri": "sip:x.example"})), &mut t.clone())
            .unwrap_err()
            .message
            .starts_with("name"));
        assert!(fields(&body(json!({"name": "a"})), &mut t.clone()).unwrap_err().message.starts_with("uri"));
        let full = json!({"name": "main", "uri": "sip:x.example", "username": "u", "password": "p",
                          "prefixes": ["+44", "+44"], "srtp": "optional", "options_interval": 30, "codecs": ["PCMA"]});
        fields(&body(full), &mut t).unwrap();
        assert_eq!(
            (t.prefixes.clone(), t.srtp.as_deref(), t.options_interval),
            (vec!["+44".into()], Some("optional"), Some(30))
        );
        fields(&body(json!({"password": null, "srtp": null, "prefixes": null, "priority": 0})), &mut t).unwrap();
        assert_eq!((t.password.clone(), t.srtp.clone(), t.prefixes.len(), t.priority), (None, None, 0, 0));
        assert_eq!(t.username.as_deref(), Some("u"), "absent: unchanged");
        for bad in [
            json!({"name": null}),
            json!({"uri": "sip:x.example;transport=ws"}),
            json!({"username": ""}),
            json!({"allowed_cidrs": ["10.0.0.0/40"]}),
            json!({"prefixes": ["44"]}),
            json!({"priority": 1001}),
            json!({"max_concurrent_calls": 0}),
            json!({"max_calls_per_second": 0}),
            json!({"codecs": ["G729"]}),
            json!({"codecs": ["opus", "opus"]}),
            json!({"srtp": "always"}),
            json!({"privacy": "yes"}),
            json!({"options_interval": 4}),
        ] {
            let e = fields(&body(bad.clone()), &mut t.clone()).unwrap_err();
            let field = bad.as_object().unwrap().keys().next().unwrap().clone();
            assert!(e.message.starts_with(&format!("{field}: ")), "{bad}: {}", e.message);
        }
    }
}
