//! Prometheus text exposition (format 0.0.4): the one writer behind every
//! `/metrics` (the collector, the notifier, the aggregator and detector roles).
//!
//! Hand-written on purpose: it is a few lines over a `String`, and every counter in
//! scanwatch is already an atomic owned by its crate; the `prometheus-client` crate
//! would need its registry and metric types threaded through those crates for the
//! same text.

use std::fmt::Write;

/// What a metric family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

impl MetricKind {
    fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// A label set in exposition form, `{name="value",…}`, values escaped (`\`, `"`,
/// newline); empty for no labels.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A metrics text being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// One family: its HELP and TYPE lines and one sample per label set (labels
    /// as made by [`labels`]).
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind, samples: &[(String, u64)]) {
        self.header(name, help, kind.name());
        for (l, v) in samples {
            let _ = writeln!(self.out, "{name}{l} {v}");
        }
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, MetricKind::Counter, &[(String::new(), value)]);
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, MetricKind::Gauge, &[(String::new(), value)]);
    }

    /// A histogram: cumulative counts per upper bound (`le`, ascending), the total
    /// count and the sum of the observations.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    ) {
        self.header(name, help, "histogram");
        for (le, n) in buckets {
            let _ = writeln!(self.out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(self.out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(self.out, "{name}_sum {sum}\n{name}_count {count}");
    }

    /// Appends text already in exposition form (another component's metrics).
    pub fn append(&mut self, text: &str) {
        self.out.push_str(text);
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_text_format() {
        let mut e = Exposition::new();
        e.counter("a_total", "As.", 3);
        e.family(
            "b_total",
            "Bs, by sink.",
            MetricKind::Counter,
            &[(labels(&[("sink", "x\"y\\z\n")]), 1)],
        );
        e.gauge("c", "C.", 0);
        e.histogram("d_seconds", "D.", &[(0.5, 1), (1.0, 2)], 3, 2.5);
        assert_eq!(
            e.finish(),
            "# HELP a_total As.\n# TYPE a_total counter\na_total 3\n\
             # HELP b_total Bs, by sink.\n# TYPE b_total counter\nb_total{sink=\"x\\\"y\\\\z\\n\"} 1\n\
             # HELP c C.\n# TYPE c gauge\nc 0\n\
             # HELP d_seconds D.\n# TYPE d_seconds histogram\nd_seconds_bucket{le=\"0.5\"} 1\n\
             d_seconds_bucket{le=\"1\"} 2\nd_seconds_bucket{le=\"+Inf\"} 3\nd_seconds_sum 2.5\nd_seconds_count 3\n"
        );
        assert_eq!(labels(&[]), "");
    }
}
