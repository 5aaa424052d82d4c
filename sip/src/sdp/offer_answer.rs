//! RFC 3264 offer/answer for one audio stream: our offer, our answer to theirs, what their
//! answer settles, and new offers inside a call (hold, resume).

use super::sdes::{self, SdesKeys, SrtpMode};
use super::{codec::*, error::*, model::*};
use std::net::{IpAddr, SocketAddr};

impl LocalCapabilities {
    /// Defaults: PCMU 0, PCMA 8, opus 111, G722 9, telephone-event 101; ptime 20;
    /// sendrecv.
    ///
    /// The order is our preference in offers: G.711 first, which every peer and carrier
    /// has (so offers pick what they always did), then the wideband codecs, Opus before
    /// G.722 (better at a third of the rate, with FEC). Answers keep the offerer's order, so
    /// a phone that prefers G.722 gets it; a trunk's `codecs` setting reorders offers.
    pub fn new(address: IpAddr, port: u16) -> Self {
        LocalCapabilities {
            codecs: vec![Codec::pcmu(), Codec::pcma(), Codec::opus(), Codec::g722(), Codec::telephone_event()],
            address,
            port,
            ptime: 20,
            direction: Direction::SendRecv,
            rtcp_mux: false,
            username: "dialtone".to_string(),
            session_name: "dialtone".to_string(),
            srtp: None,
        }
    }

    pub(super) fn supports(&self, c: &Codec) -> Option<&Codec> {
        self.codecs.iter().find(|ours| ours.same_encoding(c))
    }
}

/// The result of an offer/answer exchange for the one audio stream in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the m= line in use.
    pub media_index: usize,
    /// Where to send RTP (an unspecified IP means RFC 2543 hold: send nothing).
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: the RTP address with rtcp-mux, else `a=rtcp`, else port + 1.
    pub remote_rtcp: SocketAddr,
    /// The codec to send: PT and fmtp as the peer wrote them.
    pub codec: Codec,
    /// All codecs both sides accepted in the stream's order (first = [`Negotiated::codec`]);
    /// the peer may switch between them, so decode all.
    pub codecs: Vec<Codec>,
    /// The negotiated `telephone-event` format, if any.
    pub telephone_event: Option<Codec>,
    /// Packetization time in ms to send with.
    pub ptime: u32,
    /// What we do: whether we send and/or receive.
    pub local_direction: Direction,
    /// What the peer does (an RFC 2543 `c=0.0.0.0` counts as not receiving).
    pub remote_direction: Direction,
    /// RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
    /// SRTP's suite and keys, when SDES settled it; `None`: plain RTP.
    pub srtp: Option<SdesKeys>,
}

impl Negotiated {
    /// The telephone-event payload type, if negotiated.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.telephone_event.as_ref().map(|c| c.payload_type)
    }
}

/// The answer we produce to an offer, and what it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer body to send.
    pub sdp: SessionDescription,
    /// The negotiated stream.
    pub negotiated: Negotiated,
}

/// RTP profiles we can answer: plain AVP and AVPF (no SRTP, no DTLS).
pub(super) fn is_supported_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

pub(super) fn push_codec_attrs(attrs: &mut Vec<Attribute>, c: &Codec) {
    attrs.push(Attribute::RtpMap(c.rtpmap()));
    if let Some(p) = &c.fmtp {
        attrs.push(Attribute::Fmtp(Fmtp { payload_type: c.payload_type, params: p.clone() }));
    }
}

/// Builds an offer with one audio m= line listing all of `caps.codecs` (duplicate payload
/// types skipped), their rtpmap/fmtp, ptime, optional rtcp-mux and `caps.direction`.
pub fn create_offer(caps: &LocalCapabilities, session_id: u64, version: u64) -> SessionDescription {
    let mut sdp = SessionDescription::new(Origin::new(&caps.username, session_id, version, caps.address));
    sdp.session_name = caps.session_name.clone();
    sdp.connection = Some(Connection::from_ip(caps.address));

    let mut seen = Vec::new();
    let proto = match caps.srtp.as_ref().map(|s| s.mode) {
        Some(SrtpMode::Mandatory) => "RTP/SAVP",
        _ => "RTP/AVP",
    };
    let mut m = MediaDescription::new("audio", caps.port, proto, Vec::new());
    for c in &caps.codecs {
        if seen.contains(&c.payload_type) {
            continue;
        }
        seen.push(c.payload_type);
        m.formats.push(c.payload_type.to_string());
        push_codec_attrs(&mut m.attributes, c);
    }
    m.attributes.push(Attribute::Ptime(caps.ptime));
    if caps.rtcp_mux {
        m.attributes.push(Attribute::RtcpMux);
    }
    for (i, (suite, key)) in caps.srtp.iter().flat_map(|s| &s.keys).enumerate() {
        m.attributes.push(sdes::attribute(i as u32 + 1, suite, key));
    }
    m.attributes.push(Attribute::Direction(caps.direction));
    sdp.media.push(m);
    sdp
}

pub(super) fn rejected(m: &MediaDescription) -> MediaDescription {
    MediaDescription::new(&m.media, 0, &m.proto, m.formats.clone())
}

/// Resolves the remote address and RFC 2543 hold flag of a stream.
pub(super) fn remote_endpoint(
    sdp: &SessionDescription,
    m: &MediaDescription,
) -> Result<(IpAddr, bool), OfferAnswerError> {
    let conn = sdp.media_connection(m).ok_or(OfferAnswerError::MissingConnection)?;
    let ip = conn.ip().ok_or_else(|| OfferAnswerError::UnsupportedAddress(conn.address.clone()))?;
    Ok((ip, ip.is_unspecified()))
}

pub(super) fn remote_rtcp(m: &MediaDescription, rtp: SocketAddr, mux: bool) -> SocketAddr {
    if mux {
        return rtp;
    }
    match m.rtcp() {
        Some(r) => {
            let ip = r.connection.as_ref().and_then(Connection::ip).unwrap_or(rtp.ip());
            SocketAddr::new(ip, r.port)
        }
        None => SocketAddr::new(rtp.ip(), rtp.port().checked_add(1).unwrap_or(rtp.port())),
    }
}

/// Picks the telephone-event format: among `candidates` (in order) those `accept` admits,
/// preferring the one whose clock matches the primary codec.
pub(super) fn pick_telephone_event(
    candidates: &[Codec],
    primary: &Codec,
    accept: impl Fn(&Codec) -> bool,
) -> Option<Codec> {
    let ok: Vec<&Codec> = candidates.iter().filter(|c| c.is_telephone_event() && accept(c)).collect();
    ok.iter().find(|c| c.clock_rate == primary.clock_rate).or(ok.first()).map(|c| (*c).clone())
}

/// Answers one offered audio stream; `Ok(None)` if there is no common codec.
pub(super) fn answer_stream(
    offer: &SessionDescription,
    m: &MediaDescription,
    index: usize,
    caps: &LocalCapabilities,
) -> Result<Option<(MediaDescription, Negotiated)>, OfferAnswerError> {
    let offered = m.codecs();
    // Common codecs, offerer's order and PTs; the second element is our own entry.
    let common: Vec<(&Codec, &Codec)> = offered
        .iter()
        .filter(|c| !c.is_telephone_event())
        .filter_map(|c| caps.supports(c).map(|ours| (c, ours)))
        .collect();
    let Some((primary, _)) = common.first() else {
        return Ok(None);
    };
    // SDES: the first offered crypto line of a suite we have a key for. An `RTP/SAVP` offer
    // needs one; so does any offer when SRTP is mandatory for us.
    let crypto = caps.srtp.as_ref().and_then(|ours| {
        sdes::cryptos(m)
            .into_iter()
            .find_map(|c| ours.keys.iter().find(|(s, _)| *s == c.suite).map(|(_, k)| (c.clone(), *k)))
    });
    let needs_crypto =
        sdes::is_secure_proto(&m.proto) || caps.srtp.as_ref().is_some_and(|s| s.mode == SrtpMode::Mandatory);
    if needs_crypto && crypto.is_none() {
        return Err(OfferAnswerError::NoCrypto);
    }
    let (ip, legacy_hold) = remote_endpoint(offer, m)?;
    let te = pick_telephone_event(&offered, primary, |c| caps.supports(c).is_some());

    let offered_dir = offer.effective_direction(m);
    let remote_direction = if legacy_hold { Direction::from_flags(offered_dir.sends(), false) } else { offered_dir };
    let local_direction = remote_direction.answer_with(caps.direction);

    let mut ptime = offer.effective_ptime(m).unwrap_or(caps.ptime);
    if let Some(max) = m.maxptime() {
        ptime = ptime.min(max);
    }
    let rtcp_mux = m.rtcp_mux();
    let remote_rtp = SocketAddr::new(ip, m.port);

    // Answer m= line: offered PTs and names, our fmtp (it describes what we receive).
    let mut answer = MediaDescription::new(&m.media, caps.port, &m.proto, Vec::new());
    let te_pair = te.as_ref().and_then(|t| caps.supports(t).map(|ours| (t, ours)));
    for (theirs, ours) in common.iter().copied().chain(te_pair) {
        answer.formats.push(theirs.payload_type.to_string());
        let mut c = theirs.clone();
        c.fmtp.clone_from(&ours.fmtp);
        push_codec_attrs(&mut answer.attributes, &c);
    }
    answer.attributes.push(Attribute::Ptime(ptime));
    if rtcp_mux {
        answer.attributes.push(Attribute::RtcpMux);
    }
    if let Some((c, key)) = &crypto {
        answer.attributes.push(sdes::attribute(c.tag, c.suite, key));
    }
    answer.attributes.push(Attribute::Direction(local_direction));

    let negotiated = Negotiated {
        media_index: index,
        remote_rtp,
        remote_rtcp: remote_rtcp(m, remote_rtp, rtcp_mux),
        codec: (*primary).clone(),
        codecs: common.iter().map(|(c, _)| (*c).clone()).collect(),
        telephone_event: te,
        ptime,
        local_direction,
        remote_direction,
        rtcp_mux,
        srtp: crypto.map(|(c, ours)| SdesKeys { suite: c.suite, ours, theirs: c.key }),
    };
    Ok(Some((answer, negotiated)))
}

/// Answers an offer (RFC 3264 §6): one m= line per offered one, in order. The first audio
/// stream on RTP/AVP(F) with a non-zero port and a common codec is accepted, keeping the
/// offerer's codec order and payload types; every other stream gets port 0 with its formats.
/// `Err(NoCommonCodec)` if no audio stream can be accepted.
pub fn create_answer(
    offer: &SessionDescription,
    caps: &LocalCapabilities,
    session_id: u64,
    version: u64,
) -> Result<Answer, OfferAnswerError> {
    let mut sdp = SessionDescription::new(Origin::new(&caps.username, session_id, version, caps.address));
    sdp.session_name = caps.session_name.clone();
    sdp.connection = Some(Connection::from_ip(caps.address));

    let (mut negotiated, mut refused_crypto) = (None, false);
    for (index, m) in offer.media.iter().enumerate() {
        let secure_ok = caps.srtp.is_some() && sdes::is_secure_proto(&m.proto);
        if negotiated.is_none() && m.port != 0 && m.is_audio() && (is_supported_proto(&m.proto) || secure_ok) {
            match answer_stream(offer, m, index, caps) {
                Ok(Some((answer_m, n))) => {
                    sdp.media.push(answer_m);
                    negotiated = Some(n);
                    continue;
                }
                Ok(None) => {}
                Err(OfferAnswerError::NoCrypto) => refused_crypto = true,
                Err(e) => return Err(e),
            }
        }
        sdp.media.push(rejected(m));
    }
    let negotiated = match negotiated {
        Some(n) => n,
        None if refused_crypto => return Err(OfferAnswerError::NoCrypto),
        None => return Err(OfferAnswerError::NoCommonCodec),
    };
    Ok(Answer { sdp, negotiated })
}

/// Applies the peer's answer to our offer (UAC side, 183/200/ACK): the first audio stream
/// both sides kept, its first answered codec that we offered (with the answer's PT), the
/// telephone-event format, addresses and directions.
pub fn negotiate_from_answer(
    our_offer: &SessionDescription,
    their_answer: &SessionDescription,
) -> Result<Negotiated, OfferAnswerError> {
    if our_offer.media.len() != their_answer.media.len() {
        return Err(OfferAnswerError::MediaCountMismatch {
            offered: our_offer.media.len(),
            answered: their_answer.media.len(),
        });
    }
    for (index, (om, am)) in our_offer.media.iter().zip(&their_answer.media).enumerate() {
        if om.port == 0 || am.port == 0 || !om.is_audio() || !am.is_audio() {
            continue;
        }
        let offered = om.codecs();
        let answered = am.codecs();
        let was_offered = |c: &Codec| offered.iter().any(|o| o.same_encoding(c));
        let common: Vec<Codec> =
            answered.iter().filter(|c| !c.is_telephone_event() && was_offered(c)).cloned().collect();
        let Some(primary) = common.first().cloned() else {
            continue;
        };
        let te = pick_telephone_event(&answered, &primary, was_offered);
        let (ip, legacy_hold) = remote_endpoint(their_answer, am)?;
        let answered_dir = their_answer.effective_direction(am);
        let remote_direction =
            if legacy_hold { Direction::from_flags(answered_dir.sends(), false) } else { answered_dir };
        let ours = our_offer.effective_direction(om);
        let local_direction = Direction::from_flags(
            ours.sends() && remote_direction.receives(),
            ours.receives() && remote_direction.sends(),
        );
        let mut ptime = their_answer.effective_ptime(am).or_else(|| our_offer.effective_ptime(om)).unwrap_or(20);
        if let Some(max) = am.maxptime() {
            ptime = ptime.min(max);
        }
        let rtcp_mux = om.rtcp_mux() && am.rtcp_mux();
        let remote_rtp = SocketAddr::new(ip, am.port);
        // SDES: the answer's crypto line must name one of ours (tag and suite); required
        // when we offered RTP/SAVP.
        let offered_keys = sdes::cryptos(om);
        let srtp = sdes::cryptos(am).into_iter().find_map(|a| {
            offered_keys.iter().find(|o| o.tag == a.tag && o.suite == a.suite).map(|o| SdesKeys {
                suite: o.suite,
                ours: o.key,
                theirs: a.key,
            })
        });
        if srtp.is_none() && sdes::is_secure_proto(&om.proto) {
            return Err(OfferAnswerError::NoCrypto);
        }
        return Ok(Negotiated {
            media_index: index,
            remote_rtp,
            remote_rtcp: remote_rtcp(am, remote_rtp, rtcp_mux),
            codec: primary,
            codecs: common,
            telephone_event: te,
            ptime,
            local_direction,
            remote_direction,
            rtcp_mux,
            srtp,
        });
    }
    Err(OfferAnswerError::NoCommonCodec)
}

/// Our answer to a new offer inside an established session (a re-INVITE or UPDATE, RFC
/// 3264 §8): what we sent last (`last`), each media section's direction set per §6.1 from
/// the offer's (hold: a `sendonly` offer is answered `recvonly`, `inactive` with
/// `inactive`; resume: `sendrecv` with `sendrecv`), and the origin's version one up when
/// that changed anything (§8: the version increases with each change, and only then).
pub fn reanswer(last: &str, offer: &str) -> Result<SessionDescription, SdpError> {
    let mut ours = SessionDescription::parse(last)?;
    let theirs = SessionDescription::parse(offer)?;
    let before = ours.to_string();
    ours.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
    for (i, m) in ours.media.iter_mut().enumerate() {
        let Some(offered) = theirs.media.get(i) else { continue };
        let dir = answer_direction(&theirs, offered);
        m.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
        m.attributes.push(Attribute::Direction(dir));
    }
    if ours.to_string() != before {
        ours.origin.session_version += 1;
    }
    Ok(ours)
}

/// The direction we answer a stream of an offer with (RFC 3264 §6.1): their `sendonly` makes
/// us `recvonly`, `inactive` stays `inactive`, and so on; we would send and receive.
pub fn answer_direction(offer: &SessionDescription, m: &MediaDescription) -> Direction {
    offer.effective_direction(m).answer_with(Direction::SendRecv)
}

/// What a new offer inside a call (re-INVITE, UPDATE) asks of our media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reoffer {
    /// Where the peer now wants RTP; `None` for a hold by `c=0.0.0.0` or port 0.
    pub remote: Option<SocketAddr>,
    /// The direction of our answer.
    pub direction: Direction,
}

/// Reads a new offer's first audio stream, the one our media runs (the same reading
/// [`reanswer`] answers with). `None` when it has no audio stream.
pub fn read_reoffer(offer: &SessionDescription) -> Option<Reoffer> {
    let m = offer.media.iter().find(|m| m.media == "audio")?;
    let ip: Option<IpAddr> = offer.media_connection(m).and_then(|c| c.address.split('/').next()?.parse().ok());
    let remote = ip.filter(|ip| !ip.is_unspecified() && m.port != 0).map(|ip| SocketAddr::new(ip, m.port));
    Some(Reoffer { remote, direction: answer_direction(offer, m) })
}

/// Our new offer to put the peer on hold (`sendonly` on every stream, RFC 3264 §8.4) or
/// take it off (`sendrecv`), from the last description we sent; the `o=` version one up.
pub fn hold_offer(last: &str, on: bool) -> Result<SessionDescription, SdpError> {
    let mut sdp = SessionDescription::parse(last)?;
    let dir = if on { Direction::SendOnly } else { Direction::SendRecv };
    sdp.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
    for m in &mut sdp.media {
        m.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
        m.attributes.push(Attribute::Direction(dir));
    }
    sdp.origin.session_version += 1;
    Ok(sdp)
}
