//! Media hot paths, per packet: the jitter buffer (one push and one pop, as the RTP path
//! and the 20 ms pacing clock do) and RTP receive (parse with rtp-rs, RFC 3550 A.1
//! validation, A.3 counters, A.8 jitter). Simulated time; 20 ms PCMU packets.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dialtone_media::jitter::{JitterBuffer, JitterConfig};
use dialtone_media::rtp::{ReceiverConfig, RtpReceiver, RtpSender};
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_millis(20);

fn jitter_push_pop(c: &mut Criterion) {
    let mut g = c.benchmark_group("jitter");
    g.throughput(Throughput::Elements(1));
    let payload = Bytes::from_static(&[0xff; 160]);

    g.bench_function("push_pop_in_order", |b| {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        let mut i: u32 = 0;
        b.iter(|| {
            let now = t0 + FRAME * (i % 1_000_000);
            jb.push(i as u16, i.wrapping_mul(160), payload.clone(), now);
            let out = jb.pop(now + Duration::from_millis(5));
            i = i.wrapping_add(1);
            black_box(out)
        })
    });

    // Pairs swapped and every 50th packet lost: the reorder and concealment paths.
    g.bench_function("push_pop_reorder_loss", |b| {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        let mut i: u32 = 0;
        b.iter(|| {
            let now = t0 + FRAME * (i % 1_000_000);
            let seq = i ^ 1;
            if seq % 50 != 7 {
                jb.push(seq as u16, seq.wrapping_mul(160), payload.clone(), now);
            }
            let out = jb.pop(now + Duration::from_millis(5));
            i = i.wrapping_add(1);
            black_box(out)
        })
    });
    g.finish();
}

fn rtp_receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_validate_stats", |b| {
        let mut tx = RtpSender::new(0x1234_5678, 0, 0);
        let mut rx = RtpReceiver::new(ReceiverConfig::new(8000, &[0, 8, 101]));
        let t0 = Instant::now();
        let mut i: u32 = 0;
        // Packet building is setup, not measured.
        b.iter_batched(
            || tx.packetize(0, &[0xff; 160], 160, false),
            |pkt| {
                let now = t0 + FRAME * (i % 1_000_000);
                i = i.wrapping_add(1);
                let len = rx.receive(&pkt, now).map(|p| p.payload.len());
                // Returned so that freeing the datagram falls outside the measurement.
                (pkt, black_box(len))
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("packetize", |b| {
        let mut tx = RtpSender::new(0x1234_5678, 0, 0);
        let payload = [0xffu8; 160];
        b.iter(|| black_box(tx.packetize(0, &payload, 160, false)))
    });
    g.finish();
}

criterion_group!(benches, jitter_push_pop, rtp_receive);
criterion_main!(benches);
