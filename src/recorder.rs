//! The call recorder: stereo 16-bit WAV (left: the remote party, right: what we sent).
//!
//! The media path never waits on disk: frames go through a lock-free SPSC ring
//! (`ringbuf`) to a writer; when the ring is full the frame is dropped and counted. One
//! writer thread serves every recording of the process (a thread per call would mean a
//! thousand threads waking a hundred times a second). It re-writes each WAV header
//! (hound's `flush`) about once a second, so a crash or `kill -9` leaves a playable file
//! missing at most the last second.

use hound::{SampleFormat, WavSpec, WavWriter};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the header is brought up to date.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the writer sleeps when no recording had anything to write.
const IDLE_SLEEP: Duration = Duration::from_millis(10);

/// Feeds one recording; owned by the media path.
pub struct Recorder {
    prod: HeapProd<i16>,
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    done: Option<Receiver<io::Result<u64>>>,
    path: PathBuf,
    scratch: Vec<i16>,
}

/// A recording as the writer thread holds it.
struct Active {
    writer: WavWriter<io::BufWriter<std::fs::File>>,
    cons: HeapCons<i16>,
    stop: Arc<AtomicBool>,
    done: Sender<io::Result<u64>>,
    written: u64,
    last_flush: Instant,
}

/// Recordings started and not yet finalized, process-wide.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// How many recordings are not finalized yet: a process that is about to exit waits for 0,
/// so every file it leaves has its final header.
pub fn open_recordings() -> usize {
    OPEN.load(Ordering::Acquire)
}

/// The writer thread's intake: new recordings arrive here.
fn writer() -> &'static Mutex<Sender<Active>> {
    static WRITER: OnceLock<Mutex<Sender<Active>>> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        // Spawning a thread fails only when the OS is out of resources; then recording
        // cannot work at all, and each start reports it (the channel is closed).
        let _ = std::thread::Builder::new().name("recorder".into()).spawn(move || write_loop(rx));
        Mutex::new(tx)
    })
}

impl Recorder {
    /// Creates `path` and hands it to the writer thread. `ring_ms` of audio can be buffered.
    pub fn start(path: &Path, sample_rate: u32, ring_ms: u32) -> io::Result<Recorder> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let spec = WavSpec { channels: 2, sample_rate, bits_per_sample: 16, sample_format: SampleFormat::Int };
        let mut w = WavWriter::create(path, spec).map_err(io::Error::other)?;
        // A valid (empty) header on disk from the first moment.
        w.flush().map_err(io::Error::other)?;
        let cap = (sample_rate as usize * 2 * ring_ms as usize / 1000).max(1024);
        let (prod, cons) = HeapRb::<i16>::new(cap).split();
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel();
        let active =
            Active { writer: w, cons, stop: stop.clone(), done: done_tx, written: 0, last_flush: Instant::now() };
        OPEN.fetch_add(1, Ordering::AcqRel);
        let sent = writer()
            .lock()
            .map_err(|_| io::Error::other("recorder writer poisoned"))
            .and_then(|w| w.send(active).map_err(|_| io::Error::other("recorder writer thread is not running")));
        if let Err(e) = sent {
            OPEN.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        Ok(Recorder {
            prod,
            dropped: Arc::new(AtomicU64::new(0)),
            stop,
            done: Some(done_rx),
            path: path.to_path_buf(),
            scratch: Vec::with_capacity(2 * 320),
        })
    }

    /// Queues one frame: `remote` and `local` samples (equal lengths; the shorter is
    /// padded with silence). Never blocks: with no room the frame is dropped and counted.
    pub fn push(&mut self, remote: &[i16], local: &[i16]) {
        let n = remote.len().max(local.len());
        if self.prod.vacant_len() < 2 * n {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Interleave into a scratch frame, then one slice push (not a push per sample).
        self.scratch.clear();
        self.scratch
            .extend((0..n).flat_map(|i| [remote.get(i).copied().unwrap_or(0), local.get(i).copied().unwrap_or(0)]));
        let _ = self.prod.push_slice(&self.scratch);
    }

    /// Frames dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Asks the writer to drain the ring and finalize the file, without waiting.
    pub fn close(mut self) {
        self.stop.store(true, Ordering::Release);
        self.done = None;
    }

    /// Drains the ring, finalizes the file and returns the number of stereo frames
    /// written. Blocks until the writer has done so.
    pub fn finish(mut self) -> io::Result<u64> {
        self.stop.store(true, Ordering::Release);
        match self.done.take().map(|rx| rx.recv()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("recorder writer thread ended")),
            None => Ok(0),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Drains every ring it holds; finalizes the recordings whose owners stopped.
fn write_loop(intake: Receiver<Active>) {
    let mut active: Vec<Active> = Vec::new();
    let mut buf = vec![0i16; 4096];
    loop {
        loop {
            match intake.try_recv() {
                Ok(a) => active.push(a),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) if active.is_empty() => return,
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        let mut wrote = false;
        let mut i = 0;
        while i < active.len() {
            let a = &mut active[i];
            // Read the flag first: what was pushed before it was set is drained below.
            let stopping = a.stop.load(Ordering::Acquire);
            let r = drain(a, &mut buf).and_then(|n| {
                wrote |= n > 0;
                if a.last_flush.elapsed() >= FLUSH_EVERY {
                    a.writer.flush().map_err(io::Error::other)?;
                    a.last_flush = Instant::now();
                }
                Ok(())
            });
            if stopping || r.is_err() {
                let a = active.swap_remove(i);
                let written = a.written;
                let result = r.and_then(|()| a.writer.finalize().map_err(io::Error::other)).map(|()| written);
                OPEN.fetch_sub(1, Ordering::AcqRel);
                let _ = a.done.send(result);
            } else {
                i += 1;
            }
        }
        if !wrote {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}

/// Writes what the ring holds, whole stereo frames only so channels never swap.
fn drain(a: &mut Active, buf: &mut [i16]) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let avail = a.cons.occupied_len() & !1;
        let take = avail.min(buf.len());
        let n = a.cons.pop_slice(&mut buf[..take]);
        if n == 0 {
            return Ok(total);
        }
        let mut w = a.writer.get_i16_writer(n as u32);
        for s in &buf[..n] {
            w.write_sample(*s);
        }
        w.flush().map_err(io::Error::other)?;
        a.written += n as u64 / 2;
        total += n;
    }
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
