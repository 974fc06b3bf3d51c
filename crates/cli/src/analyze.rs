//! `scanwatch analyze`: read firewall logs, aggregate, detect, and print the port
//! report and the warnings (text, or JSON Lines with `--json`).

use std::io::Write;

use anyhow::{bail, Result};
use scanwatch_alert::{
    alert_json, by_severity, render_report_with, summary_json, window_json, RunStats,
};
use scanwatch_context::ContextData;
use scanwatch_event::{parse_duration, Timestamp};
use scanwatch_pipeline::{Output, Pipeline, PipelineConfig, Report};

use crate::input::{FileStats, Input, Merge, SensorId, SHOWN_ERRORS_PER_FILE};
use crate::intel::{load_context, ContextArgs};

/// What `--emit` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    Alerts,
    Windows,
    All,
}

/// Options of `analyze` (see `scanwatch analyze --help`).
#[derive(Clone, Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Log files to read: plain, .gz, or - for standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Log format: auto (detect per file), netfilter (alias iptables), dshield, jsonl, suricata, filterlog (pfSense/OPNsense), winfw (Windows Firewall), zeek, zeek-json, ulogd-json (ulogd2 JSON), pflog (OpenBSD pf via tcpdump), mikrotik, cisco-asa (ASA/FTD) or fastlog (Snort/Suricata fast.log); see docs/formats.md.
    #[arg(long, default_value = "auto")]
    pub format: String,
    #[command(flatten)]
    pub detection: DetectionArgs,
    /// Who the sensor of a line is: the input file, the line's host field, or the destination address.
    #[arg(long, value_enum, default_value = "file")]
    pub sensor_id: SensorId,
    /// Year for syslog timestamps that have none (default: from each file's modification time).
    #[arg(long)]
    pub year: Option<i32>,
    /// Write JSON Lines to stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// What to print: warnings, per-window port metrics, or both.
    #[arg(long, value_enum, default_value = "alerts")]
    pub emit: Emit,
    #[command(flatten)]
    pub context: ContextArgs,
    /// Threads: with 1, one thread reads, parses and aggregates; with more, each
    /// input is read and parsed on a thread of its own, a few blocks ahead of the
    /// merge and aggregation. The output is the same byte for byte (tested).
    /// Default: the machine's cores.
    #[arg(long)]
    pub threads: Option<std::num::NonZeroUsize>,
    /// Colour the severities: auto (on a terminal, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Exit with status 3 when a warning of this severity or worse was found
    /// (info, low, medium, high, critical): for cron jobs and CI.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<scanwatch_detect::Severity>,
}

/// When the text report is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to paint stdout: `auto` on a terminal without `NO_COLOR`
    /// (no-color.org: set and not empty).
    pub fn paint(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stdout())
            }
        }
    }
}

fn parse_severity(s: &str) -> std::result::Result<scanwatch_detect::Severity, String> {
    scanwatch_detect::Severity::parse(s)
        .ok_or_else(|| format!("{s:?}: expected info, low, medium, high or critical"))
}

/// How a run of `analyze` ended, for the exit status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Inputs that could not be read, plus one when no line at all could be parsed.
    pub failed: usize,
    /// A warning at or above `--fail-on` was found.
    pub fail_on_hit: bool,
}

/// Window, history and detection thresholds, shared by `analyze` and `demo`.
#[derive(Clone, Debug, clap::Args)]
pub struct DetectionArgs {
    /// Window length (e.g. 30s, 10m, 1h, 1d).
    #[arg(long, default_value = PipelineConfig::DEFAULT_WINDOW)]
    pub window: String,
    /// How far back the per-port baseline looks.
    #[arg(long, default_value = PipelineConfig::DEFAULT_HISTORY)]
    pub history: String,
    /// How long after a window's end its late events are still accepted
    /// (default: one window, at least 5m, at most 1h).
    #[arg(long)]
    pub lateness: Option<String>,
    /// History needed before any warning (at least 6 windows are always needed).
    #[arg(long, default_value = "1d")]
    pub min_history: String,
    /// Distinct sources a window needs before it can be a warning.
    #[arg(long, default_value_t = 20)]
    pub min_sources: u64,
    /// Distinct sensors a window needs before it can be a warning, besides the
    /// trimmed ones.
    #[arg(long, default_value_t = 3)]
    pub min_sensors: u64,
    /// The busiest sensors left out of every count (docs/security.md): no group
    /// of this many sensors can raise, hide or steer a warning alone.
    #[arg(long, default_value_t = 1)]
    pub trim_sensors: usize,
    /// Sensors that must have seen a source before it is in a warning's top
    /// sources and the blocklist (1-4).
    #[arg(long, default_value_t = 2)]
    pub blocklist_min_sensors: usize,
    /// Distinct ports a source must reach in one window to be a sweeper: set
    /// aside from every port's counts and reported as one sweep per network
    /// (docs/detection.md, "Sweeps"); 0 turns it off.
    #[arg(long, default_value_t = scanwatch_aggregate::SweepRule::DEFAULT_MIN_PORTS)]
    pub sweep_ports: u32,
    /// Read each window against the network's common rise (more, busier or fewer
    /// sensors, the weekly cycle: docs/detection.md, "A changing network").
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub network_index: bool,
}

impl DetectionArgs {
    pub fn config(&self) -> Result<PipelineConfig> {
        let window = parse_duration(&self.window)?;
        let history = parse_duration(&self.history)?;
        if history < window {
            bail!(
                "--history ({}) must be at least one --window ({})",
                self.history,
                self.window
            );
        }
        let mut cfg = PipelineConfig::new(window, history);
        if let Some(l) = &self.lateness {
            cfg.aggregate.lateness_ms = parse_duration(l)?;
        }
        cfg.detect.min_history_ms = parse_duration(&self.min_history)?;
        cfg.detect.min_sources = self.min_sources;
        cfg.detect.min_sensors = self.min_sensors;
        let cap = scanwatch_aggregate::WITNESS_CAP;
        if !(1..=cap).contains(&self.blocklist_min_sensors) {
            bail!(
                "blocklist_min_sensors must be 1-{cap}, not {}",
                self.blocklist_min_sensors
            );
        }
        if self.trim_sensors > 8 {
            bail!("trim_sensors must be 0-8, not {}", self.trim_sensors);
        }
        cfg.detect.trim_sensors = self.trim_sensors;
        cfg.detect.blocklist_min_sensors = self.blocklist_min_sensors;
        if self.sweep_ports == 1 {
            bail!("sweep_ports must be 0 (off) or at least 2, not 1");
        }
        cfg.detect.network_index = self.network_index;
        cfg.aggregate.sweep = scanwatch_aggregate::SweepRule {
            min_ports: self.sweep_ports,
            trim: self.trim_sensors,
        };
        Ok(cfg)
    }

    pub fn describe(&self) -> String {
        format!("window {}, history {}", self.window, self.history)
    }
}

/// Writes one JSON value as a line.
pub fn json_line(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Handles the pipeline's outputs for `--emit`.
pub struct Emitter<'a> {
    pub out: &'a mut dyn Write,
    pub json: bool,
    pub emit: Emit,
    pub error: Option<anyhow::Error>,
    /// Threat context for the warnings, when loaded.
    pub ctx: Option<&'a ContextData>,
}

impl Emitter<'_> {
    pub fn handle(&mut self, o: Output) {
        if self.error.is_some() {
            return;
        }
        if let Output::Window(w) = o {
            if matches!(self.emit, Emit::Windows | Emit::All) {
                let r = if self.json {
                    w.window.cells.iter().try_for_each(|c| {
                        json_line(self.out, &window_json(w.window.start, w.window.end, c))
                    })
                } else {
                    let mut s = String::new();
                    scanwatch_alert::window_text(&mut s, &w);
                    self.out.write_all(s.as_bytes()).map_err(Into::into)
                };
                if let Err(e) = r {
                    self.error = Some(e);
                }
            }
        }
    }

    /// Prints the end of the run: warnings (JSON) or the whole report (text).
    pub fn finish(&mut self, report: &Report, stats: &RunStats, header: &str) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.json {
            if matches!(self.emit, Emit::Alerts | Emit::All) {
                let builtin;
                let ctx = match self.ctx {
                    Some(c) => c,
                    None => {
                        builtin = ContextData::builtin();
                        &builtin
                    }
                };
                // Follow-on surges are linked in time order, then printed most
                // severe first.
                let mut in_time: Vec<&scanwatch_detect::Alert> = report.alerts.iter().collect();
                in_time.sort_by_key(|a| (a.window_start, a.proto.number(), a.port));
                let mut lineage = scanwatch_alert::lineage::Lineage::new();
                let mut alerts: Vec<_> = in_time
                    .into_iter()
                    .map(|a| {
                        let mut j = alert_json(a, ctx, &|k| report.sensor_name(k));
                        lineage.link(&mut j);
                        (a, j)
                    })
                    .collect();
                alerts.sort_by(|a, b| by_severity(a.0, b.0));
                for (_, j) in alerts {
                    json_line(self.out, &j)?;
                }
            }
            json_line(self.out, &summary_json(report, stats))?;
        } else if matches!(self.emit, Emit::Alerts | Emit::All) {
            self.out
                .write_all(render_report_with(report, stats, header, self.ctx).as_bytes())?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// Runs `analyze`. Returns the number of inputs that could not be read (the caller
/// turns a non-zero count into a failing exit status).
pub fn run(args: &AnalyzeArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome> {
    let cfg = args.detection.config()?;
    let format = match args.format.as_str() {
        "auto" => None,
        name => match scanwatch_formats::format_by_name(name) {
            Some(f) => Some(f),
            None => bail!(
                "unknown format {name:?}; choose auto or one of: {}",
                scanwatch_formats::format_names().join(", ")
            ),
        },
    };
    // The only wall-clock read of analyze: the default year of stdin's syslog lines.
    let now = crate::clock::wall_clock();
    let year_ref = args
        .year
        .and_then(|y| Timestamp::from_civil(y, 12, 31, 23, 59, 59, 0));
    let reference = |mtime: Option<Timestamp>| year_ref.or(mtime).unwrap_or(now);

    let mut failed = 0;
    let mut inputs = Vec::new();
    for f in &args.files {
        match Input::open(f, format, args.sensor_id, reference) {
            Ok(i) => inputs.push(i),
            Err(e) => {
                writeln!(err, "error: {e:#}")?;
                failed += 1;
            }
        }
    }
    if inputs.is_empty() {
        bail!("no input could be read");
    }
    let ctx_year = args.year.unwrap_or_else(|| {
        chrono::DateTime::from_timestamp_millis(now.0).map_or(1970, |d| chrono::Datelike::year(&d))
    });
    // Every warning carries its context: at least the port knowledge (built-in and
    // the system services database) and block rules; more with --data and --ids.
    let (ctx, benign) = load_context(&args.context, ctx_year, err)?;
    let mut pipeline = Pipeline::new(cfg);
    pipeline.set_benign(benign);
    pipeline.set_trusted(&ctx.explain.trusted_sensors);
    let mut ctx = Some(ctx);
    pipeline.set_emit_windows(matches!(args.emit, Emit::Windows | Emit::All));
    for i in &inputs {
        let (k, name) = i.file_sensor();
        if args.sensor_id == SensorId::File {
            pipeline.name_sensor(k, name);
        }
    }
    let mut report_err = |s: &FileStats, line: u64, msg: &str| {
        if s.errors <= SHOWN_ERRORS_PER_FILE {
            let _ = writeln!(err, "{}:{line}: {msg}", s.name);
        }
    };
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, std::num::NonZeroUsize::get);
    if threads > 1 {
        for i in &mut inputs {
            i.read_ahead();
        }
    }
    let mut merge = Merge::new(inputs, &mut report_err)?;
    let mut emitter = Emitter {
        out,
        json: args.json,
        emit: args.emit,
        error: None,
        ctx: None,
    };
    let mut n = 0u64;
    while let Some((sensor, e)) = merge.next(&mut report_err)? {
        pipeline.push(sensor, &e);
        n += 1;
        if n % 256 == 0 {
            for inp in &mut merge.inputs {
                for (k, name) in inp.new_sensors.drain(..) {
                    pipeline.name_sensor(k, &name);
                }
            }
        }
        pipeline.drain(&mut |o| emitter.handle(o));
    }
    for inp in &mut merge.inputs {
        for (k, name) in inp.new_sensors.drain(..) {
            pipeline.name_sensor(k, &name);
        }
    }
    let report = pipeline.finish(&mut |o| emitter.handle(o));
    // IDS alerts among the inputs (Suricata EVE, fast.log) can confirm explanations.
    if let Some(c) = ctx.as_mut() {
        for i in &mut merge.inputs {
            c.ids.append(&mut i.ids_hits);
        }
    }
    emitter.ctx = ctx.as_ref();
    let mut stats = RunStats {
        files: merge.inputs.len(),
        color: args.color.paint(),
        ..Default::default()
    };
    for i in &merge.inputs {
        stats.lines += i.stats.lines;
        stats.parse_errors += i.stats.errors;
        stats.skipped_lines += i.stats.skipped;
        if i.stats.errors > 0 {
            writeln!(
                err,
                "{}: {} of {} lines could not be parsed as {} ({} shown above)",
                i.stats.name,
                i.stats.errors,
                i.stats.lines,
                i.stats.format,
                i.stats.errors.min(SHOWN_ERRORS_PER_FILE)
            )?;
        }
    }
    if report.late_events > 0 {
        writeln!(
            err,
            "{} events arrived after their window had closed (lateness {} ms) and were re-evaluated in their own windows (warnings from them are marked late)",
            report.late_events, cfg.aggregate.lateness_ms
        )?;
    }
    let header = format!(
        "{}; formats: {}",
        args.detection.describe(),
        formats_used(&merge.inputs)
    );
    emitter.finish(&report, &stats, &header)?;
    if args.json {
        writeln!(
            err,
            "{} files, {} lines, {} events, {} parse errors, {} warnings",
            stats.files,
            stats.lines,
            report.events,
            stats.parse_errors,
            report.alerts.len()
        )?;
    }
    // Why there is no warning, when it is only that the history is too short.
    let need = cfg.detect.required_history_windows();
    if report.alerts.is_empty() && report.windows > 0 && report.windows <= need {
        let note = format!(
            "no warnings possible yet: {} of history, warnings need {} (--min-history {}, at least {} windows)",
            scanwatch_collector::human_ms(report.windows as i64 * cfg.aggregate.window_ms),
            scanwatch_collector::human_ms(need as i64 * cfg.aggregate.window_ms),
            args.detection.min_history,
            cfg.detect.min_history_windows,
        );
        if args.json {
            writeln!(err, "{note}")?;
        } else {
            writeln!(out, "{note}")?;
        }
    }
    // Every line failed: nothing was analysed, which is not a success.
    if stats.lines > 0 && report.events == 0 && stats.parse_errors > 0 {
        writeln!(
            err,
            "error: none of the {} lines could be parsed: nothing was analysed",
            stats.lines
        )?;
        failed += 1;
    }
    let fail_on_hit = args
        .fail_on
        .is_some_and(|min| report.alerts.iter().any(|a| a.severity >= min));
    Ok(Outcome {
        failed,
        fail_on_hit,
    })
}

fn formats_used(inputs: &[Input]) -> String {
    let mut f: Vec<&str> = inputs.iter().map(|i| i.stats.format).collect();
    f.sort_unstable();
    f.dedup();
    f.join(", ")
}
