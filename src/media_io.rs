//! The I/O side of a call's media: the RTP (and RTCP) sockets, the 20 ms pacing clock and
//! the consumers, around the sans-IO [`MediaSession`].
//!
//! Each call is one task: datagrams go into the session as they arrive; every 20 ms the
//! task takes a frame from the call's source (silence, the echo of the last frame heard,
//! the player, the microphone), ticks the session, and hands the frame it heard to the
//! consumers (the recorder's ring, the speaker's ring). Nothing on this path blocks: the
//! sockets are non-blocking (a datagram the kernel cannot take is dropped and counted), the
//! rings drop and count when full, the prompt was decoded before the call started.

use crate::recorder::Recorder;
use crate::taps::{self, Tap};
use bytes::Bytes;
use dialtone_media::amd::{Amd, AmdConfig, AmdMode};
use dialtone_media::player::{Player, Prompt};
use dialtone_media::rtcp::ntp_from_system_time;
use dialtone_media::session::{MediaEvent, MediaSession, MediaStats, SessionConfig, Transmit, TICK};
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where the audio we send comes from.
#[derive(Clone)]
pub enum Source {
    /// Silence (comfort: the stream keeps flowing).
    Silence,
    /// What the peer said, sent back one frame later (`DIALTONE_INBOUND=echo`).
    Echo,
    /// A prompt (`play:<wav>`, `--play`), then silence.
    Play(Arc<Prompt>),
    /// The microphone's ring, [`MediaOptions::mic`] (`--device`).
    Mic,
    /// A voice agent over WebSocket (`agent:<ws-url>`, `--agent`): its audio, paced, and
    /// the caller's audio to it, through the rings of [`crate::agent`].
    Agent(Arc<crate::agent::AgentPort>),
    /// Any other source, taken once (`dialtone test`'s scripted caller).
    Tap(Arc<taps::TapSlot>),
}

/// Process-wide media counters for the status line and the load script.
#[derive(Debug, Default)]
pub struct Totals {
    /// Media tasks running.
    pub running: AtomicU64,
    /// Calls whose media ended.
    pub calls: AtomicU64,
    /// Valid RTP packets received.
    pub rx_packets: AtomicU64,
    /// Packets lost (RFC 3550 A.3, per call, never negative).
    pub rx_lost: AtomicU64,
    /// Packets that came after their playout time.
    pub rx_late: AtomicU64,
    /// Frames concealed.
    pub concealed: AtomicU64,
    /// RTP packets sent.
    pub tx_packets: AtomicU64,
    /// Frames dropped by a full ring (recorder, speaker) or datagrams the kernel refused.
    pub ring_drops: AtomicU64,
}

impl Totals {
    /// The `key=value` line the status log and the load script read.
    pub fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "calls={} rx_packets={} rx_lost={} rx_late={} concealed={} tx_packets={} ring_drops={}",
            g(&self.calls),
            g(&self.rx_packets),
            g(&self.rx_lost),
            g(&self.rx_late),
            g(&self.concealed),
            g(&self.tx_packets),
            g(&self.ring_drops)
        )
    }
}

/// What a call's media does besides the session itself.
pub struct MediaOptions {
    /// The call's number, for the logs.
    pub label: u64,
    /// The audio we send.
    pub source: Source,
    /// Record the call to this WAV.
    pub record: Option<PathBuf>,
    /// The microphone's ring, for [`Source::Mic`] (`--device`).
    pub mic: Option<ringbuf::HeapCons<i16>>,
    /// The speaker's ring (`--device`).
    pub speaker: Option<ringbuf::HeapProd<i16>>,
    /// Counters to add this call's figures to.
    pub totals: Option<Arc<Totals>>,
    /// Print DTMF and the summary to stderr (`dialtone call`) besides logging them.
    pub print: bool,
    /// Told about DTMF heard, recordings started and finished, and a peer gone silent.
    pub notice: Option<MediaHook>,
    /// Report [`MediaNotice::RtpTimeout`] after this long without RTP or RTCP from the
    /// peer (while it is expected to send).
    pub rtp_timeout: Option<std::time::Duration>,
    /// Measure the call's turns (a voice-agent call, issue 21): the latest figures are kept
    /// here every half second, and reported as [`MediaNotice::Turns`] at the end.
    pub speech: Option<Arc<std::sync::Mutex<Option<serde_json::Value>>>>,
    /// Sample the call's quality ([`crate::quality::Meter`]) into here, each interval and
    /// at the end.
    pub quality: Option<Arc<std::sync::Mutex<Option<serde_json::Value>>>>,
}

/// What a call's media tells its owner.
#[derive(Debug)]
pub enum MediaNotice {
    /// A digit heard (RFC 4733).
    Dtmf(char),
    /// A recording started into this file.
    RecordingStarted(PathBuf),
    /// A recording is complete (its header final): stereo frames written, or why not.
    RecordingDone(PathBuf, std::io::Result<u64>),
    /// Nothing (RTP or RTCP) came from the peer for this long: it is gone.
    RtpTimeout(std::time::Duration),
    /// What the call is sent has an end (a prompt, an announcement) and it came.
    SourceFinished,
    /// Answering-machine detection decided who answered, after this much audio (ms).
    AnsweredBy(&'static str, u32),
    /// The call's turn-taking figures, as its media ended (`{summary, turns, barge_ins}`).
    Turns(serde_json::Value),
}

/// Receives [`MediaNotice`]s; called from the media task (DTMF, a start) or from a
/// blocking thread (a finished recording), so it must not block for long.
pub type MediaHook = Arc<dyn Fn(MediaNotice) + Send + Sync>;

pub use crate::session::session_config;

/// Binds a call's RTP socket on `ip:port` and, without rtcp-mux, RTCP on `port + 1`.
pub fn bind_rtp(ip: IpAddr, port: u16) -> std::io::Result<(StdUdpSocket, StdUdpSocket)> {
    let bind = |p: u16| -> std::io::Result<StdUdpSocket> {
        let s = StdUdpSocket::bind(SocketAddr::new(ip, p))?;
        s.set_nonblocking(true)?;
        Ok(s)
    };
    let rtp = bind(port)?;
    let rtcp = bind(port.checked_add(1).ok_or_else(|| std::io::Error::other("no RTCP port above 65535"))?)?;
    Ok((rtp, rtcp))
}

/// Messages to a running media task.
enum Control {
    Dtmf(String),
    /// A new offer/answer inside the call: where the peer wants RTP now (`None`: keep
    /// the latched address) and whether we send.
    Update(Option<SocketAddr>, bool),
    /// Start recording into this file, or stop (`None`).
    Record(Option<PathBuf>),
    /// Whether the peer is expected to send (not while it is on hold).
    ExpectRx(bool),
    /// Send this instead of the source (one end of a bridge), or the source again (`None`).
    Bridge(Option<Box<dyn Tap>>),
    /// Start answering-machine detection on what the peer sends.
    Detect(AmdMode),
    Stop,
}

/// A running call's media; dropping it ends the media (RTCP BYE, recording finalized).
#[derive(Debug)]
pub struct MediaTask {
    ctl: mpsc::UnboundedSender<Control>,
    handle: Option<JoinHandle<MediaStats>>,
}

impl MediaTask {
    /// Queues RFC 4733 digits to send.
    pub fn send_dtmf(&self, digits: &str) {
        let _ = self.ctl.send(Control::Dtmf(digits.to_string()));
    }

    /// Applies a new offer/answer (hold, resume, a new address) to the running media.
    pub fn update(&self, remote: Option<SocketAddr>, send: bool) {
        let _ = self.ctl.send(Control::Update(remote, send));
    }

    /// Whether the peer should be sending: the RTP timeout does not run while it is not
    /// (on hold).
    pub fn expect_rx(&self, on: bool) {
        let _ = self.ctl.send(Control::ExpectRx(on));
    }

    /// Starts recording into `path` (nothing if already recording), or stops (`None`).
    pub fn record(&self, path: Option<PathBuf>) {
        let _ = self.ctl.send(Control::Record(path));
    }

    /// Sends `end` (a bridge's) instead of the call's source, or the source again (`None`).
    pub fn bridge(&self, end: Option<Box<dyn Tap>>) {
        let _ = self.ctl.send(Control::Bridge(end));
    }

    /// Starts answering-machine detection (`detect`, `detect_message_end`) on what the
    /// peer sends from now on; its result comes as [`MediaNotice::AnsweredBy`].
    pub fn detect(&self, mode: &str) {
        let mode = if mode == "detect_message_end" { AmdMode::DetectMessageEnd } else { AmdMode::Detect };
        let _ = self.ctl.send(Control::Detect(mode));
    }

    /// Ends the media and waits for its final figures (the recording is finalized).
    pub async fn stop(mut self) -> Option<MediaStats> {
        let _ = self.ctl.send(Control::Stop);
        match self.handle.take() {
            Some(h) => h.await.ok(),
            None => None,
        }
    }
}

impl Drop for MediaTask {
    fn drop(&mut self) {
        let _ = self.ctl.send(Control::Stop);
    }
}

/// Starts a call's media on its sockets (RTCP's used only without rtcp-mux).
pub fn spawn(
    rtp: StdUdpSocket,
    rtcp: StdUdpSocket,
    config: SessionConfig,
    opts: MediaOptions,
) -> std::io::Result<MediaTask> {
    let mux = config.remote_rtcp.is_none();
    let now = Instant::now();
    let session = MediaSession::new(config, now, ntp_from_system_time(SystemTime::now()))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let recorder = match &opts.record {
        Some(path) => Some(Recorder::start(path, session.audio_rate(), 2000)?),
        None => None,
    };
    if let (Some(r), Some(hook)) = (&recorder, &opts.notice) {
        hook(MediaNotice::RecordingStarted(r.path().to_path_buf()));
    }
    let rtp = UdpSocket::from_std(rtp)?;
    let rtcp = if mux { None } else { Some(UdpSocket::from_std(rtcp)?) };
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(t) = &opts.totals {
        t.running.fetch_add(1, Ordering::AcqRel);
    }
    let handle = tokio::spawn(run(rtp, rtcp, session, opts, recorder, rx));
    Ok(MediaTask { ctl: tx, handle: Some(handle) })
}

async fn recv(sock: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

struct Flow {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    kernel_drops: u64,
}

impl Flow {
    fn send(&mut self, s: &mut MediaSession) {
        while let Some(Transmit { to, data, rtcp }) = s.poll_transmit() {
            let sock = match (&self.rtcp, rtcp) {
                (Some(r), true) => r,
                _ => &self.rtp,
            };
            if sock.try_send_to(&data, to).is_err() {
                self.kernel_drops += 1;
            }
        }
    }
}

/// Adds what changed since `last` to the totals.
fn account(totals: &Totals, now: &MediaStats, last: &mut MediaStats, drops: u64, last_drops: &mut u64) {
    let d = |a: u64, b: u64| a.saturating_sub(b);
    totals.rx_packets.fetch_add(d(now.rx.packets, last.rx.packets), Ordering::Relaxed);
    totals.rx_lost.fetch_add(d(now.rx.lost.max(0) as u64, last.rx.lost.max(0) as u64), Ordering::Relaxed);
    totals.rx_late.fetch_add(d(now.jitter.late, last.jitter.late), Ordering::Relaxed);
    totals.concealed.fetch_add(d(now.jitter.concealed, last.jitter.concealed), Ordering::Relaxed);
    totals.tx_packets.fetch_add(d(now.tx_packets, last.tx_packets), Ordering::Relaxed);
    totals.ring_drops.fetch_add(d(drops, *last_drops), Ordering::Relaxed);
    *last = *now;
    *last_drops = drops;
}

async fn run(
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    mut s: MediaSession,
    mut opts: MediaOptions,
    mut recorder: Option<Recorder>,
    mut ctl: mpsc::UnboundedReceiver<Control>,
) -> MediaStats {
    let mut flow = Flow { rtp, rtcp, kernel_drops: 0 };
    let f = s.frame_samples();
    let (mut local, mut remote) = (vec![0i16; f], vec![0i16; f]);
    // What we send, and who else hears the call (crate::taps); the recorder is one of
    // them too, kept apart because it starts and stops during the call.
    let mut source: Box<dyn Tap> = match &opts.source {
        Source::Silence => Box::new(taps::Silence),
        Source::Echo => Box::new(taps::Echo),
        Source::Play(p) => Box::new(Player::new(p.clone())),
        Source::Mic => match opts.mic.take() {
            Some(ring) => Box::new(taps::Mic(ring)),
            None => Box::new(taps::Silence),
        },
        Source::Agent(port) => match port.take() {
            Some(end) => Box::new(end),
            None => Box::new(taps::Silence),
        },
        Source::Tap(slot) => slot.take().unwrap_or_else(|| Box::new(taps::Silence)),
    };
    // The call's own source while it is bridged to another call.
    let mut parked: Option<Box<dyn Tap>> = None;
    // The source's end was reported (once per source).
    let mut finished = false;
    // Answering-machine detection, from the answer until it decides.
    let mut amd: Option<Amd> = None;
    // Speech on both directions and the turns it makes (voice-agent calls).
    // (Kept with the call when it has an API id; run for any agent, which may ask for
    // speech events.)
    let agent_source = matches!(opts.source, Source::Agent(_));
    let mut speech = (opts.speech.is_some() || agent_source).then(|| crate::speech::Speech::new(s.audio_rate()));
    // The call's quality each second (kept with the call when it has an API id).
    let mut meter =
        opts.quality.is_some().then(|| crate::quality::Meter::new(s.codec().name(), TICK.as_secs_f64() * 1000.0));
    let media_start = Instant::now();
    let mut taps: Vec<Box<dyn Tap>> = Vec::new();
    if let Some(ring) = opts.speaker.take() {
        taps.push(Box::new(taps::Speaker::new(ring)));
    }
    let mut buf = vec![0u8; 2048];
    let mut rbuf = vec![0u8; 2048];
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    // A late tick is made up at once: the media clock follows the wall clock.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut last, mut last_drops, mut ticks) = (MediaStats::default(), 0u64, 0u64);
    // The peer's last sign of life, and whether it should be sending at all.
    let (mut last_heard, mut expect_rx, mut timed_out) = (Instant::now(), true, false);
    loop {
        tokio::select! {
            biased;
            c = ctl.recv() => match c {
                Some(Control::Dtmf(d)) => {
                    if let Err(e) = s.send_dtmf(&d) {
                        tracing::warn!(call = opts.label, error = %e, "cannot send DTMF");
                        if opts.print {
                            eprintln!("call: cannot send DTMF: {e}");
                        }
                    }
                }
                Some(Control::Update(remote, send)) => {
                    match remote {
                        Some(to) if to != s.remote() => s.move_remote(to, send),
                        _ => s.set_sending(send),
                    }
                    tracing::info!(call = opts.label, send, remote = ?remote, "media updated");
                }
                Some(Control::Record(Some(path))) if recorder.is_none() => {
                    match Recorder::start(&path, s.audio_rate(), 2000) {
                        Ok(r) => {
                            tracing::info!(call = opts.label, path = %path.display(), "recording");
                            if let Some(hook) = &opts.notice {
                                hook(MediaNotice::RecordingStarted(path));
                            }
                            recorder = Some(r);
                        }
                        Err(e) => {
                            tracing::warn!(call = opts.label, path = %path.display(), error = %e, "cannot record");
                            if let Some(hook) = &opts.notice {
                                hook(MediaNotice::RecordingDone(path, Err(e)));
                            }
                        }
                    }
                }
                Some(Control::Record(Some(_))) => {}
                Some(Control::Detect(mode)) => {
                    amd = Some(Amd::new(AmdConfig { mode, ..AmdConfig::default() }, s.audio_rate()));
                }
                Some(Control::ExpectRx(on)) => {
                    expect_rx = on;
                    last_heard = Instant::now();
                    timed_out = false;
                }
                Some(Control::Record(None)) => {
                    if let Some(r) = recorder.take() {
                        finish_recording(&opts, r);
                    }
                }
                Some(Control::Bridge(Some(end))) => {
                    finished = false;
                    let own = std::mem::replace(&mut source, end);
                    // A second bridge replaces the first; the call's own source waits.
                    parked.get_or_insert(own);
                }
                Some(Control::Bridge(None)) => {
                    if let Some(own) = parked.take() {
                        source = own;
                        finished = false;
                    }
                }
                Some(Control::Stop) | None => break,
            },
            r = flow.rtp.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    last_heard = Instant::now();
                    s.handle_datagram(Bytes::copy_from_slice(&buf[..n]), from, last_heard);
                }
            }
            r = recv(flow.rtcp.as_ref(), &mut rbuf) => {
                if let Ok((n, from)) = r {
                    last_heard = Instant::now();
                    s.handle_rtcp(&rbuf[..n], from, last_heard);
                }
            }
            _ = tick.tick() => {
                source.fill(&remote, &mut local);
                if let Some(d) = source.take_dtmf() {
                    if let Err(e) = s.send_dtmf(d.encode_utf8(&mut [0; 4])) {
                        tracing::warn!(call = opts.label, error = %e, "cannot send the source's DTMF");
                    }
                }
                s.tick(Instant::now(), &local, &mut remote);
                source.tick(&remote, &local);
                for t in taps.iter_mut() {
                    t.tick(&remote, &local);
                }
                if let Some(r) = recorder.as_mut() {
                    r.tick(&remote, &local);
                }
                ticks += 1;
                if let Some(sp) = speech.as_mut() {
                    sp.played(source.playout());
                    sp.tick(&remote, &local, source.clears().max(parked.as_ref().map_or(0, |p| p.clears())));
                    for note in sp.notes() {
                        source.speech(*note);
                    }
                    if ticks % 25 == 0 {
                        if let Some(shared) = &opts.speech {
                            if let Ok(mut kept) = shared.lock() {
                                *kept = Some(sp.report());
                            }
                        }
                    }
                }
                if let Some(result) = amd.as_mut().and_then(|d| d.push(&remote)) {
                    amd = None;
                    if let Some(hook) = &opts.notice {
                        hook(MediaNotice::AnsweredBy(result.answered_by.as_str(), result.after_ms));
                    }
                }
                if !finished && source.finished() {
                    finished = true;
                    if let Some(hook) = &opts.notice {
                        hook(MediaNotice::SourceFinished);
                    }
                }
                if let (Some(limit), Some(hook), false, true) = (opts.rtp_timeout, &opts.notice, timed_out, expect_rx) {
                    if last_heard.elapsed() >= limit {
                        timed_out = true;
                        tracing::warn!(call = opts.label, seconds = limit.as_secs(), "no RTP or RTCP from the peer");
                        hook(MediaNotice::RtpTimeout(limit));
                    }
                }
                if let Some(m) = meter.as_mut().filter(|m| ticks % (m.interval_ms() / 20).max(1) == 0) {
                    sample_quality(m, &s, media_start, opts.quality.as_ref());
                }
                if ticks % 50 == 0 {
                    if let Some(t) = &opts.totals {
                        let drops = flow.kernel_drops + dropped(&*source, &taps, recorder.as_ref());
                        account(t, &s.stats(), &mut last, drops, &mut last_drops);
                    }
                }
            }
        }
        flow.send(&mut s);
        while let Some(ev) = s.poll_event() {
            if let MediaEvent::Dtmf(d) = &ev {
                source.dtmf(d.digit);
                taps.iter_mut().for_each(|t| t.dtmf(d.digit));
            }
            if let MediaEvent::StreamStarted(at) = ev {
                // Tick half a frame after the peer's packets arrive (see the event).
                tick.reset_at(tokio::time::Instant::from_std(at + TICK / 2));
            } else {
                report_event(&opts, ev);
            }
        }
    }
    if let Some(mut sp) = speech.take() {
        sp.finish();
        let report = sp.report();
        if let Some(shared) = &opts.speech {
            if let Ok(mut kept) = shared.lock() {
                *kept = Some(report.clone());
            }
        }
        if let (Some(hook), Some(_)) = (&opts.notice, &opts.speech) {
            hook(MediaNotice::Turns(report));
        }
    }
    if let Some(m) = meter.as_mut() {
        sample_quality(m, &s, media_start, opts.quality.as_ref());
    }
    s.close(Instant::now(), None);
    flow.send(&mut s);
    while let Some(ev) = s.poll_event() {
        report_event(&opts, ev);
    }
    let stats = s.stats();
    let drops = flow.kernel_drops + dropped(&*source, &taps, recorder.as_ref());
    // The agent's end goes now: its bridge sends `stop`.
    drop(source);
    drop(taps);
    if let Some(t) = &opts.totals {
        account(t, &stats, &mut last, drops, &mut last_drops);
        t.calls.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(r) = recorder.take() {
        let path = r.path().to_path_buf();
        if opts.print {
            // The command exits after this: wait until the file is complete.
            match tokio::task::spawn_blocking(move || r.finish()).await {
                Ok(Ok(frames)) => {
                    eprintln!("call: recorded {:.1} s to {}", frames as f64 / f64::from(s.audio_rate()), path.display())
                }
                Ok(Err(e)) => eprintln!("call: recording {} failed: {e}", path.display()),
                Err(_) => {}
            }
        } else {
            finish_recording(&opts, r);
        }
    }
    log_summary(&opts, &s, &stats, drops);
    if let Some(t) = &opts.totals {
        t.running.fetch_sub(1, Ordering::AcqRel);
    }
    stats
}

/// One quality sample, published to `shared`.
fn sample_quality(
    m: &mut crate::quality::Meter,
    s: &MediaSession,
    start: Instant,
    shared: Option<&Arc<std::sync::Mutex<Option<serde_json::Value>>>>,
) {
    let stats = s.stats();
    m.sample(start.elapsed().as_millis() as u64, &stats, stats.jitter.target_ms);
    if let Some(Ok(mut kept)) = shared.map(|q| q.lock()) {
        *kept = Some(m.json());
    }
}

/// Frames the source and the taps dropped so far.
fn dropped(source: &dyn Tap, taps: &[Box<dyn Tap>], recorder: Option<&Recorder>) -> u64 {
    source.dropped() + taps.iter().map(|t| t.dropped()).sum::<u64>() + recorder.map_or(0, Tap::dropped)
}

/// Hands a recording to the writer to finalize; with a hook, a blocking thread waits for
/// the final header and then reports it.
fn finish_recording(opts: &MediaOptions, r: Recorder) {
    match &opts.notice {
        Some(hook) => {
            let hook = hook.clone();
            let path = r.path().to_path_buf();
            tokio::task::spawn_blocking(move || hook(MediaNotice::RecordingDone(path, r.finish())));
        }
        None => r.close(),
    }
}

fn report_event(opts: &MediaOptions, ev: MediaEvent) {
    match ev {
        MediaEvent::Dtmf(d) => {
            if let Some(hook) = &opts.notice {
                hook(MediaNotice::Dtmf(d.digit));
            }
            tracing::info!(call = opts.label, digit = %d.digit, duration_ms = d.duration_ms, "dtmf received");
            if opts.print {
                eprintln!("call: DTMF {} ({} ms)", d.digit, d.duration_ms);
            }
        }
        MediaEvent::Latched(to) => tracing::debug!(call = opts.label, %to, "RTP latched to the peer's source"),
        MediaEvent::NewSource(ssrc) => tracing::debug!(call = opts.label, ssrc, "new RTP source"),
        MediaEvent::Report(r) => tracing::debug!(
            call = opts.label,
            fraction_lost = r.fraction_lost,
            cumulative_lost = r.cumulative_lost,
            jitter_ms = r.jitter_ms,
            rtt_ms = r.round_trip.map(|d| d.as_secs_f64() * 1000.0),
            "RTCP report from the peer"
        ),
        MediaEvent::RemoteBye(reason) => tracing::debug!(call = opts.label, ?reason, "RTCP BYE from the peer"),
        _ => {}
    }
}

fn log_summary(opts: &MediaOptions, s: &MediaSession, st: &MediaStats, drops: u64) {
    let rtt = st.remote.and_then(|r| r.round_trip).map(|d| d.as_secs_f64() * 1000.0);
    if opts.print {
        eprintln!(
            "call: media {}: received {} packets (lost {}, late {}, concealed {}, jitter {:.1} ms), sent {}{}",
            s.codec().name(),
            st.rx.packets,
            st.rx.lost,
            st.jitter.late,
            st.jitter.concealed,
            st.rx.jitter_ms,
            st.tx_packets,
            rtt.map(|r| format!(", round trip {r:.1} ms")).unwrap_or_default()
        );
        return;
    }
    tracing::info!(
        call = opts.label,
        codec = s.codec().name(),
        rx_packets = st.rx.packets,
        rx_lost = st.rx.lost,
        jitter_ms = format_args!("{:.1}", st.rx.jitter_ms),
        late = st.jitter.late,
        concealed = st.jitter.concealed,
        fec = st.fec_recovered,
        tx_packets = st.tx_packets,
        dtmf_rx = st.dtmf_received,
        dtmf_tx = st.dtmf_sent,
        rtcp_tx = st.rtcp_sent,
        rtcp_rx = st.rtcp_received,
        peer_lost = st.remote.map(|r| r.cumulative_lost),
        rtt_ms = rtt,
        drops,
        "call media"
    );
}
