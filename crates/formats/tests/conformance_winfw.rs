//! Conformance of the `winfw` parser against plaso's `windows_firewall.log`
//! (`testdata/fixtures/windows-firewall/`, Apache-2.0, log2timeline/plaso; see
//! SOURCES.md). There is no CrowdSec assert for it: the expected events below were read
//! off the file by hand. Plaso makes 15 events of its 15 rows; we make 11: the three
//! `CLOSE` rows and the `INFO-EVENTS-LOST` row are skipped (see the module docs of
//! `winfw`), as are the 4 header lines.
#![allow(clippy::unwrap_used)]

mod common;

use common::{parse_fixture, port, Fails};

const DIR: &str = "windows-firewall";
const LOG: &str = "plaso__windows_firewall.log";

#[test]
fn plaso_windows_firewall() {
    let (text, out) = parse_fixture("winfw", DIR, LOG, "2026-11-26T00:00:00Z");
    assert_eq!(text.lines().count(), 19);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (11, 8));
    // (line, time, action, "proto src:sport > dst:dport flags", direction, icmp type, counts)
    let want = [
        (
            5,
            "2005-04-11T08:05:57Z",
            "drop",
            "udp 123.45.78.90:137 > 123.156.78.255:137 ",
            "Inbound",
            None,
            true,
        ),
        (
            6,
            "2005-04-11T08:05:57Z",
            "drop",
            "udp 123.45.78.90:1631 > 255.255.255.255:2234 ",
            "Inbound",
            None,
            true,
        ),
        (
            7,
            "2005-04-11T08:05:58Z",
            "accept",
            "udp 123.45.78.90:500 > 123.156.78.90:500 ",
            "Outbound",
            None,
            false,
        ),
        (
            8,
            "2005-04-11T08:05:58Z",
            "drop",
            "udp 123.45.78.90:138 > 123.156.78.255:138 ",
            "Inbound",
            None,
            true,
        ),
        (
            11,
            "2005-04-11T08:06:05Z",
            "drop",
            "udp 0.0.0.0:68 > 255.255.255.255:67 ",
            "Inbound",
            None,
            true,
        ),
        (
            12,
            "2005-04-11T08:06:26Z",
            "drop",
            "tcp 123.45.78.90:80 > 123.156.78.90:1774 A",
            "Inbound",
            None,
            false,
        ),
        (
            13,
            "2005-04-11T08:06:27Z",
            "drop",
            "tcp 123.45.78.90:80 > 123.156.78.90:1774 PA",
            "Inbound",
            None,
            false,
        ),
        (
            14,
            "2005-04-11T08:08:58Z",
            "drop",
            "icmp 123.45.78.90:- > 123.156.78.90:- ",
            "Inbound",
            Some(8),
            false,
        ),
        (
            15,
            "2005-04-11T08:09:29Z",
            "accept",
            "tcp 123.45.78.90:1606 > 123.156.78.90:445 ",
            "Outbound",
            None,
            false,
        ),
        (
            17,
            "2005-04-11T08:48:46Z",
            "drop",
            "tcp 123.45.78.90:80 > 123.156.78.90:1693 A",
            "Inbound",
            None,
            false,
        ),
        (
            18,
            "2005-04-11T08:48:46Z",
            "drop",
            "tcp 123.45.78.90:80 > 123.156.78.90:1693 FA",
            "Inbound",
            None,
            false,
        ),
    ];
    let mut f = Fails::default();
    for (ev, (n, time, action, flow, dir, icmp, counts)) in out.events.iter().zip(want) {
        let e = &ev.event;
        f.check(LOG, n, "line", &n.to_string(), &ev.line.to_string());
        f.check(LOG, n, "time", time, &e.time.to_rfc3339());
        f.check(LOG, n, "action", action, e.action.name());
        let got = format!(
            "{} {}:{} > {}:{} {}",
            e.proto,
            e.src,
            port(e.src_port),
            e.dst,
            port(e.dst_port),
            e.flags.letters()
        );
        f.check(LOG, n, "flow", flow, &got);
        f.check(LOG, n, "direction", dir, &format!("{:?}", e.direction));
        f.check(
            LOG,
            n,
            "icmp_type",
            &format!("{icmp:?}"),
            &format!("{:?}", e.icmp_type),
        );
        f.check(
            LOG,
            n,
            "counts",
            &counts.to_string(),
            &e.is_unsolicited().to_string(),
        );
        f.check(LOG, n, "host", "None", &format!("{:?}", ev.host));
    }
    f.finish();
}
