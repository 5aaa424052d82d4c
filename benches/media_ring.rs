//! The lock-free SPSC ring (`ringbuf` 0.4, as the recorder uses it) carrying 20 ms frames of
//! 16-bit audio: 160 samples (8 kHz) and 320 samples (16 kHz).
//!
//! - `ring_spsc_two_threads`: the producer pushes frames (`push_slice`) while a consumer
//!   thread pops them (`pop_slice`, a frame at a time) through a ring of one second of audio
//!   (50 frames); one iteration is one frame through the ring, so criterion's element
//!   throughput is frames per second. Both sides spin briefly, then yield, when the ring is
//!   full or empty. Thread start-up is inside the timing but is a constant per sample, which
//!   criterion's linear sampling separates from the per-frame slope.
//! - `ring_push_pop_one_thread`: one frame pushed and popped on the same thread (the
//!   uncontended cost of a pair), and `recorder_style_stereo_160`: what `Recorder::push`
//!   does for a 160-sample frame (320 interleaved `try_push` calls) plus one `pop_slice`.
//!
//! Run: `cargo bench --bench media_ring -- --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::HeapRb;

/// Ring capacity in frames: one second, like a small recorder ring.
const RING_FRAMES: usize = 50;

/// (sample rate, samples per 20 ms frame).
const FRAMES: [(u32, usize); 2] = [(8000, 160), (16000, 320)];

fn frame(n: usize) -> Vec<i16> {
    (0..n).map(|i| (i as i16).wrapping_mul(97)).collect()
}

/// Waits a little after a failed push/pop: spin first, then give the core away (the other
/// side may be on the same core).
fn backoff(spins: &mut u32) {
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
    *spins += 1;
}

/// Moves `frames` frames of `n` samples through a fresh ring from this thread to a consumer
/// thread; returns the time until the consumer has seen the last sample.
fn transfer(frames: u64, n: usize) -> Duration {
    let (mut prod, mut cons) = HeapRb::<i16>::new(RING_FRAMES * n).split();
    let input = frame(n);
    let total = frames as usize * n;
    std::thread::scope(|s| {
        let start = Instant::now();
        let consumer = s.spawn(move || {
            let mut buf = vec![0i16; n];
            let (mut got, mut sum, mut spins) = (0usize, 0i64, 0u32);
            while got < total {
                let k = cons.pop_slice(&mut buf[..n.min(total - got)]);
                if k == 0 {
                    backoff(&mut spins);
                    continue;
                }
                spins = 0;
                sum += i64::from(buf[k - 1]);
                got += k;
            }
            black_box(sum);
            start.elapsed()
        });
        let mut spins = 0u32;
        for _ in 0..frames {
            let mut off = 0;
            while off < n {
                let k = prod.push_slice(black_box(&input[off..]));
                if k == 0 {
                    backoff(&mut spins);
                    continue;
                }
                spins = 0;
                off += k;
            }
        }
        consumer.join().expect("consumer thread")
    })
}

fn bench_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_spsc_two_threads");
    group.throughput(Throughput::Elements(1));
    for (rate, n) in FRAMES {
        group.bench_function(BenchmarkId::new("frame", format!("{n}_samples_{}k", rate / 1000)), |b| {
            b.iter_custom(|iters| transfer(iters, n))
        });
    }
    group.finish();
}

fn bench_one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_push_pop_one_thread");
    group.throughput(Throughput::Elements(1));
    for (rate, n) in FRAMES {
        let (mut prod, mut cons) = HeapRb::<i16>::new(RING_FRAMES * n).split();
        let input = frame(n);
        let mut out = vec![0i16; n];
        group.bench_function(BenchmarkId::new("frame", format!("{n}_samples_{}k", rate / 1000)), |b| {
            b.iter(|| {
                let pushed = prod.push_slice(black_box(&input));
                let popped = cons.pop_slice(black_box(&mut out));
                black_box((pushed, popped))
            })
        });
    }

    // Recorder::push: left and right interleaved, one try_push per sample.
    let (mut prod, mut cons) = HeapRb::<i16>::new(RING_FRAMES * 2 * 160).split();
    let (left, right) = (frame(160), frame(160));
    let mut out = vec![0i16; 2 * 160];
    group.bench_function("recorder_style_stereo_160", |b| {
        b.iter(|| {
            for (l, r) in black_box(&left).iter().zip(black_box(&right)) {
                let _ = prod.try_push(*l);
                let _ = prod.try_push(*r);
            }
            black_box(cons.pop_slice(black_box(&mut out)))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench_two_threads, bench_one_thread
}
criterion_main!(benches);
