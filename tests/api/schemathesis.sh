#!/usr/bin/env bash
# Property-based tests of the HTTP API against a live server: schemathesis reads the
# OpenAPI document the server serves (/api/v1/openapi.json), generates requests from
# it (valid and invalid) and checks that no answer is a 5xx and that every answer
# matches the document (status, content type, body schema).
#
#   tests/api/schemathesis.sh BINARY
#
# Makes a temporary data directory with an API token and three sensors, starts
# `BINARY server` on a free loopback port, feeds it a small network's events (so
# stored windows and warnings exist), then runs schemathesis twice: the read API
# with the API token, and the sensor endpoints (ingest, heartbeat) with a sensor
# token. Exits non-zero on any failure; the server and the directory are removed on
# exit. Needs python3; installs schemathesis with pip when it is missing.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 50 per operation),
# SCHEMATHESIS_TIME_LIMIT (seconds per run, default 300), SCHEMATHESIS_SEED
# (default fixed, for repeatable runs), SCHEMATHESIS_WORKERS (default 1),
# SCHEMATHESIS_CHECKS (default: no 5xx, and status, content type and body as
# documented), SCHEMATHESIS_ARGS (more arguments for `schemathesis run`).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi
BIN=$(realpath "$1")
if [ ! -x "$BIN" ]; then
    echo "schemathesis.sh: $1 is not an executable" >&2
    exit 2
fi
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
TIME_LIMIT=${SCHEMATHESIS_TIME_LIMIT:-300}
SEED=${SCHEMATHESIS_SEED:-20261126}
WORKERS=${SCHEMATHESIS_WORKERS:-1}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scanwatch-schemathesis.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "schemathesis.sh: $*" >&2; }

# --- schemathesis -----------------------------------------------------------------
command -v python3 >/dev/null || { say "python3 is needed"; exit 1; }
ST=""
if command -v schemathesis >/dev/null 2>&1; then
    ST=schemathesis
elif python3 -c 'import schemathesis' 2>/dev/null; then
    ST="python3 -m schemathesis.cli"
else
    python3 -m pip --version >/dev/null 2>&1 || { say "pip is needed to install schemathesis"; exit 1; }
    say "installing schemathesis with pip"
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5' >&2
    hash -r
    if command -v schemathesis >/dev/null 2>&1; then
        ST=schemathesis
    else
        ST="python3 -m schemathesis.cli"
    fi
fi
ST_VERSION=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))')
say "schemathesis $ST_VERSION"
case "$ST_VERSION" in
    4.*) ;;
    *) say "schemathesis 4 is needed (found $ST_VERSION): python3 -m pip install 'schemathesis>=4,<5'"; exit 1 ;;
esac
# The JSON Lines serializer for the ingest body.
export SCHEMATHESIS_HOOKS
SCHEMATHESIS_HOOKS="$(cd "$(dirname "$0")" && pwd)/schemathesis_hooks.py"

# --- data: an API token, three sensors --------------------------------------------
DATA="$WORK/data"
API_TOKEN=$("$BIN" admin token add st --role analyst --data "$DATA" 2>/dev/null)
SENSOR_TOKENS=()
# Four sensors: a warning needs three besides the busiest one (docs/security.md).
for s in fw-1 fw-2 fw-3 fw-4; do
    SENSOR_TOKENS+=("$("$BIN" admin sensor add "$s" --data "$DATA" 2>/dev/null)")
done

# --- the server on a free loopback port -------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
"$BIN" server --data "$DATA" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
UP=""
for _ in $(seq 1 150); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        say "the server exited:"; cat "$WORK/server.log" >&2; exit 1
    fi
    if python3 -c "import urllib.request; urllib.request.urlopen('$BASE/healthz', timeout=1)" 2>/dev/null; then
        UP=1; break
    fi
    sleep 0.2
done
if [ -z "$UP" ]; then
    say "the server did not answer /healthz:"; cat "$WORK/server.log" >&2; exit 1
fi

# --- events: two days of background and a surge on tcp/1025 seen by all sensors ----
python3 - "$BASE" "${SENSOR_TOKENS[@]}" <<'EOF'
import json, sys, urllib.request
from datetime import datetime, timedelta, timezone

base, tokens = sys.argv[1], sys.argv[2:]
start = datetime(2026, 11, 20, tzinfo=timezone.utc)

def line(t, src, port):
    return json.dumps({"v": 1, "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "proto": "tcp",
                       "src": src, "dst": "198.18.0.1", "dst_port": port, "flags": "S"})

def post(path, token, body, batch=None):
    req = urllib.request.Request(base + path, data=body.encode(), method="POST",
                                 headers={"authorization": "Bearer " + token})
    if batch:
        req.add_header("x-scanwatch-batch", batch)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)

accepted = 0
for h in range(54):
    for i, tok in enumerate(tokens):
        t = start + timedelta(hours=h, minutes=5 + i)
        lines = [line(t, f"203.0.113.{(h + k) % 50 + 1}", 23) for k in range(4)]
        lines += [line(t, f"198.51.100.{(h * 3 + k) % 200 + 1}", 22) for k in range(2)]
        if 48 <= h < 50:
            # the surge: 60 sources on tcp/1025, each seen by every sensor
            lines += [line(t + timedelta(minutes=k % 40), f"192.0.2.{k + 1}", 1025)
                      for k in range(60)]
            lines += [line(t, f"2001:db8::{k + 1:x}", 445) for k in range(30)]
        accepted += post("/api/v1/events", tok, "\n".join(lines) + "\n",
                         f"seed-{i}-{h}")["accepted"]
for i, tok in enumerate(tokens):
    post("/api/v1/heartbeat", tok, json.dumps({"spool_batches": i, "lines_read": 100 * i}))
print(f"fed {accepted} events", file=sys.stderr)
EOF
ALERTS=$(python3 -c "
import json, sys, urllib.request
req = urllib.request.Request('$BASE/api/v1/alerts', headers={'authorization': 'Bearer $API_TOKEN'})
print(len(json.load(urllib.request.urlopen(req, timeout=30))))")
say "$ALERTS stored warnings"
if [ "$ALERTS" -lt 1 ]; then
    say "the seed events raised no warning"; exit 1
fi

# --- schemathesis -----------------------------------------------------------------
CHECKS=${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}
read -r -a EXTRA <<<"${SCHEMATHESIS_ARGS:-}"
LIMIT_FLAGS=(--max-examples "$MAX_EXAMPLES" --seed "$SEED" --url "$BASE"
             --workers "$WORKERS" --request-timeout 30)

run() {
    local what=$1 token=$2
    shift 2
    say "run: $what"
    # In the temporary directory: schemathesis and hypothesis keep their state
    # (.schemathesis, .hypothesis) in the working directory.
    # shellcheck disable=SC2086 # ST may be a command with arguments
    (cd "$WORK" && timeout --kill-after=10 "$TIME_LIMIT" $ST run "$BASE/api/v1/openapi.json" \
        --checks "$CHECKS" "${LIMIT_FLAGS[@]}" \
        -H "Authorization: Bearer $token" "${EXTRA[@]}" "$@")
}

STATUS=0
run "read API (api token)" "$API_TOKEN" \
    --exclude-path /api/v1/events --exclude-path /api/v1/heartbeat || STATUS=1
run "sensor endpoints (sensor token)" "${SENSOR_TOKENS[0]}" \
    --include-path /api/v1/events --include-path /api/v1/heartbeat || STATUS=1
# What the fuzzing got through (accepted batches mean generated events reached the
# pipeline, not just the validation).
python3 -c "
import urllib.request
for l in urllib.request.urlopen('$BASE/metrics', timeout=30).read().decode().splitlines():
    if l.startswith(('scanwatch_batches', 'scanwatch_events', 'scanwatch_requests_refused')):
        print('  ' + l)" >&2 || true
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    say "the server died during the run:"; cat "$WORK/server.log" >&2; STATUS=1
fi
if grep -q "internal error" "$WORK/server.log"; then
    say "the server logged internal errors:"; grep "internal error" "$WORK/server.log" | head -20 >&2
    STATUS=1
fi
if [ "$STATUS" -ne 0 ]; then
    say "FAILED"
else
    say "passed"
fi
exit "$STATUS"
