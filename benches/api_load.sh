#!/usr/bin/env bash
# Control API load test (issue 5), loopback only. Two parts:
#
#  1. list: seeds a dialtone.db with --calls finished calls through the real store
#     (examples/seed_calls.rs), starts `dialtone serve` on it and measures with wrk the
#     latency (p50/p90/p99) of GET /api/calls/list?limit=5000, limit=50, a status+contact
#     filter and a one-week date range, with 1 client (sequential) and with --clients.
#  2. create: for each rate in --create-rates, a fresh data dir, a SIPp trunk
#     (benches/api_load_uas.xml: answers at once, sends BYE after --hold ms) and wrk POSTing
#     /api/calls/create at that rate (0: as fast as dialtone answers) for --duration s,
#     at most --max-calls creates. Reports the 201s, the calls' final statuses in the store
#     (completed = a real SIP call answered and hung up), SIPp's successful/failed calls,
#     the SIP-side rate, dialtone's CPU per thread (the SIP loop is the main thread,
#     "dialtone"; HTTP, media and readers run on "tokio-rt-worker" threads) and its log's
#     warnings.
#
#   benches/api_load.sh [--calls N] [--db PATH] [--duration S] [--clients N]
#                       [--create-rates "500 1000 0"] [--max-calls N] [--hold MS]
#                       [--create-clients N] [--port-base P] [--rtp-ports LO-HI]
#                       [--skip-list] [--skip-create] [--keep]
#
#   --calls        calls to seed for part 1 (default 100000)
#   --db           reuse this seeded dialtone.db (copied; not modified) instead of seeding
#   --duration     seconds of each wrk run, both parts (default 10)
#   --clients      concurrent clients for the second list run (default 4; the first is 1)
#   --create-rates creates/s steps for part 2, 0 = unpaced (default "500 1000 0")
#   --max-calls    cap on creates per step (default: rate x duration; 1500 unpaced, which
#                  with a 1 s hold stays inside the default 2000 RTP port pairs)
#   --hold         how long the SIPp trunk holds each answered call, ms (default 1000)
#   --create-clients  wrk connections for part 2 (default 16)
#   --port-base    dialtone SIP P, HTTP P+20, SIPp P+30, SIPp media P+40 (default 27060)
#   --rtp-ports    dialtone's DIALTONE_RTP_PORTS (default 20000-23999: 2000 calls)
#   --skip-list / --skip-create   run only one part
#   --keep         keep the work directory (db, logs, SIPp stats, wrk output)
#
# Needs: target/release/dialtone and target/release/examples/seed_calls (cargo build
# --release --bin dialtone --example seed_calls), wrk (Debian wrk, LuaJIT), sipp
# (sip-tester), python3. The binary is copied into the work directory first, so a rebuild
# during the run does not replace it. Every wait is bounded; a trap stops what it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SEED_CALLS=100000
DB=""
DURATION=10
CLIENTS=4
CREATE_RATES="500 1000 0"
MAX_CALLS=""
HOLD=1000
CREATE_CLIENTS=16
PORT_BASE=27060
RTP_PORTS=20000-23999
DO_LIST=1
DO_CREATE=1
KEEP=0
KEY="bench-internal-key"

die() { printf 'api_load: %s\n' "$*" >&2; exit 1; }
log() { printf '==> %s\n' "$*" >&2; }
posint() { [[ "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] || die "$2 must be a positive integer, not '$1'"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --calls) SEED_CALLS="${2:?}"; shift 2 ;;
        --db) DB="${2:?}"; shift 2 ;;
        --duration) DURATION="${2:?}"; shift 2 ;;
        --clients) CLIENTS="${2:?}"; shift 2 ;;
        --create-rates) CREATE_RATES="${2:?}"; shift 2 ;;
        --max-calls) MAX_CALLS="${2:?}"; shift 2 ;;
        --hold) HOLD="${2:?}"; shift 2 ;;
        --create-clients) CREATE_CLIENTS="${2:?}"; shift 2 ;;
        --port-base) PORT_BASE="${2:?}"; shift 2 ;;
        --rtp-ports) RTP_PORTS="${2:?}"; shift 2 ;;
        --skip-list) DO_LIST=0; shift ;;
        --skip-create) DO_CREATE=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
posint "$SEED_CALLS" --calls
posint "$DURATION" --duration
posint "$CLIENTS" --clients
posint "$HOLD" --hold
posint "$CREATE_CLIENTS" --create-clients
posint "$PORT_BASE" --port-base
[[ -z "$MAX_CALLS" ]] || posint "$MAX_CALLS" --max-calls
for r in $CREATE_RATES; do [[ "$r" =~ ^[0-9]+$ ]] || die "bad rate: $r"; done
[[ "$RTP_PORTS" =~ ^[0-9]+-[0-9]+$ ]] || die "--rtp-ports must be LO-HI"
[[ -z "$DB" || -f "$DB" ]] || die "--db $DB: no such file"

SIP_PORT=$PORT_BASE
HTTP_PORT=$((PORT_BASE + 20))
SIPP_PORT=$((PORT_BASE + 30))
SIPP_MEDIA=$((PORT_BASE + 40))
BASE_URL="http://127.0.0.1:$HTTP_PORT"

BIN_SRC="${DIALTONE_BIN:-$ROOT/target/release/dialtone}"
SEEDER="$ROOT/target/release/examples/seed_calls"
[[ -x "$BIN_SRC" ]] || die "$BIN_SRC not found: cargo build --release --bin dialtone"
command -v wrk >/dev/null 2>&1 || die "wrk not found (apt-get install wrk)"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
command -v curl >/dev/null 2>&1 || die "curl not found"
if [[ "$DO_CREATE" == 1 ]]; then
    command -v sipp >/dev/null 2>&1 || die "sipp not found (Debian package sip-tester)"
fi
if [[ "$DO_LIST" == 1 && -z "$DB" ]]; then
    [[ -x "$SEEDER" ]] || die "$SEEDER not found: cargo build --release --example seed_calls"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dialtone-api-load.XXXXXX")"
PIDS=()
DPID=""

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ "$KEEP" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cp "$BIN_SRC" "$WORK/dialtone"
BIN="$WORK/dialtone"

for p in "$SIP_PORT" "$HTTP_PORT" "$SIPP_PORT" "$SIPP_MEDIA"; do
    if ss -Hlntu "sport = :$p" 2>/dev/null | grep -q .; then die "port $p is in use (--port-base)"; fi
done

SUMMARY=()
note() { SUMMARY+=("$*"); printf '%s\n' "$*" >&2; }

# Starts dialtone serve on data dir $1 (extra environment after it), waits for /healthz.
start_dialtone() {
    local data="$1"; shift
    env DIALTONE_DATA_DIR="$data" DIALTONE_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" \
        DIALTONE_SIP_LISTEN="127.0.0.1:$SIP_PORT" DIALTONE_INTERNAL_KEY="$KEY" \
        DIALTONE_RTP_PORTS="$RTP_PORTS" "$@" "$BIN" serve >>"$data/dialtone.log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$DPID" 2>/dev/null || die "dialtone exited; log: $(tail -5 "$data/dialtone.log")"
        curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null && return 0
        sleep 0.1
    done
    die "dialtone did not answer /healthz in 30 s"
}

stop_pid() {
    local pid="$1" i
    kill -INT "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

api_get() { curl -fsS --max-time 30 -H "X-Internal-Key: $KEY" "$BASE_URL$1"; }

# utime+stime ticks of every thread of $1, by thread name: "name=ticks ..."
thread_cpu() {
    python3 - "$1" <<'PY'
import os, sys
pid = sys.argv[1]
by = {}
try:
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        name = s[s.index("(") + 1 : s.rindex(")")]
        f = s[s.rindex(")") + 2 :].split()
        key = "sip-loop(main)" if t == pid else name
        by[key] = by.get(key, 0) + int(f[11]) + int(f[12])
except OSError:
    pass
print(" ".join(f"{k.replace(' ', '_')}={v}" for k, v in sorted(by.items())))
PY
}

# % of one core per thread name between two thread_cpu samples over $3 seconds.
cpu_delta() {
    python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import sys
a = dict(kv.split("=") for kv in sys.argv[1].split())
b = dict(kv.split("=") for kv in sys.argv[2].split())
secs, hz = float(sys.argv[3]), float(sys.argv[4])
rows = sorted(((int(v) - int(a.get(k, 0))) / hz / secs * 100, k) for k, v in b.items())
total = sum(r[0] for r in rows)
print(f"total {total:.0f}% of a core: " + ", ".join(f"{k} {p:.0f}%" for p, k in reversed(rows) if p >= 0.5))
PY
}

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(uptime | sed 's/.*load/load/')"
note "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo ' (working tree modified)'), binary $(date -r "$BIN_SRC" -u +%FT%TZ)"
note "start: $(date -u +%FT%TZ), $(uptime | sed 's/.*load/load/')"

# --- part 1: list latency ------------------------------------------------------------------
if [[ "$DO_LIST" == 1 ]]; then
    mkdir -p "$WORK/list"
    if [[ -n "$DB" ]]; then
        log "copying $DB"
        cp "$DB" "$WORK/list/dialtone.db"
    else
        log "seeding $SEED_CALLS calls through dialtone_api::store::Store"
        seed_out="$(timeout 900 "$SEEDER" "$WORK/list/dialtone.db" "$SEED_CALLS")" || die "seeding failed"
        note "seed: $seed_out"
    fi
    # The seeded calls end before now; a week a month back is a date-range filter.
    week_from="$(date -u -d '-37 days' +%F)"
    week_to="$(date -u -d '-30 days' +%F)"
    start_dialtone "$WORK/list"
    queries=(
        "limit=5000"
        "limit=50"
        "status=completed&contact_id=contact_42&limit=50"
        "from=$week_from&to=$week_to&limit=5000"
        "status=completed&from=$week_from&to=$week_to&limit=50"
    )
    for q in "${queries[@]}"; do
        info="$(api_get "/api/calls/list?$q" | python3 -c 'import json,sys; b=sys.stdin.buffer.read(); d=json.loads(b)["data"]; print("%d of total %d, %d bytes" % (len(d["calls"]), d["total"], len(b)))')"
        for c in 1 "$CLIENTS"; do
            t=$((c < 2 ? 1 : 2))
            out="$(API_KEY="$KEY" timeout $((DURATION + 30)) wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s \
                -s "$ROOT/benches/api_load_list.lua" "$BASE_URL/api/calls/list?$q" 2>&1)" || die "wrk failed: $out"
            printf '%s\n' "$out" >>"$WORK/list/wrk.txt"
            note "list ?$q clients=$c: $(grep '^RESULT' <<<"$out" | sed 's/^RESULT //') [$info]"
        done
    done
    note "list: dialtone log warnings/errors: $(grep -cE ' (WARN|ERROR) ' "$WORK/list/dialtone.log" || true)"
    stop_pid "$DPID"
fi

# --- part 2: create throughput through a SIPp trunk ------------------------------------------
if [[ "$DO_CREATE" == 1 ]]; then
    for rate in $CREATE_RATES; do
        cap="${MAX_CALLS:-$((rate > 0 ? rate * DURATION : 1500))}"
        dir="$WORK/create-$rate"
        mkdir -p "$dir"
        log "create: rate $rate/s (0: unpaced), at most $cap calls, $DURATION s, hold $HOLD ms"
        (
            cd "$dir"
            exec sipp -sf "$ROOT/benches/api_load_uas.xml" -i 127.0.0.1 -p "$SIPP_PORT" -mp "$SIPP_MEDIA" \
                -t u1 -d "$HOLD" -nostdin -max_socket 65536 -timeout $((DURATION + HOLD / 1000 + 120))s \
                -trace_stat -stf "$dir/sipp_stat.csv" -fd 1 -trace_err -error_file "$dir/sipp_errors.log" \
                >"$dir/sipp.out" 2>&1
        ) &
        SPID=$!
        PIDS+=("$SPID")
        for ((i = 0; i < 50; i++)); do
            ss -Hlun "sport = :$SIPP_PORT" 2>/dev/null | grep -q . && break
            sleep 0.1
        done
        start_dialtone "$dir" DIALTONE_TRUNK="sip:127.0.0.1:$SIPP_PORT"
        c0="$(thread_cpu "$DPID")"; s0="$(proc_ticks "$SPID")"; t0=$(date +%s.%N)
        threads=$((CREATE_CLIENTS < 2 ? 1 : 2))
        out="$(API_KEY="$KEY" RATE="$rate" MAX_CALLS="$cap" THREADS="$threads" timeout $((DURATION + 30)) \
            wrk -t "$threads" -c "$CREATE_CLIENTS" -d "${DURATION}s" --timeout 10s \
            -s "$ROOT/benches/api_load_create.lua" "$BASE_URL/api/calls/create" 2>&1)" || die "wrk failed: $out"
        t1=$(date +%s.%N); c1="$(thread_cpu "$DPID")"; s1="$(proc_ticks "$SPID")"
        printf '%s\n' "$out" >"$dir/wrk.txt"
        secs="$(python3 -c "print(f'{$t1 - $t0:.2f}')")"
        # Let every call end: SIPp hangs up after --hold; bounded wait.
        # Calls a trunk dropped without a BYE stay up: give up HOLD + 15 s after wrk ends.
        live=-1
        deadline=$((SECONDS + HOLD / 1000 + 15))
        while ((SECONDS < deadline)); do
            live="$(api_get /api/calls/live | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["total"])' || echo -1)"
            [[ "$live" == 0 ]] && break
            sleep 0.1
        done
        sleep 1
        kill -INT "$SPID" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
        stop_pid "$DPID"
        stop_pid "$SPID"
        res="$(grep '^RESULT' <<<"$out" | sed 's/^RESULT //')"
        note "create rate=$rate cap=$cap: wrk $res over ${secs} s"
        note "  dialtone CPU during wrk: $(cpu_delta "$c0" "$c1" "$secs"); SIPp $(python3 -c "print(f'{($s1 - $s0) / $(getconf CLK_TCK) / $secs * 100:.0f}')")% of a core; live calls left: $live"
        python3 - "$dir" <<'PY' >>"$dir/summary.txt"
import sqlite3, sys
d = sys.argv[1]
db = sqlite3.connect(f"file:{d}/dialtone.db?mode=ro", uri=True)
rows = db.execute("SELECT status, COUNT(*) FROM calls GROUP BY status ORDER BY 2 DESC").fetchall()
print("  store: " + ", ".join(f"{s} {n}" for s, n in rows))
c0, c1, n = db.execute("SELECT MIN(created_at), MAX(created_at), COUNT(*) FROM calls").fetchone()
a0, a1, na = db.execute("SELECT MIN(answered_at), MAX(answered_at), COUNT(*) FROM calls WHERE answered_at IS NOT NULL").fetchone()
if n:
    print(f"  created {n} over {(c1 - c0) / 1000:.2f} s = {n / max(c1 - c0, 1) * 1000:.0f}/s;", end=" ")
if na:
    print(f"answered {na} over {(a1 - a0) / 1000:.2f} s = {na / max(a1 - a0, 1) * 1000:.0f}/s;", end=" ")
    q = db.execute("SELECT answered_at - created_at FROM calls WHERE answered_at IS NOT NULL ORDER BY 1").fetchall()
    pick = lambda p: q[min(len(q) - 1, int(len(q) * p))][0]
    print(f"create->answer p50 {pick(0.5)} ms p99 {pick(0.99)} ms max {q[-1][0]} ms")
else:
    print()
for s, r, n in db.execute("SELECT status, reason, COUNT(*) FROM calls WHERE status NOT IN ('completed') GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 8"):
    print(f"  not completed: {s} / {r}: {n}")
PY
        while IFS= read -r line; do note "$line"; done <"$dir/summary.txt"
        sipp_line="$(python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
try:
    rows = [l.rstrip("\r\n").split(";") for l in open(f"{d}/sipp_stat.csv") if l.strip()]
    col = {n: i for i, n in enumerate(rows[0])}
    last = rows[-1]
    g = lambda k: last[col[k]]
    print(f"SIPp: incoming {g('IncomingCall(C)')}, successful {g('SuccessfulCall(C)')}, failed {g('FailedCall(C)')}, retransmissions {g('Retransmissions(C)')}")
except (OSError, IndexError, KeyError) as e:
    print(f"SIPp: no stats ({e})")
PY
)"
        note "  $sipp_line"
        warns="$(grep -E ' (WARN|ERROR) ' "$dir/dialtone.log" | sed -E 's/^[^ ]+ +//; s/(call|id)=[^ ]+/\1=…/g' | sort | uniq -c | sort -rn | head -5 || true)"
        note "  dialtone log: $(grep -cE ' (WARN|ERROR) ' "$dir/dialtone.log" || true) WARN/ERROR lines${warns:+; top: }"
        [[ -z "$warns" ]] || while IFS= read -r line; do note "    $line"; done <<<"$warns"
    done
fi

note "end: $(date -u +%FT%TZ), $(uptime | sed 's/.*load/load/')"
printf '\n==== summary ====\n'
printf '%s\n' "${SUMMARY[@]}"
