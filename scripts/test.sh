#!/usr/bin/env bash
# Runs every test on a fresh Debian machine, installing what the tests need first:
# formatting and lint checks, the unit/property/golden/end-to-end tests, and a short
# fuzzing pass over every parser. Exits non-zero on the first failure.
#
#   scripts/test.sh            # everything (fuzzing FUZZ_SECONDS=30 per target)
#   FUZZ_SECONDS=0 scripts/test.sh   # skip fuzzing (local quick run only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)

scripts/setup.sh
# Real parts for the end-to-end network test: a kernel firewall and scanners.
need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v nmap >/dev/null 2>&1 || need+=(nmap)
command -v hping3 >/dev/null 2>&1 || need+=(hping3)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The dashboard's browser test: Debian's Chromium (playwright-core drives it).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
# Real receivers for the notification sinks: rsyslogd and Python's aiosmtpd.
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
# rsyslog's TLS driver: the sensor's TLS syslog receiver is tested with it.
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || dpkg -s rsyslog-gnutls >/dev/null 2>&1 || need+=(rsyslog-gnutls)
# The journald source is tested with journal files systemd-journal-remote writes.
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
command -v journalctl >/dev/null 2>&1 || need+=(systemd)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
# The scale-out mode's real parts: ClickHouse (two shards) and a NATS cluster.
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server clickhouse-client)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v jq >/dev/null 2>&1 || need+=(jq)
if [ "${#need[@]}" -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi
# Validators for the exports (OASIS STIX 2.1 validator, PyMISP) and schemathesis
# for the API contract, from PyPI.
if ! python3 -c 'import stix2validator, pymisp, schemathesis' 2>/dev/null; then
    echo "== pip install stix2-validator pymisp schemathesis"
    python3 -m pip install -q stix2-validator pymisp 'schemathesis>=4,<5'
fi
# The Debian package's test builds it with cargo-deb (about 40 s to install).
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "== cargo install cargo-deb"
    cargo install cargo-deb --locked --version 3.8.0
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

# Each stage's title, and the time the one before it took (where CI's time goes).
stage_start=
stage() {
    local now
    now=$(date +%s)
    if [ -n "$stage_start" ]; then
        echo "   (took $((now - stage_start)) s)"
    fi
    stage_start=$now
    echo "== $*"
}

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --release --locked -- -D warnings

stage "cargo test (release: the golden and million-key tests want optimised code)"
test_log="$(mktemp)"
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --release --locked 2>&1 | tee "$test_log"
read -r passed failed < <(awk '/^test result:/ {p += $4; f += $6} END {print p + 0, f + 0}' "$test_log")

stage "end to end in network namespaces: three sensor hosts with nftables logging, nmap and hping3 scans, sensors, server; per-sensor and per-port counts"
tests/netns/e2e.sh target/release/scanwatch
passed=$((passed + 1))

stage "live capture in network namespaces: libpcap sensor, nmap and hping3, nftables counters as ground truth"
tests/netns/capture.sh target/release/scanwatch
passed=$((passed + 1))

stage "threat context in network namespaces: nmap XML inventory, advisories, exposure, nft -c and loaded rules"
tests/netns/context.sh target/release/scanwatch
passed=$((passed + 1))

stage "the blocklist applied in network namespaces: scanwatch block loads nftables, a scanner is dropped, then let in once its entry expires"
tests/netns/block.sh target/release/scanwatch
passed=$((passed + 1))

stage "API contract: schemathesis against the live server's OpenAPI document (no 5xx, responses match the schema)"
tests/api/schemathesis.sh target/release/scanwatch
passed=$((passed + 1))

stage "dashboard in headless Chromium: demo through the real centre, login, the seed warning, screenshots"
tests/browser/run.sh target/release/scanwatch
passed=$((passed + 1))

stage "the Debian package: cargo-deb, dpkg -i, the unit's command line answers /healthz, dpkg --purge"
tests/deb/run.sh
passed=$((passed + 1))

fuzz_seconds="${FUZZ_SECONDS:-30}"
if [ "$fuzz_seconds" -gt 0 ]; then
    stage "fuzzing every parser for ${fuzz_seconds}s each"
    scripts/fuzz.sh "$fuzz_seconds"
fi

stage "done"
echo "== all checks passed in $(( $(date +%s) - start ))s"
echo "cargo test: ${passed} passed, ${failed} failed"
