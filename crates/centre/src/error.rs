use scanwatch_store::StoreError;
use thiserror::Error;

/// What can go wrong in the centre's runtime.
#[derive(Debug, Error)]
pub enum CentreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} lock poisoned")]
    Poisoned(&'static str),
    #[error("cannot encode a stored value: {0}")]
    Encode(String),
    #[error("{0}")]
    Stored(String),
    /// The context's files: a data directory without a store, a file that does not
    /// read or parse (the message names it).
    #[error("{0}")]
    Context(String),
}
