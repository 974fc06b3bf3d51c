#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md: each throughput beside the bare loop
# measured in the same run, as a ratio, and the measured memory per cell. Then runs
# the criterion benches (parsers, analyze) unless QUICK=1.
#
#   scripts/bench.sh                 # 24 simulated hours (SCANWATCH_BENCH_HOURS)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
echo "== figures (crates/cli/benches/figures.rs)"
cargo bench --locked -p scanwatch --bench figures
echo "== the bounded samples ranked under a seed: one cell of 50,000 sources, one source sweeping every tcp port (crates/aggregate/benches/seeded_samples.rs)"
cargo bench --locked -p scanwatch-aggregate --bench seeded_samples
echo "== memory per cell (crates/cli/benches/memory.rs)"
cargo bench --locked -p scanwatch --bench memory
echo "== server ingest over loopback (crates/collector/benches/ingest.rs)"
cargo bench --locked -p scanwatch-collector --bench ingest
echo "== server ingest with 12 sensors sending at once, a million events (issue 14's target: 500k events/s acknowledged)"
SCANWATCH_BENCH_CLIENTS=12 SCANWATCH_BENCH_BATCHES=1000 cargo bench --locked -p scanwatch-collector --bench ingest
echo "== query latency with 30 days loaded, and ingest latency while four analysts query (crates/collector/benches/query.rs)"
cargo bench --locked -p scanwatch-collector --bench query
echo "== a port's history with 60 s windows: the time-first walk against a port index (crates/store/benches/history.rs)"
cargo bench --locked -p scanwatch-store --bench history
echo "== sensor CPU at 10k lines/s (crates/cli/benches/sensor_cpu.rs)"
cargo bench --locked -p scanwatch --bench sensor_cpu
echo "== one sensor backfilling a million lines into the centre, beside the bare loop (crates/cli/benches/sensor_backfill.rs)"
cargo bench --locked -p scanwatch --bench sensor_backfill
echo "== delay from the first surge event to the warning, twelve live sensors (crates/cli/benches/time.rs)"
cargo bench --locked -p scanwatch --bench time
echo "== scale-out: roles over NATS into ClickHouse vs embedded (crates/cli/benches/scale.rs)"
if command -v nats-server >/dev/null && command -v clickhouse-server >/dev/null; then
    cargo bench --locked -p scanwatch --bench scale
else
    echo "skipped: needs nats-server and clickhouse-server (apt-get install -y nats-server clickhouse-server clickhouse-client)"
fi
echo "== the desk on ClickHouse with 30 days: cells against the raw events (crates/cli/benches/desk_clickhouse.rs)"
if command -v clickhouse-server >/dev/null; then
    cargo bench --locked -p scanwatch --bench desk_clickhouse
else
    echo "skipped: needs clickhouse-server (apt-get install -y clickhouse-server clickhouse-client)"
fi
if [ "${QUICK:-0}" != 1 ]; then
    echo "== criterion: parsers"
    cargo bench --locked -p scanwatch-formats --bench parsers
    echo "== criterion: analyze"
    cargo bench --locked -p scanwatch --bench analyze
fi
