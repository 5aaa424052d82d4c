//! Two live calls joined (issue 16): each call's media task trades its source for one end
//! of a [`pair`]. What one call hears goes through a lock-free ring, resampled when the two
//! calls' audio rates differ (G.711 at 8 kHz with Opus at 16 kHz), to be what the other
//! call is sent; each call's taps (its recording among them) keep hearing both sides.

use crate::taps::Tap;
use dialtone_media::resample::Resampler;
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// At most this much audio waits in a direction (ms); past it the oldest goes, so the
/// delay stays bounded when one side's clock runs ahead.
const BACKLOG_MS: usize = 200;

/// One call's end of a bridge.
pub struct End {
    to_other: HeapProd<i16>,
    from_other: HeapCons<i16>,
    /// Our rate to the other's, when they differ.
    resample: Option<Resampler>,
    scratch: Vec<i16>,
    /// Samples the other side's ring had no room for, or we skipped to catch up.
    dropped: u64,
    /// Our frame: what `fill` takes at a time.
    frame: usize,
    /// The backlog limit on what we take, in samples at our rate.
    limit: usize,
}

/// A bridge between a call at `rate_a` and one at `rate_b` (Hz): the two ends.
pub fn pair(rate_a: u32, rate_b: u32) -> (End, End) {
    let cap = |rate: u32| (rate as usize * BACKLOG_MS / 1000) * 2;
    let (ab_prod, ab_cons) = HeapRb::<i16>::new(cap(rate_b)).split();
    let (ba_prod, ba_cons) = HeapRb::<i16>::new(cap(rate_a)).split();
    let end = |to_other, from_other, ours: u32, theirs: u32| End {
        to_other,
        from_other,
        resample: (ours != theirs).then(|| Resampler::new(ours, theirs).ok()).flatten(),
        scratch: Vec::new(),
        dropped: 0,
        frame: ours as usize / 50,
        limit: ours as usize * BACKLOG_MS / 1000,
    };
    (end(ab_prod, ba_cons, rate_a, rate_b), end(ba_prod, ab_cons, rate_b, rate_a))
}

impl Tap for End {
    fn fill(&mut self, _heard: &[i16], out: &mut [i16]) {
        // Behind by more than the backlog: skip to the newest audio.
        let waiting = self.from_other.occupied_len();
        if waiting > self.limit + self.frame {
            let skip = waiting - self.limit;
            self.dropped += self.from_other.skip(skip) as u64;
        }
        if self.from_other.occupied_len() >= out.len() {
            self.from_other.pop_slice(out);
        }
    }

    fn tick(&mut self, heard: &[i16], _said: &[i16]) {
        let samples: &[i16] = match self.resample.as_mut() {
            Some(r) => {
                self.scratch.resize(r.max_output_len(heard.len()), 0);
                let n = r.process(heard, &mut self.scratch).unwrap_or(0);
                &self.scratch[..n]
            }
            None => heard,
        };
        let pushed = self.to_other.push_slice(samples);
        self.dropped += (samples.len() - pushed) as u64;
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_is_sent_what_the_other_heard() {
        let (mut a, mut b) = pair(8000, 8000);
        let said_by_a_peer = vec![7i16; 160];
        a.tick(&said_by_a_peer, &[0; 160]);
        let mut out = vec![0i16; 160];
        b.fill(&[0; 160], &mut out);
        assert!(out.iter().all(|s| *s == 7));
        let mut out = vec![0i16; 160];
        a.fill(&[0; 160], &mut out);
        assert!(out.iter().all(|s| *s == 0), "nothing from b yet: silence");
    }

    #[test]
    fn rates_are_bridged_and_the_backlog_bounded() {
        let (mut a, mut b) = pair(8000, 16_000);
        for _ in 0..50 {
            a.tick(&[1000; 160], &[0; 160]);
        }
        // 50 frames of 20 ms at 8 kHz became about 1 s at 16 kHz, of which b keeps 200 ms.
        let mut out = vec![0i16; 320];
        b.fill(&[0; 320], &mut out);
        assert_eq!(out.len(), 320);
        assert!(b.from_other.occupied_len() <= b.limit, "{} waiting", b.from_other.occupied_len());
        assert!(a.dropped() + b.dropped() > 0, "the excess is counted");
    }
}
