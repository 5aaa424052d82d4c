//! The agent bridge (issue 6, DESIGN.md "The agent bridge (contract)"): a call's audio to a
//! voice agent over WebSocket and the agent's audio back, in the Twilio Media Streams
//! message set, with dialtone as the WebSocket client.
//!
//! Two halves meet in lock-free rings (`ringbuf`, SPSC):
//!
//! - the media task holds a [`MediaEnd`] (taken once from [`Source::Agent`]'s
//!   [`AgentPort`]). Each 20 ms tick it takes the next frame of agent audio
//!   ([`MediaEnd::play`], silence when there is none) and pushes what the caller said
//!   ([`MediaEnd::hear`]); a full ring drops the frame and counts it. It never waits on the
//!   network.
//! - the bridge task owns the WebSocket. It queues the agent's audio (any chunk size) and
//!   keeps the playout ring a few frames ahead, turns the caller's frames into `media`
//!   messages, answers `mark` once the audio before it has been played and `clear` at once.
//!   Writes go through a bounded queue to a writer task, so an agent that stops reading
//!   fills that queue (messages dropped and counted) and never the media path.
//!
//! Audio is µ-law 8 kHz in JSON `media` messages ([`AgentFormat::Twilio`]), or PCM16LE
//! 16 kHz in binary frames ([`AgentFormat::L16`], `l16-16k`); the call's audio (8 kHz for
//! G.711, 16 kHz for Opus) is converted with the media crate's polyphase FIR [`Resampler`]
//! both ways. `wss://` uses rustls (ring) with Mozilla's roots, plus `DIALTONE_AGENT_CA`.
//!
//! Where bridges start: [`Serving`] for `serve` (inbound `agent:<ws-url>`, API calls with
//! `agent_url`), [`start`] directly for `dialtone call --agent`. The time the bridge adds
//! in each direction goes to `/metrics` ([`render_metrics`]).
//!
//! Faults: an agent that cannot be reached (5 s to connect) or that closes the socket ends
//! the call (`agent … unreachable` / `agent … closed` in the log), unless
//! `DIALTONE_AGENT_FALLBACK=<wav>` names a prompt: then that prompt is played to the caller
//! and the call is hung up after it. Malformed messages from the agent are counted and
//! logged, never fatal.
//!
//! [`Source::Agent`]: crate::media_io::Source::Agent

use base64::Engine as _;
use dialtone_media::g711::{decode_ulaw, encode_ulaw};
use dialtone_media::player::{Player, Prompt};
use dialtone_media::resample::Resampler;
use futures_util::{SinkExt as _, StreamExt as _};
use ringbuf::traits::{Consumer as _, Observer as _, Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long connecting (TCP, TLS, WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The caller's audio ring towards the bridge: 1 s.
const TO_AGENT_MS: usize = 1000;
/// The agent's audio ring towards the media task: 400 ms, kept [`FEED_AHEAD_MS`] full.
const FROM_AGENT_MS: usize = 400;
/// How far ahead of the playout the bridge keeps the ring (covers a late bridge turn).
const FEED_AHEAD_MS: usize = 120;
/// The agent's queued audio beyond the ring: at most 120 s; more is dropped and counted.
const QUEUE_MAX_MS: usize = 120_000;
/// The agent socket's kernel send buffer (Linux doubles it): about 2 s of `media`.
const SEND_BUFFER: u32 = 32 * 1024;
/// Messages waiting for the writer: about 2 s of `media` (older caller audio is of no use
/// to a live agent); a full queue drops.
const WRITE_QUEUE: usize = 100;

// ---------------------------------------------------------------------------------------
// The Twilio Media Streams message set, from Twilio's "Media Streams - WebSocket Messages"
// (twilio.com/docs/voice/media-streams/websocket-messages):
//
// from the platform (us) to the agent's server:
//   {"event":"connected","protocol":"Call","version":"1.0.0"}                  first message
//   {"event":"start","sequenceNumber":"1","start":{"accountSid":"AC…","streamSid":"MZ…",
//     "callSid":"CA…","tracks":["inbound"],"customParameters":{…},
//     "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},
//     "streamSid":"MZ…"}                                                         once, next
//   {"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1",
//     "timestamp":"5","payload":"<base64 µ-law>"},"streamSid":"MZ…"}        every 20 ms
//   {"event":"dtmf","streamSid":"MZ…","sequenceNumber":"5",
//     "dtmf":{"track":"inbound_track","digit":"1"}}                           a key pressed
//   {"event":"mark","sequenceNumber":"4","streamSid":"MZ…","mark":{"name":"…"}}
//       the agent's mark, once the audio sent before it has played
//   {"event":"stop","sequenceNumber":"5","streamSid":"MZ…",
//     "stop":{"accountSid":"AC…","callSid":"CA…"}}                            last message
// sequenceNumber, chunk and timestamp are strings; chunk counts from "1", timestamp is in
// milliseconds from the start of the stream.
//
// dialtone's own, only to an agent that asks (`dialtone_events=speech` in its URL's query):
//   {"event":"speech_started","sequenceNumber":"9","streamSid":"MZ…",
//     "speech":{"track":"inbound","timestamp":"1180"}}    and "speech_stopped"; "outbound"
//                                                          is the agent's own audio
//
// from the agent (bidirectional streams):
//   {"event":"media","streamSid":"MZ…","media":{"payload":"<base64 µ-law 8 kHz>"}}
//   {"event":"mark","streamSid":"MZ…","mark":{"name":"…"}}
//   {"event":"clear","streamSid":"MZ…"}   drops the queued audio; pending marks are sent
//                                        back at once (the same page, "Clear message").
// ---------------------------------------------------------------------------------------

/// A latency histogram for `/metrics`: fixed buckets, atomic counters (lock-free to record).
#[derive(Debug)]
struct Histogram {
    /// Upper bounds, in microseconds.
    bounds: &'static [u64],
    /// One count per bound, and one above the last.
    counts: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

/// The buckets: 100 µs to 1 s.
const LATENCY_BUCKETS_US: [u64; 13] =
    [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 50_000, 100_000, 250_000, 1_000_000];

/// The buckets of turn-taking figures (issue 21): 100 ms to 20 s.
const TURN_BUCKETS_US: [u64; 13] = [
    100_000, 200_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000, 7_500_000,
    10_000_000, 20_000_000,
];

impl Histogram {
    const fn new() -> Histogram {
        Histogram::with(&LATENCY_BUCKETS_US)
    }

    const fn with(bounds: &'static [u64; 13]) -> Histogram {
        #[allow(clippy::declare_interior_mutable_const)]
        const ZERO: AtomicU64 = AtomicU64::new(0);
        Histogram { bounds, counts: [ZERO; LATENCY_BUCKETS_US.len() + 1], sum_us: ZERO }
    }

    fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = self.bounds.iter().position(|&b| us <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Prometheus histogram lines (cumulative buckets, seconds).
    fn render(&self, name: &str, direction: &str, out: &mut String) {
        self.render_as(name, "direction", direction, out);
    }

    fn render_as(&self, name: &str, label: &str, value: &str, out: &mut String) {
        use std::fmt::Write;
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            let le = self.bounds.get(i).map_or("+Inf".to_string(), |b| format!("{}", *b as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"{le}\"}} {total}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {total}");
    }
}

/// Caller → agent: from the media tick handing a frame over (after the jitter buffer) to
/// its message written to the agent's socket.
static TO_AGENT: Histogram = Histogram::new();
/// Agent → caller: from an agent message that starts audio on an idle playout to the media
/// tick that sends its first samples (waiting for that tick is the 20 ms packetization).
static TO_CALLER: Histogram = Histogram::new();

/// Agent → caller, the bridge's own part: from an agent message that starts audio on an
/// idle playout to its samples waiting in the ring for the next media tick (parse,
/// base64, µ-law or PCM decode, resample, push).
static TO_CALLER_READY: Histogram = Histogram::new();

/// A voice-agent call's response latency per turn (caller's end to the agent's audio).
static TURN_LATENCY: Histogram = Histogram::with(&TURN_BUCKETS_US);
/// A barge-in's time to stop (caller's start over the agent to the agent's audio ending).
static BARGE_IN_STOP: Histogram = Histogram::with(&TURN_BUCKETS_US);

/// Gaps in an agent's audio mid-reply (the playout ran dry), by whose fault.
static PLAYOUT_GAP_AGENT: Histogram = Histogram::with(&TURN_BUCKETS_US);
static PLAYOUT_GAP_DIALTONE: Histogram = Histogram::with(&TURN_BUCKETS_US);

/// A gap of `ms` in an agent's audio mid-reply; `cause` `agent` or `dialtone` (for `/metrics`).
pub fn record_playout_gap(ms: u64, cause: &str) {
    let h = if cause == "dialtone" { &PLAYOUT_GAP_DIALTONE } else { &PLAYOUT_GAP_AGENT };
    h.record(Duration::from_millis(ms));
}

/// A turn the agent answered after `ms` (for `/metrics`).
pub fn record_turn_latency(ms: u64) {
    TURN_LATENCY.record(Duration::from_millis(ms));
}

/// A barge-in the agent stopped for after `ms` (for `/metrics`).
pub fn record_barge_in_stop(ms: u64) {
    BARGE_IN_STOP.record(Duration::from_millis(ms));
}

/// Records [`TO_CALLER_READY`] for a message that came at `arrived` (ns since [`epoch`]),
/// its audio now in the ring.
fn ready(arrived: Option<u64>) {
    if let Some(at) = arrived {
        let now = nanos_since_epoch(std::time::Instant::now());
        TO_CALLER_READY.record(Duration::from_nanos(now.saturating_sub(at)));
    }
}

/// Appends the bridge's figures to `/metrics` (Prometheus text format).
pub fn render_metrics(out: &mut String) {
    const NAME: &str = "dialtone_agent_latency_seconds";
    out.push_str(
        "# HELP dialtone_agent_latency_seconds Time the agent bridge adds: to_agent from the frame leaving \
         the jitter buffer to its message on the agent's socket; to_caller from the agent's message to \
         the RTP tick that plays it (on an idle playout); to_caller_ready from that message to its audio \
         queued for the next tick.\n# TYPE dialtone_agent_latency_seconds histogram\n",
    );
    TO_AGENT.render(NAME, "to_agent", out);
    TO_CALLER.render(NAME, "to_caller", out);
    TO_CALLER_READY.render(NAME, "to_caller_ready", out);
    out.push_str(
        "# HELP dialtone_turn_seconds Voice-agent calls' turn-taking, from speech detected on both \
         directions: response_latency from the end of a caller's turn to the agent's first audio; \
         barge_in_stop from the caller starting over the agent to the agent's audio ending.\n\
         # TYPE dialtone_turn_seconds histogram\n",
    );
    TURN_LATENCY.render("dialtone_turn_seconds", "response_latency", out);
    BARGE_IN_STOP.render("dialtone_turn_seconds", "barge_in_stop", out);
    out.push_str(
        "# HELP dialtone_agent_playout_gap_seconds Gaps in voice agents' audio mid-reply (the playout ran \
         dry and the audio came back within 1 s), by cause: agent when nothing was queued, dialtone when \
         audio was waiting in the bridge.\n# TYPE dialtone_agent_playout_gap_seconds histogram\n",
    );
    PLAYOUT_GAP_AGENT.render_as("dialtone_agent_playout_gap_seconds", "cause", "agent", out);
    PLAYOUT_GAP_DIALTONE.render_as("dialtone_agent_playout_gap_seconds", "cause", "dialtone", out);
}

/// A process-wide time base, so instants fit in an atomic (nanoseconds since it).
fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn nanos_since_epoch(t: std::time::Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// What a bridge tells the agent about its call (`start.customParameters`).
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    /// The call's id (the API's, or `call-<n>`).
    pub call_id: String,
    /// The API's contact id, when the API placed the call.
    pub contact_id: Option<String>,
    /// The caller (From).
    pub from: Option<String>,
    /// The callee (To).
    pub to: Option<String>,
    /// More parameters: an inbound INVITE's `X-` headers, a call webhook's
    /// `custom_parameters` (never turned into SIP headers).
    pub custom: Vec<(String, String)>,
}

/// How a bridge asks its owner to hang a call up: `serve` sends it into its inbox,
/// `dialtone call` flags it and wakes its loop.
#[derive(Clone)]
pub struct Hangups {
    sink: Arc<dyn Fn(u64, String) + Send + Sync>,
}

impl std::fmt::Debug for Hangups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hangups").finish_non_exhaustive()
    }
}

impl Hangups {
    /// Requests go to `sink` (the call's label, why).
    pub fn to(sink: impl Fn(u64, String) + Send + Sync + 'static) -> Hangups {
        Hangups { sink: Arc::new(sink) }
    }

    /// Asks for the call `label` to be hung up, saying why (for the call's record).
    pub fn request(&self, label: u64, why: String) {
        (self.sink)(label, why)
    }
}

/// What goes over the WebSocket (DESIGN.md, "The agent bridge (contract)").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentFormat {
    /// Twilio Media Streams: base64 µ-law 8 kHz in JSON `media` messages (`twilio`).
    #[default]
    Twilio,
    /// PCM 16-bit little-endian, 16 kHz, mono, in binary frames both ways; the events
    /// (`connected`, `start`, `dtmf`, `mark`, `clear`, `stop`) stay JSON text (`l16-16k`).
    L16,
}

impl AgentFormat {
    /// `twilio` or `l16-16k` (the API's `agent_format`, `DIALTONE_AGENT_FORMAT`).
    pub fn parse(s: &str) -> Option<AgentFormat> {
        match s {
            "twilio" => Some(AgentFormat::Twilio),
            "l16-16k" => Some(AgentFormat::L16),
            _ => None,
        }
    }

    /// `DIALTONE_AGENT_FORMAT`, `twilio` when unset.
    pub fn from_env() -> anyhow::Result<AgentFormat> {
        match std::env::var("DIALTONE_AGENT_FORMAT") {
            Ok(v) if !v.is_empty() => AgentFormat::parse(&v)
                .ok_or_else(|| anyhow::anyhow!("DIALTONE_AGENT_FORMAT must be twilio or l16-16k, not {v:?}")),
            _ => Ok(AgentFormat::Twilio),
        }
    }

    /// The rate on the wire.
    fn rate(self) -> u32 {
        match self {
            AgentFormat::Twilio => 8000,
            AgentFormat::L16 => 16_000,
        }
    }

    /// Samples in 20 ms on the wire.
    fn frame(self) -> usize {
        (self.rate() / 50) as usize
    }
}

/// The fallback prompt (`DIALTONE_AGENT_FALLBACK=<wav>`) at 8 and 16 kHz.
#[derive(Clone, Debug)]
pub struct Fallback {
    path: PathBuf,
    p8: Arc<Prompt>,
    p16: Arc<Prompt>,
}

impl Fallback {
    /// Decodes `DIALTONE_AGENT_FALLBACK` when it is set; an unreadable WAV is an error.
    pub fn from_env() -> anyhow::Result<Option<Fallback>> {
        match std::env::var_os("DIALTONE_AGENT_FALLBACK").filter(|v| !v.is_empty()) {
            Some(p) => Fallback::load(PathBuf::from(p)).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes `path` for both call rates.
    pub fn load(path: PathBuf) -> anyhow::Result<Fallback> {
        let load = |rate| {
            Prompt::load(&path, rate).map_err(|e| anyhow::anyhow!("DIALTONE_AGENT_FALLBACK {}: {e}", path.display()))
        };
        let (p8, p16) = (Arc::new(load(8000)?), Arc::new(load(16_000)?));
        Ok(Fallback { path, p8, p16 })
    }

    fn at(&self, rate: u32) -> Arc<Prompt> {
        if rate == 8000 {
            self.p8.clone()
        } else {
            self.p16.clone()
        }
    }
}

/// What a bridge needs besides its call: where the agent is, what goes over the socket,
/// what to do when it fails, and whom to ask for a hang-up.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The agent's `ws://` or `wss://` URL.
    pub url: String,
    /// The wire format.
    pub format: AgentFormat,
    /// Played instead of hanging up when the agent fails.
    pub fallback: Option<Fallback>,
    /// Where hang-ups are asked for.
    pub hangups: Hangups,
    /// Also print the bridge's faults to stderr (`dialtone call`).
    pub print: bool,
}

/// `serve`'s bridges: where inbound calls' agent is (`DIALTONE_INBOUND=agent:<ws-url>`),
/// the default format and fallback, and where hang-ups are asked for. What each call is
/// bridged to is the call engine's ([`crate::engine::AgentPlan`]).
#[derive(Debug)]
pub struct Serving {
    /// `DIALTONE_INBOUND=agent:<ws-url>`.
    inbound: Option<String>,
    /// `DIALTONE_AGENT_FORMAT`, for calls that do not name theirs.
    format: AgentFormat,
    fallback: Option<Fallback>,
    hangups: Hangups,
}

impl Serving {
    /// Bridges inbound calls to `inbound` when given; `DIALTONE_AGENT_FALLBACK` and
    /// `DIALTONE_AGENT_FORMAT` are read now (an unreadable WAV stops `serve` at startup);
    /// hang-ups go to `hangups`.
    pub fn new(inbound: Option<&str>, hangups: Hangups) -> anyhow::Result<Serving> {
        let fallback = Fallback::from_env()?;
        let format = AgentFormat::from_env()?;
        check_env()?;
        if let Some(url) = inbound {
            let url = shown(url);
            match &fallback {
                Some(f) => {
                    tracing::info!(%url, ?format, fallback = %f.path.display(), "inbound calls are bridged to the agent")
                }
                None => tracing::info!(%url, ?format, "inbound calls are bridged to the agent (hung up if it fails)"),
            }
        }
        Ok(Serving { inbound: inbound.map(str::to_string), format, fallback, hangups })
    }

    /// Starts call `call`'s bridge at the call's audio `rate`: to `url` (`None`: the
    /// inbound agent) in `format` (`None`: `DIALTONE_AGENT_FORMAT`). `None` when there is
    /// no agent to bridge to.
    pub fn start(
        &self,
        call: u64,
        rate: u32,
        url: Option<&str>,
        format: Option<&str>,
        info: CallInfo,
    ) -> Option<Arc<AgentPort>> {
        let url = url.map(str::to_string).or_else(|| self.inbound.clone())?;
        let format = format.and_then(AgentFormat::parse).unwrap_or(self.format);
        let cfg =
            AgentConfig { url, format, fallback: self.fallback.clone(), hangups: self.hangups.clone(), print: false };
        Some(start(call, rate, info, cfg))
    }
}

/// State both halves read: plain atomics, no locks.
#[derive(Debug, Default)]
struct Shared {
    /// Samples the media task has taken from the playout ring (played or skipped).
    played: AtomicU64,
    /// The media task skips the ring up to this sample count (a `clear`).
    clear_to: AtomicU64,
    /// `clear` messages the agent sent.
    clears: AtomicU64,
    /// The media task's end was dropped: the call's media ended.
    media_done: AtomicBool,
    /// For [`TO_CALLER`]: the playout position of audio that arrived on an idle playout,
    /// and when it arrived (ns since [`epoch`]; 0: none pending).
    arrived_at: AtomicU64,
    arrived_pos: AtomicU64,
    /// Samples of the agent's audio waiting in the bridge, not yet in the playout ring.
    pending: AtomicU64,
    /// The agent asked for speech events.
    speech_events: AtomicBool,
    /// Wakes the bridge when the media task has pushed a frame or a digit: a flag and an
    /// `AtomicWaker`, lock-free on the media side.
    heard: AtomicBool,
    heard_waker: futures_util::task::AtomicWaker,
}

impl Shared {
    /// The media side: something is waiting in the rings.
    fn wake_bridge(&self) {
        self.heard.store(true, Ordering::Release);
        self.heard_waker.wake();
    }

    /// The bridge side: until the media side has called [`Shared::wake_bridge`].
    async fn heard(&self) {
        std::future::poll_fn(|cx| {
            self.heard_waker.register(cx.waker());
            match self.heard.swap(false, Ordering::AcqRel) {
                true => std::task::Poll::Ready(()),
                false => std::task::Poll::Pending,
            }
        })
        .await
    }
}

/// The media task's half of a bridge.
pub struct MediaEnd {
    to_agent: HeapProd<i16>,
    /// When each frame in `to_agent` was heard (ns since [`epoch`]).
    stamps: HeapProd<u64>,
    from_agent: HeapCons<i16>,
    dtmf: HeapProd<char>,
    /// Speech starts and ends, for an agent that asked for them.
    speech: HeapProd<SpeechNote>,
    shared: Arc<Shared>,
    played: u64,
    drops: u64,
    /// The last [`MediaEnd::play`]'s figures.
    last: PlayStat,
}

/// Speech started or stopped on one side of a call (issue 21's detector), for an agent that
/// asked for speech events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechNote {
    /// The caller's speech (the `inbound` track); else what we sent, the agent's own.
    pub caller: bool,
    /// Started; else stopped.
    pub started: bool,
    /// Where it started or ended: ms of the call's audio.
    pub at_ms: u64,
}

/// Whether an agent URL asks for speech events: `dialtone_events=speech` in its query (a
/// comma-separated list).
pub fn wants_speech_events(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| k == "dialtone_events" && v.split(',').any(|e| e == "speech"))
}

/// What one [`MediaEnd::play`] found, for the playout figures (samples at the call's rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayStat {
    /// The agent's audio played in the frame (the rest was silence).
    pub played: usize,
    /// After it: the agent's audio waiting in the playout ring and in the bridge.
    pub queued: usize,
    /// Of `queued`, what was still in the bridge.
    pub pending: usize,
    /// Audio that arrived on an idle playout started playing in this frame after waiting
    /// this long in dialtone (µs).
    pub start_delay_us: Option<u64>,
}

impl std::fmt::Debug for MediaEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEnd").field("played", &self.played).field("drops", &self.drops).finish()
    }
}

impl MediaEnd {
    /// Fills `out` with the next frame of the agent's audio (silence when none is queued),
    /// first skipping what a `clear` dropped. Never blocks.
    pub fn play(&mut self, out: &mut [i16]) {
        let clear_to = self.shared.clear_to.load(Ordering::Acquire);
        if clear_to > self.played {
            let skip = usize::try_from(clear_to - self.played).unwrap_or(usize::MAX);
            self.played += self.from_agent.skip(skip) as u64;
        }
        let before = self.played;
        let n = self.from_agent.pop_slice(out);
        out[n..].fill(0);
        self.played += n as u64;
        self.shared.played.store(self.played, Ordering::Release);
        let pending = usize::try_from(self.shared.pending.load(Ordering::Acquire)).unwrap_or(usize::MAX);
        self.last =
            PlayStat { played: n, queued: self.from_agent.occupied_len() + pending, pending, start_delay_us: None };
        let arrived = self.shared.arrived_at.load(Ordering::Acquire);
        if arrived != 0 && n > 0 {
            let pos = self.shared.arrived_pos.load(Ordering::Acquire);
            if (before..self.played).contains(&pos) {
                let now = nanos_since_epoch(std::time::Instant::now());
                let waited = now.saturating_sub(arrived);
                TO_CALLER.record(Duration::from_nanos(waited));
                self.last.start_delay_us = Some(waited / 1000);
                self.shared.arrived_at.store(0, Ordering::Release);
            } else if pos < before {
                // Skipped by a clear: not played.
                self.shared.arrived_at.store(0, Ordering::Release);
            }
        }
    }

    /// Hands the frame the caller said to the bridge; a full ring drops it (counted).
    pub fn hear(&mut self, frame: &[i16]) {
        if self.to_agent.vacant_len() >= frame.len() && self.stamps.vacant_len() > 0 {
            self.to_agent.push_slice(frame);
            let _ = self.stamps.try_push(nanos_since_epoch(std::time::Instant::now()));
            self.shared.wake_bridge();
        } else {
            self.drops += 1;
        }
    }

    /// A DTMF digit the caller pressed, for a `dtmf` message.
    pub fn dtmf(&mut self, digit: char) {
        if self.dtmf.try_push(digit).is_err() {
            self.drops += 1;
        }
        self.shared.wake_bridge();
    }

    /// Speech started or stopped on one side of the call: a `speech_started` or
    /// `speech_stopped` message, when the agent asked for them (`dialtone_events=speech` in
    /// its URL's query).
    pub fn speech(&mut self, note: SpeechNote) {
        if self.shared.speech_events.load(Ordering::Acquire) {
            if self.speech.try_push(note).is_err() {
                self.drops += 1;
            }
            self.shared.wake_bridge();
        }
    }

    /// Frames (and digits) dropped because the bridge fell behind.
    pub fn dropped(&self) -> u64 {
        self.drops
    }

    /// The `clear` messages the agent has sent so far.
    pub fn clears(&self) -> u64 {
        self.shared.clears.load(Ordering::Acquire)
    }

    /// What the last [`MediaEnd::play`] found.
    pub fn playout(&self) -> PlayStat {
        self.last
    }
}

impl Drop for MediaEnd {
    fn drop(&mut self) {
        self.shared.media_done.store(true, Ordering::Release);
    }
}

/// Where the media task picks its [`MediaEnd`] up, once; and where DTMF from SIP INFO
/// (which the media task does not see) goes to the agent.
#[derive(Debug)]
pub struct AgentPort {
    media: Mutex<Option<MediaEnd>>,
    digits: mpsc::UnboundedSender<Note>,
}

/// What the engine tells a bridge besides audio.
#[derive(Debug)]
enum Note {
    /// A digit the caller sent by SIP INFO: a `dtmf` message.
    Digit(char),
    /// Who answered (answering-machine detection) and after how much audio (ms): an
    /// `answered_by` message.
    AnsweredBy(String, u32),
}

impl AgentPort {
    /// The media task's end; `None` after the first call.
    pub fn take(&self) -> Option<MediaEnd> {
        self.media.lock().ok().and_then(|mut m| m.take())
    }

    /// A digit the caller sent by SIP INFO, for a `dtmf` message.
    pub fn digit(&self, digit: char) {
        let _ = self.digits.send(Note::Digit(digit));
    }

    /// Who answered the call, as answering-machine detection decided `after_ms` into it:
    /// the agent gets an `answered_by` message.
    pub fn answered_by(&self, who: &str, after_ms: u32) {
        let _ = self.digits.send(Note::AnsweredBy(who.to_string(), after_ms));
    }
}

/// The bridge task's half.
struct BridgeEnd {
    to_agent: HeapCons<i16>,
    stamps: HeapCons<u64>,
    from_agent: HeapProd<i16>,
    dtmf: HeapCons<char>,
    speech: HeapCons<SpeechNote>,
    shared: Arc<Shared>,
    /// Samples pushed into the playout ring so far.
    fed: u64,
    /// Digits from SIP INFO.
    digits: Option<mpsc::UnboundedReceiver<Note>>,
}

/// Starts the bridge of call `label` at the call's audio `rate` (8000 or 16000): connects
/// to the agent in the background and returns the port for
/// [`Source::Agent`](crate::media_io::Source::Agent).
pub fn start(label: u64, rate: u32, info: CallInfo, cfg: AgentConfig) -> Arc<AgentPort> {
    let (media, mut bridge) = halves(rate, TO_AGENT_MS, FROM_AGENT_MS);
    let (digits, digits_rx) = mpsc::unbounded_channel();
    bridge.digits = Some(digits_rx);
    tokio::spawn(run(label, rate, info, cfg, bridge));
    Arc::new(AgentPort { media: Mutex::new(Some(media)), digits })
}

/// The agent's URL for the logs: without user info or query, which may carry secrets.
fn shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// The rings between the two halves: `to_ms` of the caller's audio, `from_ms` of the
/// agent's, at `rate`.
fn halves(rate: u32, to_ms: usize, from_ms: usize) -> (MediaEnd, BridgeEnd) {
    let ms = |ms: usize| (rate as usize * ms / 1000).max(1);
    let (to_p, to_c) = HeapRb::<i16>::new(ms(to_ms)).split();
    let (stamps_p, stamps_c) = HeapRb::<u64>::new(to_ms / 20 + 1).split();
    let (from_p, from_c) = HeapRb::<i16>::new(ms(from_ms)).split();
    let (dtmf_p, dtmf_c) = HeapRb::<char>::new(32).split();
    let (speech_p, speech_c) = HeapRb::<SpeechNote>::new(16).split();
    let shared = Arc::new(Shared::default());
    let media = MediaEnd {
        to_agent: to_p,
        stamps: stamps_p,
        from_agent: from_c,
        dtmf: dtmf_p,
        speech: speech_p,
        shared: shared.clone(),
        played: 0,
        drops: 0,
        last: PlayStat::default(),
    };
    let bridge = BridgeEnd {
        to_agent: to_c,
        stamps: stamps_c,
        from_agent: from_p,
        dtmf: dtmf_c,
        speech: speech_c,
        shared,
        fed: 0,
        digits: None,
    };
    (media, bridge)
}

/// Twilio-style ids: two letters and 32 hex digits.
fn sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// The next SIP INFO digit; never, once there are no more.
async fn recv_digit(rx: &mut Option<mpsc::UnboundedReceiver<Note>>) -> Option<Note> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// How a bridge ended.
enum End {
    /// The call's media ended first: `stop` was sent.
    MediaDone,
    /// The agent could not be reached.
    Unreachable(String),
    /// The agent closed the socket or it broke.
    Closed(String),
}

async fn run(label: u64, rate: u32, info: CallInfo, cfg: AgentConfig, mut b: BridgeEnd) {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let end = match tokio::time::timeout(CONNECT_TIMEOUT, connect(&cfg.url)).await {
        Err(_) => End::Unreachable(format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())),
        Ok(Err(e)) => End::Unreachable(e),
        Ok(Ok(ws)) => {
            tracing::info!(call = label, url = %shown(&cfg.url), "agent connected");
            b.shared.speech_events.store(wants_speech_events(&cfg.url), Ordering::Release);
            Session::new(label, rate, info, cfg.format).run(ws, &mut b).await
        }
    };
    let (what, why) = match end {
        End::MediaDone => return,
        End::Unreachable(why) => ("unreachable", why),
        End::Closed(why) => ("closed", why),
    };
    if b.shared.media_done.load(Ordering::Acquire) {
        return;
    }
    let url = shown(&cfg.url);
    let say = |line: String| {
        tracing::warn!(call = label, "{line}");
        if cfg.print {
            eprintln!("call: {line}");
        }
    };
    match &cfg.fallback {
        None => {
            say(format!("agent {url} {what} ({why}): hanging up"));
            cfg.hangups.request(label, format!("agent {what}"));
        }
        Some(fb) => {
            say(format!("agent {url} {what} ({why}): playing the fallback {}", fb.path.display()));
            play_fallback(&mut b, Player::new(fb.at(rate)), rate).await;
            if !b.shared.media_done.load(Ordering::Acquire) {
                tracing::info!(call = label, "fallback played: hanging up");
                cfg.hangups.request(label, format!("agent {what}, fallback played"));
            }
        }
    }
}

/// The TLS settings for `wss://` agents: `None` for the default (Mozilla's roots, from
/// webpki-roots), else those roots and the certificates in the PEM file named by
/// `DIALTONE_AGENT_CA` (a private CA). Read once.
fn tls_config() -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    static TLS: std::sync::OnceLock<Result<Option<Arc<rustls::ClientConfig>>, String>> = std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        use rustls_pki_types::pem::PemObject as _;
        let Some(path) = std::env::var_os("DIALTONE_AGENT_CA").filter(|p| !p.is_empty()) else { return Ok(None) };
        let what =
            |e: &dyn std::fmt::Display| format!("DIALTONE_AGENT_CA {}: {e}", std::path::Path::new(&path).display());
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(&path).map_err(|e| what(&e))? {
            roots.add(cert.map_err(|e| what(&e))?).map_err(|e| what(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(what(&"no certificate in the file"));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| what(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    })
    .clone()
}

/// Checks the agent settings of the environment that are read later (`DIALTONE_AGENT_CA`),
/// so a bad one stops the command at startup.
pub fn check_env() -> anyhow::Result<()> {
    tls_config().map(|_| ()).map_err(|e| anyhow::anyhow!(e))
}

/// The writer's queue: messages, each with when its audio was heard (ns since [`epoch`],
/// 0 for events).
type Out = mpsc::Sender<(Message, u64)>;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to the agent: TCP with Nagle off and a small send buffer (so audio an agent
/// does not read waits in our bounded queue, where it is dropped and counted, rather than
/// for seconds in the kernel), then TLS for `wss://`, then the WebSocket handshake.
async fn connect(url: &str) -> Result<Ws, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let req = url.into_client_request().map_err(|e| e.to_string())?;
    let uri = req.uri();
    let host = uri.host().ok_or("no host in the URL")?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
    let mut last = String::from("no address");
    for addr in tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| e.to_string())? {
        let sock = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(|e| e.to_string())?;
        let _ = sock.set_send_buffer_size(SEND_BUFFER);
        match sock.connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let connector = tls_config()?.map(tokio_tungstenite::Connector::Rustls);
                let (ws, _) = tokio_tungstenite::client_async_tls_with_config(req, stream, None, connector)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(ws);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Feeds the fallback prompt into the playout ring at its pace, until it has played.
async fn play_fallback(b: &mut BridgeEnd, mut player: Player, rate: u32) {
    let mut frame = vec![0i16; (rate / 50) as usize];
    // Whatever the agent left queued is dropped first.
    b.shared.clear_to.store(b.fed, Ordering::Release);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if b.shared.media_done.load(Ordering::Acquire) {
            return;
        }
        let played = b.shared.played.load(Ordering::Acquire).max(b.shared.clear_to.load(Ordering::Acquire));
        while !player.finished() && b.from_agent.vacant_len() >= frame.len() && b.fed < played + 3 * frame.len() as u64
        {
            player.fill(&mut frame);
            b.fed += b.from_agent.push_slice(&frame) as u64;
        }
        if player.finished() && b.shared.played.load(Ordering::Acquire) >= b.fed {
            return;
        }
    }
}

/// One WebSocket session with the agent.
struct Session {
    label: u64,
    rate: u32,
    format: AgentFormat,
    info: CallInfo,
    stream_sid: String,
    call_sid: String,
    account_sid: String,
    seq: u64,
    chunk: u64,
    /// The agent's audio at the call's rate, waiting for room in the playout ring.
    queue: VecDeque<i16>,
    /// Marks waiting for the audio before them: (name, sample count at which it is played).
    marks: VecDeque<(String, u64)>,
    up: Resampler,
    down: Resampler,
    /// Caller audio at the wire rate not yet sent (less than one message).
    wire: Vec<i16>,
    malformed: u64,
    queue_drops: u64,
    write_drops: u64,
}

impl Session {
    fn new(label: u64, rate: u32, info: CallInfo, format: AgentFormat) -> Session {
        let conv = |from, to| Resampler::new(from, to).expect("8 and 16 kHz are supported rates");
        // The API call's own sid, which the Twilio-compatible call update takes back.
        let call_sid = dialtone_api::twilio::call_sid(&info.call_id).unwrap_or_else(|| sid("CA"));
        Session {
            label,
            rate,
            format,
            info,
            stream_sid: sid("MZ"),
            call_sid,
            account_sid: format!("AC{:032x}", 0),
            seq: 0,
            chunk: 0,
            queue: VecDeque::new(),
            marks: VecDeque::new(),
            up: conv(format.rate(), rate),
            down: conv(rate, format.rate()),
            wire: Vec::with_capacity(2 * format.frame()),
            malformed: 0,
            queue_drops: 0,
            write_drops: 0,
        }
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    fn start_message(&mut self) -> Value {
        let mut params = serde_json::Map::new();
        for (k, v) in &self.info.custom {
            params.insert(k.clone(), json!(v));
        }
        params.insert("call_id".into(), json!(self.info.call_id));
        for (k, v) in [("contact_id", &self.info.contact_id), ("from", &self.info.from), ("to", &self.info.to)] {
            if let Some(v) = v {
                params.insert(k.into(), json!(v));
            }
        }
        json!({
            "event": "start",
            "sequenceNumber": self.next_seq(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": params,
                "mediaFormat": match self.format {
                    AgentFormat::Twilio => json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}),
                    // Binary frames of 16-bit little-endian PCM (ffmpeg's name for it).
                    AgentFormat::L16 => json!({"encoding": "pcm_s16le", "sampleRate": 16000, "channels": 1}),
                },
            },
            "streamSid": self.stream_sid,
        })
    }

    async fn run(mut self, ws: Ws, b: &mut BridgeEnd) -> End {
        let (mut sink, mut stream) = ws.split();
        let (wtx, mut wrx) = mpsc::channel::<(Message, u64)>(WRITE_QUEUE);
        // The writer: the only place that waits on the agent reading.
        let writer = tokio::spawn(async move {
            while let Some((m, heard)) = wrx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
                if heard != 0 {
                    let now = nanos_since_epoch(std::time::Instant::now());
                    TO_AGENT.record(Duration::from_nanos(now.saturating_sub(heard)));
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        });
        self.send(&wtx, json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}));
        let start = self.start_message();
        self.send(&wtx, start);
        let frame = (self.rate / 50) as usize;
        let mut heard = vec![0i16; frame];
        let mut down = vec![0i16; self.down.max_output_len(frame)];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = b.shared.clone();
        let mut digits = b.digits.take();
        let end = loop {
            tokio::select! {
                m = stream.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let stamp = self.arrival(b);
                        self.on_text(t.as_str(), b, &wtx);
                        let stamped = self.stamp_arrival(b, stamp);
                        self.feed(b);
                        ready(stamped);
                    }
                    Some(Ok(Message::Binary(data))) if self.format == AgentFormat::L16 => {
                        let stamp = self.arrival(b);
                        self.enqueue_l16(&data);
                        let stamped = self.stamp_arrival(b, stamp);
                        self.feed(b);
                        ready(stamped);
                    }
                    Some(Ok(Message::Binary(_))) => self.bad("a binary frame (the Twilio protocol is JSON text)"),
                    Some(Ok(Message::Close(c))) => {
                        break End::Closed(c.map_or("close frame".into(), |c| format!("close {} {}", c.code, c.reason)))
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break End::Closed(e.to_string()),
                    None => break End::Closed("connection closed".into()),
                },
                // The media task heard a frame: send it now rather than at our next tick.
                Some(note) = recv_digit(&mut digits) => {
                    let m = match note {
                        Note::Digit(d) => self.dtmf_message(d),
                        Note::AnsweredBy(who, ms) => json!({
                            "event": "answered_by",
                            "sequenceNumber": self.next_seq(),
                            "streamSid": self.stream_sid,
                            "answeredBy": who,
                            "decisionMs": ms,
                        }),
                    };
                    self.send(&wtx, m);
                }
                _ = shared.heard() => self.pump(b, &wtx, &mut heard, &mut down),
                _ = tick.tick() => {
                    if b.shared.media_done.load(Ordering::Acquire) {
                        let stop = json!({
                            "event": "stop",
                            "sequenceNumber": self.next_seq(),
                            "streamSid": self.stream_sid,
                            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                        });
                        // The last word waits for room (bounded), where media would be dropped.
                        let _ = tokio::time::timeout(Duration::from_secs(1), wtx.send((Message::text(stop.to_string()), 0))).await;
                        break End::MediaDone;
                    }
                    self.pump(b, &wtx, &mut heard, &mut down);
                    self.feed(b);
                    self.echo_played_marks(b, &wtx);
                }
            }
        };
        drop(wtx);
        // The writer sends what is queued (the `stop`), then closes; bounded.
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        tracing::info!(
            call = self.label,
            sent = self.chunk,
            malformed = self.malformed,
            queue_drops = self.queue_drops,
            write_drops = self.write_drops,
            "agent bridge ended"
        );
        end
    }

    /// Before an agent message is handled: if the playout is idle, when the message came
    /// and where its audio will start.
    fn arrival(&self, b: &BridgeEnd) -> Option<(u64, u64)> {
        let played = b.shared.played.load(Ordering::Acquire).max(b.shared.clear_to.load(Ordering::Acquire));
        (self.queue.is_empty() && b.fed <= played).then(|| (nanos_since_epoch(std::time::Instant::now()), b.fed))
    }

    /// After it: if it queued audio on the idle playout, the media task times its playing;
    /// returns when the message came, then.
    fn stamp_arrival(&self, b: &BridgeEnd, stamp: Option<(u64, u64)>) -> Option<u64> {
        let (at, pos) = stamp?;
        if self.queue.is_empty() {
            return None;
        }
        b.shared.arrived_pos.store(pos, Ordering::Release);
        b.shared.arrived_at.store(at, Ordering::Release);
        Some(at)
    }

    /// Sends what the caller said since the last turn (`media`) and the digits (`dtmf`).
    fn pump(&mut self, b: &mut BridgeEnd, wtx: &Out, heard: &mut [i16], down: &mut [i16]) {
        while b.to_agent.occupied_len() >= heard.len() {
            b.to_agent.pop_slice(heard);
            let stamp = b.stamps.try_pop().unwrap_or(0);
            let n = self.down.process(heard, down).unwrap_or(0);
            self.wire.extend_from_slice(&down[..n]);
            while self.wire.len() >= self.format.frame() {
                let m = self.media_message();
                self.send_stamped(wtx, m, stamp);
            }
        }
        while let Some(d) = b.dtmf.try_pop() {
            let m = self.dtmf_message(d);
            self.send(wtx, m);
        }
        while let Some(n) = b.speech.try_pop() {
            let m = json!({
                "event": if n.started { "speech_started" } else { "speech_stopped" },
                "sequenceNumber": self.next_seq(),
                "streamSid": self.stream_sid,
                "speech": {"track": if n.caller { "inbound" } else { "outbound" }, "timestamp": n.at_ms.to_string()},
            });
            self.send(wtx, m);
        }
    }

    fn dtmf_message(&mut self, digit: char) -> Value {
        json!({
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": self.next_seq(),
            "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
        })
    }

    /// The next 20 ms of caller audio: a `media` message (160 bytes of µ-law), or in the
    /// binary mode a binary frame of 640 bytes.
    fn media_message(&mut self) -> Message {
        let n = self.format.frame();
        if self.format == AgentFormat::L16 {
            let bytes: Vec<u8> = self.wire.drain(..n).flat_map(i16::to_le_bytes).collect();
            self.chunk += 1;
            return Message::binary(bytes);
        }
        let mut ulaw = [0u8; 160];
        encode_ulaw(&self.wire[..n], &mut ulaw);
        self.wire.drain(..n);
        self.chunk += 1;
        // Milliseconds of the stream's audio before this chunk.
        let timestamp = (self.chunk - 1) * 20;
        let m = json!({
            "event": "media",
            "sequenceNumber": self.next_seq(),
            "media": {
                "track": "inbound",
                "chunk": self.chunk.to_string(),
                "timestamp": timestamp.to_string(),
                "payload": base64::engine::general_purpose::STANDARD.encode(ulaw),
            },
            "streamSid": self.stream_sid,
        });
        Message::text(m.to_string())
    }

    /// Queues an event for the writer.
    fn send(&mut self, wtx: &Out, v: Value) {
        self.send_stamped(wtx, Message::text(v.to_string()), 0);
    }

    /// Queues a message for the writer (`heard`: when its audio was heard, for
    /// [`TO_AGENT`]); a full queue (an agent not reading) drops it.
    fn send_stamped(&mut self, wtx: &Out, m: Message, heard: u64) {
        if wtx.try_send((m, heard)).is_err() {
            self.write_drops += 1;
            if self.write_drops.is_power_of_two() {
                tracing::warn!(call = self.label, dropped = self.write_drops, "agent is not reading: messages dropped");
            }
        }
    }

    fn bad(&mut self, what: &str) {
        self.malformed += 1;
        // The first ten, then at powers of two: an agent sending nothing else cannot flood the log.
        if self.malformed <= 10 || self.malformed.is_power_of_two() {
            tracing::warn!(call = self.label, malformed = self.malformed, "agent sent {what}: ignored");
        }
    }

    fn on_text(&mut self, text: &str, b: &mut BridgeEnd, wtx: &Out) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return self.bad("a message that is not JSON");
        };
        match v.get("event").and_then(Value::as_str) {
            Some("media") => {
                let Some(payload) = v.pointer("/media/payload").and_then(Value::as_str) else {
                    return self.bad("media without media.payload");
                };
                let Ok(ulaw) = base64::engine::general_purpose::STANDARD.decode(payload) else {
                    return self.bad("media whose payload is not base64");
                };
                self.enqueue(&ulaw);
            }
            Some("mark") => {
                let Some(name) = v.pointer("/mark/name").and_then(Value::as_str) else {
                    return self.bad("mark without mark.name");
                };
                let at = b.fed + self.queue.len() as u64;
                self.marks.push_back((name.to_string(), at));
                self.echo_played_marks(b, wtx);
            }
            Some("clear") => {
                // Barge-in: what is queued goes now, what is in the ring at the next tick.
                self.queue.clear();
                b.shared.pending.store(0, Ordering::Release);
                b.shared.clear_to.store(b.fed, Ordering::Release);
                b.shared.clears.fetch_add(1, Ordering::Release);
                while let Some((name, _)) = self.marks.pop_front() {
                    self.send_mark(&name, wtx);
                }
                tracing::debug!(call = self.label, "agent cleared its audio");
            }
            Some(other) => {
                let other = other.chars().take(32).collect::<String>();
                self.bad(&format!("an unknown event {other:?}"))
            }
            None => self.bad("a message without an event"),
        }
    }

    /// Decodes µ-law 8 kHz and queues it.
    fn enqueue(&mut self, ulaw: &[u8]) {
        if self.format != AgentFormat::Twilio {
            return self.bad("a JSON media message on a binary (l16-16k) stream");
        }
        let mut pcm = [0i16; 160];
        for chunk in ulaw.chunks(160) {
            let n = decode_ulaw(chunk, &mut pcm);
            self.enqueue_pcm(&pcm[..n]);
        }
    }

    /// Queues a binary frame of PCM16LE 16 kHz (an odd last byte is dropped and counted).
    fn enqueue_l16(&mut self, data: &[u8]) {
        if data.len() % 2 == 1 {
            self.bad("a binary frame of an odd number of bytes");
        }
        let mut pcm = [0i16; 320];
        for chunk in data.chunks(640) {
            let n = chunk.len() / 2;
            for (s, b) in pcm.iter_mut().zip(chunk.chunks_exact(2)) {
                *s = i16::from_le_bytes([b[0], b[1]]);
            }
            self.enqueue_pcm(&pcm[..n]);
        }
    }

    /// Converts wire-rate audio to the call's rate and queues it.
    fn enqueue_pcm(&mut self, pcm: &[i16]) {
        let max = self.rate as usize * QUEUE_MAX_MS / 1000;
        let mut out = [0i16; 640];
        let m = self.up.process(pcm, &mut out).unwrap_or(0);
        if self.queue.len() + m > max {
            self.queue_drops += m as u64;
            return;
        }
        self.queue.extend(&out[..m]);
    }

    /// Moves queued audio into the playout ring, up to [`FEED_AHEAD_MS`] ahead of playout.
    fn feed(&mut self, b: &mut BridgeEnd) {
        let ahead = (self.rate as usize * FEED_AHEAD_MS / 1000) as u64;
        let played = b.shared.played.load(Ordering::Acquire).max(b.shared.clear_to.load(Ordering::Acquire));
        let room = (played + ahead).saturating_sub(b.fed).min(b.from_agent.vacant_len() as u64) as usize;
        let n = room.min(self.queue.len());
        if n == 0 {
            b.shared.pending.store(self.queue.len() as u64, Ordering::Release);
            return;
        }
        let (a, c) = self.queue.as_slices();
        let first = a.len().min(n);
        let mut pushed = b.from_agent.push_slice(&a[..first]);
        if n > first {
            pushed += b.from_agent.push_slice(&c[..n - first]);
        }
        self.queue.drain(..pushed);
        b.fed += pushed as u64;
        b.shared.pending.store(self.queue.len() as u64, Ordering::Release);
    }

    /// Sends back the marks whose audio has been played.
    fn echo_played_marks(&mut self, b: &BridgeEnd, wtx: &Out) {
        let played = b.shared.played.load(Ordering::Acquire);
        while self.marks.front().is_some_and(|(_, at)| *at <= played) {
            if let Some((name, _)) = self.marks.pop_front() {
                self.send_mark(&name, wtx);
            }
        }
    }

    fn send_mark(&mut self, name: &str, wtx: &Out) {
        let m = json!({
            "event": "mark",
            "sequenceNumber": self.next_seq(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        });
        self.send(wtx, m);
    }
}

#[doc(hidden)]
pub mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(rate: u32) -> (MediaEnd, BridgeEnd) {
        halves(rate, 1000, 400)
    }

    fn media(payload: &[u8]) -> String {
        json!({"event": "media", "media": {"payload": base64::engine::general_purpose::STANDARD.encode(payload)}})
            .to_string()
    }

    /// Drains the writer queue into parsed messages.
    fn sent(rx: &mut mpsc::Receiver<(Message, u64)>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(serde_json::from_str(m.0.to_text().unwrap()).unwrap());
        }
        out
    }

    #[test]
    fn mark_waits_for_the_audio_before_it_and_clear_returns_marks() {
        let (mut m, mut b) = pair(8000);
        let mut s = Session::new(1, 8000, CallInfo::default(), AgentFormat::Twilio);
        let (tx, mut rx) = mpsc::channel(64);
        // 1 s of audio in one message of any size, then a mark.
        s.on_text(&media(&[0x10; 8000]), &mut b, &tx);
        s.on_text(r#"{"event":"mark","streamSid":"x","mark":{"name":"m1"}}"#, &mut b, &tx);
        let mut out = vec![0i16; 160];
        for _ in 0..49 {
            s.feed(&mut b);
            m.play(&mut out);
            assert!(out.iter().any(|&x| x != 0));
            s.echo_played_marks(&b, &tx);
        }
        assert!(sent(&mut rx).is_empty(), "mark echoed before its audio played");
        s.feed(&mut b);
        m.play(&mut out);
        s.echo_played_marks(&b, &tx);
        let back = sent(&mut rx);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0]["event"], "mark");
        assert_eq!(back[0]["mark"]["name"], "m1");
        // Now 5 s and a mark, then clear after 10 frames: the mark comes back at once and
        // the next frame is silence.
        s.on_text(&media(&[0x10; 40_000]), &mut b, &tx);
        s.on_text(r#"{"event":"mark","mark":{"name":"m2"}}"#, &mut b, &tx);
        for _ in 0..10 {
            s.feed(&mut b);
            m.play(&mut out);
        }
        s.on_text(r#"{"event":"clear","streamSid":"x"}"#, &mut b, &tx);
        let back = sent(&mut rx);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0]["mark"]["name"], "m2");
        s.feed(&mut b);
        m.play(&mut out);
        assert!(out.iter().all(|&x| x == 0), "audio after clear");
        // Audio after the clear plays.
        s.on_text(&media(&[0x10; 160]), &mut b, &tx);
        s.feed(&mut b);
        m.play(&mut out);
        assert!(out.iter().any(|&x| x != 0));
    }

    #[test]
    fn malformed_messages_are_counted_not_fatal() {
        let (_m, mut b) = pair(8000);
        let mut s = Session::new(1, 8000, CallInfo::default(), AgentFormat::Twilio);
        let (tx, _rx) = mpsc::channel(8);
        for bad in [
            "not json",
            "{}",
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"payload":"***"}}"#,
            r#"{"event":"x"}"#,
            r#"{"event":"mark"}"#,
        ] {
            s.on_text(bad, &mut b, &tx);
        }
        assert_eq!(s.malformed, 6);
    }

    #[test]
    fn sixteen_khz_calls_are_converted_both_ways() {
        let (mut m, mut b) = pair(16_000);
        let mut s = Session::new(1, 16_000, CallInfo::default(), AgentFormat::Twilio);
        let (tx, _rx) = mpsc::channel(8);
        s.on_text(&media(&[0x10; 160]), &mut b, &tx);
        s.feed(&mut b);
        // 160 µ-law samples at 8 kHz are 320 at 16 kHz (less the filter's start-up).
        assert!(b.from_agent.occupied_len() > 300, "{}", b.from_agent.occupied_len());
        let mut out = vec![0i16; 320];
        m.play(&mut out);
        m.hear(&out);
        assert_eq!(b.to_agent.occupied_len(), 320);
    }

    #[test]
    fn urls_are_logged_without_secrets() {
        assert_eq!(
            shown("wss://user:pw@agent.example.com:8443/media?token=s3cret"),
            "wss://agent.example.com:8443/media"
        );
        assert_eq!(shown("ws://127.0.0.1:9000"), "ws://127.0.0.1:9000");
        assert_eq!(shown("ws://h/p#frag"), "ws://h/p");
    }

    #[test]
    fn an_agent_not_reading_costs_dropped_messages_not_waits() {
        let mut s = Session::new(1, 8000, CallInfo::default(), AgentFormat::Twilio);
        let (tx, _rx) = mpsc::channel(2);
        for _ in 0..5 {
            s.send(&tx, json!({"event": "media"}));
        }
        assert_eq!(s.write_drops, 3);
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let (mut m, _b) = pair(8000);
        let frame = [1i16; 160];
        for _ in 0..60 {
            m.hear(&frame);
        }
        // 8000 samples of room: 50 frames fit.
        assert_eq!(m.dropped(), 10);
    }

    #[test]
    fn speech_events_are_asked_for_in_the_query() {
        assert!(wants_speech_events("ws://bot/stream?dialtone_events=speech"));
        assert!(wants_speech_events("wss://bot/?a=1&dialtone_events=marks,speech#x"));
        assert!(!wants_speech_events("ws://bot/stream"));
        assert!(!wants_speech_events("ws://bot/stream?dialtone_events=speeches"));
        assert!(!wants_speech_events("ws://bot/speech?events=speech"));
    }
}
