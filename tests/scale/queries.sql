-- Queries the Rust side will use against schema.sql (run on any server; they go through the
-- Distributed tables, so every shard answers its part). Accepted by 18.16 and current releases.
-- Parameters in {braces} are substituted by the caller (Unix seconds, UTC).

-- Closed windows of W seconds (W a multiple of 60; toStartOfInterval does not exist in 18.16, so
-- the bucket is integer arithmetic; for W = 3600 toStartOfHour(window_start) is equivalent):
SELECT
    toDateTime(intDiv(toUInt32(window_start), {W}) * {W}) AS w,
    proto,
    port,
    sumMerge(events)            AS events,    -- exact
    uniqCombinedMerge(sources)  AS sources,   -- approximate distinct src
    uniqCombinedMerge(sensors)  AS sensors,   -- approximate distinct sensors
    uniqCombinedMerge(targets)  AS targets    -- approximate distinct dst
FROM scanwatch.windows
WHERE window_start >= toDateTime({from}) AND window_start < toDateTime({to})
GROUP BY w, proto, port
ORDER BY w, proto, port;

-- Top sources of one (window, proto, port) cell: read from the raw events (ORDER BY (proto,
-- dst_port, time) makes this a range scan on the one shard that holds the port).
SELECT IPv6NumToString(src) AS ip, sum(count) AS events
FROM scanwatch.events
WHERE proto = {proto} AND dst_port = {port} AND unsolicited = 1
  AND time >= toDateTime({from}) AND time < toDateTime({to})
GROUP BY src
ORDER BY events DESC, ip
LIMIT 10;
