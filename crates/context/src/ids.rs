//! IDS evidence: Suricata EVE `alert` records and Snort/Suricata `fast.log` lines
//! reduced to what confirms an explanation — when, which port, which signature and
//! which CVEs it names. Pure: lines in, hits out; nothing panics on input.

use std::net::IpAddr;

use scanwatch_event::{Protocol, Timestamp};
use serde::Deserialize;

/// One IDS alert.
#[derive(Clone, Debug, PartialEq)]
pub struct IdsHit {
    pub time: Timestamp,
    pub proto: Protocol,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dst_port: Option<u16>,
    /// `gid:sid:rev` for fast.log, the signature id for EVE.
    pub rule: String,
    pub signature: String,
    /// CVE ids named by the rule (metadata or text), normalised to `CVE-YYYY-N`.
    pub cves: Vec<String>,
    /// The sensor that sent it; `None` for the operator's own files (trusted).
    pub sensor: Option<String>,
}

/// The stored form of an [`IdsHit`] (the centre keeps the hits its sensors send).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct StoredHit {
    pub time_ms: i64,
    pub proto: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(default)]
    pub dst_port: Option<u16>,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub cves: Vec<String>,
    /// The sensor that sent it (absent: an operator's file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

impl From<&IdsHit> for StoredHit {
    fn from(h: &IdsHit) -> StoredHit {
        StoredHit {
            time_ms: h.time.0,
            proto: h.proto.name().into_owned(),
            src: h.src,
            dst: h.dst,
            dst_port: h.dst_port,
            rule: h.rule.clone(),
            signature: h.signature.clone(),
            cves: h.cves.clone(),
            sensor: h.sensor.clone(),
        }
    }
}

impl StoredHit {
    /// Back to a hit; `None` for an unknown protocol name.
    pub fn to_hit(&self) -> Option<IdsHit> {
        Some(IdsHit {
            time: Timestamp(self.time_ms),
            proto: Protocol::parse(&self.proto)?,
            src: self.src,
            dst: self.dst,
            dst_port: self.dst_port,
            rule: self.rule.clone(),
            signature: self.signature.clone(),
            cves: self.cves.clone(),
            sensor: self.sensor.clone(),
        })
    }
}

/// IDS alerts kept in memory per sensor (the newest ones), so that one sensor's
/// flood cannot push out the others' (docs/security.md).
pub const MAX_HITS_PER_SENSOR: usize = 5_000;
/// IDS alerts kept in memory in all (the newest ones).
pub const MAX_HITS: usize = 50_000;

/// Keeps the newest `per_sensor` hits of each sensor and the newest `total` in all
/// (hits of the operator's own files count as one sensor); returns how many were
/// dropped. The order of the kept hits is by time.
pub fn bound_hits(hits: &mut Vec<IdsHit>, per_sensor: usize, total: usize) -> usize {
    let mut per: std::collections::HashMap<Option<&str>, usize> = Default::default();
    let over = hits.len() > total
        || hits.iter().any(|h| {
            let n = per.entry(h.sensor.as_deref()).or_insert(0);
            *n += 1;
            *n > per_sensor
        });
    if !over {
        return 0;
    }
    hits.sort_by_key(|h| h.time);
    let mut keep = vec![false; hits.len()];
    let mut per: std::collections::HashMap<Option<String>, usize> = Default::default();
    let mut kept = 0;
    for (i, h) in hits.iter().enumerate().rev() {
        let n = per.entry(h.sensor.clone()).or_insert(0);
        if *n < per_sensor && kept < total {
            *n += 1;
            kept += 1;
            keep[i] = true;
        }
    }
    let before = hits.len();
    let mut i = 0;
    hits.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    before - hits.len()
}

/// Longest signature kept from a sensor (longer ones are cut).
pub const MAX_SIGNATURE_CHARS: usize = 512;
/// Most CVEs kept per alert.
pub const MAX_CVES: usize = 32;

/// A hit from an event and the IDS facts a sensor sent with it: signature cut to
/// [`MAX_SIGNATURE_CHARS`], CVEs normalised (invalid ones dropped), at most
/// [`MAX_CVES`].
pub fn hit_from_wire(
    time: Timestamp,
    proto: Protocol,
    src: IpAddr,
    dst: IpAddr,
    dst_port: Option<u16>,
    w: &scanwatch_event::WireIds,
) -> IdsHit {
    let mut cves: Vec<String> = w.cves.iter().filter_map(|c| normalise_cve(c)).collect();
    cves.sort();
    cves.dedup();
    cves.truncate(MAX_CVES);
    IdsHit {
        time,
        proto,
        src,
        dst,
        dst_port,
        rule: w.rule.chars().take(64).collect(),
        signature: w.signature.chars().take(MAX_SIGNATURE_CHARS).collect(),
        cves,
        sensor: None,
    }
}

/// The IDS facts of a hit, as a sensor sends them.
pub fn wire_ids(h: &IdsHit) -> scanwatch_event::WireIds {
    scanwatch_event::WireIds {
        rule: h.rule.clone(),
        signature: h.signature.clone(),
        cves: h.cves.clone(),
    }
}

/// What one line is.
#[derive(Clone, Debug, PartialEq)]
pub enum IdsLine {
    Hit(IdsHit),
    /// Valid but not an alert (an EVE `flow` record, a comment, a blank line).
    Skip,
    Error(String),
}

/// Parses one line of EVE JSON or fast.log. `year` is used for Snort's fast.log
/// timestamps, which have none.
pub fn parse_line(line: &str, year: i32) -> IdsLine {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        IdsLine::Skip
    } else if t.starts_with('{') {
        parse_eve(t)
    } else {
        parse_fast(t, year)
    }
}

#[derive(Deserialize)]
struct Eve<'a> {
    #[serde(default)]
    event_type: Option<&'a str>,
    #[serde(default)]
    timestamp: Option<&'a str>,
    #[serde(default)]
    proto: Option<&'a str>,
    #[serde(default)]
    src_ip: Option<IpAddr>,
    #[serde(default)]
    dest_ip: Option<IpAddr>,
    #[serde(default)]
    dest_port: Option<u16>,
    #[serde(default)]
    alert: Option<EveAlert>,
}

#[derive(Deserialize)]
struct EveAlert {
    #[serde(default)]
    signature_id: Option<u64>,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    metadata: Option<EveMeta>,
}

#[derive(Deserialize)]
struct EveMeta {
    #[serde(default)]
    cve: Vec<String>,
}

fn parse_eve(line: &str) -> IdsLine {
    let e: Eve<'_> = match serde_json::from_str(line) {
        Ok(e) => e,
        Err(e) => return IdsLine::Error(format!("invalid eve json: {e}")),
    };
    if e.event_type != Some("alert") {
        return IdsLine::Skip;
    }
    let Some(alert) = e.alert else {
        return IdsLine::Error("eve alert without an alert object".into());
    };
    let Some(ts) = e.timestamp else {
        return IdsLine::Error("eve alert without timestamp".into());
    };
    let Some(time) = eve_time(ts) else {
        return IdsLine::Error(format!("invalid eve timestamp {ts:?}"));
    };
    let (Some(src), Some(dst)) = (e.src_ip, e.dest_ip) else {
        return IdsLine::Error("eve alert without src_ip or dest_ip".into());
    };
    let proto = match e.proto.and_then(Protocol::parse) {
        Some(p) => p,
        None => return IdsLine::Error(format!("unknown eve proto {:?}", e.proto)),
    };
    let mut cves: Vec<String> = alert
        .metadata
        .map(|m| m.cve)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| normalise_cve(c))
        .collect();
    cves.extend(cves_in(&alert.signature));
    cves.sort();
    cves.dedup();
    IdsLine::Hit(IdsHit {
        time,
        proto,
        src,
        dst,
        dst_port: e.dest_port,
        rule: alert
            .signature_id
            .map(|s| s.to_string())
            .unwrap_or_default(),
        signature: alert.signature,
        cves,
        sensor: None,
    })
}

/// EVE writes `2022-07-11T10:29:01.860293+0000` (offset without a colon).
fn eve_time(s: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|d| Timestamp(d.timestamp_millis()))
        .or_else(|| scanwatch_event::parse_rfc3339(s))
}

/// fast.log: `07/11/2022-10:29:01.860293  [**] [1:2008578:4] ET SCAN … [**]
/// [Classification: …] [Priority: 2] {UDP} 89.248.163.216:5116 -> 172.31.18.55:5060`.
/// Dates are `MM/DD/YYYY`, `MM/DD/YY` (older Suricata) or `MM/DD` (Snort).
fn parse_fast(line: &str, year: i32) -> IdsLine {
    let Some((ts, rest)) = line.split_once(char::is_whitespace) else {
        return IdsLine::Error("fast.log line without a timestamp".into());
    };
    let Some(time) = fast_time(ts, year) else {
        return IdsLine::Error(format!("invalid fast.log timestamp {ts:?}"));
    };
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix("[**] [") else {
        return IdsLine::Error("fast.log line without \"[**] [gid:sid:rev]\"".into());
    };
    let Some((rule, rest)) = rest.split_once(']') else {
        return IdsLine::Error("fast.log rule id not closed".into());
    };
    let Some((sig, rest)) = rest.split_once("[**]") else {
        return IdsLine::Error("fast.log signature not closed by [**]".into());
    };
    let signature = sig.trim().trim_matches('"').to_string();
    let Some(open) = rest.rfind('{') else {
        return IdsLine::Error("fast.log line without {PROTO}".into());
    };
    let Some((proto, addrs)) = rest[open + 1..].split_once('}') else {
        return IdsLine::Error("fast.log protocol not closed".into());
    };
    let Some(proto) = Protocol::parse(proto) else {
        return IdsLine::Error(format!("unknown fast.log protocol {proto:?}"));
    };
    let Some((a, b)) = addrs.split_once("->") else {
        return IdsLine::Error("fast.log line without \"->\"".into());
    };
    let with_ports = proto.has_ports();
    let (Some((src, _)), Some((dst, dst_port))) = (
        endpoint(a.trim(), with_ports),
        endpoint(b.trim(), with_ports),
    ) else {
        return IdsLine::Error(format!("invalid fast.log addresses {:?}", addrs.trim()));
    };
    let cves = cves_in(&signature);
    IdsLine::Hit(IdsHit {
        time,
        proto,
        src,
        dst,
        dst_port,
        rule: rule.to_string(),
        signature,
        cves,
        sensor: None,
    })
}

/// `1.2.3.4:80`, `[2001:db8::1]:80`, `2001:db8::1:80` (Suricata's IPv6 form: the
/// last group is the port), or a bare address for protocols without ports.
fn endpoint(s: &str, with_port: bool) -> Option<(IpAddr, Option<u16>)> {
    if !with_port {
        return s.parse().ok().map(|a| (a, None));
    }
    if let Some(r) = s.strip_prefix('[') {
        let (a, p) = r.split_once("]:")?;
        return Some((a.parse().ok()?, Some(p.parse().ok()?)));
    }
    let (a, p) = s.rsplit_once(':')?;
    Some((a.parse().ok()?, Some(p.parse().ok()?)))
}

fn fast_time(s: &str, year: i32) -> Option<Timestamp> {
    let (date, time) = s.split_once('-')?;
    let mut parts = date.split('/');
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    let y: i32 = match parts.next() {
        None => year,
        Some(y) if y.len() == 2 => 2000 + y.parse::<i32>().ok()?,
        Some(y) => y.parse().ok()?,
    };
    if parts.next().is_some() {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d)?;
    let t = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f").ok()?;
    Some(Timestamp(date.and_time(t).and_utc().timestamp_millis()))
}

/// `CVE_2021_41773`, `cve-2021-41773` → `CVE-2021-41773`.
pub fn normalise_cve(s: &str) -> Option<String> {
    let b = s.trim().as_bytes();
    if b.len() < 13 || !b[..3].eq_ignore_ascii_case(b"cve") {
        return None;
    }
    let rest = &b[3..];
    let sep = |c: u8| matches!(c, b'-' | b'_' | b' ');
    if !sep(rest[0]) || !rest[1..5].iter().all(u8::is_ascii_digit) || !sep(rest[5]) {
        return None;
    }
    let num: Vec<u8> = rest[6..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    if num.len() < 4 {
        return None;
    }
    Some(format!(
        "CVE-{}-{}",
        String::from_utf8_lossy(&rest[1..5]),
        String::from_utf8_lossy(&num)
    ))
}

/// Every CVE id named in a text.
pub fn cves_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("cve") {
        let at = from + i;
        if let Some(c) = normalise_cve(&text[at..]) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        from = at + 3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_sensor_keeps_the_others_hits() {
        let h = |sensor: &str, t: i64| IdsHit {
            time: Timestamp(t),
            proto: Protocol::Tcp,
            src: "192.0.2.1".parse().unwrap_or_else(|_| unreachable!()),
            dst: "198.18.0.1".parse().unwrap_or_else(|_| unreachable!()),
            dst_port: Some(445),
            rule: String::new(),
            signature: String::new(),
            cves: Vec::new(),
            sensor: Some(sensor.into()),
        };
        let mut hits: Vec<IdsHit> = (0..3).map(|t| h("honest", t)).collect();
        hits.extend((0..1000).map(|t| h("flood", 10 + t)));
        assert_eq!(bound_hits(&mut hits, 100, 150), 900);
        assert_eq!(
            hits.iter()
                .filter(|x| x.sensor.as_deref() == Some("honest"))
                .count(),
            3
        );
        assert_eq!(hits.len(), 103);
        // The flood's newest are the ones kept, in time order.
        assert_eq!(hits.last().map(|x| x.time), Some(Timestamp(1009)));
        assert!(hits.windows(2).all(|w| w[0].time <= w[1].time));
        // Under the bounds nothing moves.
        assert_eq!(bound_hits(&mut hits, 100, 150), 0);
    }

    fn hit(l: IdsLine) -> IdsHit {
        match l {
            IdsLine::Hit(h) => h,
            other => panic!("not a hit: {other:?}"),
        }
    }

    #[test]
    fn eve_alert_with_cve_metadata() {
        let line = r#"{"timestamp":"2022-07-11T10:29:01.860293+0000","flow_id":1,"event_type":"alert","src_ip":"192.0.2.9","src_port":4444,"dest_ip":"198.51.100.7","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2034125,"rev":4,"signature":"ET EXPLOIT Apache HTTP Server 2.4.49 - Path Traversal Attempt (CVE-2021-41773) M2","category":"x","severity":1,"metadata":{"cve":["CVE_2021_41773"]}}}"#;
        let h = hit(parse_line(line, 2026));
        assert_eq!(h.cves, ["CVE-2021-41773"]);
        assert_eq!(h.dst_port, Some(80));
        assert_eq!(h.proto, Protocol::Tcp);
        assert_eq!(h.rule, "2034125");
        assert_eq!(
            scanwatch_event::format_rfc3339(h.time),
            "2022-07-11T10:29:01.860Z"
        );
        assert_eq!(
            parse_line(r#"{"event_type":"flow","timestamp":"x"}"#, 2026),
            IdsLine::Skip
        );
    }

    #[test]
    fn fast_log_variants() {
        let s = "07/11/2022-10:29:32.251216  [**] [1:2008578:4] ET SCAN Sipvicious Scan [**] [Classification: Attempted Information Leak] [Priority: 2] {UDP} 89.248.163.216:5116 -> 172.31.18.55:5060";
        let h = hit(parse_line(s, 2026));
        assert_eq!(
            (h.rule.as_str(), h.signature.as_str()),
            ("1:2008578:4", "ET SCAN Sipvicious Scan")
        );
        assert_eq!(
            (h.proto, h.dst_port, h.src.to_string()),
            (Protocol::Udp, Some(5060), "89.248.163.216".into())
        );
        let snort = "12/28-12:55:38.765402 [**] [1:366:11] \"PROTOCOL-ICMP PING Unix\" [**] [Priority: 3] {ICMP} 2001:df1:c200:c:0:0:0:35 -> 2001:4860:4860:0:0:0:0:8888";
        let h = hit(parse_line(snort, 2021));
        assert_eq!(h.signature, "PROTOCOL-ICMP PING Unix");
        assert_eq!(h.dst_port, None);
        assert_eq!(
            scanwatch_event::format_rfc3339(h.time),
            "2021-12-28T12:55:38.765Z"
        );
        let short_year = "10/05/10-10:08:59.667372 [**] [1:2024218:1] ET EXPLOIT Possible ETERNALBLUE MS17-010 CVE-2017-0144 [**] [Classification: A] [Priority: 1] {TCP} 11.11.232.144:4000 -> 192.168.1.4:445";
        let h = hit(parse_line(short_year, 2026));
        assert_eq!(h.cves, ["CVE-2017-0144"]);
        assert_eq!(h.dst_port, Some(445));
        assert!(scanwatch_event::format_rfc3339(h.time).starts_with("2010-10-05"));
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for l in [
            "garbage",
            "07/11/2022-10:29:32.251216 [**] [1:2:3] x [**] {TCP} 1.2.3.4 -> 5.6.7.8:80",
            "13/45/2022-10:29:32 [**] [1:2:3] x [**] {TCP} 1.2.3.4:1 -> 5.6.7.8:80",
            "{\"event_type\":\"alert\"}",
            "{not json",
            "07/11/2022-10:29:32.251216 [**] [1:2:3] x [**] {TCP} 1.2.3.4:1 => 5.6.7.8:80",
        ] {
            assert!(matches!(parse_line(l, 2026), IdsLine::Error(_)), "{l}");
        }
        for n in 0..=40 {
            let _ = normalise_cve(&"CVE-2021-417730"[..n.min(15)]);
        }
    }

    #[test]
    fn cve_extraction() {
        assert_eq!(
            cves_in("x cve-2007-1748 and CVE_2020_1350, CVE-12 CVE-2020-1350"),
            ["CVE-2007-1748", "CVE-2020-1350"]
        );
        assert_eq!(normalise_cve("CVE-2020-13"), None);
    }
}
