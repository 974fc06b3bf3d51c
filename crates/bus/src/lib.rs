//! The scale-out event bus between collectors and aggregators (NATS JetStream).
//!
//! A collector splits each accepted batch by partition (`hash(proto, dst_port) %
//! partitions`, [`message::partition_of`]) and publishes one message per partition
//! to `<prefix>.<partition>` with `Nats-Msg-Id = <sensor>:<batch>:<partition>`; it
//! answers the sensor only after every PubAck (the stream is replicated, so the
//! batch is durable), and JetStream's duplicate window drops resends. Aggregators
//! read the partitions they own through durable pull consumers and, per fetch,
//! aggregate the new messages into partial window aggregates (mergeable counters,
//! `scanwatch_aggregate::codec`) and commit them with the raw events and the
//! message ids in one store commit ([`aggregate_handler`]), acknowledging the
//! messages only after the store accepted it; a redelivered message id is a
//! `Duplicate`. The detector merges the partials; it never reads raw events.
//!
//! Ownership: with `instances = n`, instance `i` owns the partitions `p` with
//! `p % n == i` ([`owned_partitions`]). Consumers are durable and named by
//! partition, not by instance, so a restarted instance (or another instance given
//! the same `i`) resumes where the partition's consumer stopped.

pub mod config;
pub mod detector;
pub mod message;
pub mod nats;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use scanwatch_aggregate::{encode_partial, sensor_key, AggregateConfig, SensorKey, Window};
use scanwatch_context::benign::BenignSet;
use scanwatch_event::Timestamp;
use scanwatch_store::{
    random_id, AggregateCommit, AggregatorStore, BatchOutcome, BatchPart, PartialRow, StoreError,
};
use thiserror::Error;
use tokio::sync::watch;

pub use config::{BusConfig, BusKind};
pub use detector::{Detector, DetectorCounters};
pub use message::{BusBatch, OutgoingBatch};
pub use nats::{Lease, NatsBus};

/// Errors of the bus. Messages are lowercase with no trailing period.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("invalid bus config: {0}")]
    Config(String),
    #[error("nats: {0}")]
    Nats(String),
    #[error("nats: no stream takes subject {0} yet")]
    NoStream(String),
    #[error("message {id} cannot be read: {reason}")]
    Message { id: String, reason: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("publish of {0} not acknowledged in time")]
    Timeout(String),
    #[error("store lock poisoned")]
    Poisoned,
    #[error("{0}")]
    Handler(String),
}

pub use scanwatch_centre::{BatchPublisher, PublishReport};

/// What one partition's consumer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumeStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub events: u64,
    /// Messages the handler failed on (negatively acknowledged: redelivered).
    pub failed: u64,
    /// Messages that cannot be read (terminated).
    pub refused: u64,
}

/// Called for the messages of one fetch of one partition (off the async threads),
/// with an outcome per message; the messages are acked only when this returns `Ok`.
pub type Handler =
    Arc<dyn Fn(&[Arc<BusBatch>]) -> Result<Vec<BatchOutcome>, BusError> + Send + Sync>;

/// An event bus: consume one partition (publishing is [`BatchPublisher`], the one
/// publish trait, which the collector calls).
pub trait Bus: BatchPublisher {
    /// Consumes one partition until `stop` turns true, calling `handler` for each
    /// message in order and acknowledging it only after `handler` succeeded.
    fn consume(
        &self,
        partition: u32,
        handler: Handler,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = Result<ConsumeStats, BusError>> + Send;
}

/// The partitions instance `instance` of `instances` owns: `p % instances == instance`.
pub fn owned_partitions(partitions: u32, instance: u32, instances: u32) -> Vec<u32> {
    let n = instances.max(1);
    (0..partitions).filter(|p| p % n == instance).collect()
}

/// The aggregator's handler. For the messages of one fetch of one partition: the
/// ones whose ids are stored already are `Duplicate`s; the others are aggregated
/// into one partial window aggregate per window (known benign scanners left out, as
/// the embedded pipeline does) and committed with their raw events and ids in one
/// store commit; then the IDS facts they carry are stored (idempotent, so also for
/// duplicates: a crash between the two loses none).
/// The wall clock, given by the binary: it only stamps commits so the detector can
/// read the new ones (`PartialRow::committed`), never an event or window time.
pub use scanwatch_event::Clock;

pub fn aggregate_handler(
    store: Arc<Mutex<Box<dyn AggregatorStore>>>,
    cfg: AggregateConfig,
    benign: Option<BenignSet>,
    clock: Clock,
) -> Handler {
    Arc::new(move |batches: &[Arc<BusBatch>]| {
        // A handler that panicked (a failure, so never acked) leaves the store
        // usable: the SQLite transaction rolled back when dropped, and ClickHouse
        // holds no state between requests. Go on rather than fail every later fetch.
        let mut s = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(first) = batches.first() else {
            return Ok(Vec::new());
        };
        let shard_key = u64::from(first.partition);
        let ids: Vec<(&str, &str)> = batches
            .iter()
            .map(|b| (b.sensor.as_str(), b.msg_id.as_str()))
            .collect();
        let stored = s.stored_batches(shard_key, &ids)?;
        let mut seen = std::collections::HashSet::new();
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut fresh: Vec<&BusBatch> = Vec::new();
        for (b, was) in batches.iter().zip(stored) {
            // A message fetched twice in one fetch (a redelivery racing its ack) is
            // new once.
            if was || !seen.insert((b.sensor.as_str(), b.msg_id.as_str())) {
                outcomes.push(BatchOutcome::Duplicate);
            } else {
                outcomes.push(BatchOutcome::Accepted {
                    events: b.events.len(),
                });
                fresh.push(b);
            }
        }
        if !fresh.is_empty() {
            let received = fresh
                .iter()
                .map(|b| b.received)
                .max()
                .unwrap_or(Timestamp(0));
            let parts = fresh
                .iter()
                .map(|b| BatchPart {
                    sensor: &b.sensor,
                    batch_id: &b.msg_id,
                    events: &b.events,
                })
                .collect();
            let commit =
                partial_commit(parts, received, clock(), shard_key, &cfg, benign.as_ref())?;
            s.commit_aggregate(&commit)?;
        }
        for b in batches.iter().filter(|b| !b.ids.is_empty()) {
            s.put_context_items(scanwatch_store::ContextKind::Ids, &b.ids, b.received)?;
        }
        Ok(outcomes)
    })
}

/// The store commit of new batch parts: their events and ids, and one partial
/// window aggregate per window their events fall in (known benign scanners left
/// out of the aggregates, not of the raw events).
pub fn partial_commit<'a>(
    parts: Vec<BatchPart<'a>>,
    received: Timestamp,
    committed: Timestamp,
    shard_key: u64,
    cfg: &AggregateConfig,
    benign: Option<&BenignSet>,
) -> Result<AggregateCommit<'a>, BusError> {
    // Per window: the part, its latest event, and each sensor's latest event in it
    // (what the detector's per-sensor progress is made of, docs/time.md; benign
    // scanners' events count there too: they were delivered).
    let mut windows: BTreeMap<i64, (Window, i64, BTreeMap<SensorKey, i64>)> = BTreeMap::new();
    for b in &parts {
        let key = sensor_key(b.sensor);
        for e in b.events {
            let ws = e.time.floor(cfg.window_ms).0;
            let (w, max_time, sensors) = windows
                .entry(ws)
                .or_insert_with(|| (Window::default(), i64::MIN, BTreeMap::new()));
            let t = sensors.entry(key).or_insert(e.time.0);
            *t = (*t).max(e.time.0);
            if e.scanned_port().is_some() && benign.is_some_and(|set| set.label(e.src).is_some()) {
                continue;
            }
            w.add(key, e, cfg.exact_limit);
            *max_time = (*max_time).max(e.time.0);
        }
    }
    let commit = random_id()?;
    Ok(AggregateCommit {
        commit,
        shard_key,
        received,
        batches: parts,
        partials: windows
            .into_iter()
            .map(|(ws, (w, max_time, sensors))| PartialRow {
                commit,
                committed,
                window_start: Timestamp(ws),
                max_time: Timestamp(if max_time == i64::MIN { ws } else { max_time }),
                state: encode_partial(&w, &sensors.into_iter().collect::<Vec<_>>()),
            })
            .collect(),
    })
}

/// Totals of an aggregator across its partitions.
#[derive(Debug, Default)]
pub struct AggregatorCounters {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub events: AtomicU64,
    pub failed: AtomicU64,
    pub refused: AtomicU64,
}

impl AggregatorCounters {
    pub fn snapshot(&self) -> ConsumeStats {
        ConsumeStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Prometheus text of the counters (an aggregator's `/metrics`).
    pub fn prometheus(&self) -> String {
        use scanwatch_event::metrics::{labels, Exposition, MetricKind};
        let s = self.snapshot();
        let mut out = Exposition::new();
        let outcome = |o: &str| labels(&[("outcome", o)]);
        out.family(
            "scanwatch_aggregator_messages_total",
            "Bus messages handled, by outcome (stored: committed; failed: redelivered later).",
            MetricKind::Counter,
            &[
                (outcome("stored"), s.accepted),
                (outcome("duplicate"), s.duplicates),
                (outcome("failed"), s.failed),
                (outcome("refused"), s.refused),
            ],
        );
        out.counter(
            "scanwatch_aggregator_events_total",
            "Events committed.",
            s.events,
        );
        out.finish()
    }
}

/// Runs one aggregator instance: a task per owned partition, each restarted after
/// an error (a lost connection, a consumer being moved) until `stop`.
pub async fn run_aggregator<B: Bus + Clone + 'static>(
    bus: B,
    handler: Handler,
    instance: u32,
    instances: u32,
    partitions: u32,
    stop: watch::Receiver<bool>,
    counters: Arc<AggregatorCounters>,
) {
    // Counted as the handler answers, so `/metrics` is live (the consumers' own
    // stats arrive only when they stop); a failed commit counts each attempt.
    let live = counters.clone();
    let handler: Handler = Arc::new(move |parts: &[Arc<BusBatch>]| {
        let r = handler(parts);
        match &r {
            Ok(outcomes) => {
                for o in outcomes {
                    match o {
                        scanwatch_store::BatchOutcome::Accepted { events } => {
                            live.accepted.fetch_add(1, Ordering::Relaxed);
                            live.events.fetch_add(*events as u64, Ordering::Relaxed);
                        }
                        scanwatch_store::BatchOutcome::Duplicate => {
                            live.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Err(_) => {
                live.failed.fetch_add(parts.len() as u64, Ordering::Relaxed);
            }
        }
        r
    });
    let mut tasks = Vec::new();
    for p in owned_partitions(partitions, instance, instances) {
        let (bus, handler, mut stop, counters) =
            (bus.clone(), handler.clone(), stop.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            while !*stop.borrow() {
                match bus.consume(p, handler.clone(), stop.clone()).await {
                    // The rest was counted live, by the handler.
                    Ok(s) => {
                        counters.refused.fetch_add(s.refused, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, "aggregator: partition {p}: {e}");
                        tokio::select! {
                            _ = stop.changed() => {}
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_aggregate::decode_window;
    use scanwatch_event::WireEvent;

    fn ev(t: &str, src: &str, port: u16) -> scanwatch_event::Event {
        let line = format!(
            r#"{{"time":"{t}","proto":"tcp","src":"{src}","dst":"198.18.0.1","dst_port":{port},"flags":"S"}}"#
        );
        WireEvent::parse_line(&line).unwrap().to_event().unwrap()
    }

    /// A commit keeps every raw event, cuts one partial per window, and leaves known
    /// benign scanners out of the partials (as the embedded pipeline does).
    #[test]
    fn a_commit_has_one_partial_per_window_without_benign_scanners() {
        let a = [
            ev("2026-11-26T10:05:00Z", "192.0.2.1", 1025),
            ev("2026-11-26T10:06:00Z", "203.0.113.9", 1025),
        ];
        let b = [ev("2026-11-26T11:01:00Z", "192.0.2.2", 445)];
        let (nets, errors) = scanwatch_context::benign::parse_list("203.0.113.0/24", "research");
        assert!(errors.is_empty());
        let benign = BenignSet::new(&nets);
        let parts = vec![
            BatchPart {
                sensor: "fw-1",
                batch_id: "fw-1:b:1",
                events: &a,
            },
            BatchPart {
                sensor: "fw-2",
                batch_id: "fw-2:b:1",
                events: &b,
            },
        ];
        let cfg = AggregateConfig::new(3_600_000);
        let c = partial_commit(parts, Timestamp(9), Timestamp(10), 3, &cfg, Some(&benign)).unwrap();
        assert_eq!(
            (c.shard_key, c.received, c.batches.len()),
            (3, Timestamp(9), 2)
        );
        assert_eq!(c.batches[0].events.len(), 2, "raw events are all kept");
        let starts: Vec<i64> = c.partials.iter().map(|p| p.window_start.0).collect();
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[1] - starts[0], 3_600_000);
        assert!(c
            .partials
            .iter()
            .all(|p| p.commit == c.commit && p.committed == Timestamp(10)));
        let first = decode_window(&c.partials[0].state).unwrap();
        assert_eq!(first.totals.all_events, 1, "the benign scanner is left out");
        assert_eq!(c.partials[0].max_time, a[0].time);
        let second = decode_window(&c.partials[1].state).unwrap();
        assert_eq!(second.cells.len(), 1);
    }

    #[test]
    fn ownership_is_a_partition_of_the_partitions() {
        let mut all: Vec<u32> = (0..3).flat_map(|i| owned_partitions(16, i, 3)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        assert_eq!(owned_partitions(4, 1, 2), [1, 3]);
        assert_eq!(owned_partitions(4, 0, 1), [0, 1, 2, 3]);
    }
}
