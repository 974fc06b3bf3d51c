#!/usr/bin/env bash
# The blocklist applied with real parts: a sensor host in a network namespace
# (198.18.4.1, no route out) runs `scanwatch block`, which loads the list into an
# nftables table; a scanner namespace (198.18.4.2) is let in before the sync,
# dropped after it (a TCP connect), let in again once its entry expired,
# and `nft list` shows the set. A list with a bad line loads the good ones; a
# dry run changes nothing. Bounded in time; everything it creates is removed.
#
#   tests/netns/block.sh path/to/scanwatch        (as root)
set -euo pipefail

bin="$(realpath "${1:?usage: $0 path/to/scanwatch}")"
name=block
run_id="swb$$"
# shellcheck source=tests/netns/pair.sh
source "$(dirname "${BASH_SOURCE[0]}")/pair.sh"
netns_pair 198.18.4.1 198.18.4.2

# A TCP service on the sensor host, to connect to.
ip netns exec "$ns_s" timeout 60 python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.4.1", 8080)); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
' &
pids+=($!)
reach() {
    ip netns exec "$ns_x" timeout 2 bash -c 'echo > /dev/tcp/198.18.4.1/8080' 2>/dev/null
}

up=0
for _ in $(seq 50); do reach && { up=1; break; }; sleep 0.2; done
[ "$up" = 1 ] || fail "the scanner cannot reach the sensor host before the sync"

printf '# scanwatch blocklist\n198.18.4.2\n2001:db8::66\nnot-an-address\n' > "$work/list.txt"

# A dry run prints the script and loads nothing.
ip netns exec "$ns_s" "$bin" block --source "$work/list.txt" --timeout 4s --dry-run \
    > "$work/dry.nft" 2> "$work/dry.err"
grep -q '198.18.4.2 timeout 4s' "$work/dry.nft" || fail "dry run: $(cat "$work/dry.nft")"
if ip netns exec "$ns_s" nft list tables | grep -q scanwatch_blocklist; then
    fail "the dry run loaded a table"
fi
reach || fail "the dry run blocked the scanner"

# The sync: the scanner is dropped; the bad line is reported, the rest loaded.
ip netns exec "$ns_s" "$bin" block --source "$work/list.txt" --timeout 4s --once \
    2> "$work/block.err" || fail "block: $(cat "$work/block.err")"
grep -q 'list.txt:4: not an address' "$work/block.err" || fail "bad line not reported: $(cat "$work/block.err")"
grep -q 'blocklist: 2 addresses' "$work/block.err" || fail "$(cat "$work/block.err")"
ip netns exec "$ns_s" nft list set inet scanwatch_blocklist sources_v4 > "$work/set4"
grep -q '198.18.4.2' "$work/set4" || fail "not in the set: $(cat "$work/set4")"
ip netns exec "$ns_s" nft list set inet scanwatch_blocklist sources_v6 | grep -q '2001:db8::66' ||
    fail "the IPv6 address is not in its set"
if reach; then fail "the scanner still reaches the sensor host after the sync"; fi

# Its entry expires: let in again, without another sync.
sleep 5
reach || fail "the scanner is still dropped after its entry expired"
if ip netns exec "$ns_s" nft list set inet scanwatch_blocklist sources_v4 | grep -q '198.18.4.2'; then
    fail "the expired entry is still listed"
fi

# A second sync with an empty list leaves an empty table (nothing kept from before).
printf '# empty\n' > "$work/empty.txt"
ip netns exec "$ns_s" "$bin" block --source "$work/empty.txt" --timeout 1h --once 2> /dev/null
ip netns exec "$ns_s" nft list set inet scanwatch_blocklist sources_v4 | grep -q 'elements' &&
    fail "the empty list left elements"

# A table name that could inject into the script is refused before nft runs.
if ip netns exec "$ns_s" "$bin" block --source "$work/list.txt" --table 'x; flush ruleset' --once 2> /dev/null; then
    fail "a hostile table name was accepted"
fi

echo "netns block: the scanner was dropped after the sync and let in again after 4s; bad line reported; dry run loaded nothing"
echo "netns block: 1 passed, 0 failed"
