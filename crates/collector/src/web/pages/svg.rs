//! Server-side SVG charts: sparklines and time-series line charts with a baseline
//! band and warning markers.
//!
//! Hand-written on purpose: the server must work offline (no JavaScript chart
//! library, no CDN), and the pages stay small — a chart is a few polylines. The one
//! Rust crate that draws charts (`plotters`) renders whole documents at fixed pixel
//! sizes through a drawing backend, with font handling we do not need; a sparkline
//! or a band chart here is ~100 lines of string building, escaped and well-formed
//! XML (tested by parsing it).

use std::fmt::Write as _;

use scanwatch_event::Timestamp;

use super::html::{esc, float, parts};

/// The baseline of one point: the rolling median and the band around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    pub lo: f64,
    pub mid: f64,
    pub hi: f64,
}

/// One point of a series: bucket start (ms), value, baseline when known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
    pub band: Option<Band>,
    /// False before the first stored window of the series: no data yet, which is
    /// drawn apart from a silent (zero) window.
    pub known: bool,
}

/// A warning drawn on a chart: its window, shaded and linked to its page.
#[derive(Clone, Debug)]
pub struct Marker {
    pub id: i64,
    pub from: i64,
    pub to: i64,
    pub severity: &'static str,
    pub label: String,
    /// The warning the page is about (drawn stronger).
    pub current: bool,
}

/// A line chart over `[from, to)` in buckets of `step` ms.
pub struct Chart<'a> {
    /// `data-series` value: `events`, `sources`, `sensors`.
    pub series: &'a str,
    /// Unique on the page (for the title/desc ids).
    pub id: &'a str,
    pub title: String,
    pub desc: String,
    pub from: i64,
    pub to: i64,
    pub step: i64,
    pub points: &'a [Point],
    pub markers: &'a [Marker],
    /// A logarithmic y axis (`log10(1 + v)`), so a baseline band of a few sources
    /// stays visible beside a surge fifty times as high.
    pub log: bool,
}

const W: f64 = 760.0;
const H: f64 = 230.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

/// "Nice" y ticks from 0 to at least `max`: steps of 1, 2 or 5 × 10^k, 3-6 ticks.
/// The ticks of a logarithmic axis: 0, 1, 10, 100, … up to the first at or above
/// `max`.
pub fn log_ticks(max: f64) -> Vec<f64> {
    let mut ticks = vec![0.0, 1.0];
    while ticks.len() < 12 && ticks.last().is_some_and(|t| *t < max) {
        let next = ticks.last().copied().unwrap_or(1.0) * 10.0;
        ticks.push(next);
    }
    ticks
}

/// The legend under a line chart: the series, the baseline band and its median,
/// "no data yet" (with `band`), and (with `markers`) the warnings.
pub fn legend(series: &str, band: bool, markers: bool) -> String {
    // CSS swatches (app.css), not inline SVG: a legend is text.
    let sw = |class: &str| format!("<span class=\"swatch {class}\" aria-hidden=\"true\"></span>");
    let mut s = String::from("<p class=\"legend\">");
    let _ = write!(s, "<span>{} {}</span>", sw("sw-line"), esc(series));
    if band {
        let _ = write!(
            s,
            "<span>{} baseline band (median ± 3 robust spreads of the previous 7 days)</span>\
             <span>{} baseline median</span><span>{} no window stored yet (before the first)</span>",
            sw("sw-band"),
            sw("sw-median"),
            sw("sw-nodata"),
        );
    }
    if markers {
        let _ = write!(
            s,
            "<span>{} a warning's window (this page's warning darker; click to open)</span>",
            sw("sw-marker"),
        );
    }
    s.push_str("</p>");
    s
}

pub fn y_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        .max(1.0);
    let mut ticks = Vec::new();
    let mut v = 0.0;
    while ticks.len() < 12 {
        ticks.push(v);
        if v >= max {
            break;
        }
        v += step;
    }
    ticks
}

/// Time ticks: a step from a fixed list giving at most 8 labels, aligned on UTC.
fn x_ticks(from: i64, to: i64) -> (i64, Vec<i64>) {
    const H1: i64 = 3_600_000;
    const D1: i64 = 24 * H1;
    let steps = [
        H1,
        2 * H1,
        3 * H1,
        6 * H1,
        12 * H1,
        D1,
        2 * D1,
        7 * D1,
        14 * D1,
        30 * D1,
    ];
    let len = (to - from).max(1);
    let step = steps
        .iter()
        .copied()
        .find(|s| len / s <= 8)
        .unwrap_or(30 * D1);
    let mut t = Timestamp(from).floor(step).0;
    if t < from {
        t += step;
    }
    let mut v = Vec::new();
    while t <= to && v.len() < 40 {
        v.push(t);
        t += step;
    }
    (step, v)
}

fn tick_label(t: i64, step: i64) -> String {
    let (_, m, d, h, mi) = parts(Timestamp(t));
    if step >= 86_400_000 {
        format!("{m:02}-{d:02}")
    } else {
        format!("{m:02}-{d:02} {h:02}:{mi:02}")
    }
}

/// A line chart with y ticks, dated x axis, baseline band and warning markers.
pub fn line_chart(c: &Chart) -> String {
    let span = (c.to - c.from).max(1) as f64;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |t: i64| LEFT + (t - c.from) as f64 / span * pw;
    let ymax = c
        .points
        .iter()
        .map(|p| p.v.max(p.band.map_or(0.0, |b| b.hi)))
        .fold(0.0f64, f64::max);
    let ticks = if c.log {
        log_ticks(ymax)
    } else {
        y_ticks(ymax)
    };
    let top = ticks.last().copied().unwrap_or(1.0).max(1.0);
    let scale = |v: f64| {
        if c.log {
            v.max(0.0).ln_1p() / top.ln_1p()
        } else {
            v.max(0.0) / top
        }
    };
    let y = |v: f64| TOP + ph - scale(v).min(1.0) * ph;
    // Points are drawn in the middle of their bucket.
    let half = c.step / 2;

    let mut s = String::with_capacity(4096 + c.points.len() * 24);
    let _ = write!(
        s,
        "<svg class=\"chart\" data-series=\"{series}\" data-points=\"{n}\" data-scale=\"{sc}\" xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\">\
         <title id=\"{id}-t\">{title}</title><desc id=\"{id}-d\">{desc}</desc>",
        series = esc(c.series),
        sc = if c.log { "log" } else { "linear" },
        n = c.points.len(),
        id = esc(c.id),
        title = esc(&c.title),
        desc = esc(&c.desc),
    );
    // Grid and y ticks.
    s.push_str("<g class=\"axis y\">");
    for t in &ticks {
        let yy = y(*t);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            esc(&float(*t, 1)),
        );
    }
    let _ = write!(
        s,
        "<text class=\"label\" transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text></g>",
        TOP + ph / 2.0,
        esc(c.series)
    );
    // X ticks with dates.
    let (xstep, xt) = x_ticks(c.from, c.to);
    s.push_str("<g class=\"axis x\">");
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        W - RIGHT,
        TOP + ph,
        TOP + ph
    );
    for t in xt {
        let xx = x(t);
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            TOP + ph,
            TOP + ph + 4.0,
            TOP + ph + 16.0,
            esc(&tick_label(t, xstep)),
        );
    }
    let _ = write!(
        s,
        "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (UTC, event time)</text></g>",
        LEFT + pw / 2.0,
        H - 4.0
    );
    // No data stored yet (before the series' first stored window): hatched, apart
    // from silent windows, which are zero.
    let known_at = c.points.iter().position(|p| p.known);
    let unknown_to = match known_at {
        Some(0) => None,
        Some(i) => Some(c.points[i].t),
        None if c.points.is_empty() => None,
        None => Some(c.to),
    };
    if let Some(t) = unknown_to {
        let x1 = x(t).clamp(LEFT, W - RIGHT);
        let _ = write!(
            s,
            "<g class=\"nodata\"><title>no window stored yet</title>\
             <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{w:.1}\" height=\"{ph:.1}\"/>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">no data yet</text></g>",
            w = (x1 - LEFT).max(0.0),
            tx = LEFT + (x1 - LEFT) / 2.0,
            ty = TOP + ph / 2.0,
        );
    }
    // Warning markers: the warning's window, shaded, linked to its page.
    for m in c.markers {
        let (x0, x1) = (x(m.from.max(c.from)), x(m.to.min(c.to)));
        if x1 < LEFT || x0 > W - RIGHT {
            continue;
        }
        let _ = write!(
            s,
            "<a href=\"/alerts/{id}\"><g class=\"marker sev-{sev}{cur}\" data-alert-id=\"{id}\">\
             <title>{label}</title>\
             <rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{w:.1}\" height=\"{ph:.1}\"/>\
             <path d=\"M{x0:.1} {TOP} l{hw:.1} 8 l{hw:.1} -8 z\"/></g></a>",
            id = m.id,
            sev = esc(m.severity),
            cur = if m.current { " current" } else { "" },
            label = esc(&m.label),
            w = (x1 - x0).max(2.0),
            hw = ((x1 - x0).max(2.0)) / 2.0,
        );
    }
    // Baseline band (one polygon per run of points with a baseline) and median.
    let mut runs: Vec<&[Point]> = Vec::new();
    let mut start = None;
    for (i, p) in c.points.iter().enumerate() {
        match (p.band.is_some(), start) {
            (true, None) => start = Some(i),
            (false, Some(s0)) => {
                runs.push(&c.points[s0..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s0) = start {
        runs.push(&c.points[s0..]);
    }
    if !runs.is_empty() {
        s.push_str("<g class=\"baseline\">");
        for run in runs {
            let mut d = String::new();
            let mut mid = String::new();
            for (i, p) in run.iter().enumerate() {
                let b = p.band.unwrap_or(Band {
                    lo: 0.0,
                    mid: 0.0,
                    hi: 0.0,
                });
                let _ = write!(
                    d,
                    "{}{:.1} {:.1}",
                    if i == 0 { "M" } else { " L" },
                    x(p.t + half),
                    y(b.hi)
                );
                let _ = write!(
                    mid,
                    "{}{:.1},{:.1}",
                    if i == 0 { "" } else { " " },
                    x(p.t + half),
                    y(b.mid)
                );
            }
            for p in run.iter().rev() {
                let lo = p.band.map_or(0.0, |b| b.lo);
                let _ = write!(d, " L{:.1} {:.1}", x(p.t + half), y(lo));
            }
            d.push_str(" Z");
            let _ = write!(
                s,
                "<path class=\"band\" d=\"{d}\"/><polyline class=\"median\" points=\"{mid}\"/>"
            );
        }
        s.push_str("</g>");
    }
    // The series.
    let mut pts = String::with_capacity(c.points.len() * 14);
    for (i, p) in c.points.iter().filter(|p| p.known).enumerate() {
        let _ = write!(
            pts,
            "{}{:.1},{:.1}",
            if i == 0 { "" } else { " " },
            x(p.t + half),
            y(p.v)
        );
    }
    let _ = write!(s, "<polyline class=\"line\" points=\"{pts}\"/>");
    // Dots with tooltips when there are few enough points to hover.
    if c.points.len() <= 200 {
        s.push_str("<g class=\"dots\">");
        for p in c.points.iter().filter(|p| p.known) {
            let base = p
                .band
                .map(|b| format!(" (baseline {})", float(b.mid, 1)))
                .unwrap_or_default();
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"><title>{}: {}{}</title></circle>",
                x(p.t + half),
                y(p.v),
                esc(&super::html::when(Timestamp(p.t))),
                esc(&float(p.v, 1)),
                esc(&base),
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

/// A sparkline (no axes) of `values`, with the baseline as a dashed line.
pub fn sparkline(series: &str, label: &str, values: &[f64], baseline: Option<f64>) -> String {
    const SW: f64 = 140.0;
    const SH: f64 = 28.0;
    let max = values
        .iter()
        .copied()
        .chain(baseline)
        .fold(0.0f64, f64::max)
        .max(1.0);
    let n = values.len().max(2) - 1;
    let x = |i: usize| 1.0 + i as f64 / n as f64 * (SW - 2.0);
    let y = |v: f64| SH - 2.0 - (v.max(0.0) / max) * (SH - 4.0);
    let mut pts = String::with_capacity(values.len() * 12);
    for (i, v) in values.iter().enumerate() {
        let _ = write!(
            pts,
            "{}{:.1},{:.1}",
            if i == 0 { "" } else { " " },
            x(i),
            y(*v)
        );
    }
    let mut s = format!(
        "<svg class=\"spark\" data-series=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SW} {SH}\" \
         width=\"{SW}\" height=\"{SH}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(series),
        esc(label),
        esc(label)
    );
    if let Some(b) = baseline {
        let _ = write!(
            s,
            "<line class=\"median\" x1=\"1\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            SW - 1.0,
            y(b),
            y(b)
        );
    }
    let _ = write!(s, "<polyline class=\"line\" points=\"{pts}\"/></svg>");
    // Its scale: the value the top of the box stands for.
    let _ = write!(
        s,
        "<span class=\"spark-scale\" title=\"the top of the sparkline\">top {}</span>",
        esc(&float(max, 0))
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_maximum() {
        assert_eq!(y_ticks(0.0), vec![0.0, 1.0]);
        let t = y_ticks(1234.0);
        assert!(t.last().copied().unwrap_or(0.0) >= 1234.0, "{t:?}");
        assert!(t.len() <= 7, "{t:?}");
        let (step, xt) = x_ticks(0, 7 * 86_400_000);
        assert_eq!(step, 86_400_000);
        assert_eq!(xt.len(), 8);
        assert_eq!(log_ticks(0.0), vec![0.0, 1.0]);
        assert_eq!(
            log_ticks(1500.0),
            vec![0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0]
        );
    }
}
