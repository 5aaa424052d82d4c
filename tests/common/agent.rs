//! The Python voice agents of the agent tests, started and killed on drop: echo_agent.py
//! (Twilio Media Streams on the `websockets` package) and pipecat_bot.py (a Pipecat bot, run
//! with the venv `./dev test` makes from fixtures/agent/pipecat-requirements.txt).

use super::*;
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
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

/// The Python of the Pipecat venv: `DIALTONE_PIPECAT_PYTHON` (which `./dev test` exports),
/// else `target/pipecat-venv/bin/python`. Fails the test when there is neither.
pub fn pipecat_python() -> PathBuf {
    let venv = root().join("target/pipecat-venv/bin/python");
    let p = std::env::var_os("DIALTONE_PIPECAT_PYTHON").map_or(venv, PathBuf::from);
    assert!(
        p.is_file(),
        "no Pipecat venv at {}: run `./dev test`, which makes it from fixtures/agent/pipecat-requirements.txt",
        p.display()
    );
    p
}

/// The Python agent, killed on drop.
pub struct Agent {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    /// The WebSocket's path.
    path: &'static str,
}

impl Agent {
    pub fn start(name: &str, mode: &str) -> Agent {
        Agent::start_with(name, mode, &[])
    }

    pub fn start_with(name: &str, mode: &str, extra: &[&str]) -> Agent {
        let mut args = vec!["--mode", mode];
        args.extend_from_slice(extra);
        Agent::spawn(name, &python(), "echo_agent.py", "", &args)
    }

    /// fixtures/agent/pipecat_bot.py, answering each caller turn with a tone after
    /// `reply_delay_ms`.
    pub fn pipecat(name: &str, reply_delay_ms: u64) -> Agent {
        let delay = reply_delay_ms.to_string();
        Agent::spawn(name, &pipecat_python(), "pipecat_bot.py", "/ws", &["--reply-delay-ms", &delay])
    }

    /// `python fixtures/agent/<script> --lifetime 60 --log <file> <args…>`, once it has
    /// printed its port; its WebSocket at `path`.
    fn spawn(name: &str, python: &Path, script: &str, path: &'static str, args: &[&str]) -> Agent {
        let dir = temp_dir(name);
        let log = dir.join("agent.jsonl");
        let mut child = Command::new(python)
            .arg(root().join("fixtures/agent").join(script))
            .args(["--lifetime", "60", "--log"])
            .arg(&log)
            .args(args)
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
        // Pipecat's imports take seconds on a loaded machine.
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = line.trim().strip_prefix("port ").and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!("the Python agent {script} did not start: {line:?}");
        };
        Agent { child, port, log, path }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, self.path)
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
