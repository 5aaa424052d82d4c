//! A bridge between two calls (issue 16, `src/bridge.rs`): the per-tick work each call's
//! media task adds when it is joined to another, for one 20 ms frame in each direction.
//!
//! - `bridge_tick_fill/8k_8k`: both calls G.711 (no resampling): a ring push and pop each way.
//! - `bridge_tick_fill/8k_16k`: G.711 to Opus/16 kHz: the same with resampling both ways.
//!
//! Run: `cargo bench --bench bridge -- --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dialtone::taps::Tap;
use std::hint::black_box;

fn frame(n: usize) -> Vec<i16> {
    (0..n).map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16).collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("bridge_tick_fill");
    g.throughput(Throughput::Elements(1));
    for (name, ra, rb) in [("8k_8k", 8000u32, 8000u32), ("8k_16k", 8000, 16_000)] {
        let (mut a, mut b) = dialtone::bridge::pair(ra, rb);
        let (fa, fb) = (frame(ra as usize / 50), frame(rb as usize / 50));
        let (mut oa, mut ob) = (vec![0i16; fa.len()], vec![0i16; fb.len()]);
        g.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                // One tick of each call: what it heard goes over, what the other heard comes back.
                a.tick(black_box(&fa), &oa);
                b.tick(black_box(&fb), &ob);
                a.fill(&fa, &mut oa);
                b.fill(&fb, &mut ob);
                black_box((&oa, &ob));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
