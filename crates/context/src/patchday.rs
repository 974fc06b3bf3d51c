//! Vendors' scheduled patch days: how long a flaw may stay open after a surge.
//!
//! A small table ships with the project (`patchdays.toml` beside this file, each row
//! with its source); the user's `patchdays.toml` in the data directory adds or
//! replaces vendors. A vendor not in the table gets no patch day: nothing is
//! invented. Pure: text in, dates out.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// The built-in table.
pub const BUILTIN: &str = include_str!("patchdays.toml");

/// How a vendor's patch days are placed (one kind so far; the `rule` key keeps room
/// for others).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The `nth` `weekday` of each of `months` (e.g. the second Tuesday).
    NthWeekday,
}

fn every_month() -> Vec<u32> {
    (1..=12).collect()
}

/// A weekday as the table writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeekdayName {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
}

impl WeekdayName {
    fn chrono(self) -> Weekday {
        match self {
            WeekdayName::Monday => Weekday::Mon,
            WeekdayName::Tuesday => Weekday::Tue,
            WeekdayName::Wednesday => Weekday::Wed,
            WeekdayName::Thursday => Weekday::Thu,
            WeekdayName::Friday => Weekday::Fri,
        }
    }
}

/// One vendor's cycle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchCycle {
    /// Names the vendor goes by in the advisories (lowercase; KEV `vendorProject`,
    /// NVD CPE vendor), e.g. `["microsoft"]`.
    pub vendors: Vec<String>,
    /// What the day is called, e.g. "Microsoft patch day (Update Tuesday)".
    pub name: String,
    pub rule: Rule,
    /// Which occurrence of the weekday in the month (1-5).
    pub nth: u8,
    pub weekday: WeekdayName,
    /// The months with a patch day (default: all).
    #[serde(default = "every_month")]
    pub months: Vec<u32>,
    /// Where the schedule is published.
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    #[serde(default)]
    cycles: Vec<PatchCycle>,
}

/// Why a patch-day table cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchDayError {
    #[error("patch-day table: {0}")]
    Toml(String),
    #[error("patch-day table: version {0}, this build reads version 1")]
    Version(u32),
    #[error("patch-day table: {0}")]
    Invalid(String),
}

/// The vendors' cycles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchDays {
    cycles: Vec<PatchCycle>,
}

impl PatchDays {
    /// The built-in table.
    pub fn builtin() -> PatchDays {
        PatchDays::parse(BUILTIN).unwrap_or_default()
    }

    /// A table from its TOML text (checked: months 1-12, nth 1-5).
    pub fn parse(text: &str) -> Result<PatchDays, PatchDayError> {
        let f: File = toml::from_str(text).map_err(|e| PatchDayError::Toml(e.to_string()))?;
        if f.version != 1 {
            return Err(PatchDayError::Version(f.version));
        }
        for c in &f.cycles {
            if !(1..=5).contains(&c.nth)
                || c.months.is_empty()
                || c.months.iter().any(|m| !(1..=12).contains(m))
            {
                return Err(PatchDayError::Invalid(format!(
                    "{}: nth must be 1-5 and months 1-12",
                    c.name
                )));
            }
            if c.vendors.is_empty() {
                return Err(PatchDayError::Invalid(format!("{}: no vendors", c.name)));
            }
        }
        Ok(PatchDays { cycles: f.cycles })
    }

    /// This table with `other`'s vendors added, replacing the same vendors here.
    pub fn with_overrides(mut self, other: PatchDays) -> PatchDays {
        for c in other.cycles {
            self.cycles
                .retain(|x| !x.vendors.iter().any(|v| c.vendors.contains(v)));
            self.cycles.push(c);
        }
        self
    }

    /// The cycle of a vendor (case-insensitive), if the table has it.
    pub fn cycle(&self, vendor: &str) -> Option<&PatchCycle> {
        let v = vendor.trim().to_ascii_lowercase();
        self.cycles.iter().find(|c| c.vendors.contains(&v))
    }
}

/// The `nth` `weekday` of a month, if the month has one.
fn nth_weekday(year: i32, month: u32, nth: u8, weekday: Weekday) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, nth)
}

impl PatchCycle {
    /// The first scheduled patch day strictly after `after`.
    pub fn next_after(&self, after: NaiveDate) -> Option<NaiveDate> {
        // Every rule has at least one day a year: two years ahead always find one.
        let (y, m) = (after.year(), after.month());
        for k in 0..25u32 {
            let idx = m - 1 + k;
            let (year, month) = (y + (idx / 12) as i32, idx % 12 + 1);
            let day = match self.rule {
                Rule::NthWeekday if self.months.contains(&month) => {
                    nth_weekday(year, month, self.nth, self.weekday.chrono())
                }
                Rule::NthWeekday => None,
            };
            if let Some(d) = day.filter(|d| *d > after) {
                return Some(d);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn next_patch_days_across_months_and_years() {
        let t = PatchDays::builtin();
        let ms = t.cycle("Microsoft").unwrap_or_else(|| unreachable!());
        let oracle = t.cycle("oracle").unwrap_or_else(|| unreachable!());
        // (cycle, after, next)
        let cases = [
            (ms, "2007-04-13", "2007-05-08"), // the DNS RPC advisory: 25 days to wait
            (ms, "2007-04-10", "2007-05-08"), // on patch day itself: the next one
            (ms, "2007-04-09", "2007-04-10"),
            (ms, "2026-12-08", "2027-01-12"), // across the year's end
            (ms, "2026-12-31", "2027-01-12"),
            (ms, "2024-02-29", "2024-03-12"), // leap day
            (ms, "2026-01-31", "2026-02-10"),
            // Oracle's published dates: 2025-07-15, 2025-10-21, 2026-01-20.
            (oracle, "2025-06-30", "2025-07-15"),
            (oracle, "2025-07-15", "2025-10-21"),
            (oracle, "2025-10-22", "2026-01-20"),
            (oracle, "2025-12-31", "2026-01-20"),
            (oracle, "2026-01-21", "2026-04-21"),
        ];
        for (c, after, next) in cases {
            assert_eq!(
                c.next_after(d(after)),
                Some(d(next)),
                "{} after {after}",
                c.name
            );
        }
    }

    #[test]
    fn an_unknown_vendor_has_no_patch_day_and_overrides_replace() {
        let t = PatchDays::builtin();
        assert!(t.cycle("ExampleSoft").is_none());
        let user = PatchDays::parse(
            r#"version = 1
[[cycles]]
vendors = ["examplesoft", "microsoft"]
name = "ExampleSoft release day"
rule = "nth_weekday"
nth = 1
weekday = "wednesday"
source = "our contract"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let t = t.with_overrides(user);
        let c = t.cycle("examplesoft").unwrap_or_else(|| unreachable!());
        assert_eq!(c.next_after(d("2026-12-04")), Some(d("2027-01-06")));
        assert_eq!(
            t.cycle("microsoft").map(|c| c.name.as_str()),
            Some("ExampleSoft release day")
        );
        for bad in [
            "version = 2",
            "version = 1\n[[cycles]]\nvendors = [\"x\"]\nname = \"x\"\nrule = \"nth_weekday\"\nnth = 6\nweekday = \"monday\"\nsource = \"s\"",
            "version = 1\n[[cycles]]\nvendors = [\"x\"]\nname = \"x\"\nrule = \"nth_weekday\"\nnth = 3\nweekday = \"tuesday\"\nmonths = [13]\nsource = \"s\"",
            "version = 1\n[[cycles]]\nvendors = [\"x\"]\nname = \"x\"\nrule = \"weekly\"\nsource = \"s\"",
        ] {
            assert!(PatchDays::parse(bad).is_err(), "{bad}");
        }
    }
}
