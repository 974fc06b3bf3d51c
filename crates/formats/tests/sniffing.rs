//! Auto-detection across formats: every fixture file is detected as its format, no
//! sniffer of a later-added format claims a line of another format's fixtures, and
//! representative lines of each format are detected as that format (so no format
//! earlier in the registry steals them).
#![allow(clippy::unwrap_used)]

mod common;

use scanwatch_formats::{detect, format_by_name, REGISTRY};

/// (fixture directory, file name prefix or whole name, expected format).
const FIXTURES: &[(&str, &str, &str)] = &[
    (
        "iptables",
        "crowdsecurity-hub__iptables-logs.log",
        "netfilter",
    ),
    (
        "iptables",
        "crowdsecurity-hub__iptables-scan-multi-port.log",
        "netfilter",
    ),
    (
        "iptables",
        "crowdsecurity-hub__proxmox-iptables.log",
        "netfilter",
    ),
    ("iptables", "crowdsecurity-hub__unifi-logs.log", "netfilter"),
    ("pf", "crowdsecurity-hub__pf-logs.log", "filterlog"),
    (
        "pf",
        "crowdsecurity-hub__pfsense-rfc5424-filterlog.log",
        "filterlog",
    ),
    (
        "suricata",
        "crowdsecurity-hub__suricata-eve-detect.log",
        "suricata",
    ),
    (
        "suricata",
        "crowdsecurity-hub__suricata-logs-evelog.log",
        "suricata",
    ),
    (
        "suricata",
        "crowdsecurity-hub__suricata-logs-fastlog.log",
        "fastlog",
    ),
    ("suricata", "plaso__suricata_alert_fast.log", "fastlog"),
    ("snort", "plaso__snort3_alert_fast.log", "fastlog"),
    ("windows-firewall", "plaso__windows_firewall.log", "winfw"),
    ("zeek", "brimdata-zed__conn.log", "zeek"),
    ("zeek", "zeek__zeek-cut-logs__conn.log", "zeek"),
    (
        "mikrotik",
        "crowdsecurity-hub__mikrotik-logs.log",
        "mikrotik",
    ),
    (
        "mikrotik",
        "crowdsecurity-hub__mikrotik-scan-multi_ports.log",
        "mikrotik",
    ),
];

/// Formats added after the first seven: their sniffers must not claim other lines.
const NEW: &[&str] = &[
    "zeek-json",
    "ulogd-json",
    "fastlog",
    "cisco-asa",
    "mikrotik",
    "pflog",
];

#[test]
fn fixtures_are_detected_and_not_stolen() {
    let mut fails = Vec::new();
    for (dir, file, want) in FIXTURES {
        let text = common::read(dir, file);
        let got = detect(text.lines()).map(|f| f.name());
        if got != Some(*want) {
            fails.push(format!("{dir}/{file}: detected {got:?}, want {want}"));
        }
        for (n, line) in text.lines().enumerate() {
            for name in NEW.iter().filter(|n| *n != want) {
                if format_by_name(name).unwrap().sniff(line) {
                    fails.push(format!(
                        "{dir}/{file}:{}: {name} sniffs a {want} line",
                        n + 1
                    ));
                }
            }
        }
    }
    // Every fixture log file is in the table (asserts and masked baselines aside).
    for dir in [
        "iptables",
        "pf",
        "suricata",
        "snort",
        "windows-firewall",
        "zeek",
        "mikrotik",
    ] {
        for e in std::fs::read_dir(common::fixture_dir(dir)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let listed = FIXTURES.iter().any(|(d, f, _)| *d == dir && *f == name);
            if !listed && !name.ends_with(".assert") && !name.starts_with("zeek__baseline") {
                fails.push(format!("{dir}/{name}: not in FIXTURES"));
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn representative_lines_are_detected() {
    let cases: &[(&str, &str)] = &[
        (
            "zeek-json",
            r#"{"ts":1591367999.305988,"uid":"CMdzit1AMNsmfAIiQc","id.orig_h":"192.168.4.76","id.orig_p":36844,"id.resp_h":"192.168.4.1","id.resp_p":53,"proto":"udp","service":"dns","conn_state":"SF","history":"Dd"}"#,
        ),
        (
            "zeek-json",
            r#"{"_path":"conn","_write_ts":"2020-06-05T14:40:00.000000Z","ts":"2020-06-05T14:39:59.305988Z","uid":"C1","id.orig_h":"192.168.4.76","id.orig_p":36844,"id.resp_h":"192.168.4.1","id.resp_p":53,"proto":"udp"}"#,
        ),
        (
            "ulogd-json",
            r#"{"timestamp":"2026-09-28T18:52:30.943369-0300","dvc":"Netfilter","raw.pktlen":60,"oob.prefix":"forward-drop","oob.time.sec":1790632350,"oob.time.usec":943369,"oob.family":2,"ip.protocol":6,"src_port":43936,"dest_port":5432,"tcp.syn":1,"tcp.ack":0,"oob.in":"eth2","oob.out":"eth3","src_ip":"192.168.10.20","dest_ip":"192.168.20.30"}"#,
        ),
        (
            "fastlog",
            "07/11/2022-10:29:01.860293  [**] [1:2200074:2] SURICATA TCPv4 invalid checksum [**] [Classification: Generic Protocol Command Decode] [Priority: 3] {TCP} 2.57.122.209:28487 -> 172.31.18.55:80",
        ),
        (
            "cisco-asa",
            "<164>Aug 28 2022 19:34:14: %ASA-4-106023: Deny tcp src outside:123.93.187.190/63659 dst dmz-1:245.194.191.142/8827 by access-group \"outside_access_in\" [0x0, 0x0]",
        ),
        (
            "cisco-asa",
            "Jan 19 10:55:14 10.157.238.252 : %ASA-5-106100: access-list Global_acl denied tcp outside/10.169.6.133(65089) -> inside/192.168.85.110(7680) hit-cnt 4 300-second interval [0xc7afbac6, 0x0]",
        ),
        (
            "cisco-asa",
            "Dec 11 08:53:19 fw %ASA-6-302015: Built inbound UDP connection 211050627 for outside:10.140.137.14/52302 (10.140.137.14/52302) to inside:10.50.250.2/53 (10.50.250.2/53)",
        ),
        (
            "mikrotik",
            "<134>Jan 15 10:22:31 MikroTik firewall,info forward: in:ether1 out:bridge1, connection-state:new, proto TCP (SYN), 192.168.1.50:51234->1.2.3.4:443, len 60",
        ),
        (
            "pflog",
            "Nov 26 10:00:01.123456 rule 3/(match) block in on em0: 203.0.113.5.51234 > 198.51.100.7.1025: S 123:123(0) win 1024",
        ),
        (
            "pflog",
            "2025-10-18 20:00:21.848827 rule 439/0(match): block in on lan0.150: 172.16.150.72.43506 > 35.167.31.59.11111: Flags [S], seq 1257158708, win 29200, length 0",
        ),
        (
            "pflog",
            "Feb 16 16:43:20 firewall pf: rule 0/(match) block in on ep0: 194.54.59.189.2559 > 194.54.107.19.139: [|tcp] (DF)",
        ),
    ];
    for (want, line) in cases {
        let got = detect([*line]).map(|f| f.name());
        assert_eq!(got, Some(*want), "{line}");
        // And the detected format reads it (an event, or a skip for other message ids).
        let spec = format_by_name(want).unwrap();
        let out = scanwatch_formats::parse_str(
            spec,
            line,
            &scanwatch_formats::ParserOptions {
                reference_time: scanwatch_event::parse_rfc3339("2026-11-26T00:00:00Z").unwrap(),
            },
        );
        assert!(out.errors.is_empty(), "{line}: {:?}", out.errors);
    }
}

#[test]
fn registry_names_are_unique() {
    let mut all: Vec<&str> = REGISTRY
        .iter()
        .flat_map(|f| std::iter::once(f.name()).chain(f.aliases().iter().copied()))
        .collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a name or alias is used twice");
}
