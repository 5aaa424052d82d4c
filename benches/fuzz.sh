#!/bin/sh
# Runs every cargo-fuzz target (or those named) for SECONDS each (default 600), one after
# another, at nice 19, each on its corpus seeded from the fixtures (benches/fuzz_seed.py),
# and prints per target: seconds, total execs, execs/s, corpus files, crashed or not.
#
#   benches/fuzz.sh [SECONDS] [TARGET…]
#
# Needs the nightly toolchain and cargo-fuzz (`nice cargo install cargo-fuzz`). Builds go
# to $FUZZ_TARGET_DIR (default target/fuzz); logs to $FUZZ_LOGS (default /tmp/fuzz-<target>.log).
# A crash leaves its input in <project>/fuzz/artifacts/<target>/ (see the log); minimize
# it with `cargo +nightly fuzz tmin -O <target> <file>` and add it to fixtures/fuzz/<target>/.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"parse_datagram stream sdp digest rtp rtcp dtmf agent_messages api_bodies"}
tdir=${FUZZ_TARGET_DIR:-$here/target/fuzz}
logs=${FUZZ_LOGS:-/tmp}

project() {
    case $1 in
        parse_datagram|stream|sdp|digest) echo sip ;;
        rtp|rtcp|dtmf) echo media ;;
        agent_messages|api_bodies) echo . ;;
        *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}

command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz missing: nice cargo install cargo-fuzz" >&2; exit 2; }
python3 "$here/benches/fuzz_seed.py" $targets || exit 2

[ -f "$logs/fuzz-summary.txt" ] || printf '%-15s %8s %12s %10s %8s %s\n' target seconds execs execs/s corpus result > "$logs/fuzz-summary.txt"
for t in $targets; do
    p=$(project "$t")
    corpus=fuzz/corpus/$t
    log=$logs/fuzz-$t.log
    start=$(date +%s)
    (cd "$here/$p" && nice -n 19 cargo +nightly fuzz run -O --target-dir "$tdir" "$t" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1) > "$log" 2>&1
    rc=$?
    # libFuzzer's own figure (the build and corpus loading aside), else the wall time.
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    [ -n "$took" ] || took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    files=$(ls "$here/$p/$corpus" | wc -l)
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="CRASH (exit $rc): $(grep -o 'Test unit written to [^ ]*' "$log" | head -1 | cut -d' ' -f5)"
    fi
    printf '%-15s %8s %12s %10s %8s %s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" "$files" "$result" | tee -a "$logs/fuzz-summary.txt"
done
