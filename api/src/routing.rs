//! Inbound routing as data (issue 15): what a phone number's call does
//! ([`InboundAction`]), how the numbers are written and matched, and what the call webhook
//! may answer ([`Decision`]). Plain types and checks: the store keeps them, the handlers
//! validate with them, the engine acts on them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an inbound call to a number does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundAction {
    /// Answer and bridge to a voice agent (`ws://`/`wss://`), in `format` (`twilio`, the
    /// default, or `l16-16k`).
    Agent {
        /// The agent's URL.
        url: String,
        /// Its audio format.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
    },
    /// Ask this URL (`http://`/`https://`) while the caller hears ringing; its answer decides.
    Webhook {
        /// The call webhook's URL.
        url: String,
    },
    /// Answer and play a prompt: a WAV file in `DATA_DIR/prompts/`, by name.
    Play {
        /// The file's name (`[A-Za-z0-9._-]`, ending `.wav`).
        prompt: String,
    },
    /// Answer and send the caller's audio back.
    Echo,
    /// Refuse with this SIP status (400–699).
    Reject {
        /// The status.
        status: u16,
    },
    /// Send the caller elsewhere: a SIP URI, or an E.164 number through the trunk (a 302
    /// whose Contact is the target, RFC 3261 §21.3.3).
    Forward {
        /// The target.
        to: String,
    },
}

impl InboundAction {
    /// Its `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            InboundAction::Agent { .. } => "agent",
            InboundAction::Webhook { .. } => "webhook",
            InboundAction::Play { .. } => "play",
            InboundAction::Echo => "echo",
            InboundAction::Reject { .. } => "reject",
            InboundAction::Forward { .. } => "forward",
        }
    }

    /// As JSON (what the API shows and the store keeps).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The agent formats an `agent` action takes.
pub const AGENT_FORMATS: &[&str] = &["twilio", "l16-16k"];

/// Reads and checks an action object (`{"type": "agent", "url": …}`); `webhook` only
/// where `allow_webhook` (not as a webhook's own fallback or answer). `Err` says what is
/// wrong, for a 400 naming the field.
pub fn parse_action(v: &Value, allow_webhook: bool) -> Result<InboundAction, String> {
    let Some(o) = v.as_object() else { return Err("must be an object with a \"type\"".into()) };
    let text = |name: &str| o.get(name).and_then(Value::as_str);
    let kind = text("type").ok_or("needs a \"type\": agent, webhook, play, echo, reject or forward")?;
    match kind {
        "agent" => {
            let url = text("url").filter(|u| is_ws_url(u)).ok_or("agent: url must be a ws:// or wss:// URL")?;
            let format = match o.get("format") {
                None | Some(Value::Null) => None,
                Some(Value::String(f)) if AGENT_FORMATS.contains(&f.as_str()) => Some(f.clone()),
                Some(_) => return Err(format!("agent: format must be one of {}", AGENT_FORMATS.join(", "))),
            };
            Ok(InboundAction::Agent { url: url.into(), format })
        }
        "webhook" if allow_webhook => {
            let url =
                text("url").filter(|u| is_http_url(u)).ok_or("webhook: url must be an http:// or https:// URL")?;
            Ok(InboundAction::Webhook { url: url.into() })
        }
        "webhook" => Err("webhook is not allowed here".into()),
        "play" => {
            let prompt = text("prompt")
                .filter(|p| is_prompt_name(p))
                .ok_or("play: prompt must be a .wav file name in DATA_DIR/prompts (letters, digits, . _ -)")?;
            Ok(InboundAction::Play { prompt: prompt.into() })
        }
        "echo" => Ok(InboundAction::Echo),
        "reject" => {
            let status = match o.get("status") {
                None | Some(Value::Null) => 603,
                Some(s) => s
                    .as_u64()
                    .filter(|s| (400..=699).contains(s))
                    .ok_or("reject: status must be a SIP status from 400 to 699")? as u16,
            };
            Ok(InboundAction::Reject { status })
        }
        "forward" => {
            let to = text("to")
                .filter(|t| is_sip_uri(t) || is_e164(t))
                .ok_or("forward: to must be a sip:/sips: URI or an E.164 number")?;
            Ok(InboundAction::Forward { to: to.into() })
        }
        other => Err(format!("unknown type {other:?}: agent, webhook, play, echo, reject or forward")),
    }
}

/// What a call webhook answered: what to do, whether to record, and the custom
/// parameters for an agent (Twilio Media Streams' `customParameters`; they never become
/// SIP headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What the call does.
    pub action: InboundAction,
    /// Record it.
    pub record: bool,
    /// For the agent's `start.customParameters`.
    pub custom: Vec<(String, String)>,
}

/// Reads a call webhook's answer: `{"action": "answer", "agent_url": …, "agent_format": …,
/// "custom_parameters": {…}, "record": true}`, `{"action": "play", "prompt": …}`,
/// `{"action": "echo"}`, `{"action": "forward", "to": …}`, `{"action": "reject",
/// "status": 486}`. `Err` says why it cannot be used (then the number's fallback holds).
pub fn parse_answer(body: &[u8]) -> Result<Decision, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(o) = v.as_object() else { return Err("not a JSON object".into()) };
    let record = match o.get("record") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("record must be true or false".into()),
    };
    let mut custom = Vec::new();
    if let Some(p) = o.get("custom_parameters").filter(|p| !p.is_null()) {
        let Some(map) = p.as_object().filter(|m| m.len() <= 20) else {
            return Err("custom_parameters must be an object of at most 20 entries".into());
        };
        for (k, v) in map {
            let Some(v) = v.as_str().filter(|v| v.len() <= 1024 && k.len() <= 64) else {
                return Err(format!("custom_parameters.{k} must be a string of at most 1024 characters"));
            };
            custom.push((k.clone(), v.to_string()));
        }
    }
    let action = match o.get("action").and_then(Value::as_str) {
        Some("answer") => {
            let mut a = serde_json::Map::new();
            a.insert("type".into(), "agent".into());
            a.insert("url".into(), o.get("agent_url").cloned().unwrap_or(Value::Null));
            a.insert("format".into(), o.get("agent_format").cloned().unwrap_or(Value::Null));
            parse_action(&Value::Object(a), false)?
        }
        Some(kind @ ("play" | "echo" | "forward" | "reject")) => {
            let mut a = o.clone();
            a.insert("type".into(), kind.into());
            parse_action(&Value::Object(a), false)?
        }
        _ => return Err("action must be answer, play, echo, forward or reject".into()),
    };
    Ok(Decision { action, record, custom })
}

/// `+` and 2–15 digits, not starting with 0.
pub fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else { return false };
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

/// A number as E.164 from however a SIP peer wrote it (`+1 (555) 010-0000`, `0015550100`,
/// `15550100`, `tel:+1555…`): visual separators dropped, `00` read as `+`, and digits
/// without a `+` taken as already international. `None` for anything that is not a number.
pub fn e164(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = raw.strip_prefix("tel:").unwrap_or(raw);
    let raw = raw.split(';').next().unwrap_or("");
    let plus = raw.starts_with('+');
    let mut digits = String::new();
    for c in raw.chars().skip(usize::from(plus)) {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '.' | ' ' | '(' | ')' => {}
            _ => return None,
        }
    }
    let digits = if plus { digits.as_str() } else { digits.strip_prefix("00").unwrap_or(&digits) };
    let n = format!("+{digits}");
    is_e164(&n).then_some(n)
}

/// A number pattern: an E.164 number, or an E.164 prefix ending in `*` (`+1555*`), or `*`
/// (every number).
pub fn is_pattern(p: &str) -> bool {
    match p.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => prefix.strip_prefix('+').is_some_and(|d| {
            (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
        }),
        None => is_e164(p),
    }
}

/// How well `pattern` matches the E.164 `number`: `None` not at all; the exact number
/// beats every prefix, and a longer prefix beats a shorter one.
pub fn specificity(pattern: &str, number: &str) -> Option<usize> {
    match pattern.strip_suffix('*') {
        Some(prefix) => number.starts_with(prefix).then_some(prefix.len()),
        None => (pattern == number).then_some(usize::MAX),
    }
}

/// A `sip:`/`sips:` URI with a host, without spaces, at most 256 characters.
pub fn is_sip_uri(s: &str) -> bool {
    let rest = s.strip_prefix("sips:").or_else(|| s.strip_prefix("sip:"));
    rest.is_some_and(|r| {
        let host = r.rsplit('@').next().unwrap_or("");
        s.len() <= 256
            && !host.is_empty()
            && !host.starts_with(';')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// A `ws://`/`wss://` URL with a host.
pub fn is_ws_url(u: &str) -> bool {
    (u.starts_with("ws://") || u.starts_with("wss://")) && has_host(u)
}

/// An `http://`/`https://` URL with a host.
pub fn is_http_url(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://")) && has_host(u)
}

fn has_host(u: &str) -> bool {
    u.len() <= 2048 && u.parse::<axum::http::Uri>().is_ok_and(|p| p.host().is_some_and(|h| !h.is_empty()))
}

/// A prompt's file name: letters, digits, `.`, `_`, `-`, ending in `.wav`, no path.
pub fn is_prompt_name(p: &str) -> bool {
    (5..=128).contains(&p.len())
        && p.to_ascii_lowercase().ends_with(".wav")
        && !p.starts_with('.')
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_read_as_e164_however_written() {
        assert_eq!(e164("+1 (555) 010-0000").as_deref(), Some("+15550100000"));
        assert_eq!(e164("0044207946000").as_deref(), Some("+44207946000"));
        assert_eq!(e164("15550100").as_deref(), Some("+15550100"));
        assert_eq!(e164("tel:+15550100;phone-context=x").as_deref(), Some("+15550100"));
        assert_eq!(e164("alice"), None);
        assert_eq!(e164("+"), None);
    }

    #[test]
    fn the_exact_number_beats_the_longest_prefix() {
        let n = "+15550100";
        assert_eq!(specificity("+15550100", n), Some(usize::MAX));
        assert!(specificity("+1555*", n) > specificity("+1*", n));
        assert_eq!(specificity("*", n), Some(0));
        assert_eq!(specificity("+44*", n), None);
        assert!(is_pattern("+1555*") && is_pattern("*") && is_pattern("+15550100"));
        assert!(!is_pattern("1555*") && !is_pattern("+15*5") && !is_pattern("+0*"));
    }

    #[test]
    fn actions_are_checked() {
        let a = parse_action(&json!({"type": "agent", "url": "ws://127.0.0.1:9/a"}), true).unwrap();
        assert_eq!(a, InboundAction::Agent { url: "ws://127.0.0.1:9/a".into(), format: None });
        assert_eq!(parse_action(&json!({"type": "reject"}), true).unwrap(), InboundAction::Reject { status: 603 });
        assert!(parse_action(&json!({"type": "reject", "status": 200}), true).is_err());
        assert!(parse_action(&json!({"type": "webhook", "url": "http://x/"}), false).is_err());
        assert!(parse_action(&json!({"type": "play", "prompt": "../etc/passwd.wav"}), true).is_err());
        assert!(parse_action(&json!({"type": "forward", "to": "sip:bob@example.com"}), true).is_ok());
        assert!(parse_action(&json!({"type": "forward", "to": "bob"}), true).is_err());
        let back: InboundAction = serde_json::from_value(a.to_json()).unwrap();
        assert_eq!(back.kind(), "agent");
    }

    #[test]
    fn webhook_answers_are_read_or_refused() {
        let d = parse_answer(
            br#"{"action":"answer","agent_url":"ws://127.0.0.1:9/","custom_parameters":{"tier":"gold"},"record":true}"#,
        )
        .unwrap();
        assert!(d.record && d.custom == vec![("tier".into(), "gold".into())]);
        assert_eq!(parse_answer(br#"{"action":"play","prompt":"hello.wav"}"#).unwrap().action.kind(), "play");
        assert_eq!(
            parse_answer(br#"{"action":"reject","status":486}"#).unwrap().action,
            InboundAction::Reject { status: 486 }
        );
        assert!(parse_answer(br#"{"action":"webhook","url":"http://x/"}"#).is_err());
        assert!(parse_answer(b"nope").is_err());
        assert!(parse_answer(br#"{"action":"answer"}"#).is_err(), "an answer needs its agent");
    }
}
