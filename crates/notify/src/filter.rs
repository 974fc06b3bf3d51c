//! Which warnings a sink gets: severity, confidence, ports and age. Whether later
//! windows are sent (`updates`) depends on what was sent before, so
//! [`crate::state`] decides that.

use std::time::Duration;

use crate::config::Filters;
use crate::warning::Warning;

/// A filter with its parsed age limit.
#[derive(Clone, Debug)]
pub struct Filter {
    pub filters: Filters,
    max_age_ms: Option<i64>,
}

impl Filter {
    pub fn new(filters: Filters) -> Result<Filter, String> {
        let max_age_ms = filters
            .max_age()
            .map(|d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Ok(Filter {
            filters,
            max_age_ms,
        })
    }

    /// `None` when the warning passes, else why not.
    pub fn reject(&self, w: &Warning, now_ms: i64) -> Option<&'static str> {
        let f = &self.filters;
        if w.severity < f.min_severity {
            return Some("severity");
        }
        if w.confidence < f.min_confidence {
            return Some("confidence");
        }
        if !f.ports.is_empty() && !f.ports.iter().any(|p| p.matches(&w.protocol, w.port)) {
            return Some("port");
        }
        if let Some(max) = self.max_age_ms {
            // A window end we cannot read counts as current: better one message too
            // many than a surge nobody hears of.
            if let Some(end) = scanwatch_event::parse_rfc3339(&w.window_end) {
                if now_ms.saturating_sub(end.0) > max {
                    return Some("age");
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortSpec;
    use crate::warning::{Confidence, Severity};

    fn warning() -> Warning {
        Warning::from_stored(1, &crate::warning::tests::sample(1).to_string()).expect("valid")
    }

    const NOW: i64 = 1_795_000_000_000; // after the sample's window

    #[test]
    fn each_filter_rejects_with_its_reason() {
        let w = warning();
        let end = scanwatch_event::parse_rfc3339(&w.window_end)
            .expect("time")
            .0;
        let pass = Filter::new(Filters::default()).expect("valid");
        assert_eq!(pass.reject(&w, end + 1000), None);
        // Default max age is a day.
        assert_eq!(pass.reject(&w, end + 86_400_001), Some("age"));
        let none = Filter::new(Filters {
            max_age: "none".parse().unwrap(),
            ..Filters::default()
        })
        .expect("valid");
        assert_eq!(none.reject(&w, NOW * 2), None);
        let sev = Filter::new(Filters {
            min_severity: Severity::Critical,
            ..Filters::default()
        })
        .expect("valid");
        assert_eq!(sev.reject(&w, end), Some("severity"));
        let conf = Filter::new(Filters {
            min_confidence: Confidence::Confirmed,
            ..Filters::default()
        })
        .expect("valid");
        assert_eq!(conf.reject(&w, end), Some("confidence"));
        let ports = |p: &[&str]| {
            Filter::new(Filters {
                ports: p
                    .iter()
                    .map(|s| PortSpec::parse(s).expect("port"))
                    .collect(),
                ..Filters::default()
            })
            .expect("valid")
        };
        assert_eq!(ports(&["udp/445", "22"]).reject(&w, end), Some("port"));
        assert_eq!(ports(&["22", "TCP/445"]).reject(&w, end), None);
        assert_eq!(ports(&["445"]).reject(&w, end), None);
    }
}
