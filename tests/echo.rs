//! Inbound `echo`: a call set up by hand over UDP gets its RTP back (symmetric RTP, our own
//! SSRC and sequence numbers, the payloads unchanged). A first media test; the issue 3
//! acceptance (baresip, SIPp pcap, tone checks in recordings) builds on it.

mod common;

use common::*;
use std::net::UdpSocket;
use std::time::Duration;

fn recv_response(sock: &UdpSocket, status: &str) -> String {
    let mut buf = [0u8; 4096];
    for _ in 0..10 {
        let (n, _) = sock.recv_from(&mut buf).expect("SIP response");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with(&format!("SIP/2.0 {status}")) {
            return text;
        }
    }
    panic!("no {status} response");
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':'))).map(str::trim).unwrap_or("")
}

#[test]
fn echo_returns_the_callers_rtp() {
    // Its own RTP range: the tests run in parallel, each with its own dialtone, and a port
    // this call frees must not be taken by the other server before the after-BYE check.
    let d = Dialtone::serve("echo", &[("DIALTONE_RTP_PORTS", "41000-41099")]);
    let (sip, rtp, media, target, bye) = setup_call(&d, "echo-test-1");
    rtp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();

    // 50 packets of PCMU paced at 20 ms, each payload one distinct µ-law code (codes
    // 1..=50 decode and re-encode to themselves), so the echo's order can be checked.
    let mut echoed = Vec::new();
    let mut buf = [0u8; 2048];
    let start = std::time::Instant::now();
    for i in 0..50u16 {
        let mut pkt = vec![0x80, 0x00];
        pkt.extend_from_slice(&(1000 + i).to_be_bytes());
        pkt.extend_from_slice(&(8000u32 + 160 * u32::from(i)).to_be_bytes());
        pkt.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        pkt.extend(std::iter::repeat_n(i as u8 + 1, 160));
        rtp.send_to(&pkt, &media).unwrap();
        let due = start + Duration::from_millis(20 * (u64::from(i) + 1));
        while let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            rtp.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).unwrap();
            if let Ok((n, _)) = rtp.recv_from(&mut buf) {
                echoed.push(buf[..n].to_vec());
            }
        }
    }
    // The echo trails by the jitter buffer's delay: collect the rest.
    rtp.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let until = std::time::Instant::now() + Duration::from_millis(400);
    while std::time::Instant::now() < until {
        if let Ok((n, _)) = rtp.recv_from(&mut buf) {
            echoed.push(buf[..n].to_vec());
        }
    }
    // dialtone sends a packet every 20 ms from the answer, silence (0xFF) until the
    // caller's audio comes back through the jitter buffer.
    assert!(echoed.len() >= 50, "{} packets back", echoed.len());
    for p in &echoed {
        assert_eq!(p[0] >> 6, 2, "RTP version");
        assert_eq!(p[1] & 0x7f, 0, "PCMU");
        assert_ne!(&p[8..12], &0x1234_5678u32.to_be_bytes(), "echo must use its own SSRC");
        assert_eq!(p.len(), 12 + 160);
    }
    let codes: Vec<u8> = echoed.iter().map(|p| p[12]).filter(|c| *c != 0xff).collect();
    for (p, c) in echoed.iter().zip(&codes) {
        assert!(p[12..].iter().all(|b| b == &p[12]), "a frame of one code {c}");
    }
    // The first packet is the new source's probation (RFC 3550 A.1): 2..=50 come back in
    // order, then a few fading frames of concealment when the stream stops. A packet this
    // test sends late (a loaded machine descheduling it for over 10 ms) is concealed by a
    // fading repeat of the one before, then played late: so 2..=50 must appear in order,
    // each once, with at most a few concealment frames among them.
    assert!(codes.len() >= 49, "{codes:?}");
    let mut want = 2u8;
    let mut extra = 0;
    for c in &codes {
        if want <= 50 && *c == want {
            want += 1;
        } else {
            extra += 1;
        }
    }
    assert_eq!(want, 51, "echoed codes 2..=50 in order: {codes:?}");
    assert!(extra <= 5 + 3, "more concealment than a stream end and a late packet or two: {codes:?}");
    let seq = |p: &Vec<u8>| u16::from_be_bytes([p[2], p[3]]);
    let ts = |p: &Vec<u8>| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    for w in echoed.windows(2) {
        assert_eq!(seq(&w[1]), seq(&w[0]).wrapping_add(1));
        assert_eq!(ts(&w[1]), ts(&w[0]).wrapping_add(160));
    }

    sip.send_to(bye.as_bytes(), &target).unwrap();
    recv_response(&sip, "200");
    // After the call the RTP port is closed: nothing but the final RTCP comes back.
    std::thread::sleep(Duration::from_millis(200));
    rtp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    while rtp.recv_from(&mut buf).is_ok() {}
    rtp.send_to(&echoed[0], &media).unwrap();
    assert!(rtp.recv_from(&mut buf).is_err(), "media still flowing after BYE");
}

/// Sets up a call by hand; returns (sip socket, rtp socket, dialtone's media address, To).
fn setup_call(d: &Dialtone, call_id: &str) -> (UdpSocket, UdpSocket, String, String, String) {
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let (sp, rp) = (sip.local_addr().unwrap().port(), rtp.local_addr().unwrap().port());
    let target = format!("127.0.0.1:{}", d.port);
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rp} RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
    );
    let common = format!("From: <sip:test@127.0.0.1:{sp}>;tag=t1\r\nCall-ID: {call_id}\r\nMax-Forwards: 70\r\n");
    let invite = format!(
        "INVITE sip:echo@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{sp};branch=z9hG4bK{call_id}1;rport\r\n{common}\
To: <sip:echo@{target}>\r\nCSeq: 1 INVITE\r\nContact: <sip:test@127.0.0.1:{sp}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sip.send_to(invite.as_bytes(), &target).unwrap();
    let ok = recv_response(&sip, "200");
    let to = header(&ok, "To").to_string();
    let body = ok.split("\r\n\r\n").nth(1).unwrap();
    let port: u16 = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("m=audio port");
    assert!(body.contains("a=rtpmap:0 PCMU/8000"), "{body}");
    let ack = format!(
        "ACK sip:echo@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{sp};branch=z9hG4bK{call_id}2;rport\r\n{common}\
To: {to}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sip.send_to(ack.as_bytes(), &target).unwrap();
    let bye = format!(
        "BYE sip:echo@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{sp};branch=z9hG4bK{call_id}3;rport\r\n{common}\
To: {to}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    (sip, rtp, format!("127.0.0.1:{port}"), target, bye)
}

#[test]
fn recorded_call_holds_the_callers_tone() {
    use dialtone_media::g711::ulaw_encode;
    use dialtone_media::resample::goertzel_power;
    let d = Dialtone::serve("record", &[("DIALTONE_RECORD", "true"), ("DIALTONE_RTP_PORTS", "42000-42099")]);
    let (sip, rtp, media, target, bye) = setup_call(&d, "rec-test-1");
    // 2 s of a 1 kHz tone at 8 kHz, µ-law, paced at 20 ms like a real phone.
    let mut buf = [0u8; 2048];
    let start = std::time::Instant::now();
    for i in 0..100u32 {
        let mut pkt = vec![0x80, 0x00];
        pkt.extend_from_slice(&(i as u16).to_be_bytes());
        pkt.extend_from_slice(&(160 * i).to_be_bytes());
        pkt.extend_from_slice(&0x0bad_cafeu32.to_be_bytes());
        for n in 0..160 {
            let t = (160 * i + n) as f32 / 8000.0;
            pkt.push(ulaw_encode((8000.0 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()) as i16));
        }
        rtp.send_to(&pkt, &media).unwrap();
        let _ = rtp.recv_from(&mut buf);
        let due = start + Duration::from_millis(20 * (u64::from(i) + 1));
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    sip.send_to(bye.as_bytes(), &target).unwrap();
    recv_response(&sip, "200");
    std::thread::sleep(Duration::from_millis(500));
    let dir = d.data.join("recordings");
    let file = std::fs::read_dir(&dir).expect("recordings dir").next().expect("a recording").unwrap().path();
    let mut rd = hound::WavReader::open(&file).expect("playable WAV");
    assert_eq!((rd.spec().channels, rd.spec().sample_rate), (2, 8000));
    let samples: Vec<i16> = rd.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let secs = left.len() as f32 / 8000.0;
    assert!((1.8..=2.6).contains(&secs), "recording is {secs} s long");
    // The tone is there: 1 kHz dominates its neighbours by far, over the middle second.
    let mid = &left[left.len() / 4..left.len() * 3 / 4];
    let (p1000, p700, p1300) =
        (goertzel_power(mid, 8000, 1000.0), goertzel_power(mid, 8000, 700.0), goertzel_power(mid, 8000, 1300.0));
    assert!(p1000 > 100.0 * p700 && p1000 > 100.0 * p1300, "1 kHz {p1000}, 700 Hz {p700}, 1.3 kHz {p1300}");
}
