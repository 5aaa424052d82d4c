#!/usr/bin/env python3
"""Writes a pcap of one RTP stream of a 1 kHz tone, for SIPp's play_pcap_audio.

    benches/media_load_pcap.py --out tone.pcap [--seconds 40] [--codec pcmu|pcma|opus]
    benches/media_load_pcap.py --raw tone.ulaw [--seconds 1] [--codec pcmu|pcma]

With --raw it writes the bare G.711 octets instead (8000 a second, no headers), the file
SIPp's `exec rtp_stream="tone.ulaw,-1,0"` loops.

Layout as /usr/share/sip-tester/g711a.pcap: libpcap, link type Ethernet, each record
Ethernet / IPv4 / UDP / RTP, one packet every 20 ms (pcap timestamps give SIPp the pacing).
SIPp rewrites the UDP ports and addresses when it plays the file, so those here are
placeholders. pcmu (payload type 0) and pcma (8) are 160 octets of G.711 per packet,
encoded here; opus (payload type 111, 48 kHz mono, 32 kbit/s) needs the system libopus
(libopus.so.0, loaded with ctypes). Python standard library only.
"""

import argparse
import ctypes
import ctypes.util
import math
import struct
import sys

PTIME_MS = 20
TONE_HZ = 1000.0
AMPLITUDE = 8000  # about -12 dBFS


def ulaw(sample: int) -> int:
    """ITU-T G.711 µ-law of one 16-bit linear sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    s = min(abs(sample), clip) + bias
    exp = 7
    mask = 0x4000
    while exp > 0 and not s & mask:
        exp -= 1
        mask >>= 1
    mant = (s >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def alaw(sample: int) -> int:
    """ITU-T G.711 A-law of one 16-bit linear sample."""
    sign = 0x80 if sample >= 0 else 0
    s = min(abs(sample), 32767) >> 3
    if s < 32:
        code = s >> 1
    else:
        exp = s.bit_length() - 5
        code = (exp << 4) | ((s >> exp) & 0x0F)
    return (sign | code) ^ 0x55


def tone(rate: int, n: int, offset: int) -> list:
    return [int(AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * (offset + i) / rate)) for i in range(n)]


class Opus:
    """The few libopus calls needed to encode 20 ms mono frames."""

    def __init__(self, rate: int):
        name = ctypes.util.find_library("opus") or "libopus.so.0"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as e:
            sys.exit(f"media_load_pcap: --codec opus needs libopus ({e}); use pcmu or pcma")
        self.lib.opus_encoder_create.restype = ctypes.c_void_p
        c_int, c_int32 = ctypes.c_int, ctypes.c_int32
        self.lib.opus_encoder_create.argtypes = [c_int32, c_int, c_int, ctypes.POINTER(c_int)]
        self.lib.opus_encode.restype = ctypes.c_int32
        pcm = ctypes.POINTER(ctypes.c_int16)
        self.lib.opus_encode.argtypes = [ctypes.c_void_p, pcm, c_int, ctypes.c_char_p, c_int32]
        self.lib.opus_encoder_ctl.restype = ctypes.c_int
        self.lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        err = ctypes.c_int(0)
        application_voip = 2048
        self.enc = self.lib.opus_encoder_create(rate, 1, application_voip, ctypes.byref(err))
        if err.value != 0 or not self.enc:
            sys.exit(f"media_load_pcap: opus_encoder_create failed ({err.value})")
        opus_set_bitrate = 4002
        self.lib.opus_encoder_ctl(ctypes.c_void_p(self.enc), ctypes.c_int(opus_set_bitrate), ctypes.c_int32(32000))

    def encode(self, pcm: list) -> bytes:
        frame = (ctypes.c_int16 * len(pcm))(*pcm)
        out = ctypes.create_string_buffer(1500)
        n = self.lib.opus_encode(self.enc, frame, len(pcm), out, len(out))
        if n < 0:
            sys.exit(f"media_load_pcap: opus_encode failed ({n})")
        return out.raw[:n]


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(payload: bytes, ident: int) -> bytes:
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    sport, dport = 6000, 20000
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp_nosum = struct.pack("!HHHH", sport, dport, udp_len, 0)
    usum = checksum(pseudo + udp_nosum + payload) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, usum) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = bytes.fromhex("00d050100166") + bytes.fromhex("000476222017") + b"\x08\x00"
    return eth + ip + udp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    out = ap.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="the pcap to write")
    out.add_argument("--raw", help="raw G.711 to write instead (for SIPp's rtp_stream)")
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--codec", choices=["pcmu", "pcma", "opus"], default="pcmu")
    a = ap.parse_args()
    if not 0 < a.seconds <= 3600:
        sys.exit("media_load_pcap: --seconds must be in (0, 3600]")

    if a.codec == "opus":
        rate, pt = 48000, 111
        opus = Opus(rate)
        encode = opus.encode
    else:
        rate, pt = 8000, 0 if a.codec == "pcmu" else 8
        law = ulaw if a.codec == "pcmu" else alaw
        encode = lambda pcm: bytes(law(s) for s in pcm)  # noqa: E731
    spf = rate * PTIME_MS // 1000  # samples per frame
    packets = int(a.seconds * 1000 / PTIME_MS)
    # G.711: the tone is periodic in 8 samples, so one frame serves for all.
    fixed = None if a.codec == "opus" else encode(tone(rate, spf, 0))
    if a.raw:
        if fixed is None:
            sys.exit("media_load_pcap: --raw is for pcmu and pcma (SIPp's rtp_stream plays raw G.711)")
        with open(a.raw, "wb") as f:
            f.write(fixed * packets)
        print(f"{a.raw}: {packets * spf} octets, {packets * PTIME_MS / 1000:.1f} s of raw {a.codec}")
        return

    ssrc, seq0, ts0 = 0x1D1A_70E5, 1000, 16000
    t0 = 1_700_000_000
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(packets):
            audio = fixed if fixed is not None else encode(tone(rate, spf, i * spf))
            rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | pt, (seq0 + i) & 0xFFFF,
                              (ts0 + i * spf) & 0xFFFFFFFF, ssrc) + audio
            data = frame(rtp, i)
            usec = i * PTIME_MS * 1000
            f.write(struct.pack("<IIII", t0 + usec // 1_000_000, usec % 1_000_000, len(data), len(data)))
            f.write(data)
    print(f"{a.out}: {packets} packets, {packets * PTIME_MS / 1000:.1f} s of {a.codec} (payload type {pt})")


if __name__ == "__main__":
    main()
