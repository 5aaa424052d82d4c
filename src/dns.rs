//! Finding a SIP server (RFC 3263 §4): a host name's NAPTR records choose the transport and
//! name its SRV records, which give the servers in priority order (and by weight within a
//! priority, RFC 2782), each then looked up for its addresses. A URI with an IP address, or a
//! port, skips what it does not need. The result is every target in order: the first is
//! tried, the others when it times out or answers 503 (the UA's failover). `DIALTONE_DNS`
//! names the nameserver (tests, private DNS); the system's otherwise.

use dialtone_sip::{Destination, Transport, Uri};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The process's resolver: `DIALTONE_DNS`'s nameserver once [`use_nameserver`] was
/// called, else the system's.
static GLOBAL: std::sync::OnceLock<Dns> = std::sync::OnceLock::new();

/// Uses `nameserver` (or the system's, for `None`) for every lookup from now on; only the
/// first call counts.
pub fn use_nameserver(nameserver: Option<SocketAddr>) -> anyhow::Result<()> {
    let dns = Dns::new(nameserver)?;
    let _ = GLOBAL.set(dns);
    Ok(())
}

/// The process's resolver.
pub fn global() -> anyhow::Result<&'static Dns> {
    if let Some(d) = GLOBAL.get() {
        return Ok(d);
    }
    let dns = Dns::new(None)?;
    Ok(GLOBAL.get_or_init(|| dns))
}

/// A resolver: the system's, or one nameserver's.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

/// What a URI resolved to: the targets in the order to try them, and how long that holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// In order.
    pub targets: Vec<Destination>,
    /// The shortest TTL of the records used (`None`: no DNS was needed).
    pub ttl: Option<Duration>,
}

impl Dns {
    /// The system resolver, or `nameserver`'s (UDP, then TCP).
    pub fn new(nameserver: Option<SocketAddr>) -> anyhow::Result<Dns> {
        let resolver = match nameserver {
            Some(addr) => {
                let mut cfg = ResolverConfig::new();
                cfg.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                cfg.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
                TokioResolver::builder_with_config(cfg, TokioConnectionProvider::default()).build()
            }
            None => {
                TokioResolver::builder_tokio().map_err(|e| anyhow::anyhow!("the system's DNS settings: {e}"))?.build()
            }
        };
        Ok(Dns { resolver })
    }

    /// Resolves a SIP URI to its targets (RFC 3263 §4.1, §4.2).
    pub async fn targets(&self, uri: &str) -> anyhow::Result<Targets> {
        let parsed = Uri::parse(uri).map_err(|e| anyhow::anyhow!("{uri:?} is not a valid SIP URI: {e}"))?;
        let Some(sip) = parsed.as_sip() else { anyhow::bail!("{uri:?}: only sip: and sips: URIs can be called") };
        let param = match sip.params.value("transport") {
            Some(t) => Some(Transport::parse(t).ok_or_else(|| anyhow::anyhow!("unsupported transport {t:?}"))?),
            None => None,
        };
        let explicit = match (sip.secure, param) {
            (true, _) => Some(Transport::Tls),
            (false, p) => p,
        };
        let default_port = |t: Transport| if t == Transport::Tls { 5061 } else { 5060 };
        // An IP address: no DNS (§4.1, §4.2).
        if let Some(ip) = sip.host.ip() {
            let t = explicit.unwrap_or(Transport::Udp);
            let addr = SocketAddr::new(ip, sip.port.unwrap_or(default_port(t)));
            return Ok(Targets { targets: vec![Destination { transport: t, addr }], ttl: None });
        }
        let host = sip.host.to_string();
        let mut ttl = Ttl::default();
        // A port: the host's addresses alone (§4.2).
        if let Some(port) = sip.port {
            let t = explicit.unwrap_or(Transport::Udp);
            let addrs = self.addresses(&host, &mut ttl).await?;
            let targets = addrs.into_iter().map(|ip| Destination { transport: t, addr: SocketAddr::new(ip, port) });
            return Ok(Targets { targets: targets.collect(), ttl: ttl.0 });
        }
        // The transport: the URI's, else NAPTR's choice (§4.1), else the first SRV found.
        let mut services: Vec<(Transport, String)> = match explicit {
            Some(t) => vec![(t, srv_name(t, &host))],
            None => self.naptr(&host, sip.secure, &mut ttl).await,
        };
        if services.is_empty() {
            let mut order = vec![Transport::Udp, Transport::Tcp, Transport::Tls];
            if sip.secure {
                order = vec![Transport::Tls];
            }
            services = order.into_iter().map(|t| (t, srv_name(t, &host))).collect();
        }
        let mut targets = Vec::new();
        for (t, name) in &services {
            let Ok(srv) = self.resolver.srv_lookup(name.as_str()).await else { continue };
            ttl.at_most(srv.as_lookup().valid_until());
            let mut records: Vec<(u16, u16, u16, String)> = srv
                .iter()
                .map(|r| (r.priority(), r.weight(), r.port(), r.target().to_utf8().trim_end_matches('.').to_string()))
                .filter(|r| !r.3.is_empty())
                .collect();
            order_srv(&mut records);
            for (_, _, port, target) in records {
                let Ok(addrs) = self.addresses(&target, &mut ttl).await else { continue };
                targets
                    .extend(addrs.into_iter().map(|ip| Destination { transport: *t, addr: SocketAddr::new(ip, port) }));
            }
            if !targets.is_empty() {
                return Ok(Targets { targets, ttl: ttl.0 });
            }
        }
        // No SRV: the host's addresses at the default port (§4.2).
        let t = explicit.unwrap_or(if sip.secure { Transport::Tls } else { Transport::Udp });
        let addrs = self.addresses(&host, &mut ttl).await?;
        let targets =
            addrs.into_iter().map(|ip| Destination { transport: t, addr: SocketAddr::new(ip, default_port(t)) });
        Ok(Targets { targets: targets.collect(), ttl: ttl.0 })
    }

    /// The NAPTR records of `host` we can use (§4.1): SIP over UDP, TCP or TLS (only TLS for
    /// a `sips:` URI), `S` flag, in order and preference; each names its SRV records.
    async fn naptr(&self, host: &str, secure: bool, ttl: &mut Ttl) -> Vec<(Transport, String)> {
        let Ok(found) = self.resolver.lookup(host, RecordType::NAPTR).await else { return Vec::new() };
        ttl.at_most(found.valid_until());
        let mut records: Vec<(u16, u16, Transport, String)> = found
            .iter()
            .filter_map(|r| match r {
                RData::NAPTR(n) => {
                    let service = String::from_utf8_lossy(n.services()).to_ascii_uppercase();
                    let t = match service.as_str() {
                        "SIP+D2U" if !secure => Transport::Udp,
                        "SIP+D2T" if !secure => Transport::Tcp,
                        "SIPS+D2T" => Transport::Tls,
                        _ => return None,
                    };
                    let flags = String::from_utf8_lossy(n.flags()).to_ascii_lowercase();
                    (flags == "s").then(|| {
                        let name = n.replacement().to_utf8().trim_end_matches('.').to_string();
                        (n.order(), n.preference(), t, name)
                    })
                }
                _ => None,
            })
            .collect();
        records.sort_by_key(|r| (r.0, r.1));
        records.into_iter().map(|(_, _, t, name)| (t, name)).collect()
    }

    /// `host`'s IPv4 and IPv6 addresses.
    async fn addresses(&self, host: &str, ttl: &mut Ttl) -> anyhow::Result<Vec<IpAddr>> {
        let found = self.resolver.lookup_ip(host).await.map_err(|e| anyhow::anyhow!("resolving {host}: {e}"))?;
        ttl.at_most(found.valid_until());
        Ok(found.iter().collect())
    }
}

/// The SRV name for `t` at `host` (§4.1: `_sips._tcp` for TLS).
fn srv_name(t: Transport, host: &str) -> String {
    match t {
        Transport::Tls => format!("_sips._tcp.{host}"),
        Transport::Tcp => format!("_sip._tcp.{host}"),
        _ => format!("_sip._udp.{host}"),
    }
}

/// RFC 2782: by priority, and within a priority a weighted random order (a zero weight
/// keeps a small chance).
fn order_srv(records: &mut Vec<(u16, u16, u16, String)>) {
    records.sort_by_key(|r| r.0);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = std::mem::take(records);
    while !rest.is_empty() {
        let prio = rest[0].0;
        let mut group: Vec<_> = rest.iter().filter(|r| r.0 == prio).cloned().collect();
        rest.retain(|r| r.0 != prio);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.1) + 1).sum();
            let mut pick = rand::random_range(0..total);
            let i = group
                .iter()
                .position(|r| {
                    let w = u32::from(r.1) + 1;
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            out.push(group.remove(i));
        }
    }
    *records = out;
}

/// The shortest validity seen.
#[derive(Default)]
struct Ttl(Option<Duration>);

impl Ttl {
    fn at_most(&mut self, until: std::time::Instant) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        self.0 = Some(self.0.map_or(left, |t| t.min(left)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_records_go_by_priority_then_weight() {
        let rec = |p, w, port| (p, w, port, format!("t{port}"));
        for _ in 0..50 {
            let mut r = vec![rec(20, 0, 3), rec(10, 50, 1), rec(10, 50, 2), rec(5, 0, 9)];
            order_srv(&mut r);
            let ports: Vec<u16> = r.iter().map(|x| x.2).collect();
            assert_eq!((ports[0], ports[3]), (9, 3), "{ports:?}");
            assert!(ports[1..3].contains(&1) && ports[1..3].contains(&2));
        }
    }
}
