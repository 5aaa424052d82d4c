//! What a running call shows before its end is stored (issue 17's call detail): the SIP
//! messages of its dialogs (the ladder) and its latest quality figures.
//!
//! The SIP driver hands every message it sends or receives to [`Live::sip`]; messages are
//! kept by their Call-ID, in memory and bounded ([`Bounds`]), REGISTER and OPTIONS left
//! out. The engine tells which Call-IDs belong to which API call ([`Live::claim`]); at the
//! call's end [`Live::take_ladder`] hands them over to be stored with the call, and
//! Call-IDs nobody claims (a scanner's INVITEs, a refused call) are the first forgotten
//! when the bounds are reached. Sans-IO: no sockets, no store.

use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// We sent it.
    Sent,
    /// We received it.
    Received,
}

/// How much is kept.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Messages per Call-ID (the rest are counted, not kept: `truncated`).
    pub per_dialog: usize,
    /// Bytes of one message's text (longer ones are cut).
    pub message_bytes: usize,
    /// Call-IDs kept at once.
    pub dialogs: usize,
    /// Bytes kept in all.
    pub total_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds { per_dialog: 100, message_bytes: 8 * 1024, dialogs: 4096, total_bytes: 32 * 1024 * 1024 }
    }
}

/// One kept message: the bytes as they went (shared with the driver, not copied; cut at
/// [`Bounds::message_bytes`]), read for the API only when asked.
#[derive(Clone, Debug)]
struct Message {
    at_ms: i64,
    dir: Dir,
    transport: &'static str,
    peer: std::net::SocketAddr,
    data: Bytes,
    cut: bool,
}

#[derive(Debug, Default)]
struct Dialog {
    messages: Vec<Message>,
    truncated: bool,
    bytes: usize,
    /// The API call it belongs to.
    owner: Option<String>,
}

#[derive(Debug, Default)]
struct Ladder {
    dialogs: HashMap<String, Dialog>,
    /// Call-IDs, oldest first.
    order: VecDeque<String>,
    /// Each API call's Call-IDs (a failover or a challenge may make more than one).
    owned: HashMap<String, Vec<String>>,
    bytes: usize,
}

/// The live facts of running calls, shared by the SIP driver, the engine's effects and
/// the API. See the module docs.
#[derive(Debug, Default)]
pub struct Live {
    bounds: Bounds,
    ladder: Mutex<Ladder>,
    quality: Mutex<HashMap<String, Shared>>,
}

/// A call's latest figures, written by its media task.
pub type Shared = Arc<Mutex<Option<Value>>>;

impl Live {
    /// Keeping within `bounds`.
    pub fn new(bounds: Bounds) -> Live {
        Live { bounds, ..Live::default() }
    }

    /// A message the driver sent or received over `transport` (`udp`, `tcp`, `tls`), at
    /// `at_ms` (Unix ms).
    pub fn sip(&self, dir: Dir, transport: &'static str, peer: std::net::SocketAddr, data: &Bytes, at_ms: i64) {
        let Some(head) = Head::read(data) else { return };
        if matches!(head.cseq_method, "REGISTER" | "OPTIONS") {
            return;
        }
        let cut = data.len() > self.bounds.message_bytes;
        let data = if cut { data.slice(..self.bounds.message_bytes) } else { data.clone() };
        let size = data.len() + 64;
        let m = Message { at_ms, dir, transport, peer, data, cut };
        let Ok(mut l) = self.ladder.lock() else { return };
        let l = &mut *l;
        let d = match l.dialogs.get_mut(head.call_id) {
            Some(d) => d,
            None => {
                l.order.push_back(head.call_id.to_string());
                l.dialogs.entry(head.call_id.to_string()).or_default()
            }
        };
        if d.messages.len() < self.bounds.per_dialog {
            d.messages.push(m);
            d.bytes += size;
            l.bytes += size;
        } else {
            d.truncated = true;
        }
        self.shrink(l);
    }

    /// Forgets Call-IDs, unclaimed ones first, oldest first, until within the bounds.
    fn shrink(&self, l: &mut Ladder) {
        while l.dialogs.len() > self.bounds.dialogs || l.bytes > self.bounds.total_bytes {
            let victim = l
                .order
                .iter()
                .position(|id| l.dialogs.get(id).is_some_and(|d| d.owner.is_none()))
                .or((!l.order.is_empty()).then_some(0));
            let Some(i) = victim else { break };
            let Some(id) = l.order.remove(i) else { break };
            if let Some(d) = l.dialogs.remove(&id) {
                l.bytes = l.bytes.saturating_sub(d.bytes);
                if let Some(owner) = d.owner {
                    if let Some(ids) = l.owned.get_mut(&owner) {
                        ids.retain(|x| *x != id);
                    }
                }
            }
        }
    }

    /// The dialog `sip_call_id` belongs to the API call `api_id`.
    pub fn claim(&self, sip_call_id: &str, api_id: &str) {
        let Ok(mut l) = self.ladder.lock() else { return };
        if !l.dialogs.contains_key(sip_call_id) {
            l.order.push_back(sip_call_id.to_string());
            l.dialogs.insert(sip_call_id.to_string(), Dialog::default());
        }
        if let Some(d) = l.dialogs.get_mut(sip_call_id) {
            d.owner = Some(api_id.to_string());
        }
        let ids = l.owned.entry(api_id.to_string()).or_default();
        if !ids.iter().any(|x| x == sip_call_id) {
            ids.push(sip_call_id.to_string());
        }
    }

    /// The API call's messages so far, in order, as the API shows them, or `None` if it
    /// has none here.
    pub fn ladder(&self, api_id: &str) -> Option<Value> {
        let l = self.ladder.lock().ok()?;
        let ids = l.owned.get(api_id)?;
        let mut all: Vec<&Message> = Vec::new();
        let mut truncated = false;
        for id in ids {
            if let Some(d) = l.dialogs.get(id) {
                all.extend(d.messages.iter());
                truncated |= d.truncated;
            }
        }
        Some(ladder_json(&all, truncated))
    }

    /// The API call's messages, removed from here (to be stored with the call).
    pub fn take_ladder(&self, api_id: &str) -> Option<Value> {
        let v = self.ladder(api_id);
        let Ok(mut l) = self.ladder.lock() else { return v };
        for id in l.owned.remove(api_id).unwrap_or_default() {
            if let Some(d) = l.dialogs.remove(&id) {
                l.bytes = l.bytes.saturating_sub(d.bytes);
            }
            l.order.retain(|x| *x != id);
        }
        v
    }

    /// Call-IDs kept now (for tests and figures).
    pub fn dialogs(&self) -> usize {
        self.ladder.lock().map_or(0, |l| l.dialogs.len())
    }

    /// A place for the API call's quality figures, which its media task fills.
    pub fn watch_quality(&self, api_id: &str) -> Shared {
        let shared = Shared::default();
        if let Ok(mut q) = self.quality.lock() {
            q.insert(api_id.to_string(), shared.clone());
        }
        shared
    }

    /// The API call's latest quality figures.
    pub fn quality(&self, api_id: &str) -> Option<Value> {
        let shared = self.quality.lock().ok()?.get(api_id).cloned()?;
        let v = shared.lock().ok()?.clone();
        v
    }

    /// The API call's last quality figures, forgotten here (to be stored with the call).
    pub fn take_quality(&self, api_id: &str) -> Option<Value> {
        let shared = self.quality.lock().ok()?.remove(api_id)?;
        let v = shared.lock().ok()?.clone();
        v
    }
}

/// `{messages: […], truncated}` with offsets from the first message.
fn ladder_json(all: &[&Message], truncated: bool) -> Value {
    let mut all = all.to_vec();
    all.sort_by_key(|m| m.at_ms);
    let start = all.first().map_or(0, |m| m.at_ms);
    let messages: Vec<Value> = all
        .iter()
        .map(|m| {
            let head = Head::read(&m.data);
            let mut text = String::from_utf8_lossy(&m.data).into_owned();
            if m.cut {
                text.push_str("\n… (cut)");
            }
            json!({
                "at": crate::wire::rfc3339(m.at_ms),
                "offset_ms": m.at_ms - start,
                "direction": match m.dir { Dir::Sent => "sent", Dir::Received => "received" },
                "transport": m.transport,
                "peer": m.peer.to_string(),
                "label": head.as_ref().map(Head::label).unwrap_or_default(),
                "first_line": head.as_ref().map_or("", |h| h.first_line),
                "cseq": head.as_ref().map_or("", |h| h.cseq),
                "text": text,
            })
        })
        .collect();
    json!({"messages": messages, "truncated": truncated})
}

/// What the ladder needs of a message's head, read from its text.
struct Head<'a> {
    first_line: &'a str,
    call_id: &'a str,
    cseq: &'a str,
    cseq_method: &'a str,
}

impl<'a> Head<'a> {
    /// The first line, Call-ID and CSeq (compact forms too), reading lines up to the
    /// blank one; `None` without a Call-ID or when a line read is not text.
    fn read(data: &'a [u8]) -> Option<Head<'a>> {
        let mut lines = data.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let first_line = std::str::from_utf8(lines.next()?).ok()?.trim();
        let (mut call_id, mut cseq) = (None, None);
        for line in lines.take(200) {
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
            let name = line[..colon].trim_ascii();
            let is_call_id = name.eq_ignore_ascii_case(b"Call-ID") || name == b"i";
            if is_call_id || name.eq_ignore_ascii_case(b"CSeq") {
                let value = std::str::from_utf8(&line[colon + 1..]).ok()?.trim();
                if is_call_id {
                    call_id = Some(value);
                } else {
                    cseq = Some(value);
                }
            }
            if call_id.is_some() && cseq.is_some() {
                break;
            }
        }
        let call_id = call_id.filter(|c| !c.is_empty())?;
        let cseq = cseq.unwrap_or("");
        let cseq_method = cseq.split_whitespace().nth(1).unwrap_or("");
        Some(Head { first_line, call_id, cseq, cseq_method })
    }

    /// `INVITE` for a request, `200 OK` for a response.
    fn label(&self) -> String {
        match self.first_line.strip_prefix("SIP/2.0 ") {
            Some(status) => status.trim().to_string(),
            None => self.first_line.split_whitespace().next().unwrap_or("").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(first: &str, call_id: &str, cseq: &str) -> Bytes {
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 127.0.0.1:5060\r\ni: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
        .into()
    }

    fn peer() -> std::net::SocketAddr {
        "127.0.0.1:5080".parse().unwrap()
    }

    #[test]
    fn keeps_a_calls_dialogs_in_order_and_leaves_out_registrations() {
        let live = Live::default();
        live.sip(Dir::Sent, "udp", peer(), &msg("INVITE sip:a@b SIP/2.0", "c1", "1 INVITE"), 1_000);
        live.sip(Dir::Received, "udp", peer(), &msg("SIP/2.0 100 Trying", "c1", "1 INVITE"), 1_010);
        live.sip(Dir::Sent, "udp", peer(), &msg("REGISTER sip:b SIP/2.0", "r1", "1 REGISTER"), 1_020);
        live.sip(Dir::Received, "udp", peer(), &msg("SIP/2.0 200 OK", "c1", "1 INVITE"), 1_500);
        live.sip(Dir::Sent, "udp", peer(), &Bytes::from_static(b"not sip at all"), 1_600);
        assert!(live.ladder("call_1").is_none(), "not claimed yet");
        live.claim("c1", "call_1");
        let l = live.ladder("call_1").unwrap();
        let labels: Vec<&str> =
            l["messages"].as_array().unwrap().iter().map(|m| m["label"].as_str().unwrap()).collect();
        assert_eq!(labels, ["INVITE", "100 Trying", "200 OK"]);
        assert_eq!(l["messages"][2]["offset_ms"], 500);
        assert_eq!(
            (&l["messages"][0]["direction"], &l["messages"][1]["direction"]),
            (&json!("sent"), &json!("received"))
        );
        assert_eq!(l["messages"][0]["cseq"], "1 INVITE");
        assert_eq!(live.dialogs(), 1, "the REGISTER and the junk are not kept");
        // Taken at the end: gone from here.
        assert_eq!(live.take_ladder("call_1").unwrap(), l);
        assert!(live.ladder("call_1").is_none());
        assert_eq!(live.dialogs(), 0);
    }

    #[test]
    fn stays_within_its_bounds_forgetting_unclaimed_dialogs_first() {
        let live = Live::new(Bounds { per_dialog: 3, message_bytes: 120, dialogs: 4, total_bytes: 1 << 20 });
        live.claim("mine", "call_1");
        for i in 0..10 {
            live.sip(Dir::Received, "udp", peer(), &msg("INVITE sip:x SIP/2.0", &format!("scan{i}"), "1 INVITE"), i);
        }
        for i in 0..5 {
            live.sip(Dir::Sent, "tcp", peer(), &msg("BYE sip:x SIP/2.0", "mine", "2 BYE"), 100 + i);
        }
        assert_eq!(live.dialogs(), 4);
        let l = live.ladder("call_1").unwrap();
        assert_eq!(l["messages"].as_array().unwrap().len(), 3);
        assert_eq!(l["truncated"], true);
        // A long message is cut.
        let mut long = msg("INFO sip:x SIP/2.0", "long", "3 INFO").to_vec();
        long.extend(std::iter::repeat_n(b'x', 500));
        let long = Bytes::from(long);
        live.claim("long", "call_2");
        live.sip(Dir::Sent, "udp", peer(), &long, 200);
        let text = live.ladder("call_2").unwrap()["messages"][0]["text"].as_str().unwrap().to_string();
        assert!(text.len() < 140 && text.ends_with("(cut)"), "{text}");
    }

    #[test]
    fn quality_is_read_live_and_taken_at_the_end() {
        let live = Live::default();
        let shared = live.watch_quality("call_1");
        assert!(live.quality("call_1").is_none());
        *shared.lock().unwrap() = Some(json!({"samples": [1]}));
        assert_eq!(live.quality("call_1").unwrap()["samples"][0], 1);
        assert_eq!(live.take_quality("call_1").unwrap()["samples"][0], 1);
        assert!(live.quality("call_1").is_none());
    }
}
