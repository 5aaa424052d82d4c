//! A test HTTP server for webhooks: answers every POST with a fixed JSON body and keeps
//! what it got.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a hook got: its headers (names lower-cased) and body.
pub type Got = (Vec<(String, String)>, Vec<u8>);

/// A webhook (a call webhook, or one for events): answers every POST (at most 100, or as many
/// as [`Hook::start_up_to`] says) with
/// `answer` after `delay`, keeping what it got (the headers, lower-cased, and the body).
pub struct Hook {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Hook {
    /// Listens on a port of its own.
    pub fn start(answer: Value, delay: Duration) -> Hook {
        Hook::start_up_to(answer, delay, 100)
    }

    /// [`Hook::start`] answering at most `max` POSTs.
    pub fn start_up_to(answer: Value, delay: Duration, max: usize) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max) {
                let Ok(mut s) = stream else { continue };
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim_end() != "" {
                    if let Some((k, v)) = line.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                    line.clear();
                }
                let len = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok());
                let mut body = vec![0; len.unwrap_or(0)];
                let _ = r.read_exact(&mut body);
                keep.lock().unwrap().push((headers, body));
                std::thread::sleep(delay);
                let text = answer.to_string();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Hook { port, got }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/call", self.port)
    }

    /// What it got so far.
    pub fn requests(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}
