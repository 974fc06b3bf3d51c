//! CSAF 2.0 security advisories (OASIS Common Security Advisory Framework, the format
//! vendors such as Microsoft, Cisco, Red Hat, Siemens and SAP publish their advisories
//! in): `{"document": {"csaf_version": "2.0", "tracking": {...}, ...},
//! "vulnerabilities": [{"cve": ..., "remediations": [...]}]}`.
//!
//! What NVD and KEV do not say, a vendor's CSAF document does: whether a fix exists
//! and since when (`vendor_fix` with its date), that none exists yet
//! (`none_available`, `no_fix_planned`), and the workarounds and mitigations with
//! their text. One [`Advisory`] per vulnerability with a `cve`; read from it: `cve`,
//! `title`, the `description` (else `summary`) note, `release_date` (else the
//! document's `tracking.initial_release_date`), `references[]` and
//! `remediations[]` (`category`, `details`, `date`, `url`). The vendor is the
//! publisher's name when its category is `vendor`, else the first vendor branch of
//! the product tree.

use serde_json::{Map, Value};

use super::{
    cve_id, first_chars, iso_date, json_kind, json_root, json_str, shown, top_array, Advisory,
    AdvisorySource, Collector, FileError, Parsed, Problem, Reference, Remediation,
    RemediationCategory, CVE_ID, DATE,
};

const EXPECTED: &str = "CSAF 2.0 advisory: an object with \"document\" (with csaf_version) and a \
                        \"vulnerabilities\" array";

/// Remediations kept per vulnerability, and the longest `details` kept.
const MAX_REMEDIATIONS: usize = 32;
const MAX_DETAILS: usize = 1000;

/// Parses one CSAF 2.0 document (see the module documentation).
pub fn parse_csaf_json(bytes: &[u8]) -> Result<Parsed, FileError> {
    let root = json_root(bytes, EXPECTED)?;
    let doc = match root.get("document") {
        Some(Value::Object(d)) if d.contains_key("csaf_version") => d,
        Some(Value::Object(_)) => {
            return Err(FileError::Shape {
                found: "a \"document\" without csaf_version".into(),
                expected: EXPECTED,
            })
        }
        Some(other) => {
            return Err(FileError::Shape {
                found: format!("\"document\" as {}", json_kind(other)),
                expected: EXPECTED,
            })
        }
        None => {
            return Err(FileError::Shape {
                found: format!("{} without \"document\"", json_kind(&root)),
                expected: EXPECTED,
            })
        }
    };
    let items = match root.get("vulnerabilities") {
        // A CSAF document may list no vulnerability (an informational advisory).
        None => return Ok(Parsed::default()),
        Some(_) => top_array(&root, "vulnerabilities", EXPECTED)?,
    };
    let meta = Document::read(doc, root.get("product_tree"));
    let mut out = Collector::default();
    for (i, item) in items.iter().enumerate() {
        out.push(i + 1, entry(item, &meta));
    }
    Ok(out.finish())
}

/// What every vulnerability of the document shares.
struct Document {
    /// `tracking.id: title`, how remediations name where they come from.
    name: String,
    title: String,
    released: Option<String>,
    vendor: Option<String>,
    references: Vec<Reference>,
}

impl Document {
    fn read(doc: &Map<String, Value>, tree: Option<&Value>) -> Document {
        fn s(v: Option<&Value>) -> &str {
            v.and_then(Value::as_str).map(str::trim).unwrap_or("")
        }
        let tracking = doc.get("tracking");
        let id = s(tracking.and_then(|t| t.get("id")));
        let title = s(doc.get("title")).to_string();
        let name = match (id.is_empty(), title.is_empty()) {
            (false, false) => format!("{id}: {title}"),
            (false, true) => id.to_string(),
            (true, _) => title.clone(),
        };
        let publisher = doc.get("publisher");
        let vendor = if s(publisher.and_then(|p| p.get("category"))) == "vendor" {
            Some(s(publisher.and_then(|p| p.get("name"))).to_string())
        } else {
            tree_vendor(tree)
        }
        .filter(|v| !v.is_empty());
        Document {
            name: first_chars(&name, 200),
            title,
            released: iso_date(s(tracking.and_then(|t| t.get("initial_release_date")))),
            vendor,
            references: references(doc.get("references")),
        }
    }
}

/// The name of the first `vendor` branch of the product tree (depth first, bounded).
fn tree_vendor(tree: Option<&Value>) -> Option<String> {
    let mut stack: Vec<(&Value, usize)> = tree
        .and_then(|t| t.get("branches"))
        .and_then(Value::as_array)
        .map(|b| b.iter().rev().map(|v| (v, 0)).collect())
        .unwrap_or_default();
    let mut seen = 0;
    while let Some((b, depth)) = stack.pop() {
        seen += 1;
        if seen > 10_000 || depth > 32 {
            return None;
        }
        if b.get("category").and_then(Value::as_str) == Some("vendor") {
            return b.get("name").and_then(Value::as_str).map(str::to_string);
        }
        if let Some(kids) = b.get("branches").and_then(Value::as_array) {
            stack.extend(kids.iter().rev().map(|v| (v, depth + 1)));
        }
    }
    None
}

/// CSAF `references[]` (`url`, `category`, `summary`): the URL, tagged with the
/// category (`self`, `external`).
fn references(refs: Option<&Value>) -> Vec<Reference> {
    refs.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|r| {
                    let tags = r
                        .get("category")
                        .and_then(Value::as_str)
                        .map(|c| vec![first_chars(c, 64)])
                        .unwrap_or_default();
                    Reference::new(r.get("url")?.as_str()?, tags)
                })
                .take(super::MAX_REFERENCES)
                .collect()
        })
        .unwrap_or_default()
}

/// The text of the first note of `category` (`description`, `summary`).
fn note(v: &Map<String, Value>, category: &str) -> Option<String> {
    v.get("notes")?
        .as_array()?
        .iter()
        .find(|n| n.get("category").and_then(Value::as_str) == Some(category))
        .and_then(|n| n.get("text")?.as_str())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn entry(item: &Value, doc: &Document) -> Result<Advisory, (Option<String>, Problem)> {
    let Some(v) = item.as_object() else {
        return Err((None, Problem::NotAnObject(json_kind(item))));
    };
    let raw = json_str(v, "cve").map_err(|p| (None, p))?;
    let raw = raw.ok_or((None, Problem::Missing("cve")))?;
    let id = cve_id(raw).ok_or_else(|| {
        (
            Some(shown(raw)),
            Problem::Invalid {
                field: "cve",
                value: shown(raw),
                expected: CVE_ID,
            },
        )
    })?;
    let fail = |p: Problem| (Some(id.clone()), p);
    let released = match json_str(v, "release_date").map_err(fail)? {
        Some(d) => Some(iso_date(d).ok_or_else(|| {
            fail(Problem::Invalid {
                field: "release_date",
                value: shown(d),
                expected: DATE,
            })
        })?),
        None => doc.released.clone(),
    };
    let mut remediations = Vec::new();
    for r in v
        .get("remediations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .take(MAX_REMEDIATIONS)
    {
        remediations.push(remediation(r, doc).map_err(fail)?);
    }
    let description = note(v, "description")
        .or_else(|| note(v, "summary"))
        .unwrap_or_default();
    let title = json_str(v, "title")
        .map_err(fail)?
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map_or_else(|| doc.title.clone(), str::to_string);
    let mut adv = Advisory::new(AdvisorySource::Csaf, id.clone());
    adv.published = released;
    adv.title = first_chars(&title, 200);
    adv.description = first_chars(&description, 4000);
    adv.cves = vec![id];
    adv.vendor = doc.vendor.clone();
    adv.references = doc.references.clone();
    for r in references(v.get("references")) {
        if adv.references.len() < super::MAX_REFERENCES && !adv.references.contains(&r) {
            adv.references.push(r);
        }
    }
    adv.remediations = remediations;
    Ok(adv)
}

fn remediation(r: &Value, doc: &Document) -> Result<Remediation, Problem> {
    let Some(r) = r.as_object() else {
        return Err(Problem::NotAnObject(json_kind(r)));
    };
    let category = json_str(r, "category")?.ok_or(Problem::Missing("remediations[].category"))?;
    let category = RemediationCategory::from_csaf(category).ok_or_else(|| Problem::Invalid {
        field: "remediations[].category",
        value: shown(category),
        expected: "mitigation, no_fix_planned, none_available, vendor_fix, workaround \
                   (CSAF 2.0) or fix_planned, optional_patch (2.1)",
    })?;
    let details = json_str(r, "details")?
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .ok_or(Problem::Missing("remediations[].details"))?;
    let date = match json_str(r, "date")? {
        Some(d) => Some(iso_date(d).ok_or_else(|| Problem::Invalid {
            field: "remediations[].date",
            value: shown(d),
            expected: DATE,
        })?),
        None => None,
    };
    let url = json_str(r, "url")?
        .map(str::trim)
        .filter(|u| !u.is_empty() && u.len() <= 2048)
        .map(str::to_string);
    Ok(Remediation {
        category,
        details: first_chars(details, MAX_DETAILS),
        date,
        url,
        advisory: doc.name.clone(),
    })
}
