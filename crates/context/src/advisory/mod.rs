//! Advisory import: parsers for the NVD CVE JSON 2.0 feeds, the CISA Known Exploited
//! Vulnerabilities catalog (JSON and CSV), Exploit-DB's `files_exploits.csv` and
//! vendors' CSAF 2.0 advisories (fixes and workarounds with their dates), all
//! into one [`Advisory`] record, plus the mapping from an advisory to the ports it puts
//! at risk ([`mapping`]).
//!
//! Every parser is pure (bytes in, [`Parsed`] out, no I/O) and never panics, whatever
//! the input. A file that cannot be read as the format at all (not JSON, the wrong
//! top-level shape, a CSV header without the columns the format needs) is a
//! [`FileError`]; inside a good file, an entry without a valid id or date is skipped
//! and reported as an [`EntryError`] while the rest go on.
//!
//! | format | file | id | `published` |
//! | --- | --- | --- | --- |
//! | [`Kind::Nvd`] | NVD API 2.0 response or `nvdcve-2.0-*.json` feed | `cve.id` | `cve.published` |
//! | [`Kind::Kev`] | `known_exploited_vulnerabilities.json` or `.csv` | `cveID` | `dateAdded` |
//! | [`Kind::ExploitDb`] | `files_exploits.csv` | `EDB-` + `id` | `date_published` |
//! | [`Kind::Csaf`] | a vendor's CSAF 2.0 advisory (`.json`) | `vulnerabilities[].cve` | `release_date`, else `tracking.initial_release_date` |

mod csaf;
mod exploitdb;
mod kev;
pub mod mapping;
mod nvd;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use csaf::parse_csaf_json;
pub use exploitdb::parse_exploitdb_csv;
pub use kev::{parse_kev_csv, parse_kev_json};
pub use mapping::{matches_port, port_matches, MatchStrength, PortMatch};
pub use nvd::parse_nvd_json;

/// Where an advisory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvisorySource {
    Nvd,
    Kev,
    ExploitDb,
    /// A vendor's CSAF 2.0 advisory.
    Csaf,
}

impl AdvisorySource {
    /// The lowercase name used in JSON (`nvd`, `kev`, `exploitdb`, `csaf`).
    pub fn name(self) -> &'static str {
        match self {
            AdvisorySource::Nvd => "nvd",
            AdvisorySource::Kev => "kev",
            AdvisorySource::ExploitDb => "exploitdb",
            AdvisorySource::Csaf => "csaf",
        }
    }
}

/// What a vendor says can be done about a vulnerability (CSAF `remediations[].category`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationCategory {
    /// A fix from the vendor (an update, a new version).
    VendorFix,
    /// A patch the vendor offers but does not require (CSAF 2.1).
    OptionalPatch,
    /// The vendor is working on a fix (CSAF 2.1).
    FixPlanned,
    /// No fix is available yet.
    NoneAvailable,
    /// The vendor will not fix it.
    NoFixPlanned,
    /// A change of configuration or deployment that avoids the flaw.
    Workaround,
    /// Something that reduces the risk without avoiding the flaw.
    Mitigation,
}

impl RemediationCategory {
    /// The category as CSAF writes it.
    pub fn from_csaf(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "vendor_fix" => Self::VendorFix,
            "optional_patch" => Self::OptionalPatch,
            "fix_planned" => Self::FixPlanned,
            "none_available" => Self::NoneAvailable,
            "no_fix_planned" => Self::NoFixPlanned,
            "workaround" => Self::Workaround,
            "mitigation" => Self::Mitigation,
            _ => return None,
        })
    }

    /// A fix (vendor fix or optional patch).
    pub fn is_fix(self) -> bool {
        matches!(self, Self::VendorFix | Self::OptionalPatch)
    }

    /// The vendor says there is no fix (yet, or ever).
    pub fn is_no_fix(self) -> bool {
        matches!(
            self,
            Self::FixPlanned | Self::NoneAvailable | Self::NoFixPlanned
        )
    }
}

/// One remediation of a vendor's CSAF advisory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    pub category: RemediationCategory,
    /// The vendor's text (at most 1,000 characters).
    pub details: String,
    /// `YYYY-MM-DD`: when it became available (for a fix: when it was released).
    pub date: Option<String>,
    pub url: Option<String>,
    /// The advisory it comes from: `tracking.id: title`.
    pub advisory: String,
}

/// A link an advisory gives, with NVD's tags (`Patch`, `Vendor Advisory`,
/// `Mitigation`, `Exploit`, …): what says whether a fix or a workaround exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub url: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Reference {
    /// A reference to `url` (trimmed; none when empty or over 2,048 bytes).
    pub(crate) fn new(url: &str, tags: Vec<String>) -> Option<Reference> {
        let url = url.trim();
        (!url.is_empty() && url.len() <= 2048).then(|| Reference {
            url: url.to_string(),
            tags,
        })
    }

    pub fn tagged(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// One advisory, whatever its source. Fields a source does not have are empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub source: AdvisorySource,
    /// `CVE-2007-1748` for NVD and KEV entries, `EDB-3737` for Exploit-DB entries.
    pub id: String,
    /// `YYYY-MM-DD`: NVD `published`, KEV `dateAdded`, Exploit-DB `date_published`.
    pub published: Option<String>,
    /// KEV `vulnerabilityName`, Exploit-DB `description`, NVD: the first 100
    /// characters of the English description.
    pub title: String,
    pub description: String,
    /// CVE ids the entry is about: NVD and KEV the entry itself, Exploit-DB those in
    /// its `codes` column.
    pub cves: Vec<String>,
    /// NVD: the `criteria` of vulnerable configuration matches (`cpe:2.3:...`).
    pub cpes: Vec<String>,
    /// KEV `vendorProject`; NVD: the vendor of the first CPE.
    pub vendor: Option<String>,
    /// KEV `product`; NVD: the product of the first CPE.
    pub product: Option<String>,
    /// Ports the source names explicitly (Exploit-DB `port` column, when not zero).
    pub ports: Vec<u16>,
    /// Exploit-DB `platform` (`windows`, `linux`, `multiple`, ...).
    pub platform: Option<String>,
    /// Exploit-DB `type`: `remote`, `dos`, `local` or `webapps`.
    pub exploit_type: Option<String>,
    /// NVD: the highest base score of the newest CVSS version present (v3.1, else
    /// v3.0, else v2, else v4.0).
    pub cvss: Option<f32>,
    /// KEV `requiredAction`.
    pub required_action: Option<String>,
    /// KEV `dueDate`, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// KEV `knownRansomwareCampaignUse` is `Known`.
    pub known_ransomware: bool,
    /// Exploit-DB `verified` column.
    pub verified: Option<bool>,
    /// NVD `references` (at most [`MAX_REFERENCES`]); stored advisories of older
    /// builds have none.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// CSAF: the vendor's remediations (fixes, workarounds, "none available").
    #[serde(default)]
    pub remediations: Vec<Remediation>,
}

/// References kept per advisory.
pub const MAX_REFERENCES: usize = 64;

impl Advisory {
    /// An advisory with only its source and id set.
    pub fn new(source: AdvisorySource, id: impl Into<String>) -> Self {
        Advisory {
            source,
            id: id.into(),
            published: None,
            title: String::new(),
            description: String::new(),
            cves: Vec::new(),
            cpes: Vec::new(),
            vendor: None,
            product: None,
            ports: Vec::new(),
            platform: None,
            exploit_type: None,
            cvss: None,
            required_action: None,
            due_date: None,
            known_ransomware: false,
            verified: None,
            references: Vec::new(),
            remediations: Vec::new(),
        }
    }
}

/// One entry of a file that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryError {
    /// 1-based: the position in the JSON `vulnerabilities` array, or the CSV data
    /// record (the header not counted).
    pub entry: usize,
    /// The entry's id when it has one (also an invalid one, as written).
    pub id: Option<String>,
    pub reason: String,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "entry {} ({}): {}", self.entry, id, self.reason),
            None => write!(f, "entry {}: {}", self.entry, self.reason),
        }
    }
}

impl std::error::Error for EntryError {}

/// The whole file cannot be read as the format asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("empty input; expected {expected}")]
    Empty { expected: &'static str },
    #[error("not JSON ({detail}); expected {expected}")]
    NotJson {
        detail: String,
        expected: &'static str,
    },
    #[error("found {found}; expected {expected}")]
    Shape {
        found: String,
        expected: &'static str,
    },
    #[error("unreadable CSV header ({detail}); expected {expected}")]
    NotCsv {
        detail: String,
        expected: &'static str,
    },
    #[error("CSV header lacks column(s) {missing}; expected {expected}")]
    MissingColumns {
        /// The missing column names, comma-separated.
        missing: String,
        expected: &'static str,
    },
}

/// What a parser read: the advisories and the entries it skipped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Parsed {
    pub advisories: Vec<Advisory>,
    pub errors: Vec<EntryError>,
}

/// An advisory file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// NVD CVE JSON 2.0.
    Nvd,
    /// CISA KEV catalog, JSON or CSV (told apart by the content).
    Kev,
    /// Exploit-DB `files_exploits.csv`.
    ExploitDb,
    /// A vendor's CSAF 2.0 advisory.
    Csaf,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Nvd, Kind::Kev, Kind::ExploitDb, Kind::Csaf];

    /// The name used on the command line and in JSON (`nvd`, `kev`, `exploitdb`,
    /// `csaf`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nvd => "nvd",
            Kind::Kev => "kev",
            Kind::ExploitDb => "exploitdb",
            Kind::Csaf => "csaf",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Kind::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown advisory format {0:?}; expected nvd, kev, exploitdb or csaf")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nvd" => Ok(Kind::Nvd),
            "kev" | "cisa-kev" => Ok(Kind::Kev),
            "exploitdb" | "exploit-db" | "edb" => Ok(Kind::ExploitDb),
            "csaf" => Ok(Kind::Csaf),
            _ => Err(UnknownKind(s.to_string())),
        }
    }
}

/// Parses `bytes` as `kind`. KEV files are read as JSON when they start with `{`,
/// else as CSV.
pub fn parse(kind: Kind, bytes: &[u8]) -> Result<Parsed, FileError> {
    match kind {
        Kind::Nvd => parse_nvd_json(bytes),
        Kind::Kev if looks_like_json(bytes) => parse_kev_json(bytes),
        Kind::Kev => parse_kev_csv(bytes),
        Kind::ExploitDb => parse_exploitdb_csv(bytes),
        Kind::Csaf => parse_csaf_json(bytes),
    }
}

/// Guesses the format of a file from its first 64 KiB: the KEV JSON keys
/// (`catalogVersion`, `cveID`), the NVD ones (`NVD_CVE`, `"cve"`,
/// `sourceIdentifier`), or the CSV header of KEV or Exploit-DB.
pub fn sniff(bytes: &[u8]) -> Option<Kind> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let text = head.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') || text.starts_with('[') {
        if text.contains("\"csaf_version\"") {
            return Some(Kind::Csaf);
        }
        if text.contains("\"catalogVersion\"") || text.contains("\"cveID\"") {
            return Some(Kind::Kev);
        }
        if text.contains("\"NVD_CVE\"")
            || text.contains("\"cve\"")
            || text.contains("\"sourceIdentifier\"")
        {
            return Some(Kind::Nvd);
        }
        return None;
    }
    let header: Vec<String> = text
        .lines()
        .next()?
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let has = |name: &str| header.iter().any(|c| c == name);
    if has("cveid") && has("vendorproject") {
        Some(Kind::Kev)
    } else if has("id")
        && has("file")
        && has("description")
        && (has("date_published") || has("date"))
    {
        Some(Kind::ExploitDb)
    } else {
        None
    }
}

/// Why one entry was skipped (rendered into [`EntryError::reason`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Problem {
    #[error("entry is {0}, not an object")]
    NotAnObject(&'static str),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{field} is {found}, not {wanted}")]
    WrongType {
        field: &'static str,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("invalid {field} {value:?}; expected {expected}")]
    Invalid {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("record has {found} fields; the {column:?} column needs {needed}")]
    ShortRecord {
        found: usize,
        column: &'static str,
        needed: usize,
    },
    #[error("unreadable CSV record: {0}")]
    Csv(String),
}

pub(crate) const CVE_ID: &str = "CVE-YYYY-NNNN";
pub(crate) const DATE: &str = "YYYY-MM-DD";

/// Collects entry results into a [`Parsed`].
#[derive(Default)]
pub(crate) struct Collector {
    parsed: Parsed,
}

impl Collector {
    pub(crate) fn push(
        &mut self,
        entry: usize,
        result: Result<Advisory, (Option<String>, Problem)>,
    ) {
        match result {
            Ok(a) => self.parsed.advisories.push(a),
            Err((id, problem)) => self.parsed.errors.push(EntryError {
                entry,
                id,
                reason: problem.to_string(),
            }),
        }
    }

    pub(crate) fn finish(self) -> Parsed {
        self.parsed
    }
}

/// The input without a UTF-8 byte order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn looks_like_json(bytes: &[u8]) -> bool {
    strip_bom(bytes)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{' || b == b'[')
}

/// A value shortened for an error message.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `YYYY-MM-DD` from a date or a date-time that starts with one
/// (`2007-04-13T18:19:00.000`), when it is a real calendar date.
pub(crate) fn iso_date(s: &str) -> Option<String> {
    let s = s.trim();
    let date = s.get(..10)?;
    let rest = &s[10..];
    if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
        return None;
    }
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
        return None;
    }
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(date.to_string())
}

/// A CVE id in canonical form (`CVE-2007-1748`), or `None` when `s` is not one.
pub(crate) fn cve_id(s: &str) -> Option<String> {
    let s = s.trim();
    if !s.get(..4)?.eq_ignore_ascii_case("CVE-") {
        return None;
    }
    let (year, number) = s[4..].split_once('-')?;
    let ok = year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("CVE-{year}-{number}"))
}

/// The first `n` characters of `s`, trailing whitespace removed.
pub(crate) fn first_chars(s: &str, n: usize) -> String {
    let end = s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    s[..end].trim_end().to_string()
}

/// `Some(trimmed)` unless `s` is empty or only whitespace.
pub(crate) fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Vendor and product of a CPE 2.3 formatted string
/// (`cpe:2.3:o:microsoft:windows_2000:*:sp4:*:*:*:*:*:*` → `microsoft`,
/// `windows_2000`), with backslash escapes removed; `None` for anything else or a
/// wildcard vendor or product.
pub fn cpe_vendor_product(cpe: &str) -> Option<(String, String)> {
    let mut parts = Vec::with_capacity(6);
    let mut cur = String::new();
    let mut chars = cpe.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => {
                parts.push(std::mem::take(&mut cur));
                if parts.len() == 5 {
                    break;
                }
            }
            _ => cur.push(c),
        }
    }
    if parts.len() < 5 {
        parts.push(cur);
    }
    if parts.len() < 5 || !parts[0].eq_ignore_ascii_case("cpe") || parts[1] != "2.3" {
        return None;
    }
    let real = |s: &str| !s.is_empty() && s != "*" && s != "-";
    (real(&parts[3]) && real(&parts[4])).then(|| (parts[3].clone(), parts[4].clone()))
}

/// The JSON document in `bytes`, or why it is not one.
pub(crate) fn json_root(
    bytes: &[u8],
    expected: &'static str,
) -> Result<serde_json::Value, FileError> {
    let bytes = strip_bom(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FileError::Empty { expected });
    }
    serde_json::from_slice(bytes).map_err(|e| FileError::NotJson {
        detail: e.to_string(),
        expected,
    })
}

/// What kind of JSON value `v` is, for messages.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The array under `key` of the top-level object.
pub(crate) fn top_array<'a>(
    root: &'a serde_json::Value,
    key: &str,
    expected: &'static str,
) -> Result<&'a Vec<serde_json::Value>, FileError> {
    let Some(obj) = root.as_object() else {
        return Err(FileError::Shape {
            found: format!("{} at the top level", json_kind(root)),
            expected,
        });
    };
    match obj.get(key) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(other) => Err(FileError::Shape {
            found: format!("{key:?} as {}", json_kind(other)),
            expected,
        }),
        None => {
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(6).collect();
            if obj.len() > keys.len() {
                keys.push("...");
            }
            Err(FileError::Shape {
                found: format!("an object without {key:?} (keys: {})", keys.join(", ")),
                expected,
            })
        }
    }
}

/// A string field of a JSON object: `Ok(None)` when absent or null, an error when
/// it is some other type.
pub(crate) fn json_str<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<Option<&'a str>, Problem> {
    match obj.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Problem::WrongType {
            field,
            found: json_kind(other),
            wanted: "a string",
        }),
    }
}

/// A CSV file opened with its header checked: the reader positioned on the first data
/// record and the index of each known column.
pub(crate) struct CsvFile<'a> {
    pub(crate) reader: csv::Reader<&'a [u8]>,
    columns: HashMap<&'static str, usize>,
}

impl<'a> CsvFile<'a> {
    /// Opens `bytes` and finds the columns. Each entry of `required` lists accepted
    /// names for one column (the first is the one reported when missing); `optional`
    /// columns may be absent. Names compare case-insensitively.
    pub(crate) fn open(
        bytes: &'a [u8],
        required: &[&[&'static str]],
        optional: &[&'static str],
        expected: &'static str,
    ) -> Result<Self, FileError> {
        let bytes = strip_bom(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(FileError::Empty { expected });
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(bytes);
        let header = reader
            .byte_headers()
            .map_err(|e| FileError::NotCsv {
                detail: e.to_string(),
                expected,
            })?
            .clone();
        let names: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
            .collect();
        let find = |name: &str| names.iter().position(|n| n == &name.to_ascii_lowercase());
        let mut columns = HashMap::new();
        let mut missing = Vec::new();
        for alternatives in required {
            match alternatives.iter().find_map(|a| find(a)) {
                Some(i) => {
                    columns.insert(alternatives[0], i);
                }
                None => missing.push(alternatives[0]),
            }
        }
        if !missing.is_empty() {
            return Err(FileError::MissingColumns {
                missing: missing.join(", "),
                expected,
            });
        }
        for name in optional {
            if let Some(i) = find(name) {
                columns.insert(name, i);
            }
        }
        Ok(CsvFile { reader, columns })
    }

    /// The value of `column` in `record`: `Ok(None)` for an optional column the file
    /// lacks or a record too short to hold it when `required` is false.
    pub(crate) fn field<'r>(
        &self,
        record: &'r csv::ByteRecord,
        column: &'static str,
        required: bool,
    ) -> Result<Option<Cow<'r, str>>, Problem> {
        let Some(&i) = self.columns.get(column) else {
            return Ok(None);
        };
        match record.get(i) {
            Some(raw) => Ok(Some(String::from_utf8_lossy(raw))),
            None if required => Err(Problem::ShortRecord {
                found: record.len(),
                column,
                needed: i + 1,
            }),
            None => Ok(None),
        }
    }
}
