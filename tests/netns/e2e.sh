#!/usr/bin/env bash
# End-to-end test with real parts: three sensor hosts and one scanner, each a network
# namespace, joined by veth pairs (198.18.0.0/24, no route out); on every sensor host
# a real nftables firewall logs unsolicited inbound packets to the kernel log; the
# scanner sends real scans (nmap SYN scans, hping3 UDP probes) to all three; the
# kernel log is turned into one syslog file per sensor host; one `scanwatch sensor
# run` per host follows its file; one `scanwatch server` counts. The server's counts
# per sensor and per (protocol, port) must equal what the kernel logged. Bounded in
# time; everything it creates is removed.
#
#   tests/netns/e2e.sh path/to/scanwatch        (as root)
set -euo pipefail

bin="$(realpath "${1:?usage: $0 path/to/scanwatch}")"
run_id="sw$$"
work="$(mktemp -d)"
ns_x="${run_id}-scanner"
sensors=(1 2 3)
pids=()
old_log_all="$(sysctl -n net.netfilter.nf_log_all_netns)"

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for i in "${sensors[@]}"; do ip netns del "${run_id}-s$i" 2>/dev/null || true; done
    ip netns del "$ns_x" 2>/dev/null || true
    sysctl -qw net.netfilter.nf_log_all_netns="$old_log_all" || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "netns e2e: FAIL: $*" >&2; exit 1; }

# Kernel logging from inside a namespace is off by default.
sysctl -qw net.netfilter.nf_log_all_netns=1

ip netns add "$ns_x"
ip -n "$ns_x" link set lo up
for i in "${sensors[@]}"; do
    ns="${run_id}-s$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Sensor i is 198.18.0.(4i+1)/30, the scanner's side 198.18.0.(4i+2)/30.
    ip link add "${run_id}s$i" type veth peer name "${run_id}x$i"
    ip link set "${run_id}s$i" netns "$ns"
    ip link set "${run_id}x$i" netns "$ns_x"
    ip -n "$ns" addr add "198.18.0.$((4 * i + 1))/30" dev "${run_id}s$i"
    ip -n "$ns_x" addr add "198.18.0.$((4 * i + 2))/30" dev "${run_id}x$i"
    ip -n "$ns" link set "${run_id}s$i" up
    ip -n "$ns_x" link set "${run_id}x$i" up
    # The sensor host's firewall: log and drop unsolicited inbound TCP SYN and UDP.
    ip netns exec "$ns" nft -f - <<NFT
table inet scanwatch_test {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "lo" accept
    tcp flags & (syn | ack) == syn log prefix "${run_id}-s$i DROP " drop
    meta l4proto udp log prefix "${run_id}-s$i DROP " drop
  }
}
NFT
    : > "$work/fw$i.log"
done

# The kernel log, as syslog lines with an ISO timestamp (what rsyslog writes), one
# file per sensor host (by log prefix).
# (A python3 reader of /dev/kmsg: one child process, so cleanup can stop it.)
python3 -u - "$run_id" "$work" <<'PY' &
import datetime, os, sys
run_id, work = sys.argv[1], sys.argv[2]
fd = os.open("/dev/kmsg", os.O_RDONLY)
os.lseek(fd, 0, os.SEEK_END)  # only what is logged from now on
while True:
    try:
        rec = os.read(fd, 8192).decode("utf-8", "replace")
    except BrokenPipeError:
        continue
    msg = rec.split(";", 1)[-1].split("\n", 1)[0]
    if msg.startswith(run_id + "-s") and msg[len(run_id) + 2:len(run_id) + 3].isdigit():
        i = msg[len(run_id) + 2:].split(" ", 1)[0]
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with open(f"{work}/fw{i}.log", "a") as f:
            f.write(f"{now} sensor{i} kernel: {msg}\n")
PY
pids+=($!)

# The centre on loopback, and one sensor process per host.
data="$work/data"
port=$(( 20000 + $$ % 20000 ))
"$bin" server --data "$data" --listen "127.0.0.1:$port" 2> "$work/server.err" &
pids+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
api="$("$bin" admin token add e2e --role analyst --data "$data" 2>/dev/null)"
for i in "${sensors[@]}"; do
    (umask 077; "$bin" admin sensor add "sensor$i" --data "$data" > "$work/token$i" 2>/dev/null)
    "$bin" sensor run --server "http://127.0.0.1:$port" --token-file "$work/token$i" \
        --spool "$work/spool$i" --source "$work/fw$i.log:netfilter" --from-start \
        2> "$work/sensor$i.err" &
    pids+=($!)
done

# Real scans, bounded: SYN scans of different port ranges and UDP probes per host.
for i in "${sensors[@]}"; do
    target="198.18.0.$((4 * i + 1))"
    ip netns exec "$ns_x" timeout 60 nmap -n -Pn -sS -p "1-$((50 * i))" --max-retries 0 -T4 "$target" \
        > "$work/nmap$i.out" 2>&1 || fail "nmap: $(tail -3 "$work/nmap$i.out")"
    ip netns exec "$ns_x" timeout 30 hping3 --udp -p ++2000 -c $((10 * i)) -i u10000 "$target" \
        > "$work/hping$i.out" 2>&1 || true
done

# Per (protocol, port) from the kernel logs: "tcp 22 3" lines, sorted.
kernel_ports() {
    cat "$work"/fw*.log | sed -n 's/.*PROTO=\([A-Z]*\) .*DPT=\([0-9]*\) .*/\1 \2/p' \
        | tr 'A-Z' 'a-z' | sort | uniq -c | awk '{print $2, $3, $1}' | sort
}
# The same from the centre's API.
centre_ports() {
    python3 - "http://127.0.0.1:$port/api/v1/topports?by=events&limit=1000" "$api" <<'PY' | sort
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
for r in json.load(urllib.request.urlopen(req, timeout=10)):
    print(r["protocol"], r["port"], r["events"])
PY
}
expected_total=$(( 50 + 100 + 150 + 10 + 20 + 30 ))
ok=0
for _ in $(seq 1 200); do
    all=0; match=1
    for i in "${sensors[@]}"; do
        want=$(grep -c "${run_id}-s$i DROP" "$work/fw$i.log" || true)
        got=$("$bin" admin sensor list --data "$data" | awk -v s="sensor$i" '$1 == s {print $4}')
        all=$((all + want))
        [ "$got" = "$want" ] || match=0
    done
    if [ "$all" -ge "$expected_total" ] && [ "$match" = 1 ]; then ok=1; break; fi
    sleep 0.1
done
if [ "$ok" != 1 ]; then
    for i in "${sensors[@]}"; do echo "--- sensor$i"; cat "$work/sensor$i.err" >&2 || true; done
    echo "--- server"; cat "$work/server.err" >&2 || true
    fail "per-sensor counts differ from the kernel logs (kernel total $all)"
fi
kernel_ports > "$work/kernel.ports"
centre_ports > "$work/centre.ports"
diff -u "$work/kernel.ports" "$work/centre.ports" > "$work/ports.diff" \
    || fail "per-port counts differ (kernel vs centre): $(head -20 "$work/ports.diff")"
ports=$(wc -l < "$work/kernel.ports")
tcp=$(cat "$work"/fw*.log | grep -c "PROTO=TCP" || true)
udp=$(cat "$work"/fw*.log | grep -c "PROTO=UDP" || true)
echo "netns e2e: 3 sensor hosts; kernel logged $all unsolicited packets ($tcp TCP SYN, $udp UDP) on $ports ports; the centre's counts per sensor and per port are equal"
echo "1 passed, 0 failed"
