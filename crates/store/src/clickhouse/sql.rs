//! SQL text: literals (ClickHouse 18.16 has no query parameters, so every string
//! goes through `quote`), times and day partitions.

use super::*;

/// A ClickHouse string literal: `'…'` with `\` and `'` escaped and every control
/// byte written as `\xHH`, so no input can end the literal early.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Whole seconds of a millisecond time, clamped to what `DateTime` holds.
pub(super) fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000).clamp(0, MAX_SECS - 1)
}

/// The UTC day (`YYYYMMDD`, a partition id) of a millisecond time, clamped.
pub(super) fn day_id(ms: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = secs(ms).div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

/// A time range `[from, to)` on a `DateTime` column `dt` and its exact millisecond
/// column `ms` (the first narrows the scan to the partitions, the second decides).
pub(super) fn time_range(dt: &str, ms: &str, from: Timestamp, to: Timestamp) -> String {
    format!(
        "{dt} >= toDateTime({}) AND {dt} <= toDateTime({}) AND {ms} >= {} AND {ms} < {}",
        secs(from.0),
        secs(to.0),
        lit(from.0),
        lit(to.0)
    )
}

/// An `Int64` literal (`i64::MIN` has no literal of its own in ClickHouse SQL).
pub(super) fn lit(v: i64) -> String {
    format!("toInt64('{v}')")
}
