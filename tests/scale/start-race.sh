#!/usr/bin/env bash
# Roles of one deployment starting together on a fresh 3-node NATS cluster: how long
# until each has the deployment's sample seed (the first thing a role does).
#
#   tests/scale/start-race.sh [BINARY] [ROUNDS] [ROLES]
#
# BINARY: a scanwatch binary (default target/release/scanwatch); ROUNDS fresh clusters
# (default 4), ROLES detector roles started at once on each (default 8). Prints one line
# per role ("seed after S s", or "no seed after 40 s") and the slowest per round.
# With nats-server 2.9.10 some concurrent creations of one stream go unanswered (a bug
# like nats-io/nats-server#3677): a role then waits until it asks again
# (crates/bus/src/nats.rs, API_TIMEOUT). Needs nats-server, curl, jq, awk. Only 127.0.0.1;
# every process is stopped and the directory removed on exit.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release/scanwatch}
rounds=${2:-4}
roles=${3:-8}
[[ -x $bin ]] || { echo "start-race: no binary at $bin" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  [[ -f $work/nats/ports.env ]] && bash "$here/nats-cluster.sh" stop "$work/nats" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
for round in $(seq 1 "$rounds"); do
  rm -rf "$work"/*
  bash "$here/nats-cluster.sh" start "$work/nats" >/dev/null || { echo "start-race: cluster did not start" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$work/nats/ports.env"
  for i in $(seq 1 "$roles"); do
    mkdir -p "$work/d$i"
    printf 'version = 1\n[server]\ndata = "%s"\n[bus]\nkind = "nats"\nurl = "%s"\nreplicas = 3\npartitions = 8\n' \
      "$work/d$i" "$NATS_URLS" >"$work/c$i.toml"
  done
  start=$(date +%s.%N)
  pids=()
  for i in $(seq 1 "$roles"); do
    "$bin" server --role detector --config "$work/c$i.toml" 2>"$work/l$i.log" &
    pids+=($!)
  done
  # Bounded: every role has the seed, or 40 s.
  for _ in $(seq 1 400); do
    n=$(grep -l "bounded samples ranked" "$work"/l*.log 2>/dev/null | wc -l)
    ((n == roles)) && break
    sleep 0.1
  done
  kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  pids=()
  slowest=0
  for i in $(seq 1 "$roles"); do
    t=$(grep -m1 "bounded samples ranked" "$work/l$i.log" | cut -c1-27)
    if [[ -z $t ]]; then
      echo "round $round role $i: no seed after 40 s; its log ends:"
      tail -n 3 "$work/l$i.log" | sed 's/^/    /'
      slowest=40
      continue
    fi
    d=$(awk -v a="$(date -d "$t" +%s.%N)" -v b="$start" 'BEGIN { printf "%.3f", a - b }')
    echo "round $round role $i: seed after $d s"
    slowest=$(awk -v a="$d" -v b="$slowest" 'BEGIN { print (a > b ? a : b) }')
  done
  echo "round $round: slowest $slowest s"
  bash "$here/nats-cluster.sh" stop "$work/nats" >/dev/null 2>&1
done
