//! Conformance of the `zeek` parser against Zeek conn.log fixtures
//! (`testdata/fixtures/zeek/`: zeek/zeek and brimdata/zed, BSD-3-Clause; see
//! SOURCES.md). There are no CrowdSec asserts for these: counts and field values were
//! read off the files by hand (and with `awk -F'\t'`).
//!
//! - `brimdata-zed__conn.log`: 92 TCP rows with real timestamps; 61 of them match the
//!   scan rule (history starts with `S`, no `h`), a few rows checked field by field.
//! - `zeek__zeek-cut-logs__conn.log`: the older header without `local_resp` (so
//!   `history` is column 14, not 15): 5 FTP rows, none a scan.
//! - The three btest baselines have every `ts` masked as `XXXXXXXXXX.XXXXXX`: each row
//!   must be a per-line timestamp error (not a panic, not a skip). With the mask
//!   replaced by a real time, the rows parse and the scan rule picks the expected rows.
#![allow(clippy::unwrap_used)]

mod common;

use common::{parse_fixture, port, read, Fails};
use scanwatch_event::parse_rfc3339;
use scanwatch_formats::{format_by_name, parse_str, ParseError, ParsedEvent, ParserOptions};

const DIR: &str = "zeek";
const REF: &str = "2026-11-26T00:00:00Z";

fn flow(e: &ParsedEvent) -> String {
    let ev = &e.event;
    format!(
        "{} {}:{} > {}:{}",
        ev.proto,
        ev.src,
        port(ev.src_port),
        ev.dst,
        port(ev.dst_port)
    )
}

#[test]
fn brimdata_conn() {
    let log = "brimdata-zed__conn.log";
    let (_, out) = parse_fixture("zeek", DIR, log, REF);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (92, 8));
    let counted = out
        .events
        .iter()
        .filter(|e| e.event.is_unsolicited())
        .count();
    assert_eq!(counted, 61);
    let mut f = Fails::default();
    for (n, want_flow, time, counts) in [
        (
            9,
            "tcp 10.164.94.120:39681 > 10.47.3.155:3389",
            "2018-03-24T17:15:21.255Z",
            false,
        ),
        (
            10,
            "tcp 10.47.25.80:50817 > 10.128.0.218:23189",
            "2018-03-24T17:15:21.411Z",
            true,
        ),
        (
            100,
            "tcp 10.164.94.120:45895 > 10.47.3.200:80",
            "2018-03-24T17:15:20.664Z",
            false,
        ),
    ] {
        let Some(ev) = out.events.iter().find(|e| e.line == n) else {
            f.push(format!("{log}:{n}: no event"));
            continue;
        };
        f.check(log, n, "flow", want_flow, &flow(ev));
        f.check(log, n, "time", time, &ev.event.time.to_rfc3339());
        f.check(
            log,
            n,
            "counts",
            &counts.to_string(),
            &ev.event.is_unsolicited().to_string(),
        );
    }
    f.finish();
}

#[test]
fn zeek_cut_conn_older_header() {
    let log = "zeek__zeek-cut-logs__conn.log";
    let (_, out) = parse_fixture("zeek", DIR, log, REF);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (5, 9));
    let mut f = Fails::default();
    for ev in &out.events {
        f.check(
            log,
            ev.line,
            "counts",
            "false",
            &ev.event.is_unsolicited().to_string(),
        );
    }
    let first = &out.events[0];
    f.check(
        log,
        9,
        "flow",
        "tcp 141.142.220.235:37604 > 199.233.217.249:56666",
        &flow(first),
    );
    f.check(
        log,
        9,
        "time",
        "2012-02-21T16:52:55.736Z",
        &first.event.time.to_rfc3339(),
    );
    let last = &out.events[4];
    f.check(
        log,
        13,
        "flow",
        "tcp 141.142.220.235:50003 > 199.233.217.249:21",
        &flow(last),
    );
    f.finish();
}

#[test]
fn masked_baselines_are_per_line_errors() {
    // (file, rows, header lines, rows counted once unmasked)
    for (log, rows, headers, counted) in [
        ("zeek__baseline.core.tunnels.teredo__conn.log", 21, 10, 8),
        (
            "zeek__baseline.scripts.base.protocols.modbus.events__conn-first.log",
            9,
            10,
            1,
        ),
        (
            "zeek__baseline.scripts.base.protocols.ssh.half-duplex-client__conn.log",
            25,
            10,
            20,
        ),
    ] {
        let (text, out) = parse_fixture("zeek", DIR, log, REF);
        assert_eq!(
            (out.events.len(), out.errors.len(), out.skipped),
            (0, rows, headers),
            "{log}"
        );
        for e in &out.errors {
            assert_eq!(
                e.error,
                ParseError::Timestamp("XXXXXXXXXX.XXXXXX".into()),
                "{log}:{}",
                e.line
            );
        }
        let unmasked = read(DIR, log).replace("XXXXXXXXXX.XXXXXX", "1000000000.250000");
        assert_eq!(unmasked.lines().count(), text.lines().count());
        let opts = ParserOptions {
            reference_time: parse_rfc3339(REF).unwrap(),
        };
        let out = parse_str(format_by_name("zeek").unwrap(), &unmasked, &opts);
        assert!(out.errors.is_empty(), "{log}: {:?}", out.errors);
        assert_eq!(out.events.len(), rows, "{log}");
        let n = out
            .events
            .iter()
            .filter(|e| e.event.is_unsolicited())
            .count();
        assert_eq!(n, counted, "{log}");
        if log.contains("modbus") {
            let scan: Vec<_> = out
                .events
                .iter()
                .filter(|e| e.event.is_unsolicited())
                .collect();
            assert_eq!(scan[0].line, 16);
            assert_eq!(
                flow(scan[0]),
                "tcp 192.168.66.235:2582 > 166.161.16.230:502"
            );
        }
        if log.contains("teredo") {
            let icmp: Vec<String> = out
                .events
                .iter()
                .filter(|e| e.event.icmp_type.is_some())
                .map(|e| format!("{}:{} {:?}", e.line, e.event.proto, e.event.icmp_type))
                .collect();
            assert_eq!(
                icmp,
                [
                    "27:icmpv6 Some(128)",
                    "29:icmpv6 Some(134)",
                    "30:icmpv6 Some(133)"
                ]
            );
        }
    }
}

/// The same connections written as JSON (what `LogAscii::use_json=T` writes: `ts` a
/// number, or an ISO 8601 string with `JSON::TS_ISO8601`; counts and ports numbers;
/// unset fields absent) give, through `zeek-json`, exactly the TSV events.
#[test]
fn json_encoding_gives_the_tsv_events() {
    let log = "brimdata-zed__conn.log";
    let (text, tsv) = parse_fixture("zeek", DIR, log, REF);
    let header = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("#{name}\t")))
            .unwrap();
        line.split('\t').skip(1).map(str::to_string).collect()
    };
    let (fields, types) = (header("fields"), header("types"));
    assert_eq!(fields.len(), types.len());
    for iso in [false, true] {
        let mut json = String::new();
        for row in text.lines().filter(|l| !l.starts_with('#')) {
            let mut obj = serde_json::Map::new();
            for ((name, ty), v) in fields.iter().zip(&types).zip(row.split('\t')) {
                if v == "-" || v == "(empty)" {
                    continue;
                }
                let value = match ty.as_str() {
                    "time" if iso => {
                        let (s, frac) = v.split_once('.').unwrap();
                        let nanos: u32 = format!("{frac:0<9}").parse().unwrap();
                        let t =
                            chrono::DateTime::from_timestamp(s.parse().unwrap(), nanos).unwrap();
                        serde_json::Value::from(
                            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                        )
                    }
                    "time" | "interval" | "double" => serde_json::from_str(v).unwrap(),
                    "port" | "count" | "int" => serde_json::from_str(v).unwrap(),
                    "bool" => serde_json::Value::from(v == "T"),
                    t if t.starts_with("set") || t.starts_with("vector") => {
                        serde_json::Value::from(
                            v.split(',').map(str::to_string).collect::<Vec<_>>(),
                        )
                    }
                    _ => serde_json::Value::from(v),
                };
                obj.insert(name.clone(), value);
            }
            json.push_str(&serde_json::Value::Object(obj).to_string());
            json.push('\n');
        }
        let opts = ParserOptions {
            reference_time: parse_rfc3339(REF).unwrap(),
        };
        let spec = format_by_name("zeek-json").unwrap();
        assert_eq!(
            scanwatch_formats::detect(json.lines()).map(|f| f.name()),
            Some("zeek-json")
        );
        let out = parse_str(spec, &json, &opts);
        assert!(out.errors.is_empty(), "iso {iso}: {:?}", out.errors);
        let a: Vec<_> = tsv.events.iter().map(|e| &e.event).collect();
        let b: Vec<_> = out.events.iter().map(|e| &e.event).collect();
        assert_eq!(a.len(), 92);
        assert_eq!(a, b, "iso {iso}");
    }
}
