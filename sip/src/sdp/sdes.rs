//! SDES-SRTP in offer/answer (RFC 4568): the `a=crypto` lines of our offers and answers,
//! and the keys an exchange settles. The SRTP itself is the media engine's.
//!
//! `a=crypto:<tag> <suite> inline:<base64 of key‖salt>[|lifetime][|MKI:len]` (§9.1); we
//! offer and accept `AES_CM_128_HMAC_SHA1_80` and `_32` (30-byte master key‖salt, §6.2),
//! without MKI or session parameters (a line with them is passed over).

use super::model::{Attribute, MediaDescription};

/// The suites we know, most preferred first.
pub const SUITES: [&str; 2] = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"];

/// Whether SRTP is asked for or only welcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpMode {
    /// Offer `RTP/AVP` with `a=crypto` lines (SDES best effort): a peer that takes one gets
    /// SRTP, one that ignores them plain RTP. Answer an offer's crypto if there is one.
    Optional,
    /// Offer `RTP/SAVP`; accept only offers with a usable `a=crypto`.
    Mandatory,
}

/// Our side of SDES: the mode, and a fresh master key‖salt per suite we offer (one per
/// suite, most preferred first; an answer uses the chosen suite's).
#[derive(Clone, PartialEq, Eq)]
pub struct Sdes {
    /// Optional or mandatory.
    pub mode: SrtpMode,
    /// (suite, key‖salt), in preference order.
    pub keys: Vec<(&'static str, [u8; 30])>,
}

impl std::fmt::Debug for Sdes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sdes({:?}, {:?})", self.mode, self.keys.iter().map(|k| k.0).collect::<Vec<_>>())
    }
}

/// What SDES settled for a stream: the suite and the two master keys.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKeys {
    /// The suite's SDP name.
    pub suite: &'static str,
    /// Ours (we send with it).
    pub ours: [u8; 30],
    /// The peer's.
    pub theirs: [u8; 30],
}

impl std::fmt::Debug for SdesKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SdesKeys({})", self.suite)
    }
}

/// One `a=crypto` line we can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    /// Its tag.
    pub tag: u32,
    /// Its suite (one of [`SUITES`]).
    pub suite: &'static str,
    /// Its key‖salt.
    pub key: [u8; 30],
}

/// The usable `a=crypto` lines of a media section, in order.
pub fn cryptos(m: &MediaDescription) -> Vec<Crypto> {
    m.attributes
        .iter()
        .filter_map(|a| match a {
            Attribute::Other { name, value: Some(v) } if name.eq_ignore_ascii_case("crypto") => parse(v),
            _ => None,
        })
        .collect()
}

/// Parses one `a=crypto` value; `None` for a suite, key form or parameter we do not take.
pub fn parse(v: &str) -> Option<Crypto> {
    let mut parts = v.split_ascii_whitespace();
    let tag = parts.next()?.parse::<u32>().ok()?;
    let suite = SUITES.into_iter().find(|s| *s == parts.next().unwrap_or(""))?;
    let params = parts.next()?;
    if parts.next().is_some() {
        return None; // session parameters (UNENCRYPTED_SRTP, …): not taken
    }
    // One key only; lifetime allowed, MKI not.
    let inline = params.strip_prefix("inline:")?;
    let mut fields = inline.split('|');
    let key = decode(fields.next()?)?;
    if fields.any(|f| f.contains(':')) {
        return None;
    }
    Some(Crypto { tag, suite, key: key.try_into().ok()? })
}

/// The `a=crypto` attribute for `tag`, `suite` and `key`.
pub fn attribute(tag: u32, suite: &str, key: &[u8; 30]) -> Attribute {
    Attribute::Other { name: "crypto".into(), value: Some(format!("{tag} {suite} inline:{}", encode(key))) }
}

/// Whether `proto` is a secure RTP profile (`RTP/SAVP`, `RTP/SAVPF`).
pub fn is_secure_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/SAVP") || proto.eq_ignore_ascii_case("RTP/SAVPF")
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (RFC 4648 §4) with padding.
fn encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 decoding, padding optional; `None` on any other character.
fn decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_lines_round_trip_and_odd_ones_are_passed_over() {
        let key: [u8; 30] = std::array::from_fn(|i| i as u8 * 7);
        let Attribute::Other { value: Some(v), .. } = attribute(1, SUITES[0], &key) else { panic!() };
        assert_eq!(v.len(), "1 AES_CM_128_HMAC_SHA1_80 inline:".len() + 40, "30 bytes: 40 base64 characters");
        assert_eq!(parse(&v), Some(Crypto { tag: 1, suite: SUITES[0], key }));
        // RFC 4568 §4's example line (its key is 30 bytes) with a lifetime.
        let rfc = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        assert_eq!(parse(rfc).map(|c| (c.tag, c.suite)), Some((1, SUITES[0])));
        assert_eq!(
            parse("2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"),
            None,
            "MKI"
        );
        assert_eq!(parse("1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"), None);
        assert_eq!(parse("1 AES_CM_128_HMAC_SHA1_80 inline:short"), None);
        assert_eq!(
            parse("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTP"),
            None
        );
        assert_eq!(decode(&encode(b"any")).as_deref(), Some(&b"any"[..]));
    }
}
