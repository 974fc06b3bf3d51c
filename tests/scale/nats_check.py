#!/usr/bin/env python3
"""Check a running tests/scale/nats-cluster.sh cluster with nats-py (pip install nats-py).

    python3 tests/scale/nats_check.py DIR            # basic checks
    python3 tests/scale/nats_check.py DIR --fault    # + kill -9 the stream leader while publishing

Checks, each printed as "ok: ..." (exit 1 on the first failure):
  1. a file stream with num_replicas=3 can be created; its cluster info shows a leader and 2 replicas;
  2. publishing twice with the same Nats-Msg-Id stores one message (second PubAck has duplicate=True);
  3. the message reads back through a durable pull consumer, with its header;
  4. a pull consumer delivers at most max_ack_pending un-acked messages to one large fetch
     (what the Rust side must know: raise max_ack_pending at least to the fetch batch size);
  5. (--fault) the stream leader node is killed with -9 and restarted while a publisher keeps going,
     retrying each message with the same Nats-Msg-Id: every message is stored exactly once and
     all three replicas are current afterwards.
Reads the client URLs from DIR/ports.env (NATS_URLS). Uses only 127.0.0.1. Bounded in time.
"""
import argparse
import asyncio
import os
import subprocess
import sys
import time

import nats
from nats.js.api import ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

STREAM = "SWCHECK"
HERE = os.path.dirname(os.path.abspath(__file__))


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


async def wait_stream_current(js, timeout=30.0):
    """Until the stream has a leader and both replicas are current (bounded)."""
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        try:
            info = await js.stream_info(STREAM)
            c = info.cluster
            if c and c.leader and c.replicas and len(c.replicas) == 2 and all(
                r.current and not r.offline for r in c.replicas
            ):
                return info
        except Exception:  # leader election in progress
            pass
        await asyncio.sleep(0.5)
    fail(f"stream {STREAM} not fully current within {timeout}s: {info and info.cluster}")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--fault", action="store_true")
    args = ap.parse_args()
    env = read_env(os.path.join(args.dir, "ports.env"))
    servers = env["NATS_URLS"].split(",")

    conn_errors = []

    async def on_error(e):  # nats-py prints a traceback per failed reconnect by default
        conn_errors.append(type(e).__name__)

    nc = await nats.connect(
        servers=servers,
        error_cb=on_error,
        connect_timeout=3,
        max_reconnect_attempts=60,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
    )
    js = nc.jetstream(timeout=5)

    # 1. R3 stream
    try:
        await js.delete_stream(STREAM)
    except NotFoundError:
        pass
    await js.add_stream(
        StreamConfig(
            name=STREAM,
            subjects=["swcheck.>"],
            storage=StorageType.FILE,
            num_replicas=3,
            duplicate_window=120.0,
            max_bytes=64 * 1024 * 1024,
        )
    )
    info = await wait_stream_current(js)
    if info.config.num_replicas != 3:
        fail(f"num_replicas={info.config.num_replicas}")
    ok(
        f"stream {STREAM} num_replicas=3 leader={info.cluster.leader} "
        f"replicas={[(r.name, r.current) for r in info.cluster.replicas]}"
    )

    # 2. dedup by Nats-Msg-Id
    hdr = {"Nats-Msg-Id": "sensor-a:batch-1"}
    a1 = await js.publish("swcheck.events", b"batch-1", headers=hdr)
    a2 = await js.publish("swcheck.events", b"batch-1", headers=hdr)
    info = await js.stream_info(STREAM)
    if a1.duplicate or not a2.duplicate or a1.seq != a2.seq or info.state.messages != 1:
        fail(f"dedup: a1={a1} a2={a2} messages={info.state.messages}")
    ok(f"dedup: first ack seq={a1.seq} duplicate={a1.duplicate}, second duplicate={a2.duplicate}, stream holds {info.state.messages} message")

    # 3. read back
    sub = await js.pull_subscribe("swcheck.events", durable="readback", stream=STREAM)
    msgs = await sub.fetch(10, timeout=3)
    if len(msgs) != 1 or msgs[0].data != b"batch-1" or msgs[0].headers.get("Nats-Msg-Id") != hdr["Nats-Msg-Id"]:
        fail(f"read back: {[(m.data, m.headers) for m in msgs]}")
    await msgs[0].ack()
    ok(f"read back 1 message data={msgs[0].data!r} Nats-Msg-Id={msgs[0].headers.get('Nats-Msg-Id')}")
    await sub.unsubscribe()

    # 4. max_ack_pending caps a single large fetch
    n = 300
    for i in range(n):
        await js.publish("swcheck.bulk", b"x%d" % i)
    sub = await js.pull_subscribe(
        "swcheck.bulk", durable="bulk", stream=STREAM, config=ConsumerConfig(max_ack_pending=100)
    )
    got = []
    deadline = time.monotonic() + 5
    while len(got) < n and time.monotonic() < deadline:
        try:
            got += await sub.fetch(n - len(got), timeout=1)
        except asyncio.TimeoutError:
            pass
        except nats.errors.TimeoutError:
            pass
    capped = len(got)
    for m in got:
        await m.ack()
    ci = await js.consumer_info(STREAM, "bulk")
    if capped != 100:
        fail(f"expected a fetch of {n} without acks to stop at max_ack_pending=100, got {capped}")
    default_cc = await js.add_consumer(STREAM, ConsumerConfig(durable_name="dflt", ack_policy="explicit"))
    ok(
        f"fetch({n}) without acks delivered {capped} = max_ack_pending ({ci.config.max_ack_pending}); "
        f"server default max_ack_pending for a new pull consumer is {default_cc.config.max_ack_pending}"
    )
    await sub.unsubscribe()

    # 5. fault: kill -9 the stream leader while publishing, retry with the same Nats-Msg-Id
    if args.fault:
        info = await wait_stream_current(js)
        leader = info.cluster.leader  # "n1".."n3"
        before = info.state.messages
        total = 400
        stats = {"retries": 0, "dups": 0}

        async def publisher():
            for i in range(total):
                mid = f"fault-{i}"
                end = time.monotonic() + 30
                while True:
                    try:
                        ack = await js.publish("swcheck.fault", b"%d" % i, headers={"Nats-Msg-Id": mid}, timeout=2)
                        stats["dups"] += int(bool(ack.duplicate))
                        break
                    except Exception as e:  # timeout / no responders while the leader is re-elected
                        stats["retries"] += 1
                        stats.setdefault("errors", set()).add(type(e).__name__)
                        if time.monotonic() > end:
                            fail(f"publish {mid} failed for 30s")
                        await asyncio.sleep(0.2)
                await asyncio.sleep(0.01)

        async def killer():
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            r = await asyncio.to_thread(
                subprocess.run,
                [os.path.join(HERE, "nats-cluster.sh"), "restart-node", leader[1:], args.dir],
                capture_output=True, text=True, timeout=60,
            )
            if r.returncode != 0:
                fail(f"restart-node: {r.stdout} {r.stderr}")
            return time.monotonic() - t0, r.stdout.strip().replace("\n", "; ")

        t0 = time.monotonic()
        _, (restart_secs, out) = await asyncio.gather(publisher(), killer())
        info = await wait_stream_current(js)
        stored = info.state.messages - before
        if stored != total:
            fail(f"fault: published {total} distinct ids, stream gained {stored}")
        ok(
            f"fault: killed -9 stream leader {leader} and restarted it ({out}; {restart_secs:.1f}s) while publishing "
            f"{total} msgs in {time.monotonic() - t0:.1f}s; {stats['retries']} publish retries, "
            f"{stats['dups']} acks flagged duplicate (errors seen: {sorted(stats.get('errors', []))}), stream gained exactly {stored}; new leader={info.cluster.leader}, "
            f"replicas current={[(r.name, r.current) for r in info.cluster.replicas]}; "
            f"client connection errors while reconnecting: {len(conn_errors)} {sorted(set(conn_errors))}"
        )

    await js.delete_stream(STREAM)
    await nc.close()
    ok("all NATS checks passed")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), timeout=180))
