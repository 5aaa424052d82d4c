//! dialtone against a real registrar and proxy (issue 4): Kamailio 5.6 running
//! `fixtures/kamailio/kamailio.cfg` challenges dialtone's REGISTER (digest, MD5, qop=auth),
//! saves its binding, and routes a SIPp call for alice to it through a recorded route
//! (`fixtures/kamailio/uac_via_kamailio.xml`). A wrong password must fail once, visibly,
//! without a REGISTER loop. `./dev test` installs Debian's kamailio package.

mod common;

use common::kamailio::*;
use common::*;

use std::process::Command;
use std::time::{Duration, Instant};

/// The only account the Kamailio fixture knows.
const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

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
    let far = Dialtone::serve(
        "kamailio-tls-far",
        &[
            ("DIALTONE_SRTP", "mandatory"),
            ("DIALTONE_SRTP_ANY_TRANSPORT", "true"),
            ("DIALTONE_RTP_PORTS", "47900-47949"),
        ],
    );
    let mut k = Kamailio::tls_carrier("kamailio-tls-carrier", &cert, &key, far.port);
    let tls = k.port;
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
