//! The inbound perimeter: who may send us requests. A SIP port open to the internet is
//! scanned within minutes (sipvicious `svmap`, `svwar`, `svcrack`), and an answered INVITE
//! costs media, an agent's minutes, or a trunk's. Only the addresses allowed (the trunk's,
//! a carrier's published ranges, loopback) reach the user agent; anyone else gets a
//! stateless 403, or nothing, and a source that keeps trying is not answered at all for a
//! while. Sans-IO: the caller passes the time.
//!
//! Requests inside a dialog we know (its To tag is ours) are not held to it: a far end we
//! called, or one a trunk handed to us, may send its BYE from its own address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// An address range: `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `addr[/bits]`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => {
                (a, Some(b.parse::<u8>().map_err(|_| format!("{s:?}: the prefix length is not a number"))?))
            }
            None => (s, None),
        };
        let addr: IpAddr =
            a.trim_matches(['[', ']']).parse().map_err(|_| format!("{s:?} is not an IP address or range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(format!("{s:?}: a prefix of {bits} bits is longer than the address"));
        }
        Ok(Cidr { addr, bits })
    }

    /// One address.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, bits: if addr.is_ipv4() { 32 } else { 128 } }
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(&net.octets(), &a.octets(), self.bits),
            (IpAddr::V6(net), IpAddr::V6(a)) => prefix_eq(&net.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// What a stranger's request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Deny {
    /// A stateless 403 Forbidden.
    #[default]
    Forbidden,
    /// Nothing: to a scanner, no SIP server is there.
    Drop,
}

/// The perimeter's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PerimeterConfig {
    /// Who may send requests that start something (an INVITE, a REGISTER, an OPTIONS).
    pub allow: Vec<Cidr>,
    /// What everyone else gets.
    pub deny: Deny,
    /// Refusals from one address, within `block_for`, after which it is not answered…
    pub block_after: u32,
    /// …for this long.
    pub block_for: Duration,
}

impl Default for PerimeterConfig {
    fn default() -> Self {
        PerimeterConfig {
            allow: Vec::new(),
            deny: Deny::Forbidden,
            block_after: 10,
            block_for: Duration::from_secs(600),
        }
    }
}

/// The perimeter's decision on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed in.
    Allow,
    /// Refused: answer as [`PerimeterConfig::deny`] says.
    Refuse(Deny),
    /// Refused, and the source is now blocked (this is its last answer, if any).
    Block(Deny),
    /// The source is blocked: no answer.
    Blocked,
}

#[derive(Clone, Copy, Debug)]
struct Source {
    refusals: u32,
    since: Instant,
    blocked_until: Option<Instant>,
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerimeterStats {
    /// Requests refused (answered 403 or dropped) for their source.
    pub refused: u64,
    /// Requests from blocked sources, not answered.
    pub blocked: u64,
    /// Sources blocked so far.
    pub sources_blocked: u64,
}

/// At most this many sources are remembered; past it, those whose window is over go.
const MAX_SOURCES: usize = 100_000;

/// The perimeter: its settings and what it remembers of each refused source.
#[derive(Debug)]
pub struct Perimeter {
    cfg: PerimeterConfig,
    /// The trunks' `allowed_cidrs`, replaced whenever the trunks change.
    trunk_ranges: Vec<Cidr>,
    sources: HashMap<IpAddr, Source>,
    stats: PerimeterStats,
}

impl Perimeter {
    /// A perimeter with these settings.
    pub fn new(cfg: PerimeterConfig) -> Perimeter {
        Perimeter { cfg, trunk_ranges: Vec::new(), sources: HashMap::new(), stats: PerimeterStats::default() }
    }

    /// Its settings.
    pub fn config(&self) -> &PerimeterConfig {
        &self.cfg
    }

    /// Its counters.
    pub fn stats(&self) -> PerimeterStats {
        self.stats
    }

    /// Adds a range to the allow-list (once).
    pub fn allow(&mut self, range: Cidr) {
        if !self.cfg.allow.contains(&range) {
            self.cfg.allow.push(range);
        }
    }

    /// Replaces the trunks' ranges (a trunk's `allowed_cidrs`; a deleted trunk's go).
    pub fn set_trunk_ranges(&mut self, ranges: Vec<Cidr>) {
        self.trunk_ranges = ranges;
    }

    /// Whether `ip` is on the allow-list.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.cfg.allow.iter().chain(&self.trunk_ranges).any(|c| c.contains(ip))
    }

    /// Decides a request from `ip` at `now`.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.allows(ip) {
            return Verdict::Allow;
        }
        self.refuse(ip, now)
    }

    /// Counts a refusal of `ip` (a stranger's request, a failed authentication): the
    /// verdict for it.
    pub fn refuse(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            let window = self.cfg.block_for;
            self.sources.retain(|_, s| s.blocked_until.map_or(now < s.since + window, |u| now < u));
        }
        let cfg = &self.cfg;
        let s = self.sources.entry(ip).or_insert(Source { refusals: 0, since: now, blocked_until: None });
        if let Some(until) = s.blocked_until {
            if now < until {
                self.stats.blocked += 1;
                return Verdict::Blocked;
            }
            *s = Source { refusals: 0, since: now, blocked_until: None };
        }
        if now >= s.since + cfg.block_for {
            *s = Source { refusals: 0, since: now, blocked_until: None };
        }
        s.refusals += 1;
        self.stats.refused += 1;
        if cfg.block_after > 0 && s.refusals >= cfg.block_after {
            s.blocked_until = Some(now + cfg.block_for);
            self.stats.sources_blocked += 1;
            return Verdict::Block(cfg.deny);
        }
        Verdict::Refuse(cfg.deny)
    }

    /// Whether `ip` is blocked now (if so, its request is counted as ignored).
    pub fn is_blocked(&mut self, ip: IpAddr, now: Instant) -> bool {
        let blocked = self.sources.get(&ip).is_some_and(|s| s.blocked_until.is_some_and(|u| now < u));
        if blocked {
            self.stats.blocked += 1;
        }
        blocked
    }

    /// Sources blocked now.
    pub fn blocked_now(&self, now: Instant) -> usize {
        self.sources.values().filter(|s| s.blocked_until.is_some_and(|u| now < u)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_they_should() {
        let net = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(net.contains(ip("192.0.2.77")) && !net.contains(ip("192.0.3.1")));
        assert!(net.contains(ip("::ffff:192.0.2.9")), "IPv4-mapped");
        let odd = Cidr::parse("10.1.2.3/15").unwrap();
        assert!(odd.contains(ip("10.0.255.1")) && odd.contains(ip("10.1.0.0")) && !odd.contains(ip("10.2.0.0")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.5")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("[2001:db8::]/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert_eq!(Cidr::parse("127.0.0.2").unwrap(), Cidr::host(ip("127.0.0.2")));
        for bad in ["10.0.0.0/33", "host.example", "10.0.0.0/x", "::/129", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strangers_are_refused_then_blocked_for_a_while() {
        let t0 = Instant::now();
        let cfg = PerimeterConfig {
            allow: vec![Cidr::parse("127.0.0.2").unwrap()],
            deny: Deny::Forbidden,
            block_after: 3,
            block_for: Duration::from_secs(60),
        };
        let mut p = Perimeter::new(cfg);
        assert_eq!(p.check(ip("127.0.0.2"), t0), Verdict::Allow);
        let stranger = ip("203.0.113.9");
        assert_eq!(p.check(stranger, t0), Verdict::Refuse(Deny::Forbidden));
        assert_eq!(p.check(stranger, t0), Verdict::Refuse(Deny::Forbidden));
        assert_eq!(p.check(stranger, t0), Verdict::Block(Deny::Forbidden));
        assert_eq!(p.check(stranger, t0 + Duration::from_secs(59)), Verdict::Blocked);
        assert_eq!(p.blocked_now(t0), 1);
        // Allowed addresses are never blocked; the block ends.
        assert_eq!(p.check(ip("127.0.0.2"), t0), Verdict::Allow);
        assert_eq!(p.check(stranger, t0 + Duration::from_secs(60)), Verdict::Refuse(Deny::Forbidden));
        assert_eq!(p.stats(), PerimeterStats { refused: 4, blocked: 1, sources_blocked: 1 });
        // Refusals spread out over more than the window do not add up.
        let slow = ip("198.51.100.1");
        for i in 0..10 {
            assert_eq!(p.check(slow, t0 + Duration::from_secs(40 * i)), Verdict::Refuse(Deny::Forbidden), "{i}");
        }
    }
}
