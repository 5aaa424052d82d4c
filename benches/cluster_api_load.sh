#!/usr/bin/env bash
# API creates per second on one PostgreSQL store, for 1 and then 3 `dialtone serve` nodes in
# the same run (issue 18). Each configuration gets a fresh throw-away PostgreSQL
# (tools/pg-scratch) and a SIPp trunk (benches/api_load_uas.xml: answers at once, BYE after
# --hold ms); wrk POSTs /api/calls/create to the first node at each rate (the nodes place each
# call on the one with the most free room, forwarding it there). Reports the 201s, HTTP
# latency, and the calls' final statuses and owners in the store. Loopback only; every wait
# is bounded.
#
#   benches/cluster_api_load.sh [--nodes "1 3"] [--rates "200 500"] [--duration 10]
#                               [--hold 1000] [--clients 16] [--org-limit N] [--keep]
#
# --org-limit N gives the organization a max_concurrent_calls of N (PATCH before the load):
# each create then counts its calls up in the store, its row locked, across the nodes.
#
# Needs target/release/dialtone, wrk, sipp, psql and PostgreSQL (Debian postgresql).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODES="1 3"
RATES="200 500"
DURATION=10
HOLD=1000
CLIENTS=16
KEEP=0
ORG_LIMIT=""

die() { printf 'cluster_api_load: %s\n' "$*" >&2; exit 1; }
log() { printf '==> %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --nodes) NODES="${2:?}"; shift 2 ;;
        --rates) RATES="${2:?}"; shift 2 ;;
        --duration) DURATION="${2:?}"; shift 2 ;;
        --hold) HOLD="${2:?}"; shift 2 ;;
        --clients) CLIENTS="${2:?}"; shift 2 ;;
        --org-limit) ORG_LIMIT="${2:?}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for c in wrk sipp psql curl; do command -v "$c" >/dev/null 2>&1 || die "$c not found"; done
BIN="${DIALTONE_BIN:-$ROOT/target/release/dialtone}"
[[ -x "$BIN" ]] || die "$BIN not found: cargo build --release --bin dialtone"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dialtone-cluster-api.XXXXXX")"
chmod 755 "$WORK"
PIDS=()
PG_DIR=""
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    [[ -n "$PG_DIR" ]] && "$ROOT/tools/pg-scratch" stop "$PG_DIR" >/dev/null 2>&1 || true
    PG_DIR=""
}
cleanup() {
    stop_all
    if [[ "$KEEP" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true

wait_tcp() {
    local port="$1" i
    for ((i = 0; i < 100; i++)); do
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

RESULTS=()
for n in $NODES; do
    for rate in $RATES; do
        dir="$WORK/n$n-r$rate"
        mkdir -p "$dir"
        PG_DIR="$(mktemp -u "${TMPDIR:-/tmp}/dialtone-pg.XXXXXX")"
        url="$("$ROOT/tools/pg-scratch" start "$PG_DIR" 2>/dev/null)" || die "PostgreSQL did not start"
        sipp_port=27190
        (cd "$dir" && exec sipp -sf "$ROOT/benches/api_load_uas.xml" -i 127.0.0.1 -p "$sipp_port" -mp 27200 \
            -d "$HOLD" -nostdin -trace_stat -stf "$dir/sipp_stat.csv" >"$dir/sipp.out" 2>&1) &
        PIDS+=("$!")
        sleep 0.5
        for ((i = 0; i < n; i++)); do
            mkdir -p "$dir/node$i"
            http=$((27100 + i))
            DIALTONE_SIP_LISTEN="127.0.0.1:$((27160 + i))" DIALTONE_HTTP_LISTEN="127.0.0.1:$http" \
                DIALTONE_DATA_DIR="$dir/node$i" DIALTONE_RTP_PORTS="$((30000 + i * 4000))-$((33999 + i * 4000))" \
                DIALTONE_DATABASE_URL="$url" DIALTONE_NODE_ID="node$i" DIALTONE_INTERNAL_KEY=bench \
                DIALTONE_TRUNK="sip:127.0.0.1:$sipp_port" DIALTONE_DRAIN_TIMEOUT=0 \
                "$BIN" serve >"$dir/node$i/dialtone.log" 2>&1 &
            PIDS+=("$!")
            wait_tcp "$http" || die "node $i did not listen ($dir/node$i/dialtone.log)"
        done
        sleep 2 # every node's first heartbeat
        if [[ -n "$ORG_LIMIT" ]]; then
            curl -fsS -X PATCH -H 'X-Internal-Key: bench' -H 'Content-Type: application/json' \
                -d "{\"max_concurrent_calls\": $ORG_LIMIT}" http://127.0.0.1:27100/api/organizations/org_default >/dev/null ||
                die "cannot set the organization's limit"
        fi
        log "$n node(s): $rate creates/s for $DURATION s"
        out="$(API_KEY=bench RATE="$rate" MAX_CALLS=$((rate * DURATION)) THREADS=2 timeout $((DURATION + 30)) \
            wrk -t 2 -c "$CLIENTS" -d "${DURATION}s" --timeout 10s -s "$ROOT/benches/api_load_create.lua" \
            "http://127.0.0.1:27100/api/calls/create" 2>&1)" || die "wrk failed: $out"
        printf '%s\n' "$out" >"$dir/wrk.txt"
        res="$(grep '^RESULT' <<<"$out" | sed 's/^RESULT //')"
        # Every call ends HOLD ms after its answer; bounded wait.
        deadline=$((SECONDS + HOLD / 1000 + 15))
        while ((SECONDS < deadline)); do
            live="$(psql "$url" -Atc "SELECT count(*) FROM calls WHERE status IN ('initiating','ringing','in-progress')")"
            [[ "$live" == 0 ]] && break
            sleep 0.5
        done
        statuses="$(psql "$url" -Atc "SELECT status || ' ' || count(*) FROM calls GROUP BY status ORDER BY 1" | paste -sd, -)"
        owners="$(psql "$url" -Atc "SELECT count(*) FROM calls GROUP BY node_id ORDER BY node_id" | paste -sd/ -)"
        RESULTS+=("| $n | $rate | $res | $statuses | $owners |")
        stop_all
    done
done

printf '\n| nodes | creates/s asked | wrk | calls by status | calls per node |\n|---|---|---|---|---|\n'
printf '%s\n' "${RESULTS[@]}"
