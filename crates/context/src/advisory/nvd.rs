//! NVD CVE JSON 2.0: the response of the NVD CVE API 2.0 and the `nvdcve-2.0-*.json`
//! feeds (`{"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve":
//! {...}}]}`), and a single bare CVE record as kept by per-CVE mirrors.
//!
//! Read from each `cve`: `id`, `published`, the English entry of `descriptions`,
//! `metrics.cvssMetricV31/V30/V2/V40[].cvssData.baseScore`, the `criteria` of the
//! `vulnerable` entries of `configurations[].nodes[].cpeMatch[]`, and `references[]`
//! (`url`, `tags`: whether a patch, a vendor advisory or a mitigation is linked).

use serde_json::{Map, Value};

use super::{
    cpe_vendor_product, cve_id, first_chars, iso_date, json_kind, json_root, json_str, shown,
    top_array, Advisory, AdvisorySource, Collector, FileError, Parsed, Problem, CVE_ID, DATE,
};

const EXPECTED: &str = "NVD CVE JSON 2.0: an object with a \"vulnerabilities\" array of \
                        {\"cve\": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)";

/// NVD titles are the first this many characters of the description.
const TITLE_CHARS: usize = 100;

/// Parses NVD CVE JSON 2.0 (see the module documentation).
pub fn parse_nvd_json(bytes: &[u8]) -> Result<Parsed, FileError> {
    let root = json_root(bytes, EXPECTED)?;
    let mut out = Collector::default();
    // A bare CVE record, as in per-CVE mirrors of the NVD data.
    if let Some(obj) = root.as_object() {
        if !obj.contains_key("vulnerabilities")
            && obj.contains_key("id")
            && obj.contains_key("descriptions")
        {
            out.push(1, cve_record(obj));
            return Ok(out.finish());
        }
        if obj.contains_key("CVE_Items") {
            return Err(FileError::Shape {
                found: "an NVD 1.1 feed (\"CVE_Items\"), a format NVD retired in 2023".into(),
                expected: EXPECTED,
            });
        }
    }
    let items = top_array(&root, "vulnerabilities", EXPECTED)?;
    let is_kev = |v: &Value| v.get("cveID").is_some();
    if !items.is_empty()
        && !items.iter().any(|v| v.get("cve").is_some())
        && items.iter().any(is_kev)
    {
        return Err(FileError::Shape {
            found: "a CISA KEV catalog (entries with \"cveID\")".into(),
            expected: EXPECTED,
        });
    }
    for (i, item) in items.iter().enumerate() {
        out.push(i + 1, entry(item));
    }
    Ok(out.finish())
}

fn entry(item: &Value) -> Result<Advisory, (Option<String>, Problem)> {
    let Some(obj) = item.as_object() else {
        return Err((None, Problem::NotAnObject(json_kind(item))));
    };
    match obj.get("cve") {
        Some(Value::Object(cve)) => cve_record(cve),
        Some(other) => Err((
            None,
            Problem::WrongType {
                field: "cve",
                found: json_kind(other),
                wanted: "an object",
            },
        )),
        None => Err((None, Problem::Missing("cve"))),
    }
}

fn cve_record(cve: &Map<String, Value>) -> Result<Advisory, (Option<String>, Problem)> {
    let raw_id = json_str(cve, "id").map_err(|p| (None, p))?;
    let raw_id = raw_id.ok_or((None, Problem::Missing("id")))?;
    let id = cve_id(raw_id).ok_or_else(|| {
        (
            Some(shown(raw_id)),
            Problem::Invalid {
                field: "id",
                value: shown(raw_id),
                expected: CVE_ID,
            },
        )
    })?;
    let fail = |p: Problem| (Some(id.clone()), p);
    let published = json_str(cve, "published")
        .map_err(fail)?
        .ok_or_else(|| fail(Problem::Missing("published")))?;
    let published = iso_date(published).ok_or_else(|| {
        fail(Problem::Invalid {
            field: "published",
            value: shown(published),
            expected: DATE,
        })
    })?;

    let description = english_description(cve.get("descriptions"));
    let cpes = vulnerable_cpes(cve.get("configurations"));
    let (vendor, product) = cpes
        .iter()
        .find_map(|c| cpe_vendor_product(c))
        .map_or((None, None), |(v, p)| (Some(v), Some(p)));

    let mut adv = Advisory::new(AdvisorySource::Nvd, id.clone());
    adv.published = Some(published);
    adv.title = first_chars(&description, TITLE_CHARS);
    adv.description = description;
    adv.cves = vec![id];
    adv.cpes = cpes;
    adv.vendor = vendor;
    adv.product = product;
    adv.cvss = cvss(cve.get("metrics"));
    adv.references = references(cve.get("references"));
    Ok(adv)
}

/// The `references` with a URL, in order, at most [`super::MAX_REFERENCES`]; a
/// reference of another shape is left out.
fn references(refs: Option<&Value>) -> Vec<super::Reference> {
    let Some(list) = refs.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|r| {
            let url = r.get("url")?.as_str()?;
            let tags = r
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .take(16)
                        .map(|s| s.chars().take(64).collect())
                        .collect()
                })
                .unwrap_or_default();
            super::Reference::new(url, tags)
        })
        .take(super::MAX_REFERENCES)
        .collect()
}

/// The English description, else the first one, else empty.
fn english_description(descriptions: Option<&Value>) -> String {
    let Some(list) = descriptions.and_then(Value::as_array) else {
        return String::new();
    };
    fn value(d: &Value) -> Option<&str> {
        d.get("value").and_then(Value::as_str).map(str::trim)
    }
    list.iter()
        .find(|d| d.get("lang").and_then(Value::as_str) == Some("en"))
        .and_then(value)
        .or_else(|| list.iter().find_map(value))
        .unwrap_or_default()
        .to_string()
}

/// The `criteria` of every vulnerable `cpeMatch`, in order, without repeats.
fn vulnerable_cpes(configurations: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let configs = configurations
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for config in configs {
        let nodes = config
            .get("nodes")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for node in nodes {
            let matches = node
                .get("cpeMatch")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for m in matches {
                if m.get("vulnerable").and_then(Value::as_bool) != Some(true) {
                    continue;
                }
                if let Some(c) = m.get("criteria").and_then(Value::as_str) {
                    if !out.iter().any(|o| o == c) {
                        out.push(c.to_string());
                    }
                }
            }
        }
    }
    out
}

/// The highest base score of the newest CVSS version present.
fn cvss(metrics: Option<&Value>) -> Option<f32> {
    let metrics = metrics?;
    for key in [
        "cvssMetricV31",
        "cvssMetricV30",
        "cvssMetricV2",
        "cvssMetricV40",
    ] {
        let Some(list) = metrics.get(key).and_then(Value::as_array) else {
            continue;
        };
        let best = list
            .iter()
            .filter_map(|m| m.get("cvssData")?.get("baseScore")?.as_f64())
            .filter(|s| (0.0..=10.0).contains(s))
            .fold(None, |best: Option<f64>, s| {
                Some(best.map_or(s, |b| b.max(s)))
            });
        if let Some(b) = best {
            return Some(b as f32);
        }
    }
    None
}
