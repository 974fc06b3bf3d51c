//! Invariants every parser must keep on any input, shared by the fuzz targets.

use scanwatch_event::{Protocol, Timestamp};
use scanwatch_formats::{parse_str, FormatSpec, ParseError, ParserOptions};

/// Bytes to text: invalid UTF-8 is replaced (U+FFFD), so every input reaches the parser.
pub fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

pub fn opts() -> ParserOptions {
    // 2026-11-26T00:00:00Z: a fixed reference, so runs are reproducible.
    ParserOptions {
        reference_time: Timestamp(1_795_651_200_000),
    }
}

/// Parses `input` with `spec` and checks what must hold for every output.
pub fn check(spec: &dyn FormatSpec, input: &str) {
    let out = parse_str(spec, input, &opts());
    let lines = input.lines().count();
    assert_eq!(
        out.events.len() + out.errors.len() + out.skipped,
        lines,
        "{}: every line is exactly one of event, error, skip",
        spec.name()
    );
    let mut last = 0;
    for e in &out.events {
        assert!(
            e.line >= 1 && e.line <= lines,
            "{}: line number {} out of 1..={lines}",
            spec.name(),
            e.line
        );
        assert!(e.line > last, "{}: events not in line order", spec.name());
        last = e.line;
        let ev = &e.event;
        assert!(ev.count >= 1, "{}: count {} < 1", spec.name(), ev.count);
        if ev.proto.has_ports() {
            // The source port may be unknown (it is optional in the JSON Lines format).
            assert!(
                ev.dst_port.is_some(),
                "{}: {} event without dst_port",
                spec.name(),
                ev.proto
            );
        } else {
            assert!(
                ev.src_port.is_none() && ev.dst_port.is_none(),
                "{}: ports on a {} event",
                spec.name(),
                ev.proto
            );
        }
        // `Event` docs: flags are zero for other protocols; the ICMP type is for ICMP.
        if ev.flags_known || ev.flags.0 != 0 {
            assert_eq!(
                ev.proto,
                Protocol::Tcp,
                "{}: tcp flags on {}",
                spec.name(),
                ev.proto
            );
        }
        if ev.icmp_type.is_some() {
            assert!(
                matches!(ev.proto, Protocol::Icmp | Protocol::Icmpv6),
                "{}: icmp type on {}",
                spec.name(),
                ev.proto
            );
        }
        // Only a port-bearing event can count as a scanned port.
        if let Some((p, port)) = ev.scanned_port() {
            assert_eq!(Some(port), ev.dst_port);
            assert_eq!(p, ev.proto);
        }
        // Messages and reports must be able to print the event.
        let _ = ev.time.to_rfc3339();
    }
    for err in &out.errors {
        assert!(
            err.line >= 1 && err.line <= lines,
            "{}: error line {} out of range",
            spec.name(),
            err.line
        );
        // Errors echo at most a short piece of the line (`ParseError::invalid` caps at
        // 64 characters), so a huge garbage line gives a short message. Wire errors come
        // from scanwatch-event and are not checked here.
        match &err.error {
            ParseError::Timestamp(v) | ParseError::InvalidField { value: v, .. } => {
                assert!(
                    v.chars().count() <= 64,
                    "{}: error echoes {} chars",
                    spec.name(),
                    v.chars().count()
                )
            }
            _ => {}
        }
        let _ = err.error.to_string();
    }
}
