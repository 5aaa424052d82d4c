#!/usr/bin/env bash
# Load test: calls per second that dialtone sustains against SIPp's built-in `uac`
# scenario (INVITE / 200 / ACK / BYE / 200), step by step at increasing rates, then the
# same steps SIPp uac -> SIPp uas as this machine's ceiling. Loopback only.
#
#   benches/sipp_load.sh [--transport udp|tcp] [--max-rate N] [--rates "500 1000 ..."]
#                        [--calls-per-rate K] [--target 127.0.0.1:PORT] [--no-baseline]
#                        [--keep]
#
#   --transport     udp (sipp -t u1, default) or tcp (sipp -t t1)
#   --max-rate      drop steps above N cps (default: no limit)
#   --rates         the steps, cps (default: "500 1000 2000 3000 4000")
#   --calls-per-rate  each step places rate*K calls (default 5, i.e. ~5 s per step)
#   --target        an already running dialtone (loopback address); default: start
#                   target/release/dialtone serve on 127.0.0.1:5060 with a temp data dir
#   --no-baseline   skip the SIPp uac -> SIPp uas ceiling
#   --keep          keep the work directory (SIPp CSVs, screens, dialtone log)
#
# Every step is bounded: -m rate*K calls and -timeout 30s. Prints one table at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRANSPORT=udp
MAX_RATE=""
RATES="500 1000 2000 3000 4000"
CALLS_PER_RATE=5
TARGET=""
BASELINE=1
KEEP=0
STEP_TIMEOUT=30

die() { printf 'sipp_load: %s\n' "$*" >&2; exit 1; }
log() { printf '==> %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --transport) TRANSPORT="${2:?}"; shift 2 ;;
        --max-rate) MAX_RATE="${2:?}"; shift 2 ;;
        --rates) RATES="${2:?}"; shift 2 ;;
        --calls-per-rate) CALLS_PER_RATE="${2:?}"; shift 2 ;;
        --target) TARGET="${2:?}"; shift 2 ;;
        --no-baseline) BASELINE=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

case "$TRANSPORT" in
    udp) SIPP_T=u1 ;;
    tcp) SIPP_T=t1 ;;
    *) die "--transport must be udp or tcp" ;;
esac
[[ "$CALLS_PER_RATE" =~ ^[0-9]+$ && "$CALLS_PER_RATE" -gt 0 ]] || die "--calls-per-rate must be a positive integer"
if [[ -n "$MAX_RATE" ]]; then
    [[ "$MAX_RATE" =~ ^[0-9]+$ && "$MAX_RATE" -gt 0 ]] || die "--max-rate must be a positive integer"
fi
command -v sipp >/dev/null 2>&1 || die "sipp not found (Debian package sip-tester; ./dev test installs it)"

steps=()
for r in $RATES; do
    [[ "$r" =~ ^[0-9]+$ && "$r" -gt 0 ]] || die "bad rate: $r"
    if [[ -z "$MAX_RATE" || "$r" -le "$MAX_RATE" ]]; then steps+=("$r"); fi
done
if [[ ${#steps[@]} -eq 0 ]]; then steps=("$MAX_RATE"); fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dialtone-load.XXXXXX")"
PIDS=()

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

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Is something listening on this loopback host:port for our transport?
listening() {
    local port="${1##*:}"
    if command -v ss >/dev/null 2>&1; then
        if [[ "$TRANSPORT" == udp ]]; then
            ss -Hlun "sport = :$port" 2>/dev/null | grep -q .
        else
            ss -Hltn "sport = :$port" 2>/dev/null | grep -q .
        fi
    else
        # no ss: give the server a moment and hope
        sleep 1
    fi
}

wait_listening() {
    local addr="$1" pid="$2" i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        listening "$addr" && return 0
        sleep 0.1
    done
    return 1
}

check_loopback() {
    local host="${1%:*}"
    case "$host" in
        127.* | localhost | "[::1]") ;;
        *) die "only loopback targets are allowed, not $1" ;;
    esac
}

# One step: SIPp uac at $rate against $target. Prints "ok failed achieved elapsed".
run_step() {
    local name="$1" target="$2" rate="$3" port="$4"
    local calls=$((rate * CALLS_PER_RATE))
    local dir="$WORK/$name-$rate"
    mkdir -p "$dir"
    local rc=0
    (
        cd "$dir"
        exec sipp -sn uac "$target" -i 127.0.0.1 -p "$port" -t "$SIPP_T" \
            -r "$rate" -m "$calls" -timeout "${STEP_TIMEOUT}s" -nostdin \
            -trace_stat -stf "$dir/stat.csv" -fd 1 -trace_screen \
            -trace_err -error_file "$dir/errors.log" >"$dir/sipp.out" 2>&1
    ) &
    local spid=$!
    PIDS+=("$spid")
    wait "$spid" || rc=$?
    python3 - "$dir" "$calls" "$rc" <<'PY'
import glob, re, sys
d, calls, rc = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ok = failed = None
elapsed = None
try:
    rows = [l.rstrip("\r\n").split(";") for l in open(f"{d}/stat.csv") if l.strip()]
    head, last = rows[0], rows[-1]
    col = {name: i for i, name in enumerate(head)}
    ok = int(last[col["SuccessfulCall(C)"]])
    failed = int(last[col["FailedCall(C)"]])
    epoch = lambda v: float(v.split("\t")[-1])
    elapsed = epoch(last[col["CurrentTime"]]) - epoch(last[col["StartTime"]])
except (OSError, IndexError, KeyError, ValueError):
    pass
if ok is None:  # fall back to the final screen dump
    for f in glob.glob(f"{d}/*_screen.log"):
        text = open(f, errors="replace").read()
        m = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
        n = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
        t = re.findall(r"Elapsed Time\s*\|[^|]*\|\s*(\d+):(\d+):(\d+):(\d+)", text)
        if m: ok = int(m[-1])
        if n: failed = int(n[-1])
        if t:
            h, mi, s, us = map(int, t[-1])
            elapsed = h * 3600 + mi * 60 + s + us / 1e6
ok = ok or 0
failed = failed or 0
if failed == 0 and ok < calls:
    failed = calls - ok  # calls that never finished before -timeout
cps = ok / elapsed if elapsed else 0.0
print(f"{ok} {failed} {cps:.1f} {elapsed or 0:.2f} {rc}")
PY
}

RESULTS=()

run_series() {
    local name="$1" target="$2" base_port="$3" i=0 rate res
    for rate in "${steps[@]}"; do
        log "$name: $rate cps, $((rate * CALLS_PER_RATE)) calls over $TRANSPORT"
        res="$(run_step "$name" "$target" "$rate" $((base_port + i)))"
        RESULTS+=("$name $TRANSPORT $rate $((rate * CALLS_PER_RATE)) $res")
        i=$((i + 1))
    done
}

# --- dialtone -----------------------------------------------------------------------------
if [[ -n "$TARGET" ]]; then
    check_loopback "$TARGET"
    DIALTONE_TARGET="$TARGET"
    log "using running dialtone at $TARGET"
else
    BIN="${DIALTONE_BIN:-$ROOT/target/release/dialtone}"
    [[ -x "$BIN" ]] || die "$BIN not found: build it with 'cargo build --release --bin dialtone' (or ./dev test)"
    DIALTONE_TARGET=127.0.0.1:5060
    mkdir -p "$WORK/data"
    log "starting $BIN serve on $DIALTONE_TARGET (data dir $WORK/data)"
    DIALTONE_SIP_LISTEN="$DIALTONE_TARGET" \
        DIALTONE_HTTP_LISTEN=127.0.0.1:18080 \
        DIALTONE_DATA_DIR="$WORK/data" \
        DIALTONE_RTP_PORTS="${DIALTONE_RTP_PORTS:-20000-39999}" \
        "$BIN" serve >"$WORK/dialtone.log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
    wait_listening "$DIALTONE_TARGET" "$DPID" ||
        die "dialtone did not start listening on $DIALTONE_TARGET; log: $(tail -20 "$WORK/dialtone.log")"
fi
run_series dialtone "$DIALTONE_TARGET" 15100

# --- ceiling: SIPp uac -> SIPp uas --------------------------------------------------------
if [[ "$BASELINE" == 1 ]]; then
    UAS_ADDR=127.0.0.1:15090
    log "starting SIPp uas on $UAS_ADDR (the machine's ceiling)"
    (
        cd "$WORK"
        exec sipp -sn uas -i 127.0.0.1 -p 15090 -t "$SIPP_T" -nostdin \
            -timeout $((STEP_TIMEOUT * (${#steps[@]} + 1)))s >"$WORK/uas.out" 2>&1
    ) &
    UPID=$!
    PIDS+=("$UPID")
    wait_listening "$UAS_ADDR" "$UPID" || die "SIPp uas did not start; $(tail -5 "$WORK/uas.out")"
    run_series sipp-uas "$UAS_ADDR" 15200
fi

# --- report -------------------------------------------------------------------------------
printf '\n%-10s %-5s %6s %7s %7s %7s %12s %9s %4s\n' \
    target proto rate calls ok failed achieved_cps elapsed_s rc
for row in "${RESULTS[@]}"; do
    # shellcheck disable=SC2086 # split the row into its fields
    printf '%-10s %-5s %6s %7s %7s %7s %12s %9s %4s\n' $row
done
