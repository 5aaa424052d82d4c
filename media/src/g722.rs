//! G.722 (ITU-T Recommendation G.722, 7 kHz audio coding within 64 kbit/s), mode 1:
//! 64 kbit/s, 16 kHz 16-bit PCM in and out, one octet per pair of samples. RTP payload type
//! 9 (RFC 3551 §4.5.2: `G722/8000` in SDP although the audio is sampled at 16 kHz, so RTP
//! timestamps advance 8000 a second, 160 per 20 ms packet of 160 octets and 320 samples).
//!
//! Written from the algorithm of the Recommendation:
//!
//! * A transmit QMF (24-tap quadrature mirror filter, coefficients h0…h23 of G.722 §2 /
//!   Table "QMF coefficients", scaled by 2¹³) splits each pair of input samples into one
//!   lower and one higher sub-band sample at 8 kHz; the receive QMF does the inverse. The two
//!   together, with the ADPCM between them, delay the audio by 22 samples (1.375 ms).
//! * The lower sub-band is coded by 6-bit ADPCM: block 1L (QUANTL, the 6-bit adaptive
//!   quantizer), block 2L (INVQAL, the 4-bit inverse quantizer whose output feeds the
//!   adaptation, so that the two lowest bits can be dropped in transit in modes 2 and 3),
//!   block 3L (LOGSCL + SCALEL, the quantizer scale factor), block 4L (the predictor: RECONS,
//!   PARREC, UPPOL1/UPPOL2 for the two pole coefficients, UPZERO for the six zero
//!   coefficients, FILTEP, FILTEZ, PREDIC). The decoder reconstructs its output with the
//!   6-bit inverse quantizer (INVQBL in mode 1).
//! * The higher sub-band is coded by 2-bit ADPCM with the same block 4 and its own quantizer
//!   (QUANTH, INVQAH) and scale factor adaptation (LOGSCH, SCALEH).
//!
//! The arithmetic is the Recommendation's fixed-point arithmetic (16-bit saturating
//! additions, `(a × b) >> 15` products, the ITU-T G.191 basic operators the reference
//! implementation is written in), so that the output is bit-exact: the tests compare the
//! encoder and decoder with FFmpeg's G.722 on the same input (`g722_matches_ffmpeg`, run
//! when `ffmpeg` is installed). The tables are those of the Recommendation (noted at each),
//! stored in the integer form of the ITU-T reference implementation.
//!
//! Sans-IO, no allocation: the state is two fixed-size structs.

/// Samples (16 kHz) per 20 ms frame.
pub const FRAME_SAMPLES: usize = 320;
/// Octets per 20 ms frame (one per pair of samples).
pub const FRAME_BYTES: usize = 160;
/// The RTP clock rate (RFC 3551 §4.5.2), half the sampling rate.
pub const CLOCK_RATE: u32 = 8000;
/// The sampling rate of the audio.
pub const SAMPLE_RATE: u32 = 16_000;
/// The static RTP payload type (RFC 3551 table 4).
pub const PAYLOAD_TYPE: u8 = 9;

// ---- the basic operators (ITU-T G.191 STL) the Recommendation's arithmetic uses ----------

/// Saturates to 16 bits (`saturate`).
#[inline(always)]
fn sat(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// 16-bit saturating addition (`add`).
#[inline(always)]
fn add(a: i16, b: i16) -> i16 {
    a.saturating_add(b)
}

/// 16-bit saturating subtraction (`sub`).
#[inline(always)]
fn sub(a: i16, b: i16) -> i16 {
    a.saturating_sub(b)
}

/// Fractional product `(a × b) >> 15` (`mult`; −1 × −1, the one product out of range,
/// saturates to 32767).
#[inline(always)]
fn mult(a: i16, b: i16) -> i16 {
    let p = i32::from(a) * i32::from(b);
    if p == 1 << 30 {
        i16::MAX
    } else {
        (p >> 15) as i16
    }
}

/// Limits a reconstructed sub-band signal to 15 bits (the Recommendation's LIMIT).
#[inline(always)]
fn limit(x: i16) -> i16 {
    x.clamp(-16384, 16383)
}

// ---- tables ------------------------------------------------------------------------------

/// The QMF coefficients h0…h23 (G.722 Table "Coefficients for the QMF", ×2¹³). The filter
/// is symmetric: h(i) = h(23 − i).
const QMF: [i32; 24] = [
    3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11,
    3,
];

/// QUANTL: the 6-bit quantizer's decision levels, normalised (G.722 table of the lower
/// sub-band quantizer's decision levels, ×2¹²/8 as the reference implementation keeps them:
/// the level compared with |e| is `(Q6[m] × 8 × DETL) >> 15`). Index 1…30 (`mil`).
const Q6: [i32; 31] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339,
    1458, 1612, 1765, 1980, 2195, 2557, 2919, 3200,
];

/// QUANTL's code words: for interval `mil` (1…30) of a negative difference ...
const ILN: [u8; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
];
/// ... and of a positive one (G.722 table of the lower sub-band quantizer's code words).
const ILP: [u8; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34,
    33, 32,
];

/// The 4-bit inverse quantizer's output levels (INVQAL, G.722 table of the 4-bit lower
/// sub-band quantizer), by magnitude index 0…7; these are every fourth 6-bit decision level.
const OQ4: [i16; 8] = [0, 150, 323, 530, 786, 1121, 1612, 2557];
/// The magnitude index of a 4-bit code word (the 6-bit word without its two lowest bits);
/// code words 0…7 are negative, 8…15 positive.
const RIL4: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];

/// The 6-bit inverse quantizer's output levels (INVQBL in mode 1, G.722 table of the 6-bit
/// lower sub-band quantizer), by magnitude index 0…30.
const OQ6: [i16; 31] = [
    0, 17, 54, 91, 130, 170, 211, 254, 300, 347, 396, 447, 501, 558, 618, 682, 750, 822, 899, 982, 1072, 1170, 1279,
    1399, 1535, 1689, 1873, 2088, 2376, 2738, 3101,
];

/// LOGSCL: the lower sub-band's log scale factor multipliers W_L, by 4-bit magnitude index.
const WL: [i16; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];

/// The higher sub-band's 2-bit inverse quantizer output levels (INVQAH), by magnitude
/// index 1…2 (0 unused).
const OQ2: [i16; 3] = [0, 202, 926];
/// The magnitude index of a 2-bit code word; code words 0 and 1 are negative, 2 and 3
/// positive.
const IH2: [usize; 4] = [2, 1, 2, 1];
/// LOGSCH: the higher sub-band's log scale factor multipliers W_H, by magnitude index.
const WH: [i16; 3] = [0, -214, 798];
/// QUANTH's single decision level (×2¹²/8 as Q6).
const Q2: i32 = 564;

/// The 4-bit inverse quantizer's signed outputs by 4-bit code word, ×8 (INVQAL).
const QM4: [i16; 16] = {
    let mut t = [0i16; 16];
    let mut c = 0;
    while c < 16 {
        let v = OQ4[RIL4[c]] * 8;
        t[c] = if c < 8 { -v } else { v };
        c += 1;
    }
    t
};

/// The 6-bit inverse quantizer's signed outputs by code word, ×8 (INVQBL, mode 1). The
/// code words the encoder never sends (0…3) decode as the smallest negative level.
const QM6: [i16; 64] = {
    let mut t = [0i16; 64];
    let mut c = 0;
    while c < 64 {
        // The inverse of QUANTL's mapping: (negative, magnitude index).
        let (neg, m) = match c {
            0..=3 => (true, 1),
            4..=31 => (true, 34 - c),
            32..=61 => (false, 62 - c),
            62 => (true, 2),
            _ => (true, 1),
        };
        let v = OQ6[m] * 8;
        t[c] = if neg { -v } else { v };
        c += 1;
    }
    t
};

/// The higher sub-band's signed outputs by 2-bit code word, ×8 (INVQAH).
const QM2: [i16; 4] = [-OQ2[2] * 8, -OQ2[1] * 8, OQ2[2] * 8, OQ2[1] * 8];

/// SCALEL/SCALEH: 2¹¹ × 2^(k/32), rounded, k = 0…31: the mantissas of the scale factor's
/// antilog (the reference implementation's 353-entry ILA table is these, shifted).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
    3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

/// The antilog of a log scale factor `nb` (0…22528, 11 fractional bits): the scale factor
/// DET (SCALEL with `offset` 2, SCALEH with 0: the lower band's factor is 2² larger).
#[inline(always)]
fn antilog(nb: i16, offset: i32) -> i16 {
    let nb = i32::from(nb);
    let shift = 10 - (nb >> 11) - offset;
    let m = ILB[((nb >> 6) & 31) as usize];
    let v = if shift >= 0 { m >> shift } else { m << -shift };
    (v << 2) as i16
}

// ---- one sub-band's ADPCM state ----------------------------------------------------------

/// The adaptive predictor and scale factor of one sub-band (the Recommendation's variables
/// with the L or H suffix dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Band {
    /// S: the predicted signal.
    s: i16,
    /// SZ: the zero section's part of it.
    sz: i16,
    /// NB: the log scale factor.
    nb: i16,
    /// DET: the quantizer scale factor.
    det: i16,
    /// A1, A2 (index 1, 2): the pole section's coefficients.
    a: [i16; 3],
    /// B1…B6 (index 1…6): the zero section's coefficients.
    b: [i16; 7],
    /// D: the quantized difference signal, now (0) and the 6 before.
    d: [i16; 7],
    /// P: the partially reconstructed signal, now and the 2 before.
    p: [i16; 3],
    /// R: the reconstructed signal, now and the 2 before.
    r: [i16; 3],
}

impl Band {
    /// The reset state (G.722 §"Initialization": DET 32 for the lower band, 8 for the
    /// higher, everything else 0).
    const fn new(det: i16) -> Band {
        Band { s: 0, sz: 0, nb: 0, det, a: [0; 3], b: [0; 7], d: [0; 7], p: [0; 3], r: [0; 3] }
    }

    /// Block 4: the predictor's adaptation to the quantized difference `dq` and the next
    /// prediction.
    #[inline(always)]
    fn predict(&mut self, dq: i16) {
        // RECONS and PARREC.
        self.d[0] = dq;
        self.r[0] = add(self.s, dq);
        self.p[0] = add(dq, self.sz);

        // UPZERO: sign-sign adaptation of the six zero coefficients, with leakage; the delay
        // line of D moves on.
        let g = if dq == 0 { 0 } else { 128 };
        let neg0 = dq < 0;
        for i in (1..7).rev() {
            let wd2 = if (self.d[i] < 0) == neg0 { g } else { -g };
            self.b[i] = add(wd2, mult(self.b[i], 32640));
            self.d[i] = self.d[i - 1];
        }

        // UPPOL2: the second pole coefficient.
        let (n0, n1, n2) = (self.p[0] < 0, self.p[1] < 0, self.p[2] < 0);
        let wd1 = sat(i32::from(self.a[1]) << 2);
        let wd2 = if n0 == n1 { sat(-i32::from(wd1)) } else { wd1 } >> 7;
        let wd3: i16 = if n0 == n2 { 128 } else { -128 };
        let a2 = add(add(wd2, wd3), mult(self.a[2], 32512)).clamp(-12288, 12288);
        self.a[2] = a2;

        // UPPOL1: the first, limited by the new second one (stability).
        let wd1: i16 = if n0 == n1 { 192 } else { -192 };
        let mut a1 = add(wd1, mult(self.a[1], 32640));
        let bound = sub(15360, a2);
        if a1 > bound {
            a1 = bound;
        } else if add(a1, bound) < 0 {
            a1 = -bound;
        }
        self.a[1] = a1;
        self.p[2] = self.p[1];
        self.p[1] = self.p[0];

        // FILTEZ: the zero section's prediction.
        let mut sz = 0i16;
        for i in (1..7).rev() {
            sz = add(sz, mult(add(self.d[i], self.d[i]), self.b[i]));
        }
        self.sz = sz;

        // FILTEP: the pole section's.
        self.r[2] = self.r[1];
        self.r[1] = self.r[0];
        let sp = add(mult(self.a[1], add(self.r[1], self.r[1])), mult(self.a[2], add(self.r[2], self.r[2])));

        // PREDIC.
        self.s = add(sp, sz);
    }

    /// The lower band after its 6-bit code word `il` (blocks 2L, 3L, 4L).
    #[inline(always)]
    fn adapt_low(&mut self, il: u8) {
        let c4 = usize::from(il >> 2);
        // INVQAL: the 4-bit quantized difference.
        let dq = mult(self.det, QM4[c4]);
        // LOGSCL, SCALEL.
        self.nb = add(mult(self.nb, 32512), WL[RIL4[c4]]).clamp(0, 18432);
        self.det = antilog(self.nb, 2);
        self.predict(dq);
    }

    /// The higher band after its 2-bit code word `ih` (blocks 2H, 3H, 4H); returns its
    /// reconstructed signal.
    #[inline(always)]
    fn adapt_high(&mut self, ih: u8) -> i16 {
        let ih = usize::from(ih);
        // INVQAH.
        let dq = mult(QM2[ih], self.det);
        // LOGSCH, SCALEH.
        self.nb = add(mult(self.nb, 32512), WH[IH2[ih]]).clamp(0, 22528);
        self.det = antilog(self.nb, 0);
        self.predict(dq);
        self.r[1]
    }

    /// QUANTL: the 6-bit code word of the lower band's difference `e`.
    #[inline(always)]
    fn quantize_low(&self, e: i16) -> u8 {
        // The magnitude, one's complement for negative values as the Recommendation has it.
        let wd = if e < 0 { -i32::from(e) - 1 } else { i32::from(e) };
        let det = i32::from(self.det);
        // The first interval 1…30 whose upper level is above |e| (30 when none is): the
        // levels rise with the index, so a binary search finds it.
        let mil = 1 + Q6[1..30].partition_point(|q| (q * 8 * det) >> 15 <= wd);
        if e < 0 {
            ILN[mil]
        } else {
            ILP[mil]
        }
    }

    /// QUANTH: the 2-bit code word of the higher band's difference `e`.
    #[inline(always)]
    fn quantize_high(&self, e: i16) -> u8 {
        let wd = if e < 0 { -i32::from(e) - 1 } else { i32::from(e) };
        let outer = wd >= (Q2 * 8 * i32::from(self.det)) >> 15;
        match (e < 0, outer) {
            (true, false) => 1,
            (true, true) => 0,
            (false, false) => 3,
            (false, true) => 2,
        }
    }
}

/// Pairs the QMF's delay line takes before it moves its last 22 values back to the start.
const QMF_RUN: usize = 64;

/// The QMF's delay line, oldest first: the last 24 values end at `pos`. At the transmit
/// side a pair is (older sample, newer sample); at the receive side (sum, difference) of a
/// pair of sub-band samples. Written forwards and moved back once every [`QMF_RUN`] pairs,
/// rather than shifted at every pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Qmf {
    x: [i32; 24 + 2 * QMF_RUN],
    pos: usize,
}

impl Qmf {
    const fn new() -> Qmf {
        Qmf { x: [0; 24 + 2 * QMF_RUN], pos: 24 }
    }

    /// Pushes a pair (`older`, then `newer`) and returns the two filter sums: over the even
    /// taps from the newest value on, Σ h(2i)·x(n − 2i), and over the odd ones,
    /// Σ h(2i+1)·x(n − 2i − 1). (The window is oldest first, so value k is at age 23 − k:
    /// its tap is h(23 − k), which is h(k) since the filter is symmetric.)
    #[inline(always)]
    fn push(&mut self, older: i32, newer: i32) -> (i32, i32) {
        if self.pos == self.x.len() {
            self.x.copy_within(self.pos - 22.., 0);
            self.pos = 22;
        }
        self.x[self.pos] = older;
        self.x[self.pos + 1] = newer;
        self.pos += 2;
        let w: &[i32; 24] = self.x[self.pos - 24..self.pos].try_into().expect("24 values");
        let (mut even, mut odd) = (0i32, 0i32);
        for i in 0..12 {
            // Value 2i + 1 is at an even age, value 2i at an odd one.
            even += QMF[2 * i + 1] * w[2 * i + 1];
            odd += QMF[2 * i] * w[2 * i];
        }
        (even, odd)
    }
}

// ---- encoder and decoder -----------------------------------------------------------------

/// A G.722 64 kbit/s encoder: 16 kHz PCM to one octet per two samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct G722Encoder {
    qmf: Qmf,
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        G722Encoder::new()
    }
}

impl G722Encoder {
    /// An encoder in the reset state.
    pub const fn new() -> G722Encoder {
        G722Encoder { qmf: Qmf::new(), low: Band::new(32), high: Band::new(8) }
    }

    /// Back to the reset state.
    pub fn reset(&mut self) {
        *self = G722Encoder::new();
    }

    /// Encodes `pcm` (16 kHz) into `out`, one octet per pair of samples: the lower band's
    /// 6-bit code word in bits 0…5, the higher band's 2-bit word in bits 6…7 (the octet
    /// RFC 3551 carries). Stops at the shorter of `pcm.len() / 2` pairs and `out.len()`
    /// octets (an odd last sample is not encoded) and returns the octets written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = (pcm.len() / 2).min(out.len());
        for (pair, o) in pcm.chunks_exact(2).zip(out.iter_mut()).take(n) {
            *o = self.encode_pair(pair[0], pair[1]);
        }
        n
    }

    /// Encodes one pair of samples, `first` the older.
    #[inline]
    pub fn encode_pair(&mut self, first: i16, second: i16) -> u8 {
        // Transmit QMF: x_L = (x_A + x_B), x_H = (x_A − x_B), with x_A over the even taps
        // from the newest sample on and x_B over the odd ones, descaled to 15 bits.
        let (xa, xb) = self.qmf.push(i32::from(first), i32::from(second));
        let xl = limit(sat((xa + xb) >> 14));
        let xh = limit(sat((xa - xb) >> 14));

        let il = self.low.quantize_low(sub(xl, self.low.s));
        self.low.adapt_low(il);
        let ih = self.high.quantize_high(sub(xh, self.high.s));
        self.high.adapt_high(ih);
        (ih << 6) | il
    }
}

/// A G.722 64 kbit/s decoder: one octet to two 16 kHz samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct G722Decoder {
    qmf: Qmf,
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        G722Decoder::new()
    }
}

impl G722Decoder {
    /// A decoder in the reset state.
    pub const fn new() -> G722Decoder {
        G722Decoder { qmf: Qmf::new(), low: Band::new(32), high: Band::new(8) }
    }

    /// Back to the reset state.
    pub fn reset(&mut self) {
        *self = G722Decoder::new();
    }

    /// Decodes `code` into `out` (16 kHz), two samples per octet. Stops at the shorter of
    /// `code.len()` octets and `out.len() / 2` pairs; returns the samples written.
    pub fn decode(&mut self, code: &[u8], out: &mut [i16]) -> usize {
        let n = code.len().min(out.len() / 2);
        for (c, o) in code.iter().zip(out.chunks_exact_mut(2)).take(n) {
            let (a, b) = self.decode_octet(*c);
            o[0] = a;
            o[1] = b;
        }
        2 * n
    }

    /// Decodes one octet into two samples, the older first.
    #[inline]
    pub fn decode_octet(&mut self, code: u8) -> (i16, i16) {
        let il = code & 0x3F;
        let ih = code >> 6;

        // Lower band: the output from the 6-bit inverse quantizer (INVQBL, mode 1), the
        // adaptation from the 4-bit one.
        let dl = mult(self.low.det, QM6[usize::from(il)]);
        let rl = limit(add(self.low.s, dl));
        self.low.adapt_low(il);
        // Higher band: its reconstructed signal.
        let rh = limit(self.high.adapt_high(ih));

        // Receive QMF: x_d = r_L − r_H through the even taps gives the first output sample,
        // x_s = r_L + r_H through the odd taps the second; ×2 and descaled (2¹³ of the
        // coefficients, 2⁻¹ of the 15-bit sub-bands: >> 11 in all).
        let (a, b) = self.qmf.push(i32::from(add(rl, rh)), i32::from(sub(rl, rh)));
        (sat(a >> 11), sat(b >> 11))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codec's delay in samples.
    const DELAY: usize = 22;

    fn sine(freq: f64, amplitude: f64, n: usize) -> Vec<i16> {
        (0..n).map(|i| (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / 16_000.0).sin()) as i16).collect()
    }

    fn round_trip(pcm: &[i16]) -> Vec<i16> {
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let mut out = Vec::with_capacity(pcm.len());
        let (mut code, mut frame) = ([0u8; FRAME_BYTES], [0i16; FRAME_SAMPLES]);
        for chunk in pcm.chunks(FRAME_SAMPLES) {
            let n = enc.encode(chunk, &mut code);
            let m = dec.decode(&code[..n], &mut frame);
            out.extend_from_slice(&frame[..m]);
        }
        out
    }

    /// The SNR in dB of `got` against `want` delayed by `lag`, over the second half (after
    /// the adaptation's start).
    fn snr_at(want: &[i16], got: &[i16], lag: usize) -> f64 {
        let start = want.len() / 2;
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        for i in start..want.len() - lag {
            let (w, g) = (f64::from(want[i]), f64::from(got[i + lag]));
            sig += w * w;
            err += (w - g) * (w - g);
        }
        10.0 * (sig / err.max(1e-9)).log10()
    }

    /// The best SNR over delays of 0…40 samples, and that delay.
    fn snr(want: &[i16], got: &[i16]) -> (f64, usize) {
        (0..40).map(|lag| (snr_at(want, got, lag), lag)).max_by(|a, b| a.0.total_cmp(&b.0)).unwrap()
    }

    /// A wideband signal: 13 tones of equal level from 650 Hz to 6.1 kHz.
    fn wideband(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                (1..=13)
                    .map(|k| {
                        1200.0
                            * (2.0 * std::f64::consts::PI * (200.0 + 450.0 * k as f64 + 11.0 * (k * k % 7) as f64) * t)
                                .sin()
                    })
                    .sum::<f64>() as i16
            })
            .collect()
    }

    #[test]
    fn round_trip_snr_of_tones() {
        // The delay, unambiguous on a wideband signal: the two 24-tap QMFs' 23 samples less
        // the one sample of the pairing (a pair's older sample leaves the decoder first).
        let noise = wideband(16_000);
        let (db, delay) = snr(&noise, &round_trip(&noise));
        eprintln!("G.722 round trip of wideband noise: SNR {db:.1} dB at a delay of {delay} samples");
        assert_eq!(delay, DELAY);
        assert!(db > 10.0, "{db:.1} dB");
        for (freq, min_db) in [(1000.0, 30.0), (5000.0, 20.0)] {
            let pcm = sine(freq, 10_000.0, 16_000);
            let got = round_trip(&pcm);
            assert_eq!(got.len(), pcm.len());
            let db = snr_at(&pcm, &got, DELAY);
            eprintln!("G.722 round trip of {freq} Hz at -10 dBFS: SNR {db:.1} dB");
            assert!(db > min_db, "{freq} Hz: {db:.1} dB");
        }
    }

    #[test]
    fn silence_stays_silent() {
        let got = round_trip(&[0i16; 16_000]);
        assert!(got.iter().all(|s| s.unsigned_abs() <= 4), "{:?}", got.iter().max_by_key(|s| s.unsigned_abs()));
        // And after a loud tone, the decoder settles back to near silence.
        let mut pcm = sine(1000.0, 20_000.0, 8000);
        pcm.extend(std::iter::repeat_n(0, 8000));
        let got = round_trip(&pcm);
        let tail = &got[12_000..];
        assert!(tail.iter().all(|s| s.unsigned_abs() <= 4), "{:?}", tail.iter().max_by_key(|s| s.unsigned_abs()));
    }

    #[test]
    fn full_scale_and_square_waves_do_not_overflow() {
        // Clipping-level input drives every saturation in the arithmetic; the output must
        // still follow the input.
        let square: Vec<i16> = (0..16_000).map(|i| if (i / 20) % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        let got = round_trip(&square);
        assert_eq!(got.len(), square.len());
        let loud = sine(700.0, 32767.0, 16_000);
        let (db, _) = snr(&loud, &round_trip(&loud));
        assert!(db > 15.0, "{db:.1} dB");
    }

    #[test]
    fn code_words_of_the_reset_state() {
        // Zero input from reset: with DETL 32 the lower band's first three decision levels
        // are 0 (Q6 × 8 × 32 >> 15), so a zero difference falls in interval 4, positive:
        // code word 58; the higher band's level is 564 × 8 × 8 >> 15 = 1, so zero is inside
        // it, positive: 3. 0b11_111010.
        let mut enc = G722Encoder::new();
        let mut out = [0u8; 4];
        assert_eq!(enc.encode(&[0; 8], &mut out), 4);
        assert_eq!(out, [0xFA; 4]);
        // An odd last sample and a short output are left alone.
        assert_eq!(enc.encode(&[0; 7], &mut out), 3);
        assert_eq!(enc.encode(&[0; 8], &mut out[..2]), 2);
        let mut dec = G722Decoder::new();
        let mut pcm = [1i16; 5];
        assert_eq!(dec.decode(&[0xFA; 4], &mut pcm), 4);
        assert_eq!(pcm[4], 1);
    }

    #[test]
    fn tables_follow_their_definitions() {
        // ILB is 2^(11 + k/32), rounded.
        for (k, v) in ILB.iter().enumerate() {
            assert_eq!(*v, (2048.0 * 2f64.powf(k as f64 / 32.0)).round() as i32, "ILB[{k}]");
        }
        // The scale factors' range: NB 0 gives the reset values (DETL 32, DETH 8), the
        // largest NB of either band 2^14.
        assert_eq!(antilog(0, 2), 32);
        assert_eq!(antilog(18432, 2), 16384);
        assert_eq!(antilog(0, 0), 8);
        assert_eq!(antilog(22528, 0), 16384);
        // The 4-bit levels are every fourth 6-bit decision level.
        for (m, v) in OQ4.iter().enumerate() {
            assert_eq!(i32::from(*v), Q6[4 * m]);
        }
        // QUANTL's code words decode to the level of their own interval and sign.
        for mil in 1..=30 {
            assert_eq!(QM6[usize::from(ILP[mil])], OQ6[mil] * 8);
            assert_eq!(QM6[usize::from(ILN[mil])], -OQ6[mil] * 8);
        }
    }

    #[test]
    fn encode_and_decode_are_deterministic_across_frame_splits() {
        let pcm = sine(440.0, 12_000.0, 3200);
        let (mut a, mut b) = (G722Encoder::new(), G722Encoder::new());
        let (mut ca, mut cb) = (vec![0u8; 1600], vec![0u8; 1600]);
        a.encode(&pcm, &mut ca);
        let mut at = 0;
        for chunk in pcm.chunks(58) {
            at += b.encode(chunk, &mut cb[at..]);
        }
        assert_eq!(ca, cb);
        a.reset();
        assert_eq!(a, G722Encoder::new());
    }

    /// The signal of the comparisons with FFmpeg: two seconds of a speech-like signal (tones,
    /// a sweep and noise under a varying envelope), then half a second of a full-scale
    /// square wave and half a second of clipped loud noise (for the saturations).
    fn comparison_signal() -> Vec<i16> {
        let mut seed = 0x2468_ace1u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 16) as i16
        };
        let mut pcm: Vec<i16> = (0..32_000)
            .map(|i| {
                let t = f64::from(i) / 16_000.0;
                let noise = f64::from(next()) / 8.0;
                let env = 0.2 + 0.8 * (2.0 * std::f64::consts::PI * 1.3 * t).sin().abs();
                let v = 9000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 6000.0 * (2.0 * std::f64::consts::PI * (300.0 + 3000.0 * t) * t).sin()
                    + 3000.0 * (2.0 * std::f64::consts::PI * 6100.0 * t).sin()
                    + noise;
                (v * env).clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        pcm.extend((0..8000).map(|i| if (i / 13) % 2 == 0 { i16::MAX } else { i16::MIN }));
        pcm.extend((0..8000).map(|_| next().saturating_mul(2)));
        pcm
    }

    /// Where the comparison signal's full-scale part starts, in octets.
    const FULL_SCALE_OCTET: usize = 16_000;

    /// FNV-1a, 64 bits.
    fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    }

    /// FFmpeg 5.1's output for the speech-like part of [`comparison_signal`] (`ffmpeg -c:a
    /// g722`, then decoding that with `-f g722`), as FNV-1a hashes, so that the comparison
    /// also runs where FFmpeg is not installed: its code octets, and its decoded samples
    /// (little-endian). Printed by [`g722_matches_ffmpeg`].
    const FFMPEG_CODE_FNV: u64 = 0x5c53_3410_3b97_9785;
    const FFMPEG_PCM_FNV: u64 = 0x8b56_d66b_28e1_2348;

    #[test]
    fn g722_matches_ffmpeg_recorded() {
        let pcm = &comparison_signal()[..2 * FULL_SCALE_OCTET];
        let mut code = vec![0u8; FULL_SCALE_OCTET];
        assert_eq!(G722Encoder::new().encode(pcm, &mut code), FULL_SCALE_OCTET);
        assert_eq!(fnv(code.iter().copied()), FFMPEG_CODE_FNV, "encoder");
        let mut out = vec![0i16; pcm.len()];
        G722Decoder::new().decode(&code, &mut out);
        assert_eq!(fnv(out.iter().flat_map(|s| s.to_le_bytes())), FFMPEG_PCM_FNV, "decoder");
    }

    /// Bit-exactness against another implementation, live: FFmpeg's G.722 encoder and
    /// decoder (a Debian package; skipped when `ffmpeg` is not installed). The same PCM
    /// through both encoders gives the same octets (but for clipping input, see below), and
    /// the same octets through both decoders the same samples.
    #[test]
    fn g722_matches_ffmpeg() {
        use std::process::Command;
        if Command::new("ffmpeg").arg("-version").output().is_err() {
            eprintln!("ffmpeg not installed: skipping the live G.722 comparison");
            return;
        }
        let dir = std::env::temp_dir().join(format!("dialtone-g722-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pcm = comparison_signal();
        let raw: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let (pcm_path, code_path, dec_path) = (dir.join("in.s16"), dir.join("ff.g722"), dir.join("ff.s16"));
        std::fs::write(&pcm_path, &raw).unwrap();
        let ff = |args: &[&str]| {
            let out = Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).output();
            let out = out.unwrap();
            assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let (p, c, d) = (pcm_path.to_str().unwrap(), code_path.to_str().unwrap(), dec_path.to_str().unwrap());
        ff(&["-f", "s16le", "-ar", "16000", "-ac", "1", "-i", p, "-c:a", "g722", "-f", "g722", c]);
        ff(&["-f", "g722", "-i", c, "-f", "s16le", "-ar", "16000", "-ac", "1", d]);
        let theirs = std::fs::read(&code_path).unwrap();
        let their_pcm: Vec<i16> =
            std::fs::read(&dec_path).unwrap().chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "ffmpeg, speech-like part: code FNV {:#018x}, decoded FNV {:#018x}",
            fnv(theirs[..FULL_SCALE_OCTET].iter().copied()),
            fnv(their_pcm[..2 * FULL_SCALE_OCTET].iter().flat_map(|s| s.to_le_bytes()))
        );

        let mut ours = vec![0u8; pcm.len() / 2];
        G722Encoder::new().encode(&pcm, &mut ours);
        assert_eq!(theirs.len(), ours.len());
        // The encoders agree up to the full-scale part, where the ITU-T reference limits the
        // transmit QMF's output to 15 bits (LIMIT) and FFmpeg does not.
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        assert!(first.is_some_and(|at| at >= FULL_SCALE_OCTET), "encoders differ from octet {first:?} on");

        let mut our_pcm = vec![0i16; theirs.len() * 2];
        G722Decoder::new().decode(&theirs, &mut our_pcm);
        assert_eq!(their_pcm.len(), our_pcm.len());
        let first = our_pcm.iter().zip(&their_pcm).position(|(a, b)| a != b);
        assert_eq!(first, None, "decoders differ from sample {first:?} on");
    }
}
