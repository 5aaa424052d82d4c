//! Several dialtone nodes behind Kamailio's dispatcher (issue 18,
//! fixtures/kamailio/dispatcher.cfg): SIPp's calls spread over the nodes; a SIGTERM drains
//! a node (its calls finish, new ones go elsewhere, `/healthz` says `draining`); a node
//! killed with SIGKILL is taken out and the calls keep going to the others.
//!
//! Each node keeps its own SQLite store here (every call in these tests comes in through
//! the dispatcher and stays on the node that answered it).

mod common;

use common::http::send;
use common::kamailio::Kamailio;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// One `dialtone serve` of the cluster.
struct Node {
    d: Dialtone,
    http: u16,
}

impl Node {
    fn start(name: &str, rtp: &str, extra: &[(&str, &str)]) -> Node {
        let http = free_port();
        let listen = format!("127.0.0.1:{http}");
        let mut env = vec![
            ("DIALTONE_HTTP_LISTEN", listen.as_str()),
            ("DIALTONE_RTP_PORTS", rtp),
            ("DIALTONE_INTERNAL_KEY", "k"),
            // SIPp's callers send no RTP here.
            ("DIALTONE_RTP_TIMEOUT", "0"),
        ];
        env.extend_from_slice(extra);
        let d = Dialtone::serve(name, &env);
        assert!(http::wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
        Node { d, http }
    }

    fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.d.port)
    }

    /// Calls of `status` in the store of a node that has exited.
    fn stored(&self, status: &str) -> u64 {
        let s = dialtone_api::store::Store::open(&self.d.data.join("dialtone.db")).unwrap();
        let by_status = s.count_by_status().unwrap();
        by_status.iter().find(|(k, _)| k.to_string() == status).map_or(0, |(_, n)| *n)
    }

    /// Calls of `status` in the node's store (its `/metrics`).
    fn calls(&self, status: &str) -> u64 {
        let text = String::from_utf8_lossy(&send(self.http, "GET", "/metrics", &[], b"").body).to_string();
        let key = format!("dialtone_calls{{status=\"{status}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([signal, &self.d.child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill {signal}");
    }

    /// Waits up to `limit` for the process to exit: its exit code.
    fn exited(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.d.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Kamailio's dispatcher in front of `nodes` (set 1, round-robin, OPTIONS every second).
fn dispatcher(name: &str, nodes: &[&Node]) -> Kamailio {
    let dir = temp_dir(&format!("{name}-list"));
    let list = dir.join("dispatcher.list");
    let lines: String = nodes.iter().map(|n| format!("1 {}\n", n.uri())).collect();
    std::fs::write(&list, lines).unwrap();
    let port = free_port();
    let listen = [format!("udp:127.0.0.1:{port}"), format!("tcp:127.0.0.1:{port}")];
    Kamailio::launch(name, "dispatcher.cfg", port, &listen, &[format!("DS_LIST=\"{}\"", list.display())])
}

/// SIPp placing `calls` calls at `rate` a second through `k`, each up for `hold_ms`.
fn callers(name: &str, k: &Kamailio, calls: u32, rate: u32, hold_ms: u32, media_port: u16) -> SippPeer {
    let scenario = root().join("fixtures/kamailio/uac_cluster.xml");
    let target = format!("127.0.0.1:{}", k.port);
    let mp = free_media_port_in(media_port, 20).to_string();
    let (rate, hold) = (rate.to_string(), hold_ms.to_string());
    let args = [
        "-sf",
        scenario.to_str().unwrap(),
        target.as_str(),
        "-s",
        "echo",
        "-r",
        rate.as_str(),
        "-rp",
        "1000",
        "-d",
        hold.as_str(),
        "-mp",
        mp.as_str(),
    ];
    SippPeer::start_calls(name, &args, calls)
}

/// How many INVITEs the dispatcher sent to `node` (its `dispatch ... to=` lines).
fn dispatched_to(k: &Kamailio, node: &Node) -> usize {
    let to = format!("to={}", node.uri());
    k.log_text().lines().filter(|l| l.contains("fixture: dispatch ") && l.trim_end().ends_with(&to)).count()
}

#[test]
fn a_thousand_calls_at_200_cps_spread_over_three_nodes_on_one_postgresql() {
    use dialtone_api::store::{CallFilter, CallStatus, Scope};
    let pg = Pg::new("spread-pg");
    let nodes: Vec<Node> = [("spread-a", "51000-51999"), ("spread-b", "52000-52999"), ("spread-c", "53000-53999")]
        .iter()
        .map(|(name, rtp)| Node::start(name, rtp, &[("DIALTONE_DATABASE_URL", &pg.url), ("DIALTONE_NODE_ID", name)]))
        .collect();
    let k = dispatcher("spread-k", &nodes.iter().collect::<Vec<_>>());
    let sipp = callers("spread-sipp", &k, 1000, 200, 1000, 55000);
    let (code, (ok, failed)) = sipp.finish(Duration::from_secs(60));
    let logs = || nodes.iter().map(|n| n.d.log_text()).collect::<Vec<_>>().join("\n----\n");
    assert_eq!((code, ok, failed), (Some(0), 1000, 0), "SIPp's calls through the dispatcher\n{}", logs());
    // Every call is in the one store, completed, owned by the node that answered it, and
    // round-robin gave each node a third.
    let db = pg.store();
    let (calls, total) = db.list_calls(&Scope::All, &CallFilter { limit: 1000, ..CallFilter::default() }).unwrap();
    assert_eq!(total, 1000);
    assert!(
        calls.iter().all(|c| c.status == CallStatus::Completed),
        "{:?}",
        calls.iter().find(|c| c.status != CallStatus::Completed)
    );
    let mut per_node = std::collections::BTreeMap::<String, usize>::new();
    for c in &calls {
        *per_node.entry(db.call_node(&c.id).unwrap().unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(per_node.keys().collect::<Vec<_>>(), ["spread-a", "spread-b", "spread-c"]);
    assert!(per_node.values().all(|&n| (300..=367).contains(&n)), "calls per node {per_node:?}");
}

#[test]
fn sigterm_drains_a_node_its_calls_finish_and_new_ones_go_elsewhere() {
    let mut a = Node::start("drain-a", "54000-54199", &[("DIALTONE_DRAIN_TIMEOUT", "30")]);
    let b = Node::start("drain-b", "54200-54399", &[]);
    let k = dispatcher("drain-k", &[&a, &b]);
    // Six calls of 6 s: three on each node.
    let long = callers("drain-long", &k, 6, 20, 6000, 55100);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (a.calls("in-progress"), b.calls("in-progress")) != (3, 3) {
        assert!(Instant::now() < deadline, "calls up: a {} b {}", a.calls("in-progress"), b.calls("in-progress"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let on_a = dispatched_to(&k, &a);
    a.signal("-TERM");
    // The signal is handled asynchronously: /healthz turns to 503 `draining` once a has
    // taken it in (the UA refuses new INVITEs from that same step on).
    let health = || send(a.http, "GET", "/healthz", &[], b"");
    wait_until(Duration::from_secs(5), "/healthz says draining", || health().status == 503);
    let health = health();
    assert_eq!((health.status, health.json()["data"]["status"].clone()), (503, serde_json::json!("draining")));
    // New calls while a drains: every one is answered, by b.
    let more = callers("drain-more", &k, 10, 10, 200, 55200);
    let (code, stats) = more.finish(Duration::from_secs(30));
    assert_eq!((code, stats), (Some(0), (10, 0)), "calls placed during the drain\n{}", k.log_text());
    // a's calls went on to their end: SIPp hung all six up itself, after 6 s.
    let (code, stats) = long.finish(Duration::from_secs(30));
    assert_eq!((code, stats), (Some(0), (6, 0)), "the calls up when the drain began\n{}", a.d.log_text());
    // Its last call over, a exits (well before its 30 s drain timeout), cleanly.
    assert_eq!(a.exited(Duration::from_secs(10)), Some(0), "{}", a.d.log_text());
    assert_eq!(a.stored("completed"), 3, "no new call landed on the draining node\n{}", a.d.log_text());
    assert_eq!(a.stored("failed"), 0);
    assert_eq!(b.calls("completed"), 3 + 10);
    // The dispatcher learnt from a's 503s (to its OPTIONS, or to an INVITE it then sent
    // on to b) and marked it down.
    let log = k.log_text();
    assert!(log.contains("fixture: node down"), "{log}");
    let refused = log.lines().filter(|l| l.contains(&format!("node {} failed", a.uri()))).count();
    assert_eq!(dispatched_to(&k, &a) - on_a, refused, "every INVITE sent to a after the SIGTERM was refused\n{log}");
}

#[test]
fn a_killed_node_is_taken_out_and_calls_go_to_the_others() {
    let mut nodes: Vec<Node> = [("kill-a", "54400-54599"), ("kill-b", "54600-54799"), ("kill-c", "54800-54999")]
        .iter()
        .map(|(name, rtp)| Node::start(name, rtp, &[]))
        .collect();
    let k = dispatcher("kill-k", &nodes.iter().collect::<Vec<_>>());
    let first = callers("kill-first", &k, 30, 30, 200, 55300);
    assert_eq!(first.finish(Duration::from_secs(30)).1, (30, 0));
    // SIGKILL: no BYE, no 503, the node is just gone.
    let mut dead = nodes.remove(0);
    dead.signal("-KILL");
    let _ = dead.d.child.wait();
    let before: Vec<usize> = nodes.iter().map(|n| dispatched_to(&k, n)).collect();
    // Every new call is answered (one sent to the dead node before its OPTIONS go
    // unanswered is given up after 1 s and sent on); the dispatcher marks it down.
    let after = callers("kill-after", &k, 40, 20, 200, 55400);
    let (code, stats) = after.finish(Duration::from_secs(40));
    let log = k.log_text();
    assert_eq!((code, stats), (Some(0), (40, 0)), "{log}");
    assert!(log.contains("fixture: node down"), "{log}");
    let got: Vec<usize> = nodes.iter().zip(&before).map(|(n, b)| dispatched_to(&k, n) - b).collect();
    // Round-robin over the two survivors, plus the calls sent on from the dead node (all
    // to the one after it) until it was marked down.
    assert!(got.iter().sum::<usize>() >= 40 && got.iter().all(|&n| n >= 10), "survivors got {got:?}\n{log}");
    let completed: u64 = nodes.iter().map(|n| n.calls("completed")).sum();
    assert_eq!(completed, 30 - 10 + 40, "the survivors' calls: their share of the first 30, and all 40 since");
}

#[test]
fn a_node_killed_during_the_load_is_taken_out_and_its_calls_end_failed_on_postgresql() {
    use dialtone_api::store::{CallFilter, CallStatus, Scope};
    let pg = Pg::new("load-kill-pg");
    let mut nodes: Vec<Node> = [("lk-a", "57000-57399"), ("lk-b", "57400-57799"), ("lk-c", "57800-58199")]
        .iter()
        .map(|(name, rtp)| {
            let env =
                [("DIALTONE_DATABASE_URL", pg.url.as_str()), ("DIALTONE_NODE_ID", name), ("DIALTONE_NODE_LEASE", "3")];
            Node::start(name, rtp, &env)
        })
        .collect();
    let k = dispatcher("lk-k", &nodes.iter().collect::<Vec<_>>());
    // 300 calls at 50 a second, each up 2 s; a third of the way in, SIGKILL one node.
    let load = callers("lk-load", &k, 300, 50, 2000, 55500);
    std::thread::sleep(Duration::from_secs(2));
    let mut dead = nodes.remove(0);
    dead.signal("-KILL");
    let _ = dead.d.child.wait();
    let killed_at = now_ms();
    let (_, (ok, failed)) = load.finish(Duration::from_secs(60));
    let db = pg.store();
    // The survivors close the dead node's open calls once its lease (3 s) runs out.
    wait_until(Duration::from_secs(15), "every call row final", || db.live_calls(&Scope::All).unwrap().is_empty());
    let (calls, total) = db.list_calls(&Scope::All, &CallFilter { limit: 1000, ..CallFilter::default() }).unwrap();
    let owner = |id: &str| db.call_node(id).unwrap().unwrap_or_default();
    let lost: Vec<_> = calls.iter().filter(|c| c.reason.as_deref() == Some("node lost")).collect();
    assert!(!lost.is_empty(), "the dead node had calls up");
    assert!(lost.iter().all(|c| c.status == CallStatus::Failed && owner(&c.id) == "lk-a"));
    // SIPp lost only what the dead node had up (their BYE or answer never came).
    assert_eq!(ok + failed, 300, "SIPp placed every call");
    assert!(failed as usize <= lost.len(), "SIPp failed {failed}, the dead node had {} up", lost.len());
    assert_eq!(total, 300, "one row a call");
    eprintln!("killed during the load: {} calls lost with the node, SIPp {ok} ok / {failed} failed", lost.len());
    // Once the dispatcher knew (2 s at most: one OPTIONS round), every new call went to the
    // survivors and completed.
    assert!(k.log_text().contains("fixture: node down"));
    let later: Vec<_> = calls.iter().filter(|c| c.created_at > killed_at + 3000).collect();
    assert!(later.len() > 50, "{} calls after the kill", later.len());
    for c in later {
        assert_eq!((c.status, owner(&c.id) != "lk-a"), (CallStatus::Completed, true), "{}", c.id);
    }
}

/// A `GET /api/calls/events` stream (server-sent events), read raw.
struct EventStream {
    stream: std::net::TcpStream,
}

impl EventStream {
    fn open(port: u16, auth: &[(&str, &str)]) -> EventStream {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let headers: String = auth.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        write!(stream, "GET /api/calls/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n").unwrap();
        EventStream { stream }
    }

    /// Everything the stream sent until it has been quiet for `quiet`.
    fn read_for(mut self, quiet: Duration) -> String {
        use std::io::Read;
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        let (mut got, mut buf) = (Vec::new(), [0u8; 65536]);
        while let Ok(n) = self.stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

/// A PostgreSQL database for a cluster's nodes: a fresh schema on the server
/// `DIALTONE_TEST_DATABASE_URL` names (`./dev test` starts one), or a server of its own from
/// `tools/pg-scratch`, stopped when dropped.
struct Pg {
    url: String,
    own: Option<std::path::PathBuf>,
}

impl Pg {
    fn new(name: &str) -> Pg {
        if let Some(url) = dialtone_api::store::Store::test_url().unwrap() {
            return Pg { url, own: None };
        }
        let dir = temp_dir(name).join("pg");
        let out = Command::new(root().join("tools/pg-scratch")).arg("start").arg(&dir).output().unwrap();
        assert!(out.status.success(), "tools/pg-scratch start: {}", String::from_utf8_lossy(&out.stderr));
        Pg { url: String::from_utf8(out.stdout).unwrap().trim().to_string(), own: Some(dir) }
    }

    fn store(&self) -> dialtone_api::store::Store {
        dialtone_api::store::Store::open_url(&self.url).unwrap()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new(root().join("tools/pg-scratch")).arg("stop").arg(dir).output();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Waits up to `limit` for `done`, polling every 100 ms.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

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
    let r = send(a.http, "POST", "/api/organizations", &auth, br#"{"name": "other"}"#);
    assert_eq!(r.status, 201, "{}", r.json());
    let org = r.json()["data"]["id"].as_str().unwrap().to_string();
    let in_other = [("X-Internal-Key", "k"), ("X-Organization-Id", org.as_str())];
    let made = br#"{"name": "other", "permissions": ["calls:read", "calls:hangup"]}"#;
    let r = send(a.http, "POST", "/api/api-keys", &in_other, made);
    assert_eq!(r.status, 201, "{}", r.json());
    let other_key = r.json()["data"]["key"].as_str().unwrap().to_string();
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
    let node = |name: &str, rtp: &str| {
        let env =
            [("DIALTONE_DATABASE_URL", pg.url.as_str()), ("DIALTONE_NODE_ID", name), ("DIALTONE_TRUNK", &trunk_uri)];
        Node::start(name, rtp, &env)
    };
    let (a, b) = (node("orgc-a", "56600-56799"), node("orgc-b", "56800-56999"));
    let db = pg.store();
    wait_until(Duration::from_secs(10), "two live nodes", || db.live_nodes(now_ms()).unwrap().len() == 2);
    let auth = [("X-Internal-Key", "k")];
    // A request with `X-Dialtone-Forwarded` is answered where it is sent: the test says which
    // node places each call.
    let create = |node: &Node, number: &str| {
        let on = [("X-Internal-Key", "k"), ("X-Dialtone-Forwarded", "test")];
        let body = serde_json::json!({"contact_id": "c", "phone_number": number});
        send(node.http, "POST", "/api/calls/create", &on, body.to_string().as_bytes())
    };
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
    let node = |name: &str, rtp: &str| {
        let env =
            [("DIALTONE_DATABASE_URL", pg.url.as_str()), ("DIALTONE_NODE_ID", name), ("DIALTONE_TRUNK", &trunk_uri)];
        Node::start(name, rtp, &env)
    };
    let (a, b) = (node("confc-a", "58200-58399"), node("confc-b", "58400-58599"));
    let db = pg.store();
    wait_until(Duration::from_secs(10), "two live nodes", || db.live_nodes(now_ms()).unwrap().len() == 2);
    let auth = [("X-Internal-Key", "k")];
    // Calls placed where the test says (`X-Dialtone-Forwarded`): two on a, two on b.
    let call_on = |node: &Node, i: usize| {
        let on = [("X-Internal-Key", "k"), ("X-Dialtone-Forwarded", "test")];
        let body = serde_json::json!({"contact_id": "c", "phone_number": format!("+1555000100{i}")});
        let r = send(node.http, "POST", "/api/calls/create", &on, body.to_string().as_bytes());
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

/// A TCP relay on loopback to `to` that can be cut (its connections closed, new ones
/// refused at once) and mended: a node's way to PostgreSQL, for a network cut.
struct Relay {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(to: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering::Relaxed;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay { port, cut: Default::default(), open: Default::default() };
        let (cut, open) = (relay.cut.clone(), relay.open.clone());
        std::thread::spawn(move || {
            for down in listener.incoming().flatten() {
                if cut.load(Relaxed) {
                    continue;
                }
                let Ok(up) = std::net::TcpStream::connect(to) else { continue };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                open.lock().unwrap().extend([down.try_clone().unwrap(), up.try_clone().unwrap()]);
                pipe(down.try_clone().unwrap(), up.try_clone().unwrap());
                pipe(up, down);
            }
        });
        relay
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn mend(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::Relaxed);
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
    let node = |name: &str, rtp: &str, url: &str| {
        let env = [
            ("DIALTONE_DATABASE_URL", url),
            ("DIALTONE_NODE_ID", name),
            ("DIALTONE_NODE_LEASE", "3"),
            ("DIALTONE_TRUNK", &trunk_uri),
        ];
        Node::start(name, rtp, &env)
    };
    let a = node("cut-a", "58600-58799", &via_relay);
    let _b = node("cut-b", "58800-58999", &pg.url);
    let db = pg.store();
    wait_until(Duration::from_secs(10), "two live nodes", || db.live_nodes(now_ms()).unwrap().len() == 2);
    let on_a = [("X-Internal-Key", "k"), ("X-Dialtone-Forwarded", "test")];
    let create = |i: usize| {
        let body = serde_json::json!({"contact_id": "c", "phone_number": format!("+1555000200{i}")});
        send(a.http, "POST", "/api/calls/create", &on_a, body.to_string().as_bytes())
    };
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
