//! The numbers behind the charts, computed in memory from stored window rows:
//! re-bucketing hourly windows into coarser ones, the rolling baseline band, and
//! summing the windows' top sources. Pure functions, tested here.

use std::collections::HashMap;

use scanwatch_store::WindowRow;
use serde::Deserialize;

use super::svg::{Band, Point};

/// One bucket of a port's series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub start: i64,
    /// Sum over the stored windows in the bucket (exact).
    pub events: u64,
    /// Largest distinct count of the stored windows in the bucket: a lower bound of
    /// the bucket's distinct count (the same source in two hours counts once).
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    /// Stored windows that fell in the bucket.
    pub windows: u32,
}

/// Which metric of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Events,
    Sources,
    Sensors,
}

impl Metric {
    pub fn of(self, b: &Bucket) -> f64 {
        (match self {
            Metric::Events => b.events,
            Metric::Sources => b.sources,
            Metric::Sensors => b.sensors,
        }) as f64
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Events => "events",
            Metric::Sources => "sources",
            Metric::Sensors => "sensors",
        }
    }
}

/// Dense buckets of `step` ms covering `[from, to)` (`from` a multiple of `step`):
/// buckets without stored windows are zeros, as the detector counts silent windows.
pub fn rebucket(rows: &[WindowRow], from: i64, to: i64, step: i64) -> Vec<Bucket> {
    let step = step.max(1);
    let n = usize::try_from((to - from).max(0) / step).unwrap_or(0);
    let mut out: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start: from + i as i64 * step,
            ..Bucket::default()
        })
        .collect();
    for r in rows {
        let t = r.window_start.0;
        if t < from || t >= to {
            continue;
        }
        let Some(b) = usize::try_from((t - from) / step)
            .ok()
            .and_then(|i| out.get_mut(i))
        else {
            continue;
        };
        b.events = b.events.saturating_add(r.events);
        b.sources = b.sources.max(r.sources);
        b.sensors = b.sensors.max(r.sensors);
        b.targets = b.targets.max(r.targets);
        b.windows += 1;
    }
    out
}

/// Median of `v` (sorted in place); 0 when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Width of the band in robust spreads: median ± 3·s.
pub const BAND_SPREADS: f64 = 3.0;

/// The baseline of a value from the `history` values before it: the median `m`,
/// the spread `s = max(1.4826·MAD, √max(m, 1))` as the detector computes it
/// (docs/detection.md), and the band `m ± 3·s` (floored at 0).
pub fn band(history: &[f64]) -> Band {
    let mut v = history.to_vec();
    let m = median(&mut v);
    for x in &mut v {
        *x = (*x - m).abs();
    }
    let mad = median(&mut v);
    let s = (1.4826 * mad).max(m.max(1.0).sqrt());
    Band {
        lo: (m - BAND_SPREADS * s).max(0.0),
        mid: m,
        hi: m + BAND_SPREADS * s,
    }
}

/// The points of one metric from `first` on, each with the band of the `lookback`
/// buckets before it; no band where fewer than `min_history` earlier buckets are
/// known (`known_from`: the first bucket index with data behind it).
pub fn points(
    buckets: &[Bucket],
    metric: Metric,
    first: usize,
    lookback: usize,
    min_history: usize,
    known_from: usize,
) -> Vec<Point> {
    let vals: Vec<f64> = buckets.iter().map(|b| metric.of(b)).collect();
    (first..buckets.len())
        .map(|i| {
            let lo = i.saturating_sub(lookback).max(known_from);
            let band = (i >= lo + min_history.max(1)).then(|| band(&vals[lo..i]));
            Point {
                t: buckets[i].start,
                v: vals[i],
                band,
                known: i >= known_from,
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct TopSource {
    ip: String,
    events: u64,
}

/// Sums the windows' top-source lists: (ip, events) busiest first, at most `limit`.
/// Sources outside a window's top list are not counted there, so these are lower
/// bounds.
pub fn top_sources<'a>(
    jsons: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Vec<(String, u64, u32)> {
    let mut sum: HashMap<String, (u64, u32)> = HashMap::new();
    for j in jsons {
        let Ok(list) = serde_json::from_str::<Vec<TopSource>>(j) else {
            continue;
        };
        for s in list {
            let e = sum.entry(s.ip).or_default();
            e.0 = e.0.saturating_add(s.events);
            e.1 += 1;
        }
    }
    let mut v: Vec<(String, u64, u32)> = sum.into_iter().map(|(k, (e, w))| (k, e, w)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_event::Timestamp;

    fn row(h: i64, events: u64, sources: u64) -> WindowRow {
        WindowRow {
            window_start: Timestamp(h * 3_600_000),
            window_end: Timestamp((h + 1) * 3_600_000),
            proto: 6,
            port: 22,
            events,
            sources,
            sensors: 1,
            targets: 1,
            top_sources_json: r#"[{"ip":"192.0.2.1","events":3}]"#.into(),
        }
    }

    #[test]
    fn rebucketing_sums_events_and_keeps_the_largest_distinct_count() {
        let rows: Vec<WindowRow> = (0..12).map(|h| row(h, 10, h as u64)).collect();
        let b = rebucket(&rows, 0, 12 * 3_600_000, 6 * 3_600_000);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].events, b[0].sources, b[0].windows), (60, 5, 6));
        assert_eq!((b[1].events, b[1].sources), (60, 11));
        let total: u64 = b.iter().map(|x| x.events).sum();
        assert_eq!(total, 120, "events sum exactly");
        // Out of range rows are ignored; silent buckets are zeros.
        let b = rebucket(&rows[..1], 3_600_000, 4 * 3_600_000, 3_600_000);
        assert!(b.iter().all(|x| x.events == 0));
    }

    #[test]
    fn band_is_median_plus_minus_robust_spread() {
        let b = band(&[10.0, 10.0, 10.0, 12.0, 8.0]);
        assert_eq!(b.mid, 10.0);
        // MAD 0 → Poisson floor √10.
        assert!((b.hi - (10.0 + 3.0 * 10f64.sqrt())).abs() < 1e-9);
        assert_eq!(band(&[]).mid, 0.0);
    }

    #[test]
    fn points_have_a_band_only_with_enough_history() {
        let rows: Vec<WindowRow> = (0..48).map(|h| row(h, 1, 5)).collect();
        let b = rebucket(&rows, 0, 48 * 3_600_000, 3_600_000);
        let p = points(&b, Metric::Sources, 24, 168, 24, 0);
        assert_eq!(p.len(), 24);
        assert!(p.iter().all(|x| x.band.is_some_and(|b| b.mid == 5.0)));
        let p = points(&b, Metric::Sources, 0, 168, 24, 0);
        assert!(p[0].band.is_none() && p[24].band.is_some());
    }

    #[test]
    fn top_sources_are_summed() {
        let a = r#"[{"ip":"192.0.2.1","events":3},{"ip":"192.0.2.2","events":1}]"#;
        let b = r#"[{"ip":"192.0.2.2","events":5}]"#;
        let t = top_sources([a, b, "not json"].into_iter(), 10);
        assert_eq!(t[0], ("192.0.2.2".to_string(), 6, 2));
        assert_eq!(t[1], ("192.0.2.1".to_string(), 3, 1));
    }
}
