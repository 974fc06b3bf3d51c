#!/usr/bin/env bash
# The dashboard in a real browser: runs `scanwatch demo --serve` (the demo network
# through the real centre on loopback), then drives Debian's headless Chromium with
# playwright-core (dashboard.mjs): an unauthenticated visitor sees only the login
# page; the demo user logs in, opens the seed warning (TCP/1025), and the page shows
# the chart and the same numbers as the API; screenshots go to target/browser/.
#
#   tests/browser/run.sh target/release/scanwatch
set -euo pipefail
bin="$(realpath "${1:?usage: run.sh SCANWATCH_BINARY}")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
command -v chromium >/dev/null || { echo "chromium is missing: apt-get install chromium" >&2; exit 1; }
if [ ! -d "$here/node_modules/playwright-core" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
work="$(mktemp -d)"
out="$root/target/browser"
mkdir -p "$out"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

intel="$root/crates/context/testdata/intel"
"$bin" intel import nvd "$intel/nvdcve-2.0-sample.json" --data "$work/data" >/dev/null 2>&1
"$bin" intel import kev "$intel/known_exploited_vulnerabilities.json" --data "$work/data" >/dev/null 2>&1
"$bin" intel import exploitdb "$intel/files_exploits.csv" --data "$work/data" >/dev/null 2>&1
"$bin" intel import csaf "$intel/csaf-ms07-029.json" --data "$work/data" >/dev/null 2>&1
"$bin" assets import csv "$root/crates/context/testdata/assets/inventory.csv" --data "$work/data" >/dev/null 2>&1

"$bin" demo --start 2007-04-12 --data "$work/data" --serve >"$work/demo.out" 2>"$work/demo.err" &
pid=$!
# The replay takes a while on a small machine; bounded wait for the login line.
for _ in $(seq 600); do
    grep -q '^login:' "$work/demo.err" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/demo.err" >&2; echo "demo exited early" >&2; exit 1; }
    sleep 1
done
grep -q '^login:' "$work/demo.err" || { cat "$work/demo.err" >&2; echo "demo did not come up in 600 s" >&2; exit 1; }
url="$(sed -n 's/^dashboard: //p' "$work/demo.err")"
user="$(sed -n 's/^login: user \([^ ]*\) password .*/\1/p' "$work/demo.err")"
pass="$(sed -n 's/^login: user [^ ]* password \(.*\)/\1/p' "$work/demo.err")"
token="$(sed -n "s/^API: curl -H 'Authorization: Bearer \([^']*\)'.*/\1/p" "$work/demo.err")"
echo "demo centre at $url"
node "$here/dashboard.mjs" "$url" "$user" "$pass" "$token" "$out"
