//! The one trait every sink kind implements, and the one place kinds are built
//! from their config ([`build`]).

use thiserror::Error;

use crate::config::{SinkConfig, SinkKind};
use crate::warning::Notification;
use crate::NotifyError;

/// Why one delivery attempt failed. Messages are lowercase with no trailing period.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SinkError {
    /// Worth another attempt (network, timeouts, 5xx, 429).
    #[error("{0}")]
    Retry(String),
    /// Another attempt would fail the same way (4xx, a refused recipient, a message
    /// that cannot be rendered): goes to the dead letters at once.
    #[error("{0}")]
    Permanent(String),
}

/// A notification sink. Rendering is separate from delivery so that what would
/// have been sent is what a dead letter keeps, and so it is unit-testable.
pub trait Sink: Send + Sync {
    /// `webhook`, `syslog`, `email`.
    fn kind(&self) -> &'static str;
    /// What is sent for `n` (a body, a syslog line, a formatted email).
    fn render(&self, n: &Notification) -> Result<String, SinkError>;
    /// One delivery attempt of a rendered payload. Blocking: the notifier runs it
    /// on a blocking thread, with retries and backoff around it.
    fn deliver(&self, n: &Notification, payload: &str) -> Result<(), SinkError>;
}

/// Builds the sink of a validated config. May do I/O that belongs at start (reading
/// a CA file, this machine's name); validation itself does none.
pub fn build(cfg: &SinkConfig) -> Result<Box<dyn Sink>, NotifyError> {
    let err = |reason: String| NotifyError::Config {
        sink: cfg.name.clone(),
        reason,
    };
    cfg.validate()?;
    Ok(match &cfg.kind {
        SinkKind::Webhook(c) => Box::new(crate::webhook::Webhook::new(c.clone()).map_err(err)?),
        SinkKind::Syslog(c) => Box::new(crate::syslog::Syslog::new(c.clone()).map_err(err)?),
        SinkKind::Email(c) => Box::new(crate::email::Email::new(c.clone()).map_err(err)?),
    })
}
