//! Shared helpers for the integration tests: start `dialtone`, run SIPp, pick ports.
//! Everything talks to 127.0.0.1 only, and every wait is bounded.
#![allow(dead_code)]

pub mod agent;
pub mod browser;
pub mod cluster;
pub mod hook;
pub mod http;
pub mod kamailio;
pub mod tester;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The dialtone binary under test.
pub fn dialtone_bin() -> PathBuf {
    std::env::var_os("DIALTONE_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dialtone")))
}

/// A port free on 127.0.0.1 for both UDP and TCP (and, when `pair`, the next one too).
pub fn free_port() -> u16 {
    // Never the same port twice in one test process: the kernel may hand a released port
    // out again before the peer it was picked for binds it (two SIPp peers of parallel
    // tests once got the same one).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..200 {
        let Ok(t) = TcpListener::bind("127.0.0.1:0") else { continue };
        let port = t.local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if given.contains(&port) {
            continue;
        }
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// A port free for SIPp's media (-mp) in `base` .. `base + 4 * slots`: SIPp also binds the
/// one two above (video). Successive calls, and tests in other processes (offset by the
/// pid), walk the range in steps of four. Each suite has its own range.
pub fn free_media_port_in(base: u16, slots: u32) -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = std::process::id() % slots;
    for _ in 0..slots {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = base + 4 * ((start + n) % slots) as u16;
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p + 2)).is_ok() {
            return p;
        }
    }
    panic!("no free media port pair in 127.0.0.1:{base}-{}", u32::from(base) + 4 * slots - 1);
}

/// Fails the test with a clear message when SIPp is missing.
pub fn sipp() -> &'static str {
    let ok = Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(ok, "sipp is not installed: run `./dev test`, which installs Debian's sip-tester");
    "sipp"
}

/// A running `dialtone serve`, killed on drop.
pub struct Dialtone {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub data: PathBuf,
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dialtone-test-{name}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) & 0xffff_ffff
}

impl Dialtone {
    /// Starts `dialtone serve` on a free port with extra environment.
    pub fn serve(name: &str, env: &[(&str, &str)]) -> Dialtone {
        let port = free_port();
        let data = temp_dir(name);
        let log = data.join("dialtone.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(dialtone_bin());
        cmd.arg("serve")
            .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{port}"))
            .env("DIALTONE_HTTP_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("DIALTONE_DATA_DIR", &data)
            .env("DIALTONE_RTP_PORTS", "30000-39999")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start dialtone");
        let d = Dialtone { child, port, log, data };
        d.wait_listening();
        d
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dialtone did not listen on {addr}; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running (it must not have crashed).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Dialtone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a SIPp run reported.
#[derive(Debug)]
pub struct SippRun {
    pub status: Option<i32>,
    pub successful: u64,
    pub failed: u64,
    pub stdout: String,
    pub stderr: String,
    pub errors: String,
}

/// Runs SIPp to completion (bounded by `limit`), with statistics to a file.
pub fn run_sipp(args: &[String], limit: Duration) -> SippRun {
    let dir = temp_dir("sipp");
    let stf = dir.join("stats.csv");
    let errf = dir.join("errors.log");
    let mut cmd = Command::new(sipp());
    cmd.args(args)
        .args(["-nostdin", "-trace_stat", "-stf"])
        .arg(&stf)
        .args(["-trace_err", "-error_file"])
        .arg(&errf)
        .args(["-timeout", &format!("{}s", limit.as_secs()), "-timeout_error"])
        .current_dir(&dir)
        .stdin(Stdio::null());
    let out = run_bounded(cmd, limit + Duration::from_secs(10));
    let (successful, failed) = read_stats(&stf);
    SippRun {
        status: out.status.code(),
        successful,
        failed,
        stdout: String::from_utf8_lossy(&out.stdout)
            .chars()
            .rev()
            .take(3000)
            .collect::<String>()
            .chars()
            .rev()
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        errors: std::fs::read_to_string(&errf).unwrap_or_default().chars().take(4000).collect(),
    }
}

/// Runs a command, killing it if it outlives `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("wait");
    let _ = tx.send(());
    out
}

/// Successful and failed call counts from the last line of a SIPp -trace_stat CSV.
pub fn read_stats(path: &Path) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(path) else { return (0, 0) };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return (0, 0) };
    let Some(last) = lines.next_back() else { return (0, 0) };
    let cols: Vec<&str> = header.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        cols.iter().position(|c| *c == name).and_then(|i| vals.get(i)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

/// `s` as an owned argument list.
pub fn args(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| a.to_string()).collect()
}

/// A SIPp peer running in the background (a UAS scenario the test calls into).
pub struct SippPeer {
    child: Child,
    /// Its listening port on 127.0.0.1.
    pub port: u16,
    /// Its -trace_stat CSV.
    pub stats: PathBuf,
}

impl SippPeer {
    /// Starts `sipp <scenario> -i 127.0.0.1 -p <free port> -m 1` (bounded by a 20–30 s
    /// SIPp timeout) and gives it a moment to bind.
    pub fn start(name: &str, scenario: &[&str]) -> SippPeer {
        SippPeer::start_calls(name, scenario, 1)
    }

    /// A carrier that answers (PCMU), plays `fixtures/pcap/<pcap>` from a media port of
    /// the block at `media_base` and waits for dialtone's BYE (`uas_play_wait_bye.xml`);
    /// `extra` SIPp arguments after.
    pub fn carrier(name: &str, pcap: &str, media_base: u16, extra: &[&str]) -> SippPeer {
        SippPeer::carrier_at(name, free_port(), pcap, media_base, extra)
    }

    /// [`SippPeer::carrier`] listening on `port` (one named before dialtone starts).
    pub fn carrier_at(name: &str, port: u16, pcap: &str, media_base: u16, extra: &[&str]) -> SippPeer {
        let mp = free_media_port_in(media_base, 50).to_string();
        let scenario = root().join("fixtures/sipp/uas_play_wait_bye.xml").to_string_lossy().into_owned();
        let pcap = root().join("fixtures/pcap").join(pcap).to_string_lossy().into_owned();
        let mut a = vec!["-sf", &scenario, "-mi", "127.0.0.1", "-mp", &mp, "-key", "pcap", &pcap];
        a.extend_from_slice(extra);
        SippPeer::start_calls_at(name, port, &a, 1)
    }

    /// [`SippPeer::start`] for `calls` calls.
    pub fn start_calls(name: &str, scenario: &[&str], calls: u32) -> SippPeer {
        SippPeer::start_calls_at(name, free_port(), scenario, calls)
    }

    /// [`SippPeer::start_calls`] listening on `port`.
    pub fn start_calls_at(name: &str, port: u16, scenario: &[&str], calls: u32) -> SippPeer {
        let dir = temp_dir(name);
        let stats = dir.join("stats.csv");
        let mut cmd = Command::new(sipp());
        cmd.args(scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", &calls.to_string(), "-nostdin", "-timeout", "30s"])
            .arg("-trace_stat")
            .arg("-stf")
            .arg(&stats)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start sipp");
        std::thread::sleep(Duration::from_millis(300));
        SippPeer { child, port, stats }
    }
}

/// A test that fails before [`SippPeer::finish`] leaves no SIPp behind holding its ports.
impl Drop for SippPeer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl SippPeer {
    /// Waits up to `limit` for SIPp to exit; its exit code and (successful, failed) calls.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, (u64, u64)) {
        let deadline = Instant::now() + limit;
        let code = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (code, read_stats(&self.stats))
    }
}

/// One SIPp call (`-m 1`) with `scenario` to number `service` at dialtone, from a free
/// port, bounded by 20 s.
pub fn call_service(d: &Dialtone, scenario: &Path, service: &str) -> SippRun {
    run_sipp(
        &args(&[
            "-sf",
            &scenario.to_string_lossy(),
            "-s",
            service,
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-m",
            "1",
            &format!("127.0.0.1:{}", d.port),
        ]),
        Duration::from_secs(20),
    )
}

/// `dialtone call <uri> <extra…>` from a free local port, bounded by `limit`.
pub fn dialtone_call(uri: &str, extra: &[&str], limit: Duration) -> Output {
    let mut call = Command::new(dialtone_bin());
    call.arg("call").arg(uri).args(extra).env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()));
    run_bounded(call, limit)
}

/// A private CA and a certificate it signed for 127.0.0.1, made with `openssl`: (the CA's
/// certificate, the leaf certificate, its key, leaf and key in one file as baresip wants).
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(ok.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=dialtone test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "cert.pem",
        "-extfile",
        "leaf.ext",
    ]);
    let pem = [std::fs::read(p("cert.pem")).unwrap(), std::fs::read(p("key.pem")).unwrap()].concat();
    std::fs::write(p("combined.pem"), pem).unwrap();
    (p("ca.pem"), p("cert.pem"), p("key.pem"), p("combined.pem"))
}

/// A mono WAV at 8 kHz: a `hz` tone (amplitude 12000) for `secs`.
pub fn write_tone_wav(path: &Path, secs: f64, hz: f64) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(8000.0 * secs) as usize {
        let v = 12000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin();
        w.write_sample(v as i16).unwrap();
    }
    w.finalize().unwrap();
}
