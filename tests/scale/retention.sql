-- Retention on ClickHouse 18.16, which has no TTL: drop whole days, on EVERY shard (DROP
-- PARTITION on a Distributed table is not supported). The partition value is the toDate() key.
-- A day that has no partition on a shard is a no-op there. Run by the Rust side (or cron) daily:
ALTER TABLE scanwatch.events_local  DROP PARTITION '{YYYY-MM-DD}';
ALTER TABLE scanwatch.windows_local DROP PARTITION '{YYYY-MM-DD}';
-- List the days a shard holds:
SELECT DISTINCT partition FROM system.parts
WHERE database = 'scanwatch' AND table IN ('events_local', 'windows_local') AND active
ORDER BY partition;
-- On ClickHouse >= 19.6 the same can be declared once per shard instead:
--   ALTER TABLE scanwatch.events_local  MODIFY TTL time + INTERVAL 30 DAY;
--   ALTER TABLE scanwatch.windows_local MODIFY TTL window_start + INTERVAL 90 DAY;
