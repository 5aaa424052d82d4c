//! The Python voice agent of the agent tests (fixtures/agent/echo_agent.py, Twilio Media
//! Streams on the `websockets` package), started and killed on drop.

use super::*;
use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Python 3 that can `import websockets`: Debian's first (python3-websockets installs
/// for /usr/bin/python3), then whatever `python3` is on PATH.
pub fn python() -> PathBuf {
    for p in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(p)
            .args(["-c", "import websockets"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return PathBuf::from(p);
        }
    }
    panic!("no python3 with the websockets package: run `./dev test`, which installs Debian's python3-websockets");
}

/// The Python agent, killed on drop.
pub struct Agent {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Agent {
    pub fn start(name: &str, mode: &str) -> Agent {
        Agent::start_with(name, mode, &[])
    }

    pub fn start_with(name: &str, mode: &str, extra: &[&str]) -> Agent {
        let dir = temp_dir(name);
        let log = dir.join("agent.jsonl");
        let mut child = Command::new(python())
            .arg(root().join("fixtures/agent/echo_agent.py"))
            .args(["--mode", mode, "--lifetime", "60", "--log"])
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python agent");
        // Its first line names its port; read it on a thread, bounded.
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let port = line.trim().strip_prefix("port ").and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!("the Python agent did not start: {line:?}");
        };
        Agent { child, port, log }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Its log so far: one JSON object per line.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The messages it received, in order.
    pub fn got(&self) -> Vec<Value> {
        self.events().into_iter().filter_map(|e| e.get("got").cloned()).collect()
    }

    /// Waits (bounded) until it has received a `stop`.
    pub fn wait_stop(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.got().iter().any(|m| m["event"] == "stop") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
