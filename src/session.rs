//! The glue between the UA and SDP offer/answer: what we offer, how we answer.

use bytes::Bytes;
use dialtone_media::session::{AudioCodec, SessionConfig, SrtpKeys};
use dialtone_media::srtp::{MasterKey, Suite};
use dialtone_sip::sdp;
use dialtone_sip::sdp::sdes::{Sdes, SrtpMode};
use dialtone_sip::sdp::Negotiated;
use std::net::{IpAddr, SocketAddr};

/// The session id and version we put in o= lines.
fn session_id(port: u16) -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    t ^ u64::from(port) << 32
}

/// Our codecs, in preference order, and SDES-SRTP as `srtp` says.
pub fn capabilities(ip: IpAddr, port: u16, srtp: Option<Sdes>) -> sdp::LocalCapabilities {
    let mut caps = sdp::LocalCapabilities::new(ip, port);
    caps.srtp = srtp;
    caps
}

/// Fresh SDES master keys (a CSPRNG's, one per suite, most preferred first) for `mode`.
pub fn sdes(mode: SrtpMode) -> Sdes {
    let keys = sdp::sdes::SUITES.iter().map(|s| (*s, rand::random::<[u8; 30]>())).collect();
    Sdes { mode, keys }
}

/// An offer for an outbound call.
pub fn offer(ip: IpAddr, port: u16) -> Bytes {
    Bytes::from(offer_sdp(ip, port, None).to_string())
}

/// An offer with only `codecs` (encoding names, in this order; empty: all ours, in our
/// order) and `telephone-event`.
pub fn offer_with_codecs(ip: IpAddr, port: u16, srtp: Option<Sdes>, codecs: &[String]) -> sdp::SessionDescription {
    let mut caps = capabilities(ip, port, srtp);
    if !codecs.is_empty() {
        let mut ordered = Vec::new();
        for want in codecs {
            ordered.extend(caps.codecs.iter().filter(|c| c.name.eq_ignore_ascii_case(want)).cloned());
        }
        ordered.extend(caps.codecs.iter().filter(|c| c.name.eq_ignore_ascii_case("telephone-event")).cloned());
        caps.codecs = ordered;
    }
    sdp::create_offer(&caps, session_id(port), 1)
}

/// The same offer, kept to read the answer against.
pub fn offer_sdp(ip: IpAddr, port: u16, srtp: Option<Sdes>) -> sdp::SessionDescription {
    sdp::create_offer(&capabilities(ip, port, srtp), session_id(port), 1)
}

/// What an answer to our `offer` settles; `Err` says why it cannot be used.
pub fn negotiate(offer: &sdp::SessionDescription, answer: &[u8]) -> Result<sdp::Negotiated, String> {
    let text = std::str::from_utf8(answer).map_err(|_| "the SDP answer is not UTF-8".to_string())?;
    let parsed = sdp::SessionDescription::parse(text).map_err(|e| format!("unreadable SDP answer: {e}"))?;
    sdp::negotiate_from_answer(offer, &parsed).map_err(|e| format!("SDP answer refused: {e}"))
}

/// What a new offer inside the call (re-INVITE, UPDATE) asks of our media: where the
/// peer now wants RTP (`None` for a hold with `c=0.0.0.0` or port 0), and the direction
/// of our answer (RFC 3264 §6.1: their `sendonly` makes us `recvonly`, and so on).
pub fn reoffer(offer: &[u8]) -> Option<(Option<SocketAddr>, sdp::Direction)> {
    let parsed = sdp::SessionDescription::parse(std::str::from_utf8(offer).ok()?).ok()?;
    let r = sdp::read_reoffer(&parsed)?;
    Some((r.remote, r.direction))
}

/// A DTMF key carried by SIP INFO: `application/dtmf-relay` (`Signal=5`, `Duration=160`
/// lines, the de-facto format of Cisco and most trunks) or `application/dtmf` (the key
/// alone). Returns the key and its duration in ms, if given; `None` for other bodies.
pub fn info_dtmf(content_type: &str, body: &[u8]) -> Option<(char, Option<u32>)> {
    let ct = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let key = |s: &str| -> Option<char> {
        let mut c = s.trim().chars();
        let k = c.next()?.to_ascii_uppercase();
        (c.next().is_none() && matches!(k, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(k)
    };
    match ct.as_str() {
        "application/dtmf-relay" => {
            let (mut signal, mut duration) = (None, None);
            for line in text.lines() {
                let Some((name, value)) = line.split_once('=') else { continue };
                match name.trim().to_ascii_lowercase().as_str() {
                    "signal" => signal = key(value),
                    "duration" => duration = value.trim().parse().ok(),
                    _ => {}
                }
            }
            Some((signal?, duration))
        }
        "application/dtmf" => Some((key(text)?, None)),
        _ => None,
    }
}

/// Answers an offer; `Err` carries the status to refuse with (488 when nothing matches,
/// 400 when the body is not SDP we can read).
pub fn answer(offer: &[u8], ip: IpAddr, port: u16, srtp: Option<Sdes>) -> Result<(Bytes, sdp::Negotiated), u16> {
    let text = std::str::from_utf8(offer).map_err(|_| 400u16)?;
    let parsed = sdp::SessionDescription::parse(text).map_err(|_| 400u16)?;
    let caps = capabilities(ip, port, srtp);
    match sdp::create_answer(&parsed, &caps, session_id(port), 1) {
        Ok(a) => Ok((Bytes::from(a.sdp.to_string()), a.negotiated)),
        Err(_) => Err(488),
    }
}

/// The session settings for what offer/answer settled, or why there is no media.
pub fn session_config(n: &Negotiated, seed: u64, cname: &str) -> Result<SessionConfig, String> {
    let codec = AudioCodec::from_name(&n.codec.name).ok_or_else(|| format!("no media engine for {}", n.codec.name))?;
    Ok(SessionConfig {
        codec,
        payload_type: n.codec.payload_type,
        telephone_event: n.telephone_event.as_ref().map(|c| (c.payload_type, c.clock_rate)),
        ptime_ms: n.ptime.max(10),
        remote_rtp: n.remote_rtp,
        remote_rtcp: (!n.rtcp_mux).then_some(n.remote_rtcp),
        send: n.local_direction.sends(),
        seed,
        cname: cname.to_string(),
        opus_complexity: 5,
        srtp: match &n.srtp {
            None => None,
            Some(k) => Some(SrtpKeys {
                suite: Suite::parse(k.suite).ok_or_else(|| format!("no SRTP engine for {}", k.suite))?,
                ours: MasterKey::from_bytes(&k.ours).ok_or("a bad SRTP key")?,
                theirs: MasterKey::from_bytes(&k.theirs).ok_or("a bad SRTP key")?,
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_dtmf_bodies() {
        assert_eq!(info_dtmf("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"), Some(('5', Some(160))));
        assert_eq!(info_dtmf("Application/DTMF-Relay; x=y", b"signal= #\nduration=250"), Some(('#', Some(250))));
        assert_eq!(info_dtmf("application/dtmf", b"9\r\n"), Some(('9', None)));
        assert_eq!(info_dtmf("application/dtmf", b"a"), Some(('A', None)));
        assert_eq!(info_dtmf("application/dtmf-relay", b"Signal=55\r\n"), None);
        assert_eq!(info_dtmf("application/dtmf-relay", b"Duration=100"), None);
        assert_eq!(info_dtmf("application/sdp", b"5"), None);
        assert_eq!(info_dtmf("application/dtmf", b"\xff"), None);
    }

    #[test]
    fn reoffers_for_hold_and_resume() {
        let sdp = |c: &str, port: u16, dir: &str| {
            format!("v=0\r\no=- 1 2 IN IP4 {c}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n{dir}")
        };
        let addr: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        assert_eq!(
            reoffer(sdp("10.0.0.2", 5000, "a=sendonly\r\n").as_bytes()),
            Some((Some(addr), sdp::Direction::RecvOnly))
        );
        assert_eq!(reoffer(sdp("10.0.0.2", 5000, "").as_bytes()), Some((Some(addr), sdp::Direction::SendRecv)));
        assert_eq!(reoffer(sdp("0.0.0.0", 5000, "").as_bytes()), Some((None, sdp::Direction::SendRecv)));
        assert_eq!(
            reoffer(sdp("10.0.0.2", 5000, "a=inactive\r\n").as_bytes()),
            Some((Some(addr), sdp::Direction::Inactive))
        );
        assert_eq!(reoffer(b"garbage"), None);
    }
}
