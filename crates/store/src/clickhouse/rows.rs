//! Rows in and out: `JSONEachRow` answers read, `RowBinary` inserts written
//! (events, windows, batch markers), and the column encodings they share.

use super::*;

/// One row of a `JSONEachRow` answer.
pub(super) struct Row(pub(super) Map<String, Value>);

impl Row {
    pub(super) fn get(&self, k: &str) -> Result<&Value, StoreError> {
        self.0
            .get(k)
            .ok_or_else(|| err(format!("answer without column {k}")))
    }

    pub(super) fn str(&self, k: &str) -> Result<String, StoreError> {
        match self.get(k)? {
            Value::String(s) => Ok(s.clone()),
            v => Err(err(format!("column {k}: expected a string, got {v}"))),
        }
    }

    pub(super) fn i128(&self, k: &str) -> Result<i128, StoreError> {
        let v = self.get(k)?;
        let parsed = match v {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from)),
            Value::String(s) => s.parse::<i128>().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| err(format!("column {k}: expected an integer, got {v}")))
    }

    pub(super) fn int<T: TryFrom<i128>>(&self, k: &str) -> Result<T, StoreError> {
        let v = self.i128(k)?;
        T::try_from(v).map_err(|_| err(format!("column {k}: {v} out of range")))
    }
}

/// A `RowBinary` body.
#[derive(Default)]
pub(super) struct Rb(pub(super) Vec<u8>);

impl Rb {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    pub(super) fn bytes(&mut self, s: &[u8]) {
        let mut n = s.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(b);
                break;
            }
            self.0.push(b | 0x80);
        }
        self.0.extend_from_slice(s);
    }
    pub(super) fn fixed16(&mut self, b: &[u8; 16]) {
        self.0.extend_from_slice(b);
    }
    /// A `DateTime` from milliseconds (clamped, see [`MAX_SECS`]).
    pub(super) fn datetime(&mut self, ms: i64) {
        self.u32(secs(ms) as u32);
    }
}

pub(super) fn ip16(ip: IpAddr) -> ([u8; 16], u8) {
    match ip {
        IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), 1),
        IpAddr::V6(a) => (a.octets(), 0),
    }
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Bytes from ClickHouse's `hex()` of them.
pub(super) fn unhex(h: &str) -> Result<Vec<u8>, StoreError> {
    if h.len() % 2 != 0 || !h.is_ascii() {
        return Err(err("bad hex in the answer"));
    }
    (0..h.len() / 2)
        .map(|i| {
            u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| err("bad hex in the answer"))
        })
        .collect()
}

pub(super) fn ip_from_hex(h: &str, v4: bool) -> Result<IpAddr, StoreError> {
    let bad = || err(format!("bad address in the answer: {h:?}"));
    let b: [u8; 16] = unhex(h)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(bad)?;
    if v4 {
        Ok(IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])))
    } else {
        Ok(IpAddr::V6(Ipv6Addr::from(b)))
    }
}

pub(super) const ENUM_DIRECTION: &str = "Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2)";
pub(super) const ENUM_ACTION: &str = "Enum8('unknown' = 0, 'accept' = 1, 'drop' = 2, 'reject' = 3)";

pub(super) fn direction_code(d: Direction) -> u8 {
    match d {
        Direction::Unknown => 0,
        Direction::Inbound => 1,
        Direction::Outbound => 2,
    }
}

pub(super) fn action_code(a: Action) -> u8 {
    match a {
        Action::Unknown => 0,
        Action::Accept => 1,
        Action::Drop => 2,
        Action::Reject => 3,
    }
}

/// Columns of the raw events, in `RowBinary` order.
/// Appends the RowBinary rows of one batch's events (columns [`EVENT_COLUMNS`]).
pub(super) fn put_events(rb: &mut Rb, sensor: &str, batch_id: &str, seq: u64, events: &[Event]) {
    for (i, e) in events.iter().enumerate() {
        let (src, src_v4) = ip16(e.src);
        let (dst, dst_v4) = ip16(e.dst);
        rb.datetime(e.time.0);
        rb.i64(e.time.0);
        rb.str(sensor);
        rb.str(batch_id);
        rb.u64(seq);
        rb.u32(u32::try_from(i).unwrap_or(u32::MAX));
        rb.u8(e.proto.number());
        rb.fixed16(&src);
        rb.fixed16(&dst);
        rb.u8(src_v4);
        rb.u8(dst_v4);
        rb.u16(e.src_port.unwrap_or(0));
        rb.u8(u8::from(e.src_port.is_some()));
        rb.u16(e.dst_port.unwrap_or(0));
        rb.u8(u8::from(e.dst_port.is_some()));
        rb.u8(if e.flags_known { e.flags.0 } else { 0 });
        rb.u8(u8::from(e.flags_known));
        rb.u8(e.icmp_type.unwrap_or(0));
        rb.u8(u8::from(e.icmp_type.is_some()));
        rb.u8(direction_code(e.direction));
        rb.u8(action_code(e.action));
        rb.u32(e.count);
        rb.u8(u8::from(e.scanned_port().is_some()));
    }
}

pub(super) const BATCH_COLUMNS: &str = "received, received_ms, sensor, batch_id, events, seq, keep";

/// Until when a commit's batch ids are kept: they are its commit point, so they stay
/// while any of its events may (the later of receipt and its latest event time; one
/// value per commit, so its batch rows are one partition and one atomic part).
pub(super) fn keep_until<'e>(
    received: Timestamp,
    events: impl IntoIterator<Item = &'e Event>,
) -> i64 {
    events
        .into_iter()
        .map(|e| e.time.0)
        .fold(received.0, i64::max)
}

pub(super) const EVENT_COLUMNS: &str =
    "time, time_ms, sensor, batch_id, batch_seq, idx, proto, src, dst, \
    src_v4, dst_v4, src_port, has_src_port, dst_port, has_dst_port, flags, flags_known, \
    icmp_type, has_icmp_type, direction, action, count, scanned";

pub(super) const WINDOW_COLUMNS: &str =
    "window_start, window_start_ms, window_end_ms, proto, port, events, \
    sources, sensors, targets, top_sources, version";
