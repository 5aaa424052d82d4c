//! dialtone against SIPp playing a trunk (issue 4 acceptance): digest auth on INVITE (401 then
//! 407), registration with a short expiry, hold and resume by re-INVITE, DTMF by SIP INFO.
//! The scenarios are `fixtures/sipp/uas_auth.xml`, `uas_registrar.xml`, `uac_hold.xml` and
//! `uac_info_dtmf.xml`; their comments say what each checks.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The credentials the SIPp scenarios accept.
const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// `dialtone call <uri> --duration 1 --sip-trace` with trunk credentials in the environment
/// (and no trunk or registration inherited from the test's own environment).
fn call_with_credentials(uri: &str, user: &str, password: &str, limit: Duration) -> Output {
    let mut call = Command::new(dialtone_bin());
    call.arg("call")
        .arg(uri)
        .args(["--duration", "1", "--sip-trace"])
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_TRUNK_USER", user)
        .env("DIALTONE_TRUNK_PASSWORD", password)
        .env_remove("DIALTONE_TRUNK")
        .env_remove("DIALTONE_REGISTER")
        .env_remove("DIALTONE_CONFIG");
    run_bounded(call, limit)
}

/// SIPp arguments for a UAS scenario that also writes every message to `messages`.
fn uas_args<'a>(scenario: &'a Path, messages: &'a Path) -> [&'a str; 5] {
    ["-sf", scenario.to_str().unwrap(), "-trace_msg", "-message_file", messages.to_str().unwrap()]
}

/// The distinct INVITE transactions (Via branches) SIPp received, from its -trace_msg file.
fn invite_branches(messages: &Path) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(&std::fs::read(messages).unwrap_or_default()).into_owned();
    let mut branches = BTreeSet::new();
    let mut in_invite = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("INVITE ") {
            in_invite = true;
        } else if line.is_empty() || line.starts_with("-----") {
            in_invite = false;
        } else if in_invite && line.to_ascii_lowercase().starts_with("via:") {
            if let Some(b) = line.split(';').find_map(|p| p.trim().strip_prefix("branch=")) {
                branches.insert(b.to_string());
            }
            in_invite = false;
        }
    }
    branches
}

#[test]
fn invite_challenged_401_then_407_succeeds() {
    // The UAS challenges with 401 (realm dialtone.test), then 407 (realm proxy.test), and
    // checks each digest response before it answers.
    let scenario = root().join("fixtures/sipp/uas_auth.xml");
    let messages = temp_dir("auth-ok").join("messages.log");
    let uas = SippPeer::start("auth-ok", &uas_args(&scenario, &messages));
    let uri = format!("sip:service@127.0.0.1:{}", uas.port);
    let out = call_with_credentials(&uri, USER, PASSWORD, Duration::from_secs(30));
    let (status, stats) = uas.finish(Duration::from_secs(15));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sipp_saw = std::fs::read_to_string(&messages).unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "dialtone call failed:\n{stderr}\nSIPp messages:\n{sipp_saw}");
    assert!(stderr.contains("call: completed"), "{stderr}");
    assert_eq!(
        (status, stats),
        (Some(0), (1, 0)),
        "SIPp's challenging UAS did not count one successful call\n{stderr}\nSIPp messages:\n{sipp_saw}"
    );
}

#[test]
fn invite_with_wrong_password_fails_without_looping() {
    // The UAS re-challenges the rejected retry once (stale=false) and then fails its call
    // (expected here); dialtone must give up with the error after that one retry.
    let scenario = root().join("fixtures/sipp/uas_auth.xml");
    let messages = temp_dir("auth-bad").join("messages.log");
    let uas = SippPeer::start("auth-bad", &uas_args(&scenario, &messages));
    let uri = format!("sip:service@127.0.0.1:{}", uas.port);
    let start = Instant::now();
    let out = call_with_credentials(&uri, USER, "not-the-password", Duration::from_secs(30));
    let took = start.elapsed();
    let (_, (successful, _)) = uas.finish(Duration::from_secs(15));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let branches = invite_branches(&messages);
    assert!(took < Duration::from_secs(20), "dialtone call took {took:?} to give up:\n{stderr}");
    assert!(
        matches!(out.status.code(), Some(c) if c != 0),
        "dialtone call with a wrong password exited {:?}:\n{stderr}",
        out.status.code()
    );
    assert!(stderr.contains("401") || stderr.contains("407"), "no 401/407 in dialtone's output:\n{stderr}");
    assert_eq!(successful, 0, "SIPp accepted a wrong password:\n{stderr}");
    // The first INVITE and exactly one retry with (wrong) credentials: fewer means the
    // challenge was not answered at all, more means a loop.
    assert_eq!(
        branches.len(),
        2,
        "SIPp saw {} INVITEs (branches {branches:?}); expected the first and one retry with credentials:\n{stderr}",
        branches.len()
    );
}

/// How many `registration state=registered` lines dialtone has logged.
fn registered_count(log: &str) -> usize {
    log.lines().map(strip_ansi).filter(|l| l.contains("registration") && l.contains("state=registered")).count()
}

#[test]
fn registers_refreshes_and_unregisters() {
    // The registrar challenges, grants 4 s, requires a refresh within 6 s and, when dialtone
    // shuts down, an unregister (Expires 0); its call succeeds only with all three.
    let scenario = root().join("fixtures/sipp/uas_registrar.xml");
    let messages = temp_dir("registrar").join("messages.log");
    let registrar = SippPeer::start("registrar", &uas_args(&scenario, &messages));
    let trunk = format!("sip:127.0.0.1:{}", registrar.port);
    let mut d = Dialtone::serve(
        "register",
        &[
            ("DIALTONE_TRUNK", trunk.as_str()),
            ("DIALTONE_TRUNK_USER", USER),
            ("DIALTONE_TRUNK_PASSWORD", PASSWORD),
            ("DIALTONE_REGISTER", "true"),
        ],
    );

    // The first registration and one refresh (the grant is 4 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    while registered_count(&d.log_text()) < 2 && Instant::now() < deadline && d.alive() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = d.log_text();
    let sipp_saw = || std::fs::read_to_string(&messages).unwrap_or_default();
    assert!(
        registered_count(&log) >= 2,
        "dialtone did not log `registration state=registered` twice within 15 s; log:\n{log}\nSIPp messages:\n{}",
        sipp_saw()
    );

    // Ctrl-C: a clean shutdown unregisters.
    let pid = d.child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().map(|s| s.success());
    assert!(matches!(killed, Ok(true)), "kill -INT {pid}: {killed:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Ok(Some(s)) = d.child.try_wait() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = d.log_text();
    assert!(exit.is_some(), "dialtone serve did not exit within 10 s of SIGINT; log:\n{log}");
    let (status, stats) = registrar.finish(Duration::from_secs(10));
    assert_eq!(
        (status, stats),
        (Some(0), (1, 0)),
        "SIPp's registrar did not see register, refresh and unregister (dialtone exited {exit:?}); log:\n{log}\n\
         SIPp messages:\n{}",
        sipp_saw()
    );
}

/// Runs one of the UAC scenarios (`fixtures/sipp/<file>`) once against `d`.
fn run_scenario(d: &Dialtone, file: &str) -> SippRun {
    let scenario = root().join("fixtures/sipp").join(file);
    let target = format!("127.0.0.1:{}", d.port);
    let port = free_port().to_string();
    run_sipp(
        &args(&["-sf", scenario.to_str().unwrap(), &target, "-i", "127.0.0.1", "-p", &port, "-m", "1"]),
        Duration::from_secs(30),
    )
}

#[test]
fn reinvite_hold_and_resume_answer_directions() {
    // sendonly is answered recvonly, inactive with inactive, sendrecv with sendrecv, each
    // answer with a greater o= version (the scenario fails its call otherwise).
    let mut d = Dialtone::serve("hold", &[]);
    let run = run_scenario(&d, "uac_hold.xml");
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!((run.status, run.successful, run.failed), (Some(0), 1, 0), "{run:#?}\ndialtone log:\n{}", d.log_text());
}

/// The digits of dialtone's `dtmf received … digit=<d>` log lines, in order.
fn logged_digits(log: &str) -> String {
    log.lines()
        .map(strip_ansi)
        .filter(|l| l.contains("dtmf received"))
        .filter_map(|l| {
            l.split_whitespace().find_map(|t| t.strip_prefix("digit=")).map(|d| d.trim_matches(['"', '\'']).to_string())
        })
        .collect()
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

#[test]
fn info_dtmf_is_reported_as_digits() {
    // INFO application/dtmf-relay Signal=5, Signal=#, then application/dtmf "9": each gets
    // 200 and is reported like an RFC 4733 digit.
    let mut d = Dialtone::serve("info-dtmf", &[]);
    let run = run_scenario(&d, "uac_info_dtmf.xml");
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!((run.status, run.successful, run.failed), (Some(0), 1, 0), "{run:#?}\ndialtone log:\n{}", d.log_text());
    let deadline = Instant::now() + Duration::from_secs(2);
    while logged_digits(&d.log_text()).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log_text();
    assert_eq!(logged_digits(&log), "5#9", "digits in dialtone's `dtmf received` log lines; log:\n{log}");
}

#[test]
fn log_and_message_parsers() {
    // The helpers above on the lines the engine is to write and on SIPp's message trace.
    let log = "2026-01-01T00:00:00Z  INFO dialtone::serve: registration state=registered expires=4 trunk=x\n\
               2026-01-01T00:00:01Z  INFO dialtone::serve: registration state=unregistered\n\
               2026-01-01T00:00:02Z  \u{1b}[32m INFO\u{1b}[0m dialtone::serve: registration \
               \u{1b}[3mstate\u{1b}[0m\u{1b}[2m=\u{1b}[0mregistered expires=4\n\
               2026-01-01T00:00:03Z  INFO dialtone::serve: dtmf received call=1 digit=5 via=info\n\
               2026-01-01T00:00:04Z  INFO dialtone::serve: dtmf received call=1 digit=\"#\" via=info\n";
    assert_eq!(registered_count(log), 2);
    assert_eq!(logged_digits(log), "5#");

    let dir = temp_dir("trunk-parsers");
    let trace = dir.join("messages.log");
    let invite = |branch: &str| {
        format!(
            "----------------------------------------------- 2026-01-01 00:00:00.000000\n\
             UDP message received [300] bytes :\n\n\
             INVITE sip:service@127.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5071;branch={branch};rport\r\n\
             CSeq: 1 INVITE\r\n\r\n"
        )
    };
    let reply = "----------------------------------------------- 2026-01-01 00:00:00.000001\n\
                 UDP message sent (300 bytes):\n\n\
                 SIP/2.0 401 Unauthorized\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKresponse\r\n\r\n";
    // a retransmission of the first INVITE counts once
    let text = [invite("z9hG4bKa"), reply.to_string(), invite("z9hG4bKa"), invite("z9hG4bKb")].concat();
    std::fs::write(&trace, text).unwrap();
    assert_eq!(invite_branches(&trace).into_iter().collect::<Vec<_>>(), ["z9hG4bKa", "z9hG4bKb"]);
}
