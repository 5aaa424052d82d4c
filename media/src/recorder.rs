//! The call recorder: stereo 16-bit WAV (left: the remote party, right: what we sent).
//!
//! The media path never waits on disk: frames go through a lock-free SPSC ring
//! (`ringbuf`) to a writer thread; when the ring is full the frame is dropped and counted.
//! The writer re-writes the WAV header (hound's `flush`) about once a second, so a crash
//! or `kill -9` leaves a playable file missing at most the last second.

use hound::{SampleFormat, WavSpec, WavWriter};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the header is brought up to date.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Feeds one recording; owned by the media path.
pub struct Recorder {
    prod: HeapProd<i16>,
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<u64>>>,
    path: PathBuf,
}

impl Recorder {
    /// Creates `path` and starts the writer thread. `ring_ms` of audio can be buffered.
    pub fn start(path: &Path, sample_rate: u32, ring_ms: u32) -> io::Result<Recorder> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let spec = WavSpec { channels: 2, sample_rate, bits_per_sample: 16, sample_format: SampleFormat::Int };
        let writer = WavWriter::create(path, spec).map_err(io::Error::other)?;
        let cap = (sample_rate as usize * 2 * ring_ms as usize / 1000).max(1024);
        let (prod, cons) = HeapRb::<i16>::new(cap).split();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let s = stop.clone();
        let thread = std::thread::Builder::new().name("recorder".into()).spawn(move || write_loop(writer, cons, s))?;
        Ok(Recorder { prod, dropped, stop, thread: Some(thread), path: path.to_path_buf() })
    }

    /// Queues one frame: `remote` and `local` samples (equal lengths; the shorter is
    /// padded with silence). Never blocks: with no room the frame is dropped and counted.
    pub fn push(&mut self, remote: &[i16], local: &[i16]) {
        let n = remote.len().max(local.len());
        if self.prod.vacant_len() < 2 * n {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        for i in 0..n {
            let _ = self.prod.try_push(remote.get(i).copied().unwrap_or(0));
            let _ = self.prod.try_push(local.get(i).copied().unwrap_or(0));
        }
    }

    /// Frames dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drains the ring, finalizes the file and returns the number of stereo frames written.
    pub fn finish(mut self) -> io::Result<u64> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("recorder thread panicked")),
            None => Ok(0),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(
    mut w: WavWriter<io::BufWriter<std::fs::File>>,
    mut cons: HeapCons<i16>,
    stop: Arc<AtomicBool>,
) -> io::Result<u64> {
    let mut buf = vec![0i16; 4096];
    let mut written = 0u64;
    let mut last_flush = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Acquire);
        // Whole stereo frames only, so channels never swap.
        let avail = cons.occupied_len() & !1;
        let n = cons.pop_slice(&mut buf[..avail.min(4096)]);
        for s in &buf[..n] {
            w.write_sample(*s).map_err(io::Error::other)?;
        }
        written += n as u64 / 2;
        if last_flush.elapsed() >= FLUSH_EVERY {
            w.flush().map_err(io::Error::other)?;
            last_flush = Instant::now();
        }
        if n == 0 {
            if stopping {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    w.finalize().map_err(io::Error::other)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("dialtone-rec-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_left_remote_right_local() {
        let p = dir().join("a.wav");
        let mut r = Recorder::start(&p, 8000, 2000).unwrap();
        for i in 0..50 {
            r.push(&[i as i16; 160], &[-(i as i16); 160]);
        }
        assert_eq!(r.finish().unwrap(), 50 * 160);
        let mut rd = hound::WavReader::open(&p).unwrap();
        assert_eq!(rd.spec().channels, 2);
        assert_eq!(rd.duration(), 50 * 160);
        let s: Vec<i16> = rd.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!((s[2 * 160 * 7], s[2 * 160 * 7 + 1]), (7, -7));
    }

    #[test]
    fn a_killed_writer_leaves_a_playable_file() {
        let p = dir().join("b.wav");
        let mut r = Recorder::start(&p, 8000, 2000).unwrap();
        for _ in 0..100 {
            r.push(&[1000; 160], &[0; 160]);
        }
        // Let the writer drain and flush once, then read the file while it is still open
        // and never finalized — what a kill -9 would leave behind.
        std::thread::sleep(FLUSH_EVERY + Duration::from_millis(300));
        let rd = hound::WavReader::open(&p).unwrap();
        assert_eq!(rd.duration(), 100 * 160);
        std::mem::forget(r);
    }

    #[test]
    fn full_ring_drops_and_counts() {
        let p = dir().join("c.wav");
        let mut r = Recorder::start(&p, 8000, 20).unwrap();
        // 1024 samples of room (the floor) = 512 stereo frames: a burst of 10 × 160 overflows.
        for _ in 0..10 {
            r.push(&[1; 160], &[1; 160]);
        }
        assert!(r.dropped() > 0);
        r.finish().unwrap();
    }
}
