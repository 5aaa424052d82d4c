//! `dialtone test <target> --script <file.toml>`: scripted test callers for voice bots
//! (issue 21). Each call plays the script's caller turns and measures the bot's replies
//! ([`caller::Caller`], sans-IO); this module drives the calls: straight into the agent
//! bridge for a `ws://`/`wss://` target (no SIP), or through `dialtone call`'s machinery
//! ([`crate::call::run_driven`]) for a SIP URI or number. `--calls N --rate R` runs N calls
//! on one runtime, a progress line on stderr, then the summary table on stdout and the
//! `--json`/`--junit` reports.

pub mod caller;
pub mod report;
pub mod script;

use crate::agent::{AgentConfig, AgentFormat, CallInfo, Hangups};
use crate::config::{CallArgs, TestArgs};
use crate::taps::Tap;
use anyhow::{bail, Context};
use caller::Caller;
use report::CallReport;
use script::Script;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The calls' progress, for the line on stderr.
#[derive(Default)]
struct Progress {
    started: AtomicUsize,
    answered: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    fn line(&self, total: usize) -> String {
        let g = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        format!(
            "test: {}/{total} started, {} answered, {} done, {} failed",
            g(&self.started),
            g(&self.answered),
            g(&self.done),
            g(&self.failed)
        )
    }
}

/// A caller shared between the media task that runs it and the test that reads its report.
struct Shared(Arc<Mutex<Caller>>);

impl Tap for Shared {
    fn fill(&mut self, _heard: &[i16], out: &mut [i16]) {
        if let Ok(mut c) = self.0.lock() {
            c.fill(out);
        }
    }

    fn tick(&mut self, heard: &[i16], _said: &[i16]) {
        if let Ok(mut c) = self.0.lock() {
            c.tick(heard);
        }
    }

    fn dtmf(&mut self, digit: char) {
        if let Ok(mut c) = self.0.lock() {
            c.heard_digit(digit);
        }
    }

    fn finished(&self) -> bool {
        self.0.lock().map(|c| c.done()).unwrap_or(true)
    }

    fn take_dtmf(&mut self) -> Option<char> {
        self.0.lock().ok().and_then(|mut c| c.take_digit())
    }
}

/// Whether `target` is a voice agent's WebSocket URL.
fn is_ws(target: &str) -> bool {
    target.starts_with("ws://") || target.starts_with("wss://")
}

/// Runs the test; `Ok(true)` when every expectation held on every call.
pub async fn run(args: TestArgs) -> anyhow::Result<bool> {
    if args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of calls a second, not {}", args.rate);
    }
    let script = Arc::new(Script::load(&args.script)?);
    let record = args.record.clone().or_else(|| script.record.clone());
    if let Some(dir) = &record {
        std::fs::create_dir_all(dir).with_context(|| format!("--record {}", dir.display()))?;
    }
    let ws = is_ws(&args.target);
    let format = if ws {
        crate::agent::check_env()?;
        AgentFormat::from_env()?
    } else {
        AgentFormat::Twilio
    };
    // SIP calls each get their own slice of DIALTONE_RTP_PORTS: every call is its own
    // engine, and two engines must not both try the same ports.
    let mut slices = Vec::new();
    if !ws {
        // Fails at once for bad settings, before any call.
        let settings = crate::config::Settings::resolve(&args.common, None, ([0, 0, 0, 0], 0).into())?;
        crate::dns::use_nameserver(settings.dns)?;
        let (lo, hi) = settings.rtp_ports;
        let first = lo + lo % 2;
        let pairs = usize::from(hi.saturating_sub(first).div_ceil(2));
        let per = pairs / args.calls;
        if per == 0 {
            bail!(
                "--calls {}: DIALTONE_RTP_PORTS {lo}-{hi} has {pairs} RTP/RTCP port pairs, and each call needs one",
                args.calls
            );
        }
        slices = (0..args.calls)
            .map(|i| {
                let start = usize::from(first) + 2 * per * i;
                format!("{start}-{}", start + 2 * per - 1)
            })
            .collect();
    }
    let progress = Arc::new(Progress::default());
    let total = args.calls;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shown = tokio::spawn(show_progress(progress.clone(), total, stop_rx));
    let gap = Duration::from_secs_f64(1.0 / args.rate);
    let calls = (0..total).map(|i| {
        let (script, progress, mut args, record) = (script.clone(), progress.clone(), args.clone(), record.clone());
        if let Some(ports) = slices.get(i) {
            args.common.rtp_ports = Some(ports.clone());
        }
        async move {
            tokio::time::sleep(gap * i as u32).await;
            progress.started.fetch_add(1, Ordering::Relaxed);
            let rec = record.map(|d| d.join(format!("call-{}.wav", i + 1)));
            let r = if ws {
                ws_call(i + 1, &args.target, format, &script, rec, &progress).await
            } else {
                sip_call(i + 1, &args, &script, rec, &progress).await
            };
            if r.error.is_some() {
                progress.failed.fetch_add(1, Ordering::Relaxed);
            } else {
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
            r
        }
    });
    let reports: Vec<CallReport> = futures_util::future::join_all(calls).await;
    let _ = stop_tx.send(());
    let _ = shown.await;
    let summary = report::summarize(&script.name, &args.target, &reports);
    print!("{}", report::table(&summary, &reports));
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report::json(&summary, &reports))?;
        std::fs::write(p, text).with_context(|| format!("--json {}", p.display()))?;
    }
    if let Some(p) = &args.junit {
        std::fs::write(p, report::junit(&summary, &reports)).with_context(|| format!("--junit {}", p.display()))?;
    }
    Ok(summary.passed)
}

/// The progress line: rewritten in place on a terminal, else a line when it changes (at
/// most one a second).
async fn show_progress(p: Arc<Progress>, total: usize, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let tty = std::io::stderr().is_terminal();
    let every = Duration::from_millis(if tty { 200 } else { 1000 });
    let mut last = String::new();
    loop {
        let ended = tokio::select! {
            _ = &mut stop => true,
            _ = tokio::time::sleep(every) => false,
        };
        let line = p.line(total);
        if line != last {
            let mut err = std::io::stderr().lock();
            let _ = if tty { write!(err, "\r\x1b[2K{line}") } else { writeln!(err, "{line}") };
            let _ = err.flush();
            last = line;
        }
        if ended {
            if tty {
                eprintln!();
            }
            return;
        }
    }
}

/// One call straight into the agent bridge: the caller is heard by the bot and the bot's
/// audio, paced, is what the caller hears; 20 ms a tick, as a call's media task does.
async fn ws_call(
    n: usize,
    url: &str,
    format: AgentFormat,
    script: &Script,
    record: Option<PathBuf>,
    progress: &Progress,
) -> CallReport {
    let rate = if format == AgentFormat::L16 { 16_000 } else { 8000 };
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let why = failed.clone();
    let hangups = Hangups::to(move |_, reason| {
        if let Ok(mut w) = why.lock() {
            w.get_or_insert(reason);
        }
    });
    let cfg = AgentConfig { url: url.to_string(), format, fallback: None, hangups, print: false };
    let info = CallInfo {
        call_id: format!("test-{n}"),
        contact_id: None,
        from: Some("dialtone-test".into()),
        to: Some(url.to_string()),
        custom: vec![("script".into(), script.name.clone())],
    };
    let port = crate::agent::start(n as u64, rate, info, cfg);
    let mut caller = Caller::new(script.turns.clone(), rate, script.hangup_after_ms);
    let Some(mut media) = port.take() else {
        return CallReport::new(n, Some("the bridge gave no media end".into()), 0, caller.report(Some("no bridge")));
    };
    progress.answered.fetch_add(1, Ordering::Relaxed);
    let mut recorder = match &record {
        Some(p) => match crate::recorder::Recorder::start(p, rate, 2000) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "cannot record");
                None
            }
        },
        None => None,
    };
    let f = caller.frame_len();
    let (mut said, mut bot) = (vec![0i16; f], vec![0i16; f]);
    let mut tick = tokio::time::interval(dialtone_media::session::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut error = None;
    while !caller.done() {
        tick.tick().await;
        if let Some(why) = failed.lock().ok().and_then(|w| w.clone()) {
            error = Some(format!("{why} ({url})"));
            break;
        }
        caller.fill(&mut said);
        media.hear(&said);
        if let Some(d) = caller.take_digit() {
            media.dtmf(d);
        }
        media.play(&mut bot);
        caller.tick(&bot);
        if let Some(r) = recorder.as_mut() {
            r.push(&bot, &said);
        }
    }
    caller.finish();
    // The bridge sends `stop` once the media end is gone.
    drop(media);
    let mut report = CallReport::new(n, error.clone(), caller.elapsed_ms(), caller.report(error.as_deref()));
    if let Some(r) = recorder {
        report.recording = finish_recording(r).await;
    }
    report
}

/// Finalizes a recording; its path when complete.
async fn finish_recording(r: crate::recorder::Recorder) -> Option<String> {
    let path = r.path().display().to_string();
    match tokio::task::spawn_blocking(move || r.finish()).await {
        Ok(Ok(_)) => Some(path),
        _ => None,
    }
}

/// One call through `dialtone call`'s machinery: the caller is the call's source, and
/// sees what the bot sends back.
async fn sip_call(
    n: usize,
    args: &TestArgs,
    script: &Script,
    record: Option<PathBuf>,
    progress: &Arc<Progress>,
) -> CallReport {
    let slot: Arc<Mutex<Option<Arc<Mutex<Caller>>>>> = Arc::default();
    let (turns, hangup) = (script.turns.clone(), script.hangup_after_ms);
    let put = slot.clone();
    let answered = progress.clone();
    let driven = crate::call::Driven {
        source: Box::new(move |rate| {
            let c = Arc::new(Mutex::new(Caller::new(turns, rate, hangup)));
            if let Ok(mut s) = put.lock() {
                *s = Some(c.clone());
            }
            Box::new(Shared(c))
        }),
        on_answer: Box::new(move || {
            answered.answered.fetch_add(1, Ordering::Relaxed);
        }),
    };
    let call = CallArgs {
        target: args.target.clone(),
        common: args.common.clone(),
        // The script's own limit ends the call; this is a backstop a little after it.
        duration: (hangup as f64 / 1000.0) + 2.0,
        ring_timeout: args.ring_timeout,
        from: args.from.clone(),
        play: None,
        record: record.clone(),
        dtmf: None,
        agent: None,
        device: false,
        transfer: None,
    };
    let error = match crate::call::run_driven(call, Some(driven)).await {
        Ok(crate::call::Outcome::Completed) => None,
        Ok(crate::call::Outcome::Failed(status, why)) => Some(format!("SIP {status} {why}")),
        Err(e) => Some(format!("{e:#}")),
    };
    let caller = slot.lock().ok().and_then(|s| s.clone());
    let mut report = match caller {
        Some(c) => {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            c.finish();
            // Hung up by the far end before the script ended: say so.
            let error =
                error.or_else(|| (!c.done_by_script()).then(|| "the far end hung up before the script ended".into()));
            CallReport::new(n, error.clone(), c.elapsed_ms(), c.report(error.as_deref()))
        }
        None => {
            let why = error.unwrap_or_else(|| "no media".into());
            let c = Caller::new(script.turns.clone(), 8000, script.hangup_after_ms);
            CallReport::new(n, Some(why.clone()), 0, c.report(Some(&why)))
        }
    };
    if report.error.is_none() {
        report.recording = record.filter(|p| p.exists()).map(|p| p.display().to_string());
    }
    report
}
