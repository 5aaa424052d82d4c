//! Dialogs (RFC 3261 §12): the state two UAs share for the life of a call, and the
//! construction of requests inside it.

use crate::header::NameAddr;
use crate::method::Method;
use crate::msg::{Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::uri::{Host, Uri};

/// A dialog's lifecycle.
///
/// ```text
///   1xx with tag          2xx / ACK
/// ──────────────▶ Early ─────────────▶ Confirmed ──BYE──▶ Terminated
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended.
    Terminated,
}

/// The dialog id (§12): Call-ID and both tags.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: SipStr,
    /// Our tag.
    pub local_tag: SipStr,
    /// Their tag (empty for an RFC 2543 peer that sent none).
    pub remote_tag: SipStr,
}

/// One dialog.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// Its id.
    pub id: DialogId,
    /// State.
    pub state: DialogState,
    /// Our From/To value, with our tag (name-addr text).
    pub local: SipStr,
    /// Their From/To value, with their tag.
    pub remote: SipStr,
    /// Our next CSeq for requests we send.
    pub local_seq: u32,
    /// The highest CSeq seen from the peer.
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go: the peer's Contact URI.
    pub remote_target: SipStr,
    /// The route set, in the order Route headers are written.
    pub route_set: Vec<SipStr>,
}

fn contact_uri(contacts: Option<Result<NameAddr<'_>, crate::ParseError>>) -> Option<SipStr> {
    contacts.and_then(|c| c.ok()).map(|c| SipStr::from(c.uri_text))
}

impl Dialog {
    /// The UAS side, from the dialog-creating request and our tag (§12.1.1).
    pub fn new_uas(req: &Request, local_tag: &str) -> Option<Dialog> {
        let h = &req.headers;
        let from = h.from().ok()?;
        let remote_tag = SipStr::from(from.tag().unwrap_or(""));
        let to = h.get(&HeaderName::To)?;
        let local = SipStr::from(format!("{to};tag={local_tag}"));
        let route_set = h.values(&HeaderName::RecordRoute).map(SipStr::from).collect();
        Some(Dialog {
            id: DialogId { call_id: h.call_id().ok()?.clone(), local_tag: SipStr::from(local_tag), remote_tag },
            state: DialogState::Early,
            local,
            remote: h.get(&HeaderName::From)?.clone(),
            local_seq: 1,
            remote_seq: Some(h.cseq().ok()?.seq),
            remote_target: contact_uri(h.contacts().next()).unwrap_or_else(|| req.uri.clone()),
            route_set,
        })
    }

    /// The UAC side, from our request and a response with a To tag (§12.1.2).
    pub fn new_uac(req: &Request, resp: &Response) -> Option<Dialog> {
        let rh = &resp.headers;
        let to = rh.to().ok()?;
        let remote_tag = SipStr::from(to.tag().unwrap_or(""));
        let from = req.headers.from().ok()?;
        let mut route_set: Vec<SipStr> = rh.values(&HeaderName::RecordRoute).map(SipStr::from).collect();
        route_set.reverse();
        let state = if resp.status >= 200 { DialogState::Confirmed } else { DialogState::Early };
        Some(Dialog {
            id: DialogId {
                call_id: req.headers.call_id().ok()?.clone(),
                local_tag: SipStr::from(from.tag().unwrap_or("")),
                remote_tag,
            },
            state,
            local: req.headers.get(&HeaderName::From)?.clone(),
            remote: rh.get(&HeaderName::To)?.clone(),
            local_seq: req.headers.cseq().ok()?.seq,
            remote_seq: None,
            remote_target: contact_uri(rh.contacts().next()).unwrap_or_else(|| req.uri.clone()),
            route_set,
        })
    }

    /// Updates the remote target from a target-refresh response or request (§12.2).
    pub fn refresh_target(&mut self, headers: &crate::msg::Headers) {
        if let Some(t) = contact_uri(headers.contacts().next()) {
            self.remote_target = t;
        }
    }

    /// Checks an in-dialog request's CSeq (§12.2.2): lower than the last one seen is
    /// out of order (the UAS answers 500). Records it when accepted.
    pub fn accept_remote_seq(&mut self, seq: u32, method: &Method) -> bool {
        if let Some(last) = self.remote_seq {
            // ACK and CANCEL reuse the INVITE's number.
            let same_ok = matches!(method, Method::Ack | Method::Cancel);
            if seq < last || (seq == last && !same_ok) {
                return false;
            }
        }
        self.remote_seq = Some(seq);
        true
    }

    /// A new in-dialog request (§12.2.1.1), without Via (the transaction user adds it).
    /// ACK and CANCEL must not use this (they reuse the INVITE's CSeq number).
    pub fn make_request(&mut self, method: Method) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.request_with_seq(method, self.local_seq)
    }

    /// An in-dialog request with a given CSeq number (ACK for a 2xx uses the INVITE's).
    pub fn request_with_seq(&self, method: Method, seq: u32) -> Request {
        let mut r = Request::new(method.clone(), self.remote_target.clone());
        let h = &mut r.headers;
        for route in &self.route_set {
            h.push(HeaderName::Route, route.clone());
        }
        h.push(HeaderName::MaxForwards, SipStr::from_static("70"));
        h.push(HeaderName::From, self.local.clone());
        h.push(HeaderName::To, self.remote.clone());
        h.push(HeaderName::CallId, self.id.call_id.clone());
        h.push(HeaderName::CSeq, SipStr::from(format!("{seq} {method}")));
        r
    }

    /// The host and port requests in this dialog go to: the first route, else the
    /// remote target. `None` when it is a name we cannot use without DNS.
    pub fn next_hop(&self) -> Option<(std::net::IpAddr, Option<u16>, Option<crate::Transport>)> {
        let text = match self.route_set.first() {
            Some(r) => NameAddr::parse(r, "Route").ok().map(|n| n.uri_text.to_string())?,
            None => self.remote_target.to_string(),
        };
        let uri = Uri::parse(&text).ok()?;
        let sip = uri.as_sip()?;
        let ip = match sip.host {
            Host::V4(a) => std::net::IpAddr::V4(a),
            Host::V6(a) => std::net::IpAddr::V6(a),
            Host::Domain(_) => return None,
        };
        let transport = sip.params.value("transport").and_then(crate::Transport::parse);
        Some((ip, sip.port, transport))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_datagram;
    use crate::Message;

    fn invite() -> Request {
        let s = "INVITE sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
Record-Route: <sip:p1.test;lr>, <sip:p2.test;lr>\r\nFrom: <sip:a@x>;tag=aa\r\nTo: <sip:bob@y>\r\n\
Call-ID: c1\r\nCSeq: 5 INVITE\r\nContact: <sip:a@192.0.2.1:5062>\r\nContent-Length: 0\r\n\r\n";
        match parse_datagram(bytes::Bytes::from(s)).unwrap() {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    #[test]
    fn uas_dialog_and_requests() {
        let req = invite();
        let mut d = Dialog::new_uas(&req, "bb").unwrap();
        assert_eq!(d.id.remote_tag, "aa");
        assert_eq!(d.remote_target, "sip:a@192.0.2.1:5062");
        assert_eq!(d.route_set.len(), 2);
        let bye = d.make_request(Method::Bye);
        assert_eq!(&*bye.uri, "sip:a@192.0.2.1:5062");
        assert_eq!(bye.headers.to().unwrap().tag(), Some("aa"));
        assert_eq!(bye.headers.from().unwrap().tag(), Some("bb"));
        assert_eq!(bye.headers.routes().count(), 2);
        assert!(!d.accept_remote_seq(4, &Method::Bye));
        assert!(d.accept_remote_seq(6, &Method::Bye));
        assert!(d.accept_remote_seq(6, &Method::Ack));
        assert!(d.next_hop().is_none()); // first route is a domain name
    }
}
