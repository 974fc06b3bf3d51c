//! `ClickHouseStore` against real ClickHouse servers (`tests/scale/clickhouse.sh`: two
//! shards of cluster `scanwatch` on loopback): the shared conformance test must give
//! exactly the transcript of `SqliteStore`, on one server and on the 2-shard cluster;
//! two stores (two collectors) share sensors and tokens; a newer schema is refused.
//! Needs clickhouse-server: the test fails (never skips) without it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken setup

mod conformance;

use scanwatch_store::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use scanwatch_event::Timestamp;
use scanwatch_store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{StoreError, TopBy};

/// Two ClickHouse servers in a tempdir, stopped on drop (also when a test fails).
struct Servers {
    dir: tempfile::TempDir,
    ports: HashMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scale/clickhouse.sh")
}

impl Servers {
    fn start() -> Servers {
        let found = Command::new("sh")
            .args(["-c", "command -v clickhouse-server"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "clickhouse-server is not installed: apt-get install -y clickhouse-server clickhouse-client (Debian bookworm: 18.16)"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        let mut servers = Servers {
            ports: HashMap::new(),
            dir,
        };
        assert!(
            out.status.success(),
            "clickhouse.sh start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(servers.dir.path().join("ports.env")).unwrap();
        servers.ports = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        servers
    }

    fn url(&self, n: u8) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.ports[&format!("CH_HTTP_PORT_{n}")]
        )
    }

    fn sql(&self, n: u8, q: &str) -> String {
        let mut r = ureq::post(format!("{}/", self.url(n))).send(q).unwrap();
        r.body_mut().read_to_string().unwrap()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn cluster_cfg(s: &Servers, db: &str) -> ClickHouseConfig {
    let mut c = ClickHouseConfig::new(&format!("{},{}", s.url(1), s.url(2)));
    c.database = db.into();
    c.cluster = Some("scanwatch".into());
    c
}

fn single_cfg(s: &Servers, db: &str) -> ClickHouseConfig {
    // The first URL is unreachable: the next one is used.
    let mut c = ClickHouseConfig::new(&format!("http://127.0.0.1:9, {}", s.url(1)));
    c.database = db.into();
    c.timeout = "10s".into();
    c
}

fn assert_same(what: &str, want: &[String], got: &[String]) {
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        assert_eq!(w, g, "{what}: line {i} differs from SQLite");
    }
    assert_eq!(want.len(), got.len(), "{what}: transcript length");
}

#[test]
fn clickhouse_behaves_like_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(dir.path()).unwrap();
    let want = conformance::conformance(&mut sqlite);
    if std::env::var_os("SCANWATCH_SHOW_TRANSCRIPT").is_some() {
        eprintln!("{}", want.join("\n"));
    }

    let servers = Servers::start();

    let mut single = ClickHouseStore::open(&single_cfg(&servers, "conf_single")).unwrap();
    assert_eq!(single.servers(), [servers.url(1)]);
    let got = conformance::conformance(&mut single);
    assert_same("single server", &want, &got);

    let mut cluster = ClickHouseStore::open(&cluster_cfg(&servers, "conf_cluster")).unwrap();
    let got = conformance::conformance(&mut cluster);
    assert_same("2-shard cluster", &want, &got);
    // The batches really are spread over both shards, and control tables live on the
    // first server only.
    for n in [1, 2] {
        let rows: u64 = servers
            .sql(n, "SELECT count() FROM conf_cluster.batches_local")
            .trim()
            .parse()
            .unwrap();
        assert!(rows > 0, "shard {n} holds no batch");
    }
    assert!(servers
        .sql(2, "EXISTS TABLE conf_cluster.sensors")
        .starts_with('0'));

    // Reopening finds everything and the schema version is recorded on every server.
    drop(cluster);
    let cluster = ClickHouseStore::open(&cluster_cfg(&servers, "conf_cluster")).unwrap();
    assert_eq!(cluster.sensors().unwrap().len(), 2);
    for n in [1, 2] {
        assert_eq!(
            servers
                .sql(n, "SELECT max(version) FROM conf_cluster.schema_version")
                .trim(),
            scanwatch_store::clickhouse::SCHEMA_VERSION.to_string()
        );
    }

    two_collectors_share_sensors_and_tokens(&servers);
    a_torn_commit_counts_nothing(&servers);
    cells_answer_as_the_raw_events(&servers);
    a_version_2_database_gets_its_cells(&servers);
    newer_schema_is_refused(&servers);
    wrong_shard_order_is_refused(&servers);
}

fn two_collectors_share_sensors_and_tokens(servers: &Servers) {
    let cfg = cluster_cfg(servers, "shared");
    let mut a = ClickHouseStore::open(&cfg).unwrap();
    let mut b = ClickHouseStore::open(&cfg).unwrap();
    let token = a.add_sensor("fw-1", Timestamp(1)).unwrap();
    let api = a
        .add_api_token("ops", scanwatch_store::Role::Analyst, Timestamp(1))
        .unwrap();
    assert_eq!(
        b.authenticate_sensor(&token).unwrap().as_deref(),
        Some("fw-1")
    );
    assert!(b.authenticate_api(&api).unwrap().is_some());
    assert!(matches!(
        b.add_sensor("fw-1", Timestamp(2)),
        Err(StoreError::SensorExists(_))
    ));
    // A batch accepted by one collector is a duplicate for the other.
    let e = conformance::ev(5_000, "192.0.2.1", "198.18.0.1", 445);
    assert!(matches!(
        a.commit_batch("fw-1", "b-1", std::slice::from_ref(&e), Timestamp(6))
            .unwrap(),
        scanwatch_store::BatchOutcome::Accepted { events: 1 }
    ));
    assert_eq!(
        b.commit_batch("fw-1", "b-1", &[e], Timestamp(7)).unwrap(),
        scanwatch_store::BatchOutcome::Duplicate
    );
    // Revoked through one, refused by the other at once.
    b.revoke_sensor("fw-1").unwrap();
    assert_eq!(a.authenticate_sensor(&token).unwrap(), None);
    let rec = &a.sensors().unwrap()[0];
    assert!(rec.revoked);
    assert_eq!((rec.batches, rec.events), (1, 2));
    // The same warning from both collectors has one id.
    let alert = scanwatch_store::AlertRow {
        id: 0,
        kind: "surge".into(),
        proto: 6,
        port: 445,
        window_start: Timestamp(60_000),
        severity_rank: 3,
        json: "{}".into(),
    };
    assert_eq!(a.put_alert(&alert).unwrap(), b.put_alert(&alert).unwrap());
}

/// A commit that failed after its events and partials reached the shard, but before
/// its batch ids did, counts nothing: no event, no partial, no batch; sent again, it
/// counts exactly once.
fn a_torn_commit_counts_nothing(servers: &Servers) {
    use scanwatch_store::{AggregateCommit, BatchPart, PartialRow};
    let cfg = cluster_cfg(servers, "torn");
    let mut s = ClickHouseStore::open(&cfg).unwrap();
    s.add_sensor("fw-1", Timestamp(1)).unwrap();
    let events = [
        conformance::ev(5_000, "192.0.2.1", "198.18.0.1", 1025),
        conformance::ev(6_000, "192.0.2.2", "198.18.0.1", 1025),
    ];
    let commit = |id: u64| AggregateCommit {
        commit: id,
        shard_key: 1,
        received: Timestamp(7_000),
        batches: vec![BatchPart {
            sensor: "fw-1",
            batch_id: "fw-1:b:3",
            events: &events,
        }],
        partials: vec![PartialRow {
            commit: id,
            committed: Timestamp(7_000),
            window_start: Timestamp(0),
            max_time: Timestamp(6_000),
            state: vec![1, 2, 3],
        }],
    };
    // What a commit that failed after its events and partials but before its batch
    // ids leaves behind: commit, then take its batch rows away (shard key 1 is the
    // second server).
    s.commit_aggregate(&commit(11)).unwrap();
    servers.sql(2, "ALTER TABLE torn.batches_local DELETE WHERE seq = 11");
    let mut waited = 0;
    while servers
        .sql(2, "SELECT count() FROM torn.batches_local")
        .trim()
        != "0"
    {
        assert!(waited < 100, "the delete mutation did not finish in 10 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    // The rows of the failed commit are there, but not counted.
    assert_eq!(
        servers
            .sql(2, "SELECT count() FROM torn.events_local")
            .trim(),
        "2"
    );
    assert_eq!(
        servers
            .sql(2, "SELECT count() FROM torn.partials_local")
            .trim(),
        "1"
    );
    let all = (Timestamp(i64::MIN), Timestamp(i64::MAX));
    assert!(s.events_between(all.0, all.1).unwrap().is_empty());
    assert!(s.partials_between(all.0, all.1, all.0).unwrap().is_empty());
    assert!(s
        .top_ports(all.0, all.1, scanwatch_store::TopBy::Events, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        s.stored_batches(1, &[("fw-1", "fw-1:b:3")]).unwrap(),
        [false]
    );
    // The resend (as the aggregator does after a redelivery) counts once.
    s.commit_aggregate(&commit(12)).unwrap();
    assert_eq!(s.events_between(all.0, all.1).unwrap().len(), 2);
    let parts = s.partials_between(all.0, all.1, all.0).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(
        (parts[0].commit, parts[0].state.as_slice()),
        (12, &[1u8, 2, 3][..])
    );
    let top = s
        .top_ports(all.0, all.1, scanwatch_store::TopBy::Events, 10)
        .unwrap();
    assert_eq!((top[0].port, top[0].events, top[0].sources), (1025, 4, 2)); // two events of count 2
    assert_eq!(
        s.stored_batches(1, &[("fw-1", "fw-1:b:3")]).unwrap(),
        [true]
    );
    assert!(matches!(
        s.commit_aggregate(&commit(13)),
        Err(StoreError::BatchStored { .. })
    ));
}

fn newer_schema_is_refused(servers: &Servers) {
    let cfg = single_cfg(servers, "future");
    drop(ClickHouseStore::open(&cfg).unwrap());
    servers.sql(1, "INSERT INTO future.schema_version VALUES (99)");
    let err = ClickHouseStore::open(&cfg).unwrap_err();
    assert!(
        matches!(err, StoreError::ClickHouseSchemaVersion { found: 99 }),
        "{err}"
    );
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

fn wrong_shard_order_is_refused(servers: &Servers) {
    let mut cfg = cluster_cfg(servers, "swapped");
    cfg.url = format!("{},{}", servers.url(2), servers.url(1));
    let err = ClickHouseStore::open(&cfg).unwrap_err();
    assert!(err.to_string().contains("shard order"), "{err}");
    let mut cfg = cluster_cfg(servers, "short");
    cfg.url = servers.url(1);
    let err = ClickHouseStore::open(&cfg).unwrap_err();
    assert!(err.to_string().contains("2 shard(s)"), "{err}");
    let mut cfg = cluster_cfg(servers, "down");
    cfg.url = format!("{},http://127.0.0.1:9", servers.url(1));
    cfg.timeout = "5s".into();
    assert!(
        ClickHouseStore::open(&cfg).is_err(),
        "every shard must answer"
    );
}

/// Events of many commits over three days, some of them torn, on one server and on
/// two shards: top ports and a source's activity read from the cells equal the same
/// read from the raw events, for ranges on and off the hour, every ranking and
/// several limits (one past the ports counted at once), also after a prune; so does
/// what the store answers (raw up to two days, cells beyond).
fn cells_answer_as_the_raw_events(servers: &Servers) {
    for (cfg, shards) in [
        (cluster_cfg(servers, "cells"), vec![1, 2]),
        (single_cfg(servers, "cells_single"), vec![1]),
    ] {
        let mut s = ClickHouseStore::open(&cfg).unwrap();
        load_commits(servers, &mut s, &cfg.database, 0);
        let ports = s
            .top_ports_from_events(
                Timestamp(i64::MIN),
                Timestamp(i64::MAX),
                TopBy::Events,
                100_000,
            )
            .unwrap()
            .len();
        assert!(
            ports > 4_096,
            "{ports} ports: too few to count past the candidates"
        );
        compare_cells(&s);
        // Retention drops whole days, of the cells as of the events.
        s.prune(
            Timestamp(conformance::T0 + conformance::DAY + 1),
            Timestamp(0),
        )
        .unwrap();
        compare_cells(&s);
        // The cells really are fewer rows than the events they count.
        let rows = |table: &str| -> u64 {
            shards
                .iter()
                .map(|&n| {
                    let t = if cfg.cluster.is_some() {
                        format!("{table}_local")
                    } else {
                        table.to_string()
                    };
                    servers
                        .sql(n, &format!("SELECT count() FROM {}.{t}", cfg.database))
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                })
                .sum()
        };
        assert!(
            rows("port_hours") < rows("events"),
            "{} cells",
            rows("port_hours")
        );
    }
}

fn compare_cells(s: &ClickHouseStore) {
    let d = conformance::DAY;
    let t = |ms: i64| Timestamp(conformance::T0 + ms);
    let ranges = [
        (t(0), t(3 * d)),
        (t(1_234_567), t(2 * d + 777_777)),
        (t(3_600_000), t(d)),
        (t(5_000), t(3_000_000)),
        (t(d - 1), t(d + 1)),
        (Timestamp(i64::MIN), Timestamp(i64::MAX)),
        (Timestamp(-5_000_000), Timestamp(7_200_000)),
    ];
    let mut compared = 0;
    for &(a, b) in &ranges {
        for by in [TopBy::Events, TopBy::Sources, TopBy::Sensors] {
            // 5,000: more than the ports counted at once (4,096), on one range.
            let over = if a.0 == i64::MIN { 5_000 } else { 1_000 };
            // And no limit at all (every port), on one range.
            let all = (a.0 == i64::MIN).then_some(usize::MAX);
            for limit in [1, 10, over].into_iter().chain(all) {
                let cells = s.top_ports_from_cells(a, b, by, limit).unwrap();
                let raw = s.top_ports_from_events(a, b, by, limit).unwrap();
                assert_eq!(cells, raw, "top {by:?} {limit} over {a:?}..{b:?}");
                if limit == 10 {
                    assert_eq!(s.top_ports(a, b, by, limit).unwrap(), raw);
                }
                compared += cells.len();
            }
        }
        for src in ["192.0.2.1", "192.0.2.7", "2001:db8::3", "10.0.0.1"] {
            let ip = src.parse().unwrap();
            let cells = s.source_activity_from_cells(ip, a, b).unwrap();
            let raw = s.source_activity_from_events(ip, a, b).unwrap();
            assert_eq!(cells, raw, "source {src} over {a:?}..{b:?}");
            assert_eq!(s.source_activity(ip, a, b).unwrap(), raw);
            compared += cells.len();
        }
    }
    assert!(compared > 500, "too little compared: {compared}");
}

/// Forty commits of 450 events each over three days (busy ports seen by many
/// sources, a long tail over 20,000 ports, IPv4 and IPv6, a few events timed before
/// 1970 or after 2100, which have no cells), every seventh one torn after its events
/// (its batch rows deleted, as a crash before the commit point leaves it). Commit ids
/// start after `first`.
fn load_commits(servers: &Servers, s: &mut ClickHouseStore, db: &str, first: u64) {
    use scanwatch_store::{AggregateCommit, BatchPart};
    if first == 0 {
        s.add_sensor("fw-1", Timestamp(1)).unwrap();
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ first;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let clustered = servers
        .sql(1, &format!("EXISTS TABLE {db}.batches_local"))
        .starts_with('1');
    for c in first..first + 40 {
        let events: Vec<_> = (0..450)
            .map(|_| {
                let time = match next(100) {
                    0 => -7_200_000 + next(3_600_000) as i64,
                    1 => 4_102_444_800_000 + next(3_600_000) as i64,
                    _ => conformance::T0 + (next(3 * 24) * 3_600_000 + next(3_600_000)) as i64,
                };
                let src = match next(4) {
                    0 => format!("2001:db8::{:x}", next(40)),
                    _ => format!("192.0.2.{}", next(60)),
                };
                let port = match next(3) {
                    0 => 1024 + next(20_000) as u16,
                    _ => [23, 445, 1025, 3389][next(4) as usize],
                };
                let mut e = conformance::ev(time, &src, &format!("198.18.0.{}", next(9)), port);
                e.count = 1 + next(3) as u32;
                e
            })
            .collect();
        let sensors = ["fw-1", "fw-2", "fw-3"];
        let ids: Vec<String> = (0..3).map(|k| format!("c{c}-{k}")).collect();
        let commit = AggregateCommit {
            commit: 1_000 + c,
            shard_key: c,
            received: Timestamp(conformance::T0),
            batches: (0..3)
                .map(|k| BatchPart {
                    sensor: sensors[k],
                    batch_id: &ids[k],
                    events: &events[k * 150..(k + 1) * 150],
                })
                .collect(),
            partials: Vec::new(),
        };
        s.commit_aggregate(&commit).unwrap();
        if c % 7 == 3 {
            let (shard, table) = if clustered {
                ((c % 2) as u8 + 1, "batches_local")
            } else {
                (1, "batches")
            };
            servers.sql(
                shard,
                &format!("ALTER TABLE {db}.{table} DELETE WHERE seq = {}", 1_000 + c),
            );
        }
    }
    // Wait for the deletes (mutations) to finish.
    for n in [1u8, 2] {
        let mut waited = 0;
        while servers
            .sql(n, "SELECT count() FROM system.mutations WHERE is_done = 0")
            .trim()
            != "0"
        {
            assert!(waited < 200, "mutations did not finish in 20 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
            waited += 1;
        }
    }
}

/// A database of schema version 2 (no cells) gets cells for what is committed after
/// a build of version 3 opens it, and the commits from before are read raw: the
/// answers equal the raw events' before and after new commits.
fn a_version_2_database_gets_its_cells(servers: &Servers) {
    let cfg = cluster_cfg(servers, "upgrade");
    let mut s = ClickHouseStore::open(&cfg).unwrap();
    // What version 2 had: no cell tables, no views, version 2 recorded.
    let v2 = |n: u8| {
        for t in ["port_hours", "source_hours"] {
            for suffix in ["_feed_local", "_local", ""] {
                servers.sql(n, &format!("DROP TABLE IF EXISTS upgrade.{t}{suffix}"));
            }
        }
        servers.sql(n, "DROP TABLE IF EXISTS upgrade.cells_after_local");
        servers.sql(
            n,
            "ALTER TABLE upgrade.schema_version DELETE WHERE version = 3",
        );
        let mut waited = 0;
        while servers
            .sql(n, "SELECT count() FROM upgrade.schema_version")
            .trim()
            != "0"
        {
            assert!(waited < 200, "the delete did not finish in 20 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
            waited += 1;
        }
        servers.sql(n, "INSERT INTO upgrade.schema_version VALUES (2)");
    };
    v2(1);
    v2(2);
    // Events stored by version 2: no view makes cells of them.
    load_commits(servers, &mut s, "upgrade", 0);
    drop(s);
    let mut s = ClickHouseStore::open(&cfg).unwrap();
    for n in [1, 2] {
        assert_eq!(
            servers
                .sql(n, "SELECT max(version) FROM upgrade.schema_version")
                .trim(),
            "3"
        );
        assert_eq!(
            servers
                .sql(n, "SELECT count() FROM upgrade.port_hours_local")
                .trim(),
            "0",
            "nothing is rebuilt"
        );
    }
    compare_cells(&s);
    load_commits(servers, &mut s, "upgrade", 100);
    compare_cells(&s);
    assert_ne!(
        servers
            .sql(1, "SELECT count() FROM upgrade.port_hours_local")
            .trim(),
        "0"
    );
}
