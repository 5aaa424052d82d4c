//! Several dialtone nodes on loopback (issue 18): the nodes, Kamailio's dispatcher in front
//! of them, SIPp's callers, a PostgreSQL for them to share, and a relay that can cut a node
//! off from it. Used by tests/cluster.rs (calls through the dispatcher) and
//! tests/cluster_api.rs (the API over several nodes).

use super::http::send;
use super::kamailio::Kamailio;
use super::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// One `dialtone serve` of the cluster.
pub struct Node {
    pub d: Dialtone,
    pub http: u16,
}

impl Node {
    pub fn start(name: &str, rtp: &str, extra: &[(&str, &str)]) -> Node {
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

    pub fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.d.port)
    }

    /// Calls of `status` in the store of a node that has exited.
    pub fn stored(&self, status: &str) -> u64 {
        let s = dialtone_api::store::Store::open(&self.d.data.join("dialtone.db")).unwrap();
        let by_status = s.count_by_status().unwrap();
        by_status.iter().find(|(k, _)| k.to_string() == status).map_or(0, |(_, n)| *n)
    }

    /// Calls of `status` in the node's store (its `/metrics`).
    pub fn calls(&self, status: &str) -> u64 {
        let text = String::from_utf8_lossy(&send(self.http, "GET", "/metrics", &[], b"").body).to_string();
        let key = format!("dialtone_calls{{status=\"{status}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([signal, &self.d.child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill {signal}");
    }

    /// Waits up to `limit` for the process to exit: its exit code.
    pub fn exited(&mut self, limit: Duration) -> Option<i32> {
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
pub fn dispatcher(name: &str, nodes: &[&Node]) -> Kamailio {
    let dir = temp_dir(&format!("{name}-list"));
    let list = dir.join("dispatcher.list");
    let lines: String = nodes.iter().map(|n| format!("1 {}\n", n.uri())).collect();
    std::fs::write(&list, lines).unwrap();
    let port = free_port();
    let listen = [format!("udp:127.0.0.1:{port}"), format!("tcp:127.0.0.1:{port}")];
    Kamailio::launch(name, "dispatcher.cfg", port, &listen, &[format!("DS_LIST=\"{}\"", list.display())])
}

/// SIPp placing `calls` calls at `rate` a second through `k`, each up for `hold_ms`.
pub fn callers(name: &str, k: &Kamailio, calls: u32, rate: u32, hold_ms: u32, media_port: u16) -> SippPeer {
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
pub fn dispatched_to(k: &Kamailio, node: &Node) -> usize {
    let to = format!("to={}", node.uri());
    k.log_text().lines().filter(|l| l.contains("fixture: dispatch ") && l.trim_end().ends_with(&to)).count()
}

/// A `GET /api/calls/events` stream (server-sent events), read raw.
pub struct EventStream {
    stream: std::net::TcpStream,
}

impl EventStream {
    pub fn open(port: u16, auth: &[(&str, &str)]) -> EventStream {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let headers: String = auth.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        write!(stream, "GET /api/calls/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n").unwrap();
        EventStream { stream }
    }

    /// Everything the stream sent until it has been quiet for `quiet`.
    pub fn read_for(mut self, quiet: Duration) -> String {
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
pub struct Pg {
    pub url: String,
    own: Option<std::path::PathBuf>,
}

impl Pg {
    pub fn new(name: &str) -> Pg {
        if let Some(url) = dialtone_api::store::Store::test_url().unwrap() {
            return Pg { url, own: None };
        }
        let dir = temp_dir(name).join("pg");
        let out = Command::new(root().join("tools/pg-scratch")).arg("start").arg(&dir).output().unwrap();
        assert!(out.status.success(), "tools/pg-scratch start: {}", String::from_utf8_lossy(&out.stderr));
        Pg { url: String::from_utf8(out.stdout).unwrap().trim().to_string(), own: Some(dir) }
    }

    pub fn store(&self) -> dialtone_api::store::Store {
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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Waits up to `limit` for `done`, polling every 100 ms.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP relay on loopback to `to` that can be cut (its connections closed, new ones
/// refused at once) and mended: a node's way to PostgreSQL, for a network cut.
pub struct Relay {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    pub fn start(to: std::net::SocketAddr) -> Relay {
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

    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn mend(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Node {
    /// A node on the shared store `url`, placing calls through `trunk`, with `extra` settings.
    pub fn on_pg(name: &str, rtp: &str, url: &str, trunk: &str, extra: &[(&str, &str)]) -> Node {
        let mut env = vec![("DIALTONE_DATABASE_URL", url), ("DIALTONE_NODE_ID", name), ("DIALTONE_TRUNK", trunk)];
        env.extend_from_slice(extra);
        Node::start(name, rtp, &env)
    }

    /// `POST /api/calls/create` to `number`, answered by this node itself: a request with
    /// `X-Dialtone-Forwarded` is not sent on, so the test says which node places the call.
    pub fn create_here(&self, number: &str) -> super::http::Reply {
        let on = [("X-Internal-Key", "k"), ("X-Dialtone-Forwarded", "test")];
        let body = serde_json::json!({"contact_id": "c", "phone_number": number});
        send(self.http, "POST", "/api/calls/create", &on, body.to_string().as_bytes())
    }
}

/// Waits until `n` nodes are alive in `pg`'s store.
pub fn wait_live(pg: &Pg, n: usize) {
    let db = pg.store();
    wait_until(Duration::from_secs(10), &format!("{n} live nodes"), || db.live_nodes(now_ms()).unwrap().len() == n);
}

/// A new organization (made through the API on `http`) and a key of it with `permissions`:
/// someone else, for the tests that check a request is scoped.
pub fn other_org_key(http: u16, permissions: &[&str]) -> String {
    let auth = [("X-Internal-Key", "k")];
    let r = send(http, "POST", "/api/organizations", &auth, br#"{"name": "other"}"#);
    assert_eq!(r.status, 201, "{}", r.json());
    let org = r.json()["data"]["id"].as_str().unwrap().to_string();
    let in_other = [("X-Internal-Key", "k"), ("X-Organization-Id", org.as_str())];
    let made = serde_json::json!({"name": "other", "permissions": permissions});
    let r = send(http, "POST", "/api/api-keys", &in_other, made.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()["data"]["key"].as_str().unwrap().to_string()
}
