//! The bodies of the dialtone-media fuzz targets, one plain function per target, shared by
//! the cargo-fuzz binaries (`media/fuzz/fuzz_targets/*.rs`, nightly) and the stable replay
//! of the committed corpora (`media/tests/fuzz_corpus.rs`, `fixtures/fuzz/<target>/`). Each
//! panics on a property violation; none may panic on any input otherwise.

use bytes::Bytes;
use dialtone_media::dtmf::{DtmfError, DtmfReceiver, EventPayload};
use dialtone_media::rtcp::{build_compound, is_rtcp, parse_compound, RtcpPacket, RtcpSession};
use dialtone_media::rtp::{ReceiverConfig, RtpReceiver, RtpSender};
use std::time::{Duration, Instant};

/// A target: its name and its body.
pub type FuzzTarget = (&'static str, fn(&[u8]));

/// The targets by name, for the replay test.
pub const TARGETS: &[FuzzTarget] = &[("rtp", rtp), ("rtcp", rtcp), ("dtmf", dtmf)];

fn receiver() -> RtpReceiver {
    let mut cfg = ReceiverConfig::new(8000, &(0..128).collect::<Vec<u8>>());
    cfg.event_payload_type = Some(101);
    cfg.probation = 1;
    RtpReceiver::new(cfg)
}

/// `rtp`: one datagram through `RtpReceiver::receive` (every payload type accepted, no
/// probation). A valid packet's fields, packetized again by our `RtpSender`, parse back
/// the same; then the datagram with its sequence number moved (duplicate, in order, gaps,
/// jumps past MAX_DROPOUT and back, wrap) drives the RFC 3550 A.1 sequence state, and the
/// reception report and stats never panic.
pub fn rtp(data: &[u8]) {
    let t0 = Instant::now();
    let buf = Bytes::copy_from_slice(data);
    let mut rx = receiver();
    let Ok(p) = rx.receive(&buf, t0) else {
        let _ = rx.reception();
        let _ = rx.stats();
        return;
    };
    assert!(data.len() >= 12 + p.payload.len(), "payload longer than the datagram");
    assert!(p.new_source);
    let wire = RtpSender::new(p.ssrc, p.seq, 0).packetize_at(p.payload_type, &p.payload, p.timestamp, p.marker);
    let q = receiver().receive(&wire, t0).expect("our own packet is valid");
    assert_eq!(
        (q.payload_type, q.marker, q.seq, q.timestamp, q.ssrc, &q.payload),
        (p.payload_type, p.marker, p.seq, p.timestamp, p.ssrc, &p.payload)
    );
    let mut moved = data.to_vec();
    for (i, delta) in [0u16, 1, 2, 5, 3000, 3001, 3002, 65_500, 65_535, 1, 200].into_iter().enumerate() {
        moved[2..4].copy_from_slice(&p.seq.wrapping_add(delta).to_be_bytes());
        let at = t0 + Duration::from_millis(20 * i as u64 + u64::from(data[data.len() - 1]));
        let _ = rx.receive(&Bytes::copy_from_slice(&moved), at);
        if i % 3 == 0 {
            let _ = rx.reception();
        }
    }
    // Another source takes over.
    moved[8] ^= 0xff;
    let _ = rx.receive(&Bytes::copy_from_slice(&moved), t0 + Duration::from_secs(1));
    let s = rx.stats();
    assert!(s.packets >= 1);
}

fn strings_fit(packets: &[RtcpPacket]) -> bool {
    packets.iter().all(|p| match p {
        RtcpPacket::Sdes { chunks } => chunks.iter().all(|(_, c)| c.as_ref().is_none_or(|c| c.len() <= 255)),
        RtcpPacket::Bye { reason, .. } => reason.as_ref().is_none_or(|r| r.len() <= 255),
        _ => true,
    })
}

/// `rtcp`: one datagram through `parse_compound` and an `RtcpSession`. A compound packet
/// that parses is rebuilt by `build_compound` into one that parses back the same (unless a
/// CNAME or BYE reason with invalid UTF-8 grew past the 255-octet wire limit: then it
/// must still parse); the session's events and report never panic.
pub fn rtcp(data: &[u8]) {
    let t0 = Instant::now();
    let _ = is_rtcp(data);
    let mut s = RtcpSession::new(0x5eed_0001, "fuzz@dialtone", 8000, t0, 7);
    let _ = s.handle_packet(data, t0 + Duration::from_millis(40));
    while s.poll_event().is_some() {}
    let _ = s.remote_report();
    let Ok(packets) = parse_compound(data) else { return };
    assert!(!packets.is_empty());
    let wire = build_compound(&packets);
    let again = parse_compound(&wire).unwrap_or_else(|e| panic!("our rebuild does not parse: {e}\n{wire:02x?}"));
    if strings_fit(&packets) {
        assert_eq!(packets, again);
        assert_eq!(wire, build_compound(&again));
    }
}

/// `dtmf`: the input as one RFC 4733 payload: `EventPayload::parse` → `to_bytes` → parse
/// is the identity (the reserved bit aside), and a short payload is `Truncated`. Then the
/// input as a stream of 9-octet records (timestamp 4, marker 1, payload 4) through a
/// `DtmfReceiver`: every event reported is a DTMF key with a duration the 16-bit field
/// allows.
pub fn dtmf(data: &[u8]) {
    match EventPayload::parse(data) {
        Ok(p) => {
            let b = p.to_bytes();
            assert_eq!(EventPayload::parse(&b), Ok(p));
            assert_eq!((b[0], b[1], b[2], b[3]), (data[0], data[1] & 0xbf, data[2], data[3]));
        }
        Err(DtmfError::Truncated(n)) => assert!(n < EventPayload::LEN && n == data.len()),
        Err(e) => panic!("unexpected error {e:?}"),
    }
    for rate in [8000, 48_000] {
        let mut rx = DtmfReceiver::new(rate).expect("a positive clock rate");
        let check = |rx: &mut DtmfReceiver| {
            while let Some(e) = rx.poll_event() {
                assert!("0123456789*#ABCD".contains(e.digit), "{e:?}");
                assert!(u64::from(e.duration_ms) <= 65_535 * 1000 / u64::from(rate), "{e:?}");
            }
        };
        for rec in data.chunks(9) {
            let Some((head, payload)) = rec.split_first_chunk::<5>() else { break };
            let ts = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let _ = rx.handle_packet(ts, head[4] & 1 != 0, payload);
            check(&mut rx);
        }
        rx.flush();
        check(&mut rx);
        rx.reset();
    }
}
