//! The wall clock: the binary's edge is the only place that reads it (libraries
//! take the time from their caller, or a `scanwatch_event::Clock` it gives them).

use scanwatch_event::Timestamp;

/// Now, in milliseconds since the epoch (0 on a clock before 1970).
pub fn wall_clock() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}
