//! Transfer (RFC 3515) against SIPp: a caller REFERs dialtone to a second party.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn refer_from_sipp_places_the_new_call_and_ends_the_old() {
    sipp();
    // The transfer target: answers, holds 1 s, hangs up.
    let target = SippPeer::start(
        "transfer-target",
        &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()],
    );
    let d = Dialtone::serve("transfer", &[("DIALTONE_INBOUND", "echo"), ("DIALTONE_RTP_PORTS", "47200-47299")]);
    let sip = format!("127.0.0.1:{}", d.port);
    let run = run_sipp(
        &args(&[
            "-sf",
            &root().join("fixtures/sipp/uac_refer.xml").to_string_lossy(),
            &sip,
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-m",
            "1",
            "-key",
            "target_port",
            &target.port.to_string(),
        ]),
        Duration::from_secs(20),
    );
    let (code, (ok, failed)) = target.finish(Duration::from_secs(15));
    let log = d.log_text();
    assert_eq!((run.successful, run.failed), (1, 0), "referrer: {run:#?}\ndialtone log:\n{log}");
    assert_eq!((code, ok, failed), (Some(0), 1, 0), "the transfer target's SIPp\ndialtone log:\n{log}");
    assert!(log.contains("transferring (REFER)"), "{log}");
    assert!(log.contains("transfer answered"), "{log}");
    // Both calls ran media and ended: the referrer's (our BYE) and the new one (the
    // target's BYE); each logs its media summary when its task ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    let summaries = || d.log_text().matches("call media").count();
    while summaries() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(summaries(), 2, "{}", d.log_text());
}

#[test]
fn dialtone_call_transfers_the_far_end_by_refer() {
    sipp();
    let uas =
        SippPeer::start("transferee", &["-sf", &root().join("fixtures/sipp/uas_refer_target.xml").to_string_lossy()]);
    let out = dialtone_call(
        &format!("sip:bob@127.0.0.1:{}", uas.port),
        &["--duration", "0.5", "--transfer", "sip:carol@example.net"],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (code, stats) = uas.finish(Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("transferring the far end to sip:carol@example.net"), "{stderr}");
    assert!(stderr.contains("call: transfer: SIP/2.0 200 OK"), "{stderr}");
    assert_eq!((code, stats), (Some(0), (1, 0)), "SIPp's transferee\n{stderr}");
}
