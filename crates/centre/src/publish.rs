//! Where an accepted batch goes in the scale-out mode, instead of the local store:
//! the one publish trait. The collector calls it after checking a batch; the event
//! bus (`scanwatch-bus`, NATS JetStream) implements it, below the collector, so
//! neither knows the other.

use std::future::Future;
use std::pin::Pin;

use scanwatch_event::{Event, Timestamp};
use scanwatch_store::ContextItem;

/// A batch the collector accepted, on its way to the event bus.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingBatch {
    pub sensor: String,
    pub batch: String,
    pub events: Vec<Event>,
    /// IDS facts of the batch (context items of kind `ContextKind::Ids`).
    pub ids: Vec<ContextItem>,
    /// When the collector received it.
    pub received: Timestamp,
}

/// What publishing one batch did: parts stored anew and parts the bus already had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub stored: usize,
    pub duplicates: usize,
}

impl PublishReport {
    /// A resend: the bus had every part already.
    pub fn all_duplicates(&self) -> bool {
        self.stored == 0 && self.duplicates > 0
    }
}

/// Why a batch could not be published (the collector answers 500, so the sensor
/// keeps it and retries).
pub type PublishError = Box<dyn std::error::Error + Send + Sync>;

/// A publish in flight; it resolves only once every part is durable on the bus.
pub type PublishFuture<'a> =
    Pin<Box<dyn Future<Output = Result<PublishReport, PublishError>> + Send + 'a>>;

/// Publishes accepted batches (implemented by `scanwatch_bus::NatsBus`).
pub trait BatchPublisher: Send + Sync {
    fn publish<'a>(&'a self, batch: &'a OutgoingBatch) -> PublishFuture<'a>;
}
