//! Codec hot paths, per 20 ms frame: G.711 µ-law/A-law encode and decode of 160 samples
//! (8 kHz), G.722 encode and decode of 320 samples (16 kHz, 160 octets), Opus encode and decode of 960 samples (48 kHz mono, 32 kbit/s, in-band FEC on,
//! 10 % expected loss) at complexity 5 (the default) and 10, the 8 ↔ 48 kHz resampler, and
//! answering-machine detection (`amd::Amd::push` of one 20 ms frame of silence, of the
//! two-tone signal below, and of a 1000 Hz beep, at 8 and 16 kHz, with limits that never let
//! it decide; its accuracy is `benches/amd_eval.rs`), and speech detection (`vad::Vad::push`
//! of a 20 ms frame of silence and of the two-tone signal, at 8 and 16 kHz; accuracy in
//! `benches/vad_eval.rs`).
//!
//! Run: `cargo bench --bench media_codecs`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dialtone_media::amd::{Amd, AmdConfig};
use dialtone_media::g711;
use dialtone_media::g722::{G722Decoder, G722Encoder, FRAME_BYTES, FRAME_SAMPLES as G722_FRAME};
use dialtone_media::opus::{OpusConfig, OpusDecoder, OpusEncoder, FRAME_SAMPLES, SAMPLE_RATE};
use dialtone_media::resample::Resampler;
use dialtone_media::vad::{Vad, VadConfig};

/// Speech-like test signal: two tones plus a deterministic noise floor.
fn signal(rate: u32, n: usize, offset: usize) -> Vec<i16> {
    let mut seed = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            let t = (i + offset) as f64 / rate as f64;
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((seed >> 16) as i16 as f64) / 64.0;
            let v = 6000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 1330.0 * t).sin()
                + noise;
            v as i16
        })
        .collect()
}

fn bench_g711(c: &mut Criterion) {
    let pcm = signal(8000, 160, 0);
    let mut code = [0u8; 160];
    let mut out = [0i16; 160];
    let mut group = c.benchmark_group("g711_160_samples");
    group.throughput(Throughput::Elements(160));
    group.bench_function("ulaw_encode", |b| b.iter(|| g711::encode_ulaw(black_box(&pcm), black_box(&mut code))));
    g711::encode_ulaw(&pcm, &mut code);
    group.bench_function("ulaw_decode", |b| b.iter(|| g711::decode_ulaw(black_box(&code), black_box(&mut out))));
    group.bench_function("alaw_encode", |b| b.iter(|| g711::encode_alaw(black_box(&pcm), black_box(&mut code))));
    g711::encode_alaw(&pcm, &mut code);
    group.bench_function("alaw_decode", |b| b.iter(|| g711::decode_alaw(black_box(&code), black_box(&mut out))));
    group.finish();
}

fn bench_g722(c: &mut Criterion) {
    // 50 distinct frames (one second), cycled: the ADPCM state carries on as in a call.
    let frames: Vec<Vec<i16>> = (0..50).map(|f| signal(16_000, G722_FRAME, f * G722_FRAME)).collect();
    let mut enc = G722Encoder::new();
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut p = vec![0u8; FRAME_BYTES];
            enc.encode(f, &mut p);
            p
        })
        .collect();
    let mut group = c.benchmark_group("g722_20ms_16k");
    group.throughput(Throughput::Elements(G722_FRAME as u64));
    let mut enc = G722Encoder::new();
    let mut code = [0u8; FRAME_BYTES];
    let mut i = 0;
    group.bench_function("encode", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            enc.encode(black_box(&frames[i]), black_box(&mut code))
        })
    });
    let mut dec = G722Decoder::new();
    let mut out = [0i16; G722_FRAME];
    let mut j = 0;
    group.bench_function("decode", |b| {
        b.iter(|| {
            j = (j + 1) % packets.len();
            dec.decode(black_box(&packets[j]), black_box(&mut out))
        })
    });
    group.finish();
}

fn bench_opus(c: &mut Criterion) {
    // 50 distinct frames (one second), cycled, so the encoder sees a changing signal.
    let frames: Vec<Vec<i16>> = (0..50).map(|f| signal(SAMPLE_RATE, FRAME_SAMPLES, f * FRAME_SAMPLES)).collect();
    let mut group = c.benchmark_group("opus_20ms_mono_48k");
    group.throughput(Throughput::Elements(FRAME_SAMPLES as u64));
    for complexity in [5u8, 10] {
        let config = OpusConfig { complexity, ..OpusConfig::default() };
        let mut enc = OpusEncoder::new(config).expect("encoder");
        let mut i = 0;
        group.bench_function(format!("encode_c{complexity}"), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(enc.encode(black_box(&frames[i])).expect("encode").len())
            })
        });

        let mut enc = OpusEncoder::new(config).expect("encoder");
        let packets: Vec<Vec<u8>> = frames.iter().map(|f| enc.encode(f).expect("encode").to_vec()).collect();
        let mut dec = OpusDecoder::mono().expect("decoder");
        let mut j = 0;
        group.bench_function(format!("decode_c{complexity}"), |b| {
            b.iter(|| {
                j = (j + 1) % packets.len();
                black_box(dec.decode(black_box(&packets[j])).expect("decode").len())
            })
        });
    }
    let mut dec = OpusDecoder::mono().expect("decoder");
    let mut enc = OpusEncoder::mono().expect("encoder");
    let packet = enc.encode(&frames[0]).expect("encode").to_vec();
    group.bench_function("decode_plc", |b| {
        b.iter(|| {
            dec.decode(&packet).expect("decode");
            black_box(dec.decode_lost().expect("plc").len())
        })
    });
    group.finish();
}

fn bench_resample(c: &mut Criterion) {
    let narrow = signal(8000, 160, 0);
    let wide = signal(48000, 960, 0);
    let mut out = vec![0i16; 2048];
    let mut group = c.benchmark_group("resample_20ms");
    let mut up = Resampler::new(8000, 48000).expect("resampler");
    group.bench_function("8k_to_48k", |b| b.iter(|| up.process(black_box(&narrow), &mut out).expect("fits")));
    let mut down = Resampler::new(48000, 8000).expect("resampler");
    group.bench_function("48k_to_8k", |b| b.iter(|| down.process(black_box(&wide), &mut out).expect("fits")));
    group.finish();
}

fn bench_amd(c: &mut Criterion) {
    let mut g = c.benchmark_group("amd_push");
    g.throughput(Throughput::Elements(1));
    let never = AmdConfig {
        initial_silence_ms: u32::MAX,
        greeting_ms: u32::MAX,
        after_greeting_silence_ms: u32::MAX,
        total_analysis_ms: u32::MAX,
        max_words: u32::MAX,
        max_word_ms: u32::MAX,
        ..AmdConfig::default()
    };
    for rate in [8000u32, 16_000] {
        let n = rate as usize / 50;
        let beep: Vec<i16> = (0..n)
            .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate as f64).sin()) as i16)
            .collect();
        for (name, frame) in [("silence", vec![0i16; n]), ("voice", signal(rate, n, 0)), ("beep", beep)] {
            let mut amd = Amd::new(never, rate);
            g.bench_function(format!("{name}_{}k", rate / 1000), |b| b.iter(|| black_box(amd.push(black_box(&frame)))));
        }
    }
    g.finish();
}

fn bench_vad(c: &mut Criterion) {
    let mut g = c.benchmark_group("vad_push");
    g.throughput(Throughput::Elements(1));
    for rate in [8000u32, 16_000] {
        let n = rate as usize / 50;
        for (name, frame) in [("silence", vec![0i16; n]), ("voice", signal(rate, n, 0))] {
            let mut vad = Vad::new(VadConfig::new(rate));
            g.bench_function(format!("{name}_{}k", rate / 1000), |b| b.iter(|| black_box(vad.push(black_box(&frame)))));
        }
    }
    g.finish();
}

criterion_group!(benches, bench_g711, bench_g722, bench_opus, bench_resample, bench_amd, bench_vad);
criterion_main!(benches);
