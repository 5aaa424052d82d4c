#!/usr/bin/env python3
"""Seeds the (gitignored) working corpora of every cargo-fuzz target from the fixtures.

    python3 benches/fuzz_seed.py            # all targets
    python3 benches/fuzz_seed.py sdp rtp    # some

Each target's corpus directory gets the committed seed corpus fixtures/fuzz/<target>/
(small, replayed on stable by the */tests/fuzz_corpus.rs tests) plus what the fixtures
give it:

  parse_datagram, stream   fixtures/sip/*/*.sip (stream: a chunk-size byte first)
  sdp                      fixtures/sdp/*.sdp, SDP bodies of fixtures/sip and fixtures/sipp
  digest                   *-Authenticate / *Authorization values in fixtures/sip and sipp
  rtp                      RTP packets of fixtures/pcap/*.pcap (and SIPp's dtmf pcaps)
  rtcp, dtmf               the committed corpus (dtmf: also SIPp's telephone-event payloads)
  agent_messages           the committed corpus
  api_bodies               the committed corpus

Standard library only; deterministic apart from the system SIPp pcaps being present.
"""

import glob
import os
import re
import shutil
import struct
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIX = os.path.join(ROOT, "fixtures")
SIPP_PCAPS = "/usr/share/sip-tester"

CORPUS = {
    "parse_datagram": "sip/fuzz/corpus/parse_datagram",
    "stream": "sip/fuzz/corpus/stream",
    "sdp": "sip/fuzz/corpus/sdp",
    "digest": "sip/fuzz/corpus/digest",
    "rtp": "media/fuzz/corpus/rtp",
    "rtcp": "media/fuzz/corpus/rtcp",
    "dtmf": "media/fuzz/corpus/dtmf",
    "agent_messages": "fuzz/corpus/agent_messages",
    "api_bodies": "fuzz/corpus/api_bodies",
}


def sip_fixtures():
    for f in sorted(glob.glob(os.path.join(FIX, "sip", "*", "*.sip"))):
        name = os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f)
        yield name, open(f, "rb").read()


def sipp_messages():
    """The CDATA blocks of the SIPp scenarios, indentation removed, CRLF line ends."""
    for f in sorted(glob.glob(os.path.join(FIX, "sipp", "*.xml"))):
        text = open(f, encoding="utf-8").read()
        for i, block in enumerate(re.findall(r"<!\[CDATA\[(.*?)\]\]>", text, re.S)):
            lines = [l.strip() for l in block.strip("\n").split("\n")]
            yield "%s-%d" % (os.path.basename(f)[:-4], i), "\r\n".join(lines).strip() + "\r\n"


def sdp_bodies():
    for f in sorted(glob.glob(os.path.join(FIX, "sdp", "*.sdp"))):
        yield os.path.basename(f), open(f, "rb").read()
    for name, msg in sip_fixtures():
        for sep in (b"\r\n\r\n", b"\n\n"):
            if sep in msg:
                body = msg.split(sep, 1)[1]
                if b"v=0" in body:
                    yield name[:-4] + ".sdp", body
                break
    for name, msg in sipp_messages():
        if "\r\n\r\n" in msg and "v=0" in msg:
            yield name + ".sdp", msg.split("\r\n\r\n", 1)[1].encode()


AUTH_RE = re.compile(r"^\s*(?:WWW-Authenticate|Proxy-Authenticate|Authorization|Proxy-Authorization)\s*:\s*(.*)$", re.I | re.M)


def digest_values():
    seen = set()
    texts = [(n, m.decode("utf-8", "replace")) for n, m in sip_fixtures()] + list(sipp_messages())
    for name, text in texts:
        for v in AUTH_RE.findall(text):
            v = v.strip()
            if v and v not in seen:
                seen.add(v)
                yield "%s-%d" % (name, len(seen)), v.encode()


def pcap_udp_payloads(path):
    """UDP payloads of a little- or big-endian libpcap file of Ethernet/IPv4/UDP."""
    data = open(path, "rb").read()
    if len(data) < 24:
        return
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 14 + 20 + 8 or pkt[12:14] != b"\x08\x00":
            continue
        ihl = (pkt[14] & 0x0F) * 4
        if pkt[14 + 9] != 17:
            continue
        yield pkt[14 + ihl + 8:]


def rtp_packets():
    for f in sorted(glob.glob(os.path.join(FIX, "pcap", "*.pcap"))):
        for i, p in enumerate(pcap_udp_payloads(f)):
            if i % 25 == 0:  # a few per file: they differ only in seq, timestamp and audio
                yield "%s-%03d" % (os.path.basename(f)[:-5], i), p
    for f in sorted(glob.glob(os.path.join(SIPP_PCAPS, "dtmf_2833_*.pcap"))):
        for i, p in enumerate(pcap_udp_payloads(f)):
            if i < 3:
                yield "%s-%d" % (os.path.basename(f)[:-5], i), p


def dtmf_payloads():
    for f in sorted(glob.glob(os.path.join(SIPP_PCAPS, "dtmf_2833_*.pcap"))):
        for i, p in enumerate(pcap_udp_payloads(f)):
            if len(p) >= 12 and p[0] >> 6 == 2 and p[1] & 0x7F not in (0, 8):
                cc = p[0] & 0x0F
                yield "%s-%d" % (os.path.basename(f)[:-5], i), p[12 + 4 * cc:]


def fixtures_for(target):
    if target == "parse_datagram":
        return sip_fixtures()
    if target == "stream":
        return ((n, b"\x25" + m) for n, m in sip_fixtures())
    if target == "sdp":
        return sdp_bodies()
    if target == "digest":
        return digest_values()
    if target == "rtp":
        return rtp_packets()
    if target == "dtmf":
        return dtmf_payloads()
    return iter(())


def seed(target):
    out = os.path.join(ROOT, CORPUS[target])
    os.makedirs(out, exist_ok=True)
    n = 0
    committed = os.path.join(FIX, "fuzz", target)
    for f in sorted(glob.glob(os.path.join(committed, "*"))):
        shutil.copyfile(f, os.path.join(out, "committed-" + os.path.basename(f)))
        n += 1
    for name, data in fixtures_for(target):
        with open(os.path.join(out, "fixture-" + name), "wb") as fh:
            fh.write(data)
        n += 1
    print("%-15s %4d seeds in %s" % (target, n, CORPUS[target]))


def main():
    targets = sys.argv[1:] or list(CORPUS)
    for t in targets:
        if t not in CORPUS:
            sys.exit("unknown target %s (known: %s)" % (t, " ".join(CORPUS)))
        seed(t)


if __name__ == "__main__":
    main()
