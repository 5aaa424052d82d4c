//! Echo: the caller's own RTP sent back to them (DIALTONE_INBOUND=echo).
//!
//! Same codec both ways, so no transcoding: each valid packet's payload goes back in a
//! packet of our own stream — our SSRC, our sequence numbers, timestamps offset from
//! the caller's so their spacing (and so the audio timing) is kept (RFC 3550 §5.1).

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

/// Turns received RTP packets into the echo stream.
#[derive(Debug)]
pub struct Reflector {
    ssrc: u32,
    next_seq: u16,
    ts_base: u32,
    /// (their SSRC, their first timestamp) of the source being echoed.
    source: Option<(u32, u32)>,
    /// Our timestamp for the last packet sent, so a source switch continues from it.
    last_ts: u32,
    /// Packets echoed.
    pub echoed: u64,
    /// Packets refused (not RTP version 2, malformed).
    pub invalid: u64,
}

impl Reflector {
    /// A reflector with our SSRC and initial sequence number and timestamp (random, RFC
    /// 3550 §5.1: the caller supplies them).
    pub fn new(ssrc: u32, seq: u16, ts: u32) -> Reflector {
        Reflector { ssrc, next_seq: seq, ts_base: ts, source: None, last_ts: ts, echoed: 0, invalid: 0 }
    }

    /// The echo packet for `packet`, written into `out`; its length, or `None` for a
    /// packet that is not valid RTP.
    pub fn reflect(&mut self, packet: &[u8], out: &mut [u8]) -> Option<usize> {
        let Ok(r) = RtpReader::new(packet) else {
            self.invalid += 1;
            return None;
        };
        if r.version() != 2 {
            self.invalid += 1;
            return None;
        }
        let first_ts = match self.source {
            Some((s, t)) if s == r.ssrc() => t,
            _ => {
                // A new source: continue our timeline after the last packet we sent.
                if self.source.is_some() {
                    self.ts_base = self.last_ts.wrapping_add(160);
                }
                self.source = Some((r.ssrc(), r.timestamp()));
                r.timestamp()
            }
        };
        let ts = self.ts_base.wrapping_add(r.timestamp().wrapping_sub(first_ts));
        let n = RtpPacketBuilder::new()
            .payload_type(r.payload_type())
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.next_seq))
            .timestamp(ts)
            .marked(r.mark())
            .payload(r.payload())
            .build_into(out)
            .ok()?;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.last_ts = ts;
        self.echoed += 1;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(ssrc)
            .sequence(Seq::from(seq))
            .timestamp(ts)
            .payload(payload)
            .build()
            .unwrap()
    }

    #[test]
    fn echoes_payload_in_our_own_stream() {
        let mut r = Reflector::new(0xdead_beef, 65535, 1000);
        let mut out = [0u8; 1500];
        let mut seqs = Vec::new();
        for i in 0..3u16 {
            let n = r.reflect(&packet(7, 100 + i, 5000 + 160 * u32::from(i), &[i as u8; 160]), &mut out).unwrap();
            let e = RtpReader::new(&out[..n]).unwrap();
            assert_eq!(e.ssrc(), 0xdead_beef);
            assert_eq!(e.timestamp(), 1000 + 160 * u32::from(i));
            assert_eq!(e.payload(), &[i as u8; 160][..]);
            seqs.push(u16::from(e.sequence_number()));
        }
        assert_eq!(seqs, vec![65535, 0, 1]);
        // A new source continues our timeline and sequence.
        let n = r.reflect(&packet(8, 1, 99, &[9; 160]), &mut out).unwrap();
        let e = RtpReader::new(&out[..n]).unwrap();
        assert_eq!((u16::from(e.sequence_number()), e.timestamp()), (2, 1000 + 160 * 3));
        assert!(r.reflect(b"not rtp", &mut out).is_none());
        assert_eq!((r.echoed, r.invalid), (4, 1));
    }
}
