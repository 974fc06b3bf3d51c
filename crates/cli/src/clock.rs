//! The wall clock of the commands: read here, once per need, and handed to the
//! libraries (as a time or a `scanwatch_event::Clock`). The exceptions, named in
//! ARCHITECTURE.md: the sensor's heartbeat reads its host's clock, and the
//! ClickHouse store stamps its row versions.

use scanwatch_event::Timestamp;

/// Now, in milliseconds since the epoch (0 on a clock before 1970).
pub fn wall_clock() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}
