//! G.711 µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8).
//!
//! Bit-exact with the classic Sun/CCITT `g711.c` (`linear2ulaw`, `ulaw2linear`,
//! `linear2alaw`, `alaw2linear`), which is the reference most SIP stacks follow:
//!
//! * µ-law encode: the input is reduced to 14 bits by an arithmetic shift (`x >> 2`, so
//!   negative values round towards −∞), the magnitude is clipped to 8159, biased by 33,
//!   and coded as 3 segment bits + 4 mantissa bits; the code word is complemented.
//! * A-law encode: the input is reduced to 13 bits (`x >> 3`), negative values are coded
//!   from the one's-complement magnitude (`-x - 1`), 3 segment bits + 4 mantissa bits,
//!   and the even bits are inverted (`^ 0x55`).
//!
//! Decoding goes through 256-entry tables; encoding through one table per law indexed by
//! the shifted input (16 Ki entries for µ-law, 8 Ki for A-law). All tables are computed at
//! compile time, so there is no initialisation and nothing allocates.
//!
//! µ-law has two zero codes: `0xFF` (+0) and `0x7F` (−0). Both decode to 0 and the encoder
//! only ever produces `0xFF` for a zero input, as the reference does.

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, PCMU (North America, Japan). RTP static payload type 0.
    Ulaw,
    /// A-law, PCMA (rest of the world). RTP static payload type 8.
    Alaw,
}

impl Law {
    /// The static RTP payload type (RFC 3551 §6): 0 for PCMU, 8 for PCMA.
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The SDP encoding name (`PCMU` / `PCMA`).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    /// The code word of digital silence (the encoding of linear 0).
    pub const fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// Encodes one sample.
    #[inline]
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    /// Decodes one code word.
    #[inline]
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(code),
            Law::Alaw => alaw_decode(code),
        }
    }

    /// Encodes `min(input.len(), output.len())` samples; returns how many.
    pub fn encode(self, input: &[i16], output: &mut [u8]) -> usize {
        match self {
            Law::Ulaw => encode_ulaw(input, output),
            Law::Alaw => encode_alaw(input, output),
        }
    }

    /// Decodes `min(input.len(), output.len())` code words; returns how many.
    pub fn decode(self, input: &[u8], output: &mut [i16]) -> usize {
        match self {
            Law::Ulaw => decode_ulaw(input, output),
            Law::Alaw => decode_alaw(input, output),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The reference algorithms, as `const fn` so the tables below are built at compile time.

/// µ-law bias (33 on the 14-bit scale, 0x84 on the 16-bit scale).
const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude before the bias is added.
const ULAW_CLIP: i32 = 8159;

/// µ-law encoding of a 14-bit value (`x >> 2` of a 16-bit sample).
const fn ulaw_from_14bit(v: i32) -> u8 {
    let (mut mag, mask): (i32, i32) = if v < 0 { (-v, 0x7F) } else { (v, 0xFF) };
    if mag > ULAW_CLIP {
        mag = ULAW_CLIP;
    }
    mag += ULAW_BIAS >> 2;
    // Segment: the position of the leading one above bit 5 (end points 0x3F, 0x7F, …, 0x1FFF).
    let mut seg = 0;
    while seg < 8 && mag > (0x40 << seg) - 1 {
        seg += 1;
    }
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F);
    (code ^ mask) as u8
}

/// A-law encoding of a 13-bit value (`x >> 3` of a 16-bit sample).
const fn alaw_from_13bit(v: i32) -> u8 {
    let (mag, mask): (i32, i32) = if v >= 0 { (v, 0xD5) } else { (-v - 1, 0x55) };
    // Segment end points 0x1F, 0x3F, …, 0xFFF.
    let mut seg = 0;
    while seg < 8 && mag > (0x20 << seg) - 1 {
        seg += 1;
    }
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let code = (seg << 4) | ((mag >> shift) & 0x0F);
    (code ^ mask) as u8
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code as i32;
    let t = (((u & 0x0F) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn alaw_to_linear(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    t
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    t
}

/// Indexed by `(x >> 2) + 8192`: every 14-bit value.
const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut t = [0u8; 1 << 14];
    let mut i = 0;
    while i < (1 << 14) {
        t[i] = ulaw_from_14bit(i as i32 - (1 << 13));
        i += 1;
    }
    t
}

/// Indexed by `(x >> 3) + 4096`: every 13-bit value.
const fn build_alaw_encode() -> [u8; 1 << 13] {
    let mut t = [0u8; 1 << 13];
    let mut i = 0;
    while i < (1 << 13) {
        t[i] = alaw_from_13bit(i as i32 - (1 << 12));
        i += 1;
    }
    t
}

/// µ-law code → linear sample, for all 256 codes.
pub static ULAW_DECODE: [i16; 256] = build_ulaw_decode();
/// A-law code → linear sample, for all 256 codes.
pub static ALAW_DECODE: [i16; 256] = build_alaw_decode();
static ULAW_ENCODE: [u8; 1 << 14] = build_ulaw_encode();
static ALAW_ENCODE: [u8; 1 << 13] = build_alaw_encode();

// ---------------------------------------------------------------------------------------
// Public sample and slice functions.

/// Encodes one 16-bit sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // (x >> 2) + 8192 is in 0..16384 for every i16, so the index is always in bounds.
    ULAW_ENCODE[((sample >> 2) as i32 + (1 << 13)) as usize]
}

/// Decodes one µ-law code word to a 16-bit sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one 16-bit sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    // (x >> 3) + 4096 is in 0..8192 for every i16.
    ALAW_ENCODE[((sample >> 3) as i32 + (1 << 12)) as usize]
}

/// Decodes one A-law code word to a 16-bit sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Encodes `min(input.len(), output.len())` samples to µ-law; returns how many.
pub fn encode_ulaw(input: &[i16], output: &mut [u8]) -> usize {
    let n = input.len().min(output.len());
    for (o, &s) in output[..n].iter_mut().zip(&input[..n]) {
        *o = ulaw_encode(s);
    }
    n
}

/// Decodes `min(input.len(), output.len())` µ-law code words; returns how many.
pub fn decode_ulaw(input: &[u8], output: &mut [i16]) -> usize {
    let n = input.len().min(output.len());
    for (o, &c) in output[..n].iter_mut().zip(&input[..n]) {
        *o = ulaw_decode(c);
    }
    n
}

/// Encodes `min(input.len(), output.len())` samples to A-law; returns how many.
pub fn encode_alaw(input: &[i16], output: &mut [u8]) -> usize {
    let n = input.len().min(output.len());
    for (o, &s) in output[..n].iter_mut().zip(&input[..n]) {
        *o = alaw_encode(s);
    }
    n
}

/// Decodes `min(input.len(), output.len())` A-law code words; returns how many.
pub fn decode_alaw(input: &[u8], output: &mut [i16]) -> usize {
    let n = input.len().min(output.len());
    for (o, &c) in output[..n].iter_mut().zip(&input[..n]) {
        *o = alaw_decode(c);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    // An independent, deliberately literal transcription of the reference algorithm
    // (Sun g711.c): a search over the segment end-point tables, 16-bit arithmetic as in C.
    const SEG_UEND: [i16; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    const SEG_AEND: [i16; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

    fn search(val: i16, table: &[i16; 8]) -> i16 {
        for (i, &end) in table.iter().enumerate() {
            if val <= end {
                return i as i16;
            }
        }
        8
    }

    fn ref_linear2ulaw(pcm: i16) -> u8 {
        let mut pcm_val = pcm >> 2;
        let mask: i16;
        if pcm_val < 0 {
            pcm_val = -pcm_val;
            mask = 0x7F;
        } else {
            mask = 0xFF;
        }
        if pcm_val > 8159 {
            pcm_val = 8159;
        }
        pcm_val += 0x84 >> 2;
        let seg = search(pcm_val, &SEG_UEND);
        if seg >= 8 {
            (0x7F ^ mask) as u8
        } else {
            let uval = (seg << 4) | ((pcm_val >> (seg + 1)) & 0xF);
            (uval ^ mask) as u8
        }
    }

    fn ref_linear2alaw(pcm: i16) -> u8 {
        let mut pcm_val = pcm >> 3;
        let mask: i16;
        if pcm_val >= 0 {
            mask = 0xD5;
        } else {
            mask = 0x55;
            pcm_val = -pcm_val - 1;
        }
        let seg = search(pcm_val, &SEG_AEND);
        if seg >= 8 {
            return (0x7F ^ mask) as u8;
        }
        let mut aval = seg << 4;
        if seg < 2 {
            aval |= (pcm_val >> 1) & 0xF;
        } else {
            aval |= (pcm_val >> seg) & 0xF;
        }
        (aval ^ mask) as u8
    }

    fn ref_ulaw2linear(u: u8) -> i16 {
        let u_val = !u;
        let mut t: i16 = (((u_val & 0x0F) as i16) << 3) + 0x84;
        t <<= (u_val & 0x70) >> 4;
        if u_val & 0x80 != 0 {
            0x84 - t
        } else {
            t - 0x84
        }
    }

    fn ref_alaw2linear(a: u8) -> i16 {
        let a_val = a ^ 0x55;
        let mut t: i16 = ((a_val & 0x0F) as i16) << 4;
        let seg = (a_val & 0x70) >> 4;
        match seg {
            0 => t += 8,
            1 => t += 0x108,
            _ => {
                t += 0x108;
                t <<= seg - 1;
            }
        }
        if a_val & 0x80 != 0 {
            t
        } else {
            -t
        }
    }

    #[test]
    fn exhaustive_encode_matches_reference() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), ref_linear2ulaw(x), "µ-law encode({x})");
            assert_eq!(alaw_encode(x), ref_linear2alaw(x), "A-law encode({x})");
        }
    }

    #[test]
    fn every_code_decodes_to_reference_and_reencodes() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_decode(c), ref_ulaw2linear(c), "µ-law decode({c:#04x})");
            assert_eq!(alaw_decode(c), ref_alaw2linear(c), "A-law decode({c:#04x})");
            // µ-law 0x7F is −0: it decodes to 0, which encodes as +0 (0xFF), per the reference.
            let expect_u = if c == 0x7F { 0xFF } else { c };
            assert_eq!(ulaw_encode(ulaw_decode(c)), expect_u, "µ-law round trip {c:#04x}");
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law round trip {c:#04x}");
        }
    }

    #[test]
    fn known_vectors() {
        // Digital silence.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(Law::Ulaw.silence(), ulaw_encode(0));
        assert_eq!(Law::Alaw.silence(), alaw_encode(0));
        // Sun g711.c rounds negative inputs towards −∞ before taking the magnitude.
        assert_eq!(ulaw_encode(-1), 0x7E);
        assert_eq!(alaw_encode(-1), 0x55);
        // Full scale: the largest codes.
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        // Decode extremes of the tables.
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        // A mid-range value: 1000 → µ-law 0xCE (decodes 988), A-law 0xFA (decodes 1008).
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(ulaw_decode(0xCE), 988);
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_decode(0xFA), 1008);
    }

    #[test]
    fn decode_tables_are_monotonic_per_sign() {
        // µ-law 0x80..=0x8F is the top positive segment, 0xFF is +0.
        for c in 0x80u8..0xFF {
            assert!(ulaw_decode(c) > ulaw_decode(c + 1));
        }
        for c in 0x00u8..0x7F {
            assert!(ulaw_decode(c) < ulaw_decode(c + 1));
        }
    }

    #[test]
    fn slice_functions() {
        let pcm: Vec<i16> = (0..160i32).map(|i| ((i * 409) % 65536 - 32768) as i16).collect();
        let mut enc = [0u8; 160];
        let mut dec = [0i16; 160];
        for law in [Law::Ulaw, Law::Alaw] {
            assert_eq!(law.encode(&pcm, &mut enc), 160);
            for (s, c) in pcm.iter().zip(enc.iter()) {
                assert_eq!(law.encode_sample(*s), *c);
            }
            assert_eq!(law.decode(&enc, &mut dec), 160);
            for (c, d) in enc.iter().zip(dec.iter()) {
                assert_eq!(law.decode_sample(*c), *d);
            }
        }
        // Mismatched lengths convert the common prefix only.
        assert_eq!(encode_ulaw(&pcm, &mut enc[..10]), 10);
        assert_eq!(decode_alaw(&enc[..5], &mut dec), 5);
        assert_eq!(Law::Ulaw.payload_type(), 0);
        assert_eq!(Law::Alaw.payload_type(), 8);
    }
}
