//! The STIX 2.1 and MISP exports of a stored warning, checked by the real validators:
//! the seed-surge network (on the dates of the 2007 Windows DNS RPC advisory, with
//! the NVD, CISA KEV and Exploit-DB samples as context) raises its warnings in the
//! centre, both exports are fetched over the API with an analyst token, and the
//! OASIS `stix2-validator` and PyMISP check them. Python and both packages must be
//! installed (`pip install stix2-validator pymisp`): a missing one fails the test.
//! Also the refusals (401, 400, 404) and the blocklist leaving out benign scanners.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_context::advisory::{self, Kind};
use scanwatch_context::explain::Intel;
use scanwatch_context::ContextData;
use scanwatch_event::Timestamp;
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{ContextItem, Role};
use serde_json::Value;
use tower::ServiceExt;

const INSTALL: &str =
    "install them with: pip install stix2-validator pymisp (python 3 is needed too)";

/// Validates a STIX 2.1 document from stdin, strictly (warnings are errors), with
/// every reference resolved inside the bundle. Disabled best-practice checks, each
/// a deliberate choice: 103 (ids are UUIDv5 of the content, so that the same warning
/// gives the same bundle), 301 (source ports are not aggregated, so network traffic
/// has only the destination port), 302 (no hashes of the referenced web pages).
const STIX_CHECK: &str = r#"
import sys
try:
    from stix2validator import ValidationOptions, validate_string
except ImportError as e:
    print(f"missing python package: {e}")
    sys.exit(3)
opts = ValidationOptions(version="2.1", strict=True, enforce_refs=True, disabled=["103", "301", "302"])
r = validate_string(sys.stdin.read(), opts)
for m in list(r.errors) + list(r.warnings):
    print(m)
print("valid" if r.is_valid else "invalid")
sys.exit(0 if r.is_valid else 1)
"#;

/// Loads a MISP event from stdin with PyMISP and checks every attribute's type and
/// category against MISP's own describeTypes; prints a summary as JSON.
const MISP_CHECK: &str = r#"
import sys, json
try:
    from pymisp import MISPEvent
except ImportError as e:
    print(f"missing python package: {e}")
    sys.exit(3)
e = MISPEvent()
e.load(sys.stdin.read())
d = e.describe_types
bad = []
for a in e.attributes:
    if a.type not in d["types"]:
        bad.append(f"unknown type {a.type}")
    elif a.type not in d["category_type_mappings"].get(a.category, []):
        bad.append(f"type {a.type} not allowed in category {a.category}")
print(json.dumps({
    "bad": bad,
    "uuid": str(e.uuid),
    "info": e.info,
    "date": str(e.date),
    "threat_level_id": e.threat_level_id,
    "analysis": e.analysis,
    "distribution": e.distribution,
    "tags": [t.name for t in e.tags],
    # PyMISP reads a datetime attribute's value as a datetime.
    "attributes": [[a.type, str(a.value), bool(a.to_ids)] for a in e.attributes],
    "roundtrip": json.loads(e.to_json())["info"] == e.info,
}))
"#;

/// Runs `python3 -c script` with `input` on stdin; fails (never skips) when python
/// or a package is missing. Returns (exit code, stdout).
fn python(script: &str, input: &str) -> (i32, String) {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {INSTALL}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 3, "{stdout}; {INSTALL}");
    if code != 0 && code != 1 {
        panic!("python failed ({code}): {stdout}\n{stderr}");
    }
    if code != 0 {
        return (code, format!("{stdout}\n{stderr}"));
    }
    (code, stdout)
}

struct Centre {
    state: AppState,
    analyst: String,
    _dir: tempfile::TempDir,
}

fn intel() -> Intel {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../context/testdata/intel");
    let mut advisories = Vec::new();
    for (kind, file) in [
        (Kind::Nvd, "nvdcve-2.0-sample.json"),
        (Kind::Kev, "known_exploited_vulnerabilities.json"),
        (Kind::ExploitDb, "files_exploits.csv"),
    ] {
        let bytes = std::fs::read(format!("{dir}/{file}")).unwrap();
        advisories.extend(advisory::parse(kind, &bytes).unwrap().advisories);
    }
    Intel::new(&advisories)
}

/// The seed-surge network fed to a centre, starting 2007-04-12 so that the surge
/// falls a week after the DNS RPC advisory of the NVD sample.
fn centre() -> Centre {
    let mut sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap();
    sc.start = scanwatch_event::parse_rfc3339("2007-04-12T00:00:00Z").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let analyst = store
        .add_api_token("alice", Role::Analyst, Timestamp(0))
        .unwrap();
    let pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 2 * 86_400_000));
    let mut ctx = ContextData::builtin();
    ctx.intel = intel();
    let state = AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
        Arc::new(|| Timestamp(0)),
    )
    .with_context(ctx);
    for hour in sc.generator() {
        for s in 0..sc.sensors {
            let events: Vec<_> = hour
                .iter()
                .filter(|(i, _)| *i == s)
                .map(|(_, e)| e.clone())
                .collect();
            state.feed(&sc.sensor_name(s), &events).unwrap();
        }
    }
    Centre {
        state,
        analyst,
        _dir: dir,
    }
}

async fn get(c: &Centre, path: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let resp = app(c.state.clone())
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The id and JSON of the stored warning with the most advisories (ties: the
/// lowest id).
async fn richest_alert(c: &Centre) -> (i64, Value) {
    let (st, _, body) = get(c, "/api/v1/alerts", Some(&c.analyst)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(!all.is_empty(), "the seed surge raises warnings");
    let best = all
        .iter()
        .max_by_key(|a| {
            (
                a["advisories"].as_array().map_or(0, Vec::len),
                -a["id"].as_i64().unwrap(),
            )
        })
        .unwrap();
    (best["id"].as_i64().unwrap(), best.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_of_a_seed_warning_pass_the_real_validators() {
    let c = centre();
    let (id, alert) = richest_alert(&c).await;
    assert_eq!(alert["port"], 1025, "{alert}");
    let cves: Vec<&str> = alert["advisories"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .filter(|i| i.starts_with("CVE-"))
        .collect();
    assert!(cves.contains(&"CVE-2007-1748"), "{alert}");

    // STIX.
    let (st, ct, body) = get(&c, &format!("/api/v1/alerts/{id}/stix"), Some(&c.analyst)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(ct, "application/stix+json;version=2.1");
    let bundle: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(bundle["type"], "bundle");
    let objects = bundle["objects"].as_array().unwrap();
    let count = |ty: &str| objects.iter().filter(|o| o["type"] == ty).count();
    let top = alert["top_sources"].as_array().unwrap().len();
    assert!(top > 0);
    assert_eq!(count("indicator"), top);
    assert_eq!(count("observed-data"), top);
    assert_eq!(count("vulnerability"), cves.len());
    assert_eq!(count("identity"), 1);
    for cve in &cves {
        assert!(
            objects.iter().any(|o| o["type"] == "vulnerability"
                && o["external_references"][0]["source_name"] == "cve"
                && o["external_references"][0]["external_id"] == *cve),
            "{cve}"
        );
    }
    let first_ip = alert["top_sources"][0]["ip"].as_str().unwrap();
    let start = alert["window_start"]
        .as_str()
        .unwrap()
        .replace('Z', ".000Z");
    assert!(objects.iter().any(|o| o["type"] == "indicator"
        && o["pattern"] == format!("[ipv4-addr:value = '{first_ip}']")
        && o["valid_from"] == start.as_str()));
    // The same warning gives the same bundle.
    let (_, _, again) = get(&c, &format!("/api/v1/alerts/{id}/stix"), Some(&c.analyst)).await;
    assert_eq!(again, body);
    let (code, out) = python(STIX_CHECK, &body);
    assert_eq!(code, 0, "stix2-validator refused the bundle:\n{out}");
    assert!(out.trim_end().ends_with("valid"), "{out}");

    // MISP.
    let (st, ct, body) = get(&c, &format!("/api/v1/alerts/{id}/misp"), Some(&c.analyst)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let (_, _, again) = get(&c, &format!("/api/v1/alerts/{id}/misp"), Some(&c.analyst)).await;
    assert_eq!(again, body, "deterministic");
    let (code, out) = python(MISP_CHECK, &body);
    assert_eq!(code, 0, "{out}");
    let m: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(m["bad"], serde_json::json!([]), "{m}");
    assert_eq!(m["roundtrip"], true);
    assert!(m["info"]
        .as_str()
        .unwrap()
        .starts_with(&format!("scanwatch alert {id}: TCP/1025")));
    assert_eq!(m["date"], &alert["window_start"].as_str().unwrap()[..10]);
    assert_eq!(m["threat_level_id"], 1, "{m}");
    assert_eq!(m["distribution"], 0);
    assert!(m["tags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("tlp:green")));
    let attrs = m["attributes"].as_array().unwrap();
    let ips: Vec<&Value> = attrs.iter().filter(|a| a[0] == "ip-src").collect();
    assert_eq!(ips.len(), top);
    assert!(
        ips.iter().all(|a| a[2] == true),
        "ip-src attributes are for IDS"
    );
    assert_eq!(ips[0][1], first_ip);
    assert!(attrs
        .iter()
        .any(|a| a[0] == "port" && a[1] == "1025" && a[2] == false));
    for cve in &cves {
        assert!(attrs
            .iter()
            .any(|a| a[0] == "vulnerability" && a[1] == *cve));
    }
    assert!(attrs.iter().any(|a| a[0] == "text"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refusals_and_a_blocklist_without_benign_scanners() {
    let c = centre();
    let (id, alert) = richest_alert(&c).await;
    for ext in ["stix", "misp"] {
        let path = format!("/api/v1/alerts/{id}/{ext}");
        let (st, _, body) = get(&c, &path, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{ext}: {body}");
        let (st, _, _) = get(&c, &path, Some("not-a-token")).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{ext}");
        let (st, _, body) = get(&c, &format!("/api/v1/alerts/x1/{ext}"), Some(&c.analyst)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{ext}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("number"), "{body}");
        // A path that does not decode (not UTF-8) is a 400 with the JSON error body.
        let (st, _, body) = get(&c, &format!("/api/v1/alerts/%FF/{ext}"), Some(&c.analyst)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{ext}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].is_string(), "{body}");
        let (st, _, body) = get(
            &c,
            &format!("/api/v1/alerts/999999/{ext}"),
            Some(&c.analyst),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{ext}: {body}");
    }

    // A top source of a stored warning, then listed as a benign scanner: the
    // blocklist leaves it out and keeps the others.
    let ips: Vec<&str> = alert["top_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ip"].as_str().unwrap())
        .collect();
    let (benign_ip, kept_ip) = (ips[0], ips[1]);
    let (st, _, before) = get(&c, "/api/v1/blocklist?hours=720", Some(&c.analyst)).await;
    assert_eq!(st, StatusCode::OK, "{before}");
    assert!(before.lines().any(|l| l == benign_ip), "{before}");
    let net = serde_json::json!({"net": format!("{benign_ip}/32"), "label": "example-research"});
    c.state
        .store
        .lock()
        .unwrap()
        .put_context_items(
            scanwatch_store::ContextKind::Benign,
            &[ContextItem {
                key: format!("research.txt:{benign_ip}/32"),
                origin: "research.txt".into(),
                json: net.to_string(),
            }],
            Timestamp(0),
        )
        .unwrap();
    let (st, _, after) = get(&c, "/api/v1/blocklist?hours=720", Some(&c.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!after.lines().any(|l| l == benign_ip), "{after}");
    assert!(after.lines().any(|l| l == kept_ip), "{after}");
    let (_, _, nft) = get(
        &c,
        "/api/v1/blocklist?hours=720&format=nft",
        Some(&c.analyst),
    )
    .await;
    assert!(!nft.contains(&format!("{benign_ip} timeout")), "{nft}");
    assert!(nft.contains(&format!("{kept_ip} timeout")), "{nft}");
}
