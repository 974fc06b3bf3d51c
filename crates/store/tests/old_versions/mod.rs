//! Turning a new store back into an older version's tables, to test migrations:
//! versions 1 to 5 kept one row per event (`events`), version 6 keeps blocks, port
//! cells and source days instead.
#![allow(dead_code)] // each test file uses what it needs

use scanwatch_event::Event;

/// Version 9 keeps the aggregates in a file of their own (`counts.db`); version 8
/// kept them in the store's file. Back to version 8: the tables there again,
/// empty and counted to block 0 (as if no counting had run yet), so the move to
/// version 9 counts every block again.
pub const BACK_TO_V8: &str = "
CREATE TABLE port_cells (
    span_ms INTEGER NOT NULL, start_ms INTEGER NOT NULL, proto INTEGER NOT NULL,
    port INTEGER NOT NULL, events INTEGER NOT NULL, n_src INTEGER NOT NULL,
    n_sensors INTEGER NOT NULL, src BLOB NOT NULL, dst BLOB NOT NULL, sensors BLOB NOT NULL,
    PRIMARY KEY (span_ms, start_ms, proto, port)
) WITHOUT ROWID;
CREATE INDEX port_cells_busy
    ON port_cells (span_ms, start_ms, proto, port, events, n_src, n_sensors)
    WHERE events >= 8;
CREATE TABLE source_days (
    day_ms INTEGER NOT NULL, src BLOB NOT NULL, proto INTEGER NOT NULL, port INTEGER NOT NULL,
    events INTEGER NOT NULL, first_in INTEGER NOT NULL, last_in INTEGER NOT NULL,
    sensors BLOB NOT NULL, targets BLOB NOT NULL,
    PRIMARY KEY (day_ms, src, proto, port)
) WITHOUT ROWID;
UPDATE aggregated SET block_id = 0;
PRAGMA user_version = 8;
";

/// Drops version 6's tables and creates version 5's `events` table (empty).
pub const BACK_TO_V5_EVENTS: &str = "
DROP TABLE event_blocks; DROP TABLE IF EXISTS source_days; DROP TABLE IF EXISTS port_cells;
DROP TABLE aggregated;
DROP TABLE checkpoint; DROP TABLE damaged_blocks;
CREATE TABLE events (
    time_ms   INTEGER NOT NULL,
    sensor_id INTEGER NOT NULL REFERENCES sensors(id),
    proto     INTEGER NOT NULL,
    src       BLOB    NOT NULL,
    dst       BLOB    NOT NULL,
    src_port  INTEGER,
    dst_port  INTEGER,
    flags     INTEGER,
    icmp_type INTEGER,
    direction INTEGER NOT NULL,
    action    INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    scanned_port INTEGER
);
CREATE INDEX events_by_time ON events(time_ms);
CREATE INDEX events_by_src ON events(src, time_ms);
";

fn ip(a: std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Writes events as version 5 stored them, one row each, in this order.
pub fn insert_v5_rows(conn: &rusqlite::Connection, rows: &[(String, Event)]) {
    let mut st = conn
        .prepare(
            "INSERT INTO events (time_ms, sensor_id, proto, src, dst, src_port, dst_port, flags, icmp_type, direction, action, count, scanned_port)
             VALUES (?1, (SELECT id FROM sensors WHERE name = ?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .unwrap();
    for (sensor, e) in rows {
        let direction = match e.direction {
            scanwatch_event::Direction::Unknown => 0,
            scanwatch_event::Direction::Inbound => 1,
            scanwatch_event::Direction::Outbound => 2,
        };
        let action = match e.action {
            scanwatch_event::Action::Unknown => 0,
            scanwatch_event::Action::Accept => 1,
            scanwatch_event::Action::Drop => 2,
            scanwatch_event::Action::Reject => 3,
        };
        st.execute(rusqlite::params![
            e.time.0,
            sensor,
            e.proto.number(),
            ip(e.src),
            ip(e.dst),
            e.src_port,
            e.dst_port,
            e.flags_known.then_some(e.flags.0),
            e.icmp_type,
            direction,
            action,
            e.count,
            e.scanned_port().map(|(_, p)| p),
        ])
        .unwrap();
    }
}
