//! What `serve` does for the engine's [`Action`]s: binds ports, runs and steers each
//! call's media task (with its agent bridge, prompt or echo), keeps changes in the store,
//! and routes command replies.

use super::inbox::{Inbox, Input};
use crate::agent::{CallInfo, Serving};
use crate::engine::{Action, CallId, Event, MediaCommand, MediaEvent, MediaStart, Persist, RecordAs, SourceSpec};
use crate::media_io::{self, MediaOptions, MediaTask, Source, Totals};
use crate::now_seed;
use dialtone_api::http::Refusal;
use dialtone_api::store::{Op, Writer};
use dialtone_media::player::Prompt;
use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The media and store side of `serve`.
pub struct Effects {
    /// Where RTP sockets are bound (the SIP listen address).
    pub bind_ip: IpAddr,
    /// `DATA_DIR/recordings`.
    pub recordings: PathBuf,
    /// Ports bound for calls whose media has not started.
    sockets: HashMap<u16, (StdUdpSocket, StdUdpSocket)>,
    /// Each call's media task and agent bridge.
    media: HashMap<CallId, (MediaTask, Option<Arc<crate::agent::AgentPort>>)>,
    /// Commands waiting for their reply.
    pub replies: HashMap<u64, oneshot::Sender<Result<(), Refusal>>>,
    /// The `play:` prompt at 8 and 16 kHz.
    pub prompts: Option<(Arc<Prompt>, Arc<Prompt>)>,
    /// Agent bridges.
    pub bridges: Serving,
    /// Status changes, digits and recordings go to the store through this thread.
    pub writer: Writer,
    /// Media counters of all calls.
    pub totals: Arc<Totals>,
    /// Where media reports go.
    pub inbox: Inbox,
    /// Numbers' prompts, loaded (by name and rate).
    loaded: HashMap<(String, u32), Arc<Prompt>>,
    /// Each running call's audio rate (a bridge resamples between two).
    rates: HashMap<CallId, u32>,
    /// The conferences' rooms, by conference id.
    rooms: HashMap<String, crate::conference::Room>,
    /// The conference each seated call is in.
    seated: HashMap<CallId, String>,
    /// Voice agents seated in conferences, by member id: their room label, conference,
    /// and what ends their task.
    agents: HashMap<String, (u64, String, oneshot::Sender<()>)>,
    /// The next agent member's room label (apart from every call's).
    next_agent: u64,
    /// Voice-agent calls' latest turn figures, by API id, until the call's final status.
    speech: HashMap<String, Arc<std::sync::Mutex<Option<serde_json::Value>>>>,
    /// Running calls' SIP messages and quality figures, shared with the API.
    pub live: Arc<dialtone_api::live::Live>,
    /// Ended calls whose SIP messages and quality are about to be stored.
    ending: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Shared with the API: set when the engine starts draining.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Effects {
    /// Effects with no calls.
    pub fn new(bind_ip: IpAddr, recordings: PathBuf, bridges: Serving, writer: Writer, inbox: Inbox) -> Effects {
        Effects {
            bind_ip,
            recordings,
            sockets: HashMap::new(),
            media: HashMap::new(),
            replies: HashMap::new(),
            prompts: None,
            bridges,
            writer,
            totals: Arc::default(),
            inbox,
            loaded: HashMap::new(),
            rates: HashMap::new(),
            rooms: HashMap::new(),
            seated: HashMap::new(),
            agents: HashMap::new(),
            next_agent: 1 << 62,
            speech: HashMap::new(),
            live: Arc::default(),
            draining: Arc::default(),
            ending: Arc::default(),
        }
    }

    /// Carries out `action`; binding a port answers with the event to feed back at once.
    pub fn carry(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::OpenPort(port) => match media_io::bind_rtp(self.bind_ip, port) {
                Ok(socks) => {
                    self.sockets.insert(port, socks);
                    return Some(Event::PortOpened(port));
                }
                Err(e) => {
                    tracing::debug!(port, error = %e, "RTP port busy");
                    return Some(Event::PortBusy(port));
                }
            },
            Action::StartMedia(m) => self.start(*m),
            Action::Media(call, cmd) => self.steer(call, cmd),
            Action::EndMedia(call, port) => {
                self.media.remove(&call);
                self.rates.remove(&call);
                self.seated.remove(&call);
                if let Some(port) = port {
                    self.sockets.remove(&port);
                }
            }
            Action::ClosePort(port) => {
                self.sockets.remove(&port);
            }
            Action::SipDialog(id, sip) => self.live.claim(&sip, &id),
            Action::Draining => self.draining.store(true, std::sync::atomic::Ordering::Relaxed),
            Action::AgentAnsweredBy(call, who, after_ms) => {
                if let Some((_, Some(agent))) = self.media.get(&call) {
                    agent.answered_by(&who, after_ms);
                }
            }
            Action::AgentDtmf(call, digit) => {
                if let Some((_, Some(agent))) = self.media.get(&call) {
                    agent.digit(digit);
                }
            }
            Action::Persist(p) => {
                // A call's end: its turns so far go first, so `call.completed` carries them.
                if let Persist::Status { id, to, .. } = &p {
                    let snapshot = to.is_final().then(|| self.speech.remove(id)).flatten();
                    if let Some(turns) = snapshot.and_then(|s| s.lock().ok().and_then(|g| g.clone())) {
                        self.writer.send(Op::Turns { id: id.clone(), turns });
                    }
                    if to.is_final() {
                        self.keep_detail(id.clone());
                    }
                }
                self.writer.send(op(p, crate::now_ms()))
            }
            Action::Reply(id, r) => {
                if let Some(tx) = self.replies.remove(&id) {
                    let _ = tx.send(r);
                }
            }
            // `serve` dials nothing itself.
            Action::Dialed(_) | Action::DialEnded(..) | Action::DialNote(..) => {}
            Action::Bridge(a, b) => {
                let rate = |m: &HashMap<CallId, u32>, c: CallId| m.get(&c).copied();
                if let (Some(ra), Some(rb)) = (rate(&self.rates, a), rate(&self.rates, b)) {
                    let (ea, eb) = crate::bridge::pair(ra, rb);
                    if let (Some((ta, _)), Some((tb, _))) = (self.media.get(&a), self.media.get(&b)) {
                        ta.bridge(Some(Box::new(ea)));
                        tb.bridge(Some(Box::new(eb)));
                    }
                }
            }
            Action::Unbridge(call) => {
                self.seated.remove(&call);
                if let Some((task, _)) = self.media.get(&call) {
                    task.bridge(None);
                }
            }
            Action::Join(call, conf, muted) => {
                // Rooms nobody sits in any more go (their last seat has been dropped).
                self.rooms.retain(|_, room| room.in_use());
                if let (Some((task, _)), Some(rate)) = (self.media.get(&call), self.rates.get(&call)) {
                    let room = self.rooms.entry(conf.clone()).or_default();
                    task.bridge(Some(Box::new(room.seat(call.0, *rate, muted))));
                    self.seated.insert(call, conf);
                }
            }
            Action::Announce(call, prompt) => {
                let rate = self.rates.get(&call).copied();
                let player = rate.and_then(|rate| self.prompt(&prompt, rate)).map(dialtone_media::player::Player::new);
                if let (Some((task, _)), Some(player)) = (self.media.get(&call), player) {
                    task.bridge(Some(Box::new(player)));
                } else {
                    // Nothing to play: the call goes on as if it had been played.
                    self.inbox.send(Input::Media { call, api_id: None, event: MediaEvent::SourceFinished });
                }
            }
            Action::ConferenceAgent(member) => self.conference_agent(member),
            Action::Mute(call, muted) => {
                if let Some(room) = self.seated.get(&call).and_then(|conf| self.rooms.get(conf)) {
                    room.set_muted(call.0, muted);
                }
            }
            Action::Ask(ask) => {
                // The call rings meanwhile; the answer (or why none) goes back in.
                let inbox = self.inbox.clone();
                tokio::spawn(async move {
                    let answer = dialtone_api::webhooks::ask(&ask.url, &ask.secret, ask.body, ask.timeout).await;
                    inbox.send(Input::Decided(ask.call, answer));
                });
            }
        }
        None
    }

    /// A voice agent joins a conference's room (a task of its own ticks it every 20 ms:
    /// it hears the room's mix and the room hears it), is muted there, or leaves.
    fn conference_agent(&mut self, member: dialtone_api::http::AgentMember) {
        use dialtone_api::http::AgentMember;
        match member {
            AgentMember::Join { conference, id, url, format, muted } => {
                self.agents.remove(&id);
                self.rooms.retain(|_, room| room.in_use());
                self.next_agent += 1;
                let label = self.next_agent;
                let rate = crate::conference::ROOM_RATE;
                let info = CallInfo { call_id: id.clone(), contact_id: None, from: None, to: None, custom: Vec::new() };
                let Some(end) =
                    self.bridges.start(label, rate, Some(&url), format.as_deref(), info).and_then(|p| p.take())
                else {
                    return tracing::warn!(agent = %id, "cannot start the conference's agent");
                };
                let room = self.rooms.entry(conference.clone()).or_default();
                let seat = room.seat(label, rate, muted);
                let (stop, stopped) = oneshot::channel();
                tokio::spawn(crate::conference::run_agent(seat, end, rate, stopped));
                tracing::info!(agent = %id, %conference, "an agent joins the conference");
                self.agents.insert(id, (label, conference, stop));
            }
            AgentMember::Mute { id, muted } => {
                if let Some((label, conf, _)) = self.agents.get(&id) {
                    if let Some(room) = self.rooms.get(conf) {
                        room.set_muted(*label, muted);
                    }
                }
            }
            AgentMember::Leave { id } => {
                // Dropping the sender ends its task: its seat leaves, its bridge says `stop`.
                self.agents.remove(&id);
            }
        }
    }

    /// Stops every call's media (shutting down).
    pub fn stop_all(&mut self) {
        self.media.clear();
        self.sockets.clear();
    }

    /// `DATA_DIR/prompts/<name>` at `rate`, loaded once.
    fn prompt(&mut self, name: &str, rate: u32) -> Option<Arc<Prompt>> {
        if !dialtone_api::routing::is_prompt_name(name) {
            return None;
        }
        let key = (name.to_string(), rate);
        if let Some(p) = self.loaded.get(&key) {
            return Some(p.clone());
        }
        let path = self.recordings.with_file_name("prompts").join(name);
        match Prompt::load(&path, rate) {
            Ok(p) => {
                let p = Arc::new(p);
                if self.loaded.len() >= 64 {
                    self.loaded.clear();
                }
                self.loaded.insert(key, p.clone());
                Some(p)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot play the prompt; the call hears silence");
                None
            }
        }
    }

    fn start(&mut self, m: MediaStart) {
        let Some((rtp, rtcp)) = self.sockets.remove(&m.port) else {
            return tracing::warn!(call = %m.call, port = m.port, "no sockets for the call's media");
        };
        let call = m.call;
        let rate = m.config.codec.audio_rate();
        self.rates.insert(call, rate);
        let mut agent = None;
        let source = match (m.source, &self.prompts) {
            (SourceSpec::Agent(plan), _) => {
                let info = CallInfo {
                    call_id: plan.call_id,
                    contact_id: plan.contact_id,
                    from: plan.from,
                    to: plan.to,
                    custom: plan.custom,
                };
                agent = self.bridges.start(call.0, rate, plan.url.as_deref(), plan.format.as_deref(), info);
                agent.clone().map_or(Source::Silence, Source::Agent)
            }
            (SourceSpec::Prompt, Some((p8, p16))) => Source::Play(if rate == 8000 { p8.clone() } else { p16.clone() }),
            (SourceSpec::Play(name), _) => match self.prompt(&name, rate) {
                Some(p) => Source::Play(p),
                None => Source::Silence,
            },
            (SourceSpec::Echo, _) => Source::Echo,
            _ => Source::Silence,
        };
        let api_id = match &m.record {
            Some(RecordAs::Api(id)) => Some(id.clone()),
            _ => m.api_id.clone(),
        };
        // A voice-agent call's turns are measured (issue 21).
        let speech = match (&agent, &m.api_id) {
            (Some(_), Some(id)) => {
                let shared = Arc::new(std::sync::Mutex::new(None));
                self.speech.insert(id.clone(), shared.clone());
                Some(shared)
            }
            _ => None,
        };
        let quality = m.api_id.as_ref().map(|id| self.live.watch_quality(id));
        let record = m.record.map(|r| self.path(&r, false));
        if let Some(r) = &record {
            tracing::info!(%call, path = %r.display(), "recording");
        }
        let inbox = self.inbox.clone();
        let notice = Arc::new(move |n: media_io::MediaNotice| {
            let event = match n {
                media_io::MediaNotice::Dtmf(d) => MediaEvent::Dtmf(d),
                media_io::MediaNotice::RecordingStarted(p) => {
                    MediaEvent::RecordingStarted(p.to_string_lossy().into_owned())
                }
                media_io::MediaNotice::RecordingDone(p, r) => {
                    MediaEvent::RecordingDone(p.display().to_string(), r.map_err(|e| e.to_string()))
                }
                media_io::MediaNotice::RtpTimeout(d) => MediaEvent::RtpTimeout(d),
                media_io::MediaNotice::SourceFinished => MediaEvent::SourceFinished,
                media_io::MediaNotice::AnsweredBy(who, after_ms) => MediaEvent::AnsweredBy(who.into(), after_ms),
                media_io::MediaNotice::Turns(v) => MediaEvent::Turns(v),
            };
            inbox.send(Input::Media { call, api_id: api_id.clone(), event });
        });
        let opts = MediaOptions {
            label: call.0,
            source,
            record,
            mic: None,
            speaker: None,
            totals: Some(self.totals.clone()),
            print: false,
            notice: Some(notice),
            rtp_timeout: m.rtp_timeout,
            speech,
            quality,
        };
        match media_io::spawn(rtp, rtcp, m.config, opts) {
            Ok(task) => {
                self.media.insert(call, (task, agent));
            }
            Err(e) => tracing::warn!(%call, error = %e, "cannot start the media"),
        }
    }

    /// A call ended: its SIP messages and quality figures go to the store a moment later,
    /// once the last messages (the BYE's 200, the ACK) and the media's last figures are in;
    /// the API shows them live meanwhile.
    fn keep_detail(&self, id: String) {
        if let Ok(mut ending) = self.ending.lock() {
            ending.insert(id.clone());
        }
        let (live, writer, ending) = (self.live.clone(), self.writer.clone(), self.ending.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if ending.lock().is_ok_and(|mut e| e.remove(&id)) {
                store_detail(&live, &writer, id);
            }
        });
    }

    /// At shutdown: every ended call's SIP messages and quality to the store now.
    pub fn keep_details_now(&self) {
        let ids: Vec<String> = self.ending.lock().map(|mut e| e.drain().collect()).unwrap_or_default();
        for id in ids {
            store_detail(&self.live, &self.writer, id);
        }
    }

    fn steer(&mut self, call: CallId, cmd: MediaCommand) {
        let Some((task, _)) = self.media.get(&call) else { return };
        match cmd {
            MediaCommand::Dtmf(digits) => task.send_dtmf(&digits),
            MediaCommand::Update(remote, send) => task.update(remote, send),
            MediaCommand::ExpectRx(on) => task.expect_rx(on),
            MediaCommand::Detect(mode) => task.detect(&mode),
            MediaCommand::Record(None) => task.record(None),
            MediaCommand::Record(Some(r)) => {
                let path = self.path(&r, true);
                if let Some((task, _)) = self.media.get(&call) {
                    task.record(Some(path));
                }
            }
        }
    }

    /// A recording's file; `fresh`: a second recording of the call goes to a new file
    /// (`<id>-2.wav`, …), never over the first.
    fn path(&self, r: &RecordAs, fresh: bool) -> PathBuf {
        let d = &self.recordings;
        match r {
            RecordAs::Api(id) if fresh => (1..)
                .map(|n| d.join(if n == 1 { format!("{id}.wav") } else { format!("{id}-{n}.wav") }))
                .find(|p| !p.exists())
                .unwrap_or_else(|| d.join(format!("{id}.wav"))),
            RecordAs::Api(id) => d.join(format!("{id}.wav")),
            RecordAs::Anonymous(n) => d.join(format!("{}-{n}.wav", now_seed() / 1_000_000)),
            RecordAs::Path(p) => p.clone(),
        }
    }
}

/// Call `id`'s SIP messages and quality, taken from `live`, to the store.
fn store_detail(live: &dialtone_api::live::Live, writer: &Writer, id: String) {
    let (sip, quality) = (live.take_ladder(&id), live.take_quality(&id));
    if sip.is_some() || quality.is_some() {
        writer.send(Op::Detail { id, sip, quality });
    }
}

/// The store's operation for `p`, stamped `at` (ms).
fn op(p: Persist, at: i64) -> Op {
    match p {
        Persist::Inbound { id, caller, called, org, referred_by, sip_headers, asserted_identity, number_id } => {
            Op::Inbound(dialtone_api::store::InboundCall {
                id,
                caller,
                called,
                at,
                organization_id: org,
                referred_by,
                sip_headers,
                asserted_identity,
                number_id,
            })
        }
        Persist::Status { id, to, sip_status, reason } => Op::Status { id, to, sip_status, reason, at },
        Persist::Dtmf { id, digit } => Op::Dtmf { id, digit, at },
        Persist::Recording { id, state, path } => Op::Recording { id, state, path, at },
        Persist::ActionFailed { id, action, detail } => Op::ActionFailed { id, action, detail, at },
        Persist::Event { id, kind, detail } => Op::Event { id, kind, detail, at },
        Persist::AnsweredBy { id, answered_by, after_ms } => Op::AnsweredBy { id, answered_by, after_ms, at },
        Persist::Turns { id, turns } => Op::Turns { id, turns },
    }
}
