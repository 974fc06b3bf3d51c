#!/usr/bin/env bash
# End-to-end test with real parts: two network namespaces joined by a veth pair
# (198.18.0.0/24, no route out), a real nftables firewall logging unsolicited inbound
# packets on the "sensor" host, real scans from the "scanner" host (nmap SYN scan,
# hping3 UDP), the kernel log turned into syslog lines, `scanwatch sensor run`
# following them, and `scanwatch server` counting them. The server's count must equal
# what the kernel logged. Bounded in time; everything it creates is removed.
#
#   tests/netns/e2e.sh path/to/scanwatch        (as root)
set -euo pipefail

bin="$(realpath "${1:?usage: $0 path/to/scanwatch}")"
run_id="sw$$"
work="$(mktemp -d)"
ns_s="${run_id}-sensor"
ns_x="${run_id}-scanner"
pids=()
old_log_all="$(sysctl -n net.netfilter.nf_log_all_netns)"

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$ns_s" 2>/dev/null || true
    ip netns del "$ns_x" 2>/dev/null || true
    sysctl -qw net.netfilter.nf_log_all_netns="$old_log_all" || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "netns e2e: FAIL: $*" >&2; exit 1; }

# Kernel logging from inside a namespace is off by default.
sysctl -qw net.netfilter.nf_log_all_netns=1

ip netns add "$ns_s"
ip netns add "$ns_x"
ip link add "${run_id}a" type veth peer name "${run_id}b"
ip link set "${run_id}a" netns "$ns_s"
ip link set "${run_id}b" netns "$ns_x"
ip -n "$ns_s" addr add 198.18.0.1/24 dev "${run_id}a"
ip -n "$ns_x" addr add 198.18.0.2/24 dev "${run_id}b"
for ns in "$ns_s" "$ns_x"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "${run_id}a" up
ip -n "$ns_x" link set "${run_id}b" up

# The sensor host's firewall: log and drop unsolicited inbound TCP SYN and UDP.
ip netns exec "$ns_s" nft -f - <<NFT
table inet scanwatch_test {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "lo" accept
    tcp flags & (syn | ack) == syn log prefix "${run_id} DROP " drop
    meta l4proto udp log prefix "${run_id} DROP " drop
  }
}
NFT

# The kernel log, as syslog lines with an ISO timestamp (what rsyslog writes).
log="$work/fw.log"
: > "$log"
( cat /dev/kmsg | while IFS= read -r line; do
    msg="${line#*;}"
    case "$msg" in
      "${run_id} "*) printf '%s sensor1 kernel: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" "$msg" >> "$log" ;;
    esac
  done ) &
pids+=($!)

# The centre and the sensor, on loopback.
data="$work/data"
"$bin" admin sensor add sensor1 --data "$data" > "$work/token" 2>/dev/null
port=$(( 20000 + $$ % 20000 ))
"$bin" server --data "$data" --listen "127.0.0.1:$port" 2> "$work/server.err" &
pids+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
"$bin" sensor run --server "http://127.0.0.1:$port" --token-file "$work/token" --spool "$work/spool" \
    --source "$log:netfilter" --from-start 2> "$work/sensor.err" &
pids+=($!)

# Real scans, bounded: a SYN scan of 150 ports and 40 UDP probes.
ip netns exec "$ns_x" timeout 60 nmap -n -Pn -sS -p 1-150 --max-retries 0 -T4 198.18.0.1 > "$work/nmap.out" 2>&1 \
    || fail "nmap: $(tail -3 "$work/nmap.out")"
ip netns exec "$ns_x" timeout 30 hping3 --udp -p ++2000 -c 40 -i u10000 198.18.0.1 > "$work/hping.out" 2>&1 || true

# What the kernel logged, and what the centre counted: equal within 20 s.
expected=0
for _ in $(seq 1 200); do
    expected=$(grep -c "${run_id} DROP" "$log" || true)
    got=$("$bin" admin sensor list --data "$data" | awk '$1 == "sensor1" {print $4}')
    if [ "$expected" -ge 190 ] && [ "$got" = "$expected" ]; then
        tcp=$(grep -c "PROTO=TCP" "$log" || true)
        udp=$(grep -c "PROTO=UDP" "$log" || true)
        echo "netns e2e: kernel logged $expected unsolicited packets ($tcp TCP SYN, $udp UDP); the centre counted $got"
        echo "1 passed, 0 failed"
        exit 0
    fi
    sleep 0.1
done
echo "--- sensor"; cat "$work/sensor.err" >&2 || true
echo "--- server"; cat "$work/server.err" >&2 || true
fail "kernel logged $expected packets, the centre counted ${got:-nothing}"
