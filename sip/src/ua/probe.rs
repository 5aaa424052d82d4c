//! OPTIONS outside any dialog (RFC 3261 §11), to learn whether a server is alive: a
//! trunk's keep-alive. Any final response means it is; none within Timer F means it is
//! not.

use super::agent::UserAgent;
use super::call::Purpose;
use super::types::{CallRef, UaError, UaEvent};
use crate::{Destination, HeaderName, Method, Request, SipStr};
use std::time::Instant;

impl UserAgent {
    /// Sends an OPTIONS to `uri` at `dest`; its answer comes as
    /// [`UaEvent::OptionsAnswered`] with the returned probe number.
    pub fn options(&mut self, dest: Destination, uri: &str, now: Instant) -> Result<u64, UaError> {
        crate::uri::Uri::parse(uri).map_err(|_| UaError::Invalid("request URI"))?;
        let local = self.local_addr(dest.transport)?;
        let probe = self.next_call;
        self.next_call += 1;
        let tag = self.new_tag();
        let call_id = format!("{:016x}@{}", self.random(), local.ip());
        let via = self.via(dest.transport);
        let mut req = Request::new(Method::Options, SipStr::from(uri));
        let h = &mut req.headers;
        h.push(HeaderName::Via, SipStr::from(via));
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, SipStr::from(format!("<sip:{}@{}>;tag={tag}", self.cfg.contact_user, local.ip())));
        h.push(HeaderName::To, SipStr::from(format!("<{uri}>")));
        h.push(HeaderName::CallId, SipStr::from(call_id));
        h.push(HeaderName::CSeq, "1 OPTIONS");
        h.push(HeaderName::Accept, "application/sdp");
        h.push(HeaderName::UserAgent, SipStr::from(self.cfg.user_agent.as_str()));
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (CallRef(probe), Purpose::Options));
        Ok(probe)
    }

    /// The answer to probe `probe`: its status, or `None` (no answer, transport failure).
    pub(super) fn options_answered(&mut self, probe: CallRef, status: Option<u16>) {
        self.events.push_back(UaEvent::OptionsAnswered { probe: probe.0, status });
    }
}
