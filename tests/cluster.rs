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
    let (rate, hold, mp) = (rate.to_string(), hold_ms.to_string(), media_port.to_string());
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
fn a_thousand_calls_at_200_cps_spread_over_three_nodes() {
    let nodes: Vec<Node> = [("spread-a", "51000-51999"), ("spread-b", "52000-52999"), ("spread-c", "53000-53999")]
        .iter()
        .map(|(name, rtp)| Node::start(name, rtp, &[]))
        .collect();
    let k = dispatcher("spread-k", &nodes.iter().collect::<Vec<_>>());
    let sipp = callers("spread-sipp", &k, 1000, 200, 1000, 55000);
    let (code, (ok, failed)) = sipp.finish(Duration::from_secs(60));
    let logs = || nodes.iter().map(|n| n.d.log_text()).collect::<Vec<_>>().join("\n----\n");
    assert_eq!((code, ok, failed), (Some(0), 1000, 0), "SIPp's calls through the dispatcher\n{}", logs());
    // Every call was completed on one node, and round-robin gave each a third.
    let per_node: Vec<u64> = nodes.iter().map(|n| n.calls("completed")).collect();
    assert_eq!(per_node.iter().sum::<u64>(), 1000, "{per_node:?}");
    assert!(per_node.iter().all(|&n| (300..=367).contains(&n)), "calls per node {per_node:?}");
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
    let health = send(a.http, "GET", "/healthz", &[], b"");
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
