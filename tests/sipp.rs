//! dialtone against SIPp, a SIP implementation nobody here wrote (issue 2 acceptance).

mod common;

use common::*;
use std::time::Duration;

/// Runs one of our UAC scenarios (`fixtures/sipp/<file>`) against `d`, with `extra` SIPp
/// arguments (call count, rate).
fn run_scenario(d: &Dialtone, file: &str, extra: &[&str], limit: Duration) -> SippRun {
    let scenario = root().join("fixtures/sipp").join(file);
    let target = format!("127.0.0.1:{}", d.port);
    let port = free_port().to_string();
    let mut a = args(&["-sf", scenario.to_str().unwrap(), &target, "-i", "127.0.0.1", "-p", &port]);
    a.extend(args(extra));
    run_sipp(&a, limit)
}

fn uac_load(transport: &str) {
    let mut d = Dialtone::serve(&format!("uac-{transport}"), &[]);
    let target = format!("127.0.0.1:{}", d.port);
    let sipp_port = free_port().to_string();
    let run = run_sipp(
        &args(&[
            "-sn",
            "uac",
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &sipp_port,
            "-t",
            transport,
            "-m",
            "500",
            "-r",
            "100",
            "-l",
            "200",
        ]),
        Duration::from_secs(60),
    );
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!(
        (run.status, run.successful, run.failed),
        (Some(0), 500, 0),
        "SIPp uac over {transport}: {run:#?}\ndialtone log:\n{}",
        d.log_text()
    );
}

#[test]
fn sipp_uac_500_calls_at_100_cps_over_udp() {
    uac_load("u1");
}

#[test]
fn sipp_uac_500_calls_at_100_cps_over_tcp() {
    uac_load("t1");
}

fn call_sipp_uas(transport: &str, uri_suffix: &str) {
    let uas = SippPeer::start("uas", &["-sn", "uas", "-t", transport]);
    let uri = format!("sip:service@127.0.0.1:{}{uri_suffix}", uas.port);
    let out = dialtone_call(&uri, &["--duration", "1", "--sip-trace"], Duration::from_secs(30));
    let (status, stats) = uas.finish(Duration::from_secs(15));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "dialtone call failed:\n{stderr}");
    assert!(stderr.contains("call: completed"), "{stderr}");
    assert_eq!((status, stats), (Some(0), (1, 0)), "SIPp uas did not count one successful call\n{stderr}");
}

#[test]
fn dialtone_call_against_sipp_uas_udp() {
    call_sipp_uas("u1", "");
}

#[test]
fn dialtone_call_against_sipp_uas_tcp() {
    call_sipp_uas("t1", ";transport=tcp");
}

#[test]
fn dialtone_call_reports_a_busy_callee() {
    // A SIPp UAS that answers 486: `dialtone call` exits with the 4xx class and says why,
    // and ACKs the 486 (the scenario waits for the ACK).
    let scenario = root().join("fixtures/sipp/uas_busy.xml");
    let uas = SippPeer::start("busy", &["-sf", scenario.to_str().unwrap()]);
    let out = dialtone_call(&format!("sip:busy@127.0.0.1:{}", uas.port), &["--duration", "1"], Duration::from_secs(20));
    let (status, stats) = uas.finish(Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("486"), "{stderr}");
    assert_eq!((status, stats), (Some(0), (1, 0)), "{stderr}");
}

#[test]
fn sipp_cancel_after_180_gets_200_and_487() {
    let mut d = Dialtone::serve("cancel", &[("DIALTONE_ANSWER_AFTER_MS", "10000")]);
    let run = run_scenario(&d, "uac_cancel.xml", &["-m", "5", "-r", "5"], Duration::from_secs(30));
    assert!(d.alive());
    assert_eq!((run.status, run.successful, run.failed), (Some(0), 5, 0), "{run:#?}\n{}", d.log_text());
}

#[test]
fn sipp_options_and_unknown_method() {
    let d = Dialtone::serve("options", &[]);
    for sc in ["uac_options.xml", "uac_unknown_method.xml"] {
        let run = run_scenario(&d, sc, &["-m", "1"], Duration::from_secs(20));
        assert_eq!((run.status, run.successful), (Some(0), 1), "{sc}: {run:#?}\n{}", d.log_text());
    }
}

#[test]
fn offer_without_a_common_codec_gets_488() {
    let d = Dialtone::serve("no-codec", &[]);
    let run = run_scenario(&d, "uac_no_codec.xml", &["-m", "1"], Duration::from_secs(20));
    assert_eq!((run.status, run.successful), (Some(0), 1), "{run:#?}\n{}", d.log_text());
}

#[test]
fn dialtone_call_cancels_when_nobody_answers() {
    // The callee rings forever; --ring-timeout makes `dialtone call` send CANCEL, which the
    // scenario checks carries the INVITE's branch and CSeq (RFC 3261 §9.1).
    let scenario = root().join("fixtures/sipp/uas_ring_forever.xml");
    let uas = SippPeer::start("ring", &["-sf", scenario.to_str().unwrap()]);
    let out =
        dialtone_call(&format!("sip:nobody@127.0.0.1:{}", uas.port), &["--ring-timeout", "1"], Duration::from_secs(20));
    let (status, stats) = uas.finish(Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("487"), "{stderr}");
    assert_eq!((status, stats), (Some(0), (1, 0)), "{stderr}");
}
