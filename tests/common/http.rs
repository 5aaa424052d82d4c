//! A minimal HTTP/1.1 client for the API tests (one request per connection).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code (0 if none could be read).
    pub status: u16,
    /// The header lines, as sent.
    pub head: String,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the answer if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, String::from_utf8_lossy(&self.body)))
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `method path` on 127.0.0.1:`port` with extra `headers` and `body`.
pub fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // A server may answer (413) and close before it has read a large body.
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Reply { status, head, body: raw[split..].to_vec() }
}

/// Waits (bounded) until something listens on `port`.
pub fn wait_port(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Polls `GET /api/calls/{id}` until its status is `want` (bounded).
pub fn wait_status(
    d: &super::Dialtone,
    port: u16,
    auth: &[(&str, &str)],
    id: &str,
    want: &str,
    limit: Duration,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let c = send(port, "GET", &format!("/api/calls/{id}"), auth, b"").json();
        if c["data"]["status"] == want {
            return c["data"].clone();
        }
        assert!(Instant::now() < deadline, "call {id} never {want}: {c}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `dialtone serve` with `toml` as its configuration file, the internal key `k` and the
/// API on a port of its own: the process and that port.
pub fn serve_configured(name: &str, toml: &str, env: &[(&str, &str)]) -> (super::Dialtone, u16) {
    let dir = super::temp_dir(&format!("{name}-conf"));
    let conf = dir.join("dialtone.toml");
    std::fs::write(&conf, toml).unwrap();
    let http = super::free_port();
    let listen = format!("127.0.0.1:{http}");
    let conf = conf.to_string_lossy().to_string();
    let mut all = vec![
        ("DIALTONE_CONFIG", conf.as_str()),
        ("DIALTONE_HTTP_LISTEN", listen.as_str()),
        ("DIALTONE_INTERNAL_KEY", "k"),
    ];
    all.extend_from_slice(env);
    let d = super::Dialtone::serve(name, &all);
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    (d, http)
}

/// The TOML of two platform trunks: `a` (numbers `+1555001…`) at 127.0.0.1:`a`, `b`
/// (`+1555002…`) at 127.0.0.1:`b`.
pub fn two_trunks(a: u16, b: u16) -> String {
    trunks_at(&[a, b])
}

/// The TOML of a platform trunk at each of 127.0.0.1:`ports`: the first named `a` takes
/// the numbers `+1555001…`, the second `b` `+1555002…`, and so on.
pub fn trunks_at(ports: &[u16]) -> String {
    let table = |(i, port): (usize, &u16)| {
        let name = char::from(b'a' + i as u8);
        format!("[[trunk]]\nname = \"{name}\"\nuri = \"sip:127.0.0.1:{port}\"\nprefixes = [\"+155500{}\"]\n", i + 1)
    };
    ports.iter().enumerate().map(table).collect::<Vec<_>>().join("\n")
}

/// A call's recording (`GET /api/calls/{id}/recording`, waited for: it is finished after
/// the call ends), as interleaved samples: left what the peer said, right what we sent.
pub fn recording(d: &super::Dialtone, port: u16, auth: &[(&str, &str)], id: &str) -> Vec<i16> {
    for _ in 0..100 {
        let r = send(port, "GET", &format!("/api/calls/{id}/recording"), auth, b"");
        if r.status == 200 {
            let reader = hound::WavReader::new(std::io::Cursor::new(r.body)).unwrap();
            return reader.into_samples::<i16>().map(Result::unwrap).collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no recording of {id}\n{}", d.log_text());
}

/// One API call per agent URL (`POST /api/calls/create` with `agent_url`) to `+1555001…`,
/// `+1555002…`, … (the trunks of [`trunks_at`], in order), each waited for until it is in
/// progress: their ids.
pub fn agent_calls(d: &super::Dialtone, port: u16, auth: &[(&str, &str)], agent_urls: &[String]) -> Vec<String> {
    let ids: Vec<String> = agent_urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let number = format!("+155500{}0000", i + 1);
            let body = serde_json::json!({"contact_id": "c", "phone_number": number, "agent_url": url});
            let r = send(port, "POST", "/api/calls/create", auth, body.to_string().as_bytes());
            assert_eq!(r.status, 201, "{}", r.json());
            r.json()["data"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ids {
        wait_status(d, port, auth, id, "in-progress", Duration::from_secs(10));
    }
    ids
}

/// Hangs up each of `ids` through the API.
pub fn hang_up(port: u16, auth: &[(&str, &str)], ids: &[String]) {
    for id in ids {
        assert!(send(port, "POST", &format!("/api/calls/{id}/hangup"), auth, b"").status < 300, "hang up {id}");
    }
}
