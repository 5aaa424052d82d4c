//! The glue between the UA and SDP offer/answer: what we offer, how we answer.

use bytes::Bytes;
use dialtone_sip::sdp;
use std::net::IpAddr;

/// The session id and version we put in o= lines.
fn session_id(port: u16) -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    t ^ u64::from(port) << 32
}

/// Our codecs, in preference order.
pub fn capabilities(ip: IpAddr, port: u16) -> sdp::LocalCapabilities {
    sdp::LocalCapabilities::new(ip, port)
}

/// An offer for an outbound call.
pub fn offer(ip: IpAddr, port: u16) -> Bytes {
    Bytes::from(offer_sdp(ip, port).to_string())
}

/// The same offer, kept to read the answer against.
pub fn offer_sdp(ip: IpAddr, port: u16) -> sdp::SessionDescription {
    sdp::create_offer(&capabilities(ip, port), session_id(port), 1)
}

/// What an answer to our `offer` settles; `Err` says why it cannot be used.
pub fn negotiate(offer: &sdp::SessionDescription, answer: &[u8]) -> Result<sdp::Negotiated, String> {
    let text = std::str::from_utf8(answer).map_err(|_| "the SDP answer is not UTF-8".to_string())?;
    let parsed = sdp::SessionDescription::parse(text).map_err(|e| format!("unreadable SDP answer: {e}"))?;
    sdp::negotiate_from_answer(offer, &parsed).map_err(|e| format!("SDP answer refused: {e}"))
}

/// Answers an offer; `Err` carries the status to refuse with (488 when nothing matches,
/// 400 when the body is not SDP we can read).
pub fn answer(offer: &[u8], ip: IpAddr, port: u16) -> Result<(Bytes, sdp::Negotiated), u16> {
    let text = std::str::from_utf8(offer).map_err(|_| 400u16)?;
    let parsed = sdp::SessionDescription::parse(text).map_err(|_| 400u16)?;
    let caps = capabilities(ip, port);
    match sdp::create_answer(&parsed, &caps, session_id(port), 1) {
        Ok(a) => Ok((Bytes::from(a.sdp.to_string()), a.negotiated)),
        Err(_) => Err(488),
    }
}
