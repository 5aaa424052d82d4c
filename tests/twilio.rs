//! Issue 16's Twilio-compatible call update against a real Twilio-protocol bot (the Python
//! agent): it is given `callSid` in `start`, and ends its call the way Pipecat's Twilio
//! serializer does, `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
//! `Status=completed` and HTTP Basic auth. The SIPp callee sees dialtone's BYE; the second
//! POST gets Twilio's 404 / 20404.

mod common;

use common::agent::Agent;
use common::http::{send, wait_port, wait_status};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

#[test]
fn a_twilio_bot_ends_its_call_through_the_twilio_compatible_endpoint() {
    sipp();
    let callee = SippPeer::start(
        "twilio-callee",
        &["-sf", &root().join("fixtures/sipp/uas_answer_wait_bye.xml").to_string_lossy()],
    );
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let trunk = format!("sip:127.0.0.1:{}", callee.port);
    let d = Dialtone::serve(
        "twilio",
        &[
            ("DIALTONE_HTTP_LISTEN", &listen),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &trunk),
            ("DIALTONE_RTP_PORTS", "48840-48859"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let perms = ["calls:write", "calls:read", "calls:hangup", "calls:originate_ai"];
    let r =
        send(http, "POST", "/api/api-keys", &AUTH, json!({"name": "bot", "permissions": perms}).to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let (key_id, key) =
        (r.json()["data"]["id"].as_str().unwrap().to_string(), r.json()["data"]["key"].as_str().unwrap().to_string());
    let base = format!("http://127.0.0.1:{http}");
    let agent = Agent::start_with(
        "twilio-bot",
        "twilio-hangup",
        &["--twilio-base", &base, "--twilio-account", &key_id, "--twilio-user", &key_id, "--twilio-token", &key],
    );
    let bearer = format!("Bearer {key}");
    let auth = [("Authorization", bearer.as_str())];
    let body = json!({"contact_id": "c", "phone_number": "+15550100", "agent_url": agent.url()});
    let r = send(http, "POST", "/api/calls/create", &auth, body.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &auth, &id, "completed", Duration::from_secs(15));
    // The callee got dialtone's BYE.
    assert_eq!(callee.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
    agent.wait_stop();
    let start = agent.got().into_iter().find(|m| m["event"] == "start").expect("a start");
    let sid = start["start"]["callSid"].as_str().unwrap().to_string();
    assert_eq!(sid, dialtone_api::twilio::call_sid(&id).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let updates: Vec<Value> = loop {
        let u: Vec<Value> = agent.events().into_iter().filter(|e| e["sent"] == "update").collect();
        if u.len() == 2 || std::time::Instant::now() > deadline {
            break u;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(updates[0]["status"], 200, "{updates:?}\n{}", d.log_text());
    let call = &updates[0]["body"];
    assert_eq!(
        (&call["sid"], &call["status"], &call["account_sid"]),
        (&json!(sid), &json!("completed"), &json!(key_id))
    );
    assert_eq!(call["uri"], format!("/2010-04-01/Accounts/{key_id}/Calls/{sid}.json"));
    assert_eq!((&updates[1]["status"], &updates[1]["body"]["code"]), (&json!(404), &json!(20404)), "{updates:?}");

    // Without credentials: 401; with the key's id wrong: 401; another path: Twilio's 404.
    let path = format!("/2010-04-01/Accounts/{key_id}/Calls/{sid}.json");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(send(http, "POST", &path, &form, b"Status=completed").status, 401);
    use base64::Engine;
    let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("key_other:{key}")));
    assert_eq!(send(http, "POST", &path, &[("Authorization", wrong.as_str())], b"Status=completed").status, 401);
    let r = send(http, "GET", &format!("/2010-04-01/Accounts/{key_id}/Messages.json"), &[], b"");
    assert_eq!((r.status, &r.json()["code"]), (404, &json!(20404)));
}
