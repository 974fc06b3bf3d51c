//! scanwatch's JSON Lines event format (see `scanwatch_event::WireEvent` and
//! `docs/formats.md`): one JSON object per line; blank lines are skipped.

use scanwatch_event::WireEvent;

use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "jsonl"
    }
    fn description(&self) -> &'static str {
        "scanwatch JSON Lines events (the sensor wire format)"
    }
    fn sniff(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with('{') && t.contains("\"proto\"")
    }
    fn parser(&self, _opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(JsonlParser)
    }
}

#[derive(Debug, Default)]
pub struct JsonlParser;

impl LineParser for JsonlParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        if line.trim().is_empty() {
            return LineOutcome::Skip;
        }
        let wire = match WireEvent::parse_line(line) {
            Ok(w) => w,
            Err(e) => return LineOutcome::Error(ParseError::Wire(e)),
        };
        match wire.to_event() {
            // The sensor name borrows from the line only when it has no escapes.
            Ok(event) => LineOutcome::Event {
                event,
                host: match wire.sensor {
                    Some(std::borrow::Cow::Borrowed(s)) => Some(s),
                    Some(std::borrow::Cow::Owned(s)) => sensor_slice(line, &s),
                    None => None,
                },
            },
            Err(e) => LineOutcome::Error(ParseError::Wire(e)),
        }
    }
}

/// For an escaped sensor name, point at the raw JSON text instead (still a stable
/// name for the sensor); `None` if it cannot be found.
fn sensor_slice<'l>(line: &'l str, _decoded: &str) -> Option<&'l str> {
    let start = line.find("\"sensor\"")? + "\"sensor\"".len();
    let rest = &line[start..];
    let q = rest.find('"')? + 1;
    let body = &rest[q..];
    let mut end = 0;
    let b = body.as_bytes();
    while end < b.len() {
        match b[end] {
            b'\\' => end += 2,
            b'"' => return body.get(..end),
            _ => end += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_errors() {
        let mut p = JsonlParser;
        let line = r#"{"time":"2026-11-26T10:40:00Z","sensor":"s\"1","proto":"udp","src":"192.0.2.1","dst":"192.0.2.2","dst_port":53}"#;
        match p.parse_line(line) {
            LineOutcome::Event { host, .. } => assert_eq!(host, Some(r#"s\"1"#)),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.parse_line("  "), LineOutcome::Skip);
        assert!(matches!(p.parse_line("{"), LineOutcome::Error(_)));
    }
}
