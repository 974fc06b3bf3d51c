//! The schema: data tables on every server (local and `Distributed`), control
//! tables on the first, and the version clock seeded from what is stored.

use super::*;

impl ClickHouseStore {
    pub(super) fn create_data_tables(&self, i: usize) -> Result<(), StoreError> {
        let db = &self.db;
        self.exec(i, &format!("CREATE DATABASE IF NOT EXISTS {db}"))?;
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {db}.schema_version (version UInt32) \
                 ENGINE = MergeTree ORDER BY version"
            ),
        )?;
        let r = self.rows(
            i,
            &format!("SELECT count() AS n, max(version) AS v FROM {db}.schema_version"),
        )?;
        let (n, found) = match r.first() {
            Some(r) => (r.int::<u64>("n")?, r.int::<u32>("v")?),
            None => (0, 0),
        };
        // Version 2 had no cells: they are created below, for what comes next.
        let upgrade = n > 0 && found == 2;
        if n > 0 && found != SCHEMA_VERSION && !upgrade {
            return Err(StoreError::ClickHouseSchemaVersion { found });
        }
        let events = self.local("events");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {events} (
                    time          DateTime('UTC'),
                    time_ms       Int64,
                    sensor        String,
                    batch_id      String,
                    batch_seq     UInt64,
                    idx           UInt32,
                    proto         UInt8,
                    src           FixedString(16),
                    dst           FixedString(16),
                    src_v4        UInt8,
                    dst_v4        UInt8,
                    src_port      UInt16,
                    has_src_port  UInt8,
                    dst_port      UInt16,
                    has_dst_port  UInt8,
                    flags         UInt8,
                    flags_known   UInt8,
                    icmp_type     UInt8,
                    has_icmp_type UInt8,
                    direction     {ENUM_DIRECTION},
                    action        {ENUM_ACTION},
                    count         UInt32,
                    scanned       UInt8
                ) ENGINE = MergeTree PARTITION BY toDate(time) ORDER BY (proto, dst_port, time)"
            ),
        )?;
        let batches = self.local("batches");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {batches} (
                    received    DateTime('UTC'),
                    received_ms Int64,
                    sensor      String,
                    batch_id    String,
                    events      UInt64,
                    seq         UInt64,
                    keep        DateTime('UTC')
                ) ENGINE = MergeTree PARTITION BY toDate(keep) ORDER BY (sensor, batch_id)"
            ),
        )?;
        let partials = self.local("partials");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {partials} (
                    window_start    DateTime('UTC'),
                    window_start_ms Int64,
                    max_time_ms     Int64,
                    seq             UInt64,
                    committed_ms    Int64,
                    state           String
                ) ENGINE = MergeTree PARTITION BY toDate(window_start)
                  ORDER BY (window_start_ms, seq)"
            ),
        )?;
        let windows = self.local("windows");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {windows} (
                    window_start    DateTime('UTC'),
                    window_start_ms Int64,
                    window_end_ms   Int64,
                    proto           UInt8,
                    port            UInt16,
                    events          UInt64,
                    sources         UInt64,
                    sensors         UInt64,
                    targets         UInt64,
                    top_sources     String,
                    version         UInt64
                ) ENGINE = ReplacingMergeTree(version) PARTITION BY toDate(window_start)
                  ORDER BY (proto, port, window_start_ms)"
            ),
        )?;
        if let Some(cluster) = &self.cluster {
            // Reads only: the store itself picks the shard of every insert, so the
            // Distributed tables have no sharding key.
            for t in ["events", "windows", "partials"] {
                self.exec(
                    i,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {db}.{t} AS {db}.{t}_local \
                         ENGINE = Distributed({cluster}, {db}, {t}_local)"
                    ),
                )?;
            }
        }
        self.create_cells(i, upgrade)?;
        if n == 0 || upgrade {
            self.exec(
                i,
                &format!("INSERT INTO {db}.schema_version (version) VALUES ({SCHEMA_VERSION})"),
            )?;
        }
        Ok(())
    }

    pub(super) fn create_control_tables(&self) -> Result<(), StoreError> {
        let db = &self.db;
        let rmt = |name: &str, cols: &str, key: &str| {
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name} ({cols}, version UInt64) \
                 ENGINE = ReplacingMergeTree(version) ORDER BY ({key})"
            )
        };
        let ddl = [
            rmt(
                "sensors",
                "name String, token_hash String, created_ms Int64, revoked UInt8",
                "name",
            ),
            rmt(
                "sensor_heartbeats",
                "sensor String, at_ms Int64, json String",
                "sensor",
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.sensor_stats (sensor String, \
                 batches AggregateFunction(sum, UInt64), events AggregateFunction(sum, UInt64), \
                 last_seen AggregateFunction(max, Int64)) \
                 ENGINE = AggregatingMergeTree ORDER BY sensor"
            ),
            rmt(
                "api_tokens",
                "name String, role String, token_hash String, created_ms Int64, revoked UInt8",
                "name",
            ),
            rmt(
                "users",
                "name String, role String, password_hash String, created_ms Int64",
                "name",
            ),
            rmt(
                "sessions",
                "id_hash String, user String, csrf String, created_ms Int64, expires_ms Int64, \
                 deleted UInt8",
                "id_hash",
            ),
            rmt(
                "sink_state",
                "sink String, key String, json String, updated_ms Int64",
                "sink, key",
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.dead_letters (seq UInt64, sink String, \
                 key String, attempts UInt32, error String, payload String, at_ms Int64) \
                 ENGINE = MergeTree ORDER BY seq"
            ),
            rmt(
                "context_items",
                "kind String, key String, origin String, json String, imported_ms Int64, \
                 deleted UInt8",
                "kind, key",
            ),
            rmt(
                "alerts",
                "kind String, proto UInt8, port UInt16, window_start_ms Int64, id Int64, \
                 severity UInt8, json String, deleted UInt8",
                "kind, proto, port, window_start_ms",
            ),
        ];
        for sql in &ddl {
            self.exec(0, sql)?;
        }
        Ok(())
    }

    /// Starts the version clock after the largest version stored.
    pub(super) fn seed_version(&mut self) -> Result<(), StoreError> {
        let mut max = 0u64;
        let ctl = [
            ("sensors", "version"),
            ("sensor_heartbeats", "version"),
            ("api_tokens", "version"),
            ("users", "version"),
            ("sessions", "version"),
            ("sink_state", "version"),
            ("dead_letters", "seq"),
            ("context_items", "version"),
            ("alerts", "version"),
        ];
        for (t, c) in ctl {
            let r = self.ctl_rows(&format!("SELECT max({c}) AS v FROM {}", self.ctl(t)))?;
            if let Some(r) = r.first() {
                max = max.max(r.int::<u64>("v")?);
            }
        }
        for (t, c) in [("windows", "version"), ("events", "batch_seq")] {
            let r = self.dist_rows(&format!("SELECT max({c}) AS v FROM {}", self.dist(t)))?;
            if let Some(r) = r.first() {
                max = max.max(r.int::<u64>("v")?);
            }
        }
        self.last_version = max;
        Ok(())
    }
}
