//! What one source did on each port over one day, as the store keeps it for a
//! source's page (`/sources/{ip}`): per port its events, first and last time,
//! and the distinct sensors and targets it reached. Several ports of a source's
//! day are kept in one row of the embedded store (a vertical scan of a hundred
//! ports is one row written, not a hundred); these are that row's bytes.
//!
//! Bytes: a format byte (0), the number of ports, then per port in (protocol,
//! port) order: the protocol, the port (two bytes, little-endian), events, the
//! first and last time as milliseconds into the day (varints), and the sensors'
//! and targets' counters as [`encode_distinct`] writes them, each after its
//! length. The decoder checks everything a damaged or forged row could get wrong
//! (order, times outside the day or out of order, bytes left over). A port may
//! count no events: a block may hold events of count 0 (the wire refuses them
//! since `count` was checked; older blocks and migrated rows may not), and what the
//! encoder writes must read back.

use scanwatch_event::bytes::{put_var, Reader};

use crate::codec::{decode_distinct, encode_distinct_into, DecodeError};
use crate::Distinct;

/// A day in milliseconds: the times of a port's activity lie in
/// `[day, day + DAY_MS)`.
pub const DAY_MS: i64 = 86_400_000;

/// What one source did on one port.
#[derive(Clone, Debug)]
pub struct PortActivity {
    pub events: u64,
    /// Events as stored, each once whatever its `count`: no port can have more
    /// distinct sensors or targets than this (a sketch's estimate can; the store
    /// holds its answers to this). The packed bytes do not keep it (their ports'
    /// counters are small and exact): read back, their events stand in.
    pub records: u64,
    /// The first and last event's time (milliseconds since 1970).
    pub first: i64,
    pub last: i64,
    pub sensors: Distinct,
    pub targets: Distinct,
}

impl Default for PortActivity {
    fn default() -> Self {
        PortActivity {
            events: 0,
            records: 0,
            first: i64::MAX,
            last: i64::MIN,
            sensors: Distinct::default(),
            targets: Distinct::default(),
        }
    }
}

impl PortActivity {
    /// Counts `count` events at `time`, from the sensor and to the target with
    /// these keys; counters keep up to `limit` keys exactly.
    pub fn add(&mut self, sensor: u64, target: u64, time: i64, count: u32, limit: usize) {
        self.events += u64::from(count);
        self.records += 1;
        self.first = self.first.min(time);
        self.last = self.last.max(time);
        self.sensors.add_hash(sensor, limit);
        self.targets.add_hash(target, limit);
    }

    /// A distinct count of this port (its sensors' or targets') held to what its
    /// events as stored can hold: a sketch's estimate can exceed them, a
    /// distinct count cannot.
    pub fn held(&self, d: &Distinct) -> u64 {
        d.distinct().min(self.events).min(self.records)
    }

    pub fn merge(&mut self, o: &PortActivity, limit: usize) {
        self.events += o.events;
        self.records += o.records;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.sensors.merge(&o.sensors, limit);
        self.targets.merge(&o.targets, limit);
    }
}

/// A (protocol number, port).
pub type PortKey = (u8, u16);

fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError(what.into())
}

/// Appends the bytes of the ports of the day starting at `day` to `out`; `ports`
/// in strictly increasing key order, every time within the day. `buf` is scratch
/// (a caller writing many rows reuses one).
pub fn encode_day_ports(
    day: i64,
    ports: &[(PortKey, PortActivity)],
    out: &mut Vec<u8>,
    buf: &mut Vec<u8>,
) {
    debug_assert!(ports.windows(2).all(|w| w[0].0 < w[1].0), "ports in order");
    out.push(0);
    put_var(out, ports.len() as u64);
    for ((proto, port), a) in ports {
        debug_assert!(a.first >= day && a.last < day + DAY_MS && a.first <= a.last);
        out.push(*proto);
        out.extend_from_slice(&port.to_le_bytes());
        put_var(out, a.events);
        put_var(out, a.first.saturating_sub(day).max(0) as u64);
        put_var(out, a.last.saturating_sub(day).max(0) as u64);
        for d in [&a.sensors, &a.targets] {
            buf.clear();
            encode_distinct_into(d, buf);
            put_var(out, buf.len() as u64);
            out.extend_from_slice(buf);
        }
    }
}

/// Reads bytes made by [`encode_day_ports`] for the day starting at `day`.
pub fn decode_day_ports(
    day: i64,
    bytes: &[u8],
) -> Result<Vec<(PortKey, PortActivity)>, DecodeError> {
    let mut r = Reader::new(bytes);
    match r.u8()? {
        0 => {}
        f => return Err(bad(format!("unknown source day format {f}"))),
    }
    // A port takes at least ten bytes (3 key, 3 varints, 2 × (length, form, count)).
    let n = r.count(10)?;
    let mut out: Vec<(PortKey, PortActivity)> = Vec::with_capacity(n);
    for _ in 0..n {
        let key = (r.u8()?, r.u16_le()?);
        if out.last().is_some_and(|(k, _)| *k >= key) {
            return Err(bad("source day ports out of order"));
        }
        let events = r.var()?;
        let (first, last) = (r.var()?, r.var()?);
        if first > last || last >= DAY_MS as u64 {
            return Err(bad("source day times outside the day"));
        }
        let sensors = decode_distinct(r.bytes()?)?;
        let targets = decode_distinct(r.bytes()?)?;
        out.push((
            key,
            PortActivity {
                events,
                records: events,
                first: day.saturating_add(first as i64),
                last: day.saturating_add(last as i64),
                sensors,
                targets,
            },
        ));
    }
    if !r.rest.is_empty() {
        return Err(bad("trailing bytes after a source day"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(events: u32, first: i64, last: i64, keys: u64) -> PortActivity {
        let mut a = PortActivity::default();
        a.add(1, 10, first, events, 64);
        a.add(keys, 10 + keys, last, 0, 64);
        a
    }

    fn encode(day: i64, ports: &[(PortKey, PortActivity)]) -> Vec<u8> {
        let (mut out, mut buf) = (Vec::new(), Vec::new());
        encode_day_ports(day, ports, &mut out, &mut buf);
        out
    }

    fn summary(p: &[(PortKey, PortActivity)]) -> Vec<(PortKey, u64, i64, i64, u64, u64)> {
        p.iter()
            .map(|(k, a)| {
                let (s, t) = (a.sensors.distinct(), a.targets.distinct());
                (*k, a.events, a.first, a.last, s, t)
            })
            .collect()
    }

    #[test]
    fn a_day_of_ports_reads_back_as_written() {
        let day = 20 * DAY_MS;
        // A counter past its exact limit is a sketch: it round-trips too.
        let mut wide = activity(5, day + 7, day + DAY_MS - 1, 3);
        for k in 0..500 {
            wide.targets
                .add_hash(crate::key_hash(&u64::to_le_bytes(k)), 64);
        }
        let ports = vec![
            ((6, 22), activity(1, day, day, 1)),
            ((6, 1025), activity(8_000, day + 1_000, day + 5_000, 40)),
            ((17, 22), wide),
        ];
        let bytes = encode(day, &ports);
        let back = decode_day_ports(day, &bytes).unwrap();
        assert_eq!(summary(&back), summary(&ports));
        // Exact counters encode again to the same bytes (a sketch's may differ).
        let exact = &ports[..2];
        let bytes = encode(day, exact);
        assert_eq!(encode(day, &decode_day_ports(day, &bytes).unwrap()), bytes);
        assert!(decode_day_ports(day, &encode(day, &[])).unwrap().is_empty());
    }

    #[test]
    fn damaged_bytes_are_refused_with_a_reason() {
        let day = 3 * DAY_MS;
        let two = encode(
            day,
            &[
                ((6, 80), activity(2, day + 1, day + 2, 1)),
                ((6, 81), activity(1, day + 3, day + 3, 1)),
            ],
        );
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "truncated"),
            (vec![1, 0], "unknown source day format 1"),
            (vec![0, 100], "count larger than the data"),
            (two[..two.len() - 1].to_vec(), "larger than the data"),
            ([two.as_slice(), &[0]].concat(), "trailing bytes"),
        ];
        // The second port's key made equal to the first's.
        let at = two.iter().rposition(|&b| b == 81).unwrap();
        let mut dup = two.clone();
        dup[at] = 80;
        cases.push((dup, "out of order"));
        // A last time past the day's end; first after last.
        let one = |events: u64, first: u64, last: u64| {
            let mut b = vec![0, 1, 6, 80, 0];
            for v in [events, first, last] {
                put_var(&mut b, v);
            }
            b.extend_from_slice(&[2, 0, 0, 2, 0, 0]);
            b
        };
        assert!(decode_day_ports(day, &one(1, 0, 5)).is_ok());
        // No events reads back (what the encoder writes for events of count 0).
        assert_eq!(decode_day_ports(day, &one(0, 0, 5)).unwrap()[0].1.events, 0);
        cases.push((one(1, 0, DAY_MS as u64), "outside the day"));
        cases.push((one(1, 6, 5), "outside the day"));
        for (bytes, why) in cases {
            let err = decode_day_ports(day, &bytes).unwrap_err().to_string();
            assert!(err.contains(why), "{bytes:?}: {err}");
        }
    }
}
