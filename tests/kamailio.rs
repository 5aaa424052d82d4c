//! dialtone against a real registrar and proxy (issue 4): Kamailio 5.6 running
//! `fixtures/kamailio/kamailio.cfg` challenges dialtone's REGISTER (digest, MD5, qop=auth),
//! saves its binding, and routes a SIPp call for alice to it through a recorded route
//! (`fixtures/kamailio/uac_via_kamailio.xml`). A wrong password must fail once, visibly,
//! without a REGISTER loop. `./dev test` installs Debian's kamailio package.

mod common;

use common::*;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The only account the Kamailio fixture knows.
const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// The kamailio binary: on PATH, or where Debian puts it (/usr/sbin is not on every PATH).
fn kamailio_bin() -> PathBuf {
    let works = |bin: &PathBuf| {
        Command::new(bin).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let found = [PathBuf::from("kamailio"), PathBuf::from("/usr/sbin/kamailio")].into_iter().find(works);
    found.unwrap_or_else(|| panic!("kamailio is not installed: run ./dev test (it installs Debian's kamailio)"))
}

/// A Kamailio running the fixture config in the foreground, in its own process group, on
/// a free 127.0.0.1 port (UDP and TCP). Dropping it stops the whole group.
struct Kamailio {
    child: Child,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
}

impl Kamailio {
    fn start(name: &str) -> Kamailio {
        let port = free_port();
        let listen = [format!("udp:127.0.0.1:{port}"), format!("tcp:127.0.0.1:{port}")];
        Kamailio::launch(name, "kamailio.cfg", port, &listen, &[])
    }

    /// Kamailio running `fixtures/kamailio/<cfg>` on the `listen` sockets (the first TCP or
    /// TLS one on `port` is waited for), with `-A` defines.
    fn launch(name: &str, cfg: &str, port: u16, listen: &[String], defines: &[String]) -> Kamailio {
        use std::os::unix::process::CommandExt;
        let bin = kamailio_bin();
        let dir = temp_dir(name);
        let log = dir.join("kamailio.log");
        let logf = std::fs::File::create(&log).unwrap();
        let cfg = root().join("fixtures/kamailio").join(cfg);
        let mut cmd = Command::new(bin);
        for l in listen {
            cmd.args(["-l", l]);
        }
        for d in defines {
            cmd.args(["-A", d]);
        }
        cmd.arg("-f")
            .arg(&cfg)
            // Foreground, log to stderr, no SCTP, small memory. One UDP worker: with two, a
            // 180 and the 200 right behind it are relayed by different processes and may
            // reach SIPp reordered, which its scenario counts as an unexpected message.
            .args(["-DD", "-E", "-n", "1", "-N", "1", "-S", "-m", "32", "-M", "4"])
            .arg("-w")
            .arg(&dir)
            .arg("-Y")
            .arg(&dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .process_group(0);
        let child = cmd.spawn().expect("start kamailio");
        let mut k = Kamailio { child, port, dir, log };
        k.wait_listening();
        k
    }

    /// Both sockets are bound before Kamailio forks its workers, so once TCP accepts, UDP
    /// datagrams queue for them.
    fn wait_listening(&mut self) {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kamailio exited ({status}) before listening on {addr}; its log:\n{}", self.log_text());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kamailio did not listen on {addr} within 10 s; its log:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The trunk URI dialtone registers with.
    fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    /// How many distinct requests (Call-ID and CSeq) of `method` reached the config's
    /// request_route, from its xlog lines; retransmissions count once.
    fn received(&self, method: &str) -> usize {
        let prefix = format!("fixture: {method} sip:");
        let log = self.log_text();
        let requests: std::collections::BTreeSet<_> = log
            .lines()
            .filter(|l| l.contains(&prefix))
            .map(|l| (field(l, "call-id").map(str::to_string), field(l, "cseq").map(str::to_string)))
            .collect();
        requests.len()
    }

    /// Whether any process of Kamailio's group is left.
    fn group_alive(&self) -> bool {
        Command::new("kill")
            .args(["-0", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// SIGTERM to the group (Kamailio's main process stops its workers), SIGKILL after 5 s;
    /// true when no process of the group is left.
    fn stop(&mut self) -> bool {
        for (signal, grace) in [("-TERM", Duration::from_secs(5)), ("-KILL", Duration::from_secs(5))] {
            self.signal_group(signal);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                // Reap the main process; its workers are reaped by it, or by init.
                let _ = self.child.try_wait();
                if !self.group_alive() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.wait();
        !self.group_alive()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if !self.stop() {
            eprintln!("kamailio process group {} survived SIGKILL ({})", self.child.id(), self.dir.display());
        }
    }
}

/// `dialtone serve` registering with `k` as alice, answering inbound calls with echo.
fn serve_registered(name: &str, k: &Kamailio, password: &str) -> Dialtone {
    let trunk = k.uri();
    Dialtone::serve(
        name,
        &[
            ("DIALTONE_TRUNK", trunk.as_str()),
            ("DIALTONE_TRUNK_USER", USER),
            ("DIALTONE_TRUNK_PASSWORD", password),
            ("DIALTONE_REGISTER", "true"),
            ("DIALTONE_INBOUND", "echo"),
            ("DIALTONE_RTP_PORTS", "48400-48499"),
            ("DIALTONE_SIP_TRACE", "true"),
        ],
    )
}

/// dialtone's `registration` log lines whose fields include `state`.
fn registration_lines(log: &str, state: &str) -> Vec<String> {
    let field = format!("state={state}");
    log.lines()
        .map(strip_ansi)
        .filter(|l| l.contains("registration") && l.split_whitespace().any(|w| w == field))
        .collect()
}

/// Polls `f` every 50 ms until it is true or `limit` has passed.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of `key=` in a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')).map(|v| v.trim_matches('"'))
}

#[test]
fn registers_with_digest_and_answers_a_call_routed_by_kamailio() {
    let started = Instant::now();
    let mut k = Kamailio::start("kam-call");
    let mut d = serve_registered("kam-call", &k, PASSWORD);

    let registered = wait_for(Duration::from_secs(10), || !registration_lines(&d.log_text(), "registered").is_empty());
    assert!(
        registered,
        "dialtone did not log `registration state=registered` within 10 s\ndialtone log:\n{}\nkamailio log:\n{}",
        d.log_text(),
        k.log_text()
    );
    let klog = k.log_text();
    // A challenge first (no credentials: auth code -5), then the binding with credentials.
    assert!(
        klog.contains("fixture: REGISTER for alice not authorised (auth code -5)")
            && klog
                .contains(&format!("fixture: REGISTER for alice saved (contact <sip:dialtone@127.0.0.1:{}>)", d.port)),
        "kamailio did not challenge and then save dialtone's contact; kamailio log:\n{klog}"
    );
    let line = registration_lines(&d.log_text(), "registered").remove(0);
    assert_eq!(field(&line, "expires"), Some("3600"), "Kamailio grants the requested 3600 s: {line}");

    // A caller dials alice at the proxy; Kamailio looks up dialtone's binding and relays.
    let scenario = root().join("fixtures/kamailio/uac_via_kamailio.xml");
    let target = format!("127.0.0.1:{}", k.port);
    let port = free_port().to_string();
    let call_started = Instant::now();
    let run = run_sipp(
        &args(&["-sf", scenario.to_str().unwrap(), &target, "-s", USER, "-i", "127.0.0.1", "-p", &port, "-m", "1"]),
        Duration::from_secs(30),
    );
    let call_took = call_started.elapsed();
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!(
        (run.status, run.successful, run.failed),
        (Some(0), 1, 0),
        "the call through kamailio failed: {run:#?}\ndialtone log:\n{}\nkamailio log:\n{}",
        d.log_text(),
        k.log_text()
    );
    let klog = k.log_text();
    assert!(
        klog.contains(&format!("fixture: INVITE for alice relayed to sip:dialtone@127.0.0.1:{}", d.port)),
        "kamailio did not relay the INVITE to dialtone's binding; kamailio log:\n{klog}"
    );
    // The ACK and BYE took the recorded route through the proxy.
    assert_eq!((k.received("ACK"), k.received("BYE")), (1, 1), "kamailio log:\n{klog}");
    // dialtone answered and ran media until the BYE: its per-call summary.
    let media =
        wait_for(Duration::from_secs(5), || d.log_text().lines().map(strip_ansi).any(|l| l.contains("call media")));
    assert!(media, "dialtone logged no `call media` summary after the BYE; log:\n{}", d.log_text());

    assert!(k.stop(), "kamailio's process group survived SIGTERM and SIGKILL");
    eprintln!("kamailio call test: registered and called in {:?} (SIPp call {call_took:?})", started.elapsed());
}

#[test]
fn wrong_password_fails_registration_without_looping() {
    let mut k = Kamailio::start("kam-badpw");
    let d = serve_registered("kam-badpw", &k, "not-the-password");

    let failed = wait_for(Duration::from_secs(10), || !registration_lines(&d.log_text(), "failed").is_empty());
    assert!(
        failed,
        "dialtone did not log `registration state=failed` within 10 s\ndialtone log:\n{}\nkamailio log:\n{}",
        d.log_text(),
        k.log_text()
    );
    let line = registration_lines(&d.log_text(), "failed").remove(0);
    assert!(matches!(field(&line, "status"), Some("401" | "403")), "expected status 401 or 403: {line}");
    let retry_in: u64 = field(&line, "retry_in_s").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(retry_in >= 1, "a failed registration must back off before retrying: {line}");

    // Until the back-off runs out: the first REGISTER and exactly one retry with the
    // (wrong) credentials. More would be a loop on the repeated 401.
    let quiet = Duration::from_millis((retry_in * 1000).saturating_sub(500).min(3000));
    std::thread::sleep(quiet);
    let log = d.log_text();
    assert_eq!(
        k.received("REGISTER"),
        2,
        "kamailio saw {} REGISTERs within {quiet:?} of the failure; expected the first and one retry\n\
         dialtone log:\n{log}\nkamailio log:\n{}",
        k.received("REGISTER"),
        k.log_text()
    );
    assert_eq!(registration_lines(&log, "failed").len(), 1, "dialtone log:\n{log}");
    assert!(registration_lines(&log, "registered").is_empty(), "registered with a wrong password:\n{log}");
    assert!(k.stop(), "kamailio's process group survived SIGTERM and SIGKILL");
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, up to a final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A 16-bit mono WAV of `secs` of `freq` Hz at 8 kHz.
fn tone_wav(path: &std::path::Path, secs: f32, freq: f32) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..(secs * 8000.0) as u32 {
        w.write_sample((8000.0 * (2.0 * std::f32::consts::PI * freq * n as f32 / 8000.0).sin()) as i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn a_call_goes_out_through_a_tls_carrier_that_challenges_it_with_srtp_end_to_end() {
    // The carrier: Kamailio on TLS (its certificate from a private CA dialtone is told to
    // trust), challenging every INVITE, relaying over UDP to the far end: a `dialtone serve`
    // that echoes, SRTP mandatory (keys allowed over that UDP leg). `dialtone call` plays a
    // tone through it, SRTP mandatory, and records: the echoed tone comes back decrypted.
    let dir = temp_dir("kamailio-tls");
    let (ca, cert, key, _) = private_ca(&dir);
    let tls_cfg = dir.join("tls.cfg");
    std::fs::write(
        &tls_cfg,
        format!(
            "[server:default]\nmethod = TLSv1.2+\ncertificate = {}\nprivate_key = {}\nverify_certificate = no\n\
             require_certificate = no\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let far = Dialtone::serve(
        "kamailio-tls-far",
        &[
            ("DIALTONE_SRTP", "mandatory"),
            ("DIALTONE_SRTP_ANY_TRANSPORT", "true"),
            ("DIALTONE_RTP_PORTS", "47900-47949"),
        ],
    );
    let (udp, tls) = (free_port(), free_port());
    let listen = [format!("udp:127.0.0.1:{udp}"), format!("tls:127.0.0.1:{tls}")];
    let defines = [
        format!("UAS_TARGET=\"sip:127.0.0.1:{};transport=udp\"", far.port),
        format!("TLS_CFG=\"{}\"", tls_cfg.display()),
    ];
    let mut k = Kamailio::launch("kamailio-tls-carrier", "kamailio-tls.cfg", tls, &listen, &defines);
    let (tone, rec) = (dir.join("tone.wav"), dir.join("received.wav"));
    tone_wav(&tone, 4.0, 700.0);
    let mut call = Command::new(dialtone_bin());
    call.arg("call")
        .arg("+15551230000")
        .args(["--duration", "3", "--play"])
        .arg(&tone)
        .arg("--record")
        .arg(&rec)
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_RTP_PORTS", "47950-47999")
        .env("DIALTONE_TRUNK", format!("sip:127.0.0.1:{tls};transport=tls"))
        .env("DIALTONE_TRUNK_USER", USER)
        .env("DIALTONE_TRUNK_PASSWORD", PASSWORD)
        .env("DIALTONE_TLS_CA", &ca)
        .env("DIALTONE_SRTP", "mandatory");
    let out = run_bounded(call, Duration::from_secs(20));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let diag = || format!("dialtone call:\n{said}\nkamailio:\n{}\nfar end:\n{}", k.log_text(), far.log_text());
    assert_eq!(out.status.code(), Some(0), "{}", diag());
    assert!(said.contains("via TLS:") && said.contains("407"), "not over TLS, or not challenged\n{}", diag());
    assert!(k.log_text().contains("fixture: challenging INVITE"), "{}", diag());
    // The far end's echo of our tone, in the recording's left (received) channel.
    let mut r = hound::WavReader::open(&rec).expect("the recording");
    let channels = r.spec().channels as usize;
    let samples: Vec<i16> = r.samples::<i16>().map_while(Result::ok).step_by(channels).collect();
    let toned = samples
        .chunks_exact(160)
        .filter(|w| {
            let p = dialtone_media::resample::goertzel_power(w, 8000, 700.0);
            p > 1e6 && p > 20.0 * dialtone_media::resample::goertzel_power(w, 8000, 1100.0)
        })
        .count();
    assert!(toned >= 50, "only {toned} windows of 20 ms held the echoed tone\n{}", diag());
    assert!(k.stop(), "kamailio left processes behind");
    let _ = std::fs::remove_dir_all(&dir);
}
