#!/usr/bin/env bash
# Media load test: N concurrent SIPp calls with RTP both ways against `dialtone serve`
# (DIALTONE_INBOUND=echo). Each SIPp call plays a pcap of a 1 kHz tone (play_pcap_audio,
# 20 ms packets) for the whole call and dialtone echoes it back. Calls ramp up at --rate,
# all N are held, then SIPp hangs up. While all N calls are up, dialtone's and SIPp's CPU
# (utime+stime from /proc/<pid>/stat) is sampled over a steady window. Loopback only.
#
#   benches/media_load.sh [--calls N] [--hold SECONDS] [--rate CPS] [--codec pcmu|pcma|opus]
#                         [--record [on|off]] [--window SECONDS] [--sip-port P]
#                         [--media-port P] [--rtp-ports LO-HI] [--sender rtpstream|pcap]
#                         [--same-session] [--inbound SPEC] [--keep]
#
#   --calls     concurrent calls (default 1000)
#   --hold      how long each call lasts once answered, s (default 30); must leave a
#               window of >= 10 s after the ramp (N / rate s) while all calls are up
#   --rate      call attempts per second during the ramp (default 100)
#   --codec     pcmu (default), pcma, or opus (payload type 111, opus/48000/2, 32 kbit/s
#               mono; the pcap is encoded with the system libopus through python3 ctypes)
#   --record    DIALTONE_RECORD=true (every call to WAV in a temp data dir); default off
#   --window    CPU sampling window, s (default: all of the steady part, at least 10)
#   --sip-port  dialtone's SIP port on 127.0.0.1 (default 15060; SIPp uses P+1, the unused
#               HTTP API P+3030)
#   --media-port  SIPp's -mp (default 16000; SIPp binds it and P+2)
#   --rtp-ports dialtone's DIALTONE_RTP_PORTS (default 20000-29999: 5000 even ports)
#   --sender    how SIPp sends each call's RTP: rtpstream (default for G.711: SIPp's
#               exec rtp_stream, raw µ-law/A-law looped by a few threads that each serve
#               -rtp_threadtasks calls, all from the -mp socket) or pcap (play_pcap_audio:
#               one thread per call over a raw socket; the only choice for opus)
#   --same-session  run dialtone and SIPp in this shell's session (see below)
#   --inbound   DIALTONE_INBOUND (default echo); e.g. agent:ws://127.0.0.1:P to bridge every
#               call to a voice agent (start one first: fixtures/agent/echo_agent.py)
#   --keep      keep the work directory (pcap, scenario, SIPp CSV/errors, dialtone log)
#
# Binary: $DIALTONE_BIN or target/release/dialtone. SIPp (3.6.1) sends pcap audio over raw
# sockets: run as root (or with CAP_NET_RAW). It plays each call's pcap in a thread of its
# own, so with N calls it has N runnable threads against dialtone's few; dialtone and SIPp
# are started in sessions of their own (setsid) so that with the kernel's autogroup
# scheduling (kernel.sched_autogroup_enabled=1) they share the CPUs as two processes, not
# as N+2 threads (on loopback most of the cost is kernel packet processing, which this does
# not apportion). The sampler runs at real-time priority when allowed (root), so a
# saturated machine does not move the window. Every wait is bounded.
#
# Report: calls up; dialtone's and SIPp's CPU (% of one core, total and per call; busiest
# and quietest second), RSS and threads; the kernel's drops at dialtone's RTP sockets
# (its receive buffers overflowing: dialtone fell behind); the echo's packet rate as it
# arrives back at SIPp (SIPp never reads that socket, so the kernel drops and counts it);
# dialtone's own "media calls=.. rx_packets=.. rx_lost=.." totals line (loss %); and SIPp's
# successful/failed calls, retransmissions and overload warnings. On loopback the sender's
# system time includes delivering into the receiver's socket, so CPU is split between the
# two processes differently than with a real network.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLS=1000
HOLD=30
RATE=100
CODEC=pcmu
RECORD=0
INBOUND=echo
WINDOW=""
SIP_PORT=15060
RTP_PORTS=20000-29999
MEDIA_PORT=16000
KEEP=0
SENDER=""
SETSID=1
SETTLE=3 # s after the last call was placed before sampling starts

die() { printf 'media_load: %s\n' "$*" >&2; exit 1; }
log() { printf '==> %s\n' "$*" >&2; }
posint() { [[ "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] || die "$2 must be a positive integer, not '$1'"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --calls) CALLS="${2:?}"; shift 2 ;;
        --hold) HOLD="${2:?}"; shift 2 ;;
        --rate) RATE="${2:?}"; shift 2 ;;
        --codec) CODEC="${2:?}"; shift 2 ;;
        --record)
            case "${2:-}" in
                on | true | 1) RECORD=1; shift 2 ;;
                off | false | 0) RECORD=0; shift 2 ;;
                *) RECORD=1; shift ;;
            esac ;;
        --no-record) RECORD=0; shift ;;
        --window) WINDOW="${2:?}"; shift 2 ;;
        --sip-port) SIP_PORT="${2:?}"; shift 2 ;;
        --rtp-ports) RTP_PORTS="${2:?}"; shift 2 ;;
        --media-port) MEDIA_PORT="${2:?}"; shift 2 ;;
        --sender) SENDER="${2:?}"; shift 2 ;;
        --same-session) SETSID=0; shift ;;
        --inbound) INBOUND="${2:?}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,43p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

posint "$CALLS" --calls
posint "$HOLD" --hold
posint "$RATE" --rate
posint "$SIP_PORT" --sip-port
[[ -z "$WINDOW" ]] || posint "$WINDOW" --window
posint "$MEDIA_PORT" --media-port
[[ "$SIP_PORT" -ge 1024 && "$SIP_PORT" -lt 62000 ]] || die "--sip-port must be in 1024-61999"
[[ "$MEDIA_PORT" -ge 1024 && "$MEDIA_PORT" -lt 65530 ]] || die "--media-port must be in 1024-65529"
case "$CODEC" in
    pcmu) PT=0 RTPMAP="PCMU/8000" ;;
    pcma) PT=8 RTPMAP="PCMA/8000" ;;
    opus) PT=111 RTPMAP="opus/48000/2" ;;
    *) die "--codec must be pcmu, pcma or opus" ;;
esac
if [[ -z "$SENDER" ]]; then
    if [[ "$CODEC" == opus ]]; then SENDER=pcap; else SENDER=rtpstream; fi
fi
case "$SENDER" in
    pcap) ;;
    rtpstream) [[ "$CODEC" != opus ]] || die "--sender rtpstream plays raw G.711 only; use --sender pcap for opus" ;;
    *) die "--sender must be rtpstream or pcap" ;;
esac
[[ "$RTP_PORTS" =~ ^([0-9]+)-([0-9]+)$ ]] || die "--rtp-ports must be LO-HI"
RTP_LO="${BASH_REMATCH[1]}"
RTP_HI="${BASH_REMATCH[2]}"
[[ "$RTP_LO" -ge 1024 && "$RTP_HI" -le 65535 && "$RTP_LO" -lt "$RTP_HI" ]] || die "bad --rtp-ports $RTP_PORTS"
# dialtone hands out the even ports of the range (the odd one above is RTCP's).
RTP_SLOTS=$(((RTP_HI - RTP_LO + 1) / 2))
[[ "$RTP_SLOTS" -ge "$CALLS" ]] ||
    die "--rtp-ports $RTP_PORTS has $RTP_SLOTS RTP ports (even ones), fewer than --calls $CALLS"
if [[ "$MEDIA_PORT" -ge "$RTP_LO" && "$MEDIA_PORT" -le "$RTP_HI" ]]; then
    die "--rtp-ports must not include SIPp's media ports $MEDIA_PORT-$((MEDIA_PORT + 3))"
fi

command -v sipp >/dev/null 2>&1 || die "sipp not found (Debian package sip-tester; ./dev test installs it)"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
command -v ss >/dev/null 2>&1 || die "ss not found (Debian package iproute2)"
BIN="${DIALTONE_BIN:-$ROOT/target/release/dialtone}"
[[ -x "$BIN" ]] || die "$BIN not found: build it with 'cargo build --release --bin dialtone' (or set DIALTONE_BIN)"
[[ "$SENDER" != pcap || "$(id -u)" == 0 ]] || log "warning: not root; SIPp's play_pcap_audio needs raw sockets (CAP_NET_RAW)"
SESSION=()
if [[ "$SETSID" == 1 ]]; then
    command -v setsid >/dev/null 2>&1 || die "setsid not found (util-linux); or use --same-session"
    SESSION=(setsid)
fi

RAMP=$(((CALLS + RATE - 1) / RATE))
STEADY=$((HOLD - RAMP - SETTLE - 3)) # the part of the hold with all calls up, minus margins
[[ "$STEADY" -ge 10 ]] ||
    die "--hold $HOLD is too short: $CALLS calls at $RATE cps ramp for $RAMP s; need --hold >= $((RAMP + SETTLE + 13))"
if [[ -z "$WINDOW" ]]; then WINDOW="$STEADY"; fi
[[ "$WINDOW" -le "$STEADY" ]] || die "--window $WINDOW does not fit: at most $STEADY s with --hold $HOLD"

# Per call: in dialtone the RTP and RTCP sockets (+ the WAV when recording), in SIPp the raw
# socket of its pcap player thread; plus room for the rest.
NEED_FDS=$((3 * CALLS + 256))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[[ "$(ulimit -n)" == unlimited || "$(ulimit -n)" -ge "$NEED_FDS" ]] ||
    die "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $CALLS calls need about $NEED_FDS"
# SIPp runs one thread per playing call.
THREADS_MAX="$(cat /proc/sys/kernel/threads-max 2>/dev/null || echo 0)"
if [[ "$THREADS_MAX" -gt 0 && "$THREADS_MAX" -lt $((2 * CALLS + 1000)) ]]; then
    die "kernel.threads-max is $THREADS_MAX, too low for $CALLS calls"
fi

port_busy() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q . || ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
for p in "$SIP_PORT" $((SIP_PORT + 1)) "$MEDIA_PORT" $((MEDIA_PORT + 2)) $((SIP_PORT + 3030)); do
    ! port_busy "$p" || die "port $p is in use on this machine; pick another --sip-port or --media-port"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dialtone-media-load.XXXXXX")"
PIDS=()
DPID=""
SPID=""

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "$KEEP" == 1 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# --- the audio and the scenario -----------------------------------------------------------
if [[ "$SENDER" == pcap ]]; then
    AUDIO="$WORK/tone-$CODEC.pcap"
    python3 "$ROOT/benches/media_load_pcap.py" --codec "$CODEC" --seconds $((HOLD + 5)) --out "$AUDIO" >&2 ||
        die "could not write the pcap"
    PLAY="play_pcap_audio=\"$AUDIO\""
else
    # One second of tone, looped for the whole call (-1).
    AUDIO="$WORK/tone-$CODEC.raw"
    python3 "$ROOT/benches/media_load_pcap.py" --codec "$CODEC" --seconds 1 --raw "$AUDIO" >&2 ||
        die "could not write the raw audio"
    PLAY="rtp_stream=\"$AUDIO,-1,$PT\""
fi

# The caller's RTP leaves from [media_port] (SIPp's -mp socket, which SIPp binds but never
# reads without -rtp_echo), so dialtone's symmetric echo lands on a bound socket: the kernel
# drops it there and counts it, which is how the echoed packet rate is measured below.
cat >"$WORK/scenario.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="dialtone media load: $CODEC tone, held, echoed">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Subject: media load
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP $PT
      a=rtpmap:$PT $RTPMAP
      a=ptime:20
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop>
    <action>
      <exec $PLAY/>
    </action>
  </nop>
  <!-- -d: the hold -->
  <pause/>
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <ResponseTimeRepartition value="10, 20, 50, 100, 200, 500, 1000"/>
  <CallLengthRepartition value="1000, 10000, 30000, 60000"/>
</scenario>
EOF

# --- dialtone -----------------------------------------------------------------------------
mkdir -p "$WORK/data"
log "starting $BIN serve on 127.0.0.1:$SIP_PORT (RTP $RTP_LO-$RTP_HI, record=$RECORD)"
(
    # A background child of a script is no process-group leader, so setsid execs in place
    # and $! stays the server's pid (checked below).
    export DIALTONE_SIP_LISTEN="127.0.0.1:$SIP_PORT" DIALTONE_HTTP_LISTEN="127.0.0.1:$((SIP_PORT + 3030))" \
        DIALTONE_DATA_DIR="$WORK/data" DIALTONE_RTP_PORTS="$RTP_LO-$RTP_HI" DIALTONE_INBOUND="$INBOUND" \
        DIALTONE_RECORD="$([[ "$RECORD" == 1 ]] && echo true || echo false)" DIALTONE_LOG="${DIALTONE_LOG:-info}"
    exec "${SESSION[@]}" "$BIN" serve >"$WORK/dialtone.log" 2>&1
) &
DPID=$!
PIDS+=("$DPID")
for ((i = 0; i < 100; i++)); do
    alive "$DPID" || die "dialtone exited: $(tail -20 "$WORK/dialtone.log")"
    ! port_busy "$SIP_PORT" || break
    sleep 0.1
done
port_busy "$SIP_PORT" || die "dialtone did not start listening on 127.0.0.1:$SIP_PORT"
[[ "$(cat "/proc/$DPID/comm" 2>/dev/null)" == dialtone ]] || die "pid $DPID is not dialtone"

# --- SIPp ---------------------------------------------------------------------------------
SIPP_TIMEOUT=$((RAMP + HOLD + 60))
log "SIPp: $CALLS calls at $RATE cps (ramp ${RAMP} s), each held ${HOLD} s, $CODEC both ways"
T0=$(now_ms)
(
    cd "$WORK"
    exec "${SESSION[@]}" sipp -sf "$WORK/scenario.xml" "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p $((SIP_PORT + 1)) \
        -t u1 -mi 127.0.0.1 -mp "$MEDIA_PORT" -r "$RATE" -l "$CALLS" -m "$CALLS" -d $((HOLD * 1000)) \
        -timeout "${SIPP_TIMEOUT}s" -nostdin -trace_stat -stf "$WORK/stat.csv" -fd 1 \
        -trace_err -error_file "$WORK/errors.log" >"$WORK/sipp.out" 2>&1
) &
SPID=$!
PIDS+=("$SPID")

# --- the steady window --------------------------------------------------------------------
# One sampler process: waits (bounded) until SIPp has placed every call, lets them settle,
# then samples once a second until the window ends — before the first call's hold runs
# out — the CPU ticks and memory of dialtone and SIPp, the machine's CPU, SIPp's count of
# calls up, and the kernel's per-socket counters (/proc/net/udp) of dialtone's RTP sockets
# (drops, queue) and of SIPp's media socket (where the echo lands and is dropped unread).
SAMPLER=(python3)
if [[ "$(id -u)" == 0 ]] && command -v chrt >/dev/null 2>&1 && chrt -f 1 true 2>/dev/null; then
    SAMPLER=(chrt -f 1 python3)
elif nice -n -10 true 2>/dev/null; then
    SAMPLER=(nice -n -10 python3)
fi
SAMPLER_RC=0
"${SAMPLER[@]}" - "$WORK" "$DPID" "$SPID" "$SIP_PORT" "$MEDIA_PORT" "$CALLS" "$T0" "$RAMP" "$HOLD" \
    "$SETTLE" "$WINDOW" "$RTP_LO" "$RTP_HI" <<'PY' >"$WORK/window.txt" || SAMPLER_RC=$?
import os, sys, time
work, dpid, spid = sys.argv[1], sys.argv[2], sys.argv[3]
sip_port, media_port, calls, t0_ms, ramp, hold, settle, window, rtp_lo, rtp_hi = map(int, sys.argv[4:14])

def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)

def alive(pid):
    return os.path.exists(f"/proc/{pid}")

def stat_row():
    try:
        with open(f"{work}/stat.csv") as f:
            rows = [l.rstrip("\r\n").split(";") for l in f if l.strip()]
        return dict(zip(rows[0], rows[-1]))
    except (OSError, IndexError):
        return {}

def stat_int(row, name):
    try:
        return int(row.get(name, ""))
    except ValueError:
        return None

def socket_inodes(pid):
    s = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                l = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if l.startswith("socket:["):
                s.add(l[8:-1])
    except OSError:
        pass
    return s

def udp_table():
    t = {}
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            x = line.split()
            if len(x) >= 13:
                t[x[9]] = (int(x[1].split(":")[1], 16), int(x[4].split(":")[1], 16), int(x[12]))
    return t

def proc(pid):
    r = {}
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        x = st[st.rindex(")") + 2:].split()
        r["utime"], r["stime"] = int(x[11]), int(x[12])
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    r[k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return r

def sample(rtp, echo):
    with open("/proc/stat") as f:
        cpu = [int(v) for v in f.readline().split()[1:]]
    table = udp_table()
    return {
        "t": time.monotonic(), "d": proc(dpid), "s": proc(spid),
        "cpu_total": sum(cpu[:8]), "cpu_idle": cpu[3] + cpu[4], "cpu_softirq": cpu[6],
        "load1": float(open("/proc/loadavg").read().split()[0]),
        "rtp": {i: table[i] for i in rtp if i in table},
        "echo": sum(table[i][2] for i in echo if i in table),
        "up": stat_int(stat_row(), "CurrentCall"),
    }

now_ms = lambda: time.time() * 1000
# 1. all calls placed (bounded)
deadline = t0_ms + (ramp * 3 + 30) * 1000
created = 0
while now_ms() < deadline and alive(spid):
    if not alive(dpid):
        sys.exit(log("dialtone exited during the ramp") or 3)
    created = stat_int(stat_row(), "OutgoingCall(C)") or 0
    if created >= calls:
        break
    time.sleep(0.25)
print(f"created={created}")
print(f"ramped_ms={now_ms() - t0_ms:.0f}")
if created < calls:
    log(f"warning: SIPp placed only {created} of {calls} calls in time")
time.sleep(settle)
# 2. the window: at most `window` s, and over 2 s before the first call hangs up
end_ms = min(now_ms() + window * 1000, t0_ms + (hold - 2) * 1000)
if end_ms - now_ms() < 10_000:
    log(f"warning: the steady window is only {(end_ms - now_ms()) / 1000:.1f} s (the ramp took long)")
if end_ms - now_ms() < 1000:
    sys.exit(log("no steady window left; use a longer --hold or a higher --rate") or 3)
if not alive(dpid):
    sys.exit(log("dialtone exited") or 3)
d_socks = socket_inodes(dpid)
table = udp_table()
# RTP: the even ports of the range (the odd one above is the call's RTCP socket)
rtp = {i for i in d_socks if i in table and rtp_lo <= table[i][0] <= rtp_hi and table[i][0] % 2 == 0}
echo = {i for i in socket_inodes(spid) if i in table and table[i][0] == media_port}
samples = [sample(rtp, echo)]
log(f"sampling for {(end_ms - now_ms()) / 1000:.0f} s with {samples[0]['up']} calls up")
while now_ms() < end_ms - 50:
    time.sleep(min(1.0, max(0.0, (end_ms - now_ms()) / 1000)))
    samples.append(sample(rtp, echo))
a, b = samples[0], samples[-1]
dt = b["t"] - a["t"]
tck = os.sysconf("SC_CLK_TCK")
print(f"window_s={dt:.3f}")
print(f"up_start={a['up']}")
print(f"up_end={b['up']}")
print(f"load_start={a['load1']}")
print(f"load_end={b['load1']}")
if b["cpu_total"] > a["cpu_total"]:
    total = b["cpu_total"] - a["cpu_total"]
    print(f"machine_busy_pct={100 - (b['cpu_idle'] - a['cpu_idle']) / total * 100:.1f}")
    # softirq: the kernel's packet processing. With tick-based accounting (no
    # CONFIG_IRQ_TIME_ACCOUNTING) it is also in the sys time of whichever process ran it;
    # on loopback that is mostly the sender (its sendto delivers into the receiver's socket).
    print(f"machine_softirq_pct={(b['cpu_softirq'] - a['cpu_softirq']) / total * 100:.1f}")
for p in ("d", "s"):
    if "utime" in a[p] and "utime" in b[p]:
        print(f"{p}_user_pct={(b[p]['utime'] - a[p]['utime']) / tck / dt * 100:.2f}")
        print(f"{p}_sys_pct={(b[p]['stime'] - a[p]['stime']) / tck / dt * 100:.2f}")
        # the busiest and quietest second
        per = [((y[p]["utime"] + y[p]["stime"]) - (x[p]["utime"] + x[p]["stime"])) / tck / (y["t"] - x["t"]) * 100
               for x, y in zip(samples, samples[1:]) if "utime" in x[p] and "utime" in y[p]]
        if per:
            print(f"{p}_cpu_min_pct={min(per):.1f}")
            print(f"{p}_cpu_max_pct={max(per):.1f}")
    for k in ("VmRSS", "VmHWM", "Threads"):
        if k in b[p]:
            print(f"{p}_{k}={b[p][k]}")
both = [i for i in a["rtp"] if i in b["rtp"]]
print(f"rtp_socks_start={len(a['rtp'])}")
print(f"rtp_socks_end={len(b['rtp'])}")
print(f"rtp_drops={sum(b['rtp'][i][2] - a['rtp'][i][2] for i in both)}")
print(f"rtp_drops_before={sum(a['rtp'][i][2] for i in a['rtp'])}")
print(f"rtp_rxq_end={sum(b['rtp'][i][1] for i in both)}")
print(f"echoed={b['echo'] - a['echo']}")
rates = [(y["echo"] - x["echo"]) / (y["t"] - x["t"]) for x, y in zip(samples, samples[1:])]
if rates:
    print(f"echo_pps_min={min(rates):.0f}")
    print(f"echo_pps_max={max(rates):.0f}")
PY
[[ "$SAMPLER_RC" == 0 ]] || log "warning: the sampler failed (exit status $SAMPLER_RC); figures are missing"

# --- the end ------------------------------------------------------------------------------
log "waiting for SIPp to hang up (at most $((SIPP_TIMEOUT + 10)) s)"
deadline=$((T0 + (SIPP_TIMEOUT + 10) * 1000))
while alive "$SPID" && [[ $(now_ms) -lt $deadline ]]; do sleep 0.5; done
if alive "$SPID"; then
    log "warning: SIPp still running; stopping it"
    kill "$SPID" 2>/dev/null || true
fi
SIPP_RC=0
wait "$SPID" || SIPP_RC=$?
log "stopping dialtone (SIGINT: it hangs up what is left, waits for its media tasks and logs)"
kill -INT "$DPID" 2>/dev/null || true
for ((i = 0; i < 300; i++)); do
    alive "$DPID" || break
    sleep 0.1
done
if alive "$DPID"; then
    log "warning: dialtone did not exit within 30 s of SIGINT; killing it"
    kill -KILL "$DPID" 2>/dev/null || true
fi
wait "$DPID" 2>/dev/null || true

# --- report -------------------------------------------------------------------------------
python3 - "$WORK" "$CALLS" "$HOLD" "$RATE" "$CODEC" "$RECORD" "$SIPP_RC" "$(nproc)" "$SETSID" <<'PY'
import re, sys
work, calls, hold, rate, codec, record, sipp_rc, ncpu, setsid = sys.argv[1:10]
calls, hold, ncpu = int(calls), int(hold), int(ncpu)

w = {}
try:
    for line in open(f"{work}/window.txt"):
        k, _, v = line.strip().partition("=")
        try:
            w[k] = float(v)
        except ValueError:
            pass
except OSError:
    pass

stat = {}
try:
    rows = [l.rstrip("\r\n").split(";") for l in open(f"{work}/stat.csv") if l.strip()]
    stat = dict(zip(rows[0], rows[-1]))
except (OSError, IndexError):
    pass
def s(name):
    try:
        return int(stat.get(name, ""))
    except ValueError:
        return None
def g(k, fmt="{:.0f}", default="?"):
    return fmt.format(w[k]) if k in w else default

n = int(w.get("up_start") or calls)
dt = w.get("window_s", 0)
print()
print(f"media load: {calls} calls, {codec}, record={'on' if record == '1' else 'off'}, {rate} cps "
      f"(all placed after {g('ramped_ms', '{:.0f}')} ms), hold {hold} s; {ncpu} CPUs; "
      f"{'separate sessions' if setsid == '1' else 'one session'}")
print(f"  calls up in the window:  {g('up_start')} at start, {g('up_end')} at end (SIPp's count)")
print(f"  window:                  {dt:.1f} s; load average {g('load_start', '{:.2f}')} -> {g('load_end', '{:.2f}')}; "
      f"whole machine busy {g('machine_busy_pct')} % of {ncpu} CPUs, of which softirq (kernel packet "
      f"processing, also counted in the processes' sys time) {g('machine_softirq_pct')} % (/proc/stat: "
      f"tick-sampled, low at light load; the per-process figures are exact)")
for name, p in (("dialtone", "d"), ("SIPp", "s")):
    if f"{p}_user_pct" not in w:
        print(f"  {name + ' CPU:':<24} not measured")
        continue
    u, sy = w[f"{p}_user_pct"], w[f"{p}_sys_pct"]
    print(f"  {name + ' CPU:':<24} {u + sy:.1f} % of one core (user {u:.1f} %, sys {sy:.1f} %; seconds "
          f"{g(p + '_cpu_min_pct')}-{g(p + '_cpu_max_pct')} %), {(u + sy) / n:.3f} % per call; "
          f"RSS {w.get(p + '_VmRSS', 0) / 1024:.0f} MB (peak {w.get(p + '_VmHWM', 0) / 1024:.0f} MB), "
          f"{g(p + '_Threads')} threads")
if dt > 0 and "rtp_drops" in w:
    sent = n * 50 * dt
    print(f"  dialtone RTP sockets:    {g('rtp_socks_start')} at start, {g('rtp_socks_end')} at end; kernel drops "
          f"(socket buffer full) in the window {g('rtp_drops')} of ~{sent:.0f} packets sent "
          f"({w['rtp_drops'] / sent * 100:.2f} %), {g('rtp_drops_before')} before it; "
          f"{w.get('rtp_rxq_end', 0) / 1024:.0f} KiB queued at the end")
    print(f"  echo:                    {w.get('echoed', 0) / dt:.0f} packets/s came back to SIPp "
          f"({w.get('echoed', 0) / sent * 100:.1f} % of the {n * 50} packets/s SIPp should send; "
          f"seconds {g('echo_pps_min')}-{g('echo_pps_max')})")

# dialtone's media totals (cumulative), every 10 s and at exit:
#   "... INFO dialtone::serve: media calls=.. rx_packets=.. rx_lost=.. rx_late=.. concealed=.. tx_packets=..
#    ring_drops=.."
# (not the per-call "call media call=.. rx_packets=.." lines)
ansi = re.compile(r"\x1b\[[0-9;]*m")
media = []
try:
    for line in open(f"{work}/dialtone.log", errors="replace"):
        line = ansi.sub("", line)
        if re.search(r"\bmedia\s+calls=", line) and "rx_packets=" in line:
            media.append(dict(re.findall(r"(\w+)=(\S+)", line)))
except OSError:
    pass
if media:
    m = media[-1]
    def num(k):
        try:
            return int(m.get(k, "").strip('"'))
        except ValueError:
            return None
    rx, lost = num("rx_packets"), num("rx_lost")
    print(f"  dialtone media line:     {len(media)} logged; the last: " + " ".join(f"{k}={v}" for k, v in m.items()))
    if rx is not None and lost is not None and rx + lost > 0:
        print(f"  loss (dialtone):         {lost / (rx + lost) * 100:.3f} % (rx_lost / (rx_packets + rx_lost))")
    print(f"                           (SIPp sends about {calls * hold * 50} packets in all: "
          f"{calls} calls x {hold} s x 50/s)")
else:
    print("  loss (dialtone):         dialtone reported no media line")

extra = ("OutOfCallMsgs(C)", "DeadCallMsgs(C)")
def reported(k):
    return k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" or k in extra
fails = {k: v for k, v in stat.items() if reported(k) and v not in ("", "0")}
print(f"  SIPp:                    successful {s('SuccessfulCall(C)')}, failed {s('FailedCall(C)')}, "
      f"retransmissions {s('Retransmissions(C)')}, exit status {sipp_rc}"
      + (f"; {', '.join(f'{k}={v}' for k, v in fails.items())}" if fails else ""))
try:
    trips = sum(1 for l in open(f"{work}/errors.log", errors="replace") for _ in re.finditer("watchdog", l))
except OSError:
    trips = 0
if trips:
    print(f"  SIPp overload:           {trips} watchdog warnings (SIPp itself fell behind: the load generator "
          "is saturated)")
PY
