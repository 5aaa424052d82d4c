#!/usr/bin/env bash
# SRTP per packet: dialtone's own (benches/srtp.rs, criterion) and libsrtp2 (Debian's
# libsrtp2-dev, benches/srtp_libsrtp2.c) on the same packet, one after the other in one run.
#   benches/srtp_libsrtp2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dpkg -s libsrtp2-dev >/dev/null 2>&1 || { echo "libsrtp2-dev is needed: apt-get install libsrtp2-dev" >&2; exit 1; }
out=$(mktemp -d)
gcc -O2 -o "$out/srtp_libsrtp2" benches/srtp_libsrtp2.c -lsrtp2
cargo bench --bench srtp -- --warm-up-time 1 --measurement-time 3 2>/dev/null | grep -E "^srtp/|time:"
"$out/srtp_libsrtp2"
rm -rf "$out"
