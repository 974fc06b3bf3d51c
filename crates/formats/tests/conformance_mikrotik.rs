//! Conformance of the `mikrotik` parser against CrowdSec hub fixtures
//! (`testdata/fixtures/mikrotik/`, MIT, crowdsecurity/hub; see SOURCES.md).
//!
//! - `mikrotik-logs.log` with `__parser.assert`: CrowdSec's `a1ad/mikrotik-logs` stage
//!   saw every line (`len == 7`, entry `i` is line `i + 1`, checked through
//!   `Parsed["message"]`). For each firewall entry (`Meta["log_type"] ==
//!   "mikrotik_drop"`) our event must have CrowdSec's `source_ip` (`Parsed` and
//!   `Meta`), `dst_ip`, `src_port`, `dst_port` (`Parsed` and `Meta`), `proto`, the time
//!   (`Parsed["timestamp"]` and the `s02-enrich` stage's `Meta["timestamp"]`), the
//!   direction that `if_in`/`if_out` give (an input interface: inbound), the action
//!   that `tag` (the log prefix) gives (`drop-…`: drop; none: unknown), and
//!   `Meta["service"] == "tcp_udp"` (a port-bearing protocol). Every other key of an
//!   entry must be in [`NOT_CARRIED`]. The one login-failure line (`mikrotik_failed_auth`)
//!   is in [`DIVERGENCES`]: not a firewall line, so we skip it.
//! - `mikrotik-scan-multi_ports.log` with its `__scenario.assert`: 19 SYN lines from one
//!   source; every event of CrowdSec's alert (source, destination port, time) must be
//!   one of ours, and all ours count as scan attempts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{all_keys_accounted, parse_assert, parse_fixture, port, read, Fails};
use scanwatch_event::{parse_rfc3339, Action, Direction, Protocol};
use scanwatch_formats::ParsedEvent;

const DIR: &str = "mikrotik";
const STAGE: (&str, &str) = ("s01-parse", "a1ad/mikrotik-logs");
const ENRICH: (&str, &str) = ("s02-enrich", "crowdsecurity/dateparse-enrich");
const REF: &str = "2026-11-26T00:00:00Z";

/// Assert keys our events do not carry.
const NOT_CARRIED: &[&str] = &[
    "program",          // CrowdSec's label for the source
    "topics",           // RouterOS log topics (`firewall,info`)
    "chain",            // the firewall chain; the interfaces give the direction
    "connection_state", // conntrack state of the packet
    "src_mac",          // Ethernet source
    "length",           // packet length
    "datasource_path",  // CrowdSec acquisition
    "datasource_type",  // CrowdSec acquisition
];

/// Keys the firewall-line comparison checks.
const CHECKED: &[&str] = &[
    "message",
    "source_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "proto",
    "timestamp",
    "if_in",
    "if_out",
    "tag",
    "service",
    "log_type",
];

/// Lines CrowdSec's parser reads that are not firewall lines, and what we do: skip.
const DIVERGENCES: &[(usize, &str)] = &[(
    3,
    "`system,error,critical login failure …`: CrowdSec's parser also reads RouterOS login failures; not a packet",
)];

fn flow(e: &ParsedEvent) -> String {
    let ev = &e.event;
    format!(
        "{} {}:{} > {}:{} {}",
        ev.proto,
        ev.src,
        port(ev.src_port),
        ev.dst,
        port(ev.dst_port),
        ev.flags.letters()
    )
}

fn is_iface(s: &str) -> bool {
    !s.is_empty() && !s.starts_with("(unknown") && s != "(none)"
}

#[test]
fn logs_parser_assert() {
    let log = "crowdsecurity-hub__mikrotik-logs.log";
    let assert_name = "crowdsecurity-hub__mikrotik-logs__parser.assert";
    let (text, out) = parse_fixture("mikrotik", DIR, log, REF);
    let a = parse_assert(assert_name, &read(DIR, assert_name));
    let lines: Vec<&str> = text.lines().collect();
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (6, 1));
    let mut f = Fails::default();
    for (stage, key) in [STAGE, ENRICH] {
        f.check(
            log,
            0,
            &format!("len({key})"),
            &lines.len().to_string(),
            &a.lens
                .get(&(stage.to_string(), key.to_string()))
                .map_or("-".into(), |n| n.to_string()),
        );
    }

    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let Some(entry) = a.entry(STAGE.0, STAGE.1, i) else {
            f.push(format!("{log}:{n}: no assert entry"));
            continue;
        };
        f.check(
            log,
            n,
            "Success",
            "true",
            &format!("{}", entry.success == Some(true)),
        );
        if let Some(m) = entry.parsed.get("message") {
            f.check(log, n, "message (index mapping)", m, line);
        }
        let ev = out.events.iter().find(|e| e.line == n);
        if entry.meta.get("log_type").map(String::as_str) != Some("mikrotik_drop") {
            match DIVERGENCES.iter().find(|d| d.0 == n) {
                None => f.push(format!(
                    "{log}:{n}: a non-firewall entry DIVERGENCES does not explain"
                )),
                Some(_) if ev.is_some() => f.push(format!("{log}:{n}: expected a skip")),
                Some(_) => {}
            }
            continue;
        }
        let Some(ev) = ev else {
            f.push(format!("{log}:{n}: crowdsec parses this line, we do not"));
            continue;
        };
        let e = &ev.event;
        let p = &entry.parsed;
        for required in ["source_ip", "dst_ip", "dst_port", "proto", "timestamp"] {
            if !p.contains_key(required) {
                f.push(format!("{log}:{n}: assert has no {required}"));
            }
        }
        for v in [p.get("source_ip"), entry.meta.get("source_ip")]
            .into_iter()
            .flatten()
        {
            f.check(log, n, "source_ip", v, &e.src.to_string());
        }
        if let Some(v) = p.get("dst_ip") {
            f.check(log, n, "dst_ip", v, &e.dst.to_string());
        }
        if let Some(v) = p.get("src_port") {
            f.check(log, n, "src_port", v, &port(e.src_port));
        }
        for v in [p.get("dst_port"), entry.meta.get("dst_port")]
            .into_iter()
            .flatten()
        {
            f.check(log, n, "dst_port", v, &port(e.dst_port));
        }
        if let Some(v) = p.get("proto") {
            let want =
                Protocol::parse(v).map_or_else(|| format!("<{v}>"), |p| p.name().into_owned());
            f.check(log, n, "proto", &want, &e.proto.name());
        }
        if let Some(v) = entry.meta.get("service") {
            f.check(log, n, "service", "tcp_udp", v);
            f.check(
                log,
                n,
                "service (ports)",
                "true",
                &e.proto.has_ports().to_string(),
            );
        }
        let enriched = a.entry(ENRICH.0, ENRICH.1, i);
        for v in [
            p.get("timestamp"),
            enriched.and_then(|x| x.meta.get("timestamp")),
        ]
        .into_iter()
        .flatten()
        {
            let want = parse_rfc3339(v).map_or_else(|| format!("<{v}>"), |t| t.to_rfc3339());
            f.check(log, n, "timestamp", &want, &e.time.to_rfc3339());
        }
        if let (Some(i_in), Some(i_out)) = (p.get("if_in"), p.get("if_out")) {
            let want = match (is_iface(i_in), is_iface(i_out)) {
                (true, _) => Direction::Inbound,
                (false, true) => Direction::Outbound,
                (false, false) => Direction::Unknown,
            };
            f.check(
                log,
                n,
                "if_in/if_out",
                &format!("{want:?}"),
                &format!("{:?}", e.direction),
            );
        } else {
            f.push(format!("{log}:{n}: assert has no if_in/if_out"));
        }
        let want_action = match p.get("tag") {
            Some(t) if t.starts_with("drop") => Action::Drop,
            Some(t) => panic!("{log}:{n}: unexpected tag {t:?}"),
            None => Action::Unknown,
        };
        f.check(log, n, "tag", want_action.name(), e.action.name());
        // The line's own host field (not in the assert: CrowdSec read the file as
        // non-syslog).
        let host = line.split(' ').nth(1).unwrap_or("");
        f.check(log, n, "host", host, ev.host.as_deref().unwrap_or(""));
        f.check(log, n, "counts", "true", &e.is_unsolicited().to_string());
        all_keys_accounted(&mut f, log, n, entry, CHECKED, NOT_CARRIED);
        if let Some(x) = enriched {
            all_keys_accounted(&mut f, log, n, x, CHECKED, NOT_CARRIED);
        }
    }
    // Field by field, as read off the file.
    let want = [
        (1, "udp 186.26.78.68:44355 > 81.82.202.145:53 "),
        (2, "tcp 36.97.161.219:59388 > 81.82.202.145:23 S"),
        (4, "tcp 2001:db8:1234::1:40384 > 2001:db8:1234::2:20461 S"),
        (5, "udp 2001:db8:1234::1:17850 > 2001:db8:1234::2:51413 "),
        (6, "tcp 192.0.2.1:56282 > 192.0.2.2:36228 S"),
        (7, "udp 192.0.2.1:42105 > 192.0.2.2:42105 "),
    ];
    for (n, fl) in want {
        match out.events.iter().find(|e| e.line == n) {
            Some(ev) => f.check(log, n, "flow", fl, &flow(ev)),
            None => f.push(format!("{log}:{n}: no event")),
        }
    }
    f.finish();
}

/// `results[0].Overflow.Alert.Events[i].GetMeta("key") == "value"` lines.
fn scenario_events(text: &str) -> Vec<(String, String, String)> {
    let mut events: std::collections::BTreeMap<usize, [String; 3]> = Default::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("results[0].Overflow.Alert.Events[") else {
            continue;
        };
        let (i, rest) = rest.split_once("].GetMeta(\"").unwrap();
        let (key, value) = rest.split_once("\") == ").unwrap();
        let value = common::unquote(value, line);
        let slot = match key {
            "source_ip" => 0,
            "dst_port" => 1,
            "timestamp" => 2,
            _ => continue,
        };
        events.entry(i.parse().unwrap()).or_default()[slot] = value;
    }
    events.into_values().map(|[a, b, c]| (a, b, c)).collect()
}

#[test]
fn scan_multi_ports_scenario() {
    let log = "crowdsecurity-hub__mikrotik-scan-multi_ports.log";
    let (text, out) = parse_fixture("mikrotik", DIR, log, REF);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (19, 0));
    let mut f = Fails::default();
    // Destination ports as the file gives them (plain text after the last `:`).
    let file_ports: Vec<String> = text
        .lines()
        .map(|l| {
            let addrs = l.split(", ").nth(3).unwrap();
            addrs.rsplit(':').next().unwrap().to_string()
        })
        .collect();
    let mut ours = BTreeSet::new();
    for (ev, want_port) in out.events.iter().zip(&file_ports) {
        let (e, n) = (&ev.event, ev.line);
        f.check(log, n, "dst_port", want_port, &port(e.dst_port));
        f.check(log, n, "src", "36.97.161.219", &e.src.to_string());
        f.check(log, n, "dst", "80.82.202.145", &e.dst.to_string());
        f.check(log, n, "flags", "S", &e.flags.letters());
        f.check(log, n, "action", "drop", e.action.name());
        f.check(log, n, "counts", "true", &e.is_unsolicited().to_string());
        f.check(
            log,
            n,
            "host",
            "10.120.127.1",
            ev.host.as_deref().unwrap_or(""),
        );
        ours.insert((e.src.to_string(), port(e.dst_port), e.time.to_rfc3339()));
    }
    let distinct: BTreeSet<_> = out.events.iter().map(|e| e.event.dst_port).collect();
    assert_eq!(distinct.len(), 17, "ports 23..=39");

    let assert_name = "crowdsecurity-hub__mikrotik-scan-multi_ports__scenario.assert";
    let alert = scenario_events(&read(DIR, assert_name));
    assert_eq!(alert.len(), 16, "GetEventsCount() == 16");
    for (src, dport, ts) in alert {
        let t = parse_rfc3339(&ts).unwrap().to_rfc3339();
        if !ours.contains(&(src.clone(), dport.clone(), t.clone())) {
            f.push(format!(
                "{assert_name}: alert event {src} :{dport} at {t} is not one of ours"
            ));
        }
    }
    f.finish();
}

#[test]
fn every_fixture_is_listed() {
    let mut names: Vec<String> = std::fs::read_dir(common::fixture_dir(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "crowdsecurity-hub__mikrotik-logs.log",
            "crowdsecurity-hub__mikrotik-logs__parser.assert",
            "crowdsecurity-hub__mikrotik-scan-multi_ports.log",
            "crowdsecurity-hub__mikrotik-scan-multi_ports__scenario.assert",
        ]
    );
}
