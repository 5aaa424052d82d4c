//! A call's media consumers behind one trait: every 20 ms tick the media task asks its
//! source for what we send and hands every tap what was heard and said. Echo, a prompt,
//! the microphone and a voice agent are sources; the recorder, the speaker and the agent
//! (which also hears the caller) are taps. None of them may block: the ones that reach
//! disk, a device or the network go through lock-free rings and count what they drop.

use crate::agent::{MediaEnd, PlayStat, SpeechNote};
use crate::recorder::Recorder;
use dialtone_media::player::Player;
use ringbuf::traits::{Consumer, Producer};

/// One of a call's media consumers.
pub trait Tap: Send {
    /// What we send this tick (sources only): `out` holds silence; `heard` is the peer's
    /// last frame.
    fn fill(&mut self, _heard: &[i16], _out: &mut [i16]) {}
    /// This tick's audio: what the peer said and what we sent.
    fn tick(&mut self, _heard: &[i16], _said: &[i16]) {}
    /// A digit the peer sent (RFC 4733).
    fn dtmf(&mut self, _digit: char) {}
    /// Frames (or digits) dropped so far because its consumer fell behind.
    fn dropped(&self) -> u64 {
        0
    }
    /// A source with an end (a prompt) has sent all it had.
    fn finished(&self) -> bool {
        false
    }
    /// A voice agent's `clear` messages so far (barge-in: it dropped its queued audio).
    fn clears(&self) -> u64 {
        0
    }
    /// A digit the source wants sent now (RFC 4733), asked after each [`fill`](Tap::fill).
    fn take_dtmf(&mut self) -> Option<char> {
        None
    }
    /// A voice agent's playout in the last `fill`: how much of its audio there was to send.
    fn playout(&self) -> Option<PlayStat> {
        None
    }
    /// Speech started or stopped on one side of the call (for an agent that asked).
    fn speech(&mut self, _note: SpeechNote) {}
}

/// A source handed to a call's media task once, when it starts (`dialtone test`'s caller).
#[derive(Default)]
pub struct TapSlot(std::sync::Mutex<Option<Box<dyn Tap>>>);

impl TapSlot {
    /// Holding `tap`.
    pub fn new(tap: Box<dyn Tap>) -> TapSlot {
        TapSlot(std::sync::Mutex::new(Some(tap)))
    }

    /// The tap; `None` after the first call.
    pub fn take(&self) -> Option<Box<dyn Tap>> {
        self.0.lock().ok().and_then(|mut t| t.take())
    }
}

/// Silence: the stream keeps flowing.
pub struct Silence;

impl Tap for Silence {}

/// What the peer said, sent back one frame later.
pub struct Echo;

impl Tap for Echo {
    fn fill(&mut self, heard: &[i16], out: &mut [i16]) {
        out.copy_from_slice(heard);
    }
}

impl Tap for Player {
    fn fill(&mut self, _heard: &[i16], out: &mut [i16]) {
        Player::fill(self, out);
    }

    fn finished(&self) -> bool {
        Player::finished(self)
    }
}

/// The microphone's ring (`--device`); what it has not captured yet is silence.
pub struct Mic(pub ringbuf::HeapCons<i16>);

impl Tap for Mic {
    fn fill(&mut self, _heard: &[i16], out: &mut [i16]) {
        let n = self.0.pop_slice(out);
        out[n..].fill(0);
    }
}

/// The speaker's ring (`--device`): what the peer said; a full ring drops the frame.
pub struct Speaker {
    ring: ringbuf::HeapProd<i16>,
    drops: u64,
}

impl Speaker {
    /// Plays into `ring`.
    pub fn new(ring: ringbuf::HeapProd<i16>) -> Speaker {
        Speaker { ring, drops: 0 }
    }
}

impl Tap for Speaker {
    fn tick(&mut self, heard: &[i16], _said: &[i16]) {
        if self.ring.push_slice(heard) < heard.len() {
            self.drops += 1;
        }
    }

    fn dropped(&self) -> u64 {
        self.drops
    }
}

/// A voice agent: its audio is what we send; it hears the caller and the digits.
impl Tap for MediaEnd {
    fn fill(&mut self, _heard: &[i16], out: &mut [i16]) {
        self.play(out);
    }

    fn tick(&mut self, heard: &[i16], _said: &[i16]) {
        self.hear(heard);
    }

    fn dtmf(&mut self, digit: char) {
        MediaEnd::dtmf(self, digit);
    }

    fn dropped(&self) -> u64 {
        MediaEnd::dropped(self)
    }

    fn clears(&self) -> u64 {
        MediaEnd::clears(self)
    }

    fn playout(&self) -> Option<PlayStat> {
        Some(MediaEnd::playout(self))
    }

    fn speech(&mut self, note: SpeechNote) {
        MediaEnd::speech(self, note);
    }
}

/// The recording: left what the peer said, right what we sent.
impl Tap for Recorder {
    fn tick(&mut self, heard: &[i16], said: &[i16]) {
        self.push(heard, said);
    }

    fn dropped(&self) -> u64 {
        Recorder::dropped(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringbuf::traits::Split;

    #[test]
    fn sources_fill_and_taps_count_their_drops() {
        let heard = [7i16; 4];
        let mut out = [0i16; 4];
        Echo.fill(&heard, &mut out);
        assert_eq!(out, heard);
        let mut out = [9i16; 4];
        Silence.fill(&heard, &mut out);
        assert_eq!(out, [9; 4], "silence leaves the silent frame as it is");

        let (mut prod, cons) = ringbuf::HeapRb::<i16>::new(6).split();
        prod.push_slice(&[1, 2]);
        let mut mic = Mic(cons);
        let mut out = [5i16; 4];
        mic.fill(&heard, &mut out);
        assert_eq!(out, [1, 2, 0, 0], "what the microphone has not captured is silence");

        let (prod, _cons) = ringbuf::HeapRb::<i16>::new(6).split();
        let mut speaker = Speaker::new(prod);
        speaker.tick(&heard, &[0; 4]);
        speaker.tick(&heard, &[0; 4]);
        assert_eq!(speaker.dropped(), 1, "the second frame does not fit");
    }
}
