#!/usr/bin/env bash
# The main job: build scanwatch and run the demo — a simulated sensor network with the
# seed case (TCP/1025 surge, then an exploit wave on TCP/445) pushed through the real
# pipeline on the embedded default. Extra arguments go to `scanwatch demo`
# (e.g. --json, --window 1d, --write-logs DIR).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release --locked -p scanwatch
exec target/release/scanwatch demo "$@"
