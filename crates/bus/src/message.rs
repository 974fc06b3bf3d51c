//! The message format on the bus: one message per (batch, partition[, chunk]), a
//! JSON header line then the batch's events of that partition as JSON Lines in the
//! wire format sensors send (`scanwatch_event::wire`).
//!
//! ```text
//! {"v":1,"sensor":"fw-1","batch":"fw-1:000042","partition":3,"chunk":0,"received":1764150000000,"ids":[]}
//! {"v":1,"time":"2026-11-26T10:40:00Z","proto":"tcp",...}
//! ```
//!
//! The message id (`Nats-Msg-Id`, also the store's batch id for this part) is
//! `<sensor>:<batch>:<partition>`, with `:<chunk>` appended for the second and
//! later chunks of a partition too large for one message. The split is a pure
//! function of the batch, so a resend produces the same ids and JetStream's
//! duplicate window drops it.

use scanwatch_event::{batch, Event, Protocol, Timestamp, WireEvent};
use scanwatch_store::ContextItem;
use serde::{Deserialize, Serialize};

use crate::BusError;

/// Version of the message format (header `Scanwatch-Version` and the `v` field).
pub const MESSAGE_VERSION: u32 = 1;

/// NATS header carrying [`MESSAGE_VERSION`].
pub const VERSION_HEADER: &str = "Scanwatch-Version";

/// The partition of an event: `xxh3(proto, dst_port) % partitions`, stable across
/// processes and builds. Events without a port (ICMP) use port 0.
pub fn partition_of(proto: Protocol, dst_port: Option<u16>, partitions: u32) -> u32 {
    let port = dst_port.unwrap_or(0).to_be_bytes();
    let key = [proto.number(), port[0], port[1]];
    (xxhash_rust::xxh3::xxh3_64(&key) % u64::from(partitions.max(1))) as u32
}

/// One IDS fact as carried on the bus (stored as a context item of kind `ids`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireItem {
    pub key: String,
    pub origin: String,
    pub json: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    v: u32,
    sensor: String,
    batch: String,
    partition: u32,
    chunk: u32,
    received: i64,
    #[serde(default)]
    ids: Vec<WireItem>,
}

/// A batch as the collector hands it to the bus.
pub use scanwatch_centre::OutgoingBatch;

/// One encoded message: subject partition, message id, payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub partition: u32,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// One message as an aggregator reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct BusBatch {
    pub sensor: String,
    pub batch: String,
    pub partition: u32,
    /// The store's batch id for this part: the message id.
    pub msg_id: String,
    pub events: Vec<Event>,
    pub ids: Vec<ContextItem>,
    pub received: Timestamp,
}

/// The message id of one part.
pub fn msg_id(sensor: &str, batch: &str, partition: u32, chunk: u32) -> String {
    if chunk == 0 {
        format!("{sensor}:{batch}:{partition}")
    } else {
        format!("{sensor}:{batch}:{partition}:{chunk}")
    }
}

/// Splits a batch into messages by partition (and into chunks of at most
/// `max_bytes` where needed). IDS facts ride with the first message. An empty batch
/// is one empty message on partition 0, so its id is recorded like any other.
pub fn encode(b: &OutgoingBatch, partitions: u32, max_bytes: usize) -> Vec<Encoded> {
    let mut parts: Vec<Vec<String>> = vec![Vec::new(); partitions.max(1) as usize];
    for e in &b.events {
        let p = partition_of(e.proto, e.dst_port, partitions);
        parts[p as usize].push(WireEvent::from_event(e, None).to_line());
    }
    let mut out = Vec::new();
    let mut ids: Vec<WireItem> = b
        .ids
        .iter()
        .map(|i| WireItem {
            key: i.key.clone(),
            origin: i.origin.clone(),
            json: i.json.clone(),
        })
        .collect();
    let empty = b.events.is_empty();
    for (p, lines) in parts.iter().enumerate() {
        if lines.is_empty() && !(empty && p == 0) {
            continue;
        }
        let p = p as u32;
        let mut chunk = 0u32;
        let mut i = 0;
        loop {
            let header = Header {
                v: MESSAGE_VERSION,
                sensor: b.sensor.clone(),
                batch: b.batch.clone(),
                partition: p,
                chunk,
                received: b.received.0,
                ids: std::mem::take(&mut ids),
            };
            // Serialising plain strings and numbers cannot fail.
            let mut payload = serde_json::to_vec(&header).unwrap_or_default();
            payload.push(b'\n');
            let mut n = 0;
            while i < lines.len() {
                let l = &lines[i];
                if n > 0 && payload.len() + l.len() + 1 > max_bytes {
                    break;
                }
                payload.extend_from_slice(l.as_bytes());
                payload.push(b'\n');
                i += 1;
                n += 1;
            }
            out.push(Encoded {
                partition: p,
                msg_id: msg_id(&b.sensor, &b.batch, p, chunk),
                payload,
            });
            chunk += 1;
            if i >= lines.len() {
                break;
            }
        }
    }
    out
}

/// Reads one message (any error names the message id).
pub fn decode(msg_id: &str, payload: &[u8]) -> Result<BusBatch, BusError> {
    let bad = |reason: String| BusError::Message {
        id: msg_id.to_string(),
        reason,
    };
    let text = std::str::from_utf8(payload).map_err(|e| bad(format!("not utf-8: {e}")))?;
    if text.is_empty() {
        return Err(bad("empty message".into()));
    }
    let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
    let h: Header = serde_json::from_str(head).map_err(|e| bad(format!("bad header line: {e}")))?;
    if h.v != MESSAGE_VERSION {
        return Err(bad(format!(
            "message version {} is not supported; this build reads version {MESSAGE_VERSION}",
            h.v
        )));
    }
    // The events: the collector's reader of a batch's lines, numbered here from
    // the header line.
    let mut events = Vec::new();
    batch::read_lines(rest, usize::MAX, |_, _, e| events.push(e)).map_err(|e| match e {
        batch::BatchError::Line { line, error } => bad(format!("line {}: {error}", line + 1)),
        other => bad(other.to_string()),
    })?;
    let id = if msg_id.is_empty() {
        self::msg_id(&h.sensor, &h.batch, h.partition, h.chunk)
    } else {
        msg_id.to_string()
    };
    Ok(BusBatch {
        sensor: h.sensor,
        batch: h.batch,
        partition: h.partition,
        msg_id: id,
        events,
        ids: h
            .ids
            .into_iter()
            .map(|i| ContextItem {
                key: i.key,
                origin: i.origin,
                json: i.json,
            })
            .collect(),
        received: Timestamp(h.received),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(port: u16, t: i64) -> Event {
        let line = format!(
            r#"{{"time":"2026-11-26T10:40:{:02}Z","proto":"tcp","src":"192.0.2.1","dst":"198.51.100.7","dst_port":{port},"flags":"S"}}"#,
            t % 60
        );
        WireEvent::parse_line(&line).unwrap().to_event().unwrap()
    }

    #[test]
    fn split_by_partition_round_trips() {
        let events: Vec<Event> = (0..200).map(|i| ev(1000 + (i % 37) as u16, i)).collect();
        let b = OutgoingBatch {
            sensor: "fw-1".into(),
            batch: "b-1".into(),
            events: events.clone(),
            ids: vec![ContextItem {
                key: "fw-1:b-1:0".into(),
                origin: "fw-1".into(),
                json: "{}".into(),
            }],
            received: Timestamp(5),
        };
        let msgs = encode(&b, 16, 1 << 20);
        assert!(msgs.len() > 1);
        let mut back = Vec::new();
        let mut ids = 0;
        for m in &msgs {
            assert_eq!(m.msg_id, format!("fw-1:b-1:{}", m.partition));
            let d = decode(&m.msg_id, &m.payload).unwrap();
            assert!(d
                .events
                .iter()
                .all(|e| partition_of(e.proto, e.dst_port, 16) == m.partition));
            ids += d.ids.len();
            back.extend(d.events);
        }
        assert_eq!(ids, 1, "IDS facts ride once");
        assert_eq!(back.len(), events.len());
        for e in &events {
            assert!(back.contains(e));
        }
        assert_eq!(encode(&b, 16, 1 << 20), msgs, "deterministic");
    }

    #[test]
    fn a_message_is_its_header_line_then_its_events() {
        let head = r#"{"v":1,"sensor":"s","batch":"b","partition":3,"chunk":0,"received":7}"#;
        let line = WireEvent::from_event(&ev(443, 1), None).to_line();
        // A header alone, with or without its line's end (also "\r\n"): no events.
        for text in [head.to_string(), format!("{head}\n"), format!("{head}\r\n")] {
            let d = decode("", text.as_bytes()).unwrap();
            assert!(d.events.is_empty(), "{text:?}");
            assert_eq!((d.partition, d.msg_id.as_str()), (3, "s:b:3"));
        }
        let d = decode("m", format!("{head}\r\n{line}\r\n\r\n{line}").as_bytes()).unwrap();
        assert_eq!(d.events, vec![ev(443, 1), ev(443, 1)]);
        // Lines are numbered from the header's: the first event is line 2.
        let bad = |text: String| decode("m", text.as_bytes()).unwrap_err().to_string();
        let e = bad(format!("{head}\n{line}\n\n{{\"time\":\"never\"}}"));
        assert!(e.contains("line 4: "), "{e}");
        assert!(bad(String::new()).contains("empty message"));
        assert!(bad("\n".into()).contains("bad header line"));
        let e = bad(head.replace("\"v\":1", "\"v\":2"));
        assert!(e.contains("message version 2"), "{e}");
    }

    #[test]
    fn big_partitions_are_chunked_and_empty_batches_are_one_message() {
        let events: Vec<Event> = (0..500).map(|i| ev(443, i)).collect();
        let b = OutgoingBatch {
            sensor: "s".into(),
            batch: "b".into(),
            events,
            ids: vec![],
            received: Timestamp(0),
        };
        let msgs = encode(&b, 4, 8192);
        assert!(msgs.len() > 3);
        assert!(msgs.iter().all(|m| m.payload.len() <= 8192));
        assert_eq!(msgs[1].msg_id, format!("s:b:{}:1", msgs[0].partition));
        let n: usize = msgs
            .iter()
            .map(|m| decode(&m.msg_id, &m.payload).unwrap().events.len())
            .sum();
        assert_eq!(n, 500);
        let empty = OutgoingBatch {
            events: vec![],
            ..b
        };
        let m = encode(&empty, 4, 8192);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].msg_id, "s:b:0");
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        for p in [
            &b""[..],
            b"\xff",
            b"{}",
            b"{\"v\":2,\"sensor\":\"s\",\"batch\":\"b\",\"partition\":0,\"chunk\":0,\"received\":0}",
            b"{\"v\":1,\"sensor\":\"s\",\"batch\":\"b\",\"partition\":0,\"chunk\":0,\"received\":0}\nnot json",
        ] {
            assert!(decode("x", p).is_err());
        }
    }
}
