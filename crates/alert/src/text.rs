//! The text report: a top-ports table like the Internet Storm Center's, the busiest
//! windows, and every warning, most severe first, each explained in a sentence.

use std::collections::BTreeMap;
use std::fmt::Write;

use scanwatch_context::{port_info, service_name};
use scanwatch_detect::Alert;
use scanwatch_pipeline::{PortRow, Report, WindowReport};

use crate::{base_num, by_severity, summary, thousands, times, window_span};

/// Input statistics the reader collected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub files: usize,
    pub lines: u64,
    pub parse_errors: u64,
    pub skipped_lines: u64,
}

fn ratio(x: u64, base: f64) -> String {
    times(x as f64 / base.max(1.0))
}

fn table(out: &mut String, rows: &[PortRow]) {
    let _ = writeln!(
        out,
        "  {:<10} {:<15} {:>9} {:>8} {:>8} {:>8}   {:>16} {:>16}",
        "port",
        "service",
        "events",
        "sources",
        "sensors",
        "targets",
        "sources/baseline",
        "events/baseline"
    );
    for r in rows {
        let c = &r.cell;
        let svc: String = service_name(c.proto, c.port).chars().take(15).collect();
        let _ = writeln!(
            out,
            "  {:<10} {:<15} {:>9} {:>8} {:>8} {:>8}   {:>16} {:>16}",
            format!("{}/{}", c.proto, c.port),
            svc,
            thousands(c.events),
            thousands(c.sources),
            thousands(c.sensors),
            thousands(c.targets),
            format!(
                "{} ({})",
                ratio(c.sources, r.baseline.sources.median),
                base_num(r.baseline.sources.median)
            ),
            format!(
                "{} ({})",
                ratio(c.events, r.baseline.events.median),
                base_num(r.baseline.events.median)
            ),
        );
    }
}

/// One closed window as a small table (for `--emit windows` in text mode).
pub fn window_text(out: &mut String, w: &WindowReport) {
    window_block(out, "Window", w);
}

fn window_block(out: &mut String, title: &str, w: &WindowReport) {
    let _ = writeln!(
        out,
        "{title} {} — {} events to ports from {} sensors",
        window_span(w.window.start, w.window.end),
        thousands(w.window.port_events),
        thousands(w.window.active_sensors)
    );
    table(out, &w.top);
    out.push('\n');
}

/// Renders the whole report. `header` is the run description line(s).
pub fn render_report(r: &Report, stats: &RunStats, header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} files, {} lines, {} events ({} unsolicited to a port, {} ICMP), {} parse errors, {} late events; {} windows, {} sensors",
        stats.files,
        thousands(stats.lines),
        thousands(r.events),
        thousands(r.port_events),
        thousands(r.icmp_events),
        thousands(stats.parse_errors),
        thousands(r.late_events),
        thousands(r.windows as u64),
        thousands(r.sensors.len() as u64),
    );
    let _ = writeln!(out, "{header}\n");
    if let Some(last) = &r.last {
        window_block(&mut out, "Top ports, last window", last);
    }
    for (i, w) in r.busiest.iter().enumerate() {
        window_block(&mut out, &format!("Busiest window #{}:", i + 1), w);
    }

    if r.alerts.is_empty() {
        let _ = writeln!(out, "No warnings.");
        return out;
    }
    // Surges: consecutive warning windows of one port.
    let mut surges: BTreeMap<(i64, scanwatch_event::Protocol, u16), Vec<&Alert>> = BTreeMap::new();
    for a in &r.alerts {
        surges
            .entry((a.episode_start.0, a.proto, a.port))
            .or_default()
            .push(a);
    }
    let mut peaks: Vec<(&Alert, &Vec<&Alert>)> = surges
        .values()
        .map(|v| {
            (
                *v.iter().max_by(|a, b| by_severity(b, a)).unwrap_or(&v[0]),
                v,
            )
        })
        .collect();
    peaks.sort_by(|a, b| by_severity(a.0, b.0));
    let _ = writeln!(
        out,
        "Surges and trends ({}), most severe first",
        peaks.len()
    );
    for (peak, all) in &peaks {
        let first = all[0];
        let info = port_info(peak.proto, peak.port);
        let _ = writeln!(
            out,
            "  [{}] {} on {}/{} {}{} — score {:.1}",
            peak.severity.name().to_uppercase(),
            peak.kind.name(),
            peak.proto,
            peak.port,
            info.map_or("", |i| i.name),
            info.filter(|i| !i.note.is_empty())
                .map_or(String::new(), |i| format!(" ({})", i.note)),
            peak.score
        );
        let _ = writeln!(out, "    peak: {}", summary(peak));
        let _ = writeln!(
            out,
            "    began {} ({} at score {:.1}); {} warning window{}",
            window_span(first.window_start, first.window_end),
            first.severity.name(),
            first.score,
            all.len(),
            if all.len() == 1 { "" } else { "s" }
        );
        if !peak.top_sources.is_empty() {
            let tops: Vec<String> = peak
                .top_sources
                .iter()
                .take(5)
                .map(|(ip, n)| format!("{ip} ({})", thousands(*n)))
                .collect();
            let _ = writeln!(out, "    top sources: {}", tops.join(", "));
        }
        let sensors: Vec<String> = peak
            .top_sensors
            .iter()
            .take(5)
            .map(|(k, n)| format!("{} ({})", r.sensor_name(*k), thousands(*n)))
            .collect();
        let _ = writeln!(
            out,
            "    busiest sensors: {} — the busiest has {:.0}% of the events",
            sensors.join(", "),
            peak.top_sensor_share * 100.0
        );
    }
    let mut all: Vec<&Alert> = r.alerts.iter().collect();
    all.sort_by(|a, b| by_severity(a, b));
    let _ = writeln!(out, "\nAll warnings ({}), most severe first", all.len());
    for a in all {
        let _ = writeln!(
            out,
            "  [{:<8}] score {:>4.1}  {}",
            a.severity.name().to_uppercase(),
            a.score,
            summary(a)
        );
    }
    out
}
