//! Surge detection: a per-port baseline learnt from the history of closed windows, a
//! score for how far a window is above it, and warnings with their evidence.
//!
//! The method, its reasons and its sources are in `docs/detection.md`. In short, per
//! (protocol, port) and per metric (distinct sources, events, distinct sensors):
//! - the baseline is the **median** of the metric over the last `history` windows,
//!   counting windows in which the port was silent as zero; the spread is the
//!   **MAD** (median absolute deviation) scaled by 1.4826, floored at the Poisson
//!   spread √max(median, 1). Median and MAD ignore earlier spikes and silent days;
//! - `z` is the robust z-score `(x − median) / spread`;
//! - `rise` is `log2((x + k) / (median + k))` with k = 5 for sources and 10 for
//!   events, so tiny counts cannot produce huge ratios;
//! - `breadth` is the share of the sensors reporting in this window that saw the port;
//! - `score = (0.6·rise_sources + 0.4·rise_events) · (0.5 + 0.5·breadth)`.
//!
//! Every metric is *trimmed* first, so that no single sensor (no `trim_sensors`
//! sensors) can inflate, suppress or steer it (docs/security.md): the events of
//! the `trim_sensors` busiest sensors, and the sources only one sensor saw of the
//! `trim_sensors` largest such contributors, are cut to the next sensor's size
//! (winsorised); the sensor count leaves the `trim_sensors` out. The history, the baselines, the gates and the
//! score all use the trimmed counts; the raw counts are reported beside them.
//!
//! A window is a surge warning only when every gate holds: enough history, at least
//! `min_sources` trimmed sources, at least `min_sensors` sensors besides the
//! trimmed ones, `z_sources ≥ min_z`, `rise_sources ≥ 1`
//! (at least about twice the baseline) and `score ≥ min_score`. A window that passes
//! the first gates but not the surge test is checked for a *trend* (a slow ramp):
//! the median of the last day against the median of the history before it.
//!
//! Nothing here reads the clock: time is the windows' event time only, so replaying
//! a log gives the same warnings as seeing it live.

pub mod report;
mod stats;

use smallvec::SmallVec;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use scanwatch_aggregate::{CellSummary, ClosedWindow, SensorKey, Sweep};
use scanwatch_event::{Protocol, Timestamp};

pub use stats::SortedWindow;

/// Detection settings. Every default is documented in `docs/detection.md`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectConfig {
    pub window_ms: i64,
    /// How far back the baseline looks.
    pub history_ms: i64,
    /// Windows of history needed before any warning (default 6).
    pub min_history_windows: usize,
    /// History needed before any warning, in milliseconds (default one day, so the
    /// first morning's rise of a daily cycle is not taken for a surge). Capped at
    /// `history_ms`.
    pub min_history_ms: i64,
    /// Distinct sources a window needs to be a warning (default 20).
    pub min_sources: u64,
    /// Distinct sensors besides the trimmed ones a window needs to be a warning
    /// (default 3, so with one trimmed sensor a warning needs four).
    pub min_sensors: u64,
    /// The largest contributors left out of every count (default 1): no group of
    /// this many sensors can inflate, suppress or steer a warning alone.
    pub trim_sensors: usize,
    /// Sensors that must have seen a source before it is named in a warning's top
    /// sources and in the blocklist (default 2; one trusted sensor is enough).
    pub blocklist_min_sensors: usize,
    /// Smallest robust z-score of sources (default 5).
    pub min_z: f64,
    /// Smallest score (default 1).
    pub min_score: f64,
    /// The span of the trend test: the median of the last `trend_span_ms` of windows
    /// is compared with the median of the history before it (default one day, so
    /// both sides hold whole daily cycles).
    pub trend_span_ms: i64,
    /// Smallest `log2` rise of the trend test (default 1.5, about 2.8×).
    pub min_trend_rise: f64,
    /// Sweepers a campaign (one network's sweepers in a window) needs for a sweep
    /// warning (default 2): a lone address probing many ports is every hour's
    /// background; it is set aside from the ports all the same.
    pub min_sweep_sources: u64,
    /// Read each window's expected level against the network's common rise (the
    /// network index, docs/detection.md "A changing network"; default on): more,
    /// busier or fewer sensors and the weekly cycle move every port together,
    /// an attack moves one.
    pub network_index: bool,
}

/// Ports per window the network index is read from: the busiest by trimmed sources.
pub const INDEX_PORTS: usize = 24;
/// Ports whose baseline has at least this many sources per window count towards
/// the index (smaller counts are too noisy to say how the network moved).
pub const INDEX_MIN_BASELINE: f64 = 5.0;
/// Ports the index needs; with fewer it is 1.
pub const INDEX_MIN_PORTS: usize = 5;

impl DetectConfig {
    pub fn new(window_ms: i64, history_ms: i64) -> DetectConfig {
        DetectConfig {
            window_ms,
            history_ms,
            min_history_windows: 6,
            min_history_ms: 86_400_000,
            min_sources: 20,
            min_sensors: 3,
            trim_sensors: 1,
            blocklist_min_sensors: 2,
            min_z: 5.0,
            min_score: 1.0,
            trend_span_ms: 86_400_000,
            min_trend_rise: 1.5,
            min_sweep_sources: 2,
            network_index: true,
        }
    }

    /// Windows in a full history.
    pub fn history_windows(&self) -> usize {
        (self.history_ms / self.window_ms).max(1) as usize
    }

    /// Windows of history needed before any warning: the larger of
    /// `min_history_windows` and `min_history_ms`, but never more than a full history.
    pub fn required_history_windows(&self) -> usize {
        let by_time =
            (self.min_history_ms.min(self.history_ms) + self.window_ms - 1) / self.window_ms;
        self.min_history_windows
            .max(by_time.max(0) as usize)
            .min(self.history_windows().max(self.min_history_windows))
    }
}

/// How bad a warning is, from its score.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Severity {
    #[default]
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Least severe first; a severity's index is its rank (the store's
    /// `severity_rank`).
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// 0 (info) … 4 (critical).
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// Score bands: info < 1.5 ≤ low < 2.5 ≤ medium < 3.3 ≤ high < 4.2 ≤ critical.
    pub fn from_score(score: f64) -> Severity {
        if score >= 4.2 {
            Severity::Critical
        } else if score >= 3.3 {
            Severity::High
        } else if score >= 2.5 {
            Severity::Medium
        } else if score >= 1.5 {
            Severity::Low
        } else {
            Severity::Info
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// Baseline of one metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricBaseline {
    /// Median over the history windows (silent windows count as zero).
    pub median: f64,
    /// 1.4826 × MAD, floored at √max(median, 1).
    pub spread: f64,
}

impl MetricBaseline {
    pub fn z(&self, x: f64) -> f64 {
        (x - self.median) / self.spread
    }

    /// The baseline of a network `f` times as active (median and spread scaled).
    pub fn scaled(&self, f: f64) -> MetricBaseline {
        MetricBaseline {
            median: self.median * f,
            spread: self.spread * f,
        }
    }
}

/// A cell's counts without its largest contributors (the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trimmed {
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
}

impl Trimmed {
    /// The counts of `c` with the `k` largest contributors cut down to the next
    /// one's size (winsorised): events by sensor, and the sources only one sensor
    /// saw. Honest sensors contribute alike, so this takes little from them; a
    /// sensor that alone adds hundreds of events or sources is cut to what its
    /// peers add. The sensor count leaves out `k` sensors outright.
    pub fn of(c: &CellSummary, k: usize) -> Trimmed {
        Trimmed {
            events: c.events.saturating_sub(excess(&c.top_sensors, k)),
            sources: c.sources.saturating_sub(excess(&c.sole_sources, k)),
            sensors: c.sensors.saturating_sub(k as u64),
        }
    }

    fn values(self) -> [u64; 3] {
        [self.events, self.sources, self.sensors]
    }
}

/// What the `k` largest of `v` (sorted, largest first) add above the (k+1)-th.
fn excess<K>(v: &[(K, u64)], k: usize) -> u64 {
    let next = v.get(k).map_or(0, |e| e.1);
    v.iter().take(k).map(|e| e.1.saturating_sub(next)).sum()
}

/// Baselines of a port at one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    pub events: MetricBaseline,
    pub sources: MetricBaseline,
    pub sensors: MetricBaseline,
    /// Windows the baseline was computed over.
    pub windows: usize,
}

/// What kind of rise a warning is about.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum AlertKind {
    /// One window far above the port's baseline.
    #[default]
    Surge,
    /// A sustained rise: the last day's median far above the history before it,
    /// though no single window stands out (a slow ramp).
    Trend,
    /// Sources of one network probing many ports each (a sweep), seen across the
    /// network: one warning per campaign, its sources kept out of every port's
    /// counts (docs/detection.md, "Sweeps").
    Sweep,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Surge => "surge",
            AlertKind::Trend => "trend",
            AlertKind::Sweep => "sweep",
        }
    }
}

/// Evidence of a trend warning.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrendEvidence {
    /// Median sources per window over the trend span (including this window).
    pub recent_sources: f64,
    /// Median sources per window over the history before the span.
    pub before_sources: f64,
    /// Windows in the span.
    pub span_windows: usize,
    /// `log2((recent + 5) / (before + 5))`.
    pub rise: f64,
}

/// A warning: one window of one port, with its evidence.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// Set for trend warnings.
    pub trend: Option<TrendEvidence>,
    pub proto: Protocol,
    pub port: u16,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    /// The counts without the largest contributors: what was scored.
    pub trimmed: Trimmed,
    /// The sensors whose events were trimmed (the busiest ones).
    pub trimmed_sensors: Vec<SensorKey>,
    /// Sensors that reported anything in the window.
    pub active_sensors: u64,
    pub baseline: Baseline,
    pub z_sources: f64,
    pub z_events: f64,
    pub rise_sources: f64,
    pub rise_events: f64,
    pub breadth: f64,
    /// Share of events from the busiest sensor.
    pub top_sensor_share: f64,
    pub score: f64,
    pub severity: Severity,
    /// The heaviest sources seen by at least `blocklist_min_sensors` sensors (or
    /// by a trusted one): what the blocklist takes.
    pub top_sources: Vec<(IpAddr, u64)>,
    /// The heaviest sources too few sensors saw: shown, never blocked.
    pub uncorroborated_sources: Vec<(IpAddr, u64)>,
    pub top_sensors: Vec<(SensorKey, u64)>,
    /// Start of the first window of this surge (consecutive warning windows of one
    /// port form one surge).
    pub episode_start: Timestamp,
    /// False for the first window of a surge, true for its later windows.
    pub is_update: bool,
    /// True when raised by re-evaluating a window with events that arrived after
    /// it had closed (the counts are then the window's on-time and late events).
    pub late: bool,
    /// How often the window's counts were revised by late events (0: never).
    pub revision: u32,
    /// For a warning first raised by a revision: how far (event time, ms) the
    /// centre had already closed windows past this one's end when the late events
    /// raised it (docs/time.md).
    pub late_by_ms: Option<i64>,
    /// Set for sweep warnings: the campaign. `proto`/`port` are then its busiest
    /// port, and the counts are the campaign's (no baseline: a sweep is not a
    /// rise of one port).
    pub sweep: Option<Sweep>,
    /// The network index the window was read against (1: the network as in its
    /// history; 2.3: every busy port 2.3× its baseline, as when busier sensors
    /// join). `baseline` is already scaled by it.
    pub network_index: f64,
}

impl Alert {
    /// What the warning is about within its window, as the store keys it beside
    /// the protocol and port: the kind's name, and for a sweep its network too
    /// (`sweep 203.0.113.0/24`), so two campaigns of one window stay apart.
    pub fn subject(&self) -> String {
        match &self.sweep {
            Some(sw) => format!("sweep {}/{}", sw.prefix, sw.prefix_len),
            None => self.kind.name().to_string(),
        }
    }

    /// Whether `self` and `o` are the same warning of a window (the same port and
    /// kind, or the same sweep campaign).
    pub fn same_subject(&self, o: &Alert) -> bool {
        self.kind == o.kind
            && match (&self.sweep, &o.sweep) {
                (Some(a), Some(b)) => (a.prefix, a.prefix_len) == (b.prefix, b.prefix_len),
                (None, None) => self.proto == o.proto && self.port == o.port,
                _ => false,
            }
    }

    /// "47×": trimmed sources over their baseline (baseline floored at 1).
    pub fn times_normal(&self) -> f64 {
        self.trimmed.sources as f64 / self.baseline.sources.median.max(1.0)
    }
}

/// Per-port history of recent non-silent windows.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct PortHistory {
    /// (window start, [events, sources, sensors]) of windows where the port was
    /// seen, oldest first. Two inline: most ports of a network's long tail are
    /// seen once or twice in a history span, and a heap allocation each (made and
    /// freed for tens of thousands of ports) was 7 % of `analyze`'s main thread.
    recent: SmallVec<[(i64, [u64; 3]); 2]>,
    /// (window start, episode start) of the last surge warning, for grouping
    /// windows into surges.
    last_alert: Option<(i64, i64)>,
    /// The same for trend warnings.
    last_trend: Option<(i64, i64)>,
}

impl PortHistory {
    fn evict_before(&mut self, t: i64) {
        let n = self.recent.partition_point(|(ws, _)| *ws < t);
        if n > 0 {
            self.recent.drain(..n);
        }
    }

    fn push(&mut self, ws: i64, vals: [u64; 3]) {
        self.recent.push((ws, vals));
    }

    /// The values of the window starting at `ws`, if the port was seen in it.
    fn get(&self, ws: i64) -> Option<[u64; 3]> {
        let i = self.recent.partition_point(|(t, _)| *t < ws);
        self.recent
            .get(i)
            .filter(|(t, _)| *t == ws)
            .map(|(_, v)| *v)
    }

    /// Sets the values of the window starting at `ws`, keeping the order.
    fn upsert(&mut self, ws: i64, vals: [u64; 3]) {
        let i = self.recent.partition_point(|(t, _)| *t < ws);
        match self.recent.get_mut(i) {
            Some((t, v)) if *t == ws => *v = vals,
            _ => self.recent.insert(i, (ws, vals)),
        }
    }

    /// The history windows in `[from, ws)`.
    fn range(&self, from: i64, ws: i64) -> impl Iterator<Item = &(i64, [u64; 3])> {
        let lo = self.recent.partition_point(|(t, _)| *t < from);
        let hi = self.recent.partition_point(|(t, _)| *t < ws);
        self.recent[lo..hi.max(lo)].iter()
    }

    /// The non-zero history values of metric `m` of windows in `[from, ws)`, sorted.
    /// Built on demand: only cells that pass the cheap gates (and the report's top
    /// ports) need a baseline, so the many ports of the long tail cost one
    /// push per window.
    fn sorted(&self, m: usize, from: i64, ws: i64) -> SortedWindow {
        SortedWindow::from_values(self.range(from, ws).map(|(_, v)| v[m]).collect())
    }
}

/// What the detector remembers of a closed window so that it can score it again
/// when the window is revised: the cells that pass the cheap gates (the only ones
/// that can warn) and the warnings they raised. Kept for one history span.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct WindowMemo {
    end: Timestamp,
    active_sensors: u64,
    candidates: Vec<CellSummary>,
    /// The window's sweeps (scored again with the window).
    sweeps: Vec<Sweep>,
    /// Its busiest ports, for its network index.
    index_ports: Vec<IndexPort>,
    alerts: Vec<Alert>,
    /// How often the window was revised.
    revision: u32,
}

/// What a revision changed: every warning of the revised window and of the later
/// windows it was scored again with (new or unchanged), and the warnings that no
/// longer hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Revision {
    /// Start of the revised window.
    pub window_start: Timestamp,
    /// The window's revision number (1 for its first revision).
    pub revision: u32,
    /// Every warning of the windows from the revised one on, as they stand now.
    pub alerts: Vec<Alert>,
    /// Warnings raised before (as they were raised) that no longer hold with the
    /// revised counts.
    pub withdrawn: Vec<Alert>,
    /// False when the window is older than the detector's memory (one history
    /// span): its counts went into the history (later baselines), but no window
    /// was scored again.
    pub rescored: bool,
}

/// The streaming detector. Feed it closed windows in time order.
#[derive(Debug)]
pub struct Detector {
    cfg: DetectConfig,
    ports: FxHashMap<(Protocol, u16), PortHistory>,
    first_window: Option<i64>,
    last_window: Option<i64>,
    /// Closed windows of the last history span, for revisions.
    memos: std::collections::BTreeMap<i64, WindowMemo>,
    /// Sensors the operator marked trusted: one of them corroborates a source.
    trusted: rustc_hash::FxHashSet<SensorKey>,
    /// Per sweep campaign (network, prefix length): (window start, episode start)
    /// of its last warning.
    /// Keyed by campaign prefixes a scanner picks (`scanwatch_aggregate::keyed`).
    sweeps: scanwatch_aggregate::keyed::KeyedMap<(IpAddr, u8), (i64, i64)>,
    /// The window being scored: its busiest ports (trimmed sources), for the
    /// trend side of the network index, and its index.
    window_ports: Vec<IndexPort>,
    index: f64,
    /// The window's trend-side index, computed at its first trend test.
    trend_common: std::cell::Cell<Option<f64>>,
}

/// What a [`Detector`] remembers, as a checkpoint keeps it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DetectorState {
    ports: Vec<((Protocol, u16), PortHistory)>,
    first_window: Option<i64>,
    last_window: Option<i64>,
    memos: Vec<(i64, WindowMemo)>,
    sweeps: Vec<((IpAddr, u8), (i64, i64))>,
    window_ports: Vec<IndexPort>,
    index: f64,
    trend_common: Option<f64>,
}

/// A busy port of a window: (protocol, port) and its trimmed sources.
type IndexPort = ((Protocol, u16), u64);

/// The `INDEX_PORTS` busiest ports of a window by trimmed sources (ties by port).
fn index_ports(cells: &[CellSummary], trim: usize) -> Vec<IndexPort> {
    let mut v: Vec<IndexPort> = cells
        .iter()
        .map(|c| ((c.proto, c.port), Trimmed::of(c, trim).sources))
        .collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(INDEX_PORTS);
    v
}

/// The median of `ratios`, at least 1; 1 when fewer than `INDEX_MIN_PORTS`.
fn index_of(mut ratios: Vec<f64>) -> f64 {
    if ratios.len() < INDEX_MIN_PORTS {
        return 1.0;
    }
    ratios.sort_unstable_by(f64::total_cmp);
    let n = ratios.len();
    let m = if n % 2 == 1 {
        ratios[n / 2]
    } else {
        (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0
    };
    m.max(1.0)
}

fn rise(x: f64, base: f64, k: f64) -> f64 {
    ((x + k) / (base + k)).log2()
}

impl Detector {
    pub fn new(cfg: DetectConfig) -> Detector {
        Detector {
            cfg,
            ports: FxHashMap::default(),
            first_window: None,
            last_window: None,
            memos: std::collections::BTreeMap::new(),
            trusted: rustc_hash::FxHashSet::default(),
            sweeps: Default::default(),
            window_ports: Vec::new(),
            index: 1.0,
            trend_common: std::cell::Cell::new(None),
        }
    }

    /// What the detector remembers (histories, the windows it can still revise,
    /// the surges and sweeps it is in), for a checkpoint; its settings and trusted
    /// sensors are not part of it.
    pub fn state(&self) -> DetectorState {
        let mut ports: Vec<_> = self.ports.iter().map(|(k, h)| (*k, h.clone())).collect();
        ports.sort_unstable_by_key(|(k, _)| *k);
        let mut sweeps: Vec<_> = self.sweeps.iter().map(|(k, v)| (*k, *v)).collect();
        sweeps.sort_unstable();
        DetectorState {
            ports,
            first_window: self.first_window,
            last_window: self.last_window,
            memos: self.memos.iter().map(|(k, m)| (*k, m.clone())).collect(),
            sweeps,
            window_ports: self.window_ports.clone(),
            index: self.index,
            trend_common: self.trend_common.get(),
        }
    }

    /// Takes up what [`Detector::state`] saved (keeping this detector's settings).
    pub fn restore(&mut self, s: DetectorState) {
        self.ports = s.ports.into_iter().collect();
        self.first_window = s.first_window;
        self.last_window = s.last_window;
        self.memos = s.memos.into_iter().collect();
        self.sweeps = s.sweeps.into_iter().collect();
        self.window_ports = s.window_ports;
        self.index = s.index;
        self.trend_common.set(s.trend_common);
    }

    /// The trusted sensors, in key order.
    pub fn trusted(&self) -> Vec<SensorKey> {
        let mut v: Vec<SensorKey> = self.trusted.iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// The sensors whose sightings corroborate a source on their own.
    pub fn set_trusted(&mut self, trusted: impl IntoIterator<Item = SensorKey>) {
        self.trusted = trusted.into_iter().collect();
    }

    /// How far back of a window the per-port values are kept: two history spans,
    /// so that any window the detector still remembers can be scored again on a
    /// full baseline.
    fn keep_ms(&self) -> i64 {
        2 * self.cfg.history_windows() as i64 * self.cfg.window_ms
    }

    /// How far back of the newest window a window can be revised and scored again.
    fn memo_ms(&self) -> i64 {
        self.cfg.history_windows() as i64 * self.cfg.window_ms
    }

    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// Windows of history available before window start `ws`.
    fn history_len(&self, ws: i64) -> usize {
        let Some(first) = self.first_window else {
            return 0;
        };
        let seen = ((ws - first) / self.cfg.window_ms).max(0) as usize;
        seen.min(self.cfg.history_windows())
    }

    /// The baseline of one port for the window starting at `ws`.
    pub fn baseline(&mut self, proto: Protocol, port: u16, ws: i64) -> Baseline {
        let n = self.history_len(ws);
        let from = ws - n as i64 * self.cfg.window_ms;
        let keep = ws - self.keep_ms();
        let h = self.ports.entry((proto, port)).or_default();
        h.evict_before(keep);
        let zeros = n.saturating_sub(h.range(from, ws).count());
        Baseline {
            events: metric(&h.sorted(0, from, ws), zeros),
            sources: metric(&h.sorted(1, from, ws), zeros),
            sensors: metric(&h.sorted(2, from, ws), zeros),
            windows: n,
        }
    }

    /// Evaluates one closed window, then adds it to the history. Windows must come in
    /// increasing start order; an older window is ignored (returns no alerts): use
    /// [`Detector::revise`] for it.
    pub fn observe(&mut self, w: &ClosedWindow) -> Vec<Alert> {
        let ws = w.start.0;
        if self.last_window.is_some_and(|l| ws <= l) {
            return Vec::new();
        }
        if self.first_window.is_none() {
            self.first_window = Some(ws);
        }
        let mut alerts = Vec::new();
        let ports = index_ports(&w.cells, self.cfg.trim_sensors);
        self.set_window(ws, ports.clone());
        for c in &w.cells {
            if let Some(a) = self.evaluate(w, c, true) {
                alerts.push(a);
            }
        }
        alerts.extend(self.sweep_alerts(w));
        let keep_from = ws - self.keep_ms();
        for c in &w.cells {
            let h = self.ports.entry((c.proto, c.port)).or_default();
            h.evict_before(keep_from);
            h.push(ws, Trimmed::of(c, self.cfg.trim_sensors).values());
        }
        self.last_window = Some(ws);
        self.remember(w, ports, alerts.clone(), 0);
        alerts
    }

    /// Keeps what a revision of `w` needs (`index_ports`: the window's
    /// [`index_ports`]), and forgets windows older than one history span.
    fn remember(
        &mut self,
        w: &ClosedWindow,
        index_ports: Vec<IndexPort>,
        alerts: Vec<Alert>,
        revision: u32,
    ) {
        let cfg = self.cfg;
        self.memos.insert(
            w.start.0,
            WindowMemo {
                end: w.end,
                active_sensors: w.active_sensors,
                candidates: w
                    .cells
                    .iter()
                    .filter(|c| passes_cheap_gates(&cfg, c))
                    .cloned()
                    .collect(),
                sweeps: w.sweeps.clone(),
                index_ports,
                alerts,
                revision,
            },
        );
        if let Some(last) = self.last_window {
            let keep = last - self.memo_ms();
            while self.memos.first_key_value().is_some_and(|(k, _)| *k < keep) {
                self.memos.pop_first();
            }
        }
    }

    /// Takes the complete counts of a window that had already closed (its on-time
    /// and late events together, merged exactly) and scores it and every later
    /// window again, as if the window had been complete when it closed: the
    /// warnings are then those a run over all the events in time order gives. New
    /// warnings are marked `late`; warnings that no longer hold are listed as
    /// withdrawn. A window newer than the last one closed is simply observed.
    /// `closed_before` is where windows were closed when the late events came: a
    /// warning the revision raises first says how far past its window that was.
    pub fn revise(&mut self, w: &ClosedWindow, closed_before: Option<i64>) -> Revision {
        let ws = w.start.0;
        let Some(last) = self.last_window.filter(|l| ws <= *l) else {
            let alerts = self.observe(w);
            return Revision {
                window_start: w.start,
                revision: 0,
                alerts,
                withdrawn: Vec::new(),
                rescored: true,
            };
        };
        // The counts replace what the history held for the window (they are the
        // whole window, not an increment).
        for c in &w.cells {
            self.ports
                .entry((c.proto, c.port))
                .or_default()
                .upsert(ws, Trimmed::of(c, self.cfg.trim_sensors).values());
        }
        if ws < last - self.memo_ms() {
            return Revision {
                window_start: w.start,
                revision: 0,
                alerts: Vec::new(),
                withdrawn: Vec::new(),
                rescored: false,
            };
        }
        if self.first_window.is_none_or(|f| ws < f) {
            self.first_window = Some(ws);
        }
        let (old_alerts, revision) = self
            .memos
            .get(&ws)
            .map_or((Vec::new(), 0), |m| (m.alerts.clone(), m.revision));
        let ports = index_ports(&w.cells, self.cfg.trim_sensors);
        self.remember(w, ports, old_alerts, revision + 1);
        // Episodes as they stood before the revised window.
        for h in self.ports.values_mut() {
            h.last_alert = None;
            h.last_trend = None;
        }
        self.sweeps.clear();
        for m in self.memos.range(..ws).map(|(_, m)| m) {
            for a in &m.alerts {
                if let Some(sw) = &a.sweep {
                    self.sweeps.insert(
                        (sw.prefix, sw.prefix_len),
                        (a.window_start.0, a.episode_start.0),
                    );
                    continue;
                }
                let h = self.ports.entry((a.proto, a.port)).or_default();
                let slot = match a.kind {
                    AlertKind::Surge => &mut h.last_alert,
                    AlertKind::Trend => &mut h.last_trend,
                    AlertKind::Sweep => continue,
                };
                *slot = Some((a.window_start.0, a.episode_start.0));
            }
        }
        let starts: Vec<i64> = self.memos.range(ws..).map(|(k, _)| *k).collect();
        let mut out = Revision {
            window_start: w.start,
            revision: revision + 1,
            alerts: Vec::new(),
            withdrawn: Vec::new(),
            rescored: true,
        };
        for start in starts {
            let Some(m) = self.memos.get(&start) else {
                continue;
            };
            let head = ClosedWindow {
                start: Timestamp(start),
                end: m.end,
                cells: Vec::new(),
                active_sensors: m.active_sensors,
                all_events: 0,
                port_events: 0,
                icmp_events: 0,
                late: false,
                sweeps: m.sweeps.clone(),
            };
            let candidates = m.candidates.clone();
            let m_revision = m.revision;
            let before = m.alerts.clone();
            let ports = m.index_ports.clone();
            self.set_window(start, ports);
            let mut now = Vec::new();
            let mut scored: Vec<Alert> = candidates
                .iter()
                .filter_map(|c| self.evaluate(&head, c, true))
                .collect();
            scored.extend(self.sweep_alerts(&head));
            for mut a in scored {
                a.revision = m_revision;
                match before.iter().find(|b| b.same_subject(&a)) {
                    Some(b) => (a.late, a.late_by_ms) = (b.late, b.late_by_ms),
                    None => {
                        a.late = true;
                        a.late_by_ms = closed_before.map(|cb| (cb - a.window_end.0).max(0));
                    }
                }
                now.push(a);
            }
            for b in &before {
                if !now.iter().any(|a| a.same_subject(b)) {
                    out.withdrawn.push(b.clone());
                }
            }
            out.alerts.extend(now.iter().cloned());
            if let Some(m) = self.memos.get_mut(&start) {
                m.alerts = now;
            }
        }
        out
    }

    /// Re-evaluates a window that had closed, now that late events for it arrived
    /// (`w` holds only the late events, as the aggregator gathered them): each
    /// cell is merged with what the history holds for that window (events add;
    /// distinct sources and sensors take the larger count, a lower bound of the
    /// union), scored against the baseline of the windows before it (surges only;
    /// the trend test looks at the days up to the newest window), and written back
    /// to the history so later baselines include the late events. `w`'s cells are
    /// updated to the merged counts. Warnings are marked `late`; live episodes are
    /// left as they were.
    pub fn observe_late(&mut self, w: &mut ClosedWindow) -> Vec<Alert> {
        let ws = w.start.0;
        let head = w.without_cells();
        let keep_from = self.last_window.map_or(i64::MIN, |l| l - self.keep_ms());
        let ports = self.memos.get(&ws).map_or_else(
            || index_ports(&w.cells, self.cfg.trim_sensors),
            |m| m.index_ports.clone(),
        );
        self.set_window(ws, ports);
        let mut alerts = Vec::new();
        for c in &mut w.cells {
            let key = (c.proto, c.port);
            let mut t = Trimmed::of(c, self.cfg.trim_sensors);
            if let Some(v) = self.ports.get(&key).and_then(|h| h.get(ws)) {
                c.events += v[0];
                c.sources = c.sources.max(v[1]);
                c.sensors = c.sensors.max(v[2]);
                t = Trimmed {
                    events: t.events + v[0],
                    sources: t.sources.max(v[1]),
                    sensors: t.sensors.max(v[2]),
                };
            }
            let saved = self.ports.get(&key).map(|h| (h.last_alert, h.last_trend));
            if let Some(mut a) = self.evaluate_trimmed(&head, c, false, t) {
                a.late = true;
                a.episode_start = head.start;
                a.is_update = false;
                alerts.push(a);
            }
            let h = self.ports.entry(key).or_default();
            if let Some((la, lt)) = saved {
                h.last_alert = la;
                h.last_trend = lt;
            } else {
                h.last_alert = None;
                h.last_trend = None;
            }
            if ws >= keep_from {
                h.upsert(ws, t.values());
            }
        }
        alerts
    }

    fn evaluate(&mut self, w: &ClosedWindow, c: &CellSummary, trends: bool) -> Option<Alert> {
        let t = Trimmed::of(c, self.cfg.trim_sensors);
        self.evaluate_trimmed(w, c, trends, t)
    }

    fn evaluate_trimmed(
        &mut self,
        w: &ClosedWindow,
        c: &CellSummary,
        trends: bool,
        t: Trimmed,
    ) -> Option<Alert> {
        let cfg = self.cfg;
        // Cheap gates first: most cells stop here without computing a baseline.
        if t.sources < cfg.min_sources || t.sensors < cfg.min_sensors {
            return None;
        }
        let top_sensor = c.top_sensors.first().map_or(0, |s| s.1);
        let share = top_sensor as f64 / c.events.max(1) as f64;
        let ws = w.start.0;
        let b = self.baseline(c.proto, c.port, ws);
        if b.windows < cfg.required_history_windows() {
            return None;
        }
        let b = Baseline {
            events: b.events.scaled(self.index),
            sources: b.sources.scaled(self.index),
            ..b
        };
        let (xs, xe) = (t.sources as f64, t.events as f64);
        let z_sources = b.sources.z(xs);
        let rise_sources = rise(xs, b.sources.median, 5.0);
        let rise_events = rise(xe, b.events.median, 10.0).max(0.0);
        // Breadth counts every sensor: one sensor moves it by one in `active` at most.
        let breadth = (c.sensors as f64 / w.active_sensors.max(1) as f64).min(1.0);
        let score = (0.6 * rise_sources + 0.4 * rise_events) * (0.5 + 0.5 * breadth);
        let surge = z_sources >= cfg.min_z && rise_sources >= 1.0 && score >= cfg.min_score;
        let (kind, trend, score) = if surge {
            (AlertKind::Surge, None, score)
        } else {
            if !trends {
                return None;
            }
            let tr = self.trend(t.sources, c, ws, b.windows)?;
            (AlertKind::Trend, Some(tr), tr.rise * (0.5 + 0.5 * breadth))
        };
        let h = self.ports.entry((c.proto, c.port)).or_default();
        // A surge (or trend) continues while warnings are at most one window apart.
        let slot = match kind {
            AlertKind::Surge | AlertKind::Sweep => &mut h.last_alert,
            AlertKind::Trend => &mut h.last_trend,
        };
        let (episode_start, is_update) = match *slot {
            Some((last, start)) if ws - last <= 2 * cfg.window_ms => (start, true),
            _ => (ws, false),
        };
        *slot = Some((ws, episode_start));
        let (top_sources, uncorroborated_sources) = self.corroborated(c);
        Some(Alert {
            kind,
            trend,
            proto: c.proto,
            port: c.port,
            window_start: w.start,
            window_end: w.end,
            events: c.events,
            sources: c.sources,
            sensors: c.sensors,
            targets: c.targets,
            trimmed: t,
            trimmed_sensors: c
                .top_sensors
                .iter()
                .take(cfg.trim_sensors)
                .map(|s| s.0)
                .collect(),
            active_sensors: w.active_sensors,
            baseline: b,
            z_sources,
            z_events: b.events.z(xe),
            rise_sources,
            rise_events,
            breadth,
            top_sensor_share: share,
            score,
            severity: Severity::from_score(score),
            top_sources,
            uncorroborated_sources,
            top_sensors: c.top_sensors.clone(),
            episode_start: Timestamp(episode_start),
            is_update,
            late: false,
            revision: 0,
            late_by_ms: None,
            sweep: None,
            network_index: self.index,
        })
    }

    /// The sweep warnings of a window: one per campaign of at least
    /// `min_sweep_sources` sweepers seen by at least `min_sensors` sensors besides
    /// the trimmed ones (a sweep one or two sensors saw is every sensor's daily
    /// noise). A campaign continues (an update) while
    /// its warnings are at most one window apart. The score is the campaign's
    /// size, `log2(1 + sweepers)`, times the breadth factor, and stays below 2.5,
    /// so a sweep is `info` or `low`: worth one line, never a page.
    fn sweep_alerts(&mut self, w: &ClosedWindow) -> Vec<Alert> {
        let cfg = self.cfg;
        let ws = w.start.0;
        let mut out = Vec::new();
        for sw in &w.sweeps {
            if sw.sensors < cfg.min_sensors + cfg.trim_sensors as u64
                || sw.sources < cfg.min_sweep_sources
            {
                continue;
            }
            let breadth = (sw.sensors as f64 / w.active_sensors.max(1) as f64).min(1.0);
            let score = ((1.0 + sw.sources as f64).log2() * (0.5 + 0.5 * breadth)).min(2.49);
            let slot = self
                .sweeps
                .entry((sw.prefix, sw.prefix_len))
                .or_insert((i64::MIN, ws));
            let (episode_start, is_update) =
                if slot.0 != i64::MIN && ws - slot.0 <= 2 * cfg.window_ms {
                    (slot.1, true)
                } else {
                    (ws, false)
                };
            *slot = (ws, episode_start);
            let (mut top, mut other) = (Vec::new(), Vec::new());
            for s in &sw.top_sources {
                let list = if s.sensors >= cfg.blocklist_min_sensors as u64 {
                    &mut top
                } else {
                    &mut other
                };
                list.push((s.ip, s.events));
            }
            let (proto, port) = sw
                .busiest_ports
                .first()
                .map_or((Protocol::Tcp, 0), |b| (b.0, b.1));
            let counts = Trimmed {
                events: sw.events,
                sources: sw.sources,
                sensors: sw.sensors,
            };
            out.push(Alert {
                kind: AlertKind::Sweep,
                trend: None,
                proto,
                port,
                window_start: w.start,
                window_end: w.end,
                events: sw.events,
                sources: sw.sources,
                sensors: sw.sensors,
                targets: 0,
                trimmed: counts,
                trimmed_sensors: Vec::new(),
                active_sensors: w.active_sensors,
                baseline: Baseline::default(),
                z_sources: 0.0,
                z_events: 0.0,
                rise_sources: 0.0,
                rise_events: 0.0,
                breadth,
                top_sensor_share: 0.0,
                score,
                severity: Severity::from_score(score),
                top_sources: top,
                uncorroborated_sources: other,
                top_sensors: Vec::new(),
                episode_start: Timestamp(episode_start),
                is_update,
                late: false,
                revision: 0,
                late_by_ms: None,
                sweep: Some(sw.clone()),
                network_index: 1.0,
            });
        }
        // Forget campaigns quiet for a whole history span.
        let keep = ws - self.memo_ms();
        self.sweeps.retain(|_, (last, _)| *last >= keep);
        out
    }

    /// The trend test (after GreyNoise's "recent average vs long-term average"): the
    /// median of sources over the last `trend_span_ms` (this window included) against
    /// the median over the history before it. Medians of whole days cancel the daily
    /// cycle and ignore single spikes. Needs a span of history before the span, and
    /// stays quiet while the port has a surge warning within the span (the surge
    /// already explains the rise).
    fn trend(
        &self,
        sources: u64,
        c: &CellSummary,
        ws: i64,
        history: usize,
    ) -> Option<TrendEvidence> {
        let cfg = self.cfg;
        let span = ((cfg.trend_span_ms / cfg.window_ms).max(1)) as usize;
        if history < 2 * span {
            return None;
        }
        let h = self.ports.get(&(c.proto, c.port))?;
        if h.last_alert
            .is_some_and(|(last, _)| ws - last <= span as i64 * cfg.window_ms)
        {
            return None;
        }
        let (r, b) = self.trend_medians(h, sources, ws, history, span);
        // The network's common rise over the same span (the busiest ports' own
        // trend ratios): a network that grew is not a trend of each port.
        let common = if cfg.network_index {
            match self.trend_common.get() {
                Some(c) => c,
                None => {
                    let c = index_of(
                        self.window_ports
                            .iter()
                            .filter_map(|(key, x)| {
                                let (rk, bk) =
                                    self.trend_medians(self.ports.get(key)?, *x, ws, history, span);
                                (bk >= INDEX_MIN_BASELINE).then_some((rk + 5.0) / (bk + 5.0))
                            })
                            .collect(),
                    );
                    self.trend_common.set(Some(c));
                    c
                }
            }
        } else {
            1.0
        };
        let rise = rise(r, b, 5.0) - common.log2();
        (r >= cfg.min_sources as f64 && rise >= cfg.min_trend_rise).then_some(TrendEvidence {
            recent_sources: r,
            before_sources: b,
            span_windows: span,
            rise,
        })
    }

    /// The median of sources per window over the trend span (this window, with
    /// `sources`, included) and over the history before it, silent windows as zeros.
    fn trend_medians(
        &self,
        h: &PortHistory,
        sources: u64,
        ws: i64,
        history: usize,
        span: usize,
    ) -> (f64, f64) {
        let cfg = self.cfg;
        let split = ws - (span as i64 - 1) * cfg.window_ms;
        let from = ws - history as i64 * cfg.window_ms;
        let mut recent = vec![sources];
        let mut before = Vec::new();
        for &(t, v) in h.range(from, ws) {
            if t >= split {
                recent.push(v[1]);
            } else {
                before.push(v[1]);
            }
        }
        let recent_zeros = span.saturating_sub(recent.len());
        let before_zeros = (history + 1 - span).saturating_sub(before.len());
        let (r, _) = SortedWindow::from_values(recent).median_mad_with_zeros(recent_zeros);
        let (b, _) = SortedWindow::from_values(before).median_mad_with_zeros(before_zeros);
        (r, b)
    }

    /// Sets the window being scored: its busiest ports and its network index.
    fn set_window(&mut self, ws: i64, ports: Vec<IndexPort>) {
        self.trend_common.set(None);
        self.index = if self.cfg.network_index {
            self.network_index(ws, &ports)
        } else {
            1.0
        };
        self.window_ports = ports;
    }

    /// The network index of the window starting at `ws`: the median, over its
    /// busiest ports whose baseline has at least `INDEX_MIN_BASELINE` sources, of
    /// `(sources + 5) / (baseline + 5)`, never below 1 (a quieter network never
    /// makes a port look higher), 1 with fewer than `INDEX_MIN_PORTS` such ports.
    /// One port's surge is one value of many: it does not move the median.
    fn network_index(&mut self, ws: i64, ports: &[IndexPort]) -> f64 {
        let need = self.cfg.required_history_windows();
        let mut ratios = Vec::with_capacity(ports.len());
        for ((proto, port), x) in ports {
            let b = self.baseline(*proto, *port, ws);
            if b.windows >= need && b.sources.median >= INDEX_MIN_BASELINE {
                ratios.push((*x as f64 + 5.0) / (b.sources.median + 5.0));
            }
        }
        index_of(ratios)
    }
}

impl Detector {
    /// The cell's heaviest sources split into those enough sensors saw (at least
    /// `blocklist_min_sensors`, or one trusted sensor) and the others, `top_n`
    /// (the cell's) of each, most events first.
    fn corroborated(&self, c: &CellSummary) -> (SourceList, SourceList) {
        let top_n = c.top_sources.len().max(1);
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        for s in &c.sightings {
            let ok = s.witnesses.len() >= self.cfg.blocklist_min_sensors.max(1)
                || s.witnesses.keys().iter().any(|k| self.trusted.contains(k));
            let list = if ok { &mut yes } else { &mut no };
            if list.len() < top_n {
                list.push((s.ip, s.events));
            }
        }
        (yes, no)
    }
}

/// (source, events), most events first.
type SourceList = Vec<(IpAddr, u64)>;

/// The gates that need no baseline (the trimmed sources and sensors).
fn passes_cheap_gates(cfg: &DetectConfig, c: &CellSummary) -> bool {
    let t = Trimmed::of(c, cfg.trim_sensors);
    t.sources >= cfg.min_sources && t.sensors >= cfg.min_sensors
}

fn metric(sorted: &SortedWindow, zeros: usize) -> MetricBaseline {
    let (median, mad) = sorted.median_mad_with_zeros(zeros);
    let floor = median.max(1.0).sqrt();
    MetricBaseline {
        median,
        spread: (1.4826 * mad).max(floor),
    }
}
