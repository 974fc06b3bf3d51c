-- scanwatch scale-out schema for ClickHouse (cluster `scanwatch`, N shards x 1 replica).
--
-- Apply to EVERY server of the cluster (tests/scale/clickhouse.sh apply-schema DIR): without
-- ZooKeeper there is no `ON CLUSTER` DDL. Every statement is idempotent (IF NOT EXISTS).
--
-- Verified on ClickHouse 18.16.1 (Debian bookworm). Written to be accepted unchanged by current
-- releases too, so it uses only syntax both accept:
--   * MergeTree family with the "new" syntax: ENGINE = X PARTITION BY ... ORDER BY ...
--     (the old `MergeTree(date, (key), 8192)` form is deprecated and refused by default since 23.x);
--   * DateTime (second resolution) + a separate millisecond column: DateTime64 only exists from 20.1;
--   * IP addresses as FixedString(16) (IPv6, IPv4 as ::ffff:a.b.c.d, network byte order):
--     the IPv4/IPv6 types only exist from 19.3; FixedString(16) is also what IPv6 stores, so a
--     later `ALTER ... MODIFY COLUMN src IPv6` is cheap;
--   * Enum8, AggregateFunction(sum|uniqCombined, ...), AggregatingMergeTree, Null engine,
--     Distributed(cluster, db, table[, key]), CREATE MATERIALIZED VIEW ... TO ...;
--   * NO cascading materialized views: 18.16 does not fire the views of a table that a view writes
--     into (checked: Null -> MV -> b -> MV -> c leaves c empty), while current releases do. A
--     schema relying on either behaviour would count windows wrongly on one of them. So every view
--     reads an ingest table (Null engine) that only clients write to, and events_local and
--     windows_local have no views attached:
--
--        RowBinary   -> events_in   (Distributed) -> events_in_local   (Null) --+-> events_local  (MergeTree)
--        JSONEachRow -> events_json (Distributed) -> events_json_local (Null) --+-> windows_local (AggregatingMergeTree)
--
--     Reads: `events` and `windows` (Distributed). An INSERT straight into events/events_local
--     stores raw rows but does NOT update windows (backfills: insert through events_in);
--   * functions toStartOfMinute, toStartOfHour, toDate, cityHash64, IPv6StringToNum,
--     IPv4StringToNum, IPv4ToIPv6, sumState/sumMerge, uniqCombinedState/uniqCombinedMerge.
-- Deliberately NOT used, because 18.16 lacks them (see README.md):
--   * TTL (table/column TTL arrived in 19.6: 18.16 gives a syntax error). Retention on 18.16 is
--     `ALTER TABLE scanwatch.events_local DROP PARTITION 'YYYY-MM-DD'` per shard (see
--     retention.sql); on >= 19.6 one may add `ALTER TABLE ... MODIFY TTL time + INTERVAL 30 DAY`;
--   * LowCardinality (experimental behind a setting in 18.16), DateTime64, IPv6 type,
--     toStartOfInterval (use intDiv arithmetic), input_format_defaults_for_omitted_fields.
-- Caveat for upgrades: AggregateFunction states are a storage format. uniqCombined states written
-- by 18.16 are not promised to merge correctly with states written by a much newer server; after a
-- major upgrade rebuild windows_local from events_local (INSERT INTO windows_local SELECT ...).

CREATE DATABASE IF NOT EXISTS scanwatch;

-- Raw events, one row per scanwatch Event (crates/event: Event). Local part of each shard.
CREATE TABLE IF NOT EXISTS scanwatch.events_local
(
    time        DateTime,             -- event time, whole seconds, UTC (Event.time / 1000)
    time_ms     UInt16,               -- millisecond part, 0..999 (Event.time % 1000)
    sensor      String,               -- sensor name
    proto       UInt8,                -- IP protocol number: 6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...
    src         FixedString(16),      -- IPv6 bytes; IPv4 mapped as ::ffff:a.b.c.d
    dst         FixedString(16),
    src_port    UInt16,               -- 0 when the protocol has no ports
    dst_port    UInt16,               -- 0 when the protocol has no ports
    flags       UInt8,                -- TCP flags (0 when unknown or not TCP)
    flags_known UInt8,                -- 1 when the log gave TCP flags
    icmp_type   UInt8,
    direction   Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2),
    action      Enum8('unknown' = 0, 'accept' = 1, 'drop' = 2, 'reject' = 3),
    count       UInt32,               -- packets this event stands for, >= 1
    unsolicited UInt8                 -- Event::is_unsolicited(), computed by the Rust side: only
                                      -- these rows are counted in windows
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (proto, dst_port, time)
SETTINGS index_granularity = 8192;

-- Reads of raw events (and DROP PARTITION retention) go through this table. Rows with the same
-- (proto, dst_port) always land on the same shard, so one port's windows are complete on one shard.
CREATE TABLE IF NOT EXISTS scanwatch.events AS scanwatch.events_local
ENGINE = Distributed(scanwatch, scanwatch, events_local, cityHash64(proto, dst_port));

-- Per-minute (window, proto, port) cells as mergeable states. Any window length that is a
-- multiple of a minute is a GROUP BY over these (states merge across minutes and shards).
CREATE TABLE IF NOT EXISTS scanwatch.windows_local
(
    window_start DateTime,                                   -- start of the minute, UTC
    proto        UInt8,
    port         UInt16,
    events       AggregateFunction(sum, UInt64),             -- sum of count: exact
    sources      AggregateFunction(uniqCombined, FixedString(16)),  -- distinct src: approximate
    sensors      AggregateFunction(uniqCombined, String),           -- distinct sensor: approximate
    targets      AggregateFunction(uniqCombined, FixedString(16))   -- distinct dst: approximate
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(window_start)
ORDER BY (proto, port, window_start);

CREATE TABLE IF NOT EXISTS scanwatch.windows AS scanwatch.windows_local
ENGINE = Distributed(scanwatch, scanwatch, windows_local, cityHash64(proto, port));

-- Binary ingest: the Rust side (clickhouse crate, RowBinary) inserts into `events_in`, with
-- FixedString(16) addresses as 16 raw bytes. Same columns as events_local; stores nothing itself.
CREATE TABLE IF NOT EXISTS scanwatch.events_in_local AS scanwatch.events_local ENGINE = Null;

CREATE TABLE IF NOT EXISTS scanwatch.events_in AS scanwatch.events_in_local
ENGINE = Distributed(scanwatch, scanwatch, events_in_local, cityHash64(proto, dst_port));

CREATE MATERIALIZED VIEW IF NOT EXISTS scanwatch.events_in_mv TO scanwatch.events_local AS
SELECT time, time_ms, sensor, proto, src, dst, src_port, dst_port, flags, flags_known, icmp_type,
       direction, action, count, unsolicited
FROM scanwatch.events_in_local;

CREATE MATERIALIZED VIEW IF NOT EXISTS scanwatch.windows_mv TO scanwatch.windows_local AS
SELECT
    toStartOfMinute(time)       AS window_start,
    proto,
    dst_port                    AS port,
    sumState(toUInt64(count))   AS events,
    uniqCombinedState(src)      AS sources,
    uniqCombinedState(sensor)   AS sensors,
    uniqCombinedState(dst)      AS targets
FROM scanwatch.events_in_local
WHERE unsolicited = 1
GROUP BY window_start, proto, port;

-- JSON ingest. FixedString(16) cannot carry arbitrary bytes through JSON (a "\u00ff" escape is
-- stored as the two UTF-8 bytes C3 BF), so JSONEachRow producers send addresses as text
-- ("192.0.2.1", "::ffff:192.0.2.1" or "2001:db8::1"); both views convert them the same way, so
-- uniqCombined hashes the same 16 bytes whichever path a row took.
CREATE TABLE IF NOT EXISTS scanwatch.events_json_local
(
    time        DateTime,             -- JSON: "2026-11-27 04:00:00" (UTC, the server timezone)
    time_ms     UInt16,
    sensor      String,
    proto       UInt8,
    src         String,
    dst         String,
    src_port    UInt16,
    dst_port    UInt16,
    flags       UInt8,
    flags_known UInt8,
    icmp_type   UInt8,
    direction   Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2),
    action      Enum8('unknown' = 0, 'accept' = 1, 'drop' = 2, 'reject' = 3),
    count       UInt32,
    unsolicited UInt8
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS scanwatch.events_json AS scanwatch.events_json_local
ENGINE = Distributed(scanwatch, scanwatch, events_json_local, cityHash64(proto, dst_port));

CREATE MATERIALIZED VIEW IF NOT EXISTS scanwatch.events_json_mv TO scanwatch.events_local AS
SELECT
    time, time_ms, sensor, proto,
    if(position(src, ':') = 0, IPv4ToIPv6(IPv4StringToNum(src)), IPv6StringToNum(src)) AS src,
    if(position(dst, ':') = 0, IPv4ToIPv6(IPv4StringToNum(dst)), IPv6StringToNum(dst)) AS dst,
    src_port, dst_port, flags, flags_known, icmp_type, direction, action, count, unsolicited
FROM scanwatch.events_json_local;

CREATE MATERIALIZED VIEW IF NOT EXISTS scanwatch.windows_json_mv TO scanwatch.windows_local AS
SELECT
    toStartOfMinute(time)       AS window_start,
    proto,
    dst_port                    AS port,
    sumState(toUInt64(count))   AS events,
    uniqCombinedState(if(position(src, ':') = 0, IPv4ToIPv6(IPv4StringToNum(src)), IPv6StringToNum(src))) AS sources,
    uniqCombinedState(sensor)   AS sensors,
    uniqCombinedState(if(position(dst, ':') = 0, IPv4ToIPv6(IPv4StringToNum(dst)), IPv6StringToNum(dst))) AS targets
FROM scanwatch.events_json_local
WHERE unsolicited = 1
GROUP BY window_start, proto, port;

-- Reading windows (see queries.sql): always merge, never read the states' rows as-is, since the
-- AggregatingMergeTree keeps several rows per key until background merges run:
--   SELECT window_start, proto, port,
--          sumMerge(events) AS events, uniqCombinedMerge(sources) AS sources,
--          uniqCombinedMerge(sensors) AS sensors, uniqCombinedMerge(targets) AS targets
--   FROM scanwatch.windows
--   WHERE window_start >= {from} AND window_start < {to}
--   GROUP BY window_start, proto, port;
