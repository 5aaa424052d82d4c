//! `dialtone call`: one outbound call from the command line.

use crate::config::{CallArgs, Settings};
use crate::driver::{App, Driver, Sockets};
use crate::media_io::{self, MediaOptions, MediaTask, Source};
use anyhow::{bail, Context};
use dialtone_media::player::Prompt;
use dialtone_sip::sdp::SessionDescription;
use dialtone_sip::ua::{CallRef, EndReason, Outgoing, UaEvent, UserAgent};
use dialtone_sip::{Destination, Transport, Uri};
use std::net::SocketAddr;
use std::net::UdpSocket as StdUdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, talked, and hung up by either side.
    Completed,
    /// Not answered, or ended abnormally: the SIP status and reason.
    Failed(u16, String),
}

struct CallApp {
    call: Option<CallRef>,
    talk: Duration,
    ring_deadline: Instant,
    hangup_at: Option<Instant>,
    answered: bool,
    hanging_up: bool,
    outcome: Option<Outcome>,
    media: CallMedia,
    /// `--transfer`: the target, whether the REFER went, and how the transfer ended.
    transfer: Option<String>,
    referred: bool,
    transfer_failed: Option<(u16, String)>,
}

/// The call's media: sockets until the answer, then the running task.
struct CallMedia {
    offer: SessionDescription,
    sockets: Option<(StdUdpSocket, StdUdpSocket)>,
    prompts: Option<(Arc<Prompt>, Arc<Prompt>)>,
    record: Option<std::path::PathBuf>,
    dtmf: Option<String>,
    dtmf_at: Option<Instant>,
    task: Option<MediaTask>,
    /// `--device`: the sound card opened before the INVITE, and its call rate.
    #[cfg(feature = "device")]
    device: Option<(crate::device::Device, crate::device::DeviceRings, u32)>,
    /// The sound card in use during the call.
    #[cfg(feature = "device")]
    device_live: Option<crate::device::Device>,
    /// `--agent`: the voice agent to bridge the call to, and what it is told of the call.
    agent: Option<(crate::agent::AgentConfig, crate::agent::CallInfo)>,
}

impl CallMedia {
    /// Starts the media for the 2xx's SDP answer.
    fn start(&mut self, answer: &[u8], now: Instant) {
        let Some((rtp, rtcp)) = self.sockets.take() else { return };
        let n = match crate::session::negotiate(&self.offer, answer) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("call: no media: {e}");
                return;
            }
        };
        let seed = crate::now_seed();
        let config = match media_io::session_config(&n, seed, "dialtone-call") {
            Ok(c) => c,
            Err(e) => {
                eprintln!("call: no media: {e}");
                return;
            }
        };
        eprintln!("call: media {}/{} to {}", config.codec.name(), config.codec.clock_rate(), n.remote_rtp);
        let source = match &self.prompts {
            Some((p8, p16)) => Source::Play(if config.codec.audio_rate() == 8000 { p8.clone() } else { p16.clone() }),
            None => Source::Silence,
        };
        let source = match &self.agent {
            Some((cfg, info)) => {
                eprintln!("call: bridging to the agent at {}", cfg.url);
                Source::Agent(crate::agent::start(0, config.codec.audio_rate(), info.clone(), cfg.clone()))
            }
            None => source,
        };
        if self.dtmf.is_some() && config.telephone_event.is_none() {
            eprintln!("call: the callee did not accept telephone-event: --dtmf cannot be sent");
            self.dtmf = None;
        }
        #[allow(unused_mut)]
        let mut opts = MediaOptions {
            label: 0,
            source,
            record: self.record.clone(),
            mic: None,
            speaker: None,
            totals: None,
            print: true,
            notice: None,
            rtp_timeout: None,
        };
        #[cfg(feature = "device")]
        if let Some((dev, rings, rate)) = self.device.take() {
            let call_rate = config.codec.audio_rate();
            let opened = if rate == call_rate {
                Ok((dev, rings))
            } else {
                // Opened at 8 kHz before the INVITE; the callee chose a wideband codec.
                drop(dev);
                crate::device::open(call_rate)
            };
            match opened {
                Ok((dev, rings)) => {
                    eprintln!("call: sound card: {}", dev.description);
                    opts.source = Source::Mic;
                    opts.mic = Some(rings.mic);
                    opts.speaker = Some(rings.speaker);
                    self.device_live = Some(dev);
                }
                Err(e) => eprintln!("call: {e:#}"),
            }
        }
        match media_io::spawn(rtp, rtcp, config, opts) {
            Ok(t) => {
                self.task = Some(t);
                // Give the far end a moment to hear the stream before the first digit.
                self.dtmf_at = self.dtmf.as_ref().map(|_| now + Duration::from_millis(500));
            }
            Err(e) => eprintln!("call: cannot start the media: {e}"),
        }
    }

    /// How long sending the digits takes (100 ms each, 50 ms gaps, three end packets).
    fn dtmf_time(&self) -> Duration {
        self.dtmf.as_ref().map_or(Duration::ZERO, |d| Duration::from_millis(700 + 200 * d.len() as u64))
    }
}

impl App for CallApp {
    fn on_event(&mut self, ev: UaEvent, ua: &mut UserAgent, now: Instant) {
        match ev {
            UaEvent::Progress { response, .. } => {
                eprintln!("call: {} {}", response.status, response.reason);
            }
            UaEvent::Challenged { status, realms, .. } => {
                eprintln!("call: {status} challenge for realm {}: sending the credentials", realms.join(", "));
            }
            UaEvent::Answered { response, .. } => {
                self.media.start(&response.body, now);
                self.talk = self.talk.max(self.media.dtmf_time());
                eprintln!(
                    "call: {} {} — talking for {:.1} s",
                    response.status,
                    response.reason,
                    self.talk.as_secs_f64()
                );
                self.answered = true;
                self.hangup_at = Some(now + self.talk);
            }
            UaEvent::InDialog { request, .. } if request.method == dialtone_sip::Method::Notify && self.referred => {
                // RFC 3515 §2.4.5: the body is a message/sipfrag of the new call's status line.
                let frag = String::from_utf8_lossy(&request.body);
                let line = frag.lines().next().unwrap_or("").trim().to_string();
                let status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
                eprintln!("call: transfer: {line}");
                match status {
                    Some(s) if s >= 300 => {
                        self.transfer_failed = Some((s, format!("transfer failed: {line}")));
                        self.hang_up(ua, now);
                    }
                    Some(s) if s >= 200 => {
                        self.transfer_failed = None;
                        self.hang_up(ua, now);
                    }
                    _ => {}
                }
            }
            UaEvent::Terminated { reason, .. } => {
                if let Some((status, why)) = self.transfer_failed.take() {
                    self.outcome = Some(Outcome::Failed(status, why));
                    return;
                }
                self.outcome = Some(match (&reason, self.answered) {
                    (EndReason::LocalBye | EndReason::RemoteBye, true) => Outcome::Completed,
                    (EndReason::Rejected { status, reason }, _) => Outcome::Failed(*status, reason.clone()),
                    (EndReason::Cancelled, _) => Outcome::Failed(487, "Request Terminated".into()),
                    (EndReason::Timeout, _) => Outcome::Failed(408, "Request Timeout".into()),
                    (r, _) => Outcome::Failed(r.status(), format!("{r:?}")),
                });
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.hanging_up {
            return None;
        }
        let t = self.hangup_at.unwrap_or(self.ring_deadline);
        Some(self.media.dtmf_at.map_or(t, |d| d.min(t)))
    }

    fn on_timeout(&mut self, ua: &mut UserAgent, now: Instant) {
        if self.media.dtmf_at.is_some_and(|at| now >= at) {
            self.media.dtmf_at = None;
            if let (Some(task), Some(d)) = (&self.media.task, &self.media.dtmf) {
                eprintln!("call: sending DTMF {d}");
                task.send_dtmf(d);
            }
        }
        if now < self.hangup_at.unwrap_or(self.ring_deadline) {
            return;
        }
        if !self.answered {
            eprintln!("call: no answer within the ring timeout, cancelling");
        }
        if let (true, false, Some(target), Some(call)) =
            (self.answered, self.referred, self.transfer.clone(), self.call)
        {
            match ua.refer(call, &target, now) {
                Ok(()) => {
                    eprintln!("call: transferring the far end to {target}");
                    self.referred = true;
                    // The far end reports in NOTIFYs; give up on it after Timer B's 32 s.
                    self.hangup_at = Some(now + Duration::from_secs(32));
                    self.transfer_failed = Some((408, "transfer: no final NOTIFY from the far end".into()));
                    return;
                }
                Err(e) => eprintln!("call: cannot transfer ({e}); hanging up"),
            }
        }
        self.hang_up(ua, now);
    }

    fn on_interrupt(&mut self, ua: &mut UserAgent, now: Instant) {
        self.hang_up(ua, now);
    }

    fn on_wake(&mut self, ua: &mut UserAgent, now: Instant) {
        // The agent bridge asks for the hang-up (agent unreachable or gone, fallback played).
        if self.media.agent.as_ref().is_some_and(|(a, _)| !a.hangups.take().is_empty()) && !self.hanging_up {
            self.hang_up(ua, now);
        }
    }

    fn finished(&self) -> bool {
        self.outcome.is_some()
    }
}

impl CallApp {
    fn hang_up(&mut self, ua: &mut UserAgent, now: Instant) {
        self.hanging_up = true;
        if let Some(call) = self.call {
            if ua.hangup(call, now).is_err() && self.outcome.is_none() {
                self.outcome = Some(Outcome::Failed(500, "could not hang up".into()));
            }
        }
    }
}

/// Where to send the INVITE and what to put in its Request-URI and To.
pub struct Target {
    /// The Request-URI.
    pub uri: String,
    /// Where the INVITE goes.
    pub dest: Destination,
    /// A Route header for the INVITE: the trunk as a loose-routing outbound proxy.
    pub route: Option<String>,
}

/// Whether `s` looks like an E.164 number (`+` then 1–15 digits; a bare digit string is
/// taken as E.164 without the plus).
pub fn is_e164(s: &str) -> bool {
    let d = s.strip_prefix('+').unwrap_or(s);
    !d.is_empty() && d.len() <= 15 && d.bytes().all(|c| c.is_ascii_digit())
}

async fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))
}

pub(crate) async fn destination_of(uri: &str) -> anyhow::Result<(Transport, SocketAddr)> {
    let parsed = Uri::parse(uri).map_err(|e| anyhow::anyhow!("{uri:?} is not a valid SIP URI: {e}"))?;
    let Some(sip) = parsed.as_sip() else { bail!("{uri:?}: only sip: URIs can be called") };
    let transport = match sip.params.value("transport") {
        Some(t) => Transport::parse(t).with_context(|| format!("unsupported transport {t:?}"))?,
        None => Transport::Udp,
    };
    let port = sip.port.unwrap_or(5060);
    let addr = match sip.host.ip() {
        Some(ip) => SocketAddr::new(ip, port),
        None => resolve(&sip.host.to_string(), port).await?,
    };
    Ok((transport, addr))
}

/// An IP as the host part of a SIP URI (`[…]` around IPv6).
pub fn host_literal(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// The trunk as an outbound proxy (RFC 3261 §8.1.2): when its URI has `;lr`, a loose
/// router, every call goes through it with `Route: <trunk>`.
fn outbound_proxy(trunk: Option<&str>) -> Option<String> {
    let t = trunk?;
    Uri::parse(t).ok()?.as_sip()?.params.has("lr").then(|| format!("<{t}>"))
}

/// Works out the Request-URI and next hop for a target: an E.164 number goes through the
/// trunk; a SIP URI goes to its host, or through the trunk when that is a loose-routing
/// proxy (`DIALTONE_TRUNK=sip:proxy.example.com;lr`).
pub async fn target_of(target: &str, trunk: Option<&str>) -> anyhow::Result<Target> {
    let route = outbound_proxy(trunk);
    if is_e164(target) {
        let Some(trunk) = trunk else { bail!("{target} is a phone number: set DIALTONE_TRUNK to the trunk's SIP URI") };
        let turi = Uri::parse(trunk).map_err(|e| anyhow::anyhow!("DIALTONE_TRUNK {trunk:?}: {e}"))?;
        let Some(t) = turi.as_sip() else { bail!("DIALTONE_TRUNK must be a sip: URI") };
        let digits = target.strip_prefix('+').unwrap_or(target);
        let host = match t.port {
            Some(p) => format!("{}:{p}", t.host),
            None => t.host.to_string(),
        };
        let (transport, addr) = destination_of(trunk).await?;
        let uri = match transport {
            Transport::Udp => format!("sip:+{digits}@{host}"),
            _ => format!("sip:+{digits}@{host};transport={}", transport.as_str().to_lowercase()),
        };
        return Ok(Target { uri, dest: Destination { transport, addr }, route });
    }
    let uri = if target.starts_with("sip:") || target.starts_with("sips:") {
        target.to_string()
    } else {
        format!("sip:{target}")
    };
    let (transport, addr) = match (&route, trunk) {
        (Some(_), Some(proxy)) => destination_of(proxy).await?,
        _ => destination_of(&uri).await?,
    };
    Ok(Target { uri, dest: Destination { transport, addr }, route })
}

/// Places the call; returns how it ended.
pub async fn run(args: CallArgs) -> anyhow::Result<Outcome> {
    let settings = Settings::resolve(&args.common, None, SocketAddr::from(([0, 0, 0, 0], 0)))?;
    if let Some(d) = &args.dtmf {
        if let Some(bad) = d.chars().find(|c| dialtone_media::dtmf::digit_to_event(*c).is_none()) {
            bail!("--dtmf {d:?}: {bad:?} is not a DTMF key (0-9, *, #, A-D)");
        }
    }
    let prompts = match &args.play {
        Some(p) => Some((Arc::new(Prompt::load(p, 8000)?), Arc::new(Prompt::load(p, 16_000)?))),
        None => None,
    };
    // The sound card is opened before the call is placed, so a machine without one says
    // so at once; G.711 (8 kHz) is what the callee most likely picks.
    #[cfg(feature = "device")]
    let device = match args.device {
        true => Some(crate::device::open(8000).map(|(d, r)| (d, r, 8000))?),
        false => None,
    };
    #[cfg(not(feature = "device"))]
    if args.device {
        bail!("--device: this dialtone was built without the `device` feature (cargo build --features device)");
    }
    if args.agent.is_some() && (args.play.is_some() || args.device) {
        bail!("--agent supplies the call's audio: it cannot be combined with --play or --device");
    }
    // Read before dialling, so an unreadable fallback WAV stops the command at once.
    let (fallback, format) = match &args.agent {
        Some(_) => {
            crate::agent::check_env()?;
            (crate::agent::Fallback::from_env()?, crate::agent::AgentFormat::from_env()?)
        }
        None => (None, crate::agent::AgentFormat::Twilio),
    };
    if let Some(t) = &args.transfer {
        dialtone_sip::Uri::parse(t).map_err(|e| anyhow::anyhow!("--transfer {t:?}: {e}"))?;
    }
    let target = target_of(&args.target, settings.trunk.as_deref()).await?;
    let sockets = Sockets::bind(settings.sip_listen).await?;
    let bound = sockets.local_addr();
    let ip = crate::advertised_ip(bound.ip(), settings.sip_advertise, Some(target.dest.addr));
    let mut ua = crate::user_agent(&settings, ip, bound.port());
    let host = host_literal(ip);
    let from = match (&args.from, &settings.trunk_user) {
        (Some(f), _) => format!("<{f}>"),
        (None, Some(u)) => format!("<sip:{u}@{host}>"),
        (None, None) => format!("<sip:dialtone@{host}>"),
    };
    let mut ports = crate::ports::PortPool::new(settings.rtp_ports.0, settings.rtp_ports.1);
    let (port, rtp_sockets) = loop {
        let port = ports.take().context("no free RTP port in DIALTONE_RTP_PORTS")?;
        if let Ok(s) = media_io::bind_rtp(bound.ip(), port) {
            break (port, s);
        }
    };
    let offer_sdp = crate::session::offer_sdp(ip, port);
    let offer = bytes::Bytes::from(offer_sdp.to_string());
    let now = Instant::now();
    eprintln!("call: INVITE {} via {}", target.uri, target.dest);
    let out_from = from.clone();
    let out = Outgoing {
        request_uri: target.uri.clone(),
        from,
        to: format!("<{}>", target.uri),
        dest: target.dest,
        body: Some(offer),
        extra: target.route.iter().map(|r| (dialtone_sip::HeaderName::Route, r.clone())).collect(),
    };
    let call = ua.invite(out, now).map_err(|e| anyhow::anyhow!("cannot place the call: {e}"))?;
    let mut app = CallApp {
        call: Some(call),
        talk: Duration::from_secs_f64(args.duration.max(0.0)),
        ring_deadline: now + Duration::from_secs_f64(args.ring_timeout.max(0.0)),
        hangup_at: None,
        answered: false,
        hanging_up: false,
        outcome: None,
        media: CallMedia {
            offer: offer_sdp,
            sockets: Some(rtp_sockets),
            prompts,
            record: args.record.clone(),
            dtmf: args.dtmf.clone(),
            dtmf_at: None,
            task: None,
            #[cfg(feature = "device")]
            device,
            #[cfg(feature = "device")]
            device_live: None,
            agent: None,
        },
        transfer: args.transfer.clone(),
        referred: false,
        transfer_failed: None,
    };
    let mut driver = Driver::new(ua, sockets, settings.sip_trace);
    if let Some(url) = &args.agent {
        let hangups = crate::agent::Hangups::new(driver.waker());
        let cfg = crate::agent::AgentConfig { url: url.clone(), format, fallback, hangups, print: true };
        let from = dialtone_sip::NameAddr::parse(&out_from, "From").ok().map(|n| n.uri_text.to_string());
        let info =
            crate::agent::CallInfo { call_id: "call-0".into(), contact_id: None, from, to: Some(target.uri.clone()) };
        app.media.agent = Some((cfg, info));
    }
    driver.set_linger(Duration::from_secs(5));
    driver.run(&mut app).await?;
    if let Some(task) = app.media.task.take() {
        task.stop().await;
    }
    Ok(app.outcome.unwrap_or(Outcome::Failed(500, "ended without an outcome".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_detection() {
        assert!(is_e164("+15551234567"));
        assert!(is_e164("4930123456"));
        assert!(!is_e164("+1555abc"));
        assert!(!is_e164("sip:+1555@x"));
        assert!(!is_e164("+1234567890123456"));
    }

    #[tokio::test]
    async fn targets() {
        let t = target_of("sip:bob@127.0.0.1:5099;transport=tcp", None).await.unwrap();
        assert_eq!(t.dest.transport, Transport::Tcp);
        assert_eq!(t.dest.addr, "127.0.0.1:5099".parse().unwrap());
        let t = target_of("+15551234", Some("sip:127.0.0.1:5070")).await.unwrap();
        assert_eq!(t.uri, "sip:+15551234@127.0.0.1:5070");
        assert_eq!(t.dest.addr, "127.0.0.1:5070".parse().unwrap());
        assert!(target_of("+15551234", None).await.is_err());
        assert!(t.route.is_none());
        // A loose-routing trunk is the outbound proxy for SIP URIs too.
        let t = target_of("sip:bob@192.0.2.7:5080", Some("sip:127.0.0.1:5070;lr")).await.unwrap();
        assert_eq!(t.uri, "sip:bob@192.0.2.7:5080");
        assert_eq!(t.dest.addr, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(t.route.as_deref(), Some("<sip:127.0.0.1:5070;lr>"));
        let t = target_of("sip:bob@192.0.2.7:5080", Some("sip:127.0.0.1:5070")).await.unwrap();
        assert_eq!((t.dest.addr, t.route), ("192.0.2.7:5080".parse().unwrap(), None));
    }
}
