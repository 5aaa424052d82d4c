//! SRTP and SRTCP (RFC 3711) with SDES keys (RFC 4568): AES-128 in counter mode and
//! HMAC-SHA1, the suites `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` (a 32-bit
//! tag on RTP, 80 on RTCP, RFC 4568 §6.2). One [`Context`] per direction: the sender's
//! protects with our key, the receiver's checks and decrypts with the peer's. The
//! receiver keeps the rollover counter by the index estimate of §3.3.1 and refuses
//! replays within a 64-packet window (§3.3.2); every packet is authenticated before it is
//! decrypted or counted. Sans-IO, no allocation beyond the packet.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A crypto suite (RFC 4568 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-CM, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-CM, HMAC-SHA1 with a 32-bit tag on SRTP (80 on SRTCP).
    AesCm128HmacSha1_32,
}

impl Suite {
    /// The SDP name.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Parses an SDP name (case-sensitive, as RFC 4568 writes them).
    pub fn parse(s: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32].into_iter().find(|x| x.name() == s)
    }

    /// The SRTP authentication tag's length in bytes.
    pub fn rtp_tag(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// The SRTCP tag length (both suites).
const RTCP_TAG: usize = 10;

/// A master key and salt: 16 + 14 bytes, the `inline:` value of `a=crypto`.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    /// The key.
    pub key: [u8; 16],
    /// The salt.
    pub salt: [u8; 14],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// From the 30 bytes key || salt.
    pub fn from_bytes(b: &[u8]) -> Option<MasterKey> {
        if b.len() != 30 {
            return None;
        }
        let (mut key, mut salt) = ([0u8; 16], [0u8; 14]);
        key.copy_from_slice(&b[..16]);
        salt.copy_from_slice(&b[16..]);
        Some(MasterKey { key, salt })
    }

    /// The 30 bytes key || salt.
    pub fn to_bytes(&self) -> [u8; 30] {
        let mut b = [0u8; 30];
        b[..16].copy_from_slice(&self.key);
        b[16..].copy_from_slice(&self.salt);
        b
    }
}

/// Why a packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpError {
    /// Too short to be one.
    Short,
    /// The tag does not match: forged, damaged, or another key.
    Auth,
    /// Seen before (or too old for the window).
    Replay,
}

/// Session keys for one of RTP or RTCP.
struct Keys {
    cipher: Aes128,
    salt: [u8; 14],
    auth: [u8; 20],
}

impl Keys {
    /// RFC 3711 §4.3.1 with a key derivation rate of 0: labels 0/1/2 (RTP) or 3/4/5 (RTCP).
    fn derive(master: &MasterKey, first_label: u8) -> Keys {
        let prf = Aes128::new(&master.key.into());
        let derive = |label: u8, out: &mut [u8]| {
            let mut x = [0u8; 16];
            x[..14].copy_from_slice(&master.salt);
            x[7] ^= label;
            keystream(&prf, &x, out);
        };
        let (mut k, mut a, mut s) = ([0u8; 16], [0u8; 20], [0u8; 14]);
        derive(first_label, &mut k);
        derive(first_label + 1, &mut a);
        derive(first_label + 2, &mut s);
        Keys { cipher: Aes128::new(&k.into()), salt: s, auth: a }
    }

    /// XORs `data` with the AES-CM keystream for `ssrc` and packet index `index` (§4.1.1).
    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        let mut block = [0u8; 16];
        for (n, chunk) in data.chunks_mut(16).enumerate() {
            let mut ctr = iv;
            let c = u16::from_be_bytes([ctr[14], ctr[15]]).wrapping_add(n as u16);
            ctr[14..].copy_from_slice(&c.to_be_bytes());
            block.copy_from_slice(&ctr);
            self.cipher.encrypt_block((&mut block).into());
            for (d, k) in chunk.iter_mut().zip(block.iter()) {
                *d ^= k;
            }
        }
    }

    /// HMAC-SHA1 over `parts`, truncated to `len`.
    fn tag(&self, parts: &[&[u8]], len: usize) -> [u8; 10] {
        let mut mac = <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(&self.auth).expect("any key length");
        for p in parts {
            mac.update(p);
        }
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; 10];
        t[..len].copy_from_slice(&full[..len]);
        t
    }
}

/// The AES-CM keystream from counter block `iv` into `out` (the PRF of §4.3.3).
fn keystream(cipher: &Aes128, iv: &[u8; 16], out: &mut [u8]) {
    for (n, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = *iv;
        let c = u16::from_be_bytes([block[14], block[15]]).wrapping_add(n as u16);
        block[14..].copy_from_slice(&c.to_be_bytes());
        cipher.encrypt_block((&mut block).into());
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

/// Equal in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The RTP header's length (fixed part, CSRCs, extension), if the packet holds it.
fn header_len(p: &[u8]) -> Option<usize> {
    if p.len() < 12 {
        return None;
    }
    let mut n = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        let ext = p.get(n + 2..n + 4)?;
        n += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (n <= p.len()).then_some(n)
}

/// One direction's crypto context.
pub struct Context {
    suite: Suite,
    rtp: Keys,
    rtcp: Keys,
    /// Sender: the rollover counter and the last sequence number sent. Receiver: the
    /// rollover counter and highest sequence number accepted (s_l).
    roc: u32,
    last_seq: Option<u16>,
    /// Receiver: highest index accepted and the replay bitmap below it.
    highest: Option<u64>,
    window: u64,
    /// SRTCP index (sender: the next; receiver: highest and its bitmap).
    rtcp_index: u32,
    rtcp_highest: Option<u32>,
    rtcp_window: u64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "srtp::Context({})", self.suite.name())
    }
}

impl Context {
    /// A context for `suite` and `master` (ours to send, the peer's to receive).
    pub fn new(suite: Suite, master: &MasterKey) -> Context {
        Context {
            suite,
            rtp: Keys::derive(master, 0),
            rtcp: Keys::derive(master, 3),
            roc: 0,
            last_seq: None,
            highest: None,
            window: 0,
            rtcp_index: 0,
            rtcp_highest: None,
            rtcp_window: 0,
        }
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Encrypts an RTP packet and appends its tag.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let h = header_len(packet).ok_or(SrtpError::Short)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        if self.last_seq.is_some_and(|last| seq < last && last - seq > 0x8000) {
            self.roc = self.roc.wrapping_add(1);
        }
        self.last_seq = Some(seq);
        let index = (u64::from(self.roc) << 16) | u64::from(seq);
        let tag_len = self.suite.rtp_tag();
        let mut out = Vec::with_capacity(packet.len() + tag_len);
        out.extend_from_slice(packet);
        self.rtp.crypt(ssrc, index, &mut out[h..]);
        let tag = self.rtp.tag(&[&out, &self.roc.to_be_bytes()], tag_len);
        out.extend_from_slice(&tag[..tag_len]);
        Ok(out)
    }

    /// Checks and decrypts an SRTP packet: the RTP packet.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let tag_len = self.suite.rtp_tag();
        if packet.len() < 12 + tag_len {
            return Err(SrtpError::Short);
        }
        let (body, tag) = packet.split_at(packet.len() - tag_len);
        let h = header_len(body).ok_or(SrtpError::Short)?;
        let seq = u16::from_be_bytes([body[2], body[3]]);
        let ssrc = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
        // §3.3.1: the rollover counter this packet was sent with.
        let v = match self.last_seq {
            None => self.roc,
            Some(s_l) if s_l < 0x8000 => {
                if seq > s_l && seq - s_l > 0x8000 {
                    self.roc.wrapping_sub(1)
                } else {
                    self.roc
                }
            }
            Some(s_l) => {
                if seq < s_l - 0x8000 {
                    self.roc.wrapping_add(1)
                } else {
                    self.roc
                }
            }
        };
        let index = (u64::from(v) << 16) | u64::from(seq);
        if let Some(high) = self.highest {
            if index <= high && (high - index >= 64 || self.window & (1 << (high - index)) != 0) {
                return Err(SrtpError::Replay);
            }
        }
        let expected = self.rtp.tag(&[body, &v.to_be_bytes()], tag_len);
        if !same(&expected[..tag_len], tag) {
            return Err(SrtpError::Auth);
        }
        let mut out = body.to_vec();
        self.rtp.crypt(ssrc, index, &mut out[h..]);
        // Accepted: the replay window and the rollover state move (§3.3.1, §3.3.2).
        match self.highest {
            Some(high) if index <= high => self.window |= 1 << (high - index),
            Some(high) => {
                let shift = index - high;
                self.window = if shift >= 64 { 1 } else { (self.window << shift) | 1 };
                self.highest = Some(index);
            }
            None => {
                self.window = 1;
                self.highest = Some(index);
            }
        }
        if self.last_seq.is_none() || v == self.roc.wrapping_add(1) {
            self.roc = v;
            self.last_seq = Some(seq);
        } else if v == self.roc && self.last_seq.is_some_and(|s| seq > s) {
            self.last_seq = Some(seq);
        }
        Ok(out)
    }

    /// Encrypts an RTCP compound packet and appends E‖index and the tag (§3.4).
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if packet.len() < 8 {
            return Err(SrtpError::Short);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let index = self.rtcp_index & 0x7fff_ffff;
        self.rtcp_index = self.rtcp_index.wrapping_add(1) & 0x7fff_ffff;
        let mut out = Vec::with_capacity(packet.len() + 4 + RTCP_TAG);
        out.extend_from_slice(packet);
        self.rtcp.crypt(ssrc, u64::from(index), &mut out[8..]);
        out.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.tag(&[&out], RTCP_TAG);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Checks and decrypts an SRTCP packet: the RTCP compound packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if packet.len() < 8 + 4 + RTCP_TAG {
            return Err(SrtpError::Short);
        }
        let (signed, tag) = packet.split_at(packet.len() - RTCP_TAG);
        let expected = self.rtcp.tag(&[signed], RTCP_TAG);
        if !same(&expected, tag) {
            return Err(SrtpError::Auth);
        }
        let (body, e_index) = signed.split_at(signed.len() - 4);
        let word = u32::from_be_bytes([e_index[0], e_index[1], e_index[2], e_index[3]]);
        let (encrypted, index) = (word & 0x8000_0000 != 0, word & 0x7fff_ffff);
        if let Some(high) = self.rtcp_highest {
            if index <= high && (high - index >= 64 || self.rtcp_window & (1 << (high - index)) != 0) {
                return Err(SrtpError::Replay);
            }
        }
        let mut out = body.to_vec();
        if encrypted {
            let ssrc = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
            self.rtcp.crypt(ssrc, u64::from(index), &mut out[8..]);
        }
        match self.rtcp_highest {
            Some(high) if index <= high => self.rtcp_window |= 1 << (high - index),
            Some(high) => {
                let shift = index - high;
                self.rtcp_window = if shift >= 64 { 1 } else { (self.rtcp_window << shift) | 1 };
                self.rtcp_highest = Some(index);
            }
            None => {
                self.rtcp_window = 1;
                self.rtcp_highest = Some(index);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn key_derivation_matches_rfc_3711_b3() {
        let master =
            MasterKey::from_bytes(&hex("E1F97A0D3E018BE0D64FA32C06DE41390EC675AD498AFEEBB6960B3AABE6")).unwrap();
        let k = Keys::derive(&master, 0);
        assert_eq!(k.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(k.auth.to_vec(), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
        // The cipher key: its keystream for a zero IV equals AES(key, 0) from the vector's key.
        let want = Aes128::new_from_slice(&hex("C61E7A93744F39EE10734AFE3FF7A087")).unwrap();
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        want.encrypt_block((&mut a).into());
        k.cipher.encrypt_block((&mut b).into());
        assert_eq!(a, b);
    }

    #[test]
    fn the_keystream_matches_rfc_3711_b2() {
        let cipher = Aes128::new_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
        let mut out = [0u8; 48];
        keystream(&cipher, &iv, &mut out);
        let want =
            hex("E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0");
        assert_eq!(out.to_vec(), want);
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend(std::iter::repeat_n(0xd5, 160));
        p
    }

    #[test]
    fn packets_round_trip_are_authenticated_and_not_replayed_across_a_rollover() {
        let master = MasterKey::from_bytes(&(0..30).collect::<Vec<u8>>()).unwrap();
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let (mut tx, mut rx) = (Context::new(suite, &master), Context::new(suite, &master));
            for seq in (65_530..=65_535).chain(0..5) {
                let p = rtp(seq);
                let s = tx.protect_rtp(&p).unwrap();
                assert_eq!(s.len(), p.len() + suite.rtp_tag());
                assert_ne!(&s[12..172], &p[12..], "encrypted");
                assert_eq!(&s[..12], &p[..12], "the header stays clear");
                assert_eq!(rx.unprotect_rtp(&s).unwrap(), p, "{suite:?} seq {seq}");
                assert_eq!(rx.unprotect_rtp(&s), Err(SrtpError::Replay));
            }
            assert_eq!(rx.roc, 1, "the receiver followed the rollover");
            let mut bad = tx.protect_rtp(&rtp(5)).unwrap();
            bad[20] ^= 1;
            assert_eq!(rx.unprotect_rtp(&bad), Err(SrtpError::Auth));
            // Reordered within the window: accepted once.
            let (a, b) = (tx.protect_rtp(&rtp(6)).unwrap(), tx.protect_rtp(&rtp(7)).unwrap());
            assert!(rx.unprotect_rtp(&b).is_ok() && rx.unprotect_rtp(&a).is_ok());
            // Another key: refused.
            let other = MasterKey::from_bytes(&[7u8; 30]).unwrap();
            let s = Context::new(suite, &other).protect_rtp(&rtp(8)).unwrap();
            assert_eq!(rx.unprotect_rtp(&s), Err(SrtpError::Auth));
        }
    }

    #[test]
    fn rtcp_round_trips_with_its_index_and_tag() {
        let master = MasterKey::from_bytes(&[3u8; 30]).unwrap();
        let (mut tx, mut rx) =
            (Context::new(Suite::AesCm128HmacSha1_32, &master), Context::new(Suite::AesCm128HmacSha1_32, &master));
        let rr = vec![0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
        for _ in 0..3 {
            let s = tx.protect_rtcp(&rr).unwrap();
            assert_eq!(s.len(), rr.len() + 4 + 10, "E‖index and an 80-bit tag");
            assert_eq!(rx.unprotect_rtcp(&s).unwrap(), rr);
            assert_eq!(rx.unprotect_rtcp(&s), Err(SrtpError::Replay));
        }
    }
}
