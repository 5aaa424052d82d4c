#!/bin/sh
# Seeds the (gitignored) corpora of this project's targets from the fixtures and the
# committed corpora in fixtures/fuzz/ (see benches/fuzz_seed.py). Run from anywhere.
set -e
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/../../benches/fuzz_seed.py" parse_datagram stream sdp digest
