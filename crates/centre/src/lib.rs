//! The centre's runtime, below HTTP: what happens to a batch once the collector has
//! accepted it, and what the centre does at start and as its clock moves.
//!
//! [`Centre`] owns the store, the pipeline, the threat context and the time model
//! ([`time`]): batches are fed after their commit, heartbeats move each sensor's
//! progress, [`Centre::tick`] closes windows on the centre's clock, late events
//! revise their window from the complete stored data (never held in memory), and
//! [`Centre::replay`] rebuilds the state from the store at start. The collector
//! (HTTP) and the binary's server roles call it; it does no HTTP, prints nothing,
//! and reads no clock: every call takes the time from its caller.
//!
//! The model is written down in `docs/time.md`.

mod centre;
pub mod checkpoint;
pub mod context_sources;
mod error;
mod feed_order;
pub mod housekeeping;
pub mod incidents;
pub mod merge;
pub mod publish;
pub mod stored_context;
pub mod time;

pub use centre::{
    AlertHook, Centre, CentreCounters, CheckpointStats, Partial, ReplayStats, SharedStore,
};
pub use error::CentreError;
pub use housekeeping::{Housekeeping, Retention, Schedule};
pub use merge::{PartialMerge, StepError, Stepped};
pub use publish::{BatchPublisher, OutgoingBatch, PublishError, PublishFuture, PublishReport};
pub use stored_context::StoredContext;
pub use time::{SensorTime, TimeConfig, TimeKeeper};
