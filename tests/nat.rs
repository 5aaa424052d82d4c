//! Behind NAT (issue 14): the addresses dialtone advertises when its interface address is not
//! the one the internet sees. A SIPp callee checks them on the wire.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn advertised_sip_and_media_addresses_are_what_the_far_end_sees() {
    sipp();
    let callee = SippPeer::start(
        "nat-advertise",
        &["-sf", &root().join("fixtures/sipp/uas_check_advertise.xml").to_string_lossy()],
    );
    // Listening on a concrete address (a cloud VM's private one), advertising the public
    // ones: the SIP address in Via and Contact, the media address in the SDP.
    let mut call = std::process::Command::new(dialtone_bin());
    call.arg("call")
        .arg(format!("sip:bob@127.0.0.1:{}", callee.port))
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_SIP_ADVERTISE", "203.0.113.7")
        .env("DIALTONE_MEDIA_ADVERTISE", "198.51.100.9");
    let out = run_bounded(call, Duration::from_secs(20));
    let (code, (ok, failed)) = callee.finish(Duration::from_secs(10));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!((code, ok, failed), (Some(0), 1, 0), "the callee's checks failed\n{log}");
    assert_ne!(out.status.code(), Some(0), "486 is not a call answered\n{log}");
}

#[test]
fn the_public_address_a_registrar_reports_becomes_our_contact() {
    sipp();
    let registrar = SippPeer::start(
        "nat-registrar",
        &["-sf", &root().join("fixtures/sipp/uas_registrar_nat.xml").to_string_lossy()],
    );
    let d = Dialtone::serve(
        "nat-learn",
        &[
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", registrar.port)),
            ("DIALTONE_TRUNK_USER", "alice"),
            ("DIALTONE_REGISTER", "true"),
        ],
    );
    let (code, (ok, failed)) = registrar.finish(Duration::from_secs(15));
    let log = d.log_text();
    assert_eq!((code, ok, failed), (Some(0), 1, 0), "the registrar did not see the learned Contact\n{log}");
    assert!(log.contains("public address learned"), "{log}");
    assert_eq!(log.matches("public address learned").count(), 1, "learned once, no REGISTER loop\n{log}");
}
