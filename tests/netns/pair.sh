# Sourced by the network-namespace tests that need a host and a scanner: two
# namespaces joined by a veth pair in 198.18.0.0/15 (no route out), loopback up,
# and a cleanup (on exit) that kills the test's background jobs and removes the
# namespaces and the work directory.
#
#   name=capture; run_id="swp$$"; source tests/netns/pair.sh
#   netns_pair 198.18.3.1 198.18.3.2     # sets ns_s, ns_x, and "${run_id}a" in ns_s
# shellcheck shell=bash

work="$(mktemp -d)"
ns_s="${run_id}-s"
ns_x="${run_id}-x"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$ns_s" 2>/dev/null || true
    ip netns del "$ns_x" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "netns ${name}: FAIL: $*" >&2; exit 1; }

# netns_pair ADDR_S ADDR_X: the host gets ADDR_S/24 on "${run_id}a", the scanner
# ADDR_X/24 on "${run_id}b".
netns_pair() {
    ip netns add "$ns_s"
    ip netns add "$ns_x"
    ip link add "${run_id}a" type veth peer name "${run_id}b"
    ip link set "${run_id}a" netns "$ns_s"
    ip link set "${run_id}b" netns "$ns_x"
    ip -n "$ns_s" addr add "$1/24" dev "${run_id}a"
    ip -n "$ns_x" addr add "$2/24" dev "${run_id}b"
    for ns in "$ns_s" "$ns_x"; do ip -n "$ns" link set lo up; done
    ip -n "$ns_s" link set "${run_id}a" up
    ip -n "$ns_x" link set "${run_id}b" up
}
