//! Notification sinks: where warnings go after the centre stores them (webhook,
//! syslog, email).
//!
//! The centre calls the hook of a [`Notifier`] with each stored warning (its id and
//! its JSON, the fields of `AlertJson`). The hook only queues: one tokio task per sink
//! takes the warnings in order, applies the sink's [filters](config::Filters),
//! decides with the persisted [surge state](state) whether this is a `new` surge, an
//! `update` worth sending, or something already sent, renders the message and
//! delivers it with retries and exponential backoff. What could not be delivered
//! after the last attempt becomes a dead letter in the store.
//!
//! Each sink kind is one module behind the [`Sink`] trait, built in one place
//! ([`sink::build`]); each has its own config struct in [`config`].

pub mod config;
pub mod email;
pub mod filter;
pub mod notifier;
pub mod sink;
pub mod state;
pub mod syslog;
pub mod warning;
pub mod webhook;

pub use config::{NotifyConfig, SinkConfig, SinkKind};
pub use notifier::{Counters, Notifier};
pub use sink::{Sink, SinkError};
pub use warning::{Confidence, Event, Notification, Severity, Warning};

use thiserror::Error;

/// Errors of configuration and of reading a warning. Messages are lowercase with no
/// trailing period.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NotifyError {
    #[error("sink {sink:?}: {reason}")]
    Config { sink: String, reason: String },
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("warning {id}: {reason}")]
    Warning { id: i64, reason: String },
}
