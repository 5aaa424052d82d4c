//! SDP tests: the fixtures parse, round-trip and negotiate.

use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const SIPP_DEFAULT: &str = include_str!("../../../fixtures/sdp/sipp_uac_default.sdp");
const BARESIP: &str = include_str!("../../../fixtures/sdp/baresip_offer.sdp");
const CARRIER: &str = include_str!("../../../fixtures/sdp/carrier_offer.sdp");
const WEBRTC: &str = include_str!("../../../fixtures/sdp/webrtc_like_offer.sdp");
const HOLD_SENDONLY: &str = include_str!("../../../fixtures/sdp/hold_sendonly.sdp");
const HOLD_LEGACY: &str = include_str!("../../../fixtures/sdp/hold_c_zero.sdp");

const FIXTURES: &[(&str, &str)] = &[
    ("sipp_uac_default", SIPP_DEFAULT),
    ("baresip_offer", BARESIP),
    ("carrier_offer", CARRIER),
    ("webrtc_like_offer", WEBRTC),
    ("hold_sendonly", HOLD_SENDONLY),
    ("hold_c_zero", HOLD_LEGACY),
];

fn caps() -> LocalCapabilities {
    LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)), 40000)
}

fn sdp(s: &str) -> SessionDescription {
    SessionDescription::parse(s).expect("test SDP parses")
}

fn answer(offer: &str) -> Answer {
    create_answer(&sdp(offer), &caps(), 7, 1).expect("answerable")
}

/// A small offer: `fmts` on the m= line plus the given attribute lines.
fn offer_with(m_line: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
         {m_line}\r\n{extra}"
    )
}

// ---- parser -------------------------------------------------------------------------

#[test]
fn parses_sipp_default() {
    let d = sdp(SIPP_DEFAULT);
    assert_eq!(d.origin.username, "user1");
    assert_eq!(d.origin.session_id, "53655765");
    assert_eq!(d.origin.session_version, 2353687637);
    assert_eq!(d.origin.addr_type, "IP4");
    assert_eq!(d.session_name, "-");
    assert_eq!(d.connection.as_ref().and_then(Connection::ip), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(d.media.len(), 1);
    let m = &d.media[0];
    assert_eq!((m.media.as_str(), m.port, m.proto.as_str()), ("audio", 6000, "RTP/AVP"));
    assert_eq!(m.formats, vec!["0"]);
    assert_eq!(m.codecs(), vec![Codec::pcmu()]);
}

#[test]
fn lf_and_crlf_give_same_result() {
    let lf = SIPP_DEFAULT.replace("\r\n", "\n");
    let crlf = lf.replace('\n', "\r\n");
    assert_eq!(sdp(&lf), sdp(&crlf));
}

#[test]
fn empty_or_missing_session_name_becomes_dash() {
    let empty = SIPP_DEFAULT.replace("s=-", "s=");
    assert_eq!(sdp(&empty).session_name, "-");
    let missing = SIPP_DEFAULT.replace("s=-\r\n", "");
    assert_eq!(sdp(&missing).session_name, "-");
    assert!(sdp(&empty).to_string().contains("\r\ns=-\r\n"));
}

#[test]
fn missing_timing_defaults_to_zero() {
    let d = sdp(&SIPP_DEFAULT.replace("t=0 0\r\n", ""));
    assert_eq!(d.timings.len(), 1);
    assert_eq!((d.timings[0].start, d.timings[0].stop), (0, 0));
}

#[test]
fn odd_origin_username_and_huge_session_id() {
    let d = sdp("v=0\no=Sonus UAC 184467440737095516150 3 IN IP4 203.0.113.9\ns=x\nt=0 0\n\
         m=audio 1000 RTP/AVP 0\nc=IN IP4 203.0.113.9\n");
    assert_eq!(d.origin.username, "Sonus UAC");
    assert_eq!(d.origin.session_id, "184467440737095516150");
    assert_eq!(d.origin.session_version, 3);
    // Connection only at media level.
    assert!(d.connection.is_none());
    assert!(d.media[0].connection.is_some());
    assert_eq!(sdp(&d.to_string()), d);
}

#[test]
fn unknown_lines_and_attributes_preserved_or_skipped() {
    let body = offer_with(
        "m=audio 4000 RTP/AVP 0 18",
        "a=silenceSupp:off - - - -\r\na=X-nat:0\r\na=ice-lite\r\ny=unknown\r\ngarbage\r\n",
    );
    let d = sdp(&body);
    let attrs = &d.media[0].attributes;
    assert_eq!(attrs[0], Attribute::value("silenceSupp", "off - - - -"));
    assert_eq!(attrs[1], Attribute::value("X-nat", "0"));
    assert_eq!(attrs[2], Attribute::flag("ice-lite"));
    let out = d.to_string();
    assert!(out.contains("a=silenceSupp:off - - - -\r\n"));
    assert!(!out.contains("garbage"));
}

#[test]
fn typed_attributes() {
    let d = sdp(&offer_with(
        "m=audio 4000 RTP/AVP 96 101",
        "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1; stereo=0\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20.0\r\na=maxptime:40\r\n\
         a=rtcp:4001 IN IP4 198.51.100.8\r\na=rtcp-mux\r\na=recvonly\r\na=ptime:abc\r\n",
    ));
    let m = &d.media[0];
    assert_eq!(
        m.rtpmap(96),
        Some(&RtpMap { payload_type: 96, encoding: "opus".into(), clock_rate: 48000, channels: Some(2) })
    );
    assert_eq!(m.fmtp(96), Some("useinbandfec=1; stereo=0"));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.maxptime(), Some(40));
    assert_eq!(m.rtcp().map(|r| r.port), Some(4001));
    assert!(m.rtcp_mux());
    assert_eq!(m.direction(), Some(Direction::RecvOnly));
    assert_eq!(m.attributes.last(), Some(&Attribute::value("ptime", "abc")), "unparsable typed attribute kept raw");
}

#[test]
fn static_pt_without_rtpmap() {
    let d = sdp(&offer_with("m=audio 4000 RTP/AVP 18 3 9 13 0 8 99", ""));
    let names: Vec<_> = d.media[0].codecs().into_iter().map(|c| c.name).collect();
    // 99 is dynamic without rtpmap: unknown, skipped.
    assert_eq!(names, ["G729", "GSM", "G722", "CN", "PCMU", "PCMA"]);
    assert_eq!(static_codec(9).map(|c| c.clock_rate), Some(8000));
    assert_eq!(static_payload_type("pcma", 8000, 1), Some(8));
    assert_eq!(static_payload_type("opus", 48000, 2), None);
}

#[test]
fn rtpmap_names_case_insensitive() {
    let body = offer_with("m=audio 4000 RTP/AVP 97 0", "a=rtpmap:97 OPUS/48000/2\r\na=rtpmap:0 pcmu/8000\r\n");
    let a = answer(&body);
    assert_eq!(a.negotiated.codec.payload_type, 97);
    assert_eq!(a.negotiated.codec.name, "OPUS");
    assert_eq!(a.negotiated.codecs.len(), 2);
    // Our opus fmtp is in the answer under the offerer's PT.
    assert!(a.sdp.to_string().contains("a=fmtp:97 useinbandfec=1\r\n"));
}

#[test]
fn ipv6_connection() {
    let body = "v=0\r\no=- 5 5 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\n\
                m=audio 5004 RTP/AVP 8\r\n";
    let a = answer(body);
    let ip: IpAddr = "2001:db8::5".parse().unwrap();
    assert_eq!(a.negotiated.remote_rtp, SocketAddr::new(ip, 5004));
    assert_eq!(a.negotiated.remote_rtcp, SocketAddr::new(ip, 5005));
    // Our own side in IPv6 too.
    let mut c = caps();
    c.address = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let a = create_answer(&sdp(body), &c, 1, 1).unwrap();
    assert!(a.sdp.to_string().contains("c=IN IP6 ::1\r\n"));
    assert!(a.sdp.to_string().contains("o=dialtone 1 1 IN IP6 ::1\r\n"));
}

#[test]
fn malformed_bodies_error() {
    let cases: &[(&str, SdpError)] = &[
        ("", SdpError::Empty),
        ("\r\n \r\n", SdpError::Empty),
        ("v=1\r\n", SdpError::BadVersion),
        ("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", SdpError::BadVersion),
        ("hello world", SdpError::BadVersion),
        ("v=0\r\ns=-\r\n", SdpError::MissingOrigin),
        ("v=0\r\no=- 1 IN IP4 x\r\n", SdpError::BadOrigin { line: 2 }),
        ("v=0\r\no=- 1 x IN IP4 h\r\n", SdpError::BadOrigin { line: 2 }),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n", SdpError::BadConnection { line: 3 }),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5\r\n", SdpError::BadMedia { line: 3 }),
        ("v=0\no=- 1 1 IN IP4 h\nm=audio abc RTP/AVP 0\n", SdpError::BadPort { line: 3 }),
        ("v=0\no=- 1 1 IN IP4 h\nm=audio 70000 RTP/AVP 0\n", SdpError::BadPort { line: 3 }),
        ("v=0\no=- 1 1 IN IP4 h\nm=audio 5/x RTP/AVP 0\n", SdpError::BadPort { line: 3 }),
        ("v=0\no=- 1 1 IN IP4 h\nm=audio 5 RTP/AVP 0\nc=IN\n", SdpError::BadConnection { line: 4 }),
    ];
    for (body, want) in cases {
        assert_eq!(SessionDescription::parse(body).as_ref(), Err(want), "{body:?}");
    }
}

#[test]
fn weird_input_never_panics() {
    let weird = [
        "v=0\r\no=é ü 1 1 IN IP4 ∂\r\n€=x\r\na=\r\na=:\r\na=rtpmap:\r\na=rtpmap:0\r\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio 0 x\na=rtpmap:999 X/Y/Z/W\na=fmtp:\na=rtcp:\nb=\nb=AS:\nt=\nr=1\n",
        "\u{feff}v=0\no=- 1 1 IN IP4 h\nm=audio 1 RTP/AVP 255 -1 a 96\na=rtpmap:96 x/0\n",
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 not-an-ip\nm=audio 1 RTP/AVP 0\n",
        "v=0\r\r\no=- 1 1 IN IP4 h\r\r\n=\n==\na\nm\n",
    ];
    for w in weird {
        if let Ok(d) = SessionDescription::parse(w) {
            let _ = create_answer(&d, &caps(), 1, 1);
            let _ = negotiate_from_answer(&d, &d);
            let again = SessionDescription::parse(&d.to_string()).expect("reparses");
            assert_eq!(again, d);
        }
    }
    // Every prefix and every single-line deletion of every fixture.
    for (_, text) in FIXTURES {
        for (i, _) in text.char_indices() {
            if let Ok(d) = SessionDescription::parse(&text[..i]) {
                let _ = create_answer(&d, &caps(), 1, 1);
            }
        }
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let body: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, l)| *l).collect();
            if let Ok(d) = SessionDescription::parse(&body.join("\n")) {
                let _ = create_answer(&d, &caps(), 1, 1);
                let _ = negotiate_from_answer(&d, &d);
            }
        }
    }
}

#[test]
fn hostname_connection_is_unsupported_address() {
    let body = "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 media.example.net\nt=0 0\nm=audio 1 RTP/AVP 0\n";
    assert_eq!(
        create_answer(&sdp(body), &caps(), 1, 1).err(),
        Some(OfferAnswerError::UnsupportedAddress("media.example.net".into()))
    );
    let no_c = "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\n";
    assert_eq!(create_answer(&sdp(no_c), &caps(), 1, 1).err(), Some(OfferAnswerError::MissingConnection));
}

// ---- round trip ---------------------------------------------------------------------

#[test]
fn fixtures_round_trip() {
    for (name, text) in FIXTURES {
        let a = SessionDescription::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = a.to_string();
        let b = SessionDescription::parse(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a, b, "{name}");
        assert_eq!(out, b.to_string(), "{name}");
        assert!(out.ends_with("\r\n") && !out.replace("\r\n", "").contains('\n'), "{name}");
        // Nothing dropped: same number of a= and m= lines as the input.
        for prefix in ["a=", "m=", "b=", "c="] {
            let count = |s: &str| s.lines().filter(|l| l.starts_with(prefix)).count();
            assert_eq!(count(text), count(&out), "{name}: {prefix} lines");
        }
    }
}

#[test]
fn serializer_order() {
    let body = "v=0\nm=audio 1 RTP/AVP 0\n"; // m before o: o is ignored at media level
    assert_eq!(SessionDescription::parse(body), Err(SdpError::MissingOrigin));
    let d = sdp("v=0\na=tool:x\nt=1 2\nr=604800 3600 0\nk=prompt\nb=AS:1\nc=IN IP4 192.0.2.1\n\
         p=+1 555 0100\ne=a@example.com\nu=http://example.com/s\ni=info\ns=S\n\
         o=- 1 1 IN IP4 192.0.2.1\nz=2882844526 -1h\n");
    assert_eq!(
        d.to_string(),
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=S\r\ni=info\r\nu=http://example.com/s\r\n\
         e=a@example.com\r\np=+1 555 0100\r\nc=IN IP4 192.0.2.1\r\nb=AS:1\r\nt=1 2\r\n\
         r=604800 3600 0\r\nz=2882844526 -1h\r\nk=prompt\r\na=tool:x\r\n"
    );
}

// ---- offer --------------------------------------------------------------------------

#[test]
fn default_offer() {
    let offer = create_offer(&caps(), 42, 1);
    let text = offer.to_string();
    assert_eq!(
        text,
        "v=0\r\no=dialtone 42 1 IN IP4 192.0.2.200\r\ns=dialtone\r\nc=IN IP4 192.0.2.200\r\n\
         t=0 0\r\nm=audio 40000 RTP/AVP 0 8 111 9 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n\
         a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n\
         a=sendrecv\r\n"
    );
    assert_eq!(sdp(&text), offer);
}

#[test]
fn hold_offer_and_rtcp_mux_option() {
    let mut c = caps();
    c.direction = Direction::SendOnly;
    c.rtcp_mux = true;
    c.codecs.push(Codec::new("PCMU", 8000, 1, 0)); // duplicate PT skipped
    let offer = create_offer(&c, 42, 2);
    assert_eq!(offer.media[0].direction(), Some(Direction::SendOnly));
    assert!(offer.media[0].rtcp_mux());
    assert_eq!(offer.media[0].formats, ["0", "8", "111", "9", "101"]);
}

// ---- answer -------------------------------------------------------------------------

#[test]
fn sipp_default_answer_pcmu() {
    let a = answer(SIPP_DEFAULT);
    let n = &a.negotiated;
    assert_eq!(n.codec, Codec::pcmu());
    assert_eq!(n.remote_rtp, "127.0.0.1:6000".parse().unwrap());
    assert_eq!(n.remote_rtcp, "127.0.0.1:6001".parse().unwrap());
    assert_eq!(n.telephone_event, None);
    assert_eq!(n.ptime, 20);
    assert_eq!((n.local_direction, n.remote_direction), (Direction::SendRecv, Direction::SendRecv));
    assert!(!n.rtcp_mux);
    assert_eq!(
        a.sdp.to_string(),
        "v=0\r\no=dialtone 7 1 IN IP4 192.0.2.200\r\ns=dialtone\r\nc=IN IP4 192.0.2.200\r\n\
         t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n\
         a=sendrecv\r\n"
    );
}

#[test]
fn dynamic_pts_of_offer_kept() {
    let body = offer_with(
        "m=audio 4000 RTP/AVP 96 100",
        "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 maxplaybackrate=16000\r\n\
         a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\n",
    );
    let a = answer(&body);
    let n = &a.negotiated;
    assert_eq!(n.codec.payload_type, 96);
    assert_eq!(n.codec.name, "opus");
    assert_eq!((n.codec.clock_rate, n.codec.channels), (48000, 2));
    assert_eq!(n.codec.fmtp.as_deref(), Some("maxplaybackrate=16000"), "peer's fmtp");
    assert_eq!(n.telephone_event_pt(), Some(100));
    let m = &a.sdp.media[0];
    assert_eq!(m.formats, ["96", "100"]);
    assert_eq!(m.rtpmap(96).map(|r| r.clock_rate), Some(48000));
    assert_eq!(m.fmtp(100), Some("0-16"));
    assert!(m.rtpmap(111).is_none() && m.rtpmap(101).is_none());
}

#[test]
fn offerer_order_honoured() {
    let a = answer(&offer_with("m=audio 4000 RTP/AVP 8 0", ""));
    assert_eq!(a.negotiated.codec, Codec::pcma());
    assert_eq!(a.sdp.media[0].formats, ["8", "0"]);
    let a = answer(&offer_with("m=audio 4000 RTP/AVP 0 8", ""));
    assert_eq!(a.negotiated.codec, Codec::pcmu());
}

#[test]
fn directions_per_rfc3264() {
    for (offered, expect_local, expect_remote) in [
        ("a=sendonly\r\n", Direction::RecvOnly, Direction::SendOnly),
        ("a=recvonly\r\n", Direction::SendOnly, Direction::RecvOnly),
        ("a=inactive\r\n", Direction::Inactive, Direction::Inactive),
        ("a=sendrecv\r\n", Direction::SendRecv, Direction::SendRecv),
        ("", Direction::SendRecv, Direction::SendRecv),
    ] {
        let a = answer(&offer_with("m=audio 4000 RTP/AVP 0", offered));
        assert_eq!(a.negotiated.local_direction, expect_local, "{offered:?}");
        assert_eq!(a.negotiated.remote_direction, expect_remote, "{offered:?}");
        assert_eq!(a.sdp.media[0].direction(), Some(expect_local));
    }
    // Session-level direction applies when the m= line has none.
    let body = SIPP_DEFAULT.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    assert_eq!(answer(&body).negotiated.local_direction, Direction::RecvOnly);
    // Our configured direction is intersected in.
    let mut c = caps();
    c.direction = Direction::SendOnly;
    let a = create_answer(&sdp(SIPP_DEFAULT), &c, 1, 1).unwrap();
    assert_eq!(a.negotiated.local_direction, Direction::SendOnly);
    let a = create_answer(&sdp(HOLD_SENDONLY), &c, 1, 1).unwrap();
    assert_eq!(a.negotiated.local_direction, Direction::Inactive);
}

#[test]
fn hold_fixtures() {
    let a = answer(HOLD_SENDONLY);
    assert_eq!(a.negotiated.local_direction, Direction::RecvOnly);
    let a = answer(HOLD_LEGACY);
    assert!(a.negotiated.remote_rtp.ip().is_unspecified());
    assert_eq!(a.negotiated.remote_direction, Direction::SendOnly);
    assert_eq!(a.negotiated.local_direction, Direction::RecvOnly);
    assert!(sdp(HOLD_LEGACY).connection.as_ref().is_some_and(Connection::is_hold));
}

#[test]
fn video_rejected_audio_accepted() {
    let body = offer_with(
        "m=video 5000 RTP/AVP 96",
        "a=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 0 101\r\n\
         a=rtpmap:101 telephone-event/8000\r\nm=audio 4002 RTP/AVP 8\r\n",
    );
    let a = answer(&body);
    assert_eq!(a.sdp.media.len(), 3);
    let v = &a.sdp.media[0];
    assert_eq!((v.media.as_str(), v.port, v.formats.clone()), ("video", 0, vec!["96".to_string()]));
    assert_eq!(a.sdp.media[1].port, 40000);
    assert_eq!(a.sdp.media[1].formats, ["0", "101"]);
    // Only the first acceptable audio stream is taken.
    assert_eq!((a.sdp.media[2].port, a.sdp.media[2].formats.clone()), (0, vec!["8".to_string()]));
    assert_eq!(a.negotiated.media_index, 1);
    assert_eq!(a.negotiated.telephone_event_pt(), Some(101));
}

#[test]
fn port_zero_and_unknown_proto_rejected() {
    let body =
        offer_with("m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/SAVP 0\r\nm=audio 4002 RTP/AVPF 8 0\r\na=rtcp-mux\r\n");
    let a = answer(&body);
    let ports: Vec<u16> = a.sdp.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 0, 40000]);
    assert_eq!(a.sdp.media[1].proto, "RTP/SAVP");
    assert_eq!(a.sdp.media[2].proto, "RTP/AVPF");
    assert!(a.negotiated.rtcp_mux && a.sdp.media[2].rtcp_mux());
    assert_eq!(a.negotiated.remote_rtcp, a.negotiated.remote_rtp);
    assert_eq!(a.negotiated.codec, Codec::pcma());
}

#[test]
fn no_common_codec_is_error() {
    let body = offer_with("m=audio 4000 RTP/AVP 18 4 101", "a=rtpmap:101 telephone-event/8000\r\n");
    assert_eq!(create_answer(&sdp(&body), &caps(), 1, 1).err(), Some(OfferAnswerError::NoCommonCodec));
    let video_only = offer_with("m=video 5000 RTP/AVP 31", "");
    assert_eq!(create_answer(&sdp(&video_only), &caps(), 1, 1).err(), Some(OfferAnswerError::NoCommonCodec));
    // WebRTC DTLS-SRTP is not something we answer.
    assert_eq!(create_answer(&sdp(WEBRTC), &caps(), 1, 1).err(), Some(OfferAnswerError::NoCommonCodec));
}

#[test]
fn telephone_event_clock_matching() {
    // te/48000 is not in our caps; te/8000 is.
    let body = offer_with(
        "m=audio 4000 RTP/AVP 111 110 126",
        "a=rtpmap:111 opus/48000/2\r\na=rtpmap:110 telephone-event/48000\r\n\
         a=rtpmap:126 telephone-event/8000\r\n",
    );
    assert_eq!(answer(&body).negotiated.telephone_event_pt(), Some(126));
    // With both supported, the one matching the primary codec's clock wins.
    let mut c = caps();
    c.codecs.push(Codec::new("telephone-event", 48000, 1, 102));
    let a = create_answer(&sdp(&body), &c, 1, 1).unwrap();
    assert_eq!(a.negotiated.telephone_event_pt(), Some(110));
    assert_eq!(a.sdp.media[0].formats, ["111", "110"]);
    // Offered but not supported by us: no te.
    let mut c = caps();
    c.codecs.retain(|x| !x.is_telephone_event());
    let a = create_answer(&sdp(&body), &c, 1, 1).unwrap();
    assert_eq!(a.negotiated.telephone_event, None);
}

#[test]
fn ptime_echo_and_maxptime() {
    let a = answer(CARRIER);
    assert_eq!(a.negotiated.ptime, 20);
    assert_eq!(a.negotiated.codec, Codec::pcmu());
    assert_eq!(a.negotiated.telephone_event_pt(), Some(101));
    assert_eq!(a.negotiated.remote_rtp, "203.0.113.46:21458".parse().unwrap());
    let a = answer(&offer_with("m=audio 4000 RTP/AVP 0", "a=ptime:30\r\n"));
    assert_eq!(a.negotiated.ptime, 30);
    assert_eq!(a.sdp.media[0].ptime(), Some(30));
    let mut c = caps();
    c.ptime = 60;
    let a = create_answer(&sdp(&offer_with("m=audio 4000 RTP/AVP 0", "a=maxptime:40\r\n")), &c, 1, 1).unwrap();
    assert_eq!(a.negotiated.ptime, 40);
}

#[test]
fn baresip_offer_answer() {
    let a = answer(BARESIP);
    let n = &a.negotiated;
    assert_eq!((n.codec.name.as_str(), n.codec.payload_type), ("opus", 96));
    let pts: Vec<u8> = n.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [96, 9, 0, 8], "offerer order kept");
    assert_eq!(n.telephone_event_pt(), Some(101));
    assert_eq!(n.remote_rtcp, "192.0.2.10:10267".parse().unwrap());
    assert_eq!(a.sdp.media[0].formats, ["96", "9", "0", "8", "101"]);
    let reparsed = sdp(&a.sdp.to_string());
    assert_eq!(reparsed, a.sdp);
}

#[test]
fn g722_offers_are_answered_with_g722() {
    // A phone offering G.722 alone, by its static payload type (no rtpmap), with DTMF.
    let a = answer(&offer_with("m=audio 4000 RTP/AVP 9 101", "a=rtpmap:101 telephone-event/8000\r\n"));
    let n = &a.negotiated;
    assert_eq!(n.codec, Codec::g722());
    assert_eq!(n.codec.clock_rate, 8000, "RFC 3551 §4.5.2");
    assert_eq!(n.telephone_event_pt(), Some(101));
    assert!(a.sdp.to_string().contains("m=audio 40000 RTP/AVP 9 101\r\na=rtpmap:9 G722/8000\r\n"));
    // Offered next to G.711 and Opus, the offerer's order decides.
    let a = answer(&offer_with("m=audio 4000 RTP/AVP 9 0 8", ""));
    assert_eq!(a.negotiated.codec.name, "G722");
    let a = answer(&offer_with("m=audio 4000 RTP/AVP 0 9", ""));
    assert_eq!(a.negotiated.codec.name, "PCMU");
}

// ---- UAC side -----------------------------------------------------------------------

#[test]
fn negotiate_g722_from_answer() {
    let offer = create_offer(&caps(), 1, 1);
    let ans = "v=0\r\no=peer 9 9 IN IP4 198.51.100.20\r\ns=-\r\nt=0 0\r\n\
               m=audio 30000 RTP/AVP 9 101\r\nc=IN IP4 198.51.100.20\r\na=rtpmap:9 G722/8000\r\n\
               a=rtpmap:101 telephone-event/8000\r\n";
    let n = negotiate_from_answer(&offer, &sdp(ans)).unwrap();
    assert_eq!(n.codec, Codec::g722());
    assert_eq!(n.telephone_event_pt(), Some(101));
}

#[test]
fn negotiate_from_answer_uac() {
    let offer = create_offer(&caps(), 1, 1);
    // Peer answers PCMA first, then PCMU, with DTMF, and sendonly.
    let ans = "v=0\r\no=peer 9 9 IN IP4 198.51.100.20\r\ns=-\r\nt=0 0\r\n\
               m=audio 30000 RTP/AVP 8 0 101\r\nc=IN IP4 198.51.100.20\r\n\
               a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendonly\r\n";
    let n = negotiate_from_answer(&offer, &sdp(ans)).unwrap();
    assert_eq!(n.codec, Codec::pcma());
    assert_eq!(n.codecs.len(), 2);
    assert_eq!(n.telephone_event_pt(), Some(101));
    assert_eq!(n.remote_rtp, "198.51.100.20:30000".parse().unwrap());
    assert_eq!(n.remote_direction, Direction::SendOnly);
    assert_eq!(n.local_direction, Direction::RecvOnly);
    assert_eq!(n.ptime, 20, "from our offer");
    assert!(!n.rtcp_mux);

    // A full round: our offer answered by our own answerer.
    let a = create_answer(&offer, &caps(), 2, 1).unwrap();
    let n = negotiate_from_answer(&offer, &a.sdp).unwrap();
    assert_eq!(n.codec, Codec::pcmu());
    assert_eq!(n.remote_rtp, "192.0.2.200:40000".parse().unwrap());
    assert_eq!(n.telephone_event_pt(), Some(101));
}

#[test]
fn negotiate_from_answer_errors() {
    let offer = create_offer(&caps(), 1, 1);
    let two = offer_with("m=audio 3000 RTP/AVP 0", "m=video 0 RTP/AVP 31\r\n");
    assert_eq!(
        negotiate_from_answer(&offer, &sdp(&two)),
        Err(OfferAnswerError::MediaCountMismatch { offered: 1, answered: 2 })
    );
    let rejected = offer_with("m=audio 0 RTP/AVP 0", "");
    assert_eq!(negotiate_from_answer(&offer, &sdp(&rejected)), Err(OfferAnswerError::NoCommonCodec));
    let foreign = offer_with("m=audio 3000 RTP/AVP 18", "");
    assert_eq!(negotiate_from_answer(&offer, &sdp(&foreign)), Err(OfferAnswerError::NoCommonCodec));
}

#[test]
fn direction_helpers() {
    assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
    assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
    assert_eq!(Direction::SendRecv.answer_with(Direction::Inactive), Direction::Inactive);
    assert_eq!(Direction::parse("SENDONLY"), Some(Direction::SendOnly));
    assert_eq!(Direction::parse("both"), None);
}

#[test]
fn reanswer_mirrors_hold_and_resume_and_bumps_the_version_on_change() {
    let ours = "v=0\r\no=dialtone 7 3 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
    let offer = |dir: &str| {
        format!("v=0\r\no=peer 1 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na={dir}\r\n")
    };
    let hold = reanswer(ours, &offer("sendonly")).unwrap();
    assert_eq!(hold.media[0].direction(), Some(Direction::RecvOnly));
    assert_eq!(hold.origin.session_version, 4);
    let inactive = reanswer(&hold.to_string(), &offer("inactive")).unwrap();
    assert_eq!(inactive.media[0].direction(), Some(Direction::Inactive));
    assert_eq!(inactive.origin.session_version, 5);
    let resume = reanswer(&inactive.to_string(), &offer("sendrecv")).unwrap();
    assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));
    assert_eq!(resume.origin.session_version, 6);
    // The same offer again (a session refresh) changes nothing: same version.
    let again = reanswer(&resume.to_string(), &offer("sendrecv")).unwrap();
    assert_eq!(again.to_string(), resume.to_string());
    // recvonly from the peer: we only send.
    let r = reanswer(ours, &offer("recvonly")).unwrap();
    assert_eq!(r.media[0].direction(), Some(Direction::SendOnly));
}

#[test]
fn sdes_keys_cross_over_in_an_offer_and_its_answer() {
    use super::sdes::{Sdes, SrtpMode, SUITES};
    let with = |mode, seed: u8| {
        let mut c = caps();
        let keys = SUITES.iter().enumerate().map(|(i, s)| (*s, [seed + i as u8; 30])).collect();
        c.srtp = Some(Sdes { mode, keys });
        c
    };
    // Mandatory: RTP/SAVP with one crypto line per suite.
    let offer = create_offer(&with(SrtpMode::Mandatory, 1), 1, 1);
    let text = offer.to_string();
    assert!(text.contains("RTP/SAVP") && text.matches("a=crypto:").count() == 2, "{text}");
    // The answerer (optional) takes the first suite, answering with its own key.
    let a = create_answer(&sdp(&text), &with(SrtpMode::Optional, 50), 2, 1).unwrap();
    let theirs = a.negotiated.srtp.clone().expect("SRTP settled");
    assert_eq!((theirs.suite, theirs.ours, theirs.theirs), (SUITES[0], [50; 30], [1; 30]));
    let answer_text = a.sdp.to_string();
    assert!(answer_text.contains("RTP/SAVP") && answer_text.matches("a=crypto:1 ").count() == 1, "{answer_text}");
    let ours = negotiate_from_answer(&offer, &sdp(&answer_text)).unwrap().srtp.expect("SRTP settled");
    assert_eq!((ours.ours, ours.theirs), ([1; 30], [50; 30]), "each sends with its own key");
    // An RTP/SAVP offer to a plain dialtone, or a plain offer to a mandatory one: 488.
    assert_eq!(create_answer(&sdp(&text), &caps(), 2, 1).unwrap_err(), OfferAnswerError::NoCommonCodec);
    let plain = create_offer(&caps(), 1, 1).to_string();
    assert_eq!(
        create_answer(&sdp(&plain), &with(SrtpMode::Mandatory, 9), 2, 1).unwrap_err(),
        OfferAnswerError::NoCrypto
    );
    // Optional to optional over RTP/AVP (best effort): SRTP all the same; optional to a
    // plain peer: plain.
    let best = create_offer(&with(SrtpMode::Optional, 3), 1, 1);
    assert!(best.to_string().contains("RTP/AVP "), "{best}");
    assert!(create_answer(&sdp(&best.to_string()), &with(SrtpMode::Optional, 4), 2, 1)
        .unwrap()
        .negotiated
        .srtp
        .is_some());
    let plain_answer = create_answer(&sdp(&best.to_string()), &caps(), 2, 1).unwrap();
    assert!(plain_answer.negotiated.srtp.is_none());
    assert!(negotiate_from_answer(&best, &plain_answer.sdp).unwrap().srtp.is_none());
}
