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
use scanwatch_store::StoreError;

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
