#!/bin/sh
# Copies the SIP fixtures into the (gitignored) fuzz corpora. Run from anywhere.
set -e
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../../fixtures/sip"
for t in parse_datagram stream; do
    mkdir -p "$here/corpus/$t"
    for f in "$fixtures"/*/*.sip; do
        cp "$f" "$here/corpus/$t/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
done
# The stream target reads its chunk size from the first byte.
for f in "$here"/corpus/stream/*.sip; do
    { printf '\045'; cat "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
done
