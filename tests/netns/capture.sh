#!/usr/bin/env bash
# Live capture with real parts: a "darknet" sensor host in a network namespace
# (198.18.3.1, no route out) runs `scanwatch sensor run --capture IFACE` (libpcap)
# and `scanwatch server` on its own loopback; a scanner namespace sends a real nmap
# SYN scan and hping3 UDP probes. nftables counters on the sensor host (count only,
# nothing dropped) are the ground truth: the centre must count exactly the
# unsolicited SYNs and UDP datagrams the kernel saw. Bounded in time; everything it
# creates is removed.
#
#   tests/netns/capture.sh path/to/scanwatch        (as root)
set -euo pipefail

bin="$(realpath "${1:?usage: $0 path/to/scanwatch}")"
name=capture
run_id="swp$$"
# shellcheck source=tests/netns/pair.sh
source "$(dirname "${BASH_SOURCE[0]}")/pair.sh"
netns_pair 198.18.3.1 198.18.3.2

# Ground truth: count (never drop) unsolicited inbound SYNs and UDP to the sensor.
ip netns exec "$ns_s" nft -f - <<'NFT'
table inet truth {
  counter c_syn {}
  counter c_udp {}
  chain input {
    type filter hook input priority -100; policy accept;
    ip daddr 198.18.3.1 tcp flags & (syn | ack) == syn counter name "c_syn"
    ip daddr 198.18.3.1 meta l4proto udp counter name "c_udp"
  }
}
NFT

data="$work/data"
port=18470
(umask 077; "$bin" admin sensor add darknet-1 --data "$data" > "$work/token")
ip netns exec "$ns_s" timeout 120 "$bin" server --data "$data" --listen "127.0.0.1:$port" \
    2> "$work/server.err" &
pids+=($!)
for _ in $(seq 100); do
    ip netns exec "$ns_s" bash -c "echo > /dev/tcp/127.0.0.1/$port" 2>/dev/null && break
    sleep 0.1
done
ip netns exec "$ns_s" timeout 120 "$bin" sensor run --server "http://127.0.0.1:$port" \
    --token-file "$work/token" --spool "$work/spool" --capture "${run_id}a" \
    2> "$work/sensor.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "capturing on" "$work/sensor.err" 2>/dev/null && break; sleep 0.1; done
grep -q "capturing on ${run_id}a for 198.18.3.1" "$work/sensor.err" || fail "capture did not start: $(cat "$work/sensor.err")"

ip netns exec "$ns_x" timeout 60 nmap -sS -Pn -n --max-retries 0 -p 1-120 198.18.3.1 > /dev/null
ip netns exec "$ns_x" timeout 60 hping3 --udp -c 30 -i u20000 -p 5353 198.18.3.1 > /dev/null 2>&1 || true

counter() { ip netns exec "$ns_s" nft list counter inet truth "$1" | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
want=$(( $(counter c_syn) + $(counter c_udp) ))
[ "$want" -ge 150 ] || fail "expected at least 150 probes, the kernel saw $want"

stored() { "$bin" admin sensor list --data "$data" | awk '$1 == "darknet-1" {print $4}'; }
got=0
for _ in $(seq 150); do
    got="$(stored)"
    [ "$got" = "$want" ] && break
    sleep 0.2
done
[ "$got" = "$want" ] || fail "the kernel saw $want unsolicited packets, the centre counted $got"
# Nothing more arrives later (no double counting).
sleep 1
[ "$(stored)" = "$want" ] || fail "count moved after settling: $(stored) != $want"

echo "netns capture: kernel counted $want unsolicited packets ($(counter c_syn) TCP SYN, $(counter c_udp) UDP); the centre counted $got"
echo "netns capture: 1 passed, 0 failed"
