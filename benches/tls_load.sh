#!/usr/bin/env bash
# SIP over TLS against UDP, in one run (issue 14): calls per second `dialtone serve` (echo)
# completes from SIPp's built-in `uac` (INVITE / 200 / ACK / BYE / 200, no media), first over
# UDP, then over TLS. Debian's SIPp has no TLS, so its TCP goes through socat, which opens one
# TLS connection to dialtone per SIPp connection (SIPp -t t1: one connection, as a trunk
# keeps). Then the memory of idle TLS connections: N clients (Python's ssl) handshake and stay
# connected; dialtone's resident memory before and after. Loopback only; every step bounded.
#
#   benches/tls_load.sh [--rate R] [--calls K] [--idle N]    (defaults 500, 5000, 500)
#
# Needs sipp, socat, openssl, python3 and target/release/dialtone (cargo build --release).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RATE=500; CALLS=5000; IDLE=500
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rate) RATE="${2:?}"; shift 2 ;;
        --calls) CALLS="${2:?}"; shift 2 ;;
        --idle) IDLE="${2:?}"; shift 2 ;;
        *) echo "tls_load: unknown argument $1" >&2; exit 1 ;;
    esac
done
for c in sipp socat openssl python3; do command -v "$c" >/dev/null || { echo "tls_load: $c not found" >&2; exit 1; }; done
BIN="$ROOT/target/release/dialtone"
[[ -x "$BIN" ]] || { echo "tls_load: build first: cargo build --release" >&2; exit 1; }
W=$(mktemp -d)
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$W"; }
PIDS=()
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout "$W/key.pem" -out "$W/cert.pem" \
    -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
SIP=35060; TLS=35061; HTTP=35080; RELAY=35062
DIALTONE_SIP_LISTEN=127.0.0.1:$SIP DIALTONE_SIP_TLS_LISTEN=127.0.0.1:$TLS DIALTONE_HTTP_LISTEN=127.0.0.1:$HTTP \
DIALTONE_TLS_CERT="$W/cert.pem" DIALTONE_TLS_KEY="$W/key.pem" DIALTONE_DATA_DIR="$W/data" \
DIALTONE_RTP_PORTS=40000-49999 "$BIN" serve >"$W/dialtone.log" 2>&1 &
DPID=$!; PIDS+=("$DPID")
sleep 1
socat TCP-LISTEN:$RELAY,bind=127.0.0.1,reuseaddr,fork OPENSSL:127.0.0.1:$TLS,verify=0 2>/dev/null &
PIDS+=("$!")
sleep 0.5
cpu() { awk '{print $14+$15}' "/proc/$DPID/stat"; }
step() {
    local name="$1" t="$2" target="$3"
    local c0 t0 t1 c1
    c0=$(cpu); t0=$(date +%s.%N)
    sipp -sn uac "$target" -t "$t" -i 127.0.0.1 -p 0 -r "$RATE" -m "$CALLS" -d 0 -timeout 60s -nostdin \
        -trace_stat -stf "$W/$name.csv" >/dev/null 2>&1 || true
    t1=$(date +%s.%N); c1=$(cpu)
    local ok failed
    ok=$(python3 - "$W/$name.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, last = rows[0], rows[-1]
print(last[h.index('SuccessfulCall(C)')], last[h.index('FailedCall(C)')])
PY
)
    printf '%-4s %6s calls ok/failed  %6.1f s  %7.1f calls/s  dialtone CPU %.2f s (%.0f µs/call)\n' \
        "$name" "$ok" "$(echo "$t1 - $t0" | bc)" "$(echo "${ok%% *} / ($t1 - $t0)" | bc -l)" \
        "$(echo "($c1 - $c0) / 100" | bc -l)" "$(echo "($c1 - $c0) * 10000 / ${ok%% *}" | bc -l)"
}
echo "SIPp uac at $RATE calls/s, $CALLS calls each:"
step udp u1 "127.0.0.1:$SIP"
step tls t1 "127.0.0.1:$RELAY"
rss() { awk '/VmRSS/ {print $2}' "/proc/$DPID/status"; }
before=$(rss)
python3 - "$TLS" "$IDLE" "$W/out" <<'PY' &
import socket, ssl, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
conns = []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
    conns.append(s)
open(sys.argv[3], "w").write("up")
time.sleep(5)
PY
PY_PID=$!
for _ in $(seq 50); do [[ -f "$W/out" ]] && break; sleep 0.2; done
sleep 1
after=$(rss)
wait "$PY_PID" || true
printf 'idle TLS connections: %d; dialtone RSS %d KiB -> %d KiB: %.1f KiB per connection\n' \
    "$IDLE" "$before" "$after" "$(echo "($after - $before) / $IDLE" | bc -l)"
