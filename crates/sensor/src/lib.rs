//! The sensor side: follow log files, keep only unsolicited inbound events, spool
//! them to disk in checksummed batches, and submit the batches to the centre with
//! retries. What is spooled survives restarts and `kill -9`; what the centre
//! acknowledged is never sent again.

pub mod capture;
pub mod follow;
pub mod framing;
pub mod journal;
pub mod journal_entry;
pub mod listen;
pub mod rules;
pub mod run;
pub mod send;
pub mod spool;
