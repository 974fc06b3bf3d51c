#!/usr/bin/env bash
# Threat context with real parts: two "servers" in network namespaces listening on a
# few ports (one behind an nftables firewall), a real nmap scan of them saved as XML
# (-oX) and imported as the asset inventory; the real advisory samples imported;
# the seed case replayed on the dates of the 2007 Windows DNS RPC advisory; then:
#  - the TCP/1025 warning is "likely" and names CVE-2007-1748,
#  - `scanwatch exposure` ranks the unfirewalled DNS+HTTP+FTP host first,
#  - the generated nftables rules pass `nft -c -f`, and once loaded in the exposed
#    host they really block new connections to TCP/1025 (nmap: open -> filtered).
# Addresses are in 198.18.0.0/15, namespaces have no route out; bounded in time;
# everything it creates is removed.
#
#   tests/netns/context.sh path/to/scanwatch        (as root, from the repo root)
set -euo pipefail

bin="$(realpath "${1:?usage: $0 path/to/scanwatch}")"
repo="$(pwd)"
run_id="swc$$"
work="$(mktemp -d)"
ns_x="${run_id}-x"
ns_a="${run_id}-a"
ns_b="${run_id}-b"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "$ns_x" "$ns_a" "$ns_b"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "netns context: FAIL: $*" >&2; exit 1; }

for ns in "$ns_x" "$ns_a" "$ns_b"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip link add "${run_id}xa" type veth peer name "${run_id}ax"
ip link add "${run_id}xb" type veth peer name "${run_id}bx"
ip link set "${run_id}xa" netns "$ns_x"
ip link set "${run_id}xb" netns "$ns_x"
ip link set "${run_id}ax" netns "$ns_a"
ip link set "${run_id}bx" netns "$ns_b"
ip -n "$ns_x" addr add 198.18.2.1/30 dev "${run_id}xa"
ip -n "$ns_a" addr add 198.18.2.2/30 dev "${run_id}ax"
ip -n "$ns_x" addr add 198.18.2.5/30 dev "${run_id}xb"
ip -n "$ns_b" addr add 198.18.2.6/30 dev "${run_id}bx"
ip -n "$ns_x" link set "${run_id}xa" up
ip -n "$ns_x" link set "${run_id}xb" up
ip -n "$ns_a" link set "${run_id}ax" up
ip -n "$ns_b" link set "${run_id}bx" up

# Listeners: host a is a small hosting server (FTP, DNS, HTTP, MS-RPC ports), no
# firewall; host b a web server behind a firewall that drops everything else.
listen() {
    local ns="$1"; shift
    ip netns exec "$ns" timeout 120 python3 -c '
import socket, sys, select
socks = []
for p in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p))); s.listen(16); socks.append(s)
print("listening", flush=True)
while True:
    r, _, _ = select.select(socks, [], [], 1.0)
    for s in r:
        c, _ = s.accept(); c.close()
' "$@" > "$work/listen-$ns.out" 2>&1 &
    pids+=($!)
}
listen "$ns_a" 21 53 80 135 1025
listen "$ns_b" 80 443
for ns in "$ns_a" "$ns_b"; do
    for _ in $(seq 50); do grep -q listening "$work/listen-$ns.out" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$work/listen-$ns.out" || fail "listener in $ns did not start: $(cat "$work/listen-$ns.out")"
done
ip netns exec "$ns_b" nft -f - <<'NFT'
table inet hostfw {
  chain input {
    type filter hook input priority 0; policy drop;
    iifname "lo" accept
    ct state established,related accept
    tcp dport { 80, 443 } accept
  }
}
NFT

ports=21,22,53,80,135,443,445,1025
scan() {
    ip netns exec "$ns_x" timeout 120 nmap -sT -Pn -n --max-retries 1 --host-timeout 60s \
        -p "$ports" -oX "$1" 198.18.2.2 198.18.2.6 > /dev/null
}
scan "$work/scan.xml"
grep -q '<nmaprun' "$work/scan.xml" || fail "nmap wrote no XML"

data="$work/data"
"$bin" assets import nmap "$work/scan.xml" --data "$data"
"$bin" assets list --data "$data" --json > "$work/assets.jsonl"
python3 - "$work/assets.jsonl" <<'PY' || fail "the nmap scan was not imported as expected"
import json, sys
assets = {a["address"]: a for a in map(json.loads, open(sys.argv[1]))}
a, b = assets["198.18.2.2"], assets["198.18.2.6"]
open_a = sorted(p["port"] for p in a["open_ports"])
open_b = sorted(p["port"] for p in b["open_ports"])
assert open_a == [21, 53, 80, 135, 1025], open_a
assert open_b == [80, 443], open_b
assert b["firewalled"] is True, b
assert "dns" in a["roles"] and "ftp" in a["roles"] and "http" in a["roles"], a["roles"]
PY

intel="$repo/crates/context/testdata/intel"
"$bin" intel import nvd "$intel/nvdcve-2.0-sample.json" --data "$data"
"$bin" intel import kev "$intel/known_exploited_vulnerabilities.json" --data "$data"
"$bin" intel import exploitdb "$intel/files_exploits.csv" --data "$data"
"$bin" intel import csaf "$intel/csaf-ms07-029.json" --data "$data"

"$bin" demo --offline --start 2007-04-12 --window 1d --json --data "$data" > "$work/alerts.jsonl" 2> "$work/demo.err"
python3 - "$work/alerts.jsonl" "$work/rules.nft" <<'PY' || fail "the TCP/1025 warning lacks its context"
import json, sys
alerts = [a for a in map(json.loads, open(sys.argv[1])) if a["type"] == "alert"]
seed = [a for a in alerts if a["protocol"] == "tcp" and a["port"] == 1025]
assert seed, [(a["protocol"], a["port"]) for a in alerts]
c = seed[0]
assert c["confidence"] == "likely", c["assessment"]
assert "not verified" in c["assessment"], c["assessment"]
assert c["advisories"][0]["id"] == "CVE-2007-1748", [k["id"] for k in c["advisories"]]
blocks = {(b["proto"], b["first"], b["last"]) for b in c["block"]}
assert ("tcp", 1025, 65535) in blocks, blocks
assert c["exposed_assets"][0]["address"] == "198.18.2.2", c["exposed_assets"]
nft = [m["rule"] for m in c["mitigations"] if m["platform"] == "nftables"]
open(sys.argv[2], "w").write(nft[0])
PY

"$bin" exposure --data "$data" --alerts "$work/alerts.jsonl" --json > "$work/exposure.jsonl"
python3 - "$work/exposure.jsonl" <<'PY' || fail "exposure ranking"
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r["port"] == 1025]
assert rows, "no exposure row for tcp/1025"
ex = rows[0]["exposed"]
assert ex and ex[0]["address"] == "198.18.2.2", ex
assert any("dns" in r for r in ex[0]["reasons"]), ex[0]["reasons"]
PY

# The rules are valid nftables, and an invalid file is refused (the check can fail).
ip netns exec "$ns_a" nft -c -f "$work/rules.nft" || fail "nft -c refused the generated rules"
sed 's/dport/dprot/' "$work/rules.nft" > "$work/broken.nft"
if ip netns exec "$ns_a" nft -c -f "$work/broken.nft" 2>/dev/null; then fail "nft -c accepted a broken file"; fi

# Loaded in the exposed host, they block new connections to TCP/1025 but not 80.
ip netns exec "$ns_a" nft -f "$work/rules.nft"
ip netns exec "$ns_a" nft -f "$work/rules.nft"   # loading twice replaces, not duplicates
n=$(ip netns exec "$ns_a" nft list table inet scanwatch | grep -c 'tcp dport 1025-65535')
[ "$n" = 2 ] || fail "expected the rule once in input and once in forward, found $n"
scan "$work/after.xml"
python3 - "$work/after.xml" <<'PY' || fail "the loaded rules do not block as intended"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for h in root.iter("host"):
    addr = h.find("address").get("addr")
    if addr != "198.18.2.2":
        continue
    st = {int(p.get("portid")): p.find("state").get("state") for p in h.iter("port")}
    assert st.get(1025) == "filtered", st
    assert st.get(80) == "open" and st.get(53) == "open", st
    break
else:
    raise SystemExit("host 198.18.2.2 not in the second scan")
PY

echo "netns context: nmap inventory of 2 hosts imported; TCP/1025 warning likely (CVE-2007-1748); exposure ranks 198.18.2.2 first; nftables rules pass nft -c and block tcp/1025 when loaded"
echo "netns context: 1 passed, 0 failed"
