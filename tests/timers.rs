//! PRACK (RFC 3262) and session timers (RFC 4028) against SIPp. The session intervals
//! are 4 s, under RFC 4028's 90 s floor, so dialtone runs with `DIALTONE_MIN_SE=2`.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn scenario(name: &str) -> String {
    root().join("fixtures/sipp").join(name).to_string_lossy().into_owned()
}

/// `dialtone call` against a SIPp UAS scenario; asserts both ends succeeded.
fn call_into(scenario_file: &str, name: &str, env: &[(&str, &str)], duration: &str) -> Duration {
    sipp();
    let uas = SippPeer::start(name, &["-sf", &scenario(scenario_file)]);
    let mut call = Command::new(dialtone_bin());
    call.arg("call")
        .arg(format!("sip:service@127.0.0.1:{}", uas.port))
        .args(["--duration", duration, "--sip-trace"])
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env_remove("DIALTONE_TRUNK")
        .env_remove("DIALTONE_CONFIG");
    for (k, v) in env {
        call.env(k, v);
    }
    let started = Instant::now();
    let out = run_bounded(call, Duration::from_secs(30));
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (code, stats) = uas.finish(Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(0), "dialtone call failed:\n{stderr}");
    assert_eq!((code, stats), (Some(0), (1, 0)), "SIPp's {scenario_file} did not succeed:\n{stderr}");
    took
}

/// SIPp calls `dialtone serve` with `scenario_file`; asserts one successful call.
fn serve_called_by(scenario_file: &str, name: &str, ports: &str) -> (SippRun, String) {
    sipp();
    let d = Dialtone::serve(
        name,
        &[("DIALTONE_MIN_SE", "2"), ("DIALTONE_RTP_PORTS", ports), ("DIALTONE_SIP_TRACE", "true")],
    );
    let run = run_sipp(
        &args(&[
            "-sf",
            &scenario(scenario_file),
            &format!("127.0.0.1:{}", d.port),
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-m",
            "1",
        ]),
        Duration::from_secs(20),
    );
    let log = d.log_text();
    assert_eq!((run.successful, run.failed), (1, 0), "{run:#?}\ndialtone log:\n{log}");
    (run, log)
}

#[test]
fn prack_for_a_reliable_180() {
    call_into("uas_reliable_180.xml", "prack", &[], "1");
}

#[test]
fn call_refreshes_when_the_2xx_names_it_refresher() {
    // Two UPDATEs at 2 s and 4 s, then the BYE at 5 s: the scenario fails on a refresh
    // missing for 4 s.
    let took = call_into(
        "uas_timer_refresh.xml",
        "timer-uac",
        &[("DIALTONE_MIN_SE", "2"), ("DIALTONE_SESSION_EXPIRES", "4")],
        "5",
    );
    assert!(took >= Duration::from_secs(5), "{took:?}");
}

#[test]
fn serve_refreshes_a_session_it_is_refresher_for() {
    let (_, log) = serve_called_by("uac_timer_refresh.xml", "timer-uas", "48000-48099");
    // The trace shows what went out (a retransmission would add to it).
    assert!(log.matches("UPDATE sip:").count() >= 2, "{log}");
}

#[test]
fn serve_ends_a_session_nobody_refreshes() {
    let started = Instant::now();
    let (_, log) = serve_called_by("uac_timer_expire.xml", "timer-expire", "48100-48199");
    let took = started.elapsed();
    // 4 s interval: the BYE goes at 4 - 4/3 ≈ 3 s, not at once.
    assert!(took >= Duration::from_millis(2500), "BYE after {took:?}\n{log}");
    assert!(log.contains("BYE sip:"), "{log}");
}
