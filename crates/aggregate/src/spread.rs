//! Which ports each source reached in a window, and which sensors saw it there: the
//! evidence for recognising *sweeps* (one source probing many ports, few events
//! each), so that a sweep is one story and not one warning per port
//! (`docs/detection.md`, "Sweeps").
//!
//! Per source the window keeps, per (protocol, port) it reached: its events, the
//! sensor that saw it, and whether a second sensor saw it too. From that:
//! - a source's **trimmed spread**: its distinct ports without the ports only its
//!   `trim` largest single-sensor contributors reported, cut to the next sensor's
//!   size (winsorised, as every count of a cell is). One sensor reporting that the
//!   sources of a real surge also touched a hundred other ports cannot turn them
//!   into sweepers and so hide the surge;
//! - a source is a **sweeper** of the window when its trimmed spread reaches
//!   [`SweepRule::min_ports`].
//!
//! Memory is bounded: a source keeps at most [`SPREAD_CAP`] ports, those of
//! smallest *rank* (a bottom-k sample: what is kept is the same whatever the order
//! of the events or the partial aggregates, since the bottom k of a union is the
//! bottom k of the parts' bottom k), and `capped` says more were seen. The rank of
//! a port is its (protocol, port) key hashed under the deployment's secret sample
//! seed ([`crate::sample_seed`]), and past the cap the trimmed spread is scaled
//! from the sample to the estimated number of ports. Were the smallest *keys*
//! kept, one sensor reporting a sweeper on the 4,096 lowest ports would push the
//! ports the honest sensors saw out of the record, and trimming it would leave
//! nothing: the sweep hidden. Under a secret rank its ports are a random part of
//! the sample, and flooding it with more ports only makes that part larger, while
//! the honest ports keep their share, scaled back up. Without a seed (`analyze`)
//! the rank is the key and nothing is scaled, as before the seed existed.
//! Hand-written: no crate keeps a small per-key record under a bottom-k cap.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::SensorKey;

/// Ports kept per source and window (those of smallest rank beyond it).
pub const SPREAD_CAP: usize = 4096;

/// Ports kept inline before a source's ports go to a sorted map.
const SMALL_PORTS: usize = 8;

/// When a source is a sweeper (`docs/detection.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepRule {
    /// Distinct ports (trimmed) a source must reach in one window; 0 turns sweep
    /// recognition off.
    pub min_ports: u32,
    /// The largest single-sensor contributors cut from a source's spread (the
    /// detector's `trim_sensors`).
    pub trim: usize,
}

impl SweepRule {
    /// Default: 100 ports, one sensor trimmed.
    pub const DEFAULT_MIN_PORTS: u32 = 100;

    pub fn off() -> SweepRule {
        SweepRule {
            min_ports: 0,
            trim: 0,
        }
    }
}

impl Default for SweepRule {
    fn default() -> Self {
        SweepRule {
            min_ports: Self::DEFAULT_MIN_PORTS,
            trim: 1,
        }
    }
}

/// A (protocol, port) as one number: the IP protocol number above the port.
#[inline]
pub fn port_key(proto: scanwatch_event::Protocol, port: u16) -> u32 {
    (u32::from(proto.number()) << 16) | u32::from(port)
}

/// The (protocol, port) of a [`port_key`].
pub fn port_of(key: u32) -> (scanwatch_event::Protocol, u16) {
    (
        scanwatch_event::Protocol::from_number((key >> 16) as u8),
        (key & 0xffff) as u16,
    )
}

/// One port a source reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSeen {
    pub key: u32,
    /// The low 32 bits of the key of a sensor that saw it (the smallest, so the
    /// record is the same in any order).
    pub sensor: u32,
    pub events: u32,
    /// Whether more than one sensor saw the source on this port.
    pub multi: bool,
}

impl PortSeen {
    pub fn new(key: u32, sensor: SensorKey, events: u64) -> PortSeen {
        PortSeen {
            key,
            sensor: sensor as u32,
            events: u32::try_from(events).unwrap_or(u32::MAX),
            multi: false,
        }
    }

    fn absorb(&mut self, o: &PortSeen) {
        self.events = self.events.saturating_add(o.events);
        self.multi |= o.multi || o.sensor != self.sensor;
        self.sensor = self.sensor.min(o.sensor);
    }
}

#[derive(Clone, Debug)]
enum Ports {
    Small(SmallVec<[PortSeen; 2]>),
    /// At most [`SPREAD_CAP`] ports, by key.
    Large(BTreeMap<u32, PortSeen>),
    /// Past the cap: the [`SPREAD_CAP`] ports of smallest (rank, key).
    Sampled(BTreeMap<(u64, u32), PortSeen>),
}

/// The rank of a (protocol, port) key ([`crate::sample_seed`]).
#[inline]
pub(crate) fn port_rank(key: u32) -> u64 {
    crate::sample_seed::rank(u64::from(key))
}

/// The ports one source reached in a window.
#[derive(Clone, Debug)]
pub struct Spread {
    pub ip: IpAddr,
    pub events: u64,
    ports: Ports,
    /// More than [`SPREAD_CAP`] ports were seen (those of smallest rank are kept).
    pub capped: bool,
    /// The kept ports were sampled, in whole or in part, under another ranking
    /// than this process's (under a seed: a part written before the ranking was
    /// recorded, or under another deployment's seed): they are kept, but are no
    /// bottom-k sample here, so nothing is estimated from them (a lower bound, as without
    /// a seed). The codec writes it so that it reads back foreign.
    pub foreign: bool,
}

impl Spread {
    pub fn new(ip: IpAddr) -> Spread {
        Spread {
            ip,
            events: 0,
            ports: Ports::Small(SmallVec::new()),
            capped: false,
            foreign: false,
        }
    }

    /// Adds one port record (an event, or a part's record when merging).
    pub fn insert(&mut self, s: PortSeen) {
        if let Ports::Small(v) = &mut self.ports {
            if let Some(p) = v.iter_mut().find(|p| p.key == s.key) {
                p.absorb(&s);
                return;
            }
            if v.len() < SMALL_PORTS {
                v.push(s);
                return;
            }
            let m = v.drain(..).map(|p| (p.key, p)).collect();
            self.ports = Ports::Large(m);
        }
        if let Ports::Large(m) = &mut self.ports {
            if let Some(p) = m.get_mut(&s.key) {
                p.absorb(&s);
                return;
            }
            if m.len() < SPREAD_CAP {
                m.insert(s.key, s);
                return;
            }
            // Full: from now on by rank (only sources past the cap pay for it).
            let by_rank = std::mem::take(m)
                .into_values()
                .map(|p| ((port_rank(p.key), p.key), p))
                .collect();
            self.ports = Ports::Sampled(by_rank);
        }
        if let Ports::Sampled(m) = &mut self.ports {
            let at = (port_rank(s.key), s.key);
            if let Some(p) = m.get_mut(&at) {
                p.absorb(&s);
                return;
            }
            if m.len() < SPREAD_CAP {
                m.insert(at, s);
                return;
            }
            self.capped = true;
            if m.last_key_value().is_some_and(|(max, _)| at < *max) {
                m.pop_last();
                m.insert(at, s);
            }
        }
    }

    pub fn merge(&mut self, o: &Spread) {
        self.events = self.events.saturating_add(o.events);
        self.capped |= o.capped;
        self.foreign |= o.foreign;
        for p in o.ports() {
            self.insert(*p);
        }
    }

    /// The kept ports, in no particular order.
    pub fn ports(&self) -> Box<dyn Iterator<Item = &PortSeen> + '_> {
        match &self.ports {
            Ports::Small(v) => Box::new(v.iter()),
            Ports::Large(m) => Box::new(m.values()),
            Ports::Sampled(m) => Box::new(m.values()),
        }
    }

    /// Kept ports.
    pub fn port_count(&self) -> u64 {
        match &self.ports {
            Ports::Small(v) => v.len() as u64,
            Ports::Large(m) => m.len() as u64,
            Ports::Sampled(m) => m.len() as u64,
        }
    }

    /// The record of one port, if kept.
    pub fn port(&self, key: u32) -> Option<&PortSeen> {
        match &self.ports {
            Ports::Small(v) => v.iter().find(|p| p.key == key),
            Ports::Large(m) => m.get(&key),
            Ports::Sampled(m) => m.get(&(port_rank(key), key)),
        }
    }

    /// Distinct ports without what the `trim` largest single-sensor contributors
    /// add above the next one (the module docs); past the cap under a seed,
    /// scaled from the sample to [`Spread::ports_estimate`].
    pub fn trimmed_ports(&self, trim: usize) -> u64 {
        let mut sole: FxHashMap<u32, u64> = FxHashMap::default();
        for p in self.ports().filter(|p| !p.multi) {
            *sole.entry(p.sensor).or_insert(0) += 1;
        }
        let mut v: Vec<u64> = sole.into_values().collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        let next = v.get(trim).copied().unwrap_or(0);
        let excess: u64 = v.iter().take(trim).map(|n| n - next).sum();
        let kept = self.port_count();
        let trimmed = kept - excess;
        let estimate = self.ports_estimate();
        if estimate == kept || kept == 0 {
            return trimmed;
        }
        (trimmed as f64 * estimate as f64 / kept as f64).round() as u64
    }

    /// Distinct ports the source reached: exact below the cap. Past it under a
    /// seed, estimated from the sample (k minimum values: the k-th smallest of
    /// uniform ranks covers about k-1 / n of the rank space); without a seed the
    /// kept ports (the smallest keys are no sample: a lower bound), and so for a
    /// sample drawn under another ranking ([`Spread::foreign`]).
    pub fn ports_estimate(&self) -> u64 {
        let kept = self.port_count();
        // Only a full sample is a bottom-k of the ports seen (a decoded part may
        // claim the cap with fewer).
        match self.sample_bound() {
            Some(largest)
                if kept >= SPREAD_CAP as u64
                    && !self.foreign
                    && crate::sample_seed::seed().is_some() =>
            {
                crate::sample_seed::kmv_estimate(kept, largest)
            }
            _ => kept,
        }
    }

    /// When ports were left out (`capped`), the largest rank kept: the record
    /// holds every port of lower rank the source reached (a record of fewer ports
    /// than the cap that claims it is taken at its word). `None` when every port
    /// seen is kept.
    pub fn sample_bound(&self) -> Option<u64> {
        if !self.capped {
            return None;
        }
        Some(match &self.ports {
            Ports::Sampled(m) => m.last_key_value().map_or(u64::MAX, |(at, _)| at.0),
            _ => self
                .ports()
                .map(|p| port_rank(p.key))
                .max()
                .unwrap_or(u64::MAX),
        })
    }

    /// Distinct sensors named in the records: a lower bound of the sensors that
    /// saw the source (a record keeps one sensor and whether there were more).
    pub fn sensors(&self) -> u64 {
        let mut s: Vec<u32> = self.ports().map(|p| p.sensor).collect();
        s.sort_unstable();
        s.dedup();
        s.len() as u64
    }

    pub fn heap_bytes(&self) -> usize {
        match &self.ports {
            Ports::Small(v) if v.spilled() => v.capacity() * std::mem::size_of::<PortSeen>(),
            Ports::Small(_) => 0,
            // A B-tree node holds up to 11 entries; count about 1.5× the entries.
            Ports::Large(m) => m.len() * (std::mem::size_of::<PortSeen>() + 4) * 3 / 2,
            Ports::Sampled(m) => m.len() * (std::mem::size_of::<PortSeen>() + 16) * 3 / 2,
        }
    }
}

/// Every source's spread in one window, by address hash.
#[derive(Clone, Debug, Default)]
pub struct Spreads {
    by_source: crate::keyed::KeyedMap<u64, Spread>,
}

impl Spreads {
    /// Forgets every source, keeping the table's capacity.
    pub fn clear(&mut self) {
        self.by_source.clear();
    }

    /// Records that `sensor` saw `ip` (address hash `h`) on port `key` `n` times.
    #[inline]
    pub fn add(&mut self, h: u64, ip: IpAddr, key: u32, sensor: SensorKey, n: u64) {
        let s = self.by_source.entry(h).or_insert_with(|| Spread::new(ip));
        s.events += n;
        s.insert(PortSeen::new(key, sensor, n));
    }

    pub fn merge(&mut self, o: &Spreads) {
        for (h, s) in &o.by_source {
            match self.by_source.get_mut(h) {
                Some(mine) => mine.merge(s),
                None => {
                    self.by_source.insert(*h, s.clone());
                }
            }
        }
    }

    /// Inserts a decoded source (merging if it is there already).
    pub fn insert_spread(&mut self, h: u64, s: Spread) {
        match self.by_source.get_mut(&h) {
            Some(mine) => mine.merge(&s),
            None => {
                self.by_source.insert(h, s);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Spread)> {
        self.by_source.iter()
    }

    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    pub fn get(&self, h: u64) -> Option<&Spread> {
        self.by_source.get(&h)
    }

    /// The sweepers of the window under `rule`, by address hash.
    pub fn sweepers(&self, rule: SweepRule) -> crate::keyed::KeyedMap<u64, &Spread> {
        if rule.min_ports == 0 {
            return crate::keyed::KeyedMap::default();
        }
        let min = u64::from(rule.min_ports);
        self.by_source
            .iter()
            // Cheap test first: a source with fewer ports than the rule cannot pass
            // (past the cap, the estimate may).
            .filter(|(_, s)| {
                (s.capped || s.port_count() >= min) && s.trimmed_ports(rule.trim) >= min
            })
            .map(|(h, s)| (*h, s))
            .collect()
    }

    pub fn heap_bytes(&self) -> usize {
        self.by_source.capacity() * (std::mem::size_of::<(u64, Spread)>() + 1)
            + self
                .by_source
                .values()
                .map(Spread::heap_bytes)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))
    }

    #[test]
    fn one_sensor_cannot_make_a_sweeper() {
        let mut s = Spread::new(ip());
        // The real port, seen by two sensors.
        s.insert(PortSeen::new(
            port_key(scanwatch_event::Protocol::Tcp, 1025),
            1,
            1,
        ));
        s.insert(PortSeen::new(
            port_key(scanwatch_event::Protocol::Tcp, 1025),
            2,
            1,
        ));
        // 300 invented ports from sensor 9 alone.
        for p in 0..300 {
            s.insert(PortSeen::new(
                port_key(scanwatch_event::Protocol::Tcp, 2000 + p),
                9,
                1,
            ));
        }
        assert_eq!(s.port_count(), 301);
        assert_eq!(s.trimmed_ports(1), 1);
        assert_eq!(s.trimmed_ports(0), 301);
    }

    #[test]
    fn a_sweep_across_sensors_stays_a_sweep() {
        let mut s = Spread::new(ip());
        for p in 0..400u16 {
            let sensor = u64::from(p % 8);
            s.insert(PortSeen::new(
                port_key(scanwatch_event::Protocol::Tcp, p),
                sensor,
                1,
            ));
        }
        // Eight sensors with 50 sole ports each: trimming one cuts nothing.
        assert_eq!(s.trimmed_ports(1), 400);
        assert_eq!(s.sensors(), 8);
    }

    #[test]
    fn without_a_seed_the_cap_keeps_the_smallest_keys_in_any_order() {
        let keys: Vec<u32> = (0..(SPREAD_CAP as u32 + 500))
            .map(|k| k * 7 % 65_521)
            .collect();
        let mut a = Spread::new(ip());
        for k in &keys {
            a.insert(PortSeen::new(*k, 1, 1));
        }
        let mut b = Spread::new(ip());
        for k in keys.iter().rev() {
            b.insert(PortSeen::new(*k, 1, 1));
        }
        assert!(a.capped && b.capped);
        let ka: Vec<u32> = a.ports().map(|p| p.key).collect();
        let kb: Vec<u32> = b.ports().map(|p| p.key).collect();
        assert_eq!(ka, kb);
        assert_eq!(ka.len(), SPREAD_CAP);
    }
}
