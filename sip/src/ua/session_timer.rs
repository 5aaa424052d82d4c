//! Session timers (RFC 4028): arming, refreshing, and ending a session nobody refreshes.

use super::agent::*;
use super::call::*;
use super::helpers::*;
use super::timers::*;
use super::types::*;
use crate::method::Method;
use crate::msg::Response;
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transaction::ClientKey;
use std::time::Instant;

impl UserAgent {
    /// (Re)arms the call's session timer from `now`.
    pub(super) fn arm_session_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(t) = c.session_timer.as_mut() else { return };
        let due = t.due(now);
        self.timers.arm(&mut c.timers, call, Timer::Session, due);
    }

    pub(super) fn on_session_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(t) = c.session_timer else { return };
        if c.state != State::Confirmed {
            return;
        }
        if !t.we_refresh {
            // No refresh came: the session is over (§10).
            let _ = self.send_bye(call, now);
            return self.end_call(call, EndReason::SessionExpired);
        }
        // Refresh: UPDATE when the peer allows it (no offer needed), else a re-INVITE
        // with our current session description.
        let method = if c.peer_allows_update { Method::Update } else { Method::Invite };
        let transport = c.peer.transport;
        let contact = self.contact(transport);
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(d) = c.dialog.as_mut() else { return };
        let mut req = d.make_request(method.clone());
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::SessionExpires, SipStr::from(format!("{};refresher=uac", t.interval)));
        h.push(HeaderName::Supported, SipStr::from_static(SUPPORTED_UAC));
        if method == Method::Invite {
            if let Some(sdp) = c.local_sdp.clone() {
                h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
                req.body = sdp;
            }
        }
        self.send_in_dialog(call, req, dest, Purpose::Refresh, now);
    }

    /// The answer to our refresh: 2xx re-arms (and a re-INVITE's is ACKed); 481 or 408
    /// mean the session is gone (§10), anything else is tried again at the next half.
    pub(super) fn on_refresh_response(&mut self, call: CallRef, key: ClientKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let status = resp.status;
        if (200..300).contains(&status) {
            if let Some((interval, refresher)) = session_expires(&resp.headers) {
                if let Some(t) = c.session_timer.as_mut() {
                    t.interval = interval;
                    t.we_refresh = refresher.as_deref() != Some("uas");
                }
            }
            let is_invite = resp.headers.cseq().is_ok_and(|cs| cs.method == Method::Invite);
            if is_invite {
                if let (Some(d), Ok(cs)) = (c.dialog.as_ref(), resp.headers.cseq()) {
                    let ack = d.request_with_seq(Method::Ack, cs.seq);
                    let dest = next_hop(d, &c.peer);
                    self.send_ack(key, ack, dest);
                }
            }
            return self.arm_session_timer(call, now);
        }
        if matches!(status, 408 | 481) {
            let _ = self.send_bye(call, now);
            return self.end_call(call, EndReason::SessionExpired);
        }
        self.arm_session_timer(call, now);
    }
}
