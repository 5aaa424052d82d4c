//! The whole per-packet media path of one call, as the media task runs it:
//!
//! - `receive/<codec>`: one RTP packet in — parse and validate (RFC 3550 A.1), latch,
//!   jitter buffer push — then the 20 ms tick's receive half: jitter pop, decode (G.711,
//!   G.722 at 16 kHz, Opus at 16 kHz), and the push of both directions into an SPSC ring that a
//!   second thread drains (the recorder's shape, without the disk).
//! - `echo_call/<codec>`: everything one echo call costs per 20 ms: the above plus
//!   encoding the echoed frame (Opus: 16 → 48 kHz and encode at complexity 5), packetizing
//!   and the RTCP schedule check. No socket I/O (the sends are only dequeued).
//!
//! Run: `cargo bench --bench media_session`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dialtone_media::session::{AudioCodec, MediaSession, SessionConfig, TICK};
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::HeapRb;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn config(codec: AudioCodec, pt: u8, remote: SocketAddr, seed: u64) -> SessionConfig {
    SessionConfig {
        codec,
        payload_type: pt,
        telephone_event: Some((101, codec.clock_rate())),
        ptime_ms: 20,
        remote_rtp: remote,
        remote_rtcp: None,
        send: true,
        seed,
        cname: "bench".into(),
        opus_complexity: 5,
        srtp: None,
    }
}

/// One second (50 packets) of a peer's stream carrying speech-like audio, as datagrams.
fn peer_packets(codec: AudioCodec, pt: u8) -> Vec<Bytes> {
    let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:4000".parse().unwrap(), "127.0.0.1:5000".parse().unwrap());
    let t0 = Instant::now();
    let mut peer = MediaSession::new(config(codec, pt, b, 7), t0, 0).unwrap();
    let f = peer.frame_samples();
    let rate = peer.audio_rate() as f64;
    let mut out = vec![0i16; f];
    let mut packets = Vec::new();
    let mut t = 0usize;
    while packets.len() < 500 {
        let local: Vec<i16> = (t * f..(t + 1) * f)
            .map(|i| {
                let x = i as f64 / rate;
                (5000.0 * (2.0 * std::f64::consts::PI * 440.0 * x).sin()
                    + 2000.0 * (2.0 * std::f64::consts::PI * 1330.0 * x).sin()) as i16
            })
            .collect();
        peer.tick(t0 + TICK * t as u32, &local, &mut out);
        t += 1;
        while let Some(tx) = peer.poll_transmit() {
            if tx.data.len() > 12 && tx.data[1] & 0x7f == pt {
                packets.push(tx.data);
            }
        }
    }
    let _ = a;
    packets
}

fn bench(c: &mut Criterion, codec: AudioCodec, pt: u8) {
    let packets = peer_packets(codec, pt);
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut g = c.benchmark_group("media_session");
    g.throughput(Throughput::Elements(1));
    for echo in [false, true] {
        let t0 = Instant::now();
        let mut cfg = config(codec, pt, from, 1);
        cfg.send = echo;
        let mut s = MediaSession::new(cfg, t0, 0).unwrap();
        let f = s.frame_samples();
        let (mut ring, mut cons) = HeapRb::<i16>::new(s.audio_rate() as usize * 4).split();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0i16; 4096];
            while !st.load(Ordering::Relaxed) {
                if cons.pop_slice(&mut buf) == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut interleaved = vec![0i16; 2 * f];
        let (mut local, mut remote) = (vec![0i16; f], vec![0i16; f]);
        let mut i = 0usize;
        let name = format!("{}/{}", if echo { "echo_call" } else { "receive" }, codec.name());
        g.bench_function(name, |b| {
            b.iter(|| {
                let now = t0 + TICK * i as u32;
                // Packets re-sent with their own timestamps: rewrite the sequence number so
                // the stream runs on past the 500 captured ones without looking duplicated.
                let mut p = packets[i % packets.len()].to_vec();
                let seq = (i as u16).wrapping_add(1000);
                p[2..4].copy_from_slice(&seq.to_be_bytes());
                let ts = (i as u32).wrapping_mul(codec.clock_rate() / 50);
                p[4..8].copy_from_slice(&ts.to_be_bytes());
                s.handle_datagram(Bytes::from(p), from, now);
                if echo {
                    local.copy_from_slice(&remote);
                    s.tick(now, &local, &mut remote);
                    while let Some(t) = s.poll_transmit() {
                        black_box(t);
                    }
                } else {
                    s.tick(now, &[], &mut remote);
                }
                for (k, pair) in interleaved.chunks_exact_mut(2).enumerate() {
                    pair[0] = remote[k];
                    pair[1] = local[k];
                }
                black_box(ring.push_slice(&interleaved));
                i += 1;
                black_box(&remote);
            })
        });
        // The bench measured the real path: packets were played, not concealed or refused.
        let st = s.stats();
        assert!(i == 0 || st.rx.packets > 100 && st.jitter.concealed * 100 < st.rx.packets, "{st:?}");
        assert_eq!(st.decode_errors, 0);
        stop.store(true, Ordering::Relaxed);
        let _ = drain.join();
    }
    g.finish();
}

fn sessions(c: &mut Criterion) {
    bench(c, AudioCodec::Pcmu, 0);
    bench(c, AudioCodec::G722, 9);
    bench(c, AudioCodec::Opus, 111);
}

criterion_group!(benches, sessions);
criterion_main!(benches);
