#!/usr/bin/env bash
# Load through Kamailio's dispatcher (fixtures/kamailio/dispatcher.cfg) in front of 1 and
# then 3 `dialtone serve` nodes (inbound echo), in the same run: SIPp places calls with
# fixtures/kamailio/uac_cluster.xml (INVITE, 200, ACK, a pause, BYE through the recorded
# route) at increasing rates. Loopback only; every step is bounded (-m rate*K calls,
# -timeout 60s).
#
#   benches/cluster_load.sh [--nodes "1 3"] [--rates "200 400 800"] [--calls-per-rate 5]
#                           [--hold-ms 1000] [--workers 1] [--keep]
#
#   --nodes           cluster sizes to measure, in order (default "1 3")
#   --rates           SIPp steps, calls/s (default "200 400 800")
#   --calls-per-rate  each step places rate*K calls (default 5, about 5 s a step)
#   --hold-ms         how long each call stays up (SIPp -d, default 1000)
#   --workers         Kamailio's UDP worker processes (default 1: with more, a 180 and the 200
#                     right behind it may be relayed by two processes and reach SIPp
#                     reordered, which it counts as a failed call)
#   --keep            keep the work directory (SIPp CSVs, logs)
#
# Prints one table: nodes, rate, calls, ok, failed, achieved cps, and calls per node.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODES="1 3"
RATES="200 400 800"
CALLS_PER_RATE=5
HOLD_MS=1000
WORKERS=1
KEEP=0

die() { printf 'cluster_load: %s\n' "$*" >&2; exit 1; }
log() { printf '==> %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --nodes) NODES="${2:?}"; shift 2 ;;
        --rates) RATES="${2:?}"; shift 2 ;;
        --calls-per-rate) CALLS_PER_RATE="${2:?}"; shift 2 ;;
        --hold-ms) HOLD_MS="${2:?}"; shift 2 ;;
        --workers) WORKERS="${2:?}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

command -v sipp >/dev/null 2>&1 || die "sipp not found (Debian sip-tester; ./dev test installs it)"
KAMAILIO="$(command -v kamailio || echo /usr/sbin/kamailio)"
[[ -x "$KAMAILIO" ]] || die "kamailio not found (Debian kamailio; ./dev test installs it)"
BIN="${DIALTONE_BIN:-$ROOT/target/release/dialtone}"
[[ -x "$BIN" ]] || die "$BIN not found: cargo build --release --bin dialtone"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dialtone-cluster.XXXXXX")"
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    # Kamailio's workers are in its process group.
    [[ -n "${KPID:-}" ]] && kill -- -"$KPID" 2>/dev/null || true
    PIDS=()
    KPID=""
}
cleanup() {
    stop_all
    if [[ "$KEEP" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true

wait_udp() {
    local port="$1" i
    for ((i = 0; i < 100; i++)); do
        ss -Hlun "sport = :$port" 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

# Completed calls in a node's store, from its /metrics.
completed() {
    curl -s "http://127.0.0.1:$1/metrics" | awk -F' ' '/^dialtone_calls\{status="completed"\}/ {print $2}'
}

RESULTS=()
for n in $NODES; do
    dir="$WORK/nodes-$n"
    mkdir -p "$dir"
    : >"$dir/dispatcher.list"
    https=()
    for ((i = 0; i < n; i++)); do
        sip=$((25060 + i)) http=$((28080 + i))
        rtp_lo=$((40000 + i * 6000)) rtp_hi=$((40000 + i * 6000 + 5999))
        mkdir -p "$dir/node$i"
        DIALTONE_SIP_LISTEN="127.0.0.1:$sip" DIALTONE_HTTP_LISTEN="127.0.0.1:$http" \
            DIALTONE_DATA_DIR="$dir/node$i" DIALTONE_RTP_PORTS="$rtp_lo-$rtp_hi" \
            DIALTONE_RTP_TIMEOUT=0 DIALTONE_DRAIN_TIMEOUT=0 \
            "$BIN" serve >"$dir/node$i/dialtone.log" 2>&1 &
        PIDS+=("$!")
        wait_udp "$sip" || die "node $i did not listen (log: $dir/node$i/dialtone.log)"
        echo "1 sip:127.0.0.1:$sip" >>"$dir/dispatcher.list"
        https+=("$http")
    done
    kport=25050
    setsid "$KAMAILIO" -f "$ROOT/fixtures/kamailio/dispatcher.cfg" -DD -E -n "$WORKERS" -N 1 -S \
        -m 256 -M 8 -l "udp:127.0.0.1:$kport" -l "tcp:127.0.0.1:$kport" \
        -A "DS_LIST=\"$dir/dispatcher.list\"" -w "$dir" -Y "$dir" -P "$dir/kamailio.pid" \
        >"$dir/kamailio.log" 2>&1 &
    KPID=$!
    wait_udp "$kport" || die "kamailio did not listen (log: $dir/kamailio.log)"
    sleep 2 # the first OPTIONS round
    step=0
    for rate in $RATES; do
        calls=$((rate * CALLS_PER_RATE))
        before=()
        for h in "${https[@]}"; do before+=("$(completed "$h")"); done
        log "$n node(s): $rate cps, $calls calls of $HOLD_MS ms"
        sdir="$dir/step-$rate"
        mkdir -p "$sdir"
        (cd "$sdir" && exec sipp -sf "$ROOT/fixtures/kamailio/uac_cluster.xml" "127.0.0.1:$kport" -s echo \
            -i 127.0.0.1 -p $((26000 + step)) -mp $((27000 + step * 10)) -r "$rate" -m "$calls" -d "$HOLD_MS" \
            -timeout 60s -nostdin -trace_stat -stf "$sdir/stat.csv" -trace_err -error_file "$sdir/errors.log" >"$sdir/sipp.out" 2>&1) || true
        per=()
        for ((i = 0; i < n; i++)); do per+=($(($(completed "${https[$i]}") - before[i]))); done
        res="$(python3 - "$sdir/stat.csv" "$calls" "$HOLD_MS" <<'PY'
import sys
rows = [l.rstrip("\r\n").split(";") for l in open(sys.argv[1]) if l.strip()]
head, last = rows[0], rows[-1]
col = {name: i for i, name in enumerate(head)}
ok, failed = int(last[col["SuccessfulCall(C)"]]), int(last[col["FailedCall(C)"]])
epoch = lambda v: float(v.split("\t")[-1])
elapsed = epoch(last[col["CurrentTime"]]) - epoch(last[col["StartTime"]])
calls = int(sys.argv[2])
if failed == 0 and ok < calls:
    failed = calls - ok
# Achieved: calls set up per second of the placing phase (the last hold not counted).
print(ok, failed, f"{ok / max(elapsed - float(sys.argv[3]) / 1000, 1e-3):.1f}")
PY
)"
        RESULTS+=("$n $rate $calls $res $(IFS=/; echo "${per[*]}")")
        step=$((step + 1))
    done
    stop_all
done

printf '\n| nodes | rate (cps) | calls | ok | failed | achieved cps | completed per node |\n|---|---|---|---|---|---|---|\n'
for r in "${RESULTS[@]}"; do
    read -r n rate calls ok failed cps per <<<"$r"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$rate" "$calls" "$ok" "$failed" "$cps" "$per"
done
