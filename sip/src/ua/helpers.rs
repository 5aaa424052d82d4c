//! Small pieces every part of the UA uses: building responses, stamping Via, where
//! replies and in-dialog requests go.

use crate::dialog::Dialog;
use crate::header::Via;
use crate::msg::{Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transport::Destination;
use std::net::SocketAddr;

pub(super) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds a response to `req` per §8.2.6: Via, From, To (with `to_tag` added when the
/// request's To has none), Call-ID and CSeq copied.
pub fn make_response(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
    let mut r = Response::new(status, SipStr::from(reason));
    let h = &mut r.headers;
    for v in req.headers.get_all(&HeaderName::Via) {
        h.push(HeaderName::Via, v.clone());
    }
    if let Some(f) = req.headers.get(&HeaderName::From) {
        h.push(HeaderName::From, f.clone());
    }
    if let Some(t) = req.headers.get(&HeaderName::To) {
        let has_tag = req.headers.to().map(|t| t.tag().is_some()).unwrap_or(true);
        match to_tag {
            Some(tag) if !has_tag && status > 100 => h.push(HeaderName::To, SipStr::from(format!("{t};tag={tag}"))),
            _ => h.push(HeaderName::To, t.clone()),
        }
    }
    if let Some(c) = req.headers.get(&HeaderName::CallId) {
        h.push(HeaderName::CallId, c.clone());
    }
    if let Some(c) = req.headers.get(&HeaderName::CSeq) {
        h.push(HeaderName::CSeq, c.clone());
    }
    r
}

/// Stamps `received` and fills `rport` on the top Via (§18.2.1, RFC 3581 §4).
pub(super) fn stamp_via(req: &mut Request, src: &Destination) {
    let Some(idx) = req.headers.0.iter().position(|h| h.name == HeaderName::Via) else { return };
    let value = req.headers.0[idx].value.clone();
    let first_end = crate::grammar::split_top(&value, b',').next().map(|f| f.len()).unwrap_or(value.len());
    let first = crate::grammar::trim(&value[..first_end.min(value.len())]);
    let Ok(via) = Via::parse(first) else { return };
    let ip = src.addr.ip();
    let needs_received = via.host.ip() != Some(ip);
    let wants_rport = matches!(via.rport(), Some(None));
    if !needs_received && !wants_rport {
        return;
    }
    let mut stamped = String::with_capacity(value.len() + 40);
    // Rebuild the first via-parm: drop an empty rport, then append ours.
    let mut parts = first.splitn(2, ';');
    stamped.push_str(parts.next().unwrap_or(""));
    if let Some(params) = parts.next() {
        for p in params.split(';') {
            let name = p.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("received") || (wants_rport && name.eq_ignore_ascii_case("rport")) {
                continue;
            }
            stamped.push(';');
            stamped.push_str(p);
        }
    }
    if needs_received || wants_rport {
        stamped.push_str(&format!(";received={ip}"));
    }
    if wants_rport {
        stamped.push_str(&format!(";rport={}", src.addr.port()));
    }
    let rest = value.get(first_end..).unwrap_or("");
    stamped.push_str(rest);
    req.headers.0[idx].value = SipStr::from(stamped);
}

/// Where responses to a request go (§18.2.2 with RFC 3581): over a stream, back on the
/// connection; over UDP, to the source address, at the rport or sent-by port.
pub(super) fn response_destination(req: &Request, src: &Destination) -> Destination {
    if src.transport.is_reliable() {
        return *src;
    }
    let port = match req.headers.top_via() {
        Ok(v) if v.rport().is_some() => src.addr.port(),
        Ok(v) => v.port.unwrap_or(5060),
        Err(_) => src.addr.port(),
    };
    Destination { transport: src.transport, addr: SocketAddr::new(src.addr.ip(), port) }
}

/// Whether a Require/Supported-style header lists `tag`.
pub(super) fn has_option_tag(h: &crate::msg::Headers, name: &HeaderName, tag: &str) -> bool {
    h.values(name).any(|v| v.trim().eq_ignore_ascii_case(tag))
}

pub(super) fn copy_record_route(req: &Request, resp: &mut Response) {
    for rr in req.headers.get_all(&HeaderName::RecordRoute) {
        resp.headers.push(HeaderName::RecordRoute, rr.clone());
    }
}

/// Where an in-dialog request goes: the next hop if it is an IP literal, else back to
/// the peer we already talk to.
pub(super) fn next_hop(d: &Dialog, peer: &Destination) -> Destination {
    match d.next_hop() {
        Some((ip, port, transport)) => Destination {
            transport: transport.unwrap_or(peer.transport),
            addr: SocketAddr::new(ip, port.unwrap_or(5060)),
        },
        None => *peer,
    }
}
