//! The in-process pipeline: events in, closed windows and warnings out. It owns one
//! aggregator and one detector, runs the detector on every window as it closes, and
//! keeps what the report needs (the last window, the busiest windows, every
//! warning). It does no I/O and reads no clock; `analyze`, `demo` and the benches
//! drive it the same way.

use scanwatch_aggregate::{
    AggregateConfig, Aggregator, AggregatorState, ClosedWindow, DecodeError, SensorKey, Window,
};
use scanwatch_context::benign::BenignSet;
use scanwatch_detect::{Alert, DetectConfig, Detector, DetectorState, Revision};
use scanwatch_event::{Event, Timestamp};

pub use scanwatch_aggregate::sensor_key;
pub use scanwatch_detect::report::{PortRow, Report, WindowReport};

/// Settings of one pipeline run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PipelineConfig {
    pub aggregate: AggregateConfig,
    pub detect: DetectConfig,
    /// Top sources kept per cell, and ports per window in the report (default 10).
    pub top_n: usize,
    /// Busiest windows kept for the report (default 3).
    pub busiest: usize,
}

impl PipelineConfig {
    /// Default window: one hour. Default history: seven days.
    pub const DEFAULT_WINDOW: &'static str = "1h";
    pub const DEFAULT_HISTORY: &'static str = "7d";

    pub fn new(window_ms: i64, history_ms: i64) -> PipelineConfig {
        PipelineConfig {
            aggregate: AggregateConfig::new(window_ms),
            detect: DetectConfig::new(window_ms, history_ms),
            top_n: 10,
            busiest: 3,
        }
    }
}

/// What the pipeline produces as windows close.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Window(Box<WindowReport>),
    Alert(Box<Alert>),
    /// A closed window revised with late events (the centre's time model): the
    /// revised window comes first as an `Output::Window`, then this, holding every
    /// warning of the windows scored again and those withdrawn.
    Revision(Box<Revision>),
}

/// What a centre's pipeline holds between windows, as a checkpoint keeps it: the
/// open windows, the detector's memory, the sensors' names and the counters. The
/// report's kept windows and warnings (what `analyze` prints) are not part of it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PipelineState {
    aggregator: AggregatorState,
    detector: DetectorState,
    sensors: Vec<(SensorKey, String)>,
    events: u64,
    port_events: u64,
    icmp_events: u64,
    windows: usize,
    late_windows: usize,
    benign_events: u64,
    benign_by_label: Vec<(String, u64)>,
}

/// The pipeline.
#[derive(Debug)]
pub struct Pipeline {
    cfg: PipelineConfig,
    emit_windows: bool,
    /// Whether the report keeps every warning (`analyze` prints them at the
    /// end); a centre's does not: it stores them, and runs for months.
    keep_alerts: bool,
    agg: Aggregator,
    det: Detector,
    report: Report,
    benign: Option<BenignSet>,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Pipeline {
        Pipeline {
            emit_windows: true,
            keep_alerts: true,
            agg: Aggregator::new(cfg.aggregate, cfg.top_n),
            det: Detector::new(cfg.detect),
            cfg,
            report: Report::default(),
            benign: None,
        }
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// Whether closed windows are passed to the output callback (default true).
    /// Turning it off saves a copy of every window when only warnings are wanted.
    pub fn set_emit_windows(&mut self, on: bool) {
        self.emit_windows = on;
    }

    /// Names a sensor key (first name wins).
    /// The name given to a sensor key (hex of the key when none was given).
    pub fn sensor_name(&self, key: SensorKey) -> String {
        self.report.sensor_name(key)
    }

    /// Whether a sensor key has a name.
    pub fn knows_sensor(&self, key: SensorKey) -> bool {
        self.report.sensors.contains_key(&key)
    }

    pub fn name_sensor(&mut self, key: SensorKey, name: &str) {
        self.report
            .sensors
            .entry(key)
            .or_insert_with(|| name.to_string());
    }

    /// A pipeline for the centre: windows close only through
    /// [`Pipeline::close_through`], from every sensor's progress and the centre's
    /// clock (`docs/time.md`), and a closed window that late events change is
    /// listed by [`Pipeline::take_dirty`], to be revised from the complete stored
    /// data with [`Pipeline::revise`]. Nothing late is held in memory, nor the
    /// warnings in the report: the outputs carry them.
    pub fn new_centre(cfg: PipelineConfig) -> Pipeline {
        let mut p = Pipeline::new(cfg);
        p.set_external_closing();
        p
    }

    /// Turns a new pipeline into a centre's (see [`Pipeline::new_centre`]). Call it
    /// before anything is pushed: open windows are dropped.
    pub fn set_external_closing(&mut self) {
        self.agg = Aggregator::new_external(self.cfg.aggregate, self.cfg.top_n);
        self.keep_alerts = false;
    }

    /// Hands a warning to `out`, and keeps it in the report unless this is a
    /// centre's pipeline.
    fn warn(&mut self, a: Alert, out: &mut impl FnMut(Output)) {
        if self.keep_alerts {
            self.report.alerts.push(a.clone());
        }
        out(Output::Alert(Box::new(a)));
    }

    /// Closes every window that ends at or before `horizon` and processes it.
    pub fn close_through(&mut self, horizon: i64, out: &mut impl FnMut(Output)) {
        let closed = self.agg.close_through(horizon);
        self.process(closed, out);
    }

    /// Where windows are closed: windows starting before it are closed.
    pub fn closed_before(&self) -> Option<i64> {
        self.agg.closed_before()
    }

    /// Closed windows that late events changed since the last call, oldest first.
    pub fn take_dirty(&mut self) -> Vec<i64> {
        self.agg.take_dirty()
    }

    /// Whether a port event of `e`'s source is left out as a known benign scanner.
    fn is_benign(&self, e: &Event) -> bool {
        self.benign
            .as_ref()
            .is_some_and(|b| e.scanned_port().is_some() && b.label(e.src).is_some())
    }

    /// Aggregates the complete events of one window (benign scanners left out, as
    /// `push` leaves them out), for [`Pipeline::revise`].
    pub fn window_of<'a>(
        &self,
        events: impl IntoIterator<Item = (SensorKey, &'a Event)>,
    ) -> Window {
        let mut w = Window::default();
        let limit = self.cfg.aggregate.exact_limit;
        let spreads = self.cfg.aggregate.sweep.min_ports > 0;
        for (k, e) in events {
            if !self.is_benign(e) {
                w.add_with(k, e, limit, spreads);
            }
        }
        w
    }

    /// Revises the closed window starting at `ws` with its complete aggregate
    /// (every event of it, on time and late): emits the revised window, then the
    /// [`Revision`] of the warnings.
    pub fn revise(&mut self, ws: i64, w: &Window, out: &mut impl FnMut(Output)) {
        let mut cw = ClosedWindow::from_window(
            Timestamp(ws).floor(self.cfg.aggregate.window_ms),
            self.cfg.aggregate.window_ms,
            w,
            self.cfg.top_n,
            self.cfg.aggregate.sweep,
        );
        cw.late = true;
        let rev = self.det.revise(&cw, self.agg.closed_before());
        self.report.late_windows += 1;
        let top = self.top_rows(&cw);
        if self.emit_windows {
            out(Output::Window(Box::new(WindowReport { window: cw, top })));
        }
        out(Output::Revision(Box::new(rev)));
    }

    /// The sensors the operator trusts (by name): one of them corroborates a source
    /// for a warning's top sources and the blocklist (docs/security.md).
    pub fn set_trusted<'a>(&mut self, names: impl IntoIterator<Item = &'a String>) {
        self.det.set_trusted(
            names
                .into_iter()
                .map(|n| scanwatch_aggregate::sensor_key(n)),
        );
    }

    /// Known benign scanners: their unsolicited port events are counted apart
    /// (`Report::benign_events`) instead of being aggregated.
    pub fn set_benign(&mut self, set: BenignSet) {
        self.benign = (!set.is_empty()).then_some(set);
    }

    /// Adds one event; returns false if it was late and only counted.
    #[inline]
    pub fn push(&mut self, sensor: SensorKey, e: &Event) -> bool {
        self.report.events += u64::from(e.count);
        if let Some(b) = &self.benign {
            if e.scanned_port().is_some() {
                if let Some(label) = b.label(e.src) {
                    let n = u64::from(e.count);
                    self.report.benign_events += n;
                    match self.report.benign_by_label.get_mut(label) {
                        Some(c) => *c += n,
                        None => {
                            self.report.benign_by_label.insert(label.to_string(), n);
                        }
                    }
                    return true;
                }
            }
        }
        self.agg.add(sensor, e)
    }

    /// Merges a partial window aggregate made by an aggregator of the scale-out mode
    /// (which left known benign scanners out itself); returns false if the window had
    /// already closed and the part is re-evaluated as late.
    pub fn push_partial(&mut self, ws: i64, part: &Window, max_time: i64) -> bool {
        self.report.events += part.totals.all_events;
        self.agg.merge_window(ws, part, max_time)
    }

    /// Processes the windows that have closed so far.
    pub fn drain(&mut self, out: &mut impl FnMut(Output)) {
        let closed = self.agg.drain_closed();
        self.process(closed, out);
    }

    /// Closes everything (end of input) and returns the report.
    pub fn finish(mut self, out: &mut impl FnMut(Output)) -> Report {
        let closed = self.agg.finish();
        self.process(closed, out);
        self.report.late_events = self.agg.late_events();
        self.report
    }

    /// What the pipeline holds, for a checkpoint ([`PipelineState`]).
    pub fn state(&self) -> PipelineState {
        let r = &self.report;
        PipelineState {
            aggregator: self.agg.state(),
            detector: self.det.state(),
            sensors: r.sensors.iter().map(|(k, n)| (*k, n.clone())).collect(),
            events: r.events,
            port_events: r.port_events,
            icmp_events: r.icmp_events,
            windows: r.windows,
            late_windows: r.late_windows,
            benign_events: r.benign_events,
            benign_by_label: r
                .benign_by_label
                .iter()
                .map(|(l, n)| (l.clone(), *n))
                .collect(),
        }
    }

    /// Takes up a [`Pipeline::state`] (made under the same [`Pipeline::settings_digest`]).
    pub fn restore(&mut self, s: PipelineState) -> Result<(), DecodeError> {
        self.agg.restore(s.aggregator)?;
        self.det.restore(s.detector);
        let r = &mut self.report;
        r.sensors = s.sensors.into_iter().collect();
        r.events = s.events;
        r.port_events = s.port_events;
        r.icmp_events = s.icmp_events;
        r.windows = s.windows;
        r.late_windows = s.late_windows;
        r.benign_events = s.benign_events;
        r.benign_by_label = s.benign_by_label.into_iter().collect();
        Ok(())
    }

    /// A digest of everything that decides what the pipeline makes of its events
    /// (its settings, the trusted sensors, the benign scanners): a state saved
    /// under another digest would not be what these settings make of the events.
    pub fn settings_digest(&self) -> u64 {
        let text = format!(
            "{:?}|{}|{:?}|{:?}",
            self.cfg,
            self.emit_windows,
            self.det.trusted(),
            self.benign
        );
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    }

    /// Starts of the windows open right now, oldest first.
    pub fn open_window_starts(&self) -> Vec<i64> {
        self.agg.open_windows().keys().copied().collect()
    }

    /// Open cells right now (for the memory benchmark).
    pub fn open_cells(&self) -> usize {
        self.agg.open_cells()
    }

    /// Heap bytes of the open windows (for the memory benchmark).
    pub fn open_heap_bytes(&self) -> usize {
        self.agg
            .open_windows()
            .values()
            .map(|w| w.heap_bytes())
            .sum()
    }

    /// Up to `top_n` ports of a window with the most events, with their baselines.
    fn top_rows(&mut self, w: &ClosedWindow) -> Vec<PortRow> {
        let mut idx: Vec<usize> = (0..w.cells.len()).collect();
        idx.sort_by(|&a, &b| {
            let (ca, cb) = (&w.cells[a], &w.cells[b]);
            cb.events
                .cmp(&ca.events)
                .then((ca.proto, ca.port).cmp(&(cb.proto, cb.port)))
        });
        idx.truncate(self.cfg.top_n);
        idx.into_iter()
            .map(|i| {
                let c = &w.cells[i];
                PortRow {
                    baseline: self.det.baseline(c.proto, c.port, w.start.0),
                    cell: c.clone(),
                }
            })
            .collect()
    }

    fn process(&mut self, closed: Vec<ClosedWindow>, out: &mut impl FnMut(Output)) {
        for mut w in closed {
            if w.late {
                // Late events: the window is re-evaluated with them (merged counts),
                // its warnings marked late; the report's windows are not touched.
                let alerts = self.det.observe_late(&mut w);
                self.report.late_windows += 1;
                let top = self.top_rows(&w);
                if self.emit_windows {
                    out(Output::Window(Box::new(WindowReport { window: w, top })));
                }
                for a in alerts {
                    self.warn(a, out);
                }
                continue;
            }
            let top = self.top_rows(&w);
            let alerts = self.det.observe(&w);
            let wr = WindowReport { window: w, top };
            self.report.windows += 1;
            self.report.port_events += wr.window.port_events;
            self.report.icmp_events += wr.window.icmp_events;
            if self.report.first_window.is_none() {
                self.report.first_window = Some(wr.window.start);
            }
            // The report keeps windows without their cells: only the top rows are shown.
            let light = WindowReport {
                window: wr.window.without_cells(),
                top: wr.top.clone(),
            };
            self.keep_busiest(&light);
            self.report.last = Some(light);
            if self.emit_windows {
                out(Output::Window(Box::new(wr)));
            }
            for a in alerts {
                self.warn(a, out);
            }
        }
    }

    fn keep_busiest(&mut self, wr: &WindowReport) {
        let b = &mut self.report.busiest;
        let pos = b.partition_point(|x| x.window.port_events >= wr.window.port_events);
        if pos < self.cfg.busiest {
            b.insert(pos, wr.clone());
            b.truncate(self.cfg.busiest);
        }
    }
}
