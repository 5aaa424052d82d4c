//! SRTP per packet (issue 14): protect and unprotect of a 20 ms PCMU packet (12-byte header,
//! 160-byte payload) with each suite, beside building the plain RTP packet (what a call
//! costs without SRTP). `benches/srtp_libsrtp2.sh` measures libsrtp2 on the same packet in
//! the same run, for the ratio.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dialtone_media::rtp::RtpSender;
use dialtone_media::srtp::{Context, MasterKey, Suite};

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend(std::iter::repeat_n(0xd5, 160));
    p
}

fn srtp(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp");
    g.throughput(Throughput::Elements(1));
    let key = MasterKey::from_bytes(&(0..30u8).collect::<Vec<_>>()).expect("30 bytes");
    g.bench_function("plain_rtp_packetize", |b| {
        let mut s = RtpSender::new(0x1234_5678, 1, 0);
        let payload = [0xd5u8; 160];
        b.iter(|| black_box(s.packetize(0, &payload, 160, false)))
    });
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        g.bench_function(format!("protect_{}", suite.name()), |b| {
            let mut tx = Context::new(suite, &key);
            let mut seq = 0u16;
            b.iter(|| {
                seq = seq.wrapping_add(1);
                black_box(tx.protect_rtp(&packet(seq)).expect("protects"))
            })
        });
        g.bench_function(format!("unprotect_{}", suite.name()), |b| {
            let mut tx = Context::new(suite, &key);
            let sealed: Vec<Vec<u8>> = (0..=u16::MAX).map(|s| tx.protect_rtp(&packet(s)).expect("protects")).collect();
            let mut rx = Context::new(suite, &key);
            let mut i = 0usize;
            b.iter(|| {
                // A fresh receiver every lap of the sequence space (the replay window).
                if i == sealed.len() {
                    rx = Context::new(suite, &key);
                    i = 0;
                }
                let out = rx.unprotect_rtp(&sealed[i]);
                i += 1;
                black_box(out)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, srtp);
criterion_main!(benches);
