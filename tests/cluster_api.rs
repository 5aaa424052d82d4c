//! Several dialtone nodes on one PostgreSQL, through their HTTP API (issue 18): calls
//! spread over the nodes and are steered through any of them, an organization's limits and
//! configuration hold on every node, a conference's room is on one node, and a node cut
//! off from the database takes no calls and ends those a survivor took over.

mod common;

use common::cluster::*;
use common::http::send;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn api_calls_spread_over_nodes_on_one_postgresql_and_a_killed_nodes_calls_end_failed() {
    use dialtone_api::store::{CallStatus, Scope};
    let pg = Pg::new("pg-cluster");
    let mp = free_media_port_in(55600, 50).to_string();
    let trunk = SippPeer::start_calls("pgc-trunk", &["-sn", "uas", "-mp", &mp], 1000);
    let trunk_uri = format!("sip:127.0.0.1:{}", trunk.port);
    let node = |name: &str, rtp: &str| {
        Node::start(
            name,
            rtp,
            &[
                ("DIALTONE_DATABASE_URL", &pg.url),
                ("DIALTONE_NODE_ID", name),
                ("DIALTONE_NODE_LEASE", "3"),
                ("DIALTONE_TRUNK", &trunk_uri),
                ("DIALTONE_MAX_CALLS", "20"),
                ("DIALTONE_RATE_LIMIT", "1"),
            ],
        )
    };
    let a = node("pgc-a", "56000-56199");
    let b = node("pgc-b", "56200-56399");
    let mut c = node("pgc-c", "56400-56599");
    let db = pg.store();
    wait_until(Duration::from_secs(10), "three live nodes", || db.live_nodes(now_ms()).unwrap().len() == 3);
    let auth = [("X-Internal-Key", "k")];
    // A webhook for every event: each must reach it once, whichever node's sender takes it.
    let hook = hook::Hook::start_up_to(serde_json::json!({}), Duration::ZERO, 2000);
    let r = send(a.http, "POST", "/api/webhooks", &auth, serde_json::json!({"url": hook.url()}).to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());

    // Node b's live event stream, opened before any call: it hears of every call, whichever
    // node places it.
    let events = EventStream::open(b.http, &auth);
    // Thirty calls, all asked of node a: each goes to the node with the most free room,
    // as the heartbeats (every 0.6 s) tell it.
    let mut ids = Vec::new();
    for i in 0..30 {
        let body = serde_json::json!({"contact_id": format!("c{i}"), "phone_number": format!("+1555123{i:04}")});
        let r = send(a.http, "POST", "/api/calls/create", &auth, body.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.json());
        ids.push(r.json()["data"]["id"].as_str().unwrap().to_string());
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = |id: &str| db.get_call(&Scope::All, id).unwrap().status;
    let answered = || ids.iter().all(|id| status(id) == CallStatus::InProgress);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !answered() {
        let now: Vec<String> = ids.iter().map(|id| format!("{}@{:?}", status(id), db.call_node(id).unwrap())).collect();
        assert!(Instant::now() < deadline, "every call answered: not within 15 s: {now:?}\n{}", a.d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let owner = |id: &str| db.call_node(id).unwrap().unwrap();
    let on = |n: &str| ids.iter().filter(|id| owner(id) == n).cloned().collect::<Vec<_>>();
    let (on_a, on_b, on_c) = (on("pgc-a"), on("pgc-b"), on("pgc-c"));
    assert!(
        [&on_a, &on_b, &on_c].iter().all(|v| v.len() >= 5),
        "spread a {} b {} c {}",
        on_a.len(),
        on_b.len(),
        on_c.len()
    );
    let heard = events.read_for(Duration::from_secs(3));
    for id in on_a.iter().chain(&on_c) {
        assert!(heard.contains(&format!("\"id\":\"{id}\"")), "b's event stream never named {id}");
    }
    // The whole cluster's live calls, from any node.
    let live = send(b.http, "GET", "/api/calls/live", &auth, b"").json();
    assert_eq!(live["data"]["total"], 30, "{live}");

    // A hang-up asked of a node that does not own the call: the owner does it.
    let r = send(c.http, "POST", &format!("/api/calls/{}/hangup", on_b[0]), &auth, b"");
    assert_eq!((r.status, r.header("x-dialtone-via")), (202, Some("pgc-c")), "{}", r.json());
    wait_until(Duration::from_secs(10), "the call hung up through c", || status(&on_b[0]) == CallStatus::Completed);

    // SIGKILL c: its lease runs out and a survivor closes its calls as failed, node lost.
    c.signal("-KILL");
    let _ = c.d.child.wait();
    wait_until(Duration::from_secs(15), "c's calls closed", || on_c.iter().all(|id| status(id).is_final()));
    for id in &on_c {
        let call = db.get_call(&Scope::All, id).unwrap();
        assert_eq!((call.status, call.reason.as_deref()), (CallStatus::Failed, Some("node lost")), "{id}");
    }
    // New calls go to the survivors only.
    for i in 0..4 {
        let body = serde_json::json!({"contact_id": "late", "phone_number": format!("+1555124{i:04}")});
        let r = send(b.http, "POST", "/api/calls/create", &auth, body.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.json());
        let id = r.json()["data"]["id"].as_str().unwrap().to_string();
        assert_ne!(owner(&id), "pgc-c");
        ids.push(id);
    }
    // The rest hung up through a (b's forwarded to b).
    for id in ids.iter().filter(|id| !status(id).is_final()) {
        let r = send(a.http, "POST", &format!("/api/calls/{id}/hangup"), &auth, b"");
        assert_eq!(r.status, 202, "{id}: {}", r.json());
    }
    wait_until(Duration::from_secs(15), "every call final", || ids.iter().all(|id| status(id).is_final()));

    // Every event of every call reached the webhook once, whichever node's sender took it:
    // its start, and its end (c's calls' from the survivor that closed them).
    let events = || {
        let mut seen = std::collections::BTreeMap::<String, Vec<String>>::new();
        for (headers, body) in hook.requests() {
            let event = headers.iter().find(|(k, _)| k == "x-dialtone-event").map(|(_, v)| v.clone()).unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let id = body["data"]["id"].as_str().or(body["data"]["call_id"].as_str()).unwrap_or_default();
            seen.entry(id.to_string()).or_default().push(event);
        }
        seen
    };
    let last = |id: &str| if on_c.iter().any(|c| c == id) { "call.failed" } else { "call.completed" };
    wait_until(Duration::from_secs(20), "every call's last event delivered", || {
        let seen = events();
        ids.iter().all(|id| seen.get(id).is_some_and(|e| e.iter().any(|e| e == last(id))))
    });
    std::thread::sleep(Duration::from_secs(2));
    for (id, got) in events() {
        let mut once = got.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), got.len(), "{id}: an event delivered twice: {got:?}");
        assert!(got.first().is_some_and(|e| e == "call.initiated"), "{id}: {got:?}");
        assert!(got.iter().any(|e| e == last(&id)), "{id}: {got:?}");
    }

    // A key's request limit (1 a second, 2 at once) holds across the nodes together.
    let r = send(a.http, "POST", "/api/api-keys", &auth, br#"{"name": "slow", "permissions": ["calls:read"]}"#);
    assert_eq!(r.status, 201, "{}", r.json());
    let key = r.json()["data"]["key"].as_str().unwrap().to_string();
    let slow = [("X-API-Key", key.as_str())];
    let got: Vec<u16> =
        [a.http, b.http, a.http].iter().map(|&p| send(p, "GET", "/api/calls/list", &slow, b"").status).collect();
    assert_eq!(got, [200, 200, 429]);
    // A call's request forwarded to its owner is counted once, where it came in: with the
    // bucket full again (2), a's call's SIP ladder asked of b, then one more request, pass.
    std::thread::sleep(Duration::from_millis(2100));
    let sip = send(b.http, "GET", &format!("/api/calls/{}/sip", on_a[0]), &slow, b"");
    assert_eq!((sip.status, sip.header("x-dialtone-via")), (200, Some("pgc-b")), "{}", sip.json());
    let got: Vec<u16> = (0..2).map(|_| send(b.http, "GET", "/api/calls/list", &slow, b"").status).collect();
    assert_eq!(got, [200, 429]);

    // Another organization's key: a request about a call forwarded to its owner answers
    // 404 there, as on one node.
    let other_key = other_org_key(a.http, &["calls:read", "calls:hangup"]);
    let other = [("X-API-Key", other_key.as_str())];
    let sip = send(b.http, "GET", &format!("/api/calls/{}/sip", on_a[1]), &other, b"");
    assert_eq!((sip.status, sip.header("x-dialtone-via")), (404, Some("pgc-b")), "{}", sip.json());
    let hang = send(a.http, "POST", &format!("/api/calls/{}/hangup", on_b[1]), &other, b"");
    assert_eq!((hang.status, hang.header("x-dialtone-via")), (404, Some("pgc-a")), "{}", hang.json());
}

#[test]
fn an_organizations_limits_and_its_changes_hold_on_every_node_on_one_postgresql() {
    let pg = Pg::new("org-pg");
    let trunk =
        SippPeer::start_calls("orgc-trunk", &["-sn", "uas", "-mp", &free_media_port_in(55700, 50).to_string()], 100);
    let trunk_uri = format!("sip:127.0.0.1:{}", trunk.port);
    let node = |name: &str, rtp: &str| Node::on_pg(name, rtp, &pg.url, &trunk_uri, &[]);
    let (a, b) = (node("orgc-a", "56600-56799"), node("orgc-b", "56800-56999"));
    wait_live(&pg, 2);
    let db = pg.store();
    let auth = [("X-Internal-Key", "k")];
    // The test says which node places each call.
    let create = |node: &Node, number: &str| node.create_here(number);
    let policy = |body: serde_json::Value| {
        let r = send(a.http, "PATCH", "/api/organizations/org_default", &auth, body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.json());
    };

    // A policy changed through a reaches b's engine: a destination it no longer allows is
    // refused there.
    // (Told through PostgreSQL, it gets there a moment after the PATCH's answer: a call b
    // still placed is hung up.)
    policy(serde_json::json!({"allowed_destinations": ["+1555"]}));
    let live = || db.live_calls(&dialtone_api::store::Scope::All).unwrap().len();
    wait_until(Duration::from_secs(10), "b refuses +33", || {
        let r = create(&b, "+33140000000");
        if r.status == 201 {
            send(
                b.http,
                "POST",
                &format!("/api/calls/{}/hangup", r.json()["data"]["id"].as_str().unwrap()),
                &auth,
                b"",
            );
        }
        r.status == 403 && r.json()["error"]["code"] == "destination_not_allowed"
    });
    wait_until(Duration::from_secs(10), "no call up", || live() == 0);

    // Three calls up at once for the organization, over both nodes together.
    policy(serde_json::json!({"max_concurrent_calls": 3}));
    let mut up = Vec::new();
    for (i, n) in [&a, &b, &a].into_iter().enumerate() {
        let r = create(n, &format!("+1555000000{i}"));
        assert_eq!(r.status, 201, "{}", r.json());
        up.push(r.json()["data"]["id"].as_str().unwrap().to_string());
    }
    for n in [&b, &a] {
        let r = create(n, "+15550000009");
        assert_eq!((r.status, r.json()["error"]["code"].clone()), (429, "max_concurrent_calls".into()), "{}", r.json());
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    assert_eq!(live(), 3, "nothing stored for the refused");
    // One hung up (b's, asked of a): its place is free again, on either node.
    let r = send(a.http, "POST", &format!("/api/calls/{}/hangup", up[1]), &auth, b"");
    assert_eq!(r.status, 202, "{}", r.json());
    wait_until(Duration::from_secs(10), "the call over", || live() == 2);
    let r = create(&b, "+15550000005");
    assert_eq!(r.status, 201, "{}", r.json());
    up.push(r.json()["data"]["id"].as_str().unwrap().to_string());

    // One call a second for the organization, over both nodes together.
    policy(serde_json::json!({"max_concurrent_calls": 10, "max_calls_per_second": 1.0}));
    let first = create(&a, "+15550000006");
    assert_eq!(first.status, 201, "{}", first.json());
    up.push(first.json()["data"]["id"].as_str().unwrap().to_string());
    let second = create(&b, "+15550000007");
    assert_eq!((second.status, second.json()["error"]["code"].clone()), (429, "max_calls_per_second".into()));

    // A trunk added through a is one b's engine places calls through.
    let uk = SippPeer::start_calls("orgc-uk", &["-sn", "uas", "-mp", &free_media_port_in(55750, 50).to_string()], 1);
    policy(serde_json::json!({"allowed_destinations": ["+1555", "+4420"], "max_calls_per_second": null}));
    let body = serde_json::json!({"name": "uk", "uri": format!("sip:127.0.0.1:{}", uk.port), "prefixes": ["+4420"]});
    let r = send(a.http, "POST", "/api/trunks", &auth, body.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    // b's engine has it once b's trunk list shows its status (the engine's).
    wait_until(Duration::from_secs(10), "b's engine has the trunk", || {
        let list = send(b.http, "GET", "/api/trunks", &auth, b"").json();
        list["data"]["trunks"]
            .as_array()
            .is_some_and(|l| l.iter().any(|t| t["name"] == "uk" && t["status"].is_object()))
    });
    let r = create(&b, "+442071234567");
    assert_eq!(r.status, 201, "{}", r.json());
    let london = r.json()["data"]["id"].as_str().unwrap().to_string();
    let status = |id: &str| db.get_call(&dialtone_api::store::Scope::All, id).unwrap().status;
    use dialtone_api::store::CallStatus;
    wait_until(Duration::from_secs(10), "the London call answered", || status(&london) == CallStatus::InProgress);
    for id in up.iter().chain([&london]).filter(|id| !status(id).is_final()) {
        let r = send(a.http, "POST", &format!("/api/calls/{id}/hangup"), &auth, b"");
        assert_eq!(r.status, 202, "{id}: {}", r.json());
    }
    // The new trunk's peer had the call (the settings' trunk would have had it without it).
    assert_eq!(uk.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", b.d.log_text());
}

#[test]
fn conference_and_twilio_requests_go_to_the_node_that_has_the_room_or_the_call() {
    let pg = Pg::new("conf-pg");
    let trunk =
        SippPeer::start_calls("confc-trunk", &["-sn", "uas", "-mp", &free_media_port_in(55800, 50).to_string()], 100);
    let trunk_uri = format!("sip:127.0.0.1:{}", trunk.port);
    let node = |name: &str, rtp: &str| Node::on_pg(name, rtp, &pg.url, &trunk_uri, &[]);
    let (a, b) = (node("confc-a", "58200-58399"), node("confc-b", "58400-58599"));
    wait_live(&pg, 2);
    let db = pg.store();
    let auth = [("X-Internal-Key", "k")];
    // Calls placed where the test says: two on a, two on b.
    let call_on = |node: &Node, i: usize| {
        let r = node.create_here(&format!("+1555000100{i}"));
        assert_eq!(r.status, 201, "{}", r.json());
        r.json()["data"]["id"].as_str().unwrap().to_string()
    };
    let (a1, a2, b1, b2) = (call_on(&a, 1), call_on(&a, 2), call_on(&b, 3), call_on(&b, 4));
    use dialtone_api::store::{CallStatus, Scope};
    let status = |id: &str| db.get_call(&Scope::All, id).unwrap().status;
    wait_until(Duration::from_secs(10), "four calls answered", || {
        [&a1, &a2, &b1, &b2].iter().all(|id| status(id) == CallStatus::InProgress)
    });

    // A room asked of b: the first call seated (a's, asked of b) takes it to a.
    let r = send(b.http, "POST", "/api/conferences", &auth, br#"{"name": "room"}"#);
    assert_eq!(r.status, 201, "{}", r.json());
    let conf = r.json()["data"]["id"].as_str().unwrap().to_string();
    let members = format!("/api/conferences/{conf}/participants");
    let seat = |node: &Node, call: &str| {
        send(node.http, "POST", &members, &auth, serde_json::json!({"call_id": call}).to_string().as_bytes())
    };
    let r = seat(&b, &a1);
    assert_eq!((r.status, r.header("x-dialtone-via")), (201, Some("confc-b")), "{}", r.json());
    let r = seat(&b, &a2);
    assert_eq!((r.status, r.header("x-dialtone-via")), (201, Some("confc-b")), "{}", r.json());
    // b's call cannot join a room on a (no media between nodes): a clear 409, from a.
    let r = seat(&a, &b1);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (409, "call_on_another_node".into()), "{}", r.json());
    let seated = |node: &Node| -> Vec<String> {
        let c = send(node.http, "GET", &format!("/api/conferences/{conf}"), &auth, b"").json();
        let list = c["data"]["participants"].as_array().cloned().unwrap_or_default();
        list.iter().filter(|p| p["active"] == true).map(|p| p["call_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(seated(&b), [a1.clone(), a2.clone()]);
    // Muting and taking out, asked of b, are done by a.
    let r = send(b.http, "PATCH", &format!("{members}/{a2}"), &auth, br#"{"muted": true}"#);
    assert_eq!((r.status, r.header("x-dialtone-via")), (200, Some("confc-b")), "{}", r.json());
    let r = send(b.http, "DELETE", &format!("{members}/{a2}"), &auth, b"");
    assert_eq!(r.status, 200, "{}", r.json());
    let r = send(b.http, "DELETE", &format!("/api/conferences/{conf}"), &auth, b"");
    assert_eq!((r.status, r.json()["data"]["status"].clone()), (200, "ended".into()), "{}", r.json());
    assert!(seated(&a).is_empty());
    // The calls are still up (leaving a room hangs nobody up).
    assert_eq!(status(&a1), CallStatus::InProgress);

    // Another room, asked of a, empty: b's call takes it to b, and b's other call joins it.
    let r = send(a.http, "POST", "/api/conferences", &auth, br#"{"name": "second"}"#);
    let conf = r.json()["data"]["id"].as_str().unwrap().to_string();
    let members = format!("/api/conferences/{conf}/participants");
    // But not when someone else asks: another organization's key cannot seat a call in the
    // room (404), nor move the room to the call's node.
    let other = other_org_key(a.http, &["conferences:write", "calls:read"]);
    let body = serde_json::json!({"call_id": b1}).to_string();
    let r = send(a.http, "POST", &members, &[("X-API-Key", other.as_str())], body.as_bytes());
    assert_eq!(r.status, 404, "{}", r.json());
    let room = db.owner(dialtone_api::store::Owned::Conference, &conf, now_ms()).unwrap().map(|n| n.id);
    assert_eq!(room.as_deref(), Some("confc-a"), "the room stayed where it was made");
    for call in [&b1, &b2] {
        let r = send(a.http, "POST", &members, &auth, serde_json::json!({"call_id": call}).to_string().as_bytes());
        assert_eq!((r.status, r.header("x-dialtone-via")), (201, Some("confc-a")), "{}", r.json());
    }

    // Twilio's hang-up, asked of the node that does not have the call.
    for (node, call) in [(&b, &a1), (&a, &b1)] {
        let hex = call.strip_prefix("call_").unwrap();
        let path = format!("/2010-04-01/Accounts/org_default/Calls/CA{hex}{hex}.json");
        let form = [("X-Internal-Key", "k"), ("Content-Type", "application/x-www-form-urlencoded")];
        let r = send(node.http, "POST", &path, &form, b"Status=completed");
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        assert!(r.header("x-dialtone-via").is_some());
    }
    wait_until(Duration::from_secs(10), "the two hung up", || status(&a1).is_final() && status(&b1).is_final());
    for id in [&a2, &b2] {
        assert_eq!(send(a.http, "POST", &format!("/api/calls/{id}/hangup"), &auth, b"").status, 202);
    }
}

#[test]
fn a_node_cut_off_from_postgresql_takes_no_calls_and_ends_the_ones_taken_over() {
    use dialtone_api::store::{CallStatus, Scope};
    let pg = Pg::new("cut-pg");
    // a reaches PostgreSQL through the relay.
    let (head, tail) = pg.url.split_once('@').unwrap();
    let (server, path) = tail.split_once('/').unwrap();
    let relay = Relay::start(server.parse().unwrap());
    let via_relay = format!("{head}@127.0.0.1:{}/{path}", relay.port);
    let trunk =
        SippPeer::start_calls("cut-trunk", &["-sn", "uas", "-mp", &free_media_port_in(55850, 50).to_string()], 2);
    let trunk_uri = format!("sip:127.0.0.1:{}", trunk.port);
    let node =
        |name: &str, rtp: &str, url: &str| Node::on_pg(name, rtp, url, &trunk_uri, &[("DIALTONE_NODE_LEASE", "3")]);
    let a = node("cut-a", "58600-58799", &via_relay);
    let _b = node("cut-b", "58800-58999", &pg.url);
    wait_live(&pg, 2);
    let db = pg.store();
    let create = |i: usize| a.create_here(&format!("+1555000200{i}"));
    let ids: Vec<String> = (0..2)
        .map(|i| {
            let r = create(i);
            assert_eq!(r.status, 201, "{}", r.json());
            r.json()["data"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    let call = |id: &str| db.get_call(&Scope::All, id).unwrap();
    wait_until(Duration::from_secs(10), "a's calls answered", || {
        ids.iter().all(|id| call(id).status == CallStatus::InProgress)
    });

    // The cut: a can no longer beat; b takes it over once its lease (3 s) runs out.
    relay.cut();
    wait_until(Duration::from_secs(15), "a's calls closed by b", || ids.iter().all(|id| call(id).status.is_final()));
    for id in &ids {
        assert_eq!((call(id).status, call(id).reason), (CallStatus::Failed, Some("node lost".to_string())));
    }
    // Cut off, a takes no new call (it cannot know it was not taken over): its API says
    // the store does not answer, and an INVITE (the dispatcher's, say) gets 503.
    let r = create(5);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (503, "store_unavailable".into()), "{}", r.json());
    let dir = temp_dir("cut-uac");
    let scenario = dir.join("uac.xml");
    let text = std::fs::read_to_string(root().join("fixtures/sipp/uac_expect_final.xml")).unwrap();
    std::fs::write(&scenario, text.replace("STATUS", "503")).unwrap();
    let (sf, sipp_port, node) = (scenario.to_string_lossy().to_string(), free_port().to_string(), a.uri());
    let node = node.trim_start_matches("sip:");
    let argv = ["-sf", &sf, "-s", "+15550100", "-i", "127.0.0.1", "-p", &sipp_port, "-m", "1", node];
    let run = run_sipp(&args(&argv), Duration::from_secs(15));
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, a.d.log_text());

    // Mended: a beats again, learns it was taken over, and hangs up the calls the store
    // closed: the trunk's peer gets both BYEs.
    relay.mend();
    assert_eq!(trunk.finish(Duration::from_secs(20)), (Some(0), (2, 0)), "{}", a.d.log_text());
    let log = a.d.log_text();
    assert!(log.contains("this node had been taken over"), "{log}");
    // It takes calls again, and the calls' rows stay as b closed them.
    wait_until(Duration::from_secs(10), "a live again", || {
        db.live_nodes(now_ms()).unwrap().iter().any(|n| n.id == "cut-a")
    });
    let r = create(6);
    assert_eq!(r.status, 201, "{}", r.json());
    for id in &ids {
        assert_eq!((call(id).status, call(id).reason), (CallStatus::Failed, Some("node lost".to_string())));
    }
}
