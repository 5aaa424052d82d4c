//! A conference's mixer (issue 16, `src/conference.rs`): the work of one 20 ms tick of
//! every member of a room, each handing what its far end said to the N−1 others and
//! taking the sum of theirs. Divided by N it is the per-member cost a conference adds to
//! each call's media task.
//!
//! - `conference_tick/8k/N`: N G.711 members (8 kHz; resampled to the room's 16 kHz and back).
//! - `conference_tick/16k/N`: N wideband members (Opus, G.722: no resampling).
//!
//! Run: `cargo bench --bench conference -- --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dialtone::conference::Room;
use dialtone::taps::Tap;
use std::hint::black_box;

fn frame(n: usize, k: usize) -> Vec<i16> {
    (0..n).map(|i| ((i as f32 * 0.05 * (k + 1) as f32).sin() * 6000.0) as i16).collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("conference_tick");
    for (label, rate) in [("8k", 8000u32), ("16k", 16_000)] {
        for n in [3usize, 10, 30] {
            let room = Room::new();
            let mut seats: Vec<_> = (0..n).map(|i| room.seat(i as u64, rate, false)).collect();
            let said: Vec<Vec<i16>> = (0..n).map(|k| frame(rate as usize / 50, k)).collect();
            let mut out = vec![0i16; rate as usize / 50];
            // Throughput in members: criterion's elements/s is members ticked per second.
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(label, n), |bench| {
                bench.iter(|| {
                    for (seat, said) in seats.iter_mut().zip(&said) {
                        seat.fill(said, &mut out);
                        seat.tick(black_box(said), &out);
                    }
                    black_box(&out);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
