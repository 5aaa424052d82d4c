//! The agent bridge's message handling as a plain function, for the fuzz target
//! `agent_messages` (fuzz/) and its stable corpus replay (tests/fuzz_corpus.rs); not API.

use super::*;

/// What [`messages`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages the session counted as malformed.
    pub malformed: u64,
    /// Messages handled (text and binary).
    pub handled: u64,
    /// Messages the session queued for the agent (`mark` echoes, `media`).
    pub sent: u64,
}

/// Runs `data` through one bridge session as what the agent sent, the way the bridge's
/// loop does: byte 0 picks the call's rate (bit 0: 16 kHz, else 8 kHz) and the wire
/// format (bit 1: `l16-16k`, else Twilio µ-law JSON); the rest, split at `\n`, are the
/// messages: a line starting with 0xFF is a binary frame (its other bytes), any other is
/// a text message if it is UTF-8 (a WebSocket text frame always is) and skipped if not.
/// After each message the session feeds the playout ring, the media side plays and hears
/// a 20 ms frame, played marks are echoed and the caller's audio is pumped to the agent.
pub fn messages(data: &[u8]) -> Outcome {
    let Some((&flags, rest)) = data.split_first() else { return Outcome::default() };
    let rate = if flags & 1 != 0 { 16_000 } else { 8000 };
    let format = if flags & 2 != 0 { AgentFormat::L16 } else { AgentFormat::Twilio };
    let (mut media, mut b) = halves(rate, TO_AGENT_MS, FROM_AGENT_MS);
    let mut s = Session::new(0, rate, CallInfo::default(), format);
    let (wtx, mut wrx) = mpsc::channel::<(Message, u64)>(WRITE_QUEUE);
    let frame = (rate / 50) as usize;
    let mut out = vec![0i16; frame];
    let mut heard = vec![0i16; frame];
    let mut down = vec![0i16; s.down.max_output_len(frame)];
    let mut outcome = Outcome::default();
    for line in rest.split(|&c| c == b'\n') {
        match line.split_first() {
            Some((0xff, bin)) if format == AgentFormat::L16 => s.enqueue_l16(bin),
            Some((0xff, _)) => s.bad("a binary frame (the Twilio protocol is JSON text)"),
            _ => match std::str::from_utf8(line) {
                Ok(text) => s.on_text(text, &mut b, &wtx),
                Err(_) => continue,
            },
        }
        outcome.handled += 1;
        s.feed(&mut b);
        media.play(&mut out);
        // The caller says what the agent said back (any audio will do).
        media.hear(&out);
        s.echo_played_marks(&b, &wtx);
        s.pump(&mut b, &wtx, &mut heard, &mut down);
        while wrx.try_recv().is_ok() {
            outcome.sent += 1;
        }
    }
    outcome.malformed = s.malformed;
    outcome
}
