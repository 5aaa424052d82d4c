//! `dialtone call`: one outbound call from the command line.

use crate::config::{CallArgs, Settings};
use crate::driver::{App, Driver};
use crate::engine::{self, Action, Command, Engine, Event, MediaStart, RecordAs, Refusal, SourceSpec};
use crate::media_io::{self, MediaOptions, MediaTask, Source};
use anyhow::{bail, Context};
use dialtone_media::player::Prompt;
use dialtone_sip::ua::{CallRef, UaEvent, UserAgent};
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

/// What `dialtone test` changes in a call it places through this machinery: the audio
/// sent comes from its scripted caller, the call hangs up when the script ends, and
/// nothing is printed.
pub struct Driven {
    /// Makes the call's source once the answer settled the codec (given its audio rate).
    pub source: Box<dyn FnOnce(u32) -> Box<dyn crate::taps::Tap> + Send>,
    /// Told when the call's media starts (the call was answered).
    pub on_answer: Box<dyn FnOnce() + Send>,
}

/// `dialtone call` on the call engine: the engine places and steers the call; this
/// driver prints its progress, runs its media, and sends the `--dtmf` digits.
struct CallApp {
    engine: Engine,
    call: Option<CallRef>,
    talk: Duration,
    outcome: Option<Outcome>,
    media: CallMedia,
    /// A transfer was asked for (`--transfer`): its NOTIFYs are printed.
    transfer: bool,
    /// The agent bridge (or a driven call's finished script) asked for the hang-up.
    agent_hangup: Arc<std::sync::atomic::AtomicBool>,
    /// Print progress to stderr (not for `dialtone test`'s calls).
    print: bool,
}

/// The call's media: its port's sockets until the answer, then the running task.
struct CallMedia {
    /// The address RTP sockets are bound on.
    bind_ip: std::net::IpAddr,
    sockets: Option<(u16, (StdUdpSocket, StdUdpSocket))>,
    prompts: Option<(Arc<Prompt>, Arc<Prompt>)>,
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
    /// `dialtone test`: the scripted caller, and how its end reaches the driver (the
    /// hang-up flag and the driver's waker).
    driven: Option<Driven>,
    script_end: Option<(Arc<std::sync::atomic::AtomicBool>, Arc<tokio::sync::Notify>)>,
    print: bool,
}

impl CallMedia {
    /// Binds the port the engine asks for.
    fn open(&mut self, port: u16) -> Event {
        match media_io::bind_rtp(self.bind_ip, port) {
            Ok(s) => {
                self.sockets = Some((port, s));
                Event::PortOpened(port)
            }
            Err(_) => Event::PortBusy(port),
        }
    }

    /// Starts the media the answer settled.
    fn start(&mut self, m: MediaStart, now: Instant) {
        let Some((_, (rtp, rtcp))) = self.sockets.take().filter(|(p, _)| *p == m.port) else { return };
        let config = m.config;
        if self.print {
            eprintln!("call: media {}/{} to {}", config.codec.name(), config.codec.clock_rate(), config.remote_rtp);
        }
        let rate = config.codec.audio_rate();
        let mut notice: Option<media_io::MediaHook> = None;
        let source = match (&m.source, &self.prompts, &self.agent) {
            _ if self.driven.is_some() => {
                let Some(d) = self.driven.take() else { return };
                (d.on_answer)();
                if let Some((flag, wake)) = self.script_end.clone() {
                    notice = Some(Arc::new(move |n| {
                        if let media_io::MediaNotice::SourceFinished = n {
                            flag.store(true, std::sync::atomic::Ordering::Release);
                            wake.notify_one();
                        }
                    }));
                }
                Source::Tap(Arc::new(crate::taps::TapSlot::new((d.source)(rate))))
            }
            (SourceSpec::Agent(_), _, Some((cfg, info))) => {
                eprintln!("call: bridging to the agent at {}", cfg.url);
                Source::Agent(crate::agent::start(0, rate, info.clone(), cfg.clone()))
            }
            (SourceSpec::Prompt, Some((p8, p16)), _) => {
                Source::Play(if rate == 8000 { p8.clone() } else { p16.clone() })
            }
            _ => Source::Silence,
        };
        if self.dtmf.is_some() && config.telephone_event.is_none() {
            eprintln!("call: the callee did not accept telephone-event: --dtmf cannot be sent");
            self.dtmf = None;
        }
        let record = match m.record {
            Some(RecordAs::Path(p)) => Some(p),
            _ => None,
        };
        #[allow(unused_mut)]
        let mut opts = MediaOptions {
            label: 0,
            source,
            record,
            mic: None,
            speaker: None,
            totals: None,
            print: self.print,
            notice,
            rtp_timeout: None,
            speech: None,
            quality: None,
        };
        #[cfg(feature = "device")]
        if let (SourceSpec::Device, Some((dev, rings, opened_at))) = (&m.source, self.device.take()) {
            let opened = if opened_at == rate {
                Ok((dev, rings))
            } else {
                // Opened at 8 kHz before the INVITE; the callee chose a wideband codec.
                drop(dev);
                crate::device::open(rate)
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
            Err(e) if self.print => eprintln!("call: cannot start the media: {e}"),
            Err(e) => tracing::warn!(error = %e, "cannot start the media"),
        }
    }

    /// How long sending the digits takes (100 ms each, 50 ms gaps, three end packets).
    fn dtmf_time(&self) -> Duration {
        self.dtmf.as_ref().map_or(Duration::ZERO, |d| Duration::from_millis(700 + 200 * d.len() as u64))
    }
}

impl App for CallApp {
    fn on_event(&mut self, ev: UaEvent, ua: &mut UserAgent, now: Instant) {
        match &ev {
            _ if !self.print => {}
            UaEvent::Progress { response, .. } => eprintln!("call: {} {}", response.status, response.reason),
            UaEvent::Challenged { status, realms, .. } => {
                eprintln!("call: {status} challenge for realm {}: sending the credentials", realms.join(", "));
            }
            UaEvent::Answered { response, .. } => {
                eprintln!(
                    "call: {} {} — talking for {:.1} s",
                    response.status,
                    response.reason,
                    self.talk.as_secs_f64()
                );
            }
            UaEvent::InDialog { request, .. } if request.method == dialtone_sip::Method::Notify && self.transfer => {
                // RFC 3515 §2.4.5: the body is a message/sipfrag of the new call's status line.
                let frag = String::from_utf8_lossy(&request.body);
                eprintln!("call: transfer: {}", frag.lines().next().unwrap_or("").trim());
            }
            _ => {}
        }
        self.feed(now, Event::Sip(ev), ua);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [self.engine.poll_timeout(), self.media.dtmf_at].into_iter().flatten().min()
    }

    fn on_timeout(&mut self, ua: &mut UserAgent, now: Instant) {
        if self.media.dtmf_at.is_some_and(|at| now >= at) {
            self.media.dtmf_at = None;
            if let (Some(task), Some(d)) = (&self.media.task, &self.media.dtmf) {
                eprintln!("call: sending DTMF {d}");
                task.send_dtmf(d);
            }
        }
        self.engine.handle_timeout(now, ua);
        self.drain(now, ua);
    }

    fn on_interrupt(&mut self, ua: &mut UserAgent, now: Instant) {
        self.feed(now, Event::Shutdown, ua);
    }

    fn on_wake(&mut self, ua: &mut UserAgent, now: Instant) {
        // The agent bridge asks for the hang-up (agent unreachable or gone, fallback played).
        if self.agent_hangup.swap(false, std::sync::atomic::Ordering::AcqRel) {
            if let Some(call) = self.call {
                let why = if self.media.script_end.is_some() { "script ended" } else { "agent" };
                self.feed(now, Event::AgentHangup(call, why.into()), ua);
            }
        }
    }

    fn finished(&self) -> bool {
        self.outcome.is_some()
    }
}

impl CallApp {
    fn feed(&mut self, now: Instant, ev: Event, ua: &mut UserAgent) {
        self.engine.handle(now, ev, ua);
        self.drain(now, ua);
    }

    /// Carries out the engine's actions.
    fn drain(&mut self, now: Instant, ua: &mut UserAgent) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::OpenPort(port) => {
                    let ev = self.media.open(port);
                    self.engine.handle(now, ev, ua);
                }
                Action::StartMedia(m) => self.media.start(*m, now),
                // `dialtone call` places calls; nothing comes in to route, nothing to join, no
                // ladder kept.
                Action::Ask(_)
                | Action::SipDialog(..)
                | Action::Draining
                | Action::Bridge(..)
                | Action::Unbridge(_)
                | Action::Join(..)
                | Action::Mute(..)
                | Action::Announce(..)
                | Action::ConferenceAgent(_) => {}
                Action::ClosePort(_) => self.media.sockets = None,
                Action::Dialed(Ok(call)) => self.call = Some(call),
                Action::DialNote(_, note) if self.print => eprintln!("call: {note}"),
                Action::DialNote(..) => {}
                Action::Dialed(Err(e)) => self.outcome = Some(Outcome::Failed(503, refusal_text(e))),
                Action::DialEnded(_, r) => {
                    self.outcome = Some(match r {
                        Ok(()) => Outcome::Completed,
                        Err((status, why)) => Outcome::Failed(status, why),
                    })
                }
                Action::Reply(_, Err(e)) => self.outcome = Some(Outcome::Failed(503, refusal_text(e))),
                // The media task stays until the command ends (its recording is finished then).
                Action::EndMedia(..)
                | Action::Media(..)
                | Action::AgentDtmf(..)
                | Action::AgentAnsweredBy(..)
                | Action::Persist(_)
                | Action::Reply(..) => {}
            }
        }
    }
}

fn refusal_text(r: Refusal) -> String {
    match r {
        Refusal::NotLive(m) | Refusal::Invalid(m) | Refusal::Unavailable(m) | Refusal::Failed(m) => m,
        Refusal::Forbidden(_, m) | Refusal::TooMany(_, m, _) => m,
        other => format!("{other:?}"),
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
    /// The other servers to try, in order, if `dest` fails (RFC 3263).
    pub alternates: Vec<Destination>,
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

/// Every server `uri` resolves to, in the order to try them (RFC 3263).
pub(crate) async fn targets_of(uri: &str) -> anyhow::Result<Vec<Destination>> {
    let t = crate::dns::global()?.targets(uri).await?;
    if t.targets.is_empty() {
        bail!("{uri}: no server found");
    }
    Ok(t.targets)
}

/// The first server `uri` resolves to (RFC 3263).
pub(crate) async fn destination_of(uri: &str) -> anyhow::Result<(Transport, SocketAddr)> {
    let first = targets_of(uri).await?[0];
    Ok((first.transport, first.addr))
}

/// `uri`'s next hop without DNS beyond the host's address (kept for reference).
#[allow(dead_code)]
async fn plain_destination_of(uri: &str) -> anyhow::Result<(Transport, SocketAddr)> {
    let parsed = Uri::parse(uri).map_err(|e| anyhow::anyhow!("{uri:?} is not a valid SIP URI: {e}"))?;
    let Some(sip) = parsed.as_sip() else { bail!("{uri:?}: only sip: URIs can be called") };
    // `sips:` is TLS all the way (RFC 3261 §26.2.2); `;transport=tls` says TLS too.
    let transport = match (sip.secure, sip.params.value("transport")) {
        (true, _) => Transport::Tls,
        (false, Some(t)) => Transport::parse(t).with_context(|| format!("unsupported transport {t:?}"))?,
        (false, None) => Transport::Udp,
    };
    let port = sip.port.unwrap_or(if transport == Transport::Tls { 5061 } else { 5060 });
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
        let mut all = targets_of(trunk).await?;
        let Destination { transport, addr } = all.remove(0);
        let uri = match transport {
            Transport::Udp => format!("sip:+{digits}@{host}"),
            _ => format!("sip:+{digits}@{host};transport={}", transport.as_str().to_lowercase()),
        };
        return Ok(Target { uri, dest: Destination { transport, addr }, route, alternates: all });
    }
    let uri = if target.starts_with("sip:") || target.starts_with("sips:") {
        target.to_string()
    } else {
        format!("sip:{target}")
    };
    let mut all = match (&route, trunk) {
        (Some(_), Some(proxy)) => targets_of(proxy).await?,
        _ => targets_of(&uri).await?,
    };
    let dest = all.remove(0);
    Ok(Target { uri, dest, route, alternates: all })
}

/// Places the call; returns how it ended.
pub async fn run(args: CallArgs) -> anyhow::Result<Outcome> {
    run_driven(args, None).await
}

/// Places the call, with `dialtone test`'s caller as its source when `driven` (then
/// `args.duration` is the longest the call may last).
pub async fn run_driven(args: CallArgs, driven: Option<Driven>) -> anyhow::Result<Outcome> {
    let print = driven.is_none();
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
    crate::dns::use_nameserver(settings.dns)?;
    let target = target_of(&args.target, settings.trunk.as_deref()).await?;
    let sockets = crate::bind_sockets(&settings).await?;
    let bound = sockets.local_addr();
    let tls_port = sockets.tls_addr().map(|a| a.port());
    let ip = crate::advertised_ip(bound.ip(), settings.sip_advertise, Some(target.dest.addr));
    let ua = crate::user_agent(&settings, ip, bound.port(), tls_port);
    let host = host_literal(ip);
    let from = match (&args.from, &settings.trunk_user) {
        (Some(f), _) => format!("<{f}>"),
        (None, Some(u)) => format!("<sip:{u}@{host}>"),
        (None, None) => format!("<sip:dialtone@{host}>"),
    };
    let talk = Duration::from_secs_f64(args.duration.max(0.0));
    let source = match (&args.agent, &args.play, args.device) {
        _ if driven.is_some() => SourceSpec::Silence,
        (Some(_), _, _) => SourceSpec::Agent(Default::default()),
        (None, Some(_), _) => SourceSpec::Prompt,
        (None, None, true) => SourceSpec::Device,
        _ => SourceSpec::Silence,
    };
    let engine = Engine::new(engine::Config {
        // This port takes no calls: an INVITE to it is declined.
        inbound: crate::config::Inbound::Reject,
        media_ip: settings.media_advertise.unwrap_or(ip),
        learn_media: false,
        rtp_ports: settings.rtp_ports,
        answer_after: Duration::ZERO,
        record_all: false,
        store: false,
        trunk: None,
        trunk_alternates: Vec::new(),
        trunk_host: None,
        trunk_user: None,
        rtp_timeout: None,
        seed: rand::random(),
        refer: Default::default(),
        srtp: settings.srtp,
        srtp_any_transport: settings.srtp_any_transport,
        max_calls: None,
        trunks: Vec::new(),
        inbound_explicit: false,
    });
    let out_from = from.clone();
    let dial = engine::Dial {
        uri: target.uri.clone(),
        dest: target.dest,
        alternates: target.alternates.clone(),
        from,
        route: target.route.clone(),
        source,
        record: args.record.clone(),
        talk,
        ring_timeout: Duration::from_secs_f64(args.ring_timeout.max(0.0)),
        transfer: args.transfer.clone(),
    };
    let agent_hangup = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut app = CallApp {
        engine,
        call: None,
        talk,
        outcome: None,
        media: CallMedia {
            bind_ip: bound.ip(),
            sockets: None,
            prompts,
            dtmf: args.dtmf.clone(),
            dtmf_at: None,
            task: None,
            #[cfg(feature = "device")]
            device,
            #[cfg(feature = "device")]
            device_live: None,
            agent: None,
            driven,
            script_end: None,
            print,
        },
        transfer: args.transfer.is_some(),
        agent_hangup: agent_hangup.clone(),
        print,
    };
    app.talk = app.talk.max(app.media.dtmf_time());
    let mut driver = Driver::new(ua, sockets, settings.sip_trace);
    let tls = crate::tls::Client::new(settings.tls_ca.as_deref())?;
    if let Some(name) = Uri::parse(&target.uri)
        .ok()
        .and_then(|u| u.as_sip().filter(|s| s.host.ip().is_none()).map(|s| s.host.to_string()))
    {
        // The certificate must name the host the URI names (not a trunk behind `;lr`).
        if target.route.is_none() {
            tls.name(target.dest.addr, &name);
        }
    }
    driver.set_tls_client(tls);
    if app.media.driven.is_some() {
        app.media.script_end = Some((agent_hangup.clone(), driver.waker()));
    }
    if let Some(url) = &args.agent {
        let wake = driver.waker();
        let hangups = crate::agent::Hangups::to(move |_, _| {
            agent_hangup.store(true, std::sync::atomic::Ordering::Release);
            wake.notify_one();
        });
        let cfg = crate::agent::AgentConfig { url: url.clone(), format, fallback, hangups, print: true };
        let from = dialtone_sip::NameAddr::parse(&out_from, "From").ok().map(|n| n.uri_text.to_string());
        let info = crate::agent::CallInfo {
            call_id: "call-0".into(),
            contact_id: None,
            from,
            to: Some(target.uri.clone()),
            custom: Vec::new(),
        };
        app.media.agent = Some((cfg, info));
    }
    let now = Instant::now();
    if print {
        eprintln!("call: INVITE {} via {}", target.uri, target.dest);
    }
    let dial = engine::Dial { talk: app.talk, ..dial };
    app.feed(now, Event::Command(0, Command::Dial(Box::new(dial))), driver.ua());
    if let Some(Outcome::Failed(_, why)) = &app.outcome {
        bail!("{why}");
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
