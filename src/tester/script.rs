//! The test caller's script: a TOML file of caller turns and what the bot must do after
//! each (README.md, "Testing a voice bot").
//!
//! ```toml
//! name = "book a table"        # shown in the reports; default: the file's name
//! hangup_after_ms = 60000      # the longest a call may last; default 120000
//! reply_timeout_ms = 5000      # default for the turns' own
//! voice = "en-us"              # espeak-ng voice for `say`
//! record = "recordings"        # keep a two-channel WAV per call here (relative to the script)
//!
//! [[turn]]
//! name = "greeting"            # optional; default: the text, file or digits
//! wait_ms = 500                # silence before this turn
//! say = "Hello, I'd like a table for two"   # or wav = "hello.wav", or dtmf = "12#"
//! expect_answer_within_ms = 1500
//! expect_tone_hz = 1000
//!
//! [[turn]]
//! barge_in_ms = 400            # speak 400 ms into the bot's reply to the turn before
//! say = "Actually, make it three"
//! expect_stop_within_ms = 600
//! ```

use anyhow::{bail, Context};
use dialtone_media::player::Prompt;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file as written.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    name: Option<String>,
    hangup_after_ms: Option<u64>,
    reply_timeout_ms: Option<u64>,
    voice: Option<String>,
    record: Option<PathBuf>,
    #[serde(default)]
    turn: Vec<TurnFile>,
}

/// One `[[turn]]` as written.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
struct TurnFile {
    name: Option<String>,
    say: Option<String>,
    wav: Option<PathBuf>,
    dtmf: Option<String>,
    wait_ms: Option<u64>,
    barge_in_ms: Option<u64>,
    reply_timeout_ms: Option<u64>,
    expect_answer_within_ms: Option<u64>,
    expect_stop_within_ms: Option<u64>,
    expect_tone_hz: Option<f64>,
    expect_dtmf: Option<String>,
}

/// What the caller does in a turn.
#[derive(Debug, Clone)]
pub enum Action {
    /// Nothing: the turn only waits (and listens).
    Nothing,
    /// Audio, ready at both call rates (8 and 16 kHz).
    Audio(Utterance),
    /// DTMF digits (RFC 4733 over SIP, `dtmf` messages to a WebSocket agent).
    Dtmf(String),
}

/// Audio to say, decoded for both call rates.
#[derive(Debug, Clone)]
pub struct Utterance {
    p8: Arc<Prompt>,
    p16: Arc<Prompt>,
}

impl Utterance {
    fn load(path: &Path) -> anyhow::Result<Utterance> {
        Ok(Utterance { p8: Arc::new(Prompt::load(path, 8000)?), p16: Arc::new(Prompt::load(path, 16_000)?) })
    }

    /// The samples at `rate` (8000 or 16000).
    pub fn at(&self, rate: u32) -> Arc<Prompt> {
        if rate == 8000 {
            self.p8.clone()
        } else {
            self.p16.clone()
        }
    }
}

/// One caller turn, checked.
#[derive(Debug, Clone)]
pub struct Turn {
    /// How the reports name it: its `name`, else its text, file or digits.
    pub label: String,
    /// What the caller does.
    pub action: Action,
    /// Silence before it.
    pub wait_ms: u64,
    /// Speak this long after the bot starts speaking (barge-in), instead of after `wait_ms`.
    pub barge_in_ms: Option<u64>,
    /// How long to wait for the bot's reply to start before the next turn.
    pub reply_timeout_ms: u64,
    /// The bot's reply starts within this long of the turn's end.
    pub expect_answer_within_ms: Option<u64>,
    /// After the barge-in, the bot's audio stops within this long.
    pub expect_stop_within_ms: Option<u64>,
    /// A tone of this frequency comes in the bot's reply.
    pub expect_tone_hz: Option<f64>,
    /// These DTMF digits come in the bot's reply (in-band, or RFC 4733 over SIP).
    pub expect_dtmf: Option<String>,
}

/// A checked script, its audio ready.
#[derive(Debug, Clone)]
pub struct Script {
    /// Its name.
    pub name: String,
    /// The longest a call may last.
    pub hangup_after_ms: u64,
    /// Where to keep each call's recording, if anywhere.
    pub record: Option<PathBuf>,
    /// The turns, in order.
    pub turns: Vec<Turn>,
}

/// Longest label shown for a `say` turn without a name.
const LABEL_CHARS: usize = 40;

impl Script {
    /// Reads and checks `path`, synthesizing its `say` texts with espeak-ng and decoding its
    /// WAVs (relative to the script's directory). Errors name the turn and field.
    pub fn load(path: &Path) -> anyhow::Result<Script> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the script {}", path.display()))?;
        let file: ScriptFile = toml::from_str(&text).map_err(|e| anyhow::anyhow!("script {}: {e}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let default_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Script::check(file, &dir, default_name).map_err(|e| anyhow::anyhow!("script {}: {e:#}", path.display()))
    }

    /// Parses a script from text (WAVs relative to `dir`).
    pub fn parse(text: &str, dir: &Path) -> anyhow::Result<Script> {
        let file: ScriptFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        Script::check(file, dir, "script".into())
    }

    fn check(file: ScriptFile, dir: &Path, default_name: String) -> anyhow::Result<Script> {
        if file.turn.is_empty() {
            bail!("no [[turn]]: a script needs at least one caller turn");
        }
        let hangup_after_ms = file.hangup_after_ms.unwrap_or(120_000);
        if hangup_after_ms == 0 {
            bail!("hangup_after_ms must be more than 0");
        }
        let reply_timeout = file.reply_timeout_ms.unwrap_or(5000);
        let voice = file.voice.unwrap_or_else(|| "en-us".into());
        // One synthesis per distinct text.
        let mut spoken: HashMap<String, Utterance> = HashMap::new();
        let mut turns = Vec::new();
        for (i, t) in file.turn.into_iter().enumerate() {
            let n = i + 1;
            let ctx = |field: &str| {
                format!("turn {n}{}: {field}", t.name.as_ref().map(|s| format!(" ({s:?})")).unwrap_or_default())
            };
            let given = [t.say.is_some(), t.wav.is_some(), t.dtmf.is_some()].iter().filter(|b| **b).count();
            if given > 1 {
                bail!("{}: say, wav and dtmf are exclusive: give one per turn", ctx("say/wav/dtmf"));
            }
            if t.barge_in_ms.is_some() && t.wait_ms.is_some() {
                bail!(
                    "{}: a barge-in turn starts from the bot's speech, not after a wait: drop wait_ms",
                    ctx("barge_in_ms")
                );
            }
            if t.expect_stop_within_ms.is_some() && t.barge_in_ms.is_none() {
                bail!(
                    "{}: only a barge-in turn (barge_in_ms) can expect the bot to stop",
                    ctx("expect_stop_within_ms")
                );
            }
            if t.barge_in_ms.is_some() && given == 0 {
                bail!("{}: a barge-in turn must say something (say or wav)", ctx("barge_in_ms"));
            }
            if let Some(hz) = t.expect_tone_hz {
                if !(100.0..=3800.0).contains(&hz) {
                    bail!("{}: {hz} Hz is outside 100..3800 Hz (what a call carries)", ctx("expect_tone_hz"));
                }
            }
            if let Some(d) = &t.expect_dtmf {
                if d.is_empty() {
                    bail!("{}: no digits", ctx("expect_dtmf"));
                }
                if let Some(bad) = d.chars().find(|c| dialtone_media::dtmf::digit_to_event(*c).is_none()) {
                    bail!("{}: {bad:?} is not a DTMF key (0-9, *, #, A-D)", ctx("expect_dtmf"));
                }
            }
            let (action, label) = if let Some(s) = &t.say {
                if s.trim().is_empty() {
                    bail!("{}: empty text", ctx("say"));
                }
                let u = match spoken.get(s) {
                    Some(u) => u.clone(),
                    None => {
                        let u = speak(s, &voice).with_context(|| ctx("say"))?;
                        spoken.insert(s.clone(), u.clone());
                        u
                    }
                };
                let label = if s.chars().count() > LABEL_CHARS {
                    format!("{}…", s.chars().take(LABEL_CHARS).collect::<String>())
                } else {
                    s.clone()
                };
                (Action::Audio(u), label)
            } else if let Some(w) = &t.wav {
                let p = dir.join(w);
                let u = Utterance::load(&p).with_context(|| ctx("wav"))?;
                (Action::Audio(u), w.display().to_string())
            } else if let Some(d) = &t.dtmf {
                if d.is_empty() {
                    bail!("{}: no digits", ctx("dtmf"));
                }
                if let Some(bad) = d.chars().find(|c| dialtone_media::dtmf::digit_to_event(*c).is_none()) {
                    bail!("{}: {bad:?} is not a DTMF key (0-9, *, #, A-D)", ctx("dtmf"));
                }
                (Action::Dtmf(d.to_uppercase()), format!("dtmf {d}"))
            } else {
                (Action::Nothing, format!("wait {} ms", t.wait_ms.unwrap_or(0)))
            };
            turns.push(Turn {
                label: t.name.clone().unwrap_or(label),
                action,
                wait_ms: t.wait_ms.unwrap_or(0),
                barge_in_ms: t.barge_in_ms,
                reply_timeout_ms: t.reply_timeout_ms.unwrap_or(reply_timeout),
                expect_answer_within_ms: t.expect_answer_within_ms,
                expect_stop_within_ms: t.expect_stop_within_ms,
                expect_tone_hz: t.expect_tone_hz,
                expect_dtmf: t.expect_dtmf.as_ref().map(|d| d.to_uppercase()),
            });
        }
        Ok(Script {
            name: file.name.unwrap_or(default_name),
            hangup_after_ms,
            record: file.record.map(|r| dir.join(r)),
            turns,
        })
    }
}

/// `text` spoken by espeak-ng into a temporary WAV, decoded for both call rates.
fn speak(text: &str, voice: &str) -> anyhow::Result<Utterance> {
    let tmp = std::env::temp_dir().join(format!("dialtone-say-{}-{}.wav", std::process::id(), crate::now_seed()));
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(&tmp)
        .arg("--")
        .arg(text)
        .stdin(std::process::Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("espeak-ng is not installed (Debian: apt-get install espeak-ng); use wav = \"file.wav\" instead")
        }
        Err(e) => bail!("running espeak-ng: {e}"),
    };
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!("espeak-ng failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let u = Utterance::load(&tmp);
    let _ = std::fs::remove_file(&tmp);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", Script::parse(text, Path::new(".")).unwrap_err())
    }

    #[test]
    fn bad_scripts_name_the_turn_and_field() {
        assert!(err("").contains("no [[turn]]"));
        let e = err("[[turn]]\nwait_ms = 1\n[[turn]]\nname = \"x\"\ndtmf = \"12z\"\n");
        assert!(e.contains("turn 2 (\"x\"): dtmf") && e.contains("'z'"), "{e}");
        let e = err("[[turn]]\ndtmf = \"1\"\nwav = \"a.wav\"\n");
        assert!(e.contains("turn 1: say/wav/dtmf"), "{e}");
        let e = err("[[turn]]\ndtmf = \"1\"\nexpect_stop_within_ms = 5\n");
        assert!(e.contains("turn 1: expect_stop_within_ms"), "{e}");
        let e = err("[[turn]]\nexpect_tone_hz = 9000\n");
        assert!(e.contains("turn 1: expect_tone_hz"), "{e}");
        let e = err("[[turn]]\nwav = \"/nonexistent/x.wav\"\n");
        assert!(e.contains("turn 1: wav"), "{e}");
        // Unknown keys are refused with the key's name.
        let e = err("[[turn]]\nexpect_answer_in_ms = 5\n");
        assert!(e.contains("expect_answer_in_ms"), "{e}");
    }

    #[test]
    fn defaults_and_labels() {
        let s = Script::parse(
            "[[turn]]\ndtmf = \"12#\"\nexpect_answer_within_ms = 800\n[[turn]]\nwait_ms = 300\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(s.turns.len(), 2);
        assert_eq!(s.turns[0].label, "dtmf 12#");
        assert_eq!(s.turns[0].reply_timeout_ms, 5000);
        assert_eq!(s.turns[1].label, "wait 300 ms");
        assert_eq!(s.hangup_after_ms, 120_000);
    }
}
