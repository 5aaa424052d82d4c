//! dialtone: the engine that wires the SIP stack, the media engine and the control API
//! to sockets, clocks and tasks. This crate is the only place that does I/O.
#![deny(missing_docs)]

pub mod agent;
pub mod bridge;
pub mod call;
pub mod conference;
pub mod config;
#[cfg(feature = "device")]
pub mod device;
pub mod dns;
pub mod driver;
pub mod engine;
pub mod media_io;
pub mod metrics;
pub mod ports;
pub mod quality;
pub mod recorder;
pub mod serve;
pub mod session;
pub mod speech;
pub mod taps;
pub mod tester;
pub mod tls;

use dialtone_sip::transaction::TimerConfig;
use dialtone_sip::ua::{UaConfig, UserAgent};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// The IP to advertise in Via, Contact and SDP: the configured one (a public address
/// behind 1:1 NAT) if any; else a concrete listen address as is; for 0.0.0.0 the local address the kernel would route
/// from towards `towards` (or, without a peer, towards a documentation address: a
/// connected UDP socket sends nothing, it only asks the routing table), else loopback.
pub fn advertised_ip(listen: IpAddr, configured: Option<IpAddr>, towards: Option<SocketAddr>) -> IpAddr {
    if let Some(ip) = configured {
        return ip;
    }
    if !listen.is_unspecified() {
        return listen;
    }
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): only used to look up the default route.
    let peer = towards.unwrap_or_else(|| SocketAddr::from(([192, 0, 2, 1], 9)));
    {
        if peer.ip().is_loopback() {
            return peer.ip();
        }
        let bind = if peer.is_ipv4() { SocketAddr::from(([0, 0, 0, 0], 0)) } else { SocketAddr::from(([0u16; 8], 0)) };
        if let Ok(s) = UdpSocket::bind(bind) {
            if s.connect(peer).is_ok() {
                if let Ok(a) = s.local_addr() {
                    return a.ip();
                }
            }
        }
    }
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// Binds UDP and TCP on `DIALTONE_SIP_LISTEN` and, with `DIALTONE_SIP_TLS_LISTEN`, TLS with
/// `DIALTONE_TLS_CERT`/`DIALTONE_TLS_KEY` (reloaded on SIGHUP).
pub async fn bind_sockets(settings: &config::Settings) -> anyhow::Result<driver::Sockets> {
    let sockets = driver::Sockets::bind(settings.sip_listen).await?;
    let Some(addr) = settings.sip_tls_listen else { return Ok(sockets) };
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        anyhow::bail!("DIALTONE_SIP_TLS_LISTEN needs DIALTONE_TLS_CERT and DIALTONE_TLS_KEY (PEM files)");
    };
    let server = tls::Server::load(cert, key)?;
    let reload = server.clone();
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match reload.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded (SIGHUP); connections up keep theirs"),
                    Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded; the old one stays"),
                }
            }
        });
    }
    sockets.with_tls(addr, server).await
}

/// A UA configured from the settings, advertising `ip:port` on UDP and TCP, and on TLS
/// `ip:tls_port` (our TLS listener's; without one, the TCP port, for the connections we
/// open, on which the peer answers).
pub fn user_agent(settings: &config::Settings, ip: IpAddr, port: u16, tls_port: Option<u16>) -> UserAgent {
    let t1 = Duration::from_millis(settings.t1_ms.max(1));
    let timers = TimerConfig { t1, ..TimerConfig::default() };
    let addr = SocketAddr::new(ip, port);
    UserAgent::new(UaConfig {
        timers,
        udp_addr: Some(addr),
        tcp_addr: Some(addr),
        tls_addr: Some(SocketAddr::new(ip, tls_port.unwrap_or(port))),
        seed: rand::random(),
        session_expires: (settings.session_expires > 0).then_some(settings.session_expires),
        min_se: settings.min_se,
        realm: settings.sip_realm.clone(),
        digest: settings.sip_digest.clone(),
        credentials: match (&settings.trunk_user, &settings.trunk_password) {
            (Some(user), Some(password)) => Some(dialtone_sip::auth::Credentials::new(user, password)),
            _ => None,
        },
        ..UaConfig::default()
    })
}

/// Milliseconds since the Unix epoch: the store's clock.
pub fn now_ms() -> i64 {
    (now_seed() / 1_000_000) as i64
}

/// Nanoseconds since the Unix epoch: a seed for SSRCs and tags, and unique file names.
pub fn now_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
