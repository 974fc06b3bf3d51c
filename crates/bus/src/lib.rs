//! The scale-out event bus between collectors and aggregators (NATS JetStream).
//!
//! A collector splits each accepted batch by partition (`hash(proto, dst_port) %
//! partitions`, [`message::partition_of`]) and publishes one message per partition
//! to `<prefix>.<partition>` with `Nats-Msg-Id = <sensor>:<batch>:<partition>`; it
//! answers the sensor only after every PubAck (the stream is replicated, so the
//! batch is durable), and JetStream's duplicate window drops resends. Aggregators
//! read the partitions they own through durable pull consumers, commit each message
//! to the store under its message id (so a redelivery after a crash is a
//! `Duplicate`) and acknowledge only after the store accepted it.
//!
//! Ownership: with `instances = n`, instance `i` owns the partitions `p` with
//! `p % n == i` ([`owned_partitions`]). Consumers are durable and named by
//! partition, not by instance, so a restarted instance (or another instance given
//! the same `i`) resumes where the partition's consumer stopped.

pub mod config;
pub mod message;
pub mod nats;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use scanwatch_store::{BatchOutcome, Store, StoreError};
use thiserror::Error;
use tokio::sync::watch;

pub use config::BusConfig;
pub use message::{BusBatch, OutgoingBatch};
pub use nats::{Lease, NatsBus};

/// Store kind of IDS facts (the collector's).
pub use scanwatch_collector::IDS_KIND;

/// Errors of the bus. Messages are lowercase with no trailing period.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("invalid bus config: {0}")]
    Config(String),
    #[error("nats: {0}")]
    Nats(String),
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

/// What publishing one batch did: parts stored anew and parts the bus already had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub stored: usize,
    pub duplicates: usize,
}

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

/// Called for each message (off the async threads); the message is acked only when
/// this returns `Ok`.
pub type Handler = Arc<dyn Fn(&BusBatch) -> Result<BatchOutcome, BusError> + Send + Sync>;

/// An event bus: publish a batch, consume one partition.
pub trait Bus: Send + Sync {
    /// Publishes every part of a batch; resolves once each part is durable.
    fn publish(
        &self,
        batch: &OutgoingBatch,
    ) -> impl Future<Output = Result<PublishReport, BusError>> + Send;

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

/// The aggregator's handler: commits the message's events under its message id
/// (idempotent), then its IDS facts.
pub fn store_handler(store: Arc<Mutex<Box<dyn Store>>>) -> Handler {
    Arc::new(move |b: &BusBatch| {
        // A handler that panicked (a failure, so never acked) leaves the store
        // usable: the SQLite transaction rolled back when dropped, and ClickHouse
        // holds no state between requests. Go on rather than fail every later message.
        let mut s = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let o = s.commit_batch(&b.sensor, &b.msg_id, &b.events, b.received)?;
        if matches!(o, BatchOutcome::Accepted { .. }) && !b.ids.is_empty() {
            s.put_context_items(IDS_KIND, &b.ids, b.received)?;
        }
        Ok(o)
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
    fn add(&self, s: &ConsumeStats) {
        self.accepted.fetch_add(s.accepted, Ordering::Relaxed);
        self.duplicates.fetch_add(s.duplicates, Ordering::Relaxed);
        self.events.fetch_add(s.events, Ordering::Relaxed);
        self.failed.fetch_add(s.failed, Ordering::Relaxed);
        self.refused.fetch_add(s.refused, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ConsumeStats {
        ConsumeStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
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
    let mut tasks = Vec::new();
    for p in owned_partitions(partitions, instance, instances) {
        let (bus, handler, mut stop, counters) =
            (bus.clone(), handler.clone(), stop.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            while !*stop.borrow() {
                match bus.consume(p, handler.clone(), stop.clone()).await {
                    Ok(s) => counters.add(&s),
                    Err(e) => {
                        eprintln!("aggregator: partition {p}: {e}");
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

    #[test]
    fn ownership_is_a_partition_of_the_partitions() {
        let mut all: Vec<u32> = (0..3).flat_map(|i| owned_partitions(16, i, 3)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        assert_eq!(owned_partitions(4, 1, 2), [1, 3]);
        assert_eq!(owned_partitions(4, 0, 1), [0, 1, 2, 3]);
    }
}
