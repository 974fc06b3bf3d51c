//! Aggregation on event time: per (window, protocol, port) the events, distinct
//! sources, distinct sensors, distinct targets and top sources of unsolicited
//! inbound traffic. Exact while a cell is small, mergeable sketches when it is large,
//! so partial aggregates from several processes merge into the same answer.
//!
//! Windows are aligned on the Unix epoch and close on *event time*: a window
//! `[s, s+W)` closes once an event at or after `s + W + lateness` has been seen (the
//! watermark). An event for a window that has already closed is *late*: it is
//! counted in [`Aggregator::late_events`] and gathered in a late window of its own
//! (same start), handed out with `late = true` once the watermark has moved on by
//! one more lateness (or at the end of input), so the detector can re-evaluate that
//! window with it; it is never dropped silently. The
//! caller reports it. Nothing here reads the clock.

pub mod codec;
mod counted;
pub mod keyed;
pub mod sample_seed;
pub mod source_day;
pub mod spread;
pub mod witness;

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use scanwatch_event::{Event, Protocol, Timestamp};

pub use codec::{
    decode_distinct, decode_partial, decode_window, encode_distinct, encode_distinct_into,
    encode_partial, encode_window, DecodeError, SensorTimes,
};
pub use counted::{key_hash, Counted, Distinct, DistinctUnion, HEAVY_MAP_SIZE, HLL_LG_K};
pub use spread::{port_key, port_of, PortSeen, Spread, Spreads, SweepRule, SPREAD_CAP};
pub use witness::{WitnessSet, Witnesses, WITNESS_CAP, WITNESS_SOURCES};

/// A source address as a sketch key: a type of our own so that it can carry the
/// frequent-items sketch's serialisation (see [`codec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceIp(pub IpAddr);

/// A sensor, named by the stable 64-bit hash of its name (see [`sensor_key`]), so that
/// partial aggregates made in different processes agree on who is who.
pub type SensorKey = u64;

/// Stable hash of a sensor name (xxh3; the same in every process and version).
pub fn sensor_key(name: &str) -> SensorKey {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// Stable hash of an address (IPv4 as its 4 bytes, IPv6 as its 16).
#[inline]
pub fn ip_hash(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => key_hash(&a.octets()),
        IpAddr::V6(a) => key_hash(&a.octets()),
    }
}

/// Aggregation settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregateConfig {
    /// Window length in milliseconds.
    pub window_ms: i64,
    /// How long after a window's end events for it are still accepted.
    pub lateness_ms: i64,
    /// Keys kept exactly per counter before switching to sketches.
    pub exact_limit: usize,
    /// When a source is a sweeper, set aside from the cells (`spread`).
    pub sweep: SweepRule,
}

impl AggregateConfig {
    /// Default exact limit: up to 64 distinct keys per counter are kept exactly.
    pub const DEFAULT_EXACT_LIMIT: usize = 64;

    pub fn new(window_ms: i64) -> AggregateConfig {
        AggregateConfig {
            window_ms,
            // Default lateness: one window, at least 5 minutes, at most one hour.
            lateness_ms: window_ms.clamp(300_000, 3_600_000),
            exact_limit: Self::DEFAULT_EXACT_LIMIT,
            sweep: SweepRule::default(),
        }
    }
}

/// Counters for one (window, protocol, port).
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub events: u64,
    /// Events as given, each once whatever its `count`: a line carries one
    /// source and one target, so no distinct count of the cell can exceed this
    /// (a sketch's estimate can: a sender can choose addresses that set its
    /// registers high, and a `count` of up to 65,535 makes the events no bound).
    pub lines: u64,
    pub sources: Counted<SourceIp>,
    pub targets: Distinct,
    pub sensors: Counted<SensorKey>,
    /// Which sensors saw each source (`witness`).
    pub witnesses: Witnesses,
}

impl Cell {
    /// Adds one event; `src_hash` is [`ip_hash`] of its source.
    #[inline]
    pub fn add(&mut self, sensor: SensorKey, e: &Event, src_hash: u64, limit: usize) {
        let n = u64::from(e.count);
        self.events += n;
        self.lines += 1;
        self.sources.add(SourceIp(e.src), n, limit);
        self.targets.add_hash(ip_hash(e.dst), limit);
        self.sensors.add(sensor, n, limit);
        self.witnesses.add(src_hash, sensor);
    }

    /// Merges a partial aggregate of the same (window, protocol, port).
    pub fn merge(&mut self, other: &Cell, limit: usize) {
        // Saturating: a decoded part's counts are not bounded by the decoder.
        self.events = self.events.saturating_add(other.events);
        self.lines = self.lines.saturating_add(other.lines);
        self.sources.merge(&other.sources, limit);
        self.targets.merge(&other.targets, limit);
        self.sensors.merge(&other.sensors, limit);
        self.witnesses.merge(&other.witnesses);
    }

    /// A distinct count of this cell held to what its lines can hold: a
    /// sketch's estimate can exceed them, a distinct count cannot.
    fn held(&self, n: u64) -> u64 {
        n.min(self.events).min(self.lines)
    }

    pub fn heap_bytes(&self) -> usize {
        self.sources.heap_bytes()
            + self.targets.heap_bytes()
            + self.sensors.heap_bytes()
            + self.witnesses.heap_bytes()
    }

    /// The read-out of this cell, every source.
    pub fn summary(&self, proto: Protocol, port: u16, top_n: usize) -> CellSummary {
        self.summary_without(proto, port, top_n, &Swept::default())
    }

    /// The read-out of this cell without the window's sweepers (`spread`): their
    /// sources and events are set aside (`swept_*`), not counted, named or
    /// trimmed.
    pub fn summary_without(
        &self,
        proto: Protocol,
        port: u16,
        top_n: usize,
        swept: &Swept<'_>,
    ) -> CellSummary {
        // From the witnesses (exact, or a keyed sample), not the sketch whose
        // public hash a sender can aim at (`Witnesses::distinct`); and never more
        // than the cell's events and lines, which no choice of addresses can
        // inflate.
        let mut witnessed = self.witnesses.entries();
        let raw_sources = self.held(
            self.witnesses
                .distinct_in(&witnessed)
                .unwrap_or_else(|| self.sources.distinct()),
        );
        let is_swept =
            |ip: IpAddr| !swept.sweepers.is_empty() && swept.sweepers.contains_key(&ip_hash(ip));
        if !swept.sweepers.is_empty() {
            witnessed.retain(|(h, _)| !swept.sweepers.contains_key(h));
        }
        let witnesses_of = |ip: IpAddr| {
            let h = ip_hash(ip);
            witnessed
                .binary_search_by_key(&h, |e| e.0)
                .map_or(WitnessSet::default(), |i| witnessed[i].1)
        };
        // The heaviest sources of each witness count (1, 2, … the cap), so that
        // sources only one sensor saw cannot push the corroborated ones out.
        let mut all = self.sources.top(usize::MAX, |a, b| a.cmp(b));
        let (mut swept_sources, mut swept_events) = (0, 0);
        if !swept.sweepers.is_empty() {
            if self.sources.is_exact() {
                // Exact: the swept sources are known one by one.
                all.retain(|(k, n)| {
                    let out = is_swept(k.0);
                    if out {
                        swept_sources += 1;
                        swept_events += n;
                    }
                    !out
                });
            } else {
                // Sketched: the sweepers that reached this port, from their own
                // records; past the spread's cap a record keeps a sample of its
                // ports, so one that did not keep this port is looked up in the
                // cell's witnesses (every source up to 4,096; the keyed sample
                // beyond), its events here taken as one probe.
                let key = port_key(proto, port);
                for (h, s) in swept.sweepers.iter() {
                    if let Some(p) = s.port(key) {
                        swept_sources += 1;
                        swept_events += u64::from(p.events);
                    } else if s.capped && self.witnesses.contains(*h) {
                        swept_sources += 1;
                        swept_events += 1;
                    }
                }
                all.retain(|(k, _)| !is_swept(k.0));
            }
        }
        let sources = raw_sources.saturating_sub(swept_sources);
        let mut per_class = [0usize; WITNESS_CAP + 1];
        let mut sightings = Vec::new();
        for (k, n) in &all {
            let w = witnesses_of(k.0);
            let class = &mut per_class[w.len()];
            if *class < top_n {
                *class += 1;
                sightings.push(Sighting {
                    ip: k.0,
                    events: *n,
                    witnesses: w,
                });
            }
        }
        CellSummary {
            proto,
            port,
            events: self.events.saturating_sub(swept_events),
            sources,
            sensors: self.sensors.distinct(),
            // Each line has one target: a sketch aimed at cannot read more.
            targets: self.held(self.targets.distinct()),
            top_sources: all.iter().take(top_n).map(|(k, n)| (k.0, *n)).collect(),
            top_sensors: self.sensors.top(top_n, |a, b| a.cmp(b)),
            sole_sources: {
                let mut v = self.witnesses.sole_counts_in(&witnessed, sources);
                v.truncate(top_n);
                v
            },
            sightings,
            swept_sources,
            swept_events,
            exact: self.sources.is_exact() && self.targets.is_exact() && self.sensors.is_exact(),
        }
    }
}

/// The sweepers of a window, by address hash, for reading its cells out.
#[derive(Debug, Default)]
pub struct Swept<'a> {
    pub sweepers: keyed::KeyedMap<u64, &'a Spread>,
}

/// A source of a cell with its events and the sensors that saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sighting {
    pub ip: IpAddr,
    pub events: u64,
    /// Empty when the source is outside the kept sample (`witness`).
    pub witnesses: WitnessSet,
}

/// What one (window, protocol, port) cell says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellSummary {
    pub proto: Protocol,
    pub port: u16,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    /// Up to `top_n` (source, events), most events first.
    pub top_sources: Vec<(IpAddr, u64)>,
    /// Up to `top_n` (sensor, events), most events first.
    pub top_sensors: Vec<(SensorKey, u64)>,
    /// Up to `top_n` (sensor, sources only that sensor saw), most first: what
    /// trimming the largest contributors removes from `sources`.
    pub sole_sources: Vec<(SensorKey, u64)>,
    /// The heaviest sources of each witness count (up to `top_n` of each), most
    /// events first: the candidates for corroborated top sources.
    pub sightings: Vec<Sighting>,
    /// Sources of the window's sweepers that reached this port: set aside, not in
    /// `sources`, `top_sources` or `sightings`.
    pub swept_sources: u64,
    /// Their events here: not in `events`.
    pub swept_events: u64,
    /// Whether every distinct count is exact (no sketch involved).
    pub exact: bool,
}

/// Per-window totals over all traffic, counted or not.
#[derive(Clone, Debug, Default)]
pub struct WindowTotals {
    /// Sensors that reported any event in the window (the denominator of breadth).
    pub sensors: Distinct,
    /// All events, including replies, outbound and ICMP.
    pub all_events: u64,
    /// Unsolicited inbound events to a port (what the cells count).
    pub port_events: u64,
    /// ICMP/ICMPv6 events (kept, but not ports).
    pub icmp_events: u64,
}

/// One window's aggregate, open or closed.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub cells: FxHashMap<(Protocol, u16), Cell>,
    pub totals: WindowTotals,
    /// The ports each source reached (`spread`): who is sweeping.
    pub spreads: Spreads,
}

impl Window {
    /// Empties it, keeping the capacity of its tables.
    pub fn clear(&mut self) {
        self.cells.clear();
        self.totals = WindowTotals::default();
        self.spreads.clear();
    }

    /// Adds one event seen by `sensor` (to its cell if it is an unsolicited inbound
    /// event to a port, and to the totals), and to the sources' spreads.
    #[inline]
    pub fn add(&mut self, sensor: SensorKey, e: &Event, limit: usize) {
        self.add_with(sensor, e, limit, true);
    }

    /// [`Window::add`], keeping the sources' spreads only when `spreads` (sweep
    /// recognition off: no need for them).
    #[inline]
    pub fn add_with(&mut self, sensor: SensorKey, e: &Event, limit: usize, spreads: bool) {
        let n = u64::from(e.count);
        self.totals.all_events += n;
        self.totals.sensors.add_hash(sensor, limit);
        if let Some((proto, port)) = e.scanned_port() {
            self.totals.port_events += n;
            let h = ip_hash(e.src);
            self.cells
                .entry((proto, port))
                .or_default()
                .add(sensor, e, h, limit);
            if spreads {
                self.spreads.add(h, e.src, port_key(proto, port), sensor, n);
            }
        } else if matches!(e.proto, Protocol::Icmp | Protocol::Icmpv6) {
            self.totals.icmp_events += n;
        }
    }

    /// Merges another partial aggregate of the same window.
    pub fn merge(&mut self, other: &Window, limit: usize) {
        for (k, c) in &other.cells {
            self.cells.entry(*k).or_default().merge(c, limit);
        }
        self.totals.sensors.merge(&other.totals.sensors, limit);
        // Saturating: a decoded part's counts are not bounded by the decoder.
        let t = &mut self.totals;
        t.all_events = t.all_events.saturating_add(other.totals.all_events);
        t.port_events = t.port_events.saturating_add(other.totals.port_events);
        t.icmp_events = t.icmp_events.saturating_add(other.totals.icmp_events);
        self.spreads.merge(&other.spreads);
    }

    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<((Protocol, u16), Cell)>()
            + self.cells.values().map(Cell::heap_bytes).sum::<usize>()
            + self.spreads.heap_bytes()
    }
}

/// A window that will not change any more, read out in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Cells sorted by (protocol, port).
    pub cells: Vec<CellSummary>,
    /// Sensors that reported anything in this window.
    pub active_sensors: u64,
    pub all_events: u64,
    pub port_events: u64,
    pub icmp_events: u64,
    /// True for a window of late events: events that arrived after their window had
    /// closed, aggregated on their own for re-evaluation (see the module docs).
    pub late: bool,
    /// The window's sweeps, one per campaign (sweepers grouped by network), most
    /// sources first. Their sources are set aside from `cells`.
    pub sweeps: Vec<Sweep>,
}

/// One sweep campaign of a window: the sweepers of one network (`/24` of IPv4,
/// `/48` of IPv6) together.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sweep {
    /// The network's first address.
    pub prefix: IpAddr,
    pub prefix_len: u8,
    /// Sweepers in it.
    pub sources: u64,
    /// Up to `top_n` of them, most ports first.
    pub top_sources: Vec<SweepSource>,
    /// Distinct (protocol, port)s they reached together: exact unless `capped`
    /// (a sweeper reached more ports than are kept); then estimated from the
    /// sample under a seed (`ports_estimated`), otherwise at least this many.
    pub ports: u64,
    pub capped: bool,
    /// `ports` is estimated from the sweepers' samples (`spread`).
    #[serde(default)]
    pub ports_estimated: bool,
    /// Distinct sensors that saw them (a lower bound: see `spread`).
    pub sensors: u64,
    pub events: u64,
    /// Up to `top_n` (protocol, port, sweepers that reached it), most first.
    /// When `capped`, a port some sweeper's sample left out counts it not: a
    /// count is then at least the sweepers that reached the port.
    pub busiest_ports: Vec<(Protocol, u16, u64)>,
}

/// One sweeper.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepSource {
    pub ip: IpAddr,
    /// Its distinct ports, trimmed (what made it a sweeper).
    pub ports: u64,
    pub events: u64,
    pub sensors: u64,
}

/// The network a sweeper is grouped by: its /24 (IPv4) or /48 (IPv6).
pub fn campaign_prefix(ip: IpAddr) -> (IpAddr, u8) {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            (IpAddr::V4(std::net::Ipv4Addr::new(o[0], o[1], o[2], 0)), 24)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            (
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)),
                48,
            )
        }
    }
}

/// The sweeps of a window from its sweepers (grouped by [`campaign_prefix`]).
fn sweeps_of(
    sweepers: &keyed::KeyedMap<u64, &Spread>,
    rule: SweepRule,
    top_n: usize,
) -> Vec<Sweep> {
    let mut groups: BTreeMap<(IpAddr, u8), Vec<&Spread>> = BTreeMap::new();
    for s in sweepers.values() {
        groups.entry(campaign_prefix(s.ip)).or_default().push(s);
    }
    let mut out: Vec<Sweep> = groups
        .into_iter()
        .map(|((prefix, prefix_len), members)| {
            let mut ports: FxHashMap<u32, u64> = FxHashMap::default();
            let mut sensors = rustc_hash::FxHashSet::default();
            let mut top: Vec<SweepSource> = Vec::with_capacity(members.len());
            for s in &members {
                for p in s.ports() {
                    *ports.entry(p.key).or_insert(0) += 1;
                    sensors.insert(p.sensor);
                }
                top.push(SweepSource {
                    ip: s.ip,
                    ports: s.trimmed_ports(rule.trim),
                    events: s.events,
                    sensors: s.sensors(),
                });
            }
            top.sort_by(|a, b| {
                b.ports
                    .cmp(&a.ports)
                    .then(b.events.cmp(&a.events))
                    .then(a.ip.cmp(&b.ip))
            });
            top.truncate(top_n);
            // Past the cap a sweeper keeps the ports of smallest rank, so below the
            // least of the capped records' bounds every sweeper's record is whole:
            // under a seed those ports are a random sample of the campaign's
            // ports, scaled to estimate them all (without a seed the smallest keys
            // are no sample, nor is a record sampled under another ranking, and
            // the count stays a lower bound).
            let foreign = members.iter().any(|s| s.foreign);
            let bound = members.iter().filter_map(|s| s.sample_bound()).min();
            let bound = bound.filter(|_| !foreign);
            let (total, estimated) = match bound {
                Some(b) if sample_seed::seed().is_some() => {
                    let m = ports.keys().filter(|k| spread::port_rank(**k) <= b).count();
                    let m = m as u64;
                    (
                        sample_seed::kmv_estimate(m, b).max(ports.len() as u64),
                        true,
                    )
                }
                _ => (ports.len() as u64, false),
            };
            // Ranked over every port kept (the busiest port names the warning): a
            // count is exact below the bound, at least that many above it.
            let mut busiest: Vec<(u32, u64)> = ports.iter().map(|(k, n)| (*k, *n)).collect();
            busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            busiest.truncate(top_n);
            Sweep {
                prefix,
                prefix_len,
                sources: members.len() as u64,
                top_sources: top,
                ports: total,
                capped: members.iter().any(|s| s.capped),
                ports_estimated: estimated,
                sensors: sensors.len() as u64,
                // Saturating, as merging a decoded part's spreads is.
                events: members.iter().fold(0u64, |n, s| n.saturating_add(s.events)),
                busiest_ports: busiest
                    .into_iter()
                    .map(|(k, n)| {
                        let (p, port) = port_of(k);
                        (p, port, n)
                    })
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.sources
            .cmp(&a.sources)
            .then(b.ports.cmp(&a.ports))
            .then(a.prefix.cmp(&b.prefix))
    });
    out
}

impl ClosedWindow {
    /// The same window with its cells left out (totals only).
    pub fn without_cells(&self) -> ClosedWindow {
        ClosedWindow {
            start: self.start,
            end: self.end,
            cells: Vec::new(),
            active_sensors: self.active_sensors,
            all_events: self.all_events,
            port_events: self.port_events,
            icmp_events: self.icmp_events,
            late: self.late,
            sweeps: self.sweeps.clone(),
        }
    }

    /// The read-out of a window: its sweepers under `rule` set aside as sweeps,
    /// every cell without them.
    pub fn from_window(
        start: Timestamp,
        window_ms: i64,
        w: &Window,
        top_n: usize,
        rule: SweepRule,
    ) -> ClosedWindow {
        let swept = Swept {
            sweepers: w.spreads.sweepers(rule),
        };
        // The cells in (protocol, port) order, sorted before they are summarised:
        // moving the summaries (large) was a twentieth of the aggregation's profile.
        let mut order: Vec<(&(Protocol, u16), &Cell)> = w.cells.iter().collect();
        order.sort_unstable_by_key(|(k, _)| **k);
        let cells: Vec<CellSummary> = order
            .into_iter()
            .map(|((p, port), c)| c.summary_without(*p, *port, top_n, &swept))
            .collect();
        ClosedWindow {
            start,
            end: Timestamp(start.0 + window_ms),
            cells,
            active_sensors: w.totals.sensors.distinct(),
            all_events: w.totals.all_events,
            port_events: w.totals.port_events,
            icmp_events: w.totals.icmp_events,
            late: false,
            sweeps: sweeps_of(&swept.sweepers, rule, top_n),
        }
    }
}

/// What an [`Aggregator`] holds, as a checkpoint keeps it: each window in the
/// partial-aggregate encoding ([`encode_window`]).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AggregatorState {
    open: Vec<(i64, Vec<u8>)>,
    watermark: Option<i64>,
    closed_before: Option<i64>,
    late_events: u64,
    /// Written empty and not read: the late events per window start that
    /// builds before 2026-12-07 kept (without bound) and saved here; kept so a
    /// checkpoint of this build still reads in one of those.
    #[serde(default)]
    late_windows: Vec<(i64, u64)>,
    late_open: Vec<(i64, Vec<u8>, i64)>,
    dirty: Vec<i64>,
}

/// Streaming aggregator: feed events in roughly time order, collect closed windows.
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggregateConfig,
    top_n: usize,
    open: BTreeMap<i64, Window>,
    watermark: Option<i64>,
    /// Start of the earliest window that is still open; earlier ones are closed.
    closed_before: Option<i64>,
    late_events: u64,
    /// Late events waiting to be re-evaluated, per window start, with the watermark
    /// when the first of them arrived: a late window is handed out once the
    /// watermark has moved on by one more lateness (so late events that arrive
    /// together are re-evaluated together), or at the end of input.
    late_open: BTreeMap<i64, (Window, i64)>,
    /// Closing driven from outside ([`Aggregator::close_through`], the centre's
    /// time model): the watermark closes nothing, and a late event only marks its
    /// window for revision (`dirty`), it is not held here.
    external: bool,
    /// Starts of closed windows that late events changed, to be revised from the
    /// complete stored data.
    dirty: std::collections::BTreeSet<i64>,
    /// The last closed window, emptied, for the next one to open: its tables keep
    /// their capacity, so a new window does not grow them again from nothing (the
    /// rehashing and fresh pages were a tenth of the aggregation's profile).
    spare: Option<Window>,
}

impl Aggregator {
    pub fn new(cfg: AggregateConfig, top_n: usize) -> Aggregator {
        Aggregator {
            cfg,
            top_n,
            open: BTreeMap::new(),
            watermark: None,
            closed_before: None,
            late_events: 0,
            late_open: BTreeMap::new(),
            external: false,
            dirty: std::collections::BTreeSet::new(),
            spare: None,
        }
    }

    /// An aggregator whose windows close only when told ([`Aggregator::close_through`]):
    /// the centre decides from every sensor's progress and its own clock
    /// (`docs/time.md`). A late event marks its window for revision
    /// ([`Aggregator::take_dirty`]) instead of being held in memory.
    pub fn new_external(cfg: AggregateConfig, top_n: usize) -> Aggregator {
        Aggregator {
            external: true,
            ..Aggregator::new(cfg, top_n)
        }
    }

    /// Closes every open window that ends at or before `horizon`, oldest first; a
    /// later event for one of them is late.
    ///
    /// Window `[ws, ws+W)` closes iff ws + W <= horizon, i.e. ws < floor(horizon/W)*W.
    pub fn close_through(&mut self, horizon: i64) -> Vec<ClosedWindow> {
        let cb = horizon.div_euclid(self.cfg.window_ms) * self.cfg.window_ms;
        let mut out = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= cb {
                break;
            }
            let (ws, mut w) = entry.remove_entry();
            out.push(ClosedWindow::from_window(
                Timestamp(ws),
                self.cfg.window_ms,
                &w,
                self.top_n,
                self.cfg.sweep,
            ));
            w.clear();
            self.spare = Some(w);
        }
        self.closed_before = Some(self.closed_before.map_or(cb, |old| old.max(cb)));
        out
    }

    /// Where windows are closed: windows starting before it are closed.
    pub fn closed_before(&self) -> Option<i64> {
        self.closed_before
    }

    /// What the aggregator holds (its open windows, encoded as partials are, and
    /// where it has closed), for a checkpoint.
    pub fn state(&self) -> AggregatorState {
        let enc =
            |m: &BTreeMap<i64, Window>| m.iter().map(|(ws, w)| (*ws, encode_window(w))).collect();
        AggregatorState {
            open: enc(&self.open),
            watermark: self.watermark,
            closed_before: self.closed_before,
            late_events: self.late_events,
            late_windows: Vec::new(),
            late_open: self
                .late_open
                .iter()
                .map(|(ws, (w, at))| (*ws, encode_window(w), *at))
                .collect(),
            dirty: self.dirty.iter().copied().collect(),
        }
    }

    /// Takes up what [`Aggregator::state`] saved (keeping this aggregator's
    /// settings); refuses a window that does not decode.
    pub fn restore(&mut self, s: AggregatorState) -> Result<(), DecodeError> {
        let mut open = BTreeMap::new();
        for (ws, bytes) in s.open {
            open.insert(ws, decode_window(&bytes)?);
        }
        let mut late_open = BTreeMap::new();
        for (ws, bytes, at) in s.late_open {
            late_open.insert(ws, (decode_window(&bytes)?, at));
        }
        self.open = open;
        self.late_open = late_open;
        self.watermark = s.watermark;
        self.closed_before = s.closed_before;
        self.late_events = s.late_events;
        self.dirty = s.dirty.into_iter().collect();
        Ok(())
    }

    /// The closed windows late events changed since the last call, oldest first.
    pub fn take_dirty(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    pub fn config(&self) -> &AggregateConfig {
        &self.cfg
    }

    /// Adds one event seen by `sensor`. Returns false if it was late (its window had
    /// already closed): late events are counted and gathered in a late window of
    /// their own, which the next drain hands out (marked `late`) for re-evaluation.
    #[inline]
    pub fn add(&mut self, sensor: SensorKey, e: &Event) -> bool {
        let ws = e.time.floor(self.cfg.window_ms).0;
        let mut late = false;
        if let Some(cb) = self.closed_before {
            if ws < cb {
                self.late_events += u64::from(e.count);
                late = true;
            }
        }
        let limit = self.cfg.exact_limit;
        if late && self.external {
            self.dirty.insert(ws);
            return false;
        }
        let w = if late {
            let since = self.watermark.unwrap_or(e.time.0);
            &mut self
                .late_open
                .entry(ws)
                .or_insert_with(|| (Window::default(), since))
                .0
        } else {
            let spare = &mut self.spare;
            self.open
                .entry(ws)
                .or_insert_with(|| spare.take().unwrap_or_default())
        };
        w.add_with(sensor, e, limit, self.cfg.sweep.min_ports > 0);
        if late {
            return false;
        }
        self.watermark = Some(self.watermark.map_or(e.time.0, |m| m.max(e.time.0)));
        true
    }

    /// Merges a partial aggregate of window `ws` made elsewhere (an aggregator of
    /// the scale-out mode, [`codec`]) whose latest event is at `max_time`: exactly
    /// what adding its events one by one would do, as one step. A part of a window
    /// that has already closed is late, like a late event.
    pub fn merge_window(&mut self, ws: i64, part: &Window, max_time: i64) -> bool {
        let ws = Timestamp(ws).floor(self.cfg.window_ms).0;
        let limit = self.cfg.exact_limit;
        let late = self.closed_before.is_some_and(|cb| ws < cb);
        if late {
            let n = part.totals.all_events;
            self.late_events += n;
            if self.external {
                self.dirty.insert(ws);
                return false;
            }
            let since = self.watermark.unwrap_or(max_time);
            self.late_open
                .entry(ws)
                .or_insert_with(|| (Window::default(), since))
                .0
                .merge(part, limit);
            return false;
        }
        self.open.entry(ws).or_default().merge(part, limit);
        self.watermark = Some(self.watermark.map_or(max_time, |m| m.max(max_time)));
        true
    }

    /// Windows that closed because the watermark passed their end plus lateness,
    /// oldest first. Windows with no events in between are not produced (the
    /// detector treats missing windows as zero).
    pub fn drain_closed(&mut self) -> Vec<ClosedWindow> {
        let Some(wm) = self.watermark.filter(|_| !self.external) else {
            return Vec::new();
        };
        let mut out = self.close_through(wm - self.cfg.lateness_ms);
        out.extend(self.drain_late(Some(wm)));
        out
    }

    /// The windows of late events that have waited one lateness of watermark (all
    /// of them with `None`, at the end of input), oldest first, marked `late`.
    fn drain_late(&mut self, watermark: Option<i64>) -> Vec<ClosedWindow> {
        let lateness = self.cfg.lateness_ms;
        let due: Vec<i64> = self
            .late_open
            .iter()
            .filter(|(_, (_, since))| watermark.is_none_or(|wm| wm - since >= lateness))
            .map(|(ws, _)| *ws)
            .collect();
        due.into_iter()
            .filter_map(|ws| {
                let (w, _) = self.late_open.remove(&ws)?;
                let mut c = ClosedWindow::from_window(
                    Timestamp(ws),
                    self.cfg.window_ms,
                    &w,
                    self.top_n,
                    self.cfg.sweep,
                );
                c.late = true;
                Some(c)
            })
            .collect()
    }

    /// Closes every remaining window (end of input), oldest first.
    pub fn finish(&mut self) -> Vec<ClosedWindow> {
        let open = std::mem::take(&mut self.open);
        let out: Vec<ClosedWindow> = open
            .into_iter()
            .map(|(ws, w)| {
                ClosedWindow::from_window(
                    Timestamp(ws),
                    self.cfg.window_ms,
                    &w,
                    self.top_n,
                    self.cfg.sweep,
                )
            })
            .collect();
        if let Some(last) = out.last() {
            self.closed_before = Some(last.end.0);
        }
        let mut out = out;
        out.extend(self.drain_late(None));
        out
    }

    /// Events that arrived after their window had closed.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Open windows, for inspection and the memory benchmark.
    pub fn open_windows(&self) -> &BTreeMap<i64, Window> {
        &self.open
    }

    /// Number of open (window, protocol, port) cells.
    pub fn open_cells(&self) -> usize {
        self.open.values().map(|w| w.cells.len()).sum()
    }
}
