//! The alert stage: turns warnings and windows into what people and machines read —
//! a one-sentence explanation per warning, the JSON Lines schema of `analyze --json`
//! (documented in `docs/json-schema.md`, kept stable), and the text report in the
//! style of the Internet Storm Center's top-ports table.

mod json;
pub mod lineage;
pub mod misp;
pub mod stix;
mod text;
mod warning;

pub use json::{alert_json, narrative, summary_json, window_json, SummaryJson, WindowJson};
pub use text::{context_block, render_report, render_report_with, window_text, RunStats};
pub use warning::{
    read_warning_line, AdvisoryJson, BaselineJson, ExposedJson, MitigationJson, Platform,
    SensorCountJson, ServiceJson, SourceJson, StoredWarning, SweepJson, SweepPortJson,
    SweepSourceJson, TrendJson, TrimmedJson, UnreadableWarning, Warning, WarningType,
};

use scanwatch_detect::Alert;
use scanwatch_event::Timestamp;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A baseline value for text: whole numbers without decimals, others with one.
pub fn base_num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        thousands(x.round() as u64)
    } else {
        format!("{x:.1}")
    }
}

/// `2026-11-26 10:00–11:00 UTC` (the end date is shown when it differs); with
/// seconds when either end is not on a whole minute (`16:04:00–16:04:30` for a
/// 30 s window, not `16:04–16:04`).
pub fn window_span(start: Timestamp, end: Timestamp) -> String {
    let s = chrono::DateTime::from_timestamp_millis(start.0).unwrap_or_default();
    let e = chrono::DateTime::from_timestamp_millis(end.0).unwrap_or_default();
    let hm = if start.0 % 60_000 == 0 && end.0 % 60_000 == 0 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let next_midnight = s
        .date_naive()
        .succ_opt()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
    let end = if e.date_naive() == s.date_naive() {
        e.format(hm).to_string()
    } else if Some(e) == next_midnight {
        if hm == "%H:%M" { "24:00" } else { "24:00:00" }.to_string()
    } else {
        e.format(&format!("%Y-%m-%d {hm}")).to_string()
    };
    format!("{}–{end} UTC", s.format(&format!("%Y-%m-%d {hm}")))
}

/// "times normal" for text: `47×`, `3.2×`.
pub fn times(x: f64) -> String {
    if x >= 10.0 {
        format!("{}×", thousands(x.round() as u64))
    } else {
        format!("{x:.1}×")
    }
}

/// What a sweep's port count is when a source reached more ports than are kept:
/// "about " when estimated from the samples, "at least " otherwise.
pub fn ports_qualifier(capped: bool, estimated: bool) -> &'static str {
    match (capped, estimated) {
        (_, true) => "about ",
        (true, false) => "at least ",
        (false, false) => "",
    }
}

/// The one-sentence explanation of a warning, with its numbers.
pub fn summary(a: &Alert) -> String {
    let proto = a.proto.name().to_uppercase();
    if let Some(sw) = &a.sweep {
        return format!(
            "sweep from {}/{}: {} source{} probed {}{} ports (busiest {proto}/{}) across {} of {} sensors in {}; set aside from every port's counts",
            sw.prefix,
            sw.prefix_len,
            thousands(sw.sources),
            if sw.sources == 1 { "" } else { "s" },
            ports_qualifier(sw.capped, sw.ports_estimated),
            thousands(sw.ports),
            a.port,
            thousands(sw.sensors),
            thousands(a.active_sensors),
            window_span(a.window_start, a.window_end),
        );
    }
    if let Some(t) = &a.trend {
        return format!(
            "{proto}/{}: rising for {} windows: median {} sources per window (before: {}), {} now; {} sources and {} events across {} of {} sensors in {}",
            a.port,
            t.span_windows,
            base_num(t.recent_sources),
            base_num(t.before_sources),
            times(t.recent_sources / t.before_sources.max(1.0)),
            thousands(a.sources),
            thousands(a.events),
            thousands(a.sensors),
            thousands(a.active_sensors),
            window_span(a.window_start, a.window_end),
        );
    }
    format!(
        "{proto}/{}: {} sources (baseline {}) and {} events (baseline {}) across {} of {} sensors in {}; {} normal",
        a.port,
        thousands(a.sources),
        base_num(a.baseline.sources.median),
        thousands(a.events),
        base_num(a.baseline.events.median),
        thousands(a.sensors),
        thousands(a.active_sensors),
        window_span(a.window_start, a.window_end),
        times(a.times_normal()),
    )
}

/// Orders warnings most severe first: severity, then score, then time and port.
pub fn by_severity(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then(b.score.total_cmp(&a.score))
        .then(a.window_start.cmp(&b.window_start))
        .then((a.proto, a.port).cmp(&(b.proto, b.port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(base_num(31.0), "31");
        assert_eq!(base_num(1.5), "1.5");
        assert_eq!(times(47.2), "47×");
        assert_eq!(times(3.25), "3.2×");
        let t = |s: &str| scanwatch_event::parse_rfc3339(s).unwrap();
        assert_eq!(
            window_span(t("2026-11-26T10:40:00Z"), t("2026-11-26T10:50:00Z")),
            "2026-11-26 10:40–10:50 UTC"
        );
        assert_eq!(
            window_span(t("2026-11-26T23:00:00Z"), t("2026-11-27T00:00:00Z")),
            "2026-11-26 23:00–24:00 UTC"
        );
        assert_eq!(
            window_span(t("2026-11-26T00:00:00Z"), t("2026-11-28T00:00:00Z")),
            "2026-11-26 00:00–2026-11-28 00:00 UTC"
        );
        // A 30 s window says its seconds.
        assert_eq!(
            window_span(t("2026-11-26T16:04:00Z"), t("2026-11-26T16:04:30Z")),
            "2026-11-26 16:04:00–16:04:30 UTC"
        );
    }
}
