#!/usr/bin/env python3
"""Check schema.sql on a running tests/scale/clickhouse.sh pair (standard library only).

    python3 tests/scale/ch_check.py DIR [--rows N]

Truncates the scanwatch tables, then (all over HTTP on 127.0.0.1, settings as URL parameters):
  1. INSERT INTO scanwatch.events_in FORMAT RowBinary   (N rows, insert_distributed_sync=1)
  2. INSERT INTO scanwatch.events_json FORMAT JSONEachRow (N rows, text addresses, same setting)
  3. checks both shards got rows, that each (proto, dst_port) lives on exactly one shard, and that
     the Distributed count equals what was sent;
  4. merges the window states through the Distributed `windows` table per (minute, proto, port)
     and per hour, and compares with the values computed here in Python: events exact,
     distinct sources/sensors/targets within 2 % (uniqCombined is approximate);
  5. retention on 18.16 (no TTL): ALTER TABLE ... DROP PARTITION on each shard removes one day.
Prints "ok: ..." lines; exits 1 on the first failure.
"""
import argparse
import ipaddress
import json
import os
import random
import struct
import sys
import time
import urllib.parse
import urllib.request

BASE_T = 1795000000  # 2026-11-18 ..., a fixed day so partitions are predictable
COLS = ("time time_ms sensor proto src dst src_port dst_port flags flags_known icmp_type "
        "direction action count unsolicited").split()
DIRECTION = {"unknown": 0, "inbound": 1, "outbound": 2}
ACTION = {"unknown": 0, "accept": 1, "drop": 2, "reject": 3}


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def read_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    return env


class CH:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/"

    def q(self, sql, data=None, **settings):
        params = dict(settings)
        if data is None:
            body = sql.encode()
        else:
            params["query"] = sql
            body = data
        url = self.url + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            fail(f"{sql[:80]}: HTTP {e.code}: {e.read().decode()[:500]}")


def ip16(s):
    a = ipaddress.ip_address(s)
    if a.version == 4:
        return b"\0" * 10 + b"\xff\xff" + a.packed
    return a.packed


def gen_rows(rng, n, t0, tag):
    rows = []
    for i in range(n):
        proto = rng.choice((6, 6, 6, 17, 1))
        port = 0 if proto == 1 else rng.choice((22, 23, 80, 443, 445, 3389, 5060, 8080, 50000 + rng.randrange(20)))
        if rng.random() < 0.3:
            src = f"2001:db8:{rng.randrange(4)}::{rng.randrange(1, 300):x}"
        else:
            src = f"198.51.100.{rng.randrange(1, 255)}" if rng.random() < 0.5 else f"203.0.113.{rng.randrange(1, 255)}"
        dst = f"192.0.2.{rng.randrange(1, 60)}"
        direction = rng.choice(("inbound", "inbound", "unknown", "outbound"))
        flags = rng.choice((0x02, 0x02, 0x12, 0x10)) if proto == 6 else 0
        unsolicited = int(direction != "outbound" and (proto == 17 or (proto == 6 and flags == 0x02)))
        rows.append({
            "time": t0 + rng.randrange(3 * 3600), "time_ms": rng.randrange(1000),
            "sensor": f"{tag}-sensor-{rng.randrange(12)}", "proto": proto, "src": src, "dst": dst,
            "src_port": 0 if proto == 1 else rng.randrange(1024, 65536), "dst_port": port,
            "flags": flags, "flags_known": 1 if proto == 6 else 0, "icmp_type": 8 if proto == 1 else 0,
            "direction": direction, "action": rng.choice(list(ACTION)), "count": rng.choice((1, 1, 1, 2, 5, 100)),
            "unsolicited": unsolicited,
        })
    return rows


def row_binary(rows):
    out = bytearray()
    for r in rows:
        s = r["sensor"].encode()
        out += struct.pack("<IH", r["time"], r["time_ms"])  # DateTime = UInt32, UInt16
        n = len(s)
        while True:  # String: LEB128 length + bytes
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                break
        out += s
        out += struct.pack("<B", r["proto"]) + ip16(r["src"]) + ip16(r["dst"])
        out += struct.pack("<HHBBBbbIB", r["src_port"], r["dst_port"], r["flags"], r["flags_known"],
                           r["icmp_type"], DIRECTION[r["direction"]], ACTION[r["action"]], r["count"],
                           r["unsolicited"])
    return bytes(out)


def json_each_row(rows):
    lines = []
    for r in rows:
        d = dict(r)
        d["time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["time"]))
        lines.append(json.dumps(d, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def expected(rows, bucket):
    cells = {}
    for r in rows:
        if not r["unsolicited"]:
            continue
        k = (r["time"] // bucket * bucket, r["proto"], r["dst_port"])
        c = cells.setdefault(k, [0, set(), set(), set()])
        c[0] += r["count"]
        c[1].add(ip16(r["src"]))
        c[2].add(r["sensor"])
        c[3].add(ip16(r["dst"]))
    return {k: (v[0], len(v[1]), len(v[2]), len(v[3])) for k, v in cells.items()}


def compare(name, exp, got):
    if set(exp) != set(got):
        fail(f"{name}: cells differ: missing {len(set(exp) - set(got))}, extra {len(set(got) - set(exp))}")
    worst = 0.0
    for k, e in exp.items():
        g = got[k]
        if g[0] != e[0]:
            fail(f"{name} {k}: events {g[0]} != {e[0]}")
        for i in (1, 2, 3):
            err = abs(g[i] - e[i]) / e[i]
            worst = max(worst, err)
            if err > 0.02:
                fail(f"{name} {k}: distinct[{i}] {g[i]} vs exact {e[i]}")
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--rows", type=int, default=3000)
    args = ap.parse_args()
    env = read_env(os.path.join(args.dir, "ports.env"))
    ch = [CH(env["CH_HTTP_PORT_1"]), CH(env["CH_HTTP_PORT_2"])]
    for c in ch:
        for t in ("events_local", "windows_local"):
            c.q(f"TRUNCATE TABLE scanwatch.{t}")
    rng = random.Random(42)
    rb_rows = gen_rows(rng, args.rows, BASE_T, "rb")
    js_rows = gen_rows(rng, args.rows, BASE_T, "js")
    js_rows[0].update(src="::ffff:198.51.100.7")  # an already-mapped IPv4 in text form

    t = time.monotonic()
    ch[0].q("INSERT INTO scanwatch.events_in FORMAT RowBinary", row_binary(rb_rows), insert_distributed_sync=1)
    ok(f"RowBinary: {len(rb_rows)} rows into Distributed scanwatch.events_in -> events_local + windows_local (insert_distributed_sync=1) in {time.monotonic() - t:.2f}s")
    t = time.monotonic()
    ch[1].q("INSERT INTO scanwatch.events_json FORMAT JSONEachRow", json_each_row(js_rows), insert_distributed_sync=1)
    ok(f"JSONEachRow: {len(js_rows)} rows into Distributed scanwatch.events_json -> events_local + windows_local in {time.monotonic() - t:.2f}s")

    rows = rb_rows + js_rows
    total = int(ch[0].q("SELECT count() FROM scanwatch.events"))
    per_shard = [int(c.q("SELECT count() FROM scanwatch.events_local")) for c in ch]
    if total != len(rows) or sum(per_shard) != len(rows) or min(per_shard) == 0:
        fail(f"row counts: distributed {total}, per shard {per_shard}, sent {len(rows)}")
    keys = [set(c.q("SELECT DISTINCT concat(toString(proto), '/', toString(dst_port)) FROM scanwatch.events_local").split()) for c in ch]
    if keys[0] & keys[1]:
        fail(f"(proto, dst_port) on both shards: {keys[0] & keys[1]}")
    ok(f"{total} rows: shard1 {per_shard[0]} ({len(keys[0])} proto/port), shard2 {per_shard[1]} ({len(keys[1])} proto/port), no proto/port on both")

    # round trip of the JSON text addresses
    got = ch[0].q("SELECT IPv6NumToString(src) FROM scanwatch.events WHERE sensor LIKE 'js-%' AND src_port = "
                  f"{js_rows[0]['src_port']} AND time = {js_rows[0]['time']} AND time_ms = {js_rows[0]['time_ms']}").split()
    if "::ffff:198.51.100.7" not in got:
        fail(f"mapped IPv4 text round trip: {got}")
    ok("text address '::ffff:198.51.100.7' and plain IPv4/IPv6 text converted to FixedString(16) by events_json_mv")

    # Shards answer a Distributed query in parallel; merge states per cell.
    for bucket, expr in ((60, "window_start"), (3600, "toStartOfHour(window_start)")):
        sql = (f"SELECT toUInt32({expr}) AS w, proto, port, sumMerge(events), uniqCombinedMerge(sources), "
               f"uniqCombinedMerge(sensors), uniqCombinedMerge(targets) FROM scanwatch.windows "
               f"GROUP BY w, proto, port ORDER BY w, proto, port FORMAT TabSeparated")
        got = {}
        for line in ch[0].q(sql).splitlines():
            w, p, port, ev, s, se, tg = map(int, line.split("\t"))
            got[(w, p, port)] = (ev, s, se, tg)
        exp = expected(rows, bucket)
        worst = compare(f"{bucket}s", exp, got)
        ok(f"windows of {bucket}s: {len(got)} (window, proto, port) cells, events exact "
           f"(total {sum(v[0] for v in got.values())}), distinct counts worst error {worst * 100:.2f}%")
    top = ch[0].q("SELECT toStartOfHour(window_start) AS w, proto, port, sumMerge(events) AS e, uniqCombinedMerge(sources) AS s "
                  "FROM scanwatch.windows GROUP BY w, proto, port ORDER BY e DESC LIMIT 3 FORMAT TabSeparated")
    ok("top hourly cells (window, proto, port, events, sources):\n    " + top.strip().replace("\n", "\n    "))

    # raw-state row count vs merged (AggregatingMergeTree keeps several rows per key until merges)
    raw = sum(int(c.q("SELECT count() FROM scanwatch.windows_local")) for c in ch)
    merged = len(expected(rows, 60))
    ok(f"windows_local holds {raw} state rows for {merged} minute cells (always read with *Merge + GROUP BY)")

    # retention without TTL: drop one day's partition on every shard
    extra = gen_rows(random.Random(7), 200, BASE_T - 10 * 86400, "old")
    ch[0].q("INSERT INTO scanwatch.events_in FORMAT RowBinary", row_binary(extra), insert_distributed_sync=1)
    day = time.strftime("%Y-%m-%d", time.gmtime(BASE_T - 10 * 86400))
    parts = ch[0].q("SELECT DISTINCT partition FROM system.parts WHERE database = 'scanwatch' AND table = 'events_local' AND active ORDER BY partition").split()
    for c in ch:
        c.q(f"ALTER TABLE scanwatch.events_local DROP PARTITION '{day}'")
        c.q(f"ALTER TABLE scanwatch.windows_local DROP PARTITION '{day}'")
    after = int(ch[0].q("SELECT count() FROM scanwatch.events"))
    if after != len(rows):
        fail(f"after DROP PARTITION '{day}': {after} rows, expected {len(rows)}")
    ok(f"retention: partitions before {parts}; DROP PARTITION '{day}' on each shard removed the 200 old rows")
    ok("all ClickHouse checks passed")


if __name__ == "__main__":
    main()
