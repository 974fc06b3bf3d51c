#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for N seconds each (default 60):
#
#   scripts/fuzz.sh [SECONDS]
#
# Installs cargo-fuzz if it is missing. The toolchain is stable, so cargo-fuzz's -Z
# flags are allowed with RUSTC_BOOTSTRAP=1. Each target starts from the committed
# seeds (fuzz/seeds/<target>/) copied into a scratch corpus, fuzz/corpus/<target>/
# (gitignored; FUZZ_CORPUS_DIR moves it). Crash inputs land in fuzz/artifacts/<target>/,
# logs in fuzz/artifacts/logs/. Exits non-zero if any target fails to build or finds a
# crash, leak, timeout or out-of-memory input.
#
# Environment: FUZZ_SANITIZER (default address; "none" is faster), FUZZ_CORPUS_DIR,
# FUZZ_JOBS (targets run at once; default the cores, `nproc`).
set -euo pipefail

secs="${1:-60}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
corpus_root="${FUZZ_CORPUS_DIR:-$fuzz_dir/corpus}"
log_dir="$fuzz_dir/artifacts/logs"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Only for building and running the targets (cargo-fuzz passes -Z flags to rustc).
export RUSTC_BOOTSTRAP=1

cd "$fuzz_dir"
mapfile -t targets < <(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

echo "== building ${#targets[@]} targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer"

mkdir -p "$log_dir"

# One target: fuzz it for $secs, then write its result line beside its log.
run_target() {
    local t=$1 corpus="$corpus_root/$1" log="$log_dir/$1.log" result
    mkdir -p "$corpus"
    if [ -d "seeds/$t" ]; then
        cp -R "seeds/$t/." "$corpus/"
    fi
    if cargo fuzz run --sanitizer "$sanitizer" "$t" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
    fi
    echo "$result" >"$log_dir/$t.result"
}

# libFuzzer runs a target on one core: FUZZ_JOBS targets at a time (default: the
# cores), each for the whole $secs, so every target gets the same time as alone.
jobs_max="${FUZZ_JOBS:-$(nproc)}"
case "$jobs_max" in
    '' | *[!0-9]* | 0) echo "FUZZ_JOBS must be a positive number" >&2; exit 2 ;;
esac
echo "== running ${#targets[@]} targets, ${jobs_max} at a time"
# Interrupted or timed out, the script takes its fuzzers with it.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
for t in "${targets[@]}"; do
    rm -f "$log_dir/$t.result" "$log_dir/$t.log"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n || true
    done
    echo "== $t: ${secs}s, corpus $corpus_root/$t"
    run_target "$t" &
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
    log="$log_dir/$t.log"
    touch "$log" # a target that failed before it ran has none
    result="$(cat "$log_dir/$t.result" 2>/dev/null || echo FAILED)"
    if [ "$result" != ok ]; then
        failed+=("$t")
        echo "== $t failed; the end of its log:" >&2
        tail -n 40 "$log" >&2 || true
    fi
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    done_line="$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 || true)"
    summary+=("$t: $result; executions ${runs:-?} (${rate:-?}/s); ${done_line:-no Done line}")
done

echo "== summary (logs in $log_dir)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]} (inputs in $fuzz_dir/artifacts/)" >&2
    exit 1
fi
