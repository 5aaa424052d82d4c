//! Kamailio 5.6 in the foreground in its own process group, running a fixture config of
//! fixtures/kamailio; dropping it stops the whole group.

use super::*;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The kamailio binary: on PATH, or where Debian puts it (/usr/sbin is not on every PATH).
pub fn kamailio_bin() -> PathBuf {
    let works = |bin: &PathBuf| {
        Command::new(bin).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let found = [PathBuf::from("kamailio"), PathBuf::from("/usr/sbin/kamailio")].into_iter().find(works);
    found.unwrap_or_else(|| panic!("kamailio is not installed: run ./dev test (it installs Debian's kamailio)"))
}

/// A Kamailio running the fixture config in the foreground, in its own process group, on
/// a free 127.0.0.1 port (UDP and TCP). Dropping it stops the whole group.
pub struct Kamailio {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Kamailio {
    pub fn start(name: &str) -> Kamailio {
        let port = free_port();
        let listen = [format!("udp:127.0.0.1:{port}"), format!("tcp:127.0.0.1:{port}")];
        Kamailio::launch(name, "kamailio.cfg", port, &listen, &[])
    }

    /// Kamailio running `fixtures/kamailio/<cfg>` on the `listen` sockets (the first TCP or
    /// TLS one on `port` is waited for), with `-A` defines.
    /// `fixtures/kamailio/kamailio-tls.cfg`: a carrier's TLS edge on a free port (its
    /// certificate `cert`/`key`), challenging INVITEs (alice / s3cret), relaying over UDP to
    /// 127.0.0.1:`target`. Its `port` is the TLS one.
    pub fn tls_carrier(name: &str, cert: &std::path::Path, key: &std::path::Path, target: u16) -> Kamailio {
        let dir = temp_dir(&format!("{name}-cfg"));
        let tls_cfg = dir.join("tls.cfg");
        let cfg = format!(
            "[server:default]\nmethod = TLSv1.2+\ncertificate = {}\nprivate_key = {}\nverify_certificate = no\n\
             require_certificate = no\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
             require_certificate = no\n",
            cert.display(),
            key.display()
        );
        std::fs::write(&tls_cfg, cfg).unwrap();
        let (udp, tls) = (free_port(), free_port());
        let listen = [format!("udp:127.0.0.1:{udp}"), format!("tls:127.0.0.1:{tls}")];
        let defines = [
            format!("UAS_TARGET=\"sip:127.0.0.1:{target};transport=udp\""),
            format!("TLS_CFG=\"{}\"", tls_cfg.display()),
        ];
        Kamailio::launch(name, "kamailio-tls.cfg", tls, &listen, &defines)
    }

    pub fn launch(name: &str, cfg: &str, port: u16, listen: &[String], defines: &[String]) -> Kamailio {
        use std::os::unix::process::CommandExt;
        let bin = kamailio_bin();
        let dir = temp_dir(name);
        let log = dir.join("kamailio.log");
        let logf = std::fs::File::create(&log).unwrap();
        let cfg = root().join("fixtures/kamailio").join(cfg);
        let mut cmd = Command::new(bin);
        for l in listen {
            cmd.args(["-l", l]);
        }
        for d in defines {
            cmd.args(["-A", d]);
        }
        cmd.arg("-f")
            .arg(&cfg)
            // Foreground, log to stderr, no SCTP, small memory. One UDP worker: with two, a
            // 180 and the 200 right behind it are relayed by different processes and may
            // reach SIPp reordered, which its scenario counts as an unexpected message.
            .args(["-DD", "-E", "-n", "1", "-N", "1", "-S", "-m", "32", "-M", "4"])
            .arg("-w")
            .arg(&dir)
            .arg("-Y")
            .arg(&dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .process_group(0);
        let child = cmd.spawn().expect("start kamailio");
        let mut k = Kamailio { child, port, dir, log };
        k.wait_listening();
        k
    }

    /// Both sockets are bound before Kamailio forks its workers, so once TCP accepts, UDP
    /// datagrams queue for them.
    pub fn wait_listening(&mut self) {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kamailio exited ({status}) before listening on {addr}; its log:\n{}", self.log_text());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kamailio did not listen on {addr} within 10 s; its log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The trunk URI dialtone registers with.
    pub fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    /// How many distinct requests (Call-ID and CSeq) of `method` reached the config's
    /// request_route, from its xlog lines; retransmissions count once.
    pub fn received(&self, method: &str) -> usize {
        let prefix = format!("fixture: {method} sip:");
        let log = self.log_text();
        let requests: std::collections::BTreeSet<_> = log
            .lines()
            .filter(|l| l.contains(&prefix))
            .map(|l| (field(l, "call-id").map(str::to_string), field(l, "cseq").map(str::to_string)))
            .collect();
        requests.len()
    }

    /// Whether any process of Kamailio's group is left.
    pub fn group_alive(&self) -> bool {
        Command::new("kill")
            .args(["-0", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// SIGTERM to the group (Kamailio's main process stops its workers), SIGKILL after 5 s;
    /// true when no process of the group is left.
    pub fn stop(&mut self) -> bool {
        for (signal, grace) in [("-TERM", Duration::from_secs(5)), ("-KILL", Duration::from_secs(5))] {
            self.signal_group(signal);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                // Reap the main process; its workers are reaped by it, or by init.
                let _ = self.child.try_wait();
                if !self.group_alive() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.wait();
        !self.group_alive()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if !self.stop() {
            eprintln!("kamailio process group {} survived SIGKILL ({})", self.child.id(), self.dir.display());
        }
    }
}

/// The value of `key=` in a log line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')).map(|v| v.trim_matches('"'))
}
