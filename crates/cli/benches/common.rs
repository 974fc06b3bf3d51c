//! Shared input for the analyze benches: simulated netfilter lines and the bare loop
//! every figure is compared with.

use scanwatch_event::Timestamp;
use scanwatch_formats::{format_by_name, LineOutcome, ParserOptions};
use scanwatch_pipeline::{sensor_key, Output, Pipeline, PipelineConfig};

/// `hours` hours of the demo network as kernel netfilter syslog lines.
pub fn netfilter_text(hours: usize) -> String {
    netfilter_text_of(&scanwatch_simulate::demo(), hours)
}

/// `hours` hours of a scenario as kernel netfilter syslog lines.
pub fn netfilter_text_of(sc: &scanwatch_simulate::Scenario, hours: usize) -> String {
    let mut out = String::new();
    for (s, e) in sc.generator().take(hours).flatten() {
        out.push_str(&scanwatch_simulate::netfilter_line(&sc.sensor_name(s), &e));
        out.push('\n');
    }
    out
}

/// Calls `f` on every line (split with memchr, as `analyze` reads lines).
fn for_each_line(text: &str, mut f: impl FnMut(&str)) {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', text.as_bytes()) {
        f(&text[start..nl]);
        start = nl + 1;
    }
    if start < text.len() {
        f(&text[start..]);
    }
}

/// The bare baseline: split lines, find `DPT=`, read the port by hand, count it.
/// Nothing else: no timestamp, no address, no validation.
pub fn bare_loop(text: &str) -> u64 {
    let mut counts = vec![0u64; 65536];
    let finder = memchr::memmem::Finder::new(b"DPT=");
    for_each_line(text, |line| {
        let line = line.as_bytes();
        if let Some(i) = finder.find(line) {
            let mut port = 0usize;
            for &c in &line[i + 4..] {
                if !c.is_ascii_digit() {
                    break;
                }
                port = port * 10 + usize::from(c - b'0');
            }
            counts[port & 0xffff] += 1;
        }
    });
    counts.iter().sum()
}

/// The bare baseline as a plain program over the file writes it, reading the
/// file as the issue's first figure did (issue 14: a "bare Rust loop that splits
/// lines and counts ports exactly, same file", 0.76 s for 2,035,456 lines): the
/// standard library's buffered lines (each checked as UTF-8, in a `String`),
/// `str::find` for `DPT=`, `str::parse` for the port.
#[allow(dead_code)] // the figures bench's only (the criterion bench reads no file)
pub fn bare_loop_std(path: &std::path::Path) -> u64 {
    use std::io::BufRead;
    let mut counts = vec![0u64; 65536];
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open"));
    for line in file.lines() {
        let line = line.expect("read");
        if let Some(i) = line.find("DPT=") {
            let rest = &line[i + 4..];
            let end = rest.find(' ').unwrap_or(rest.len());
            if let Ok(port) = rest[..end].parse::<u16>() {
                counts[usize::from(port)] += 1;
            }
        }
    }
    counts.iter().sum()
}

/// Parse only.
pub fn parse_only(text: &str) -> u64 {
    let opts = ParserOptions {
        reference_time: Timestamp(1_796_000_000_000),
    };
    let mut p = format_by_name("netfilter")
        .expect("registered")
        .parser(&opts);
    let mut n = 0;
    for_each_line(text, |l| {
        if let LineOutcome::Event { event, .. } = p.parse_line(l) {
            n += u64::from(event.count);
        }
    });
    n
}

/// Parse + aggregate + detect, as `analyze` does (sensor from the host field).
pub fn pipeline(text: &str) -> (usize, u64) {
    let opts = ParserOptions {
        reference_time: Timestamp(1_796_000_000_000),
    };
    let mut p = format_by_name("netfilter")
        .expect("registered")
        .parser(&opts);
    let cfg = PipelineConfig::new(3_600_000, 7 * 86_400_000);
    let mut pl = Pipeline::new(cfg);
    pl.set_emit_windows(false);
    let mut alerts = 0usize;
    let mut sink = |o: Output| {
        if let Output::Alert(_) = o {
            alerts += 1;
        }
    };
    let mut last_host: (String, u64) = (String::new(), 0);
    for_each_line(text, |l| {
        if let LineOutcome::Event { event, host } = p.parse_line(l) {
            let h = host.unwrap_or("");
            if h != last_host.0 {
                last_host = (h.to_string(), sensor_key(h));
            }
            pl.push(last_host.1, &event);
            pl.drain(&mut sink);
        }
    });
    let r = pl.finish(&mut sink);
    (alerts, r.events)
}

/// Parsed events with their sensor keys (to time aggregation alone).
pub fn parsed_events(text: &str) -> Vec<(u64, scanwatch_event::Event)> {
    let opts = ParserOptions {
        reference_time: Timestamp(1_796_000_000_000),
    };
    let mut p = format_by_name("netfilter")
        .expect("registered")
        .parser(&opts);
    let mut v = Vec::new();
    for_each_line(text, |l| {
        if let LineOutcome::Event { event, host } = p.parse_line(l) {
            v.push((sensor_key(host.unwrap_or("")), event));
        }
    });
    v
}

/// Aggregate + detect only, on pre-parsed events.
pub fn aggregate_detect(events: &[(u64, scanwatch_event::Event)]) -> usize {
    aggregate_detect_with(events, scanwatch_aggregate::SweepRule::default())
}

/// [`aggregate_detect`] with a sweep rule of its own (`SweepRule::off()`: none).
pub fn aggregate_detect_with(
    events: &[(u64, scanwatch_event::Event)],
    sweep: scanwatch_aggregate::SweepRule,
) -> usize {
    let mut cfg = PipelineConfig::new(3_600_000, 7 * 86_400_000);
    cfg.aggregate.sweep = sweep;
    let mut pl = Pipeline::new(cfg);
    pl.set_emit_windows(false);
    let mut alerts = 0usize;
    let mut sink = |o: Output| {
        if let Output::Alert(_) = o {
            alerts += 1;
        }
    };
    for (k, e) in events {
        pl.push(*k, e);
        pl.drain(&mut sink);
    }
    pl.finish(&mut sink);
    alerts
}
