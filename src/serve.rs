//! `dialtone serve`: answers inbound calls per `DIALTONE_INBOUND`.

use crate::config::{Inbound, Settings};
use crate::driver::{App, Driver, Sockets};
use crate::media_io::{self, MediaOptions, MediaTask, Source, Totals};
use crate::ports::PortPool;
use crate::session;
use bytes::Bytes;
use dialtone_media::player::Prompt;
use dialtone_media::session::SessionConfig;
use dialtone_sip::ua::Outgoing;
use dialtone_sip::ua::{CallRef, EndReason, Registration, RegistrationEvent, UaEvent, UserAgent};
use dialtone_sip::{Destination, HeaderName, Host, Method, NameAddr, Transport, Uri};
use std::collections::{HashMap, VecDeque};
use std::net::UdpSocket as StdUdpSocket;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::now_seed;

/// Counters shown in the periodic status line.
#[derive(Default, Debug, Clone, Copy)]
pub struct Counters {
    /// INVITEs received.
    pub offered: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls refused (488, 503, reject mode).
    pub refused: u64,
    /// Calls ended normally.
    pub completed: u64,
    /// Calls cancelled by the caller.
    pub cancelled: u64,
    /// Calls that ended otherwise (no ACK, transport error).
    pub failed: u64,
}

/// The media settings for what a call's offer/answer settled, with a fresh seed.
fn media_config(call: CallRef, n: &dialtone_sip::sdp::Negotiated) -> Result<SessionConfig, String> {
    let seed = call.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ now_seed();
    media_io::session_config(n, seed, &format!("dialtone-{}", call.0))
}

/// The inbound application.
pub struct ServeApp {
    inbound: Inbound,
    ports: PortPool,
    media_ip: IpAddr,
    /// Where RTP sockets are bound (the SIP listen address).
    bind_ip: IpAddr,
    /// `DIALTONE_DATA_DIR/recordings` when `DIALTONE_RECORD=true`.
    pub record_dir: Option<std::path::PathBuf>,
    calls: HashMap<CallRef, (u16, Option<MediaTask>)>,
    /// Media settled by the offer/answer, started when the call is answered.
    pending: HashMap<CallRef, (StdUdpSocket, StdUdpSocket, SessionConfig)>,
    /// Calls whose INVITE had no offer: our offer went in the 2xx, the answer comes in the ACK.
    late: HashMap<CallRef, (StdUdpSocket, StdUdpSocket, dialtone_sip::sdp::SessionDescription)>,
    /// The `play:` prompt at 8 and 16 kHz, decoded at startup.
    prompts: Option<(Arc<Prompt>, Arc<Prompt>)>,
    /// Media counters of all calls.
    pub totals: Arc<Totals>,
    reported_media: String,
    /// Counters.
    pub counters: Counters,
    next_report: Instant,
    reported: (u64, u64),
    stop_by: Option<Instant>,
    answer_after: Duration,
    /// Calls ringing until their answer time, in order (the delay is constant).
    ringing: VecDeque<(Instant, CallRef, Bytes)>,
    /// Shutting down: our un-REGISTER is waiting for its answer.
    unregistering: bool,
    /// Calls placed for a REFER we accepted: the new call → the call that asked for it.
    transfers: HashMap<CallRef, CallRef>,
    /// The trunk, for REFER targets named by host name rather than IP.
    pub trunk: Option<Destination>,
    /// The HTTP API's side: the store and the calls it asked for.
    api: Option<ApiLink>,
    /// `DIALTONE_DATA_DIR` (recordings the API asks for go under it).
    pub data_dir: Option<std::path::PathBuf>,
    /// Calls placed for the API: our handle → the API's call id.
    api_calls: HashMap<CallRef, String>,
    /// Calls to record though `DIALTONE_RECORD` is off (`record: true`).
    record_calls: std::collections::HashSet<CallRef>,
    /// `DIALTONE_INBOUND=agent:<ws-url>`: the bridges' side (issue 6).
    agent: Option<crate::agent::Serving>,
    /// Figures for `/metrics`.
    pub metrics: Arc<EngineMetrics>,
    /// `DIALTONE_RTP_TIMEOUT`: hang up after this long without media from the peer.
    pub rtp_timeout: Option<Duration>,
    /// Why we ended a call ourselves, for its record.
    ended_why: HashMap<CallRef, String>,
    /// API calls that were answered (their end is `completed`, not `failed`).
    answered: std::collections::HashSet<CallRef>,
    /// Calls in `api_calls` that came in (the others the API placed).
    inbound_calls: std::collections::HashSet<CallRef>,
}

/// The engine's figures for `/metrics`, published by the SIP loop.
#[derive(Default, Debug)]
pub struct EngineMetrics {
    offered: AtomicU64,
    answered: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    active: AtomicU64,
    sip_dropped: AtomicU64,
}

impl EngineMetrics {
    fn publish(&self, c: &Counters, active: usize, dropped: u64) {
        let set = |a: &AtomicU64, v: u64| a.store(v, Relaxed);
        set(&self.offered, c.offered);
        set(&self.answered, c.answered);
        set(&self.completed, c.completed);
        set(&self.cancelled, c.cancelled);
        set(&self.refused, c.refused);
        set(&self.failed, c.failed);
        set(&self.active, active as u64);
        set(&self.sip_dropped, dropped);
    }

    /// Appends the Prometheus lines for these figures and the media `totals`.
    fn render(&self, t: &Totals, out: &mut String) {
        use std::fmt::Write;
        let g = |a: &AtomicU64| a.load(Relaxed);
        let _ = write!(
            out,
            "# HELP dialtone_active_calls SIP calls (dialogs) in progress.\n\
             # TYPE dialtone_active_calls gauge\n\
             dialtone_active_calls {}\n\
             # HELP dialtone_sip_calls_total Calls handled, by outcome.\n\
             # TYPE dialtone_sip_calls_total counter\n",
            g(&self.active)
        );
        for (outcome, a) in [
            ("offered", &self.offered),
            ("answered", &self.answered),
            ("completed", &self.completed),
            ("cancelled", &self.cancelled),
            ("refused", &self.refused),
            ("failed", &self.failed),
        ] {
            let _ = writeln!(out, "dialtone_sip_calls_total{{outcome=\"{outcome}\"}} {}", g(a));
        }
        let _ = write!(
            out,
            "# HELP dialtone_sip_dropped_total SIP messages dropped (malformed, unmatched).\n\
             # TYPE dialtone_sip_dropped_total counter\n\
             dialtone_sip_dropped_total {}\n\
             # HELP dialtone_media_streams Media streams running.\n\
             # TYPE dialtone_media_streams gauge\n\
             dialtone_media_streams {}\n\
             # HELP dialtone_rtp_packets_total RTP packets, by direction.\n\
             # TYPE dialtone_rtp_packets_total counter\n\
             dialtone_rtp_packets_total{{direction=\"rx\"}} {}\n\
             dialtone_rtp_packets_total{{direction=\"tx\"}} {}\n\
             # HELP dialtone_rtp_lost_total RTP packets lost (RFC 3550 A.3).\n\
             # TYPE dialtone_rtp_lost_total counter\n\
             dialtone_rtp_lost_total {}\n\
             # HELP dialtone_rtp_late_total RTP packets that came after their playout time.\n\
             # TYPE dialtone_rtp_late_total counter\n\
             dialtone_rtp_late_total {}\n\
             # HELP dialtone_rtp_concealed_total Audio frames concealed.\n\
             # TYPE dialtone_rtp_concealed_total counter\n\
             dialtone_rtp_concealed_total {}\n\
             # HELP dialtone_ring_drops_total Frames dropped by a full ring or refused by the kernel.\n\
             # TYPE dialtone_ring_drops_total counter\n\
             dialtone_ring_drops_total {}\n",
            g(&self.sip_dropped),
            g(&t.running),
            g(&t.rx_packets),
            g(&t.tx_packets),
            g(&t.rx_lost),
            g(&t.rx_late),
            g(&t.concealed),
            g(&t.ring_drops),
        );
        crate::agent::render_metrics(out);
    }
}

/// What `serve` shares with the HTTP API.
struct ApiLink {
    store: Arc<std::sync::Mutex<dialtone_api::store::Store>>,
    /// Status changes, digits and recordings go to the store through this thread.
    writer: dialtone_api::store::Writer,
    queue: Arc<std::sync::Mutex<Vec<ApiCommand>>>,
    /// The trunk's host[:port], for Request-URIs and From (`None`: no calls go out).
    trunk_host: Option<String>,
    trunk_user: Option<String>,
}

/// What the API queued for the SIP loop.
enum ApiCommand {
    Originate(dialtone_api::http::Originate),
    Act(String, dialtone_api::http::Action),
}

/// The API's [`CallControl`](dialtone_api::http::CallControl): queue the call and wake the SIP loop.
struct Control {
    queue: Arc<std::sync::Mutex<Vec<ApiCommand>>>,
    wake: Arc<tokio::sync::Notify>,
    /// A trunk is set: calls can be placed.
    trunk: bool,
}

impl dialtone_api::http::CallControl for Control {
    fn originate(&self, call: dialtone_api::http::Originate) {
        if let Ok(mut q) = self.queue.lock() {
            q.push(ApiCommand::Originate(call));
        }
        self.wake.notify_one();
    }

    fn act(&self, id: &str, action: dialtone_api::http::Action) {
        if let Ok(mut q) = self.queue.lock() {
            q.push(ApiCommand::Act(id.to_string(), action));
        }
        self.wake.notify_one();
    }

    fn can_originate(&self) -> bool {
        self.trunk
    }
}

impl ServeApp {
    /// An app answering per `inbound`, with media on `media_ip` and `ports`.
    pub fn new(
        inbound: Inbound,
        ports: PortPool,
        media_ip: IpAddr,
        bind_ip: IpAddr,
        answer_after: Duration,
    ) -> ServeApp {
        ServeApp {
            inbound,
            ports,
            media_ip,
            bind_ip,
            record_dir: None,
            calls: HashMap::new(),
            pending: HashMap::new(),
            late: HashMap::new(),
            prompts: None,
            totals: Arc::new(Totals::default()),
            reported_media: String::new(),
            counters: Counters::default(),
            next_report: Instant::now() + Duration::from_secs(10),
            reported: (0, 0),
            stop_by: None,
            answer_after,
            ringing: VecDeque::new(),
            unregistering: false,
            transfers: HashMap::new(),
            trunk: None,
            api: None,
            data_dir: None,
            api_calls: HashMap::new(),
            record_calls: std::collections::HashSet::new(),
            agent: None,
            metrics: Arc::default(),
            rtp_timeout: None,
            ended_why: HashMap::new(),
            answered: std::collections::HashSet::new(),
            inbound_calls: std::collections::HashSet::new(),
        }
    }

    fn incoming(&mut self, call: CallRef, body: &[u8], ua: &mut UserAgent, now: Instant) {
        self.counters.offered += 1;
        if self.inbound == Inbound::Reject {
            self.counters.refused += 1;
            let _ = ua.reject(call, 603, now);
            return;
        }
        let Some((port, (rtp, rtcp))) = self.bind_media_port() else {
            tracing::warn!(%call, "no free RTP port: 503");
            self.counters.refused += 1;
            let _ = ua.reject(call, 503, now);
            return;
        };
        let sdp = if body.is_empty() {
            // No offer in the INVITE: we offer in the 2xx, the answer comes in the ACK
            // (RFC 3261 §13.2.1); the media starts then.
            let offer = session::offer_sdp(self.media_ip, port);
            let text = Bytes::from(offer.to_string());
            self.late.insert(call, (rtp, rtcp, offer));
            self.ring_then_answer(call, port, text, ua, now);
            return;
        } else {
            session::answer(body, self.media_ip, port)
        };
        match sdp {
            Ok((sdp, negotiated)) => {
                match media_config(call, &negotiated) {
                    Ok(config) => {
                        self.pending.insert(call, (rtp, rtcp, config));
                    }
                    Err(why) => tracing::warn!(%call, why, "call without media"),
                }
                self.ring_then_answer(call, port, sdp, ua, now);
            }
            Err(status) => {
                self.ports.give_back(port);
                self.counters.refused += 1;
                tracing::info!(%call, status, "refusing the offer");
                let _ = ua.reject(call, status, now);
            }
        }
    }

    /// An RTP port (and the RTCP port above it) whose sockets we can bind; another
    /// program may hold some.
    fn bind_media_port(&mut self) -> Option<(u16, (StdUdpSocket, StdUdpSocket))> {
        for _ in 0..4 {
            let port = self.ports.take()?;
            match media_io::bind_rtp(self.bind_ip, port) {
                Ok(socks) => return Some((port, socks)),
                Err(e) => {
                    tracing::debug!(port, error = %e, "RTP port busy");
                    self.ports.give_back(port);
                }
            }
        }
        None
    }

    /// A REFER we accepted on `old`: call `target` (RFC 3515), reporting progress to the
    /// referrer in NOTIFYs; when the new call is answered the old one is hung up.
    fn transfer(&mut self, old: CallRef, target: &str, ua: &mut UserAgent, now: Instant) {
        // Embedded headers (`?Replaces=…`, attended transfer) are not acted on.
        let uri = target.split('?').next().unwrap_or(target).to_string();
        let dest = match Uri::parse(&uri).ok().and_then(|u| u.as_sip().map(|s| (s.host, s.port))) {
            Some((Host::V4(ip), port)) => Some(SocketAddr::new(IpAddr::V4(ip), port.unwrap_or(5060))),
            Some((Host::V6(ip), port)) => Some(SocketAddr::new(IpAddr::V6(ip), port.unwrap_or(5060))),
            Some(_) => self.trunk.map(|t| t.addr),
            None => None,
        };
        let Some(addr) = dest else {
            tracing::warn!(call = %old, target, "REFER target is neither an IP nor reachable through a trunk");
            let _ = ua.notify_refer(old, 503, "Service Unavailable", now);
            return;
        };
        let transport =
            if uri.to_ascii_lowercase().contains(";transport=tcp") { Transport::Tcp } else { Transport::Udp };
        let Some((port, (rtp, rtcp))) = self.bind_media_port() else {
            let _ = ua.notify_refer(old, 503, "Service Unavailable", now);
            return;
        };
        let offer = session::offer_sdp(self.media_ip, port);
        let out = Outgoing {
            request_uri: uri.clone(),
            from: format!("<sip:dialtone@{}>", crate::call::host_literal(self.media_ip)),
            to: format!("<{uri}>"),
            dest: Destination { transport, addr },
            body: Some(Bytes::from(offer.to_string())),
            extra: Vec::new(),
        };
        match ua.invite(out, now) {
            Ok(new) => {
                tracing::info!(call = %old, new = %new, target = %uri, "transferring (REFER)");
                self.calls.insert(new, (port, None));
                self.late.insert(new, (rtp, rtcp, offer));
                self.transfers.insert(new, old);
                let _ = ua.notify_refer(old, 100, "Trying", now);
            }
            Err(e) => {
                tracing::warn!(call = %old, target = %uri, error = %e, "cannot place the REFER's call");
                self.ports.give_back(port);
                let _ = ua.notify_refer(old, 400, "Bad Request", now);
            }
        }
    }

    /// Rings (180), then answers with `sdp` at once or after `DIALTONE_ANSWER_AFTER_MS`.
    fn ring_then_answer(&mut self, call: CallRef, port: u16, sdp: Bytes, ua: &mut UserAgent, now: Instant) {
        self.calls.insert(call, (port, None));
        if ua.ring(call, 180, None, now).is_ok() {
            self.api_status(call, dialtone_api::store::CallStatus::Ringing, Some(180), None);
        }
        if self.answer_after.is_zero() {
            self.answer(call, sdp, ua, now);
        } else {
            self.ringing.push_back((now + self.answer_after, call, sdp));
        }
    }

    /// Starts the media of an answered call.
    fn start_media(&mut self, call: CallRef) {
        let Some((rtp, rtcp, config)) = self.pending.remove(&call) else { return };
        // A bridge to a voice agent: the API call's own, or the inbound one (issue 6).
        // `DIALTONE_INBOUND` is for the calls that come in (and the transfers they ask
        // for): a call the API placed gets its own agent or silence, never the echo.
        let api_call = self.api_calls.contains_key(&call) && !self.inbound_calls.contains(&call);
        let inbound_agent = matches!(self.inbound, Inbound::Agent(_)) && !api_call;
        let rate = config.codec.audio_rate();
        let agent = self.agent.as_mut().and_then(|a| a.source(call.0, rate, self.api_calls.get(&call), inbound_agent));
        let source = match (agent, &self.inbound, &self.prompts) {
            (Some(agent), _, _) => agent,
            (None, _, _) if api_call => Source::Silence,
            (None, Inbound::Play(_), Some((p8, p16))) => {
                Source::Play(if config.codec.audio_rate() == 8000 { p8.clone() } else { p16.clone() })
            }
            (None, Inbound::Echo, _) => Source::Echo,
            _ => Source::Silence,
        };
        let dir = match (&self.record_dir, &self.api) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(_)) if self.record_calls.contains(&call) => {
                self.data_dir.as_ref().map(|d| d.join("recordings"))
            }
            _ => None,
        };
        let name = match self.api_calls.get(&call) {
            Some(id) => format!("{id}.wav"),
            None => format!("{}-{}.wav", now_seed() / 1_000_000, call.0),
        };
        let record = dir.map(|dir| dir.join(name));
        if let Some(r) = &record {
            tracing::info!(%call, path = %r.display(), "recording");
        }
        let opts = MediaOptions {
            label: call.0,
            source,
            record,
            mic: None,
            speaker: None,
            totals: Some(self.totals.clone()),
            print: false,
            notice: Some(self.media_hook(call)),
            rtp_timeout: self.rtp_timeout,
        };
        match media_io::spawn(rtp, rtcp, config, opts) {
            Ok(task) => {
                if let Some(entry) = self.calls.get_mut(&call) {
                    entry.1 = Some(task);
                }
            }
            Err(e) => tracing::warn!(%call, error = %e, "cannot start the media"),
        }
    }

    /// Decodes the `play:` WAV for both call rates; an unreadable file stops `serve`.
    pub fn load_prompt(&mut self) -> anyhow::Result<()> {
        if let Inbound::Play(path) = &self.inbound {
            let p8 = Prompt::load(path, 8000)?;
            let p16 = Prompt::load(path, 16_000)?;
            tracing::info!(path = %path.display(), seconds = p8.duration().as_secs_f64(), "inbound calls hear this prompt");
            self.prompts = Some((Arc::new(p8), Arc::new(p16)));
        }
        Ok(())
    }
}

impl ServeApp {
    fn answer(&mut self, call: CallRef, sdp: Bytes, ua: &mut UserAgent, now: Instant) {
        // The caller may have cancelled meanwhile; then there is nothing to answer.
        if ua.answer(call, sdp, now).is_ok() {
            self.counters.answered += 1;
            if self.api_calls.contains_key(&call) {
                self.answered.insert(call);
                self.api_status(call, dialtone_api::store::CallStatus::InProgress, Some(200), None);
            }
            self.start_media(call);
        }
    }
}

impl App for ServeApp {
    fn on_event(&mut self, ev: UaEvent, ua: &mut UserAgent, now: Instant) {
        self.on_ua_event(ev, ua, now);
        self.metrics.publish(&self.counters, ua.call_count(), ua.dropped);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout()
    }

    fn on_wake(&mut self, ua: &mut UserAgent, now: Instant) {
        // Hang-ups asked for by agent bridges and by media whose peer went silent.
        for (call, why) in self.agent.as_ref().map(crate::agent::Serving::hangups).unwrap_or_default() {
            let call = CallRef(call);
            if self.calls.contains_key(&call) {
                self.ended_why.insert(call, why);
                let _ = ua.hangup(call, now);
            }
        }
        self.originate_queued(ua, now);
        self.metrics.publish(&self.counters, ua.call_count(), ua.dropped);
    }

    fn on_interrupt(&mut self, ua: &mut UserAgent, now: Instant) {
        self.interrupt(ua, now);
    }

    fn finished(&self) -> bool {
        self.done()
    }

    fn on_timeout(&mut self, ua: &mut UserAgent, now: Instant) {
        self.timeout(ua, now);
        self.metrics.publish(&self.counters, ua.call_count(), ua.dropped);
    }
}

impl ServeApp {
    fn on_ua_event(&mut self, ev: UaEvent, ua: &mut UserAgent, now: Instant) {
        match ev {
            UaEvent::IncomingCall { call, request, source } => {
                tracing::debug!(%call, from = %source, "incoming call");
                if let Some(a) = self.agent.as_mut() {
                    a.note(call.0, &request);
                }
                self.record_inbound(call, &request);
                self.incoming(call, &request.body, ua, now);
            }
            UaEvent::Confirmed { call, ack } => {
                tracing::debug!(%call, "call confirmed");
                if let Some((rtp, rtcp, offer)) = self.late.remove(&call) {
                    let config = session::negotiate(&offer, &ack.body).and_then(|n| media_config(call, &n));
                    match config {
                        Ok(config) => {
                            self.pending.insert(call, (rtp, rtcp, config));
                            self.start_media(call);
                        }
                        Err(why) => tracing::warn!(%call, why, "the ACK's answer gives no media"),
                    }
                }
            }
            UaEvent::InDialog { call, request } => self.in_dialog(call, &request, ua, now),
            UaEvent::Progress { call, response } => {
                if matches!(response.status, 180 | 183) {
                    self.api_status(call, dialtone_api::store::CallStatus::Ringing, Some(response.status), None);
                }
                if let Some(&old) = self.transfers.get(&call) {
                    let _ = ua.notify_refer(old, response.status, &response.reason, now);
                }
            }
            UaEvent::Answered { call, response } => {
                // Our own call (a transfer's): its answer settles the media.
                if let Some((rtp, rtcp, offer)) = self.late.remove(&call) {
                    match session::negotiate(&offer, &response.body).and_then(|n| media_config(call, &n)) {
                        Ok(config) => {
                            self.pending.insert(call, (rtp, rtcp, config));
                            self.start_media(call);
                        }
                        Err(why) => tracing::warn!(%call, why, "the 2xx's answer gives no media"),
                    }
                }
                self.counters.answered += 1;
                if self.api_calls.contains_key(&call) {
                    self.answered.insert(call);
                }
                self.api_status(call, dialtone_api::store::CallStatus::InProgress, Some(response.status), None);
                if let Some(old) = self.transfers.remove(&call) {
                    tracing::info!(call = %old, new = %call, "transfer answered; ending the referring call");
                    let _ = ua.notify_refer(old, response.status, &response.reason, now);
                    let _ = ua.hangup(old, now);
                }
            }
            UaEvent::Registration(ev) => {
                if matches!(ev, RegistrationEvent::Unregistered { .. }) {
                    self.unregistering = false;
                }
                log_registration(&ev);
            }
            UaEvent::Terminated { call, reason } => {
                if let Some(old) = self.transfers.remove(&call) {
                    // The transfer failed: the referrer hears why; its call goes on.
                    let status = reason.status();
                    tracing::info!(call = %old, new = %call, status, "transfer failed");
                    let _ = ua.notify_refer(old, status, dialtone_sip::reason_phrase(status), now);
                }
                self.transfers.retain(|_, old| *old != call);
                self.record_calls.remove(&call);
                if let Some(a) = self.agent.as_mut() {
                    a.forget(call.0);
                }
                if self.api_calls.contains_key(&call) {
                    use dialtone_api::store::CallStatus as S;
                    let answered = self.answered.remove(&call);
                    let ours = self.ended_why.remove(&call);
                    let (to, why) = match (&reason, answered) {
                        (EndReason::LocalBye, true) if ours.is_some() => (S::Completed, ours),
                        (EndReason::LocalBye | EndReason::RemoteBye, true) => (S::Completed, None),
                        (EndReason::Rejected { status: 486 | 600, reason }, _) => (S::Busy, Some(reason.clone())),
                        (EndReason::Rejected { status: 408 | 480, reason }, _) => (S::NoAnswer, Some(reason.clone())),
                        (EndReason::Cancelled, _) => (S::Canceled, None),
                        (EndReason::Rejected { reason, .. }, _) => (S::Failed, Some(reason.clone())),
                        (r, _) => (S::Failed, Some(format!("{r:?}"))),
                    };
                    let status = match &reason {
                        EndReason::LocalBye | EndReason::RemoteBye => None,
                        r => Some(r.status()),
                    };
                    self.api_status(call, to, status, why.as_deref());
                    self.api_calls.remove(&call);
                }
                self.pending.remove(&call);
                self.late.remove(&call);
                self.ended_why.remove(&call);
                self.answered.remove(&call);
                self.inbound_calls.remove(&call);
                if let Some((port, media)) = self.calls.remove(&call) {
                    drop(media);
                    self.ports.give_back(port);
                    match reason {
                        EndReason::LocalBye | EndReason::RemoteBye => self.counters.completed += 1,
                        EndReason::Cancelled => self.counters.cancelled += 1,
                        _ => self.counters.failed += 1,
                    }
                }
                tracing::debug!(%call, ?reason, "call ended");
            }
            _ => {}
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        let mut t = self.stop_by.map_or(self.next_report, |s| s.min(self.next_report));
        if let Some((due, _, _)) = self.ringing.front() {
            t = t.min(*due);
        }
        Some(t)
    }

    fn interrupt(&mut self, ua: &mut UserAgent, now: Instant) {
        // Hang up every call, then give the BYEs a moment to be answered.
        for call in self.calls.keys().copied().collect::<Vec<_>>() {
            let _ = ua.hangup(call, now);
        }
        // And remove our registration (bounded: a registrar that does not answer does
        // not hold the exit up beyond the BYEs' wait).
        self.unregistering = ua.unregister(now);
        let wait = if !self.calls.is_empty() || self.unregistering { 2000 } else { 0 };
        self.stop_by = Some(now + Duration::from_millis(wait));
    }

    fn done(&self) -> bool {
        self.stop_by.is_some_and(|s| (self.calls.is_empty() && !self.unregistering) || Instant::now() >= s)
    }

    fn timeout(&mut self, ua: &mut UserAgent, now: Instant) {
        while self.ringing.front().is_some_and(|(due, _, _)| *due <= now) {
            if let Some((_, call, sdp)) = self.ringing.pop_front() {
                self.answer(call, sdp, ua, now);
            }
        }
        if now < self.next_report {
            return;
        }
        self.next_report = now + Duration::from_secs(10);
        let c = self.counters;
        if (c.offered, c.completed) != self.reported {
            self.reported = (c.offered, c.completed);
            tracing::info!(
                active = ua.call_count(),
                offered = c.offered,
                answered = c.answered,
                completed = c.completed,
                cancelled = c.cancelled,
                refused = c.refused,
                failed = c.failed,
                dropped = ua.dropped,
                "calls"
            );
        }
        let media = self.totals.line();
        if media != self.reported_media {
            tracing::info!("media {media}");
            self.reported_media = media;
        }
    }
}

impl ServeApp {
    /// What a call's media reports: a silent peer goes to the SIP loop (which hangs up);
    /// for an API call, DTMF digits and the recording's state go to the store (each one
    /// also a webhook event).
    fn media_hook(&self, call: CallRef) -> media_io::MediaHook {
        use dialtone_api::store::Op;
        use dialtone_api::store::RecordingState;
        let api = self.api.as_ref().zip(self.api_calls.get(&call)).map(|(a, id)| (a.writer.clone(), id.clone()));
        // A silent peer's call is hung up the way a failed agent bridge's is.
        let hangups = self.agent.as_ref().map(crate::agent::Serving::requests);
        Arc::new(move |n: media_io::MediaNotice| {
            if let media_io::MediaNotice::RtpTimeout(after) = n {
                tracing::warn!(%call, seconds = after.as_secs(), "no media from the peer: hanging up");
                if let Some(h) = &hangups {
                    h.request(call.0, format!("rtp timeout ({} s without media)", after.as_secs()));
                }
                return;
            }
            let Some((writer, id)) = &api else { return };
            let (at, id) = ((now_seed() / 1_000_000) as i64, id.clone());
            let recording = |state, path: Option<String>| Op::Recording { id: id.clone(), state, path, at };
            let op = match n {
                media_io::MediaNotice::Dtmf(digit) => Op::Dtmf { id: id.clone(), digit, at },
                media_io::MediaNotice::RecordingStarted(p) => {
                    recording(RecordingState::Recording, Some(p.to_string_lossy().into_owned()))
                }
                media_io::MediaNotice::RecordingDone(p, Ok(frames)) => {
                    tracing::info!(id = %id, path = %p.display(), frames, "recording ready");
                    recording(RecordingState::Ready, None)
                }
                media_io::MediaNotice::RecordingDone(p, Err(e)) => {
                    tracing::warn!(id = %id, path = %p.display(), error = %e, "recording failed");
                    recording(RecordingState::Failed, None)
                }
                media_io::MediaNotice::RtpTimeout(_) => return,
            };
            writer.send(op);
        })
    }

    /// Keeps an inbound call in the store (`direction: inbound`): the caller (From's user,
    /// else its URI) as `phone_number` and `contact_id`, the number called (To's user) as
    /// `from_number`. Its life follows as an API call's does.
    fn record_inbound(&mut self, call: CallRef, req: &dialtone_sip::Request) {
        let Some(api) = &self.api else { return };
        let party = |h: HeaderName, name: &'static str| -> Option<String> {
            let n = NameAddr::parse(req.headers.get(&h)?, name).ok()?;
            let uri = Uri::parse(n.uri_text).ok();
            let user = uri.as_ref().and_then(|u| u.as_sip()).and_then(|s| s.user.map(str::to_string));
            Some(user.unwrap_or_else(|| n.uri_text.to_string()).chars().take(128).collect())
        };
        let id = format!("call_{:016x}", rand::random::<u64>());
        let c = dialtone_api::store::InboundCall {
            id: id.clone(),
            caller: party(HeaderName::From, "From").unwrap_or_else(|| "unknown".into()),
            called: party(HeaderName::To, "To"),
            at: (now_seed() / 1_000_000) as i64,
        };
        tracing::info!(%call, id = %id, caller = %c.caller, "inbound call");
        api.writer.send(dialtone_api::store::Op::Inbound(c));
        self.api_calls.insert(call, id);
        self.inbound_calls.insert(call);
    }

    /// Persists an API call's new status (a change its life does not allow is ignored).
    fn api_status(
        &self,
        call: CallRef,
        to: dialtone_api::store::CallStatus,
        sip_status: Option<u16>,
        reason: Option<&str>,
    ) {
        let (Some(api), Some(id)) = (&self.api, self.api_calls.get(&call)) else { return };
        let at = (now_seed() / 1_000_000) as i64;
        tracing::info!(%call, id = %id, status = %to, "api call");
        let reason = reason.map(str::to_string);
        api.writer.send(dialtone_api::store::Op::Status { id: id.clone(), to, sip_status, reason, at });
    }

    /// Places the calls the API queued, through the trunk.
    fn originate_queued(&mut self, ua: &mut UserAgent, now: Instant) {
        let Some(api) = &self.api else { return };
        let queued: Vec<_> = api.queue.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default();
        let (host, user) = (api.trunk_host.clone(), api.trunk_user.clone());
        for cmd in queued {
            let o = match cmd {
                ApiCommand::Originate(o) => o,
                ApiCommand::Act(id, action) => {
                    self.act(&id, action, host.as_deref(), ua, now);
                    continue;
                }
            };
            let fail = |app: &mut ServeApp, why: &str| {
                if let Some(api) = &app.api {
                    let at = (now_seed() / 1_000_000) as i64;
                    let (id, to, reason) =
                        (o.id.clone(), dialtone_api::store::CallStatus::Failed, Some(why.to_string()));
                    api.writer.send(dialtone_api::store::Op::Status { id, to, sip_status: Some(503), reason, at });
                }
            };
            let (Some(dest), Some(host)) = (self.trunk, host.as_deref()) else {
                fail(self, "no trunk");
                continue;
            };
            let Some((port, (rtp, rtcp))) = self.bind_media_port() else {
                fail(self, "no free RTP port");
                continue;
            };
            let offer = session::offer_sdp(self.media_ip, port);
            let uri = format!("sip:{}@{host}", o.phone_number);
            let from_user = o.from_number.clone().or(user.clone()).unwrap_or_else(|| "dialtone".into());
            let out = Outgoing {
                request_uri: uri.clone(),
                from: format!("<sip:{from_user}@{host}>"),
                to: format!("<{uri}>"),
                dest,
                body: Some(Bytes::from(offer.to_string())),
                extra: Vec::new(),
            };
            match ua.invite(out, now) {
                Ok(call) => {
                    tracing::info!(%call, id = %o.id, to = %uri, "placing an API call");
                    self.calls.insert(call, (port, None));
                    self.late.insert(call, (rtp, rtcp, offer));
                    self.api_calls.insert(call, o.id.clone());
                    if let (Some(a), Some(url)) = (self.agent.as_mut(), o.agent_url.as_deref()) {
                        let contact_id = self
                            .api
                            .as_ref()
                            .and_then(|api| Some(api.store.lock().ok()?.get_call(&o.id).ok()?.contact_id));
                        let info = crate::agent::CallInfo {
                            call_id: o.id.clone(),
                            contact_id,
                            from: Some(format!("sip:{from_user}@{host}")),
                            to: Some(uri.clone()),
                        };
                        a.plan(call.0, url, o.agent_format.as_deref(), info);
                    }
                    if o.record {
                        self.record_calls.insert(call);
                    }
                }
                Err(e) => {
                    self.ports.give_back(port);
                    fail(self, &e.to_string());
                }
            }
        }
    }

    /// An API action on a live call.
    fn act(
        &mut self,
        id: &str,
        action: dialtone_api::http::Action,
        trunk_host: Option<&str>,
        ua: &mut UserAgent,
        now: Instant,
    ) {
        use dialtone_api::http::Action;
        let Some(call) = self.api_calls.iter().find(|(_, v)| v.as_str() == id).map(|(k, _)| *k) else {
            return tracing::info!(id, ?action, "API action for a call that is no longer here");
        };
        tracing::info!(%call, id, ?action, "API action");
        let r = match action {
            Action::Hangup => ua.hangup(call, now),
            Action::Hold(on) => {
                // A held peer sends nothing: that is not a dead one.
                if let Some((_, Some(task))) = self.calls.get(&call) {
                    task.expect_rx(!on);
                }
                ua.hold(call, on, now)
            }
            Action::Transfer(dest) => match (dest.starts_with("sip:"), trunk_host) {
                (true, _) => ua.refer(call, &dest, now),
                (false, Some(host)) => ua.refer(call, &format!("sip:{dest}@{host}"), now),
                (false, None) => {
                    tracing::warn!(%call, id, dest, "transfer to a number needs DIALTONE_TRUNK");
                    Ok(())
                }
            },
            Action::Dtmf(digits) => {
                if let Some((_, Some(task))) = self.calls.get(&call) {
                    task.send_dtmf(&digits);
                }
                Ok(())
            }
            Action::Record(on) => {
                // A second recording of the call goes to a new file, never over the first.
                let dir = self.data_dir.as_ref().map(|d| d.join("recordings"));
                let path = dir.map(|d| {
                    (1..)
                        .map(|n| d.join(if n == 1 { format!("{id}.wav") } else { format!("{id}-{n}.wav") }))
                        .find(|p| !p.exists())
                        .unwrap_or_else(|| d.join(format!("{id}.wav")))
                });
                if let (Some((_, Some(task))), Some(path)) = (self.calls.get(&call), path) {
                    task.record(on.then_some(path));
                }
                Ok(())
            }
        };
        if let Err(e) = r {
            tracing::warn!(%call, id, error = %e, "API action failed");
        }
    }

    /// An in-dialog request the UA answered: DTMF by SIP INFO, or a new offer (hold,
    /// resume, a moved peer) for the call's media.
    fn in_dialog(&mut self, call: CallRef, req: &dialtone_sip::Request, ua: &mut UserAgent, now: Instant) {
        match req.method {
            Method::Notify if self.api_calls.contains_key(&call) => {
                // Progress of a transfer we asked for (RFC 3515): done at a 2xx.
                let frag = String::from_utf8_lossy(&req.body);
                let status = frag.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok());
                tracing::info!(%call, status, "transfer progress");
                if status.is_some_and(|s| (200..300).contains(&s)) {
                    let _ = ua.hangup(call, now);
                }
            }
            Method::Refer => {
                let target = req
                    .headers
                    .get(&HeaderName::ReferTo)
                    .and_then(|v| NameAddr::parse(v, "Refer-To").ok().map(|n| n.uri_text.to_string()));
                if let Some(target) = target {
                    self.transfer(call, &target, ua, now);
                }
            }
            Method::Info => {
                let ct = req.headers.get(&HeaderName::ContentType).map(|v| v.as_str()).unwrap_or("");
                match session::info_dtmf(ct, &req.body) {
                    Some((digit, duration_ms)) => {
                        tracing::info!(call = call.0, digit = %digit, duration_ms, via = %"info", "dtmf received");
                        if let Some(a) = &self.agent {
                            a.info_dtmf(call.0, digit);
                        }
                    }
                    None => tracing::debug!(%call, content_type = ct, "INFO without a DTMF body"),
                }
            }
            Method::Invite | Method::Update if !req.body.is_empty() => {
                let Some((remote, dir)) = session::reoffer(&req.body) else {
                    return tracing::warn!(%call, "unreadable SDP in a re-offer; media unchanged");
                };
                tracing::info!(%call, direction = dir.as_str(), remote = ?remote, "re-offer answered");
                if let Some((_, Some(task))) = self.calls.get(&call) {
                    task.update(remote, dir.sends());
                    task.expect_rx(matches!(
                        dir,
                        dialtone_sip::sdp::Direction::SendRecv | dialtone_sip::sdp::Direction::RecvOnly
                    ));
                }
            }
            _ => {}
        }
    }
}

fn log_registration(ev: &RegistrationEvent) {
    match ev {
        RegistrationEvent::Registered { expires } => tracing::info!(state = %"registered", expires, "registration"),
        RegistrationEvent::Failed { status, reason, retry_in } => tracing::warn!(
            state = %"failed",
            status,
            reason = %reason,
            retry_in_s = retry_in.as_secs(),
            "registration"
        ),
        RegistrationEvent::Unregistered { status } => tracing::info!(state = %"unregistered", status, "registration"),
        _ => {}
    }
}

/// The registration `DIALTONE_REGISTER=true` keeps with the trunk: AOR
/// `sip:<DIALTONE_TRUNK_USER>@<trunk host>`, Request-URI the trunk's domain (RFC 3261 §10.2).
async fn trunk_registration(settings: &Settings) -> anyhow::Result<Registration> {
    let Some(trunk) = settings.trunk.as_deref() else {
        anyhow::bail!("DIALTONE_REGISTER=true needs DIALTONE_TRUNK, the registrar's SIP URI (e.g. sip:sip.example.com)")
    };
    let Some(user) = settings.trunk_user.as_deref() else {
        anyhow::bail!("DIALTONE_REGISTER=true needs DIALTONE_TRUNK_USER (and usually DIALTONE_TRUNK_PASSWORD)")
    };
    let uri = Uri::parse(trunk).map_err(|e| anyhow::anyhow!("DIALTONE_TRUNK {trunk:?}: {e}"))?;
    let Some(sip) = uri.as_sip() else { anyhow::bail!("DIALTONE_TRUNK must be a sip: URI, not {trunk:?}") };
    let (transport, addr) = crate::call::destination_of(trunk).await?;
    let host = sip.host.to_string();
    let hostport = match sip.port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let registrar = match transport {
        Transport::Udp => format!("sip:{hostport}"),
        t => format!("sip:{hostport};transport={}", t.as_str().to_lowercase()),
    };
    Ok(Registration {
        registrar,
        aor: format!("sip:{user}@{host}"),
        dest: dialtone_sip::Destination { transport, addr },
        expires: 3600,
    })
}

/// Opens the store under `DIALTONE_DATA_DIR` (closing calls a crash left open) and serves
/// the HTTP API on `DIALTONE_HTTP_LISTEN`.
async fn start_api(settings: &Settings, app: &mut ServeApp, wake: Arc<tokio::sync::Notify>) -> anyhow::Result<()> {
    use dialtone_api::store::Store;
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| anyhow::anyhow!("creating DIALTONE_DATA_DIR {}: {e}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("dialtone.db");
    let mut store = Store::open(&path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    let now_ms = (now_seed() / 1_000_000) as i64;
    let closed = store.close_unfinished(now_ms)?;
    if closed > 0 {
        tracing::warn!(calls = closed, "calls left unfinished by the last run closed as failed (reason restart)");
    }
    if settings.internal_key.is_none() {
        tracing::info!("no DIALTONE_INTERNAL_KEY: the API refuses every protected request");
    }
    // The first admin, from DIALTONE_ADMIN_EMAIL / DIALTONE_ADMIN_PASSWORD.
    if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
        if store.user_by_email(email)?.is_none() {
            let all = dialtone_api::http::PERMISSIONS.iter().map(|p| p.to_string()).collect();
            let user = dialtone_api::store::User {
                id: format!("user_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
                email: email.clone(),
                password_hash: dialtone_api::http::hash_password(password),
                role: "admin".into(),
                permissions: all,
                created_at: now_ms,
            };
            store.insert_user(&user)?;
            tracing::info!(email = %email, "admin user created");
        }
    }
    let jwt_secret = Arc::new(jwt_secret(&settings.data_dir)?);
    let store = Arc::new(std::sync::Mutex::new(store));
    let queue = Arc::new(std::sync::Mutex::new(Vec::new()));
    // Calls go out through the trunk: without one, create answers 503.
    let trunk_host = settings.trunk.as_deref().and_then(|t| {
        let uri = Uri::parse(t).ok()?;
        let sip = uri.as_sip()?;
        Some(match sip.port {
            Some(p) => format!("{}:{p}", sip.host),
            None => sip.host.to_string(),
        })
    });
    // Every call is kept (inbound ones too) and can be steered; calls go out only through
    // a trunk (without one, create answers 503).
    let trunk = trunk_host.is_some() && app.trunk.is_some();
    app.api = Some(ApiLink {
        store: store.clone(),
        writer: dialtone_api::store::Writer::spawn(store.clone())
            .map_err(|e| anyhow::anyhow!("starting the store writer: {e}"))?,
        queue: queue.clone(),
        trunk_host: trunk_host.filter(|_| trunk),
        trunk_user: settings.trunk_user.clone(),
    });
    let control: Option<Arc<dyn dialtone_api::http::CallControl>> = Some(Arc::new(Control { queue, wake, trunk }));
    let webhooks_wake = Arc::new(tokio::sync::Notify::new());
    if let Ok(mut s) = store.lock() {
        s.on_enqueue = Some(webhooks_wake.clone());
    }
    let mut state =
        dialtone_api::http::ApiState::new(store.clone(), settings.internal_key.clone(), control, jwt_secret);
    use dialtone_api::http::{Limits, Rate, RateLimits};
    state.limits = Arc::new(RateLimits::new(Limits {
        per_key: Rate { per_s: settings.rate_limit, burst: 2.0 * settings.rate_limit },
        per_addr: Rate { per_s: settings.rate_limit_addr, burst: 2.0 * settings.rate_limit_addr },
        login: Rate { per_s: settings.login_limit / 60.0, burst: settings.login_limit.max(1.0) },
    }));
    state.readers = Some(Arc::new(dialtone_api::store::Readers::new(&path)));
    let (metrics, totals) = (app.metrics.clone(), app.totals.clone());
    state.engine_metrics = Some(Arc::new(move |out: &mut String| metrics.render(&totals, out)));
    dialtone_api::webhooks::spawn(store, webhooks_wake, settings.webhook_retry_ms as i64, state.webhook_stats.clone());
    let listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding the HTTP API on {}: {e}", settings.http_listen))?;
    tracing::info!(http = %listener.local_addr()?, db = %path.display(), "HTTP API listening");
    let app = dialtone_api::http::router(state);
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    Ok(())
}

/// The JWT signing key: `DIALTONE_JWT_SECRET`, else 32 random bytes generated once and kept
/// in `DATA_DIR/jwt.secret` (mode 0600), so tokens survive a restart.
fn jwt_secret(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(s) = std::env::var("DIALTONE_JWT_SECRET") {
        if s.len() >= 32 {
            return Ok(s.into_bytes());
        }
        anyhow::bail!("DIALTONE_JWT_SECRET must be at least 32 characters");
    }
    let path = data_dir.join("jwt.secret");
    if let Ok(b) = std::fs::read(&path) {
        if b.len() >= 32 {
            return Ok(b);
        }
    }
    let secret: [u8; 32] = rand::random();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, &secret)?;
    Ok(secret.to_vec())
}

/// Runs `serve` until interrupted.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let sockets = Sockets::bind(settings.sip_listen).await?;
    let bound = sockets.local_addr();
    let ip = crate::advertised_ip(bound.ip(), settings.sip_advertise, None);
    let ua = crate::user_agent(&settings, ip, bound.port());
    tracing::info!(
        sip = %bound, advertised = %ip, inbound = ?settings.inbound,
        rtp = ?settings.rtp_ports, "dialtone serving SIP on UDP and TCP"
    );
    let registration = match settings.register {
        true => Some(trunk_registration(&settings).await?),
        false => None,
    };
    let mut driver = Driver::new(ua, sockets, settings.sip_trace);
    if let Some(reg) = registration {
        tracing::info!(aor = %reg.aor, registrar = %reg.registrar, to = %reg.dest.addr, "registering");
        driver.ua().register(reg, Instant::now())?;
    }
    let ports = PortPool::new(settings.rtp_ports.0, settings.rtp_ports.1);
    let mut app = ServeApp::new(settings.inbound.clone(), ports, ip, bound.ip(), settings.answer_after);
    if settings.record {
        app.record_dir = Some(settings.data_dir.join("recordings"));
    }
    app.load_prompt()?;
    let inbound_agent = match &settings.inbound {
        Inbound::Agent(url) => Some(url.as_str()),
        _ => None,
    };
    app.agent = Some(crate::agent::Serving::new(inbound_agent, driver.waker())?);
    app.data_dir = Some(settings.data_dir.clone());
    if let Some(trunk) = settings.trunk.as_deref() {
        match crate::call::destination_of(trunk).await {
            Ok((transport, addr)) => app.trunk = Some(Destination { transport, addr }),
            Err(e) => tracing::warn!(trunk, error = %e, "cannot resolve DIALTONE_TRUNK"),
        }
    }
    app.rtp_timeout = (settings.rtp_timeout_s > 0).then(|| Duration::from_secs(settings.rtp_timeout_s));
    start_api(&settings, &mut app, driver.waker()).await?;
    let r = driver.run(&mut app).await;
    app.calls.clear();
    // The media tasks end on their next turn (RTCP BYE, recordings handed to the writer);
    // wait, within reason, until every recording has its final header.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (app.totals.running.load(std::sync::atomic::Ordering::Acquire) > 0
        || dialtone_media::recorder::open_recordings() > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last status changes and recordings reach the database before the process ends.
    if let Some(api) = &app.api {
        if !api.writer.flush(Duration::from_secs(5)) {
            tracing::warn!("the store writer did not finish in 5 s");
        }
    }
    tracing::info!("media {}", app.totals.line());
    r
}
