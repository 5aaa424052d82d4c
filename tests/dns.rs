//! RFC 3263 against a real DNS server (issue 14): dnsmasq on 127.0.0.1 serves a test domain,
//! `trunk.test`, whose NAPTR record points at its `_sip._udp` SRV records: the first server
//! (priority 10) takes UDP and never answers, the second (priority 20) is a SIPp trunk. A call
//! placed with `POST /api/calls/create` through `DIALTONE_TRUNK=sip:trunk.test` times out on
//! the first (Timer B, 64·T1 with T1 = 50 ms) and completes through the second, and the
//! failover is in the call's events.

mod common;

use common::http::{send, wait_port};
use common::*;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tests here run one at a time: each restarts or stops peers whose ports another
/// test's `free_port` could otherwise be handed meanwhile.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// dnsmasq serving `args` on 127.0.0.1:`port` (UDP and TCP), killed on drop.
struct Dnsmasq(Child);

impl Dnsmasq {
    fn start(port: u16, records: &[String]) -> Dnsmasq {
        // Debian puts it in /usr/sbin, not on every PATH.
        let bin = if std::path::Path::new("/usr/sbin/dnsmasq").exists() { "/usr/sbin/dnsmasq" } else { "dnsmasq" };
        let child = Command::new(bin)
            .args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces"])
            .args(["--listen-address=127.0.0.1", "--pid-file=", "--user=root", "--conf-file=/dev/null"])
            .arg(format!("--port={port}"))
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq (Debian's dnsmasq-base; `./dev test` installs it)");
        assert!(wait_port(port, Duration::from_secs(5)), "dnsmasq did not listen on {port}");
        Dnsmasq(child)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_call_fails_over_to_the_next_srv_target() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    sipp();
    // The first server: a UDP socket nobody reads (no answer, no ICMP).
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    let live =
        SippPeer::start("dns-live-trunk", &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()]);
    let dns_port = free_port();
    let _dns = Dnsmasq::start(
        dns_port,
        &[
            "--naptr-record=trunk.test,10,10,S,SIP+D2U,,_sip._udp.trunk.test".into(),
            format!("--srv-host=_sip._udp.trunk.test,dead.trunk.test,{dead_port},10,10"),
            format!("--srv-host=_sip._udp.trunk.test,live.trunk.test,{},20,10", live.port),
            "--host-record=dead.trunk.test,127.0.0.1".into(),
            "--host-record=live.trunk.test,127.0.0.1".into(),
        ],
    );
    let http = free_port();
    let d = Dialtone::serve(
        "dns-failover",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", "sip:trunk.test"),
            ("DIALTONE_DNS", &format!("127.0.0.1:{dns_port}")),
            ("DIALTONE_SIP_T1_MS", "50"),
            ("DIALTONE_RTP_PORTS", "47800-47899"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let log = d.log_text();
    let order = format!("UDP:127.0.0.1:{dead_port}, UDP:127.0.0.1:{}", live.port);
    assert!(log.contains(&order), "the trunk's servers, in SRV order: {order}\n{log}");
    let auth = [("X-Internal-Key", "k")];
    let started = Instant::now();
    let r = send(http, "POST", "/api/calls/create", &auth, br#"{"contact_id": "c", "phone_number": "+15551230000"}"#);
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let call = loop {
        let c = send(http, "GET", &format!("/api/calls/{id}"), &auth, b"").json()["data"].clone();
        if c["status"] == "completed" {
            break c;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{c}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = started.elapsed();
    // Timer B (3.2 s here) on the first, then the second answers.
    assert!(took >= Duration::from_millis(3200) && took < Duration::from_secs(12), "took {took:?}");
    let failover: Vec<String> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "failover")
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(failover.len(), 1, "{call}");
    assert!(failover[0].contains(&dead_port.to_string()) && failover[0].contains("timeout"), "{failover:?}");
    let (code, (ok, failed)) = live.finish(Duration::from_secs(10));
    assert_eq!((code, ok, failed), (Some(0), 1, 0), "the second server\n{}", d.log_text());
    drop(dead);
}

#[test]
fn the_trunk_is_looked_up_again_when_its_records_expire() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    sipp();
    // First the trunk's one server is `old` (a socket that never answers); dnsmasq (TTL 1 s)
    // is restarted with `new` (answers); once dialtone has looked again, calls go to `new`.
    let old = UdpSocket::bind("127.0.0.1:0").unwrap();
    let old_port = old.local_addr().unwrap().port();
    let new = SippPeer::start("dns-new", &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()]);
    let dns_port = free_port();
    let records = |port: u16| {
        vec![
            "--local-ttl=1".to_string(),
            format!("--srv-host=_sip._udp.trunk.test,srv.trunk.test,{port},10,10"),
            "--host-record=srv.trunk.test,127.0.0.1".into(),
        ]
    };
    let dns = Dnsmasq::start(dns_port, &records(old_port));
    let http = free_port();
    let d = Dialtone::serve(
        "dns-refresh",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", "sip:trunk.test"),
            ("DIALTONE_DNS", &format!("127.0.0.1:{dns_port}")),
            ("DIALTONE_RTP_PORTS", "48000-48099"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    assert!(d.log_text().contains(&format!("UDP:127.0.0.1:{old_port}")), "{}", d.log_text());
    drop(dns);
    let _dns = Dnsmasq::start(dns_port, &records(new.port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log_text().contains("trunk servers changed") {
        assert!(Instant::now() < deadline, "never looked again\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let auth = [("X-Internal-Key", "k")];
    let r = send(http, "POST", "/api/calls/create", &auth, br#"{"contact_id": "c", "phone_number": "+15551230000"}"#);
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = send(http, "GET", &format!("/api/calls/{id}"), &auth, b"").json()["data"].clone();
        if c["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "{c}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, (ok, _)) = new.finish(Duration::from_secs(10));
    assert_eq!((code, ok), (Some(0), 1), "the new server took the call");
    drop(old);
}
