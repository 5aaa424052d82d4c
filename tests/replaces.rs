//! Issue 16's attended transfer, the receiving side (RFC 3891): dialtone has two calls
//! through two SIPp carriers, bridged (carrier a's 1 kHz tone to b, b's 600 Hz to a). A
//! third SIPp, the transfer target, sends dialtone an INVITE whose `Replaces` names the
//! dialog with carrier a (as carrier a's message log shows it): it is answered, takes call
//! a's place in the bridge (b is now sent its 400 Hz tone), and call a is hung up (carrier
//! a gets the BYE). An INVITE replacing a dialog that is not there gets 481.

mod common;

use common::http::{recording, send, serve_configured, two_trunks, wait_status};
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::{json, Value};
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

fn carrier(name: &str, pcap: &str, log: Option<&std::path::Path>) -> SippPeer {
    // 35800–36000: no other test's range.
    match log {
        Some(log) => SippPeer::carrier(name, pcap, 35_800, &["-trace_msg", "-message_file", &log.to_string_lossy()]),
        None => SippPeer::carrier(name, pcap, 35_800, &[]),
    }
}

/// The value of header `name` on the first line of `log` that has it.
fn first_header<'a>(log: &'a str, name: &str) -> &'a str {
    log.lines()
        .find_map(|l| l.trim_start().strip_prefix(name).map(str::trim))
        .unwrap_or_else(|| panic!("no {name} in\n{log}"))
}

fn tag_of(value: &str) -> &str {
    value.split(";tag=").nth(1).map(|t| t.split(';').next().unwrap()).unwrap_or_else(|| panic!("no tag in {value}"))
}

/// The target calls dialtone with `Replaces: replaces`, expecting `status`.
fn target(d: &Dialtone, replaces: &str, status: u16) -> SippRun {
    let text = std::fs::read_to_string(root().join("fixtures/sipp/uac_replaces.xml")).unwrap();
    let text = if status == 200 {
        let tail = "<nop><action><exec play_pcap_audio=\"[pcap]\"/></action></nop>\n  \
            <pause milliseconds=\"3000\"/>\n  <send retrans=\"500\">\n    <![CDATA[\n\n      \
            BYE [next_url] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      \
            From: <sip:+15550777@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n      \
            To: <sip:takeover@[remote_ip]:[remote_port]>[peer_tag_param]\n      Call-ID: [call_id]\n      \
            CSeq: 2 BYE\n      Max-Forwards: 70\n      Content-Length: 0\n\n    ]]>\n  </send>\n  \
            <recv response=\"200\"/>";
        text.replace("ACK_URI", "[next_url]").replace("ACK_BRANCH", "[branch]").replace("<!-- TAIL -->", tail)
    } else {
        text.replace("ACK_URI", "sip:takeover@[remote_ip]:[remote_port]").replace("ACK_BRANCH", "[branch-4]")
    };
    let text = text.replace("STATUS", &status.to_string()).replace("REPLACES", replaces);
    let scenario = temp_dir(&format!("replaces-{status}")).join("uac.xml");
    std::fs::write(&scenario, text).unwrap();
    let mp = free_media_port_in(35_800, 50).to_string();
    let pcap = root().join("fixtures/pcap/conf_400_pcmu.pcap");
    run_sipp(
        &args(&[
            "-sf",
            &scenario.to_string_lossy(),
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-mi",
            "127.0.0.1",
            "-mp",
            &mp,
            "-key",
            "pcap",
            &pcap.to_string_lossy(),
            "-m",
            "1",
            &format!("127.0.0.1:{}", d.port),
        ]),
        Duration::from_secs(20),
    )
}

/// 20 ms windows (8 kHz) where `hz` clearly stands out.
fn windows_of(samples: &[i16], hz: f32) -> usize {
    samples
        .chunks_exact(160)
        .filter(|w| {
            let p = goertzel_power(w, 8000, hz);
            p > 1e6 && p > 20.0 * goertzel_power(w, 8000, hz * 1.37).max(goertzel_power(w, 8000, hz * 0.73))
        })
        .count()
}

#[test]
fn an_invite_with_replaces_takes_the_calls_place_in_its_bridge() {
    sipp();
    let log = temp_dir("replaces-a-log").join("messages.log");
    let a = carrier("replaces-a", "tone_1k_pcmu.pcap", Some(&log));
    let b = carrier("replaces-b", "conf_700_pcmu.pcap", None);
    let (d, http) = serve_configured("replaces", &two_trunks(a.port, b.port), &[("DIALTONE_RTP_PORTS", "41300-41349")]);
    let place = |number: &str| {
        let body = json!({"contact_id": "c", "phone_number": number, "record": true});
        let r = send(http, "POST", "/api/calls/create", &AUTH, body.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.json());
        r.json()["data"]["id"].as_str().unwrap().to_string()
    };
    let (ida, idb) = (place("+15550010000"), place("+15550020000"));
    wait_status(&d, http, &AUTH, &ida, "in-progress", Duration::from_secs(10));
    wait_status(&d, http, &AUTH, &idb, "in-progress", Duration::from_secs(10));
    let r =
        send(http, "POST", &format!("/api/calls/{ida}/bridge"), &AUTH, json!({"call_id": idb}).to_string().as_bytes());
    assert_eq!(r.status, 202, "{}", r.json());

    // Nothing to replace: 481.
    let run = target(&d, "nosuchcall@x;to-tag=1;from-tag=2", 481);
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());

    // The dialog with carrier a as carrier a saw it: dialtone's tag is the To tag the
    // Replaces names (the recipient's), carrier a's the From tag.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let call_id = first_header(&text, "Call-ID:");
    let ours = tag_of(first_header(&text, "From:"));
    let theirs = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("To:"))
        .find(|v| v.contains(";tag="))
        .map(tag_of)
        .unwrap_or_else(|| panic!("carrier a sent no To tag\n{text}"));
    let run = target(&d, &format!("{call_id};to-tag={ours};from-tag={theirs}"), 200);
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
    // Carrier a got its BYE (its scenario ends only so): call a is over, replaced.
    assert_eq!(a.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
    wait_status(&d, http, &AUTH, &ida, "completed", Duration::from_secs(10));
    let events = |id: &str| -> Vec<Value> {
        send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json()["data"]["events"].as_array().unwrap().clone()
    };
    let replaced = events(&ida);
    let by = replaced.iter().find(|e| e["kind"] == "replaced").unwrap_or_else(|| panic!("{replaced:?}"));
    let new_id = by["detail"].as_str().unwrap().to_string();
    assert!(events(&new_id).iter().any(|e| e["kind"] == "replaces" && e["detail"] == ida.as_str()));
    assert!(events(&new_id).iter().any(|e| e["kind"] == "bridged" && e["detail"] == idb.as_str()));
    // Call b was sent the target's 400 Hz once it took a's place (as it was sent a's 1 kHz before).
    assert!(send(http, "POST", &format!("/api/calls/{idb}/hangup"), &AUTH, b"").status < 300);
    wait_status(&d, http, &AUTH, &idb, "completed", Duration::from_secs(10));
    let to_b: Vec<i16> = recording(&d, http, &AUTH, &idb).iter().skip(1).step_by(2).copied().collect();
    let (from_a, from_target) = (windows_of(&to_b, 1000.0), windows_of(&to_b, 400.0));
    assert!(from_a >= 10 && from_target >= 75, "b was sent a's tone {from_a} times, the target's {from_target}");
    assert_eq!(b.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
}
