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
    // Only the target named is allowed (DIALTONE_REFER=uri).
    let allow = format!("sip:carol@127.0.0.1:{}", target.port);
    let d = Dialtone::serve(
        "transfer",
        &[
            ("DIALTONE_INBOUND", "echo"),
            ("DIALTONE_RTP_PORTS", "47200-47299"),
            ("DIALTONE_REFER", "uri"),
            ("DIALTONE_REFER_ALLOW", &allow),
        ],
    );
    let run = refer_caller(d.port, "uac_refer.xml", ("target_port", &target.port.to_string()));
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

/// A UDP socket on loopback that counts what reaches it: the trunk (or any address) that
/// must not be called.
struct Counter {
    sock: std::net::UdpSocket,
}

impl Counter {
    fn new() -> Counter {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        Counter { sock }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// Datagrams that arrived so far.
    fn count(&self) -> usize {
        let mut buf = [0u8; 4096];
        std::iter::from_fn(|| self.sock.recv_from(&mut buf).ok()).count()
    }
}

/// A REFER from SIPp naming `refer_to`, with a 403 expected; (SIPp's ok, failed).
fn refer_refused(d: &Dialtone, refer_to: &str) -> (u64, u64, String) {
    let run = refer_caller(d.port, "uac_refer_refused.xml", ("refer_to", refer_to));
    (run.successful, run.failed, format!("{run:#?}"))
}

#[test]
fn a_stranger_refer_calls_nobody_by_default() {
    sipp();
    // The trunk, and an address a REFER names: neither may hear anything.
    let (trunk, other) = (Counter::new(), Counter::new());
    let d = Dialtone::serve(
        "refer-default",
        &[
            ("DIALTONE_INBOUND", "echo"),
            ("DIALTONE_RTP_PORTS", "47300-47399"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port())),
        ],
    );
    for target in ["sip:+19005550100@any-host", &format!("sip:victim@127.0.0.1:{}", other.port())] {
        let (ok, failed, run) = refer_refused(&d, target);
        assert_eq!((ok, failed), (1, 0), "the REFER to {target} was not answered 403: {run}\n{}", d.log_text());
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((trunk.count(), other.count()), (0, 0), "something was called:\n{}", d.log_text());
    assert!(d.log_text().contains("REFER refused"), "{}", d.log_text());
}

#[test]
fn uri_policy_calls_only_the_allowed_target() {
    sipp();
    let (trunk, other) = (Counter::new(), Counter::new());
    let target = SippPeer::start(
        "refer-allowed-target",
        &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()],
    );
    let allow = format!("sip:carol@127.0.0.1:{}", target.port);
    let http = free_port();
    let d = Dialtone::serve(
        "refer-uri",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_INBOUND", "echo"),
            ("DIALTONE_RTP_PORTS", "47400-47499"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port())),
            ("DIALTONE_REFER", "uri"),
            ("DIALTONE_REFER_ALLOW", &allow),
        ],
    );
    // Refused: a number (uri mode calls no numbers) and an address not on the list.
    for target in ["sip:+19005550100@any-host", &format!("sip:carol@127.0.0.1:{}", other.port())] {
        let (ok, failed, run) = refer_refused(&d, target);
        assert_eq!((ok, failed), (1, 0), "the REFER to {target} was not answered 403: {run}\n{}", d.log_text());
    }
    // Allowed: the listed target is called (and answers).
    let run = refer_caller(d.port, "uac_refer.xml", ("target_port", &target.port.to_string()));
    let (code, (ok, failed)) = target.finish(Duration::from_secs(15));
    assert_eq!((run.successful, run.failed), (1, 0), "{run:#?}\n{}", d.log_text());
    assert_eq!((code, ok, failed), (Some(0), 1, 0), "the allowed target\n{}", d.log_text());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((trunk.count(), other.count()), (0, 0), "something else was called:\n{}", d.log_text());
    // The REFER's call is a stored call of the referring call's organization, linked to it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let calls = loop {
        let list = http::send(http, "GET", "/api/calls/list?status=completed", &[("X-Internal-Key", "k")], b"").json();
        if list["data"]["total"].as_u64() >= Some(4) || Instant::now() > deadline {
            break list["data"]["calls"].as_array().cloned().unwrap_or_default();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let referred: Vec<_> = calls.iter().filter(|c| !c["referred_by"].is_null()).collect();
    assert_eq!(referred.len(), 1, "{calls:#?}");
    let by = referred[0]["referred_by"].as_str().unwrap();
    let referrer = calls.iter().find(|c| c["id"] == by).expect("the referring call is stored");
    assert_eq!(referrer["direction"], "inbound");
    assert_eq!(
        (&referred[0]["direction"], &referred[0]["organization_id"], &referred[0]["phone_number"]),
        (&serde_json::json!("outbound"), &referrer["organization_id"], &serde_json::json!(allow)),
        "{calls:#?}"
    );
}

#[test]
fn a_refer_outside_the_allowed_destinations_calls_nobody() {
    sipp();
    let trunk = Counter::new();
    let d = Dialtone::serve(
        "refer-destinations",
        &[
            ("DIALTONE_INBOUND", "echo"),
            ("DIALTONE_RTP_PORTS", "47500-47599"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port())),
            ("DIALTONE_REFER", "trunk"),
            ("DIALTONE_ALLOWED_DESTINATIONS", "+44"),
        ],
    );
    // Numbers through the trunk are allowed (DIALTONE_REFER=trunk), but this one is not
    // among the organization's destinations: 403, and the trunk hears nothing.
    let (ok, failed, run) = refer_refused(&d, "sip:+19005550100@any-host");
    assert_eq!((ok, failed), (1, 0), "the REFER was not answered 403: {run}\n{}", d.log_text());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(trunk.count(), 0, "the trunk was called:\n{}", d.log_text());
    assert!(d.log_text().contains("REFER refused by the organization's policy"), "{}", d.log_text());
}

/// SIPp calling dialtone on `port` with one REFER scenario of fixtures/sipp, its `-key`
/// filled (the target's port, or the Refer-To).
fn refer_caller(port: u16, scenario: &str, (key, value): (&str, &str)) -> SippRun {
    run_sipp(
        &args(&[
            "-sf",
            &root().join("fixtures/sipp").join(scenario).to_string_lossy(),
            &format!("127.0.0.1:{port}"),
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-m",
            "1",
            "-key",
            key,
            value,
        ]),
        Duration::from_secs(20),
    )
}

#[test]
fn an_attended_transfer_refers_the_far_end_with_replaces() {
    use common::http::{send, serve_configured, two_trunks, wait_status};
    use serde_json::json;
    sipp();
    // Call A's far end is the transferee: it wants a REFER whose Refer-To carries Replaces.
    let transferee = SippPeer::start(
        "attended-transferee",
        &["-sf", &root().join("fixtures/sipp/uas_transferee.xml").to_string_lossy()],
    );
    // Call B's far end is the target; it leaves after 1 s, as a replaced dialog would.
    let target = SippPeer::start(
        "attended-target",
        &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()],
    );
    let (d, http) = serve_configured(
        "attended",
        &two_trunks(transferee.port, target.port),
        &[("DIALTONE_RTP_PORTS", "47300-47319")],
    );
    let auth = [("X-Internal-Key", "k")];
    let place = |number: &str| {
        let body = json!({"contact_id": "c", "phone_number": number});
        let r = send(http, "POST", "/api/calls/create", &auth, body.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.json());
        r.json()["data"]["id"].as_str().unwrap().to_string()
    };
    let (a, b) = (place("+15550010000"), place("+15550020000"));
    wait_status(&d, http, &auth, &a, "in-progress", Duration::from_secs(10));
    wait_status(&d, http, &auth, &b, "in-progress", Duration::from_secs(10));
    let body = json!({"replaces_call_id": b});
    let r = send(http, "POST", &format!("/api/calls/{a}/transfer"), &auth, body.to_string().as_bytes());
    assert_eq!(r.status, 202, "{}", r.json());
    // The transferee reports success: dialtone leaves call A; the target leaves call B.
    wait_status(&d, http, &auth, &a, "completed", Duration::from_secs(10));
    wait_status(&d, http, &auth, &b, "completed", Duration::from_secs(10));
    let log = d.log_text();
    assert_eq!(transferee.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "the transferee\n{log}");
    assert_eq!(target.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "the target\n{log}");
    // Naming no live call: 404; itself: 400.
    let r = send(
        http,
        "POST",
        &format!("/api/calls/{a}/transfer"),
        &auth,
        json!({"replaces_call_id": a}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.json());
}
