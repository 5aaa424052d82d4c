//! The organizations' trunks as the engine takes them: each stored row's URI resolved
//! (RFC 3263), its settings read, its `allowed_cidrs` for the perimeter.

use crate::engine::Trunk;
use dialtone_api::store::TrunkRow;
use dialtone_sip::auth::Credentials;
use dialtone_sip::perimeter::Cidr;
use dialtone_sip::sdp::sdes::SrtpMode;
use dialtone_sip::Uri;
use std::time::Duration;

/// The engine's trunks from the stored rows, and every trunk's allowed ranges. A trunk
/// whose URI does not resolve is kept without servers (it takes no calls; it is logged).
pub async fn resolve(rows: Vec<TrunkRow>, tls: Option<&crate::tls::Client>) -> (Vec<Trunk>, Vec<Cidr>) {
    let mut trunks = Vec::new();
    let mut ranges = Vec::new();
    for row in rows {
        for c in &row.allowed_cidrs {
            match Cidr::parse(c) {
                Ok(c) => ranges.push(c),
                Err(e) => tracing::warn!(trunk = %row.name, cidr = %c, error = %e, "ignoring an allowed range"),
            }
        }
        let Some((host, name)) = host_of(&row.uri) else {
            tracing::warn!(trunk = %row.name, uri = %row.uri, "a trunk URI without a host");
            continue;
        };
        let servers = match crate::dns::global() {
            Ok(dns) => match dns.targets(&row.uri).await {
                Ok(t) => t.targets,
                Err(e) => {
                    tracing::warn!(trunk = %row.name, uri = %row.uri, error = %e, "cannot resolve the trunk");
                    Vec::new()
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no resolver");
                Vec::new()
            }
        };
        if let (Some(tls), Some(name)) = (tls, &name) {
            for s in &servers {
                tls.name(s.addr, name);
            }
        }
        let mut t = Trunk::new(&row.id, &row.uri, &host, servers);
        t.name = row.name;
        t.org = Some(row.organization_id);
        t.credentials = match (&row.username, &row.password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
            _ => None,
        };
        t.from_user = row.username;
        t.prefixes = row.prefixes;
        t.priority = row.priority;
        t.max_concurrent_calls = row.max_concurrent_calls;
        t.max_calls_per_second = row.max_calls_per_second;
        t.codecs = row.codecs;
        t.srtp = srtp(row.srtp.as_deref());
        t.asserted_identity = row.asserted_identity;
        t.privacy = row.privacy;
        t.options_interval = row.options_interval.map(|s| Duration::from_secs(u64::from(s)));
        t.register = row.register;
        trunks.push(t);
    }
    (trunks, ranges)
}

/// `off`, `optional`, `mandatory` → the trunk's SRTP policy; anything else: the setting's.
pub fn srtp(s: Option<&str>) -> Option<Option<SrtpMode>> {
    match s {
        Some("off") => Some(None),
        Some("optional") => Some(Some(SrtpMode::Optional)),
        Some("mandatory") => Some(Some(SrtpMode::Mandatory)),
        _ => None,
    }
}

/// A URI's host\[:port\], and its host when it is a name (for TLS).
pub fn host_of(uri: &str) -> Option<(String, Option<String>)> {
    let parsed = Uri::parse(uri).ok()?;
    let sip = parsed.as_sip()?;
    let host = match sip.port {
        Some(p) => format!("{}:{p}", sip.host),
        None => sip.host.to_string(),
    };
    Some((host, sip.host.ip().is_none().then(|| sip.host.to_string())))
}
