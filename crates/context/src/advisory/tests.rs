//! Tests of the advisory parsers and the port mapping, on real entries kept under
//! `testdata/intel/` (see `SOURCES.md` there).

use std::fmt::Write as _;

use expect_test::{expect, Expect};
use scanwatch_event::Protocol;

use super::mapping::table;
use super::*;

const NVD: &[u8] = include_bytes!("../../testdata/intel/nvdcve-2.0-sample.json");
const NVD_BAD: &[u8] = include_bytes!("../../testdata/intel/nvdcve-2.0-malformed.json");
const KEV_JSON: &[u8] = include_bytes!("../../testdata/intel/known_exploited_vulnerabilities.json");
const KEV_CSV: &[u8] = include_bytes!("../../testdata/intel/known_exploited_vulnerabilities.csv");
const KEV_JSON_BAD: &[u8] =
    include_bytes!("../../testdata/intel/known_exploited_vulnerabilities-malformed.json");
const KEV_CSV_BAD: &[u8] =
    include_bytes!("../../testdata/intel/known_exploited_vulnerabilities-malformed.csv");
const EDB: &[u8] = include_bytes!("../../testdata/intel/files_exploits.csv");
const EDB_BAD: &[u8] = include_bytes!("../../testdata/intel/files_exploits-malformed.csv");
const CSAF: &[u8] = include_bytes!("../../testdata/intel/csaf-ms07-029.json");

const ALL_FILES: [(&str, &[u8]); 9] = [
    ("nvd", NVD),
    ("nvd-bad", NVD_BAD),
    ("kev-json", KEV_JSON),
    ("kev-csv", KEV_CSV),
    ("kev-json-bad", KEV_JSON_BAD),
    ("kev-csv-bad", KEV_CSV_BAD),
    ("edb", EDB),
    ("edb-bad", EDB_BAD),
    ("csaf", CSAF),
];

type Parser = fn(&[u8]) -> Result<Parsed, FileError>;
const PARSERS: [(&str, Parser); 5] = [
    ("nvd", parse_nvd_json),
    ("kev-json", parse_kev_json),
    ("kev-csv", parse_kev_csv),
    ("exploitdb", parse_exploitdb_csv),
    ("csaf", parse_csaf_json),
];

fn ok(parser: Parser, bytes: &[u8]) -> Parsed {
    match parser(bytes) {
        Ok(p) => p,
        Err(e) => panic!("file error: {e}"),
    }
}

/// One block per advisory, the fields that are set.
fn summary(parsed: &Parsed) -> String {
    let mut s = String::new();
    for a in &parsed.advisories {
        let _ = writeln!(
            s,
            "{} {} {}",
            a.source.name(),
            a.id,
            a.published.as_deref().unwrap_or("-")
        );
        let _ = writeln!(s, "  title: {}", a.title);
        if a.description != a.title {
            let _ = writeln!(s, "  description: {}", first_chars(&a.description, 70));
        }
        let _ = writeln!(s, "  cves: {}", a.cves.join(" "));
        if !a.cpes.is_empty() {
            let _ = writeln!(s, "  cpes: {} ({} in all)", a.cpes[0], a.cpes.len());
        }
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "  vendor/product: {} / {}",
            opt(&a.vendor),
            opt(&a.product)
        );
        if !a.ports.is_empty() {
            let _ = writeln!(s, "  ports: {:?}", a.ports);
        }
        if a.platform.is_some() || a.exploit_type.is_some() || a.verified.is_some() {
            let _ = writeln!(
                s,
                "  platform/type/verified: {} / {} / {:?}",
                opt(&a.platform),
                opt(&a.exploit_type),
                a.verified
            );
        }
        if let Some(c) = a.cvss {
            let _ = writeln!(s, "  cvss: {c}");
        }
        if a.required_action.is_some() || a.due_date.is_some() || a.known_ransomware {
            let _ = writeln!(
                s,
                "  kev: {} due {} ransomware {}",
                opt(&a.required_action),
                opt(&a.due_date),
                a.known_ransomware
            );
        }
        for r in &a.remediations {
            let _ = writeln!(
                s,
                "  remediation: {:?} {} {} | {}",
                r.category,
                r.date.as_deref().unwrap_or("-"),
                first_chars(&r.details, 50),
                r.advisory
            );
        }
    }
    for e in &parsed.errors {
        let _ = writeln!(s, "error: {e}");
    }
    s
}

fn check(parsed: &Parsed, expect: Expect) {
    expect.assert_eq(&summary(parsed));
}

fn matches_text(adv: &Advisory) -> String {
    let mut s = String::new();
    for m in port_matches(adv) {
        let proto = m.proto.map_or("tcp+udp".into(), |p| p.name());
        let _ = writeln!(
            s,
            "{:<8} {}-{}/{}: {}",
            m.strength.name(),
            m.first,
            m.last,
            proto,
            m.reason
        );
    }
    s
}

fn find<'a>(parsed: &'a Parsed, id: &str) -> &'a Advisory {
    match parsed.advisories.iter().find(|a| a.id == id) {
        Some(a) => a,
        None => panic!("{id} not parsed"),
    }
}

fn text_advisory(description: &str) -> Advisory {
    let mut a = Advisory::new(AdvisorySource::Nvd, "CVE-2099-0001");
    a.description = description.to_string();
    a.title = first_chars(description, 100);
    a
}

// ---------------------------------------------------------------------------------
// Parsers.

#[test]
fn nvd_sample_fields() {
    let parsed = ok(parse_nvd_json, NVD);
    check(
        &parsed,
        expect![[r#"
            nvd CVE-2007-1748 2007-04-13
              title: Stack-based buffer overflow in the RPC interface in the Domain Name System (DNS) Server Service in M
              description: Stack-based buffer overflow in the RPC interface in the Domain Name Sy
              cves: CVE-2007-1748
              cpes: cpe:2.3:o:microsoft:windows_2000:*:sp4:*:*:*:*:*:* (7 in all)
              vendor/product: microsoft / windows_2000
              cvss: 10
            nvd CVE-2017-0144 2017-03-17
              title: The SMBv1 server in Microsoft Windows Vista SP2; Windows Server 2008 SP2 and R2 SP1; Windows 7 SP1;
              description: The SMBv1 server in Microsoft Windows Vista SP2; Windows Server 2008 S
              cves: CVE-2017-0144
              cpes: cpe:2.3:a:microsoft:server_message_block:1.0:*:*:*:*:*:*:* (3 in all)
              vendor/product: microsoft / server_message_block
              cvss: 8.8
            nvd CVE-2019-0708 2019-05-16
              title: A remote code execution vulnerability exists in Remote Desktop Services formerly known as Terminal S
              description: A remote code execution vulnerability exists in Remote Desktop Service
              cves: CVE-2019-0708
              cpes: cpe:2.3:o:microsoft:windows_7:-:sp1:*:*:*:*:*:* (4 in all)
              vendor/product: microsoft / windows_7
              cvss: 9.8
            nvd CVE-2020-1350 2020-07-14
              title: A remote code execution vulnerability exists in Windows Domain Name System servers when they fail to
              description: A remote code execution vulnerability exists in Windows Domain Name Sy
              cves: CVE-2020-1350
              cpes: cpe:2.3:o:microsoft:windows_server_2008:-:sp2:*:*:*:*:*:* (6 in all)
              vendor/product: microsoft / windows_server_2008
              cvss: 10
            nvd CVE-2021-41773 2021-10-05
              title: A flaw was found in a change made to path normalization in Apache HTTP Server 2.4.49. An attacker co
              description: A flaw was found in a change made to path normalization in Apache HTTP
              cves: CVE-2021-41773
              cpes: cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:* (3 in all)
              vendor/product: apache / http_server
              cvss: 7.5
        "#]],
    );
}

#[test]
fn nvd_malformed_entries_are_reported_and_the_rest_go_on() {
    let parsed = ok(parse_nvd_json, NVD_BAD);
    check(
        &parsed,
        expect![[r#"
            nvd CVE-2020-1350 2020-07-14
              title: A remote code execution vulnerability exists in Windows Domain Name System servers when they fail to
              description: A remote code execution vulnerability exists in Windows Domain Name Sy
              cves: CVE-2020-1350
              vendor/product: - / -
            error: entry 2: missing id
            error: entry 3 (CVE-20-1748): invalid id "CVE-20-1748"; expected CVE-YYYY-NNNN
            error: entry 4 (CVE-2019-0708): invalid published "2019-02-30T19:29:00.427"; expected YYYY-MM-DD
            error: entry 5 (CVE-2017-0144): missing published
            error: entry 6: cve is a string, not an object
            error: entry 7: entry is a number, not an object
            error: entry 8: missing cve
            error: entry 9: id is a number, not a string
        "#]],
    );
}

#[test]
fn nvd_single_record_reads() {
    let record = br#"{"id": "CVE-2007-1748", "published": "2007-04-13T18:19:00.000",
        "descriptions": [{"lang": "en", "value": "Stack-based buffer overflow in the RPC interface"}]}"#;
    let parsed = ok(parse_nvd_json, record);
    assert_eq!(parsed.advisories.len(), 1);
    assert_eq!(parsed.advisories[0].id, "CVE-2007-1748");
    assert_eq!(
        parsed.advisories[0].published.as_deref(),
        Some("2007-04-13")
    );
}

#[test]
fn kev_json_and_csv_give_the_same_advisories() {
    let json = ok(parse_kev_json, KEV_JSON);
    let csv = ok(parse_kev_csv, KEV_CSV);
    assert_eq!(json, csv);
    check(
        &json,
        expect![[r#"
            kev CVE-2020-0796 2022-02-10
              title: Microsoft SMBv3 Remote Code Execution Vulnerability
              description: A remote code execution vulnerability exists in the way that the Micro
              cves: CVE-2020-0796
              vendor/product: Microsoft / SMBv3
              kev: Apply updates per vendor instructions. due 2022-08-10 ransomware true
            kev CVE-2017-0144 2022-02-10
              title: Microsoft SMBv1 Remote Code Execution Vulnerability
              description: The SMBv1 server in multiple Microsoft Windows versions allows remote
              cves: CVE-2017-0144
              vendor/product: Microsoft / SMBv1
              kev: Apply updates per vendor instructions. due 2022-08-10 ransomware true
            kev CVE-2019-0708 2021-11-03
              title: Microsoft Remote Desktop Services Remote Code Execution Vulnerability
              description: Microsoft Remote Desktop Services, formerly known as Terminal Service,
              cves: CVE-2019-0708
              vendor/product: Microsoft / Remote Desktop Services
              kev: Apply updates per vendor instructions. due 2022-05-03 ransomware false
            kev CVE-2020-1350 2021-11-03
              title: Microsoft Windows DNS Server Remote Code Execution Vulnerability
              description: Microsoft Windows DNS Servers fail to properly handle requests, allowi
              cves: CVE-2020-1350
              vendor/product: Microsoft / Windows
              kev: Apply updates per vendor instructions. due 2020-07-24 ransomware false
        "#]],
    );
}

#[test]
fn kev_malformed_entries_are_reported() {
    check(
        &ok(parse_kev_json, KEV_JSON_BAD),
        expect![[r#"
            kev CVE-2017-0144 2022-02-10
              title: Microsoft SMBv1 Remote Code Execution Vulnerability
              description: The SMBv1 server in multiple Microsoft Windows versions allows remote
              cves: CVE-2017-0144
              vendor/product: Microsoft / SMBv1
              kev: Apply updates per vendor instructions. due 2022-08-10 ransomware true
            error: entry 2 (CVE-2017-O145): invalid cveID "CVE-2017-O145"; expected CVE-YYYY-NNNN
            error: entry 3: missing cveID
            error: entry 4 (CVE-2019-0708): invalid dateAdded "2021/11/03"; expected YYYY-MM-DD
            error: entry 5 (CVE-2020-0796): invalid dueDate "soon"; expected YYYY-MM-DD
            error: entry 6: entry is a string, not an object
            error: entry 7: cveID is a number, not a string
        "#]],
    );
    check(
        &ok(parse_kev_csv, KEV_CSV_BAD),
        expect![[r#"
            kev CVE-2017-0144 2022-02-10
              title: Microsoft SMBv1 Remote Code Execution Vulnerability
              description: The SMBv1 server in multiple Microsoft Windows versions allows remote
              cves: CVE-2017-0144
              vendor/product: Microsoft / SMBv1
              kev: Apply updates per vendor instructions. due 2022-08-10 ransomware true
            kev CVE-2020-0796 2022-02-10
              title: Microsoft SMBv3 Remote Code Execution Vulnerability
              description: A remote code execution vulnerability exists in the way that the Micro
              cves: CVE-2020-0796
              vendor/product: Microsoft / SMBv3
              kev: Apply updates per vendor instructions. due 2022-08-10 ransomware true
            error: entry 2 (CVE-2017-O145): invalid cveID "CVE-2017-O145"; expected CVE-YYYY-NNNN
            error: entry 3 (CVE-2019-0708): missing dateAdded
            error: entry 4 (CVE-2020-1350): record has 3 fields; the "vulnerabilityName" column needs 4
        "#]],
    );
}

#[test]
fn kev_csv_without_ransomware_column_reads() {
    // Catalogs from before October 2022 have no knownRansomwareCampaignUse column.
    let old = b"cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,dueDate,notes\n\
CVE-2020-1350,Microsoft,Windows,\"Microsoft Windows DNS Server Remote Code Execution Vulnerability\",2021-11-03,\"Microsoft Windows DNS Servers fail to properly handle requests.\",\"Apply updates per vendor instructions.\",2020-07-24,\n";
    let parsed = ok(parse_kev_csv, old);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.advisories.len(), 1);
    assert!(!parsed.advisories[0].known_ransomware);
    assert_eq!(parsed.advisories[0].due_date.as_deref(), Some("2020-07-24"));
}

#[test]
fn exploitdb_fields() {
    let parsed = ok(parse_exploitdb_csv, EDB);
    // 47416 is in the file twice (once per tag); it is read once.
    assert_eq!(
        parsed
            .advisories
            .iter()
            .filter(|a| a.id == "EDB-47416")
            .count(),
        1
    );
    check(
        &parsed,
        expect![[r#"
            exploitdb EDB-16366 2010-09-28
              title: Microsoft DNS RPC Service - 'extractQuotedChar()' Remote Overflow 'SMB' (MS07-029) (Metasploit)
              cves: CVE-2007-1748
              vendor/product: - / -
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-16748 2010-07-25
              title: Microsoft DNS RPC Service - 'extractQuotedChar()' TCP Overflow (MS07-029) (Metasploit)
              cves: CVE-2007-1748
              vendor/product: - / -
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-947 2005-04-19
              title: Microsoft Exchange Server - Remote Code Execution (MS05-021)
              cves: CVE-2005-0560
              vendor/product: - / -
              ports: [25]
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-43970 2018-02-05
              title: Microsoft Windows - 'EternalRomance'/'EternalSynergy'/'EternalChampion' SMB Remote Code Execution (Metasploit) (MS17-010)
              cves: CVE-2017-0147 CVE-2017-0146 CVE-2017-0143
              vendor/product: - / -
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-100 2003-09-16
              title: Microsoft Windows - 'RPC DCOM' Long Filename Overflow (MS03-026)
              cves: CVE-2003-0352
              vendor/product: - / -
              ports: [135]
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-48537 2020-06-02
              title: Microsoft Windows - 'SMBGhost' Remote Code Execution
              cves: CVE-2020-0796
              vendor/product: - / -
              platform/type/verified: windows / remote / Some(false)
            exploitdb EDB-47416 2019-09-24
              title: Microsoft Windows - BlueKeep RDP Remote Windows Kernel Use After Free (Metasploit)
              cves: CVE-2019-0708
              vendor/product: - / -
              ports: [3389]
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-3740 2007-04-15
              title: Microsoft Windows - DNS DnssrvQuery Remote Stack Overflow
              cves: CVE-2007-1748
              vendor/product: - / -
              ports: [139]
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-3746 2007-04-18
              title: Microsoft Windows - DNS RPC Remote Buffer Overflow (2)
              cves: CVE-2007-1748
              vendor/product: - / -
              ports: [445]
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-42031 2017-05-17
              title: Microsoft Windows 7/2008 R2 - 'EternalBlue' SMB Remote Code Execution (MS17-010)
              cves: CVE-2017-0144
              vendor/product: - / -
              ports: [445]
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-42315 2017-07-11
              title: Microsoft Windows 7/8.1/2008 R2/2012 R2/2016 R2 - 'EternalBlue' SMB Remote Code Execution (MS17-010)
              cves: CVE-2017-0144
              vendor/product: - / -
              platform/type/verified: windows / remote / Some(true)
            exploitdb EDB-3737 2007-04-15
              title: Microsoft Windows Server 2000 SP4 - DNS RPC Remote Buffer Overflow
              cves: CVE-2007-1748
              vendor/product: - / -
              ports: [139]
              platform/type/verified: windows / remote / Some(true)
        "#]],
    );
}

#[test]
fn exploitdb_malformed_entries_are_reported() {
    check(
        &ok(parse_exploitdb_csv, EDB_BAD),
        expect![[r#"
            exploitdb EDB-3737 2007-04-15
              title: Microsoft Windows Server 2000 SP4 - DNS RPC Remote Buffer Overflow
              cves: CVE-2007-1748
              vendor/product: - / -
              ports: [139]
              platform/type/verified: windows / remote / Some(true)
            error: entry 2 (37x40): invalid id "37x40"; expected a positive number
            error: entry 3 (EDB-3746): invalid date_published "2007-04-32"; expected YYYY-MM-DD
            error: entry 4 (EDB-42031): invalid port "99999"; expected a port number 0-65535
            error: entry 5 (EDB-42315): invalid verified "yes"; expected 0 or 1
            error: entry 6 (EDB-47416): record has 2 fields; the "description" column needs 3
            error: entry 7 (EDB-16366): missing date_published
        "#]],
    );
}

#[test]
fn exploitdb_old_eight_column_index_reads() {
    let old = b"id,file,description,date,author,type,platform,port\n\
3737,exploits/windows/remote/3737.py,\"Microsoft Windows Server 2000 SP4 - DNS RPC Remote Buffer Overflow\",2007-04-15,\"Winny Thomas\",remote,windows,139\n";
    let parsed = ok(parse_exploitdb_csv, old);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let a = &parsed.advisories[0];
    assert_eq!(
        (a.id.as_str(), a.published.as_deref(), a.ports.as_slice()),
        ("EDB-3737", Some("2007-04-15"), &[139][..])
    );
    assert!(a.cves.is_empty());
    assert_eq!(a.verified, None);
}

#[test]
fn entry_error_display() {
    let e = EntryError {
        entry: 3,
        id: Some("CVE-2019-0708".into()),
        reason: "invalid dateAdded \"2021/11/03\"; expected YYYY-MM-DD".into(),
    };
    assert_eq!(
        e.to_string(),
        "entry 3 (CVE-2019-0708): invalid dateAdded \"2021/11/03\"; expected YYYY-MM-DD"
    );
    let e = EntryError {
        entry: 6,
        id: None,
        reason: "entry is a string, not an object".into(),
    };
    assert_eq!(e.to_string(), "entry 6: entry is a string, not an object");
}

#[test]
fn whole_file_errors() {
    let mut s = String::new();
    let cases: [(&str, Parser, &[u8]); 14] = [
        ("nvd empty", parse_nvd_json, b""),
        ("nvd blank", parse_nvd_json, b" \n\t "),
        ("nvd garbage", parse_nvd_json, b"\x00\xff garbage"),
        ("nvd truncated", parse_nvd_json, &NVD[..200]),
        ("nvd array", parse_nvd_json, b"[1, 2]"),
        (
            "nvd no vulnerabilities",
            parse_nvd_json,
            br#"{"format": "NVD_CVE", "version": "2.0"}"#,
        ),
        (
            "nvd vulnerabilities not array",
            parse_nvd_json,
            br#"{"vulnerabilities": {}}"#,
        ),
        (
            "nvd 1.1 feed",
            parse_nvd_json,
            br#"{"CVE_data_type": "CVE", "CVE_Items": []}"#,
        ),
        ("nvd given kev", parse_nvd_json, KEV_JSON),
        ("kev json given nvd", parse_kev_json, NVD),
        ("kev csv given json", parse_kev_csv, KEV_JSON),
        (
            "kev csv missing columns",
            parse_kev_csv,
            b"cveID,vendorProject,product\nCVE-2017-0144,Microsoft,SMBv1\n",
        ),
        ("edb given kev csv", parse_exploitdb_csv, KEV_CSV),
        ("edb empty", parse_exploitdb_csv, b"\xEF\xBB\xBF\n"),
    ];
    for (name, parser, bytes) in cases {
        match parser(bytes) {
            Ok(p) => {
                let _ = writeln!(s, "{name}: parsed {} advisories", p.advisories.len());
            }
            Err(e) => {
                let _ = writeln!(s, "{name}: {e}");
            }
        }
    }
    expect![[r#"
        nvd empty: empty input; expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd blank: empty input; expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd garbage: not JSON (expected value at line 1 column 1); expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd truncated: not JSON (EOF while parsing an object at line 11 column 6); expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd array: found an array at the top level; expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd no vulnerabilities: found an object without "vulnerabilities" (keys: format, version); expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd vulnerabilities not array: found "vulnerabilities" as an object; expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd 1.1 feed: found an NVD 1.1 feed ("CVE_Items"), a format NVD retired in 2023; expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        nvd given kev: found a CISA KEV catalog (entries with "cveID"); expected NVD CVE JSON 2.0: an object with a "vulnerabilities" array of {"cve": {...}} records (NVD API 2.0 response or nvdcve-2.0 feed)
        kev json given nvd: found an NVD CVE feed (entries with "cve"); expected CISA KEV catalog JSON: an object with a "vulnerabilities" array of records with cveID, vendorProject, product, vulnerabilityName, dateAdded, ...
        kev csv given json: CSV header lacks column(s) cveID, vendorProject, product, vulnerabilityName, dateAdded; expected CISA KEV catalog CSV with header cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,dueDate,knownRansomwareCampaignUse,notes,cwes
        kev csv missing columns: CSV header lacks column(s) vulnerabilityName, dateAdded; expected CISA KEV catalog CSV with header cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,dueDate,knownRansomwareCampaignUse,notes,cwes
        edb given kev csv: CSV header lacks column(s) id, file, description, date_published, type, platform, port; expected Exploit-DB files_exploits.csv with header id,file,description,date_published,author,type,platform,port,date_added,date_updated,verified,codes,...
        edb empty: empty input; expected Exploit-DB files_exploits.csv with header id,file,description,date_published,author,type,platform,port,date_added,date_updated,verified,codes,...
    "#]]
    .assert_eq(&s);
}

#[test]
fn empty_collections_parse_to_nothing() {
    for (parser, bytes) in [
        (parse_nvd_json as Parser, &br#"{"vulnerabilities": []}"#[..]),
        (parse_kev_json, br#"{"vulnerabilities": []}"#),
        (
            parse_kev_csv,
            b"cveID,vendorProject,product,vulnerabilityName,dateAdded\n",
        ),
        (
            parse_exploitdb_csv,
            b"id,file,description,date_published,author,type,platform,port\r\n",
        ),
    ] {
        assert_eq!(ok(parser, bytes), Parsed::default());
    }
}

#[test]
fn byte_order_mark_and_crlf_are_accepted() {
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(KEV_CSV.iter().flat_map(|&b| {
        if b == b'\n' {
            vec![b'\r', b'\n']
        } else {
            vec![b]
        }
    }));
    assert_eq!(ok(parse_kev_csv, &with_bom), ok(parse_kev_csv, KEV_CSV));
    let mut blank_lines = KEV_CSV.to_vec();
    blank_lines.extend_from_slice(b"\n\r\n\n");
    assert_eq!(ok(parse_kev_csv, &blank_lines), ok(parse_kev_csv, KEV_CSV));
    let mut json = b"\xEF\xBB\xBF".to_vec();
    json.extend_from_slice(KEV_JSON);
    assert_eq!(ok(parse_kev_json, &json), ok(parse_kev_json, KEV_JSON));
}

#[test]
fn csaf_fields() {
    let parsed = ok(parse_csaf_json, CSAF);
    check(
        &parsed,
        expect![[r#"
            csaf CVE-2007-1748 2007-04-12
              title: Windows DNS Server RPC interface stack-based buffer overflow
              description: Stack-based buffer overflow in the RPC interface of the Domain Name Sy
              cves: CVE-2007-1748
              vendor/product: Microsoft / -
              remediation: NoneAvailable 2007-04-12 No security update is available yet; Microsoft is | MS07-029: Vulnerability in Windows DNS RPC Interface Could Allow Remote Code Execution
              remediation: Workaround 2007-04-12 Disable remote management over RPC for the DNS ser | MS07-029: Vulnerability in Windows DNS RPC Interface Could Allow Remote Code Execution
              remediation: Workaround 2007-04-12 Block at the firewall all unsolicited inbound traf | MS07-029: Vulnerability in Windows DNS RPC Interface Could Allow Remote Code Execution
              remediation: Mitigation 2007-04-12 Enable advanced TCP/IP filtering, or block the aff | MS07-029: Vulnerability in Windows DNS RPC Interface Could Allow Remote Code Execution
              remediation: VendorFix 2007-05-08 Security update MS07-029 (KB935966) | MS07-029: Vulnerability in Windows DNS RPC Interface Could Allow Remote Code Execution
        "#]],
    );
    let a = &parsed.advisories[0];
    assert_eq!(a.source, AdvisorySource::Csaf);
    // The document's references, then the vulnerability's own (none here).
    assert_eq!(a.references.len(), 3);
    assert!(a.references[1].url.ends_with("ms07-029"));
    assert_eq!(
        a.remediations[4].url.as_deref(),
        Some("https://learn.microsoft.com/en-us/security-updates/securitybulletins/2007/ms07-029")
    );
    let back: Parsed = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(back, parsed);
    assert_eq!(
        serde_json::to_string(&AdvisorySource::Csaf).unwrap(),
        "\"csaf\""
    );
}

#[test]
fn csaf_bad_entries_are_reported_and_the_rest_go_on() {
    let doc = |vulns: &str| {
        format!(
            r#"{{"document": {{"csaf_version": "2.0", "title": "T", "tracking": {{"id": "X-1",
               "initial_release_date": "2024-02-01T00:00:00Z"}},
               "publisher": {{"category": "coordinator", "name": "CERT"}}}},
               "product_tree": {{"branches": [{{"category": "product_family", "name": "f",
                 "branches": [{{"category": "vendor", "name": "Acme"}}]}}]}},
               "vulnerabilities": [{vulns}]}}"#
        )
    };
    let p = ok(
        parse_csaf_json,
        doc(r#"{"cve": "CVE-2024-0001"},
               {"title": "no cve"},
               {"cve": "CVE-2024-O002"},
               {"cve": "CVE-2024-0003", "release_date": "2024-02-30"},
               {"cve": "CVE-2024-0004", "remediations": [{"category": "pray", "details": "x"}]},
               {"cve": "CVE-2024-0005", "remediations": [{"category": "vendor_fix"}]},
               7,
               {"cve": "CVE-2024-0006", "remediations": [{"category": "workaround", "details": "w", "date": "2024-03-01T10:00:00Z"}]}"#)
        .as_bytes(),
    );
    check(
        &p,
        expect![[r#"
            csaf CVE-2024-0001 2024-02-01
              title: T
              description: 
              cves: CVE-2024-0001
              vendor/product: Acme / -
            csaf CVE-2024-0006 2024-02-01
              title: T
              description: 
              cves: CVE-2024-0006
              vendor/product: Acme / -
              remediation: Workaround 2024-03-01 w | X-1: T
            error: entry 2: missing cve
            error: entry 3 (CVE-2024-O002): invalid cve "CVE-2024-O002"; expected CVE-YYYY-NNNN
            error: entry 4 (CVE-2024-0003): invalid release_date "2024-02-30"; expected YYYY-MM-DD
            error: entry 5 (CVE-2024-0004): invalid remediations[].category "pray"; expected mitigation, no_fix_planned, none_available, vendor_fix, workaround (CSAF 2.0) or fix_planned, optional_patch (2.1)
            error: entry 6 (CVE-2024-0005): missing remediations[].details
            error: entry 7: entry is a number, not an object
        "#]],
    );
    for (bytes, want) in [
        (
            &br#"{"document": {"title": "x"}}"#[..],
            "a \"document\" without csaf_version",
        ),
        (br#"{"document": 3}"#, "\"document\" as a number"),
        (
            br#"{"vulnerabilities": []}"#,
            "an object without \"document\"",
        ),
        (br#"[1]"#, "an array without \"document\""),
    ] {
        let e = parse_csaf_json(bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    // A document without vulnerabilities (informational) reads as nothing.
    assert_eq!(
        ok(parse_csaf_json, br#"{"document": {"csaf_version": "2.0"}}"#),
        Parsed::default()
    );
}

#[test]
fn sniff_and_parse_dispatch() {
    assert_eq!(sniff(NVD), Some(Kind::Nvd));
    assert_eq!(sniff(NVD_BAD), Some(Kind::Nvd));
    assert_eq!(sniff(KEV_JSON), Some(Kind::Kev));
    assert_eq!(sniff(KEV_CSV), Some(Kind::Kev));
    assert_eq!(sniff(EDB), Some(Kind::ExploitDb));
    assert_eq!(sniff(CSAF), Some(Kind::Csaf));
    assert_eq!(
        ok(|b| parse(Kind::Csaf, b), CSAF),
        ok(parse_csaf_json, CSAF)
    );
    assert_eq!(sniff(b""), None);
    assert_eq!(sniff(b"hello,world\n"), None);
    assert_eq!(sniff(br#"{"a": 1}"#), None);
    assert_eq!(
        ok(|b| parse(Kind::Kev, b), KEV_CSV),
        ok(parse_kev_csv, KEV_CSV)
    );
    assert_eq!(
        ok(|b| parse(Kind::Kev, b), KEV_JSON),
        ok(parse_kev_json, KEV_JSON)
    );
    assert_eq!(ok(|b| parse(Kind::Nvd, b), NVD), ok(parse_nvd_json, NVD));
    assert_eq!(
        ok(|b| parse(Kind::ExploitDb, b), EDB),
        ok(parse_exploitdb_csv, EDB)
    );
    for k in Kind::ALL {
        assert_eq!(k.name().parse::<Kind>(), Ok(k));
        assert_eq!(
            serde_json::to_string(&k).ok(),
            Some(format!("\"{}\"", k.name()))
        );
    }
    assert_eq!(
        "cve".parse::<Kind>().map_err(|e| e.to_string()),
        Err("unknown advisory format \"cve\"; expected nvd, kev, exploitdb or csaf".to_string())
    );
}

#[test]
fn advisory_serde_round_trip_and_names() {
    let parsed = ok(parse_exploitdb_csv, EDB);
    let json = serde_json::to_string(&parsed).unwrap();
    assert!(json.contains(r#""source":"exploitdb""#), "{json}");
    let back: Parsed = serde_json::from_str(&json).unwrap();
    assert_eq!(back, parsed);
    let nvd = ok(parse_nvd_json, NVD);
    let back: Parsed = serde_json::from_str(&serde_json::to_string(&nvd).unwrap()).unwrap();
    assert_eq!(back, nvd);
    for (s, name) in [
        (AdvisorySource::Nvd, "nvd"),
        (AdvisorySource::Kev, "kev"),
        (AdvisorySource::ExploitDb, "exploitdb"),
    ] {
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
    }
    assert_eq!(
        serde_json::to_string(&MatchStrength::Service).unwrap(),
        "\"service\""
    );
}

#[test]
fn helpers() {
    assert_eq!(
        iso_date("2007-04-13T18:19:00.000").as_deref(),
        Some("2007-04-13")
    );
    assert_eq!(iso_date(" 2021-11-03 ").as_deref(), Some("2021-11-03"));
    assert_eq!(iso_date("2019-02-30"), None);
    assert_eq!(iso_date("2021/11/03"), None);
    assert_eq!(iso_date("2021-11-031"), None);
    assert_eq!(iso_date("20é1-11-03"), None);
    assert_eq!(iso_date("+202-11-03"), None);
    assert_eq!(cve_id("cve-2007-1748").as_deref(), Some("CVE-2007-1748"));
    assert_eq!(cve_id("CVE-2021-44228").as_deref(), Some("CVE-2021-44228"));
    assert_eq!(cve_id("CVE-2017-O144"), None);
    assert_eq!(cve_id("CVE-20-1748"), None);
    assert_eq!(cve_id("CVE-2007-17"), None);
    assert_eq!(cve_id("OSVDB-34100"), None);
    assert_eq!(cve_id("CVÉ-2007-1748"), None);
    assert_eq!(
        cpe_vendor_product("cpe:2.3:o:microsoft:windows_2000:*:sp4:*:*:*:*:*:*"),
        Some(("microsoft".into(), "windows_2000".into()))
    );
    assert_eq!(
        cpe_vendor_product(r"cpe:2.3:a:acme\:corp:web\:app:1.0:*:*:*:*:*:*:*"),
        Some(("acme:corp".into(), "web:app".into()))
    );
    assert_eq!(cpe_vendor_product("cpe:2.3:a:*:foo:*"), None);
    assert_eq!(cpe_vendor_product("cpe:/o:microsoft:windows_2000"), None);
    assert_eq!(cpe_vendor_product("cpe:2.3:a:x"), None);
    assert_eq!(first_chars("ab😀cd", 3), "ab😀");
}

/// Never panics: prefixes of every sample through its own parser (every length near
/// the end, a stride of the rest so the debug build stays quick), whole samples through
/// every parser, and the mapping over whatever they read.
#[test]
fn truncated_input_never_panics() {
    let own: [Parser; 9] = [
        parse_nvd_json,
        parse_nvd_json,
        parse_kev_json,
        parse_kev_csv,
        parse_kev_json,
        parse_kev_csv,
        parse_exploitdb_csv,
        parse_exploitdb_csv,
        parse_csaf_json,
    ];
    for ((_, bytes), parser) in ALL_FILES.into_iter().zip(own) {
        let step = (bytes.len() / 600).max(1);
        let mut lens: Vec<usize> = (0..=bytes.len()).step_by(step).collect();
        lens.extend(bytes.len().saturating_sub(200)..=bytes.len());
        for len in lens {
            // The last advisory is the one a cut may have shortened.
            if let Ok(parsed) = parser(&bytes[..len]) {
                if let Some(a) = parsed.advisories.last() {
                    let _ = port_matches(a);
                }
            }
            let _ = sniff(&bytes[..len]);
        }
        for (_, other) in PARSERS {
            for len in [bytes.len() / 3, bytes.len() / 2, bytes.len()] {
                let _ = other(&bytes[..len]);
            }
        }
    }
}

#[test]
fn odd_bytes_never_panic() {
    let inputs: [&[u8]; 10] = [
        b"\xff\xfe\x00",
        b"{",
        b"\"",
        b"id,file,description,date_published,type,platform,port\n\"unterminated",
        b"id,file,description,date_published,type,platform,port\n1,f,\xff\xfe,2020-01-01,remote,windows,80\n",
        b"cveID,vendorProject,product,vulnerabilityName,dateAdded\nCVE-2020-1350,\xe9,\xff,x,2021-11-03\n",
        br#"{"vulnerabilities": [{"cve": {"id": "CVE-2020-1350", "published": "2020-07-14T23:15:13.087", "metrics": {"cvssMetricV31": [{"cvssData": {"baseScore": 1e400}}]}, "configurations": [{"nodes": [{"cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:\\"}]}]}]}}]}"#,
        br#"{"vulnerabilities": [{"cve": {"id": "CVE-2020-1350", "published": "2020-07-14\u00e9", "descriptions": "x", "configurations": 7}}]}"#,
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b",,,,\n,,,,\n",
    ];
    for bytes in inputs {
        for (_, parser) in PARSERS {
            if let Ok(parsed) = parser(bytes) {
                for a in &parsed.advisories {
                    let _ = port_matches(a);
                }
            }
        }
        let _ = sniff(bytes);
    }
}

// ---------------------------------------------------------------------------------
// Mapping.

/// The seed case: the Windows DNS Server RPC overflow is reached on TCP/1025 (first
/// dynamic MS-RPC port of Windows 2000/2003) and TCP/135.
#[test]
fn seed_cve_2007_1748_maps_to_dynamic_rpc_and_135() {
    let nvd = ok(parse_nvd_json, NVD);
    let seed = find(&nvd, "CVE-2007-1748");
    let m = matches_port(seed, Protocol::Tcp, 1025);
    let Some(m) = m else {
        panic!("no match for tcp/1025:\n{}", matches_text(seed))
    };
    assert_eq!(m.strength, MatchStrength::Service);
    assert_eq!(
        (m.first, m.last, m.proto),
        (1025, 5000, Some(Protocol::Tcp))
    );
    assert_eq!(
        m.reason,
        "cpe microsoft:windows_2000 with 'dns server' in the description → dynamic MS-RPC ports 1025–5000/tcp (Windows DNS Server)"
    );
    let m135 = matches_port(seed, Protocol::Tcp, 135);
    assert!(m135.is_some_and(|m| m.first == 135 && m.strength == MatchStrength::Service));
    assert!(matches_port(seed, Protocol::Tcp, 49152).is_some());
    assert!(matches_port(seed, Protocol::Udp, 53).is_some());
    assert!(matches_port(seed, Protocol::Udp, 1025).is_none());
    assert!(matches_port(seed, Protocol::Tcp, 5001).is_none());
    assert!(matches_port(seed, Protocol::Icmp, 0).is_none());
    expect![[r#"
        service  53-53/tcp+udp: cpe microsoft:windows_2000 with 'dns server' in the description → DNS 53/tcp+udp (Windows DNS Server)
        service  135-135/tcp: cpe microsoft:windows_2000 with 'dns server' in the description → MS-RPC endpoint mapper 135/tcp (Windows DNS Server)
        service  1025-5000/tcp: cpe microsoft:windows_2000 with 'dns server' in the description → dynamic MS-RPC ports 1025–5000/tcp (Windows DNS Server)
        service  49152-65535/tcp: cpe microsoft:windows_2000 with 'dns server' in the description → dynamic MS-RPC ports 49152–65535/tcp (Windows DNS Server)
    "#]]
    .assert_eq(&matches_text(seed));
}

#[test]
fn seed_exploits_map_to_their_listed_ports_first() {
    let edb = ok(parse_exploitdb_csv, EDB);
    let mut s = String::new();
    for id in ["EDB-3737", "EDB-3746", "EDB-16366"] {
        let a = find(&edb, id);
        assert!(a.cves.contains(&"CVE-2007-1748".to_string()));
        let _ = writeln!(s, "{id}: {}", a.title);
        s.push_str(&matches_text(a));
    }
    let m = matches_port(find(&edb, "EDB-3737"), Protocol::Tcp, 139);
    assert!(m.is_some_and(
        |m| m.strength == MatchStrength::Explicit && m.reason == "Exploit-DB lists port 139"
    ));
    let m = matches_port(find(&edb, "EDB-3746"), Protocol::Tcp, 1025);
    assert!(m.is_some_and(|m| m.strength == MatchStrength::Service));
    expect![[r#"
        EDB-3737: Microsoft Windows Server 2000 SP4 - DNS RPC Remote Buffer Overflow
        explicit 139-139/tcp+udp: Exploit-DB lists port 139
        service  53-53/tcp+udp: 'windows' and 'dns rpc' in the description → DNS 53/tcp+udp (Windows DNS Server)
        service  135-135/tcp: 'windows' and 'dns rpc' in the description → MS-RPC endpoint mapper 135/tcp (Windows DNS Server)
        service  1025-5000/tcp: 'windows' and 'dns rpc' in the description → dynamic MS-RPC ports 1025–5000/tcp (Windows DNS Server)
        service  49152-65535/tcp: 'windows' and 'dns rpc' in the description → dynamic MS-RPC ports 49152–65535/tcp (Windows DNS Server)
        EDB-3746: Microsoft Windows - DNS RPC Remote Buffer Overflow (2)
        explicit 445-445/tcp+udp: Exploit-DB lists port 445
        service  53-53/tcp+udp: 'windows' and 'dns rpc' in the description → DNS 53/tcp+udp (Windows DNS Server)
        service  135-135/tcp: 'windows' and 'dns rpc' in the description → MS-RPC endpoint mapper 135/tcp (Windows DNS Server)
        service  1025-5000/tcp: 'windows' and 'dns rpc' in the description → dynamic MS-RPC ports 1025–5000/tcp (Windows DNS Server)
        service  49152-65535/tcp: 'windows' and 'dns rpc' in the description → dynamic MS-RPC ports 49152–65535/tcp (Windows DNS Server)
        EDB-16366: Microsoft DNS RPC Service - 'extractQuotedChar()' Remote Overflow 'SMB' (MS07-029) (Metasploit)
        service  53-53/tcp+udp: 'microsoft dns' in the description → DNS 53/tcp+udp (Windows DNS Server)
        service  135-135/tcp: 'microsoft dns' in the description → MS-RPC endpoint mapper 135/tcp (Windows DNS Server)
        service  1025-5000/tcp: 'microsoft dns' in the description → dynamic MS-RPC ports 1025–5000/tcp (Windows DNS Server)
        service  49152-65535/tcp: 'microsoft dns' in the description → dynamic MS-RPC ports 49152–65535/tcp (Windows DNS Server)
        text     139-139/tcp: 'smb' in the description → NetBIOS session service 139/tcp
        text     445-445/tcp: 'smb' in the description → SMB 445/tcp
    "#]]
    .assert_eq(&s);
}

#[test]
fn sample_advisories_map_to_their_services() {
    let mut s = String::new();
    let nvd = ok(parse_nvd_json, NVD);
    let kev = ok(parse_kev_json, KEV_JSON);
    let edb = ok(parse_exploitdb_csv, EDB);
    let cases: [(&Parsed, &str, Protocol, u16); 10] = [
        (&nvd, "CVE-2017-0144", Protocol::Tcp, 445),
        (&nvd, "CVE-2019-0708", Protocol::Tcp, 3389),
        (&nvd, "CVE-2020-1350", Protocol::Udp, 53),
        (&nvd, "CVE-2020-1350", Protocol::Tcp, 1025),
        (&nvd, "CVE-2021-41773", Protocol::Tcp, 443),
        (&kev, "CVE-2020-1350", Protocol::Tcp, 1025),
        (&kev, "CVE-2017-0144", Protocol::Tcp, 445),
        (&kev, "CVE-2020-0796", Protocol::Tcp, 445),
        (&edb, "EDB-42315", Protocol::Tcp, 445),
        (&edb, "EDB-947", Protocol::Tcp, 25),
    ];
    for (parsed, id, proto, port) in cases {
        let a = find(parsed, id);
        let m = matches_port(a, proto, port);
        let line = m.map_or("no match".to_string(), |m| {
            format!("{}: {}", m.strength.name(), m.reason)
        });
        let _ = writeln!(
            s,
            "{} {id} {}/{port}: {line}",
            a.source.name(),
            proto.name()
        );
    }
    expect![[r#"
        nvd CVE-2017-0144 tcp/445: service: cpe microsoft:server_message_block → SMB 445/tcp (Microsoft SMB server)
        nvd CVE-2019-0708 tcp/3389: service: 'remote desktop services' in the description → RDP 3389/tcp+udp (Microsoft Remote Desktop Services)
        nvd CVE-2020-1350 udp/53: service: cpe microsoft:windows_server_2008 with 'dns server' in the description → DNS 53/tcp+udp (Windows DNS Server)
        nvd CVE-2020-1350 tcp/1025: service: cpe microsoft:windows_server_2008 with 'dns server' in the description → dynamic MS-RPC ports 1025–5000/tcp (Windows DNS Server)
        nvd CVE-2021-41773 tcp/443: service: cpe apache:http_server → HTTPS 443/tcp (Apache HTTP Server)
        kev CVE-2020-1350 tcp/1025: service: vendor Microsoft with 'dns server' in the description → dynamic MS-RPC ports 1025–5000/tcp (Windows DNS Server)
        kev CVE-2017-0144 tcp/445: service: vendor Microsoft with product 'SMBv1' → SMB 445/tcp (Microsoft SMB server)
        kev CVE-2020-0796 tcp/445: service: vendor Microsoft with product 'SMBv3' → SMB 445/tcp (Microsoft SMB server)
        exploitdb EDB-42315 tcp/445: service: 'eternalblue' in the description → SMB 445/tcp (Microsoft SMB server)
        exploitdb EDB-947 tcp/25: explicit: Exploit-DB lists port 25
    "#]]
    .assert_eq(&s);
}

#[test]
fn text_route_port_phrases() {
    let mut s = String::new();
    for d in [
        "allows attackers to connect to port 445 and run code",
        "sends a packet to TCP port 3389 of the host",
        "a crafted packet to UDP port 161 crashes the agent",
        "listens on ports 139 and 445",
        "opens ports 1024 to 65535 for callbacks",
        "the management port 8443/tcp is exposed",
        "port 70000 is not a port, port 0 neither, nor port 1.5e3",
        "passport 445 and support 445 are not port phrases",
    ] {
        let _ = writeln!(s, "{d}");
        for m in port_matches(&text_advisory(d)) {
            let _ = writeln!(
                s,
                "  {:?} {}-{} {:?}: {}",
                m.strength, m.first, m.last, m.proto, m.reason
            );
        }
    }
    expect![[r#"
        allows attackers to connect to port 445 and run code
          Text 445-445 None: 'port 445' in the description → 445/tcp+udp
        sends a packet to TCP port 3389 of the host
          Text 3389-3389 Some(Tcp): 'tcp port 3389' in the description → 3389/tcp
        a crafted packet to UDP port 161 crashes the agent
          Text 161-161 Some(Udp): 'udp port 161' in the description → 161/udp
        listens on ports 139 and 445
          Text 139-139 None: 'port 139' in the description → 139/tcp+udp
          Text 445-445 None: 'port 445' in the description → 445/tcp+udp
        opens ports 1024 to 65535 for callbacks
          Text 1024-65535 None: 'port 1024 to 65535' in the description → 1024–65535/tcp+udp
        the management port 8443/tcp is exposed
          Text 8443-8443 Some(Tcp): 'tcp port 8443' in the description → 8443/tcp
        port 70000 is not a port, port 0 neither, nor port 1.5e3
        passport 445 and support 445 are not port phrases
    "#]]
    .assert_eq(&s);
}

#[test]
fn text_route_protocol_words() {
    let mut s = String::new();
    for d in [
        "Microsoft Windows allows remote code execution via RPC.",
        "A flaw in an RPC interface of a Linux daemon.",
        "An attacker who sends crafted SMBv3 packets to the Windows host.",
        "connects using RDP and sends requests",
        "a malformed DNS response",
        "NetBIOS names are disclosed",
        "a crafted HTTP request to the admin page",
        "smbx and xrdp-like words are not protocol words",
    ] {
        let _ = writeln!(s, "{d}");
        for m in port_matches(&text_advisory(d)) {
            let _ = writeln!(
                s,
                "  {:?} {}-{} {:?}: {}",
                m.strength, m.first, m.last, m.proto, m.reason
            );
        }
    }
    expect![[r#"
        Microsoft Windows allows remote code execution via RPC.
          Text 135-135 Some(Tcp): 'via rpc' in the description → MS-RPC endpoint mapper 135/tcp
          Text 1025-5000 Some(Tcp): 'via rpc' in the description → dynamic MS-RPC ports 1025–5000/tcp
          Text 49152-65535 Some(Tcp): 'via rpc' in the description → dynamic MS-RPC ports 49152–65535/tcp
        A flaw in an RPC interface of a Linux daemon.
        An attacker who sends crafted SMBv3 packets to the Windows host.
          Text 139-139 Some(Tcp): 'smbv3' in the description → NetBIOS session service 139/tcp
          Text 445-445 Some(Tcp): 'smbv3' in the description → SMB 445/tcp
        connects using RDP and sends requests
          Text 3389-3389 None: 'rdp' in the description → RDP 3389/tcp+udp
        a malformed DNS response
          Text 53-53 None: 'dns' in the description → DNS 53/tcp+udp
        NetBIOS names are disclosed
          Text 137-137 Some(Udp): 'netbios' in the description → NetBIOS name service 137/udp
          Text 138-138 Some(Udp): 'netbios' in the description → NetBIOS datagram service 138/udp
          Text 139-139 Some(Tcp): 'netbios' in the description → NetBIOS session service 139/tcp
        a crafted HTTP request to the admin page
          Text 80-80 Some(Tcp): 'http request' in the description → HTTP 80/tcp
          Text 443-443 Some(Tcp): 'http request' in the description → HTTPS 443/tcp
        smbx and xrdp-like words are not protocol words
    "#]]
    .assert_eq(&s);
}

#[test]
fn service_route_reasons() {
    let mut s = String::new();
    let mut kev = Advisory::new(AdvisorySource::Kev, "CVE-2099-0002");
    kev.vendor = Some("Microsoft".into());
    kev.product = Some("SMBv1".into());
    kev.title = "Microsoft SMBv1 Remote Code Execution Vulnerability".into();
    let mut nvd = Advisory::new(AdvisorySource::Nvd, "CVE-2099-0003");
    nvd.cpes = vec!["cpe:2.3:a:openbsd:openssh:8.5:p1:*:*:*:*:*:*".into()];
    nvd.description = "A race condition in a signal handler.".into();
    let mut edb = Advisory::new(AdvisorySource::ExploitDb, "EDB-1");
    edb.title = "Acme CMS 1.0 - SQL Injection".into();
    edb.description = edb.title.clone();
    edb.exploit_type = Some("webapps".into());
    for a in [&kev, &nvd, &edb] {
        let _ = writeln!(s, "{}", a.id);
        s.push_str(&matches_text(a));
    }
    expect![[r#"
        CVE-2099-0002
        service  139-139/tcp: vendor Microsoft with product 'SMBv1' → NetBIOS session service 139/tcp (Microsoft SMB server)
        service  445-445/tcp: vendor Microsoft with product 'SMBv1' → SMB 445/tcp (Microsoft SMB server)
        CVE-2099-0003
        service  22-22/tcp: cpe openbsd:openssh → SSH 22/tcp (OpenSSH)
        EDB-1
        service  80-80/tcp: Exploit-DB type 'webapps' → HTTP 80/tcp (web application)
        service  443-443/tcp: Exploit-DB type 'webapps' → HTTPS 443/tcp (web application)
    "#]]
    .assert_eq(&s);
}

#[test]
fn stronger_matches_hide_weaker_ones_they_cover() {
    let edb = ok(parse_exploitdb_csv, EDB);
    // EternalBlue 42031: Exploit-DB lists 445; the SMB service adds 139 only.
    let a = find(&edb, "EDB-42031");
    let ms = port_matches(a);
    assert_eq!(
        ms.iter().filter(|m| m.covers(Protocol::Tcp, 445)).count(),
        1
    );
    assert_eq!(ms[0].strength, MatchStrength::Explicit);
    assert!(ms.windows(2).all(|w| w[0].strength <= w[1].strength));
    assert!(ms
        .iter()
        .any(|m| m.first == 139 && m.strength == MatchStrength::Service));
}

#[test]
fn no_match_for_unrelated_text() {
    let a =
        text_advisory("A use-after-free in the font renderer allows local privilege escalation.");
    assert!(port_matches(&a).is_empty(), "{}", matches_text(&a));
}

#[test]
fn port_match_serializes() {
    let nvd = ok(parse_nvd_json, NVD);
    let m = matches_port(find(&nvd, "CVE-2007-1748"), Protocol::Udp, 53);
    let json = m.map(|m| serde_json::to_string(&m).unwrap_or_default());
    expect![[r#"{"proto":null,"first":53,"last":53,"strength":"service","reason":"cpe microsoft:windows_2000 with 'dns server' in the description → DNS 53/tcp+udp (Windows DNS Server)"}"#]]
    .assert_eq(&json.unwrap_or_default());
}

#[test]
fn service_table_is_big_and_its_phrases_are_normalized() {
    let names = table::service_names();
    assert!(names.len() >= 40, "{} rows", names.len());
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        assert!(seen.insert(n), "duplicate service {n}");
    }
    for p in table::phrases() {
        assert_eq!(
            table::normalize(p).trim(),
            p,
            "phrase {p:?} is not normalized"
        );
    }
}
