//! The CISA Known Exploited Vulnerabilities catalog, as
//! `known_exploited_vulnerabilities.json` (`{title, catalogVersion, dateReleased,
//! count, vulnerabilities: [...]}`) or `known_exploited_vulnerabilities.csv` (one row
//! per entry, header `cveID,vendorProject,product,vulnerabilityName,dateAdded,
//! shortDescription,requiredAction,dueDate,knownRansomwareCampaignUse,notes,cwes`).
//!
//! Both give the same [`Advisory`] per entry. `notes` and `cwes` are not kept. Catalogs
//! from before October 2022 have no `knownRansomwareCampaignUse`; their entries read
//! as not known to be used by ransomware.

use serde_json::Value;

use super::{
    cve_id, iso_date, json_kind, json_root, json_str, non_empty, shown, top_array, Advisory,
    AdvisorySource, Collector, CsvFile, FileError, Parsed, Problem, CVE_ID, DATE,
};

const EXPECTED_JSON: &str = "CISA KEV catalog JSON: an object with a \"vulnerabilities\" array \
                             of records with cveID, vendorProject, product, vulnerabilityName, \
                             dateAdded, ...";
const EXPECTED_CSV: &str = "CISA KEV catalog CSV with header cveID,vendorProject,product,\
                            vulnerabilityName,dateAdded,shortDescription,requiredAction,dueDate,\
                            knownRansomwareCampaignUse,notes,cwes";

/// The fields of one catalog entry, as written.
#[derive(Default)]
struct Fields<'a> {
    cve_id: Option<&'a str>,
    vendor: Option<&'a str>,
    product: Option<&'a str>,
    name: Option<&'a str>,
    date_added: Option<&'a str>,
    short_description: Option<&'a str>,
    required_action: Option<&'a str>,
    due_date: Option<&'a str>,
    ransomware: Option<&'a str>,
}

/// Parses `known_exploited_vulnerabilities.json`.
pub fn parse_kev_json(bytes: &[u8]) -> Result<Parsed, FileError> {
    let root = json_root(bytes, EXPECTED_JSON)?;
    let items = top_array(&root, "vulnerabilities", EXPECTED_JSON)?;
    if !items.is_empty()
        && !items.iter().any(|v| v.get("cveID").is_some())
        && items.iter().any(|v| v.get("cve").is_some())
    {
        return Err(FileError::Shape {
            found: "an NVD CVE feed (entries with \"cve\")".into(),
            expected: EXPECTED_JSON,
        });
    }
    let mut out = Collector::default();
    for (i, item) in items.iter().enumerate() {
        out.push(i + 1, json_entry(item));
    }
    Ok(out.finish())
}

fn json_entry(item: &Value) -> Result<Advisory, (Option<String>, Problem)> {
    let Some(obj) = item.as_object() else {
        return Err((None, Problem::NotAnObject(json_kind(item))));
    };
    // The id first, so that errors in the other fields name the entry.
    let cve = json_str(obj, "cveID").map_err(|p| (None, p))?;
    let id = cve.map(shown);
    let get = |field| json_str(obj, field).map_err(|p| (id.clone(), p));
    record(Fields {
        cve_id: cve,
        vendor: get("vendorProject")?,
        product: get("product")?,
        name: get("vulnerabilityName")?,
        date_added: get("dateAdded")?,
        short_description: get("shortDescription")?,
        required_action: get("requiredAction")?,
        due_date: get("dueDate")?,
        ransomware: get("knownRansomwareCampaignUse")?,
    })
}

/// Parses `known_exploited_vulnerabilities.csv`.
pub fn parse_kev_csv(bytes: &[u8]) -> Result<Parsed, FileError> {
    let mut file = CsvFile::open(
        bytes,
        &[
            &["cveID"],
            &["vendorProject"],
            &["product"],
            &["vulnerabilityName"],
            &["dateAdded"],
        ],
        &[
            "shortDescription",
            "requiredAction",
            "dueDate",
            "knownRansomwareCampaignUse",
        ],
        EXPECTED_CSV,
    )?;
    let mut out = Collector::default();
    let mut record_buf = csv::ByteRecord::new();
    let mut n = 0;
    loop {
        n += 1;
        match file.reader.read_byte_record(&mut record_buf) {
            Ok(false) => break,
            Ok(true) => out.push(n, csv_entry(&file, &record_buf)),
            Err(e) => out.push(n, Err((None, Problem::Csv(e.to_string())))),
        }
    }
    Ok(out.finish())
}

fn csv_entry(
    file: &CsvFile<'_>,
    rec: &csv::ByteRecord,
) -> Result<Advisory, (Option<String>, Problem)> {
    let cve = file.field(rec, "cveID", true).map_err(|p| (None, p))?;
    let id = cve.as_deref().map(shown);
    let req = |c| file.field(rec, c, true).map_err(|p| (id.clone(), p));
    let opt = |c| file.field(rec, c, false).map_err(|p| (id.clone(), p));
    let (vendor, product, name, added) = (
        req("vendorProject")?,
        req("product")?,
        req("vulnerabilityName")?,
        req("dateAdded")?,
    );
    let (desc, action, due, ransom) = (
        opt("shortDescription")?,
        opt("requiredAction")?,
        opt("dueDate")?,
        opt("knownRansomwareCampaignUse")?,
    );
    record(Fields {
        cve_id: cve.as_deref(),
        vendor: vendor.as_deref(),
        product: product.as_deref(),
        name: name.as_deref(),
        date_added: added.as_deref(),
        short_description: desc.as_deref(),
        required_action: action.as_deref(),
        due_date: due.as_deref(),
        ransomware: ransom.as_deref(),
    })
}

fn record(f: Fields<'_>) -> Result<Advisory, (Option<String>, Problem)> {
    let raw_id = f.cve_id.filter(|s| !s.trim().is_empty());
    let raw_id = raw_id.ok_or((None, Problem::Missing("cveID")))?;
    let id = cve_id(raw_id).ok_or_else(|| {
        (
            Some(shown(raw_id.trim())),
            Problem::Invalid {
                field: "cveID",
                value: shown(raw_id),
                expected: CVE_ID,
            },
        )
    })?;
    let fail = |p: Problem| (Some(id.clone()), p);
    let added = f
        .date_added
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| fail(Problem::Missing("dateAdded")))?;
    let added = iso_date(added).ok_or_else(|| {
        fail(Problem::Invalid {
            field: "dateAdded",
            value: shown(added),
            expected: DATE,
        })
    })?;
    let due_date = match f.due_date.and_then(non_empty) {
        None => None,
        Some(d) => Some(iso_date(&d).ok_or_else(|| {
            fail(Problem::Invalid {
                field: "dueDate",
                value: shown(&d),
                expected: DATE,
            })
        })?),
    };

    let mut adv = Advisory::new(AdvisorySource::Kev, id.clone());
    adv.published = Some(added);
    adv.title = f.name.map(str::trim).unwrap_or_default().to_string();
    adv.description = f
        .short_description
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    adv.cves = vec![id];
    adv.vendor = f.vendor.and_then(non_empty);
    adv.product = f.product.and_then(non_empty);
    adv.required_action = f.required_action.and_then(non_empty);
    adv.due_date = due_date;
    adv.known_ransomware = f
        .ransomware
        .is_some_and(|r| r.trim().eq_ignore_ascii_case("known"));
    Ok(adv)
}
