//! One `journalctl --output=json` record as a syslog-style line with its position
//! (the journald source, `journal.rs`). Std, serde_json and chrono only, so the
//! fuzz target compiles it on its own.

use serde_json::Value;

/// One entry read: its line and its position (realtime µs, sequence number).
pub type Entry = (String, (u64, u64));

/// The position of an entry: (`t=` realtime µs, `i=` sequence number) from its
/// cursor (`s=…;i=hex;b=…;m=hex;t=hex;x=hex`).
pub fn cursor_position(cursor: &str) -> Option<(u64, u64)> {
    let field = |k: &str| {
        cursor
            .split(';')
            .find_map(|p| p.strip_prefix(k))
            .and_then(|v| u64::from_str_radix(v, 16).ok())
    };
    Some((field("t=")?, field("i=")?))
}

/// `2026-12-04T23:26:39.552548+00:00` from µs since the epoch.
fn rfc3339_micros(us: u64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_micros(i64::try_from(us).ok()?)?;
    Some(t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string())
}

/// A journal field as text: a string, or an array of bytes (journalctl's form for
/// values that are not valid UTF-8 or hold control characters).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let bytes: Option<Vec<u8>> = a
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&bytes?).into_owned())
        }
        _ => None,
    }
}

/// The line and position of one `journalctl --output=json` record; `None` for a
/// record without a cursor, a time or a message.
pub fn entry_line(json: &str) -> Option<Entry> {
    let v: Value = serde_json::from_str(json).ok()?;
    let pos = cursor_position(v.get("__CURSOR")?.as_str()?)?;
    let realtime: u64 = v.get("__REALTIME_TIMESTAMP")?.as_str()?.parse().ok()?;
    let message = text(v.get("MESSAGE")?)?;
    // One line per entry: line breaks in any field would split it (found by the
    // fuzz target: an identifier with a carriage return); a host or identifier
    // with a space would shift the fields.
    let word = |s: String| {
        let w: String = s
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if w.is_empty() {
            "-".to_string()
        } else {
            w
        }
    };
    let host = word(v.get("_HOSTNAME").and_then(text).unwrap_or_default());
    let ident = v
        .get("SYSLOG_IDENTIFIER")
        .and_then(text)
        .map_or_else(|| "kernel".to_string(), word);
    let message = message.replace(['\n', '\r'], " ");
    Some((
        format!("{} {host} {ident}: {message}", rfc3339_micros(realtime)?),
        pos,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_lines_with_their_positions() {
        let rec = r#"{"__CURSOR":"s=9907ba52dff04d60a3e5950ac85af0b5;i=2;b=0123;m=2;t=661d735409825;x=107d","__REALTIME_TIMESTAMP":"1796426799552549","_HOSTNAME":"fw1","SYSLOG_IDENTIFIER":"kernel","MESSAGE":"DROP IN=eth0 SRC=192.0.2.2 DPT=1025"}"#;
        let (line, pos) = entry_line(rec).unwrap();
        assert_eq!(
            line,
            "2026-12-04T23:26:39.552549+00:00 fw1 kernel: DROP IN=eth0 SRC=192.0.2.2 DPT=1025"
        );
        assert_eq!(pos, (0x661d735409825, 2));
        // A message as bytes (not UTF-8, or with control characters), with a line break.
        let bytes =
            r#"{"__CURSOR":"s=1;i=a;t=10","__REALTIME_TIMESTAMP":"16","MESSAGE":[68,82,10,80]}"#;
        let (line, pos) = entry_line(bytes).unwrap();
        assert_eq!(line, "1970-01-01T00:00:00.000016+00:00 - kernel: DR P");
        assert_eq!(pos, (16, 10));
        // Line breaks and spaces in the host or identifier stay in their field.
        let odd = r#"{"__CURSOR":"s=1;i=1;t=10","__REALTIME_TIMESTAMP":"16","_HOSTNAME":"f w\n1","SYSLOG_IDENTIFIER":"k\rnel","MESSAGE":"DROP"}"#;
        let (line, _) = entry_line(odd).unwrap();
        assert_eq!(line, "1970-01-01T00:00:00.000016+00:00 f_w_1 k_nel: DROP");
        for bad in [
            "",
            "not json",
            r#"{"MESSAGE":"x"}"#,
            r#"{"__CURSOR":"s=1;i=zz;t=10","__REALTIME_TIMESTAMP":"16","MESSAGE":"x"}"#,
            r#"{"__CURSOR":"s=1;i=1;t=10","__REALTIME_TIMESTAMP":"-3","MESSAGE":"x"}"#,
            r#"{"__CURSOR":"s=1;i=1;t=10","__REALTIME_TIMESTAMP":"16","MESSAGE":7}"#,
            r#"{"__CURSOR":"s=1;i=1;t=10","__REALTIME_TIMESTAMP":"16","MESSAGE":[300]}"#,
        ] {
            assert_eq!(entry_line(bad), None, "{bad}");
        }
    }
}
