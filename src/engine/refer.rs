//! Whom an inbound REFER may make us call (`DIALTONE_REFER`, `DIALTONE_REFER_ALLOW`). A
//! REFER asks us to place a call, and with it to spend the trunk's money: nothing is called
//! unless the policy allows it (toll fraud by REFER is the first thing an open SIP port
//! meets).

use crate::config::{ReferMode, ReferPolicy};
use dialtone_sip::{Destination, Host, Transport, Uri};
use std::net::{IpAddr, SocketAddr};

/// Where a REFER the policy allows goes: the Request-URI and the next hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferCall {
    /// The INVITE's Request-URI (and To).
    pub uri: String,
    /// Where it goes.
    pub dest: Destination,
}

/// Decides a REFER to `target` (its Refer-To URI): the call to place, or why not.
pub fn decide(
    policy: &ReferPolicy,
    target: &str,
    trunk: Option<Destination>,
    trunk_host: Option<&str>,
) -> Result<ReferCall, String> {
    if policy.mode == ReferMode::Reject {
        return Err("REFER is not accepted (DIALTONE_REFER=reject)".into());
    }
    // Embedded headers (`?Replaces=…`, attended transfer) are not acted on.
    let uri = target.split('?').next().unwrap_or(target).trim().to_string();
    let parsed = Uri::parse(&uri).map_err(|_| format!("{uri:?} is not a SIP URI"))?;
    let Some(sip) = parsed.as_sip() else { return Err(format!("{uri:?} is not a sip: URI")) };
    let base = match (sip.user, sip.port) {
        (Some(u), Some(p)) => format!("{u}@{}:{p}", sip.host),
        (Some(u), None) => format!("{u}@{}", sip.host),
        (None, Some(p)) => format!("{}:{p}", sip.host),
        (None, None) => sip.host.to_string(),
    };
    if policy.allow.iter().any(|p| glob(&pattern_base(p), &base)) {
        let transport = match sip.params.value("transport") {
            Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            _ => Transport::Udp,
        };
        let addr = match sip.host {
            Host::V4(ip) => SocketAddr::new(IpAddr::V4(ip), sip.port.unwrap_or(5060)),
            Host::V6(ip) => SocketAddr::new(IpAddr::V6(ip), sip.port.unwrap_or(5060)),
            _ => trunk.map(|t| t.addr).ok_or_else(|| format!("{uri}: a host name needs DIALTONE_TRUNK"))?,
        };
        return Ok(ReferCall { uri, dest: Destination { transport, addr } });
    }
    let number = sip.user.filter(|u| is_number(u));
    match (policy.mode, number, trunk, trunk_host) {
        (ReferMode::Trunk, Some(n), Some(dest), Some(host)) => Ok(ReferCall { uri: format!("sip:{n}@{host}"), dest }),
        (ReferMode::Trunk, Some(_), _, _) => Err("a number needs DIALTONE_TRUNK".into()),
        _ => Err(format!("{uri} is not allowed (DIALTONE_REFER_ALLOW)")),
    }
}

/// The number a target names: an E.164 number itself, or a SIP URI's user part when it
/// is a number (`sip:+4420…@host`); `None` for anything else (a queue, an agent).
pub fn number_in(target: &str) -> Option<String> {
    if !target.starts_with("sip") {
        return is_number(target).then(|| target.to_string());
    }
    Uri::parse(target).ok()?.as_sip()?.user.filter(|u| is_number(u)).map(str::to_string)
}

/// `+` and 1–15 digits, or the digits alone.
fn is_number(s: &str) -> bool {
    let d = s.strip_prefix('+').unwrap_or(s);
    !d.is_empty() && d.len() <= 15 && d.bytes().all(|b| b.is_ascii_digit())
}

/// A pattern's `user@host[:port]`, without scheme and parameters.
fn pattern_base(p: &str) -> String {
    let p = p.strip_prefix("sips:").or_else(|| p.strip_prefix("sip:")).unwrap_or(p);
    p.split([';', '?']).next().unwrap_or(p).to_string()
}

/// `*` matches any run of characters; the rest case-insensitively.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) =
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: &str, allow: &str) -> ReferPolicy {
        ReferPolicy::parse(Some(mode), Some(allow)).unwrap()
    }

    fn trunk() -> Option<Destination> {
        Some(Destination { transport: Transport::Udp, addr: "127.0.0.1:5070".parse().unwrap() })
    }

    #[test]
    fn the_default_refuses_everything() {
        let p = ReferPolicy::default();
        assert!(decide(&p, "sip:+19005550100@any-host", trunk(), Some("trunk.example")).is_err());
        assert!(decide(&p, "sip:bob@192.0.2.7", trunk(), Some("trunk.example")).is_err());
    }

    #[test]
    fn uri_mode_calls_only_what_the_list_names() {
        let p = policy("uri", "sip:queue@10.0.0.5, sip:agent-*@192.0.2.9:5080");
        let ok = decide(&p, "sip:queue@10.0.0.5;transport=tcp", trunk(), None).unwrap();
        assert_eq!(ok.dest, Destination { transport: Transport::Tcp, addr: "10.0.0.5:5060".parse().unwrap() });
        assert_eq!(ok.uri, "sip:queue@10.0.0.5;transport=tcp");
        assert!(decide(&p, "<x>", trunk(), None).is_err());
        assert!(decide(&p, "sip:Agent-7@192.0.2.9:5080?Replaces=abc", trunk(), None).is_ok(), "case, headers");
        assert!(decide(&p, "sip:agent-7@192.0.2.9", trunk(), None).is_err(), "another port");
        assert!(decide(&p, "sip:queue@10.0.0.6", trunk(), None).is_err());
        assert!(decide(&p, "sip:+19005550100@10.0.0.5", trunk(), Some("t")).is_err(), "numbers only in trunk mode");
        assert!(decide(&p, "tel:+19005550100", trunk(), Some("t")).is_err());
    }

    #[test]
    fn trunk_mode_also_calls_numbers_through_the_trunk() {
        let p = policy("trunk", "");
        let ok = decide(&p, "sip:+19005550100@any-host", trunk(), Some("trunk.example:5070")).unwrap();
        assert_eq!(ok.uri, "sip:+19005550100@trunk.example:5070");
        assert_eq!(ok.dest, trunk().unwrap());
        assert!(decide(&p, "sip:bob@192.0.2.7", trunk(), Some("t")).is_err(), "an IP is not a number");
        assert!(decide(&p, "sip:+1555@x", None, None).is_err(), "no trunk");
    }

    #[test]
    fn settings_are_checked() {
        assert!(ReferPolicy::parse(Some("uri"), None).is_err(), "uri needs a list");
        assert!(ReferPolicy::parse(Some("everything"), None).is_err());
        assert!(ReferPolicy::parse(Some("trunk"), Some("queue@x")).is_err(), "not a sip: URI");
        assert_eq!(ReferPolicy::parse(None, None).unwrap().mode, ReferMode::Reject);
    }

    #[test]
    fn glob_matches_runs() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("*", ""));
        assert!(glob("a*", "a"));
        assert!(!glob("a*c", "abbb"));
        assert!(glob("*@10.0.0.5", "queue@10.0.0.5"));
    }
}
