//! Several dialtone nodes behind Kamailio's dispatcher (issue 18,
//! fixtures/kamailio/dispatcher.cfg): SIPp's calls spread over the nodes; a SIGTERM drains
//! a node (its calls finish, new ones go elsewhere, `/healthz` says `draining`); a node
//! killed with SIGKILL is taken out and the calls keep going to the others.

mod common;

use common::cluster::*;
use common::http::send;
use std::time::{Duration, Instant};

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
