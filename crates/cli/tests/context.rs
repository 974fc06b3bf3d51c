//! Threat context through the binary: importing advisories (idempotent, bad entries
//! reported, nothing lost), benign scanners kept out of warnings, IDS alerts turning
//! a warning into `confirmed`, and the exposure of an asset inventory.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn intel(file: &str) -> PathBuf {
    repo().join("crates/context/testdata/intel").join(file)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-ctx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str], data: &Path) -> Output {
    bin().args(args).arg("--data").arg(data).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn import(kind: &str, file: &Path, data: &Path) -> Output {
    bin()
        .args(["intel", "import", kind])
        .arg(file)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn intel_import_is_idempotent_and_a_bad_file_loses_nothing() {
    let data = tmp("import");
    let nvd = intel("nvdcve-2.0-sample.json");
    let first = import("nvd", &nvd, &data);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("5 nvd entries (5 new, 0 updated, 0 unchanged), 0 refused"),
        "{}",
        text(&first.stdout)
    );
    let again = import("nvd", &nvd, &data);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("(0 new, 0 updated, 5 unchanged)"),
        "{}",
        text(&again.stdout)
    );
    let kev = import("kev", &intel("known_exploited_vulnerabilities.csv"), &data);
    assert!(kev.status.success(), "{}", text(&kev.stderr));

    // Bad entries: named with their number and reason, the good ones imported,
    // exit status 1.
    let bad = import(
        "kev",
        &intel("known_exploited_vulnerabilities-malformed.json"),
        &data,
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = text(&bad.stderr);
    assert!(
        err.contains("entry 2 (CVE-2017-O145): invalid cveID"),
        "{err}"
    );
    assert!(err.contains("entry 3: missing cveID"), "{err}");

    // A file of the wrong kind is refused as a whole, with what was expected.
    let wrong = import("nvd", &intel("known_exploited_vulnerabilities.json"), &data);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("nothing imported from this file"),
        "{}",
        text(&wrong.stderr)
    );
    let missing = import("exploitdb", &data.join("no-such-file.csv"), &data);
    assert_eq!(missing.status.code(), Some(1));

    // Everything imported before is still there.
    let list = run(&["intel", "list"], &data);
    let l = text(&list.stdout);
    assert!(l.contains("nvd: 5 advisories"), "{l}");
    assert!(l.contains("kev: 4 advisories"), "{l}");
    let _ = std::fs::remove_dir_all(&data);
}

fn analyze_json(args: &[&str], files: &[PathBuf]) -> Vec<Value> {
    let out = bin()
        .arg("analyze")
        .args(args)
        .arg("--json")
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn benign_scanners_never_raise_a_warning_by_themselves() {
    let case = repo().join("testdata/silent-port-wakes");
    let input = case.join("input/dshield.log.gz");
    let args: Vec<String> = std::fs::read_to_string(case.join("args"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = analyze_json(&args, std::slice::from_ref(&input));
    let woke = |v: &[Value]| {
        v.iter()
            .filter(|l| l["type"] == "alert" && l["port"] == 47808)
            .count()
    };
    assert!(woke(&before) > 0, "the case warns without a list");

    // Every source that ever sent to udp/47808, as a benign list.
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&input).unwrap());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut gz, &mut log).unwrap();
    let mut sources: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(6) == Some(&"47808")).then(|| f[3])
        })
        .collect();
    sources.sort_unstable();
    sources.dedup();
    assert!(sources.len() > 100, "{}", sources.len());
    let dir = tmp("benign");
    let list = dir.join("research.txt");
    std::fs::write(
        &list,
        sources
            .iter()
            .map(|s| format!("{s} bacnet-research\n"))
            .collect::<String>(),
    )
    .unwrap();
    let mut with = args.clone();
    with.extend(["--benign", list.to_str().unwrap()]);
    let after = analyze_json(&with, std::slice::from_ref(&input));
    assert_eq!(woke(&after), 0, "benign sources alone cannot raise it");
    let summary = after.iter().find(|l| l["type"] == "summary").unwrap();
    let kept_out = summary["benign_events"].as_u64().unwrap();
    assert!(kept_out > 0);
    assert_eq!(summary["benign_by_label"]["bacnet-research"], kept_out);
    let before_summary = before.iter().find(|l| l["type"] == "summary").unwrap();
    assert_eq!(
        before_summary["port_events"].as_u64().unwrap(),
        summary["port_events"].as_u64().unwrap() + kept_out,
        "counted apart, not lost"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The demo network shifted to May 2017: TCP/445 surges on 2017-05-17.
fn demo_2017(extra: &[&str]) -> Vec<Value> {
    let out = bin()
        .args([
            "demo",
            "--offline",
            "--start",
            "2017-05-08",
            "--window",
            "1d",
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn context_of(lines: &[Value], port: u64) -> Value {
    lines
        .iter()
        .find(|l| l["type"] == "alert" && l["port"] == port)
        .unwrap_or_else(|| panic!("no warning on {port}"))
        .clone()
}

#[test]
fn ids_alerts_naming_the_cve_make_a_warning_confirmed() {
    let data = tmp("ids");
    for (kind, f) in [
        ("nvd", "nvdcve-2.0-sample.json"),
        ("kev", "known_exploited_vulnerabilities.json"),
        ("exploitdb", "files_exploits.csv"),
    ] {
        assert!(import(kind, &intel(f), &data).status.success());
    }
    let d = data.to_str().unwrap();
    let without = context_of(&demo_2017(&["--data", d]), 445);
    assert_ne!(without["confidence"], "confirmed");
    assert_eq!(without["verified"], false);
    assert!(without["assessment"]
        .as_str()
        .unwrap()
        .contains("not verified"));

    // Suricata EVE alerts for EternalBlue on tcp/445 during the surge, plus one on
    // another port and one flow record: only the matching ones confirm.
    let eve = data.join("eve.json");
    let mut lines = String::new();
    for i in 0..3 {
        lines.push_str(&format!(
            r#"{{"timestamp":"2017-05-17T1{i}:00:00.000000+0000","flow_id":{i},"event_type":"alert","src_ip":"203.0.113.{i}","src_port":40000,"dest_ip":"198.18.0.5","dest_port":445,"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":2024218,"rev":1,"signature":"ET EXPLOIT Possible ETERNALBLUE MS17-010 Echo Response","category":"A Network Trojan was detected","severity":1,"metadata":{{"cve":["CVE_2017_0144"]}}}}}}"#
        ));
        lines.push('\n');
    }
    lines.push_str(r#"{"timestamp":"2017-05-17T10:00:00.000000+0000","event_type":"alert","src_ip":"203.0.113.9","dest_ip":"198.18.0.5","dest_port":139,"proto":"TCP","alert":{"signature_id":1,"signature":"x CVE-2017-0144","metadata":{}}}"#);
    lines.push('\n');
    lines.push_str(r#"{"timestamp":"2017-05-17T10:00:00.000000+0000","event_type":"flow","src_ip":"203.0.113.9","dest_ip":"198.18.0.5","proto":"TCP"}"#);
    lines.push('\n');
    std::fs::write(&eve, lines).unwrap();
    let with = context_of(
        &demo_2017(&["--data", d, "--ids", eve.to_str().unwrap()]),
        445,
    );
    assert_eq!(with["confidence"], "confirmed", "{}", with["assessment"]);
    assert_eq!(with["verified"], true);
    assert_eq!(with["ids_alerts_on_port"], 3);
    let top = &with["advisories"][0];
    assert_eq!(top["id"], "CVE-2017-0144");
    assert_eq!(top["ids"]["alerts"], 3);
    assert_eq!(top["ids"]["sources"], 3);
    let actions: Vec<&str> = with["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["platform"] == "kev-required-action")
        .map(|m| m["rule"].as_str().unwrap())
        .collect();
    assert!(actions[0].starts_with("CVE-2017-0144: "), "{actions:?}");
    // The narrative says it all in one place.
    let summary = with["summary"].as_str().unwrap();
    assert!(summary.starts_with("TCP/445: "), "{summary}");
    assert!(
        summary.contains("confirmed: 3 IDS alerts naming CVE-2017-0144"),
        "{summary}"
    );

    // The same with `analyze`: the EVE file is simply one of the inputs (a sensor's
    // IDS log), its alerts confirm without --ids.
    let logs = data.join("logs");
    let w = bin()
        .args([
            "demo",
            "--offline",
            "--start",
            "2017-05-08",
            "--window",
            "1d",
            "--write-logs",
        ])
        .arg(&logs)
        .output()
        .unwrap();
    assert!(w.status.success(), "{}", text(&w.stderr));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.push(eve.clone());
    let lines = analyze_json(&["--window", "1d", "--year", "2017", "--data", d], &files);
    let c = context_of(&lines, 445);
    assert_eq!(c["confidence"], "confirmed", "{}", c["assessment"]);
    assert_eq!(c["ids_alerts_on_port"], 3);
    let _ = std::fs::remove_dir_all(&data);
}

/// `demo --offline --start 2007-04-12 --window 1d --json [--data DATA]`: its lines.
fn demo_1d_json(data: Option<&Path>) -> Vec<Value> {
    let mut c = bin();
    c.args([
        "demo",
        "--offline",
        "--start",
        "2007-04-12",
        "--window",
        "1d",
        "--json",
    ]);
    if let Some(d) = data {
        c.arg("--data").arg(d);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first (not an update) warning on TCP `port`.
fn first_warning(lines: &[Value], port: u64) -> &Value {
    lines
        .iter()
        .find(|v| v["type"] == "alert" && v["port"] == port && v["update"] == false)
        .unwrap_or_else(|| panic!("no warning on {port}"))
}

#[test]
fn exposure_ranks_the_inventory_for_the_seed_warning() {
    let data = tmp("exposure");
    assert!(import("nvd", &intel("nvdcve-2.0-sample.json"), &data)
        .status
        .success());
    assert!(import("exploitdb", &intel("files_exploits.csv"), &data)
        .status
        .success());
    let inv = repo().join("crates/context/testdata/assets/inventory.csv");
    let a = bin()
        .args(["assets", "import", "csv"])
        .arg(&inv)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", text(&a.stderr));
    // Re-import: idempotent.
    let again = bin()
        .args(["assets", "import", "csv"])
        .arg(&inv)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(text(&again.stdout).contains("(0 new, 0 updated, 8 unchanged)"));

    let alerts = data.join("alerts.jsonl");
    let lines = demo_1d_json(None);
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&alerts, jsonl).unwrap();
    let ex = bin()
        .args(["exposure", "--json", "--alerts"])
        .arg(&alerts)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(ex.status.success(), "{}", text(&ex.stderr));
    let rows: Vec<Value> = text(&ex.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seed = rows.iter().find(|r| r["port"] == 1025).unwrap();
    assert_eq!(seed["confidence"], "likely");
    let hosts: Vec<&str> = seed["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    // The AD server running DNS first, the unfirewalled DNS+HTTP+FTP host next;
    // the firewalled web server is not exposed.
    assert_eq!(hosts[..2], ["dc1.corp.example", "hosting1.example.net"]);
    assert!(!hosts.contains(&"www.example.net"), "{hosts:?}");
    let reasons = seed["exposed"][0]["reasons"].to_string();
    assert!(
        reasons.contains("active directory server also running dns"),
        "{reasons}"
    );
    let text_out = bin()
        .args(["exposure", "--alerts"])
        .arg(&alerts)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let t = text(&text_out.stdout);
    assert!(t.contains("1. dc1.corp.example 10.20.0.10"), "{t}");

    // The same warning with the imported advisories: what the data says of a fix,
    // Microsoft's next patch day after the surge began, the exploits and their dates.
    // Without the vendor's advisory first: NVD references no fix.
    let lines = demo_1d_json(Some(&data));
    let seed = first_warning(&lines, 1025);
    assert_eq!(
        seed["advisories"][0]["fix"]["status"], "not_referenced",
        "{seed}"
    );
    assert!(seed["advisories"][0]["fix"]["statement"]
        .as_str()
        .unwrap()
        .starts_with("no vendor fix referenced in the imported NVD data"));
    // The vendor's advisory (CSAF) says more: no update when the surge came, the
    // workarounds, and MS07-029 on 2007-05-08.
    assert!(import("csaf", &intel("csaf-ms07-029.json"), &data)
        .status
        .success());
    let lines = demo_1d_json(Some(&data));
    let seed = first_warning(&lines, 1025);
    let lead = &seed["advisories"][0];
    assert_eq!(lead["id"], "CVE-2007-1748", "{lead}");
    assert_eq!(lead["fix"]["status"], "none_at_surge", "{lead}");
    assert!(lead["fix"]["statement"]
        .as_str()
        .unwrap()
        .starts_with("no vendor fix when the surge came (MS07-029"));
    assert_eq!(lead["fix"]["fixed_later"]["date"], "2007-05-08", "{lead}");
    assert_eq!(lead["fix"]["fixed_later"]["days_after_surge"], 19, "{lead}");
    let workarounds = lead["fix"]["workarounds"].as_array().unwrap();
    assert_eq!(workarounds.len(), 3, "{lead}");
    assert!(workarounds[0].as_str().unwrap().contains("RpcProtocol"));
    // An exploited flaw without a fix at the surge: the worst case.
    assert_eq!(seed["priority"], "urgent", "{seed}");
    assert!(seed["priority_reason"]
        .as_str()
        .unwrap()
        .contains("no vendor fix existed when the surge came"));
    // The TCP/445 wave two days later: the same flaw leads it; it follows the
    // TCP/1025 surge.
    let wave = first_warning(&lines, 445);
    assert_eq!(wave["advisories"][0]["id"], "CVE-2007-1748", "{wave}");
    assert_eq!(wave["follows"]["port"], 1025, "{wave}");
    assert_eq!(wave["follows"]["advisory"], "CVE-2007-1748", "{wave}");
    assert_eq!(
        wave["follows"]["episode_start"], seed["episode_start"],
        "{wave}"
    );
    assert!(wave["summary"]
        .as_str()
        .unwrap()
        .contains("Follows the TCP/1025 surge that began 2007-04-19"));
    assert!(
        seed.get("follows").is_none(),
        "the first surge follows nothing"
    );
    assert_eq!(lead["next_patch_day"]["date"], "2007-05-08", "{lead}");
    assert_eq!(lead["next_patch_day"]["days_after_surge"], 19, "{lead}");
    let dates = lead["exploit_dates"].as_array().unwrap();
    assert_eq!(dates.len(), lead["exploits"].as_array().unwrap().len());
    assert!(dates.len() >= 5, "{dates:?}");
    // Exploits known when the surge came (April 2007), not the 2010 modules.
    assert_eq!(lead["exploits_at_surge"], 3, "{lead}");
    assert_eq!(
        dates.iter().filter(|d| d["after_surge"] == true).count(),
        dates.len() - 3,
        "{dates:?}"
    );
    let summary = seed["summary"].as_str().unwrap();
    assert!(
        summary.contains("3 public exploits by the surge (2 published later)"),
        "{summary}"
    );
    assert!(
        summary.contains("Fix: no vendor fix when the surge came")
            && summary.contains("a fix came later: Security update MS07-029 (KB935966)")
            && summary.contains("next scheduled Microsoft patch day (Update Tuesday): 2007-05-08 (19 days after the surge began)")
            && summary.contains("Workaround: Disable remote management over RPC")
            && summary.contains("Priority: urgent")
            // The five exploits with their dates, oldest first.
            && summary.contains("(EDB-3737 2007-04-15, EDB-3740 2007-04-15, EDB-3746 2007-04-18, EDB-16748 2010-07-25, EDB-16366 2010-09-28)"),
        "{summary}"
    );
    // The text report says the same.
    let out = bin()
        .args([
            "demo",
            "--offline",
            "--start",
            "2007-04-12",
            "--window",
            "1d",
            "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for want in [
        "priority: urgent: CVE-2007-1748 is exploited",
        "fix: no vendor fix when the surge came",
        "workaround: Disable remote management over RPC",
        "next scheduled Microsoft patch day (Update Tuesday): 2007-05-08",
        "Follows the TCP/1025 surge that began 2007-04-19",
    ] {
        assert!(report.contains(want), "{want:?} not in:\n{report}");
    }
    let _ = std::fs::remove_dir_all(&data);
}
