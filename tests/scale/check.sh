#!/usr/bin/env bash
# Starts the NATS cluster and the two ClickHouse shards in a temporary dir, runs nats_check.py
# (with the kill -9 fault test) and ch_check.py, and stops everything on exit, pass or fail.
#   tests/scale/check.sh [DIR]      (DIR default: a new mktemp dir, kept for its logs)
# Needs: nats-server, clickhouse-server/-client (apt), nats-py (pip), curl, jq, python3.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:-$(mktemp -d /tmp/scanwatch-scale.XXXXXX)}
mkdir -p "$DIR"
cleanup() {
  "$HERE/nats-cluster.sh" stop "$DIR/nats" || true
  "$HERE/clickhouse.sh" stop "$DIR/ch" || true
}
trap cleanup EXIT
"$HERE/nats-cluster.sh" start "$DIR/nats"
"$HERE/clickhouse.sh" start "$DIR/ch"
timeout 200 python3 "$HERE/nats_check.py" "$DIR/nats" --fault
"$HERE/clickhouse.sh" apply-schema "$DIR/ch"
timeout 200 python3 "$HERE/ch_check.py" "$DIR/ch"
echo "scale checks passed (logs in $DIR)"
