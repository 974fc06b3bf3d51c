//! The bus against a real three-node NATS JetStream cluster on loopback
//! (`tests/scale/nats-cluster.sh`): replicated stream, every batch published twice
//! (the duplicate window drops the resends), two aggregator instances into one
//! SQLite store, one instance killed mid-run (its runtime dropped, nothing acked
//! after that) and restarted, and a NATS node killed with -9 and restarted while
//! publishing. The store must end up holding every event exactly once. Also the
//! detector lease: taken once, renewed, taken over after its TTL.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scanwatch_aggregate::{decode_window, sensor_key, AggregateConfig, Aggregator};
use scanwatch_bus::{
    aggregate_handler, run_aggregator, AggregatorCounters, BatchPublisher, BusConfig, NatsBus,
    OutgoingBatch,
};
use scanwatch_event::{Event, Timestamp, WireEvent};
use scanwatch_store::sqlite::SqliteStore;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scale/nats-cluster.sh")
}

/// The cluster; stopped when the test ends, however it ends.
struct Cluster {
    dir: tempfile::TempDir,
    urls: String,
}

impl Cluster {
    fn start() -> Cluster {
        let found = Command::new("nats-server").arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "nats-server is not installed: apt-get install -y nats-server (Debian bookworm: 2.9.10)"
        );
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .status()
            .unwrap();
        let mut c = Cluster {
            dir,
            urls: String::new(),
        };
        assert!(st.success(), "nats-cluster.sh start failed");
        let env = std::fs::read_to_string(c.dir.path().join("ports.env")).unwrap();
        c.urls = env
            .lines()
            .find_map(|l| l.strip_prefix("NATS_URLS="))
            .unwrap()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_string();
        c
    }

    fn restart_node(&self, n: u32) -> std::process::Child {
        Command::new("bash")
            .arg(script())
            .arg("restart-node")
            .arg(n.to_string())
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .status();
    }
}

fn event(sensor: u32, batch: u32, i: u32) -> Event {
    let line = format!(
        r#"{{"time":"2026-11-26T{:02}:{:02}:{:02}.{:03}Z","proto":"{}","src":"198.51.{}.{}","dst":"203.0.113.{}","dst_port":{},"flags":"S"}}"#,
        10 + batch / 60,
        batch % 60,
        i % 60,
        i,
        if i % 5 == 0 { "udp" } else { "tcp" },
        sensor,
        i % 250,
        sensor,
        1000 + (i * 7 + batch) % 97
    );
    WireEvent::parse_line(&line).unwrap().to_event().unwrap()
}

fn batches() -> Vec<OutgoingBatch> {
    let mut out = Vec::new();
    for b in 0..30u32 {
        for s in 1..=2u32 {
            out.push(OutgoingBatch {
                sensor: format!("fw-{s}"),
                batch: format!("b{b:04}"),
                events: (0..150).map(|i| event(s, b, i)).collect(),
                ids: vec![],
                received: Timestamp(i64::from(b)),
            });
        }
    }
    out
}

/// Window length of the aggregators (10 minutes: the input spans several windows).
const WINDOW_MS: i64 = 600_000;

fn key(sensor: &str, e: &Event) -> String {
    format!("{sensor} {}", WireEvent::from_event(e, None).to_line())
}

/// One aggregator instance on its own runtime: dropping the runtime is the kill.
fn aggregator(
    cfg: &BusConfig,
    data: &Path,
    instance: u32,
    instances: u32,
    counters: Arc<AggregatorCounters>,
) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store: Box<dyn AggregatorStore> = Box::new(SqliteStore::open(data).unwrap());
    let handler = aggregate_handler(
        Arc::new(Mutex::new(store)),
        AggregateConfig::new(WINDOW_MS),
        None,
        Arc::new(|| Timestamp(0)),
    );
    let cfg = cfg.clone();
    rt.spawn(async move {
        let bus = NatsBus::connect(&cfg).await.unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        run_aggregator(
            bus,
            handler,
            instance,
            instances,
            cfg.partitions,
            rx,
            counters,
        )
        .await;
        drop(_tx);
    });
    rt
}

#[test]
fn every_event_is_stored_exactly_once_through_kills_and_a_node_restart() {
    let cluster = Cluster::start();
    let data = tempfile::tempdir().unwrap();
    {
        let mut s = SqliteStore::open(data.path()).unwrap();
        s.add_sensor("fw-1", Timestamp(0)).unwrap();
        s.add_sensor("fw-2", Timestamp(0)).unwrap();
    }
    let cfg = BusConfig {
        kind: scanwatch_bus::BusKind::Nats,
        url: cluster.urls.clone(),
        replicas: 3,
        partitions: 8,
        fetch_batch: 16,
        ack_wait: "5s".parse().unwrap(),
        publish_timeout: "60s".parse().unwrap(),
        ..BusConfig::default()
    };
    cfg.validate().unwrap();
    let input = batches();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let publisher = rt.block_on(NatsBus::connect(&cfg)).unwrap();
    // The deployment's sample seed: four roles asking at once get one.
    let seeds: Vec<u64> = rt.block_on(async {
        let asks: Vec<_> = (0..4)
            .map(|_| {
                let cfg = cfg.clone();
                tokio::spawn(async move {
                    let bus = NatsBus::connect(&cfg).await.unwrap();
                    bus.sample_seed().await.unwrap()
                })
            })
            .collect();
        let mut v = Vec::new();
        for a in asks {
            v.push(a.await.unwrap());
        }
        v
    });
    assert!(seeds.iter().all(|s| *s == seeds[0]), "{seeds:?}");

    let counters = Arc::new(AggregatorCounters::default());
    let a0 = aggregator(&cfg, data.path(), 0, 2, counters.clone());
    let mut a1 = Some(aggregator(&cfg, data.path(), 1, 2, counters.clone()));
    let mut restart = None;
    for (i, b) in input.iter().enumerate() {
        let first = rt.block_on(publisher.publish(b)).unwrap();
        // A part can already count as a duplicate on the first publish: when its
        // PubAck was lost (a leader election just after the start) the retry finds it
        // stored. Every part is accounted for either way.
        assert!(first.stored + first.duplicates > 0, "batch {i}: {first:?}");
        let again = rt.block_on(publisher.publish(b)).unwrap();
        assert_eq!(
            again.stored, 0,
            "the resend of batch {i} is dropped: {again:?}"
        );
        assert_eq!(again.duplicates, first.stored + first.duplicates);
        if i == 15 {
            // kill -9 the second aggregator instance: nothing it had in flight is acked.
            if let Some(rt) = a1.take() {
                rt.shutdown_background();
            }
            // And a NATS node, while publishing goes on.
            restart = Some(cluster.restart_node(2));
        }
        if i == 35 {
            a1 = Some(aggregator(&cfg, data.path(), 1, 2, counters.clone()));
        }
    }
    let st = restart.unwrap().wait().unwrap();
    assert!(st.success(), "restart-node 2 failed");

    // Bounded wait until every partition is consumed and acked.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if rt.block_on(publisher.caught_up()).unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "aggregators did not catch up");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The seed outlived the node restart (a replicated stream of its own).
    assert_eq!(rt.block_on(publisher.sample_seed()).unwrap(), seeds[0]);
    let store = SqliteStore::open(data.path()).unwrap();
    let mut got: Vec<String> = store
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .iter()
        .map(|(s, e)| key(s, e))
        .collect();
    let mut want: Vec<String> = input
        .iter()
        .flat_map(|b| b.events.iter().map(|e| key(&b.sensor, e)))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "every event once, no more, no less");
    assert!(got == want, "stored events equal the input");
    // The partial aggregates, merged, are the windows a single aggregator makes of
    // the input: no partial lost or counted twice through the kills and restarts.
    let cfg_agg = AggregateConfig::new(WINDOW_MS);
    let mut merged = Aggregator::new(cfg_agg, 10);
    let parts = store
        .partials_between(
            Timestamp(i64::MIN),
            Timestamp(i64::MAX),
            Timestamp(i64::MIN),
        )
        .unwrap();
    assert!(parts.len() > 1, "one partial per window per commit");
    for p in &parts {
        let w = decode_window(&p.state).unwrap();
        merged.merge_window(p.window_start.0, &w, p.max_time.0);
    }
    let mut one = Aggregator::new(cfg_agg, 10);
    for b in &input {
        for e in &b.events {
            one.add(sensor_key(&b.sensor), e);
        }
    }
    let (got, want) = (merged.finish(), one.finish());
    assert!(got.len() > 1, "several windows");
    assert!(got.iter().all(|w| w.cells.iter().all(|c| c.exact)));
    assert!(got == want, "merged partials equal the one-pass windows");
    let c = counters.snapshot();
    assert_eq!(c.refused, 0);
    drop(a0);
    drop(a1);

    // The detector lease on the same cluster.
    let lease_cfg = BusConfig {
        lease_ttl: "2s".parse().unwrap(),
        lease_bucket: "lease_test".into(),
        ..cfg.clone()
    };
    rt.block_on(async {
        let bus = NatsBus::connect(&lease_cfg).await.unwrap();
        let mut a = bus.try_lease("detector", "a").await.unwrap().unwrap();
        assert!(bus.try_lease("detector", "b").await.unwrap().is_none());
        assert!(a.renew().await.unwrap());
        assert!(bus.try_lease("detector", "b").await.unwrap().is_none());
        // a stops renewing: b takes over after the TTL (bounded wait).
        let deadline = Instant::now() + Duration::from_secs(20);
        let b = loop {
            if let Some(b) = bus.try_lease("detector", "b").await.unwrap() {
                break b;
            }
            assert!(Instant::now() < deadline, "the lease never expired");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(!a.renew().await.unwrap(), "the old holder lost it");
        b.release().await.unwrap();
        assert!(bus.try_lease("detector", "c").await.unwrap().is_some());
    });
}
