#!/usr/bin/env python3
"""Write N generated scanwatch events for the insert benchmark (see README.md).

    python3 tests/scale/gen_events.py N json OUT      # JSONEachRow for scanwatch.events_json
    python3 tests/scale/gen_events.py N rowbinary OUT # RowBinary for scanwatch.events_in

Same generator as ch_check.py (seeded, 3 hours of one day, ~60 (proto, port) pairs).
"""
import random
import sys

from ch_check import BASE_T, gen_rows, json_each_row, row_binary

n, fmt, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = random.Random(1)
enc = {"json": json_each_row, "rowbinary": row_binary}[fmt]
with open(out, "wb") as f:
    for start in range(0, n, 100_000):
        f.write(enc(gen_rows(rng, min(100_000, n - start), BASE_T, "bench")))
