//! Issue 16's inbound announcement before the answer, against SIPp: a number with
//! `pre_answer` plays its prompt as early media in a reliable 183 (RFC 3262: `Require:
//! 100rel`, an `RSeq`; the caller PRACKs it), and only then answers (the 200 after the
//! PRACK's, the prompt in the recording before the answer) or, for a `reject` number,
//! refuses with its status.

mod common;

use common::http::{recording, send, wait_port, wait_status};
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::{json, Value};
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

/// SIPp calls `service` with `uac_pre_answer.xml`, expecting `status` at the end.
fn call(d: &Dialtone, service: &str, status: u16) -> SippRun {
    let text = std::fs::read_to_string(root().join("fixtures/sipp/uac_pre_answer.xml")).unwrap();
    let text = if status == 200 {
        let tail = "<pause milliseconds=\"1000\"/>\n  <send retrans=\"500\">\n    <![CDATA[\n\n      \
            BYE [next_url] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      \
            From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n      \
            To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]\n      Call-ID: [call_id]\n      \
            CSeq: 3 BYE\n      Max-Forwards: 70\n      Content-Length: 0\n\n    ]]>\n  </send>\n  \
            <recv response=\"200\"/>";
        text.replace("ACK_URI", "[next_url]").replace("ACK_BRANCH", "[branch]").replace("<!-- TAIL -->", tail)
    } else {
        text.replace("ACK_URI", "sip:[service]@[remote_ip]:[remote_port]").replace("ACK_BRANCH", "[branch-6]")
    };
    let scenario = temp_dir(&format!("pre-answer-{status}")).join("uac.xml");
    std::fs::write(&scenario, text.replace("STATUS", &status.to_string())).unwrap();
    call_service(d, &scenario, service)
}

fn statuses(http: u16, id: &str) -> Vec<String> {
    let c = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json();
    c["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "status")
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The newest inbound call to `number_id`.
fn call_to(http: u16, number_id: &Value) -> String {
    let list = send(http, "GET", "/api/calls/list?limit=50", &AUTH, b"").json();
    let calls = list["data"]["calls"].as_array().cloned().unwrap_or_default();
    let c = calls.into_iter().find(|c| c["number_id"] == *number_id).expect("the call is stored");
    c["id"].as_str().unwrap().to_string()
}

#[test]
fn an_announcement_goes_as_reliable_early_media_then_the_call_is_answered_or_refused() {
    sipp();
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let d = Dialtone::serve(
        "pre-answer",
        &[("DIALTONE_HTTP_LISTEN", &listen), ("DIALTONE_INTERNAL_KEY", "k"), ("DIALTONE_RTP_PORTS", "41200-41249")],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    std::fs::create_dir_all(d.data.join("prompts")).unwrap();
    write_tone_wav(&d.data.join("prompts/notice.wav"), 1.5, 1000.0);
    let number = |body: Value| {
        let r = send(http, "POST", "/api/numbers", &AUTH, body.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.json());
        r.json()["data"]["id"].clone()
    };
    let answered = number(json!({"number": "+15550400", "action": {"type": "echo"}, "record": true,
                                 "pre_answer": "notice.wav"}));
    let refused = number(json!({"number": "+15550500", "action": {"type": "reject", "status": 404},
                                "pre_answer": "notice.wav"}));
    // A bad prompt name is the field's 400.
    let r = send(
        http,
        "POST",
        "/api/numbers",
        &AUTH,
        br#"{"number": "+15550600", "action": {"type": "echo"}, "pre_answer": "../x.wav"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with("pre_answer"));
    std::thread::sleep(Duration::from_millis(300));

    // Answered: 183 (reliable) → PRACK → 200 (PRACK) → 200 (INVITE) → ACK → BYE.
    let run = call(&d, "+15550400", 200);
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
    let id = call_to(http, &answered);
    wait_status(&d, http, &AUTH, &id, "completed", Duration::from_secs(10));
    let st = statuses(http, &id);
    let early = st.iter().position(|s| s == "early-media");
    let live = st.iter().position(|s| s == "in-progress");
    assert!(early.is_some() && early < live, "early media before the answer: {st:?}");
    // What we sent: the announcement (1.5 s of 1 kHz) at the start, before the answer.
    let sent: Vec<i16> = recording(&d, http, &AUTH, &id).iter().skip(1).step_by(2).copied().collect();
    let toned: Vec<bool> = sent
        .chunks_exact(160)
        .map(|w| {
            let p = goertzel_power(w, 8000, 1000.0);
            p > 1e6 && p > 20.0 * goertzel_power(w, 8000, 500.0).max(goertzel_power(w, 8000, 1500.0))
        })
        .collect();
    let n = toned.iter().filter(|t| **t).count();
    assert!((60..=80).contains(&n), "{n} windows of 20 ms carry the announcement (1.5 s is 75)");
    assert!(toned[..80.min(toned.len())].iter().filter(|t| **t).count() >= 60, "the announcement is first");

    // Refused after the announcement: 183 (reliable) → PRACK → 200 (PRACK) → 404 → ACK.
    let run = call(&d, "+15550500", 404);
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
    let id = call_to(http, &refused);
    let st = statuses(http, &id);
    assert!(st.iter().any(|s| s == "early-media") && !st.iter().any(|s| s == "in-progress"), "{st:?}");
}
