#!/usr/bin/env bash
# The main job: build scanwatch and run the demo — a simulated 40-sensor network with
# the seed case (TCP/1025 surge, then an exploit wave on TCP/445) submitted over HTTP
# by simulated sensors to a real centre (an embedded `scanwatch server` on loopback,
# the embedded SQLite store), with threat context: the network is replayed
# on the dates of the 2007 Windows DNS Server RPC advisory (it starts 2007-04-12, the
# surge begins a week later), against real advisory samples (NVD, CISA KEV,
# Exploit-DB), an example asset inventory and the simulated research scanners as
# known benign scanners, all imported into a fresh data directory (target/demo-data).
#
# Extra arguments go to `scanwatch demo` (e.g. --json, --window 1d, --write-logs DIR).
# `target/release/scanwatch demo` alone runs the same network on 2026 dates without
# context.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release --locked -p scanwatch
sw=target/release/scanwatch
data=target/demo-data
rm -rf "$data"
intel=crates/context/testdata/intel
{
    "$sw" intel import nvd "$intel/nvdcve-2.0-sample.json" --data "$data"
    "$sw" intel import kev "$intel/known_exploited_vulnerabilities.json" --data "$data"
    "$sw" intel import exploitdb "$intel/files_exploits.csv" --data "$data"
    "$sw" intel import csaf "$intel/csaf-ms07-029.json" --data "$data"
    "$sw" intel import benign testdata/context/research-scanners.txt --data "$data"
    "$sw" assets import csv crates/context/testdata/assets/inventory.csv --data "$data"
} >&2
# Run from a terminal, the centre stays up (until Ctrl-C) so the dashboard can be
# opened with the printed login; otherwise (a script, CI) it stops after the replay
# and the centre's store stays in target/demo-data/demo-centre.
serve=()
if [ -t 0 ] && [ -t 1 ]; then
    serve=(--serve)
    # Given by hand as well: once is enough.
    for a in "$@"; do
        [ "$a" = --serve ] && serve=()
    done
fi
exec "$sw" demo --start 2007-04-12 --data "$data" "${serve[@]}" "$@"
