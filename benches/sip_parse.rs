//! Parse benchmark: our parser against rsip 0.4 on the same realistic INVITE, plus our
//! serializer, TCP stream framing and the calls' SIP ladder capture. Results and how to run: BENCHMARKS.md.
//!
//! Both parse cases do the work a UAS does on every request: parse the message, then
//! read the top Via branch, the From tag, To, CSeq and Call-ID through typed headers.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dialtone_sip::{parse_datagram, Message, StreamParser};
use std::time::Duration;

/// A typical INVITE from a softphone: 558 octets of start line and headers, a 238-octet SDP offer.
const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn invite() -> Vec<u8> {
    let head = format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9a1e2c;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: \"Bob\" <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 31862 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO, REFER, NOTIFY\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: dialtone-bench/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n",
        SDP.len()
    );
    let mut v = head.into_bytes();
    v.extend_from_slice(SDP.as_bytes());
    v
}

fn dialtone_parse(buf: Bytes) -> u32 {
    let msg = parse_datagram(buf).expect("parses");
    let h = msg.headers();
    let via = h.top_via().expect("via");
    let from = h.from().expect("from");
    let to = h.to().expect("to");
    let cseq = h.cseq().expect("cseq");
    let call_id = h.call_id().expect("call-id");
    black_box((via.branch(), from.tag(), &to.uri, &cseq.method, call_id.len()));
    cseq.seq
}

fn rsip_parse(buf: &[u8]) -> u32 {
    use rsip::prelude::*;
    let msg = rsip::SipMessage::try_from(buf).expect("parses");
    let via = msg.via_header().expect("via").typed().expect("typed via");
    let from = msg.from_header().expect("from").typed().expect("typed from");
    let to = msg.to_header().expect("to").typed().expect("typed to");
    let cseq = msg.cseq_header().expect("cseq").typed().expect("typed cseq");
    let call_id = msg.call_id_header().expect("call-id");
    black_box((via.branch().cloned(), from.tag().cloned(), &to.uri, &cseq.method, call_id.value().len()));
    cseq.seq
}

fn bench(c: &mut Criterion) {
    let raw = invite();
    let bytes = Bytes::from(raw.clone());
    // Both parsers must agree before we time them.
    assert_eq!(dialtone_parse(bytes.clone()), 31862);
    assert_eq!(rsip_parse(&raw), 31862);

    let mut g = c.benchmark_group("sip_parse");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("dialtone", |b| b.iter(|| dialtone_parse(black_box(bytes.clone()))));
    g.bench_function("rsip", |b| b.iter(|| rsip_parse(black_box(&raw[..]))));

    let msg: Message = parse_datagram(bytes.clone()).expect("parses");
    g.bench_function("dialtone_to_bytes", |b| b.iter(|| black_box(&msg).to_bytes()));

    let stream: Vec<u8> = std::iter::repeat_n(&raw[..], 100).flatten().copied().collect();
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("dialtone_stream_100", |b| {
        b.iter(|| {
            let mut p = StreamParser::new();
            p.push(black_box(&stream));
            let mut n = 0;
            while let Some(m) = p.next_message().expect("frames") {
                black_box(&m);
                n += 1;
            }
            assert_eq!(n, 100);
        })
    });

    // The calls' SIP ladder (issue 17) sees every message the driver sends or receives:
    // 8192 INVITEs of distinct dialogs, cycled, so past the first 4096 each one also makes
    // the capture forget the oldest (its steady state on a busy server).
    let dialogs: Vec<Bytes> = (0..8192)
        .map(|i| String::from_utf8_lossy(&raw).replace("3848276298220188511", &format!("{i:019}")).into_bytes().into())
        .collect();
    let live = dialtone_api::live::Live::default();
    let peer: std::net::SocketAddr = "192.0.2.10:5060".parse().unwrap();
    let mut i = 0;
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("ladder_capture", |b| {
        b.iter(|| {
            i = (i + 1) % dialogs.len();
            live.sip(dialtone_api::live::Dir::Received, "udp", peer, black_box(&dialogs[i]), i as i64);
        })
    });
    assert_eq!(live.dialogs(), 4096);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
