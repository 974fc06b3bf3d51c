//! Linux netfilter log lines: the kernel `LOG` target and nftables `log` statement as
//! they appear in syslog files and `journalctl -k`, ulogd2 LOGEMU files, and the
//! Proxmox `pve-firewall` variant. IPv4 and IPv6; TCP, UDP, ICMP and others.
//!
//! A line is a netfilter line when it has both a `SRC=` and a `DST=` field. The
//! kernel always prints `IN=` and `OUT=`, so a netfilter line without them is an error.

use std::net::IpAddr;

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

use crate::syslog::{month_number, parse_clock, parse_header, YearResolver};
use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "netfilter"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["iptables", "nftables", "ulogd"]
    }
    fn description(&self) -> &'static str {
        "Linux iptables/nftables kernel log lines (syslog, journalctl -k, ulogd2 LOGEMU, Proxmox)"
    }
    fn sniff(&self, line: &str) -> bool {
        find_field(&SRC_FINDER, line).is_some() && find_field(&DST_FINDER, line).is_some()
    }
    fn parser(&self, opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(NetfilterParser::new(opts))
    }
}

/// Parser state: only the year resolver.
#[derive(Debug)]
pub struct NetfilterParser {
    years: YearResolver,
    /// The last log prefix and its action: prefixes repeat line after line.
    last_tag: (String, Action),
}

impl NetfilterParser {
    pub fn new(opts: &ParserOptions) -> NetfilterParser {
        NetfilterParser {
            years: YearResolver::new(opts.reference_time),
            last_tag: (String::new(), Action::Unknown),
        }
    }
}

static SRC_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"SRC="));
static DST_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"DST="));
static OUT_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"OUT="));
static FAST_FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 8]> =
    std::sync::LazyLock::new(|| {
        [
            " OUT=", " SRC=", " DST=", " PROTO=", " SPT=", " DPT=", " TYPE=", " [",
        ]
        .map(|k| memchr::memmem::Finder::new(k.as_bytes()))
    });
static IN_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"IN="));

/// Finds the finder's key at the start of the line or after a space.
fn find_field(finder: &memchr::memmem::Finder<'_>, line: &str) -> Option<usize> {
    let b = line.as_bytes();
    finder.find_iter(b).find(|&i| i == 0 || b[i - 1] == b' ')
}

impl LineParser for NetfilterParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        self.parse_line_with(line, true)
    }
}

impl NetfilterParser {
    /// Parses with the general tokenizer only, never the fast path. The fast path
    /// must give exactly this answer; tests and the fuzz target check that.
    pub fn parse_line_general<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        self.parse_line_with(line, false)
    }

    fn parse_line_with<'l>(&mut self, line: &'l str, fast: bool) -> LineOutcome<'l> {
        let Some(src_at) = find_field(&SRC_FINDER, line) else {
            return LineOutcome::Skip;
        };
        // The key/value part starts at IN= (kernel order: IN= OUT= [PHYSIN=] MAC= SRC=).
        let kv_start = match find_field(&IN_FINDER, &line[..src_at]) {
            Some(i) => i,
            // Proxmox's pve-firewall prints IN= only when there is an input device: its
            // host-outbound lines (`PVEFW-HOST-OUT … REJECT: OUT=vmbr0 SRC=…`) start at OUT=.
            None => match find_field(&OUT_FINDER, &line[..src_at]) {
                Some(i) if proxmox_time(&line[..i]).is_some() => i,
                _ => return LineOutcome::Error(ParseError::MissingField("IN=")),
            },
        };
        match self.parse(line, kv_start, fast) {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// The key/value fields of a netfilter line, as the general tokenizer defines them:
/// for each key, its first `KEY=` token after `IN=` and before any token that starts
/// with `[` (an ICMP error's quoted packet); TCP flags are the bare words after the
/// first `DPT=` token.
#[derive(Default)]
struct Fields<'l> {
    iface_in: Option<&'l str>,
    iface_out: Option<&'l str>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: Option<Protocol>,
    spt: Option<u16>,
    dpt: Option<u16>,
    icmp_type: Option<u8>,
    flags: TcpFlags,
}

/// The value that starts at `at`, up to the next space.
fn value_at(line: &str, at: usize) -> (&str, usize) {
    // Values are short: a plain loop beats a memchr call here.
    let b = line.as_bytes();
    let mut end = at;
    while end < b.len() && b[end] != b' ' {
        end += 1;
    }
    (&line[at..end], end)
}

/// The fast path: each key found with one SIMD search instead of tokenizing every
/// field. It gives exactly the general tokenizer's answer or `None` (then the caller
/// runs the tokenizer, which also produces the precise error for bad lines); tests
/// and the fuzz target check the equivalence.
fn fields_fast(line: &str, kv_start: usize) -> Option<Fields<'_>> {
    if !line[kv_start..].starts_with("IN=") {
        return None;
    }
    let b = line.as_bytes();
    let [f_out, f_src, f_dst, f_proto, f_spt, f_dpt, f_type, f_bracket] = &*FAST_FINDERS;
    let end = f_bracket
        .find(&b[kv_start..])
        .map_or(b.len(), |i| kv_start + i);
    let region = &b[kv_start..end];
    let find = |f: &memchr::memmem::Finder<'_>, klen: usize| -> Option<(&str, usize)> {
        f.find(region).map(|i| value_at(line, kv_start + i + klen))
    };
    let opt_parse = |v: Option<(&str, usize)>| -> Option<Option<u16>> {
        match v {
            Some((v, _)) => v.parse().ok().map(Some),
            None => Some(None),
        }
    };
    let dpt_found = find(f_dpt, 5);
    let mut f = Fields {
        iface_in: Some(value_at(line, kv_start + 3).0),
        iface_out: find(f_out, 5).map(|v| v.0),
        src: Some(crate::ip::parse_ip(find(f_src, 5)?.0)?),
        dst: Some(crate::ip::parse_ip(find(f_dst, 5)?.0)?),
        proto: Some(Protocol::parse(find(f_proto, 7)?.0)?),
        spt: opt_parse(find(f_spt, 5))?,
        dpt: opt_parse(dpt_found)?,
        icmp_type: match find(f_type, 6) {
            Some((v, _)) => Some(v.parse().ok()?),
            None => None,
        },
        flags: TcpFlags(0),
    };
    if let Some((_, tail)) = dpt_found {
        // Flag words are three-letter bare words.
        let mut start = tail + 1;
        for i in tail + 1..=end {
            if i == end || b[i] == b' ' {
                if i == start + 3 {
                    f.flags.set_word(&line[start..i]);
                }
                start = i + 1;
            }
        }
    }
    Some(f)
}

/// The general tokenizer: every token after `IN=`, one at a time.
fn fields_general(line: &str, kv_start: usize) -> Result<Fields<'_>, ParseError> {
    let mut f = Fields::default();
    let bytes = line.as_bytes();
    let mut i = kv_start;
    while i < bytes.len() {
        let start = i;
        let mut eq = 0;
        while i < bytes.len() && bytes[i] != b' ' {
            if eq == 0 && bytes[i] == b'=' {
                eq = i;
            }
            i += 1;
        }
        let end = i;
        i += 1;
        if end == start {
            continue;
        }
        // ICMP errors quote the offending packet in brackets: stop there, its
        // SRC/DST/PROTO belong to another packet.
        if bytes[start] == b'[' {
            break;
        }
        if eq == 0 {
            // Bare words after DPT= are TCP flags (SYN, ACK, …); IP flags such as DF
            // come earlier and are not TCP flags.
            if f.dpt.is_some() {
                f.flags.set_word(&line[start..end]);
            }
            continue;
        }
        let v = &line[eq + 1..end];
        match &bytes[start..eq] {
            b"IN" if f.iface_in.is_none() => f.iface_in = Some(v),
            b"OUT" if f.iface_out.is_none() => f.iface_out = Some(v),
            b"SRC" if f.src.is_none() => f.src = Some(parse_ip("SRC", v)?),
            b"DST" if f.dst.is_none() => f.dst = Some(parse_ip("DST", v)?),
            b"PROTO" if f.proto.is_none() => {
                f.proto = Some(Protocol::parse(v).ok_or_else(|| ParseError::invalid("PROTO", v))?)
            }
            b"SPT" if f.spt.is_none() => f.spt = Some(parse_port("SPT", v)?),
            b"DPT" if f.dpt.is_none() => f.dpt = Some(parse_port("DPT", v)?),
            b"TYPE" if f.icmp_type.is_none() => {
                f.icmp_type = Some(
                    v.parse::<u8>()
                        .map_err(|_| ParseError::invalid("TYPE", v))?,
                )
            }
            _ => {}
        }
    }
    Ok(f)
}

impl NetfilterParser {
    /// The action of a log prefix, cached: the kernel's `[uptime]` stamp is skipped
    /// so that the same rule prefix hits the cache on every line.
    fn action(&mut self, tag: &str) -> Action {
        let tag = match tag.strip_prefix("kernel: [").and_then(split_at_bracket) {
            Some((_, rest)) => rest,
            None => tag,
        };
        if tag != self.last_tag.0 {
            self.last_tag = (tag.to_string(), action_from_prefix(tag));
        }
        self.last_tag.1
    }
}

/// `s.split_once("] ")`, by `memchr` for the `]`: on every line, where the
/// general substring search was 3 % of the parse (`perf`).
fn split_at_bracket(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b']', &b[from..]) {
        let i = from + i;
        if b.get(i + 1) == Some(&b' ') {
            // Both ends are ASCII, so both are char boundaries.
            return Some((&s[..i], &s[i + 2..]));
        }
        from = i + 1;
    }
    None
}

/// Parses a Proxmox `dd/Mon/yyyy:hh:mm:ss +zzzz` timestamp token pair.
fn proxmox_time(prefix: &str) -> Option<Timestamp> {
    let mut toks = prefix.split(' ');
    while let Some(tok) = toks.next() {
        let b = tok.as_bytes();
        if b.len() == 20 && b[2] == b'/' && b[6] == b'/' && b[11] == b':' {
            let day: u32 = tok[0..2].parse().ok()?;
            let month = month_number(&b[3..6])?;
            let year: i32 = tok[7..11].parse().ok()?;
            let (h, m, s, ms, _) = parse_clock(&b[12..])?;
            let t = Timestamp::from_civil(year, month, day, h, m, s, ms)?;
            let off = toks.next()?;
            let ob = off.as_bytes();
            if ob.len() != 5
                || !(ob[0] == b'+' || ob[0] == b'-')
                || !ob[1..].iter().all(u8::is_ascii_digit)
            {
                return None;
            }
            let oh: i64 = off[1..3].parse().ok()?;
            let om: i64 = off[3..5].parse().ok()?;
            let mut offset_ms = (oh * 60 + om) * 60_000;
            if ob[0] == b'-' {
                offset_ms = -offset_ms;
            }
            return Some(Timestamp(t.0 - offset_ms));
        }
    }
    None
}

/// The action letter of a UniFi rule tag `[WAN_LOCAL-D-2147483647]` (`A` accept, `D`
/// drop, `R` reject), if the prefix has one.
fn unifi_rule_action(prefix: &str) -> Option<Action> {
    memchr::memchr(b'-', prefix.as_bytes())?;
    prefix.split('[').skip(1).find_map(|part| {
        let tag = &part[..part.find(']')?];
        let mut it = tag.rsplitn(3, '-');
        let (id, letter, chain) = (it.next()?, it.next()?, it.next()?);
        if chain.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match letter {
            "A" => Some(Action::Accept),
            "D" => Some(Action::Drop),
            "R" => Some(Action::Reject),
            _ => None,
        }
    })
}

pub(crate) fn action_from_prefix(prefix: &str) -> Action {
    // Log prefixes are free text chosen by the admin; these are the common spellings
    // (`DROP`, `IPTABLES-DROP:`, `policy DROP:`, UniFi `[WAN_LOCAL-D-…]`, `REJECT`,
    // `ACCEPT`, `BLOCK`). The action is informational: it never decides counting.
    // A UniFi rule tag is authoritative: the `DESCR="…"` after it is the rule's
    // free-text name and may say anything ("Block All Traffic" on an accept rule).
    if let Some(a) = unifi_rule_action(prefix) {
        return a;
    }
    // One pass over the (short) prefix, without allocating.
    let b = prefix.as_bytes();
    let at =
        |i: usize, w: &[u8]| b.len() >= i + w.len() && b[i..i + w.len()].eq_ignore_ascii_case(w);
    for i in 0..b.len() {
        // Words start the prefix or follow a separator (`IPTABLES-DROP:`, `[DROP]`).
        if i > 0 && !matches!(b[i - 1], b' ' | b'[' | b'-' | b'_' | b':' | b'(') && b[i] != b'-' {
            continue;
        }
        match b[i] | 0x20 {
            b'd' if at(i, b"DROP") || at(i, b"DENY") => return Action::Drop,
            b'b' if at(i, b"BLOCK") => return Action::Drop,
            b'r' if at(i, b"REJECT") => return Action::Reject,
            b'a' if at(i, b"ACCEPT") || at(i, b"ALLOW") => return Action::Accept,
            b'-' if b.len() > i + 2 && b[i + 2] == b'-' => match b[i + 1] {
                b'D' => return Action::Drop,
                b'R' => return Action::Reject,
                b'A' => return Action::Accept,
                _ => {}
            },
            _ => {}
        }
    }
    Action::Unknown
}

fn parse_ip(field: &'static str, v: &str) -> Result<IpAddr, ParseError> {
    crate::ip::parse_ip(v).ok_or_else(|| ParseError::invalid(field, v))
}

fn parse_port(field: &'static str, v: &str) -> Result<u16, ParseError> {
    v.parse().map_err(|_| ParseError::invalid(field, v))
}

impl NetfilterParser {
    fn parse<'l>(
        &mut self,
        line: &'l str,
        kv_start: usize,
        fast: bool,
    ) -> Result<LineOutcome<'l>, ParseError> {
        let prefix = &line[..kv_start];
        let (time, host, tag) = match parse_header(prefix, &mut self.years)? {
            Some(h) => (h.time, h.host, h.rest),
            None => match proxmox_time(prefix) {
                Some(t) => (t, None, prefix),
                None => {
                    let shown: String = prefix.chars().take(40).collect();
                    return Err(ParseError::Timestamp(shown.trim_end().to_string()));
                }
            },
        };

        let f = match fast.then(|| fields_fast(line, kv_start)).flatten() {
            Some(f) => f,
            None => fields_general(line, kv_start)?,
        };
        let Fields {
            iface_in,
            iface_out,
            src,
            dst,
            proto,
            spt,
            dpt,
            icmp_type,
            flags,
        } = f;
        // Proxmox's pve-firewall omits OUT= on inbound lines.
        let iface_out = iface_out.unwrap_or("");
        let iface_in = iface_in.unwrap_or("");
        let src = src.ok_or(ParseError::MissingField("SRC="))?;
        let dst = dst.ok_or(ParseError::MissingField("DST="))?;
        let proto = proto.ok_or(ParseError::MissingField("PROTO="))?;
        let (src_port, dst_port) = if proto.has_ports() {
            // Fragments after the first carry no ports; they cannot be attributed.
            (
                Some(spt.ok_or(ParseError::MissingField("SPT="))?),
                Some(dpt.ok_or(ParseError::MissingField("DPT="))?),
            )
        } else {
            (None, None)
        };
        let direction = match (iface_in.is_empty(), iface_out.is_empty()) {
            (false, _) => Direction::Inbound,
            (true, false) => Direction::Outbound,
            (true, true) => Direction::Unknown,
        };
        let event = Event {
            time,
            proto,
            src,
            dst,
            src_port,
            dst_port,
            flags: if proto == Protocol::Tcp {
                flags
            } else {
                TcpFlags(0)
            },
            flags_known: proto == Protocol::Tcp,
            icmp_type: if matches!(proto, Protocol::Icmp | Protocol::Icmpv6) {
                icmp_type
            } else {
                None
            },
            direction,
            action: self.action(tag),
            count: 1,
        };
        Ok(LineOutcome::Event { event, host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The `memchr` split is `split_once("] ")`, on any text (brackets and
        /// spaces made likely).
        #[test]
        fn the_bracket_split_is_split_once(s in "[\\] a\\[é0-9]{0,24}") {
            proptest::prop_assert_eq!(split_at_bracket(&s), s.split_once("] "));
        }
    }

    /// Every line in this file's tests and in the fixtures: fast path == general path.
    #[test]
    fn fast_path_matches_general_tokenizer() {
        let src = include_str!("netfilter.rs");
        let mut lines: Vec<String> = src
            .lines()
            .filter_map(|l| l.split('"').nth(1).map(str::to_string))
            .filter(|l| l.contains("SRC="))
            .collect();
        for f in [
            "crowdsecurity-hub__iptables-logs.log",
            "crowdsecurity-hub__iptables-scan-multi-port.log",
            "crowdsecurity-hub__proxmox-iptables.log",
            "crowdsecurity-hub__unifi-logs.log",
        ] {
            let path = format!(
                "{}/../../testdata/fixtures/iptables/{f}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            lines.extend(text.lines().map(str::to_string));
        }
        for extra in [
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=56 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.1 DST=192.0.2.9 LEN=28 PROTO=UDP SPT=53 DPT=4444 LEN=8 ]",
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=56 PROTO=47",
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=SCTP SPT=1 DPT=2",
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=TCP DPT=2 SPT=1 SYN",
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT= DST=192.0.2.1 SRC=192.0.2.9 PROTO=TCP SPT=1 DPT=2 SYN",
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=TCP SPT=1 DPT=2 [SYN",
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT=eth1 SRC=192.0.2.9 DST=192.0.2.1 PROTO=UDP SPT=1 DPT=x",
        ] {
            lines.push(extra.to_string());
        }
        // Inputs the fuzzer found where an earlier fast path disagreed.
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 :::::::T= SRC=192.0.2.9 DSTEN=56 PROTO=ICMPEY T.2.1 DST=19LENPROTO=UD928 PROTO=UDPnel: DRJP1".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 PROTO=TCP DST=192.0.2.1 SPT=1 DPT=2 SYN".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=TCP SYN SPT=1 DPT=2 ACK TYPE=x".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=ICMP TYPE=8 SPT=99999".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 OUT=a OUT=b SRC=192.0.2.9 SRC=192.0.2.8 DST=192.0.2.1 PROTO=UDP SPT=1 DPT=2  SYN  FIN".to_string());
        // Where the line's first SRC= is: only in an ICMP error's quoted packet, not
        // at a token start first, last.
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= DST=192.0.2.1 PROTO=ICMP TYPE=3 [SRC=192.0.2.9 DST=192.0.2.1 PROTO=TCP SPT=1 DPT=2]".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= DST=192.0.2.1 PROTO=ICMP TYPE=3 [ SRC=192.0.2.9 ]".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 xSRC=192.0.2.7 SRC=192.0.2.9 DST=192.0.2.1 PROTO=UDP SPT=1 DPT=2".to_string());
        lines.push(
            "Nov 26 10:00:00 gw kernel: IN=eth0 OUT= DST=192.0.2.1 PROTO=UDP SPT=1 DPT=2 SRC="
                .to_string(),
        );
        lines.push("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= DST=192.0.2.1 PROTO=UDP SPT=1 DPT=2 SRC=192.0.2.9".to_string());
        // The kernel's uptime stamp before the prefix, odd ones too (the action's cache).
        lines.push("Nov 26 10:00:00 gw kernel: [12.5] DROP IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=UDP SPT=1 DPT=2".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: [12.5]] x] ACCEPT IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=UDP SPT=1 DPT=2".to_string());
        lines.push("Nov 26 10:00:00 gw kernel: [12.5]IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=UDP SPT=1 DPT=2".to_string());
        assert!(lines.len() > 60, "{}", lines.len());
        let opts = ParserOptions {
            reference_time: parse_rfc3339("2026-11-26T12:00:00Z").unwrap(),
        };
        for l in &lines {
            let fast = NetfilterParser::new(&opts).parse_line(l);
            let general = NetfilterParser::new(&opts).parse_line_general(l);
            assert_eq!(fast, general, "{l}");
        }
    }
    use scanwatch_event::parse_rfc3339;

    fn parse(line: &str) -> LineOutcome<'_> {
        let opts = ParserOptions {
            reference_time: parse_rfc3339("2026-11-26T12:00:00Z").unwrap(),
        };
        NetfilterParser::new(&opts).parse_line(line)
    }

    fn event(line: &str) -> (Event, Option<&str>) {
        match parse(line) {
            LineOutcome::Event { event, host } => (event, host),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn kernel_syslog_tcp_syn() {
        let (e, host) = event("Jun  8 14:34:33 sd-126005 kernel: [50028442.088484] IN=enp1s0 OUT= MAC=00:08:a2:0c:1f:12:00:c8:8b:e2:d6:87:08:00 SRC=195.54.160.107 DST=51.15.166.67 LEN=40 TOS=0x00 PREC=0x00 TTL=245 ID=37308 PROTO=TCP SPT=8080 DPT=8123 WINDOW=1024 RES=0x00 SYN URGP=0");
        assert_eq!(host, Some("sd-126005"));
        assert_eq!(e.time, parse_rfc3339("2026-06-08T14:34:33Z").unwrap());
        assert_eq!(e.scanned_port(), Some((Protocol::Tcp, 8123)));
        assert_eq!(e.src_port, Some(8080));
        assert_eq!(e.direction, Direction::Inbound);
    }

    #[test]
    fn ipv6_icmp_and_ack_number_field() {
        let (e, _) = event("Nov 26 10:00:00 gw kernel: DROP IN=eth0 OUT= MAC=aa SRC=2001:db8::1 DST=2001:db8::2 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP SPT=40000 DPT=445 SEQ=1 ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0");
        assert!(e.src.is_ipv6());
        assert_eq!(
            e.flags.0,
            TcpFlags::SYN,
            "ACK=0 is the ack number, not the flag"
        );
        assert_eq!(e.action, Action::Drop);
        let (e, _) = event("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=56 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.1 DST=192.0.2.9 LEN=28 PROTO=UDP SPT=53 DPT=4444 LEN=8 ]");
        assert_eq!(e.proto, Protocol::Icmp);
        assert_eq!(e.icmp_type, Some(3));
        assert_eq!(e.dst_port, None);
        assert_eq!(e.scanned_port(), None);
    }

    #[test]
    fn replies_and_outbound_are_parsed_but_not_counted() {
        let (e, _) = event("Nov 26 10:00:00 gw kernel: IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=TCP SPT=80 DPT=5555 ACK SYN URGP=0");
        assert_eq!(e.scanned_port(), None);
        let (e, _) = event("Nov 26 10:00:00 gw kernel: IN= OUT=eth0 SRC=192.0.2.1 DST=192.0.2.9 PROTO=UDP SPT=5 DPT=53");
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(e.scanned_port(), None);
    }

    #[test]
    fn proxmox_and_ulogd_and_journal() {
        let (e, host) = event("0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP: IN=vmbr0.94 MAC=24:8a SRC=10.3.94.11 DST=10.3.94.12 LEN=52 PROTO=UDP SPT=49152 DPT=3784 LEN=32");
        assert_eq!(host, None);
        assert_eq!(e.time, parse_rfc3339("2022-06-20T11:09:14Z").unwrap());
        assert_eq!(e.direction, Direction::Inbound);
        assert_eq!(e.action, Action::Drop);
        let (_, host) = event("Nov 26 10:11:12 darknet1 DROP-IN IN=eth0 OUT= MAC= SRC=192.0.2.1 DST=192.0.2.2 LEN=40 PROTO=TCP SPT=1 DPT=23 SYN");
        assert_eq!(host, Some("darknet1"));
        let (e, _) = event("2026-11-26T10:11:12+0000 darknet1 kernel: IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=UDP SPT=1 DPT=161");
        assert_eq!(e.time, parse_rfc3339("2026-11-26T10:11:12Z").unwrap());
    }

    #[test]
    fn proxmox_host_out_without_in() {
        // pve-firewall omits IN= when there is no input device (PVEFW-HOST-OUT).
        let (e, host) = event("0 1 PVEFW-HOST-OUT 20/Jun/2022:13:16:23 +0200 REJECT: OUT=vmbr0.94 SRC=10.3.94.12 DST=10.3.94.10 LEN=60 TOS=0x10 PREC=0x00 TTL=64 ID=59156 DF PROTO=TCP SPT=49566 DPT=22 SEQ=708451139 ACK=0 WINDOW=64240 SYN ");
        assert_eq!(host, None);
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(e.action, Action::Reject);
        assert_eq!(e.dst_port, Some(22));
        assert_eq!(e.scanned_port(), None);
        // Kernel LOG/nftables lines always print IN=: without it they stay errors.
        assert_eq!(
            parse(
                "Jun  8 14:34:33 h kernel: OUT=eth0 SRC=1.2.3.4 DST=1.2.3.5 PROTO=UDP SPT=1 DPT=2"
            ),
            LineOutcome::Error(ParseError::MissingField("IN="))
        );
    }

    #[test]
    fn proxmox_bad_offset_is_an_error_not_a_panic() {
        // A 5-byte offset with a multibyte character (`+0é0`) was sliced at byte 3 and
        // panicked (seen while fuzzing; the netfilter fuzz target reproduces it).
        for off in ["+0\u{e9}0", "+-100", "+01x0"] {
            let line = format!("0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 {off} policy DROP: IN=vmbr0 SRC=10.3.94.11 DST=10.3.94.12 PROTO=UDP SPT=1 DPT=2");
            assert!(
                matches!(parse(&line), LineOutcome::Error(ParseError::Timestamp(_))),
                "{off}"
            );
        }
    }

    #[test]
    fn unifi_rule_tag_decides_action() {
        let line = |tag: &str| {
            format!("Jun 13 23:29:15 UDMP {tag} DESCR=\"[WAN_LOCAL]Block All Traffic\" IN=eth8 OUT= SRC=192.168.1.2 DST=192.168.1.25 PROTO=UDP SPT=1 DPT=2")
        };
        for (tag, want) in [
            ("[WAN_LOCAL-A-2147483647]", Action::Accept),
            ("[WAN_LOCAL-D-2147483647]", Action::Drop),
            ("[LAN_IN-R-3001]", Action::Reject),
            ("[UFW BLOCK]", Action::Drop),
        ] {
            let l = line(tag);
            assert_eq!(event(&l).0.action, want, "{tag}");
        }
        assert_eq!(unifi_rule_action("kernel: [50028442.088484] "), None);
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("Jun  8 14:34:33 h kernel: XX=e OUT= SRC=1.2.3.4 DST=1.2.3.5 PROTO=TCP SPT=1 DPT=2 SYN", "missing field IN="),
            ("Jun  8 14:34:33 h kernel: IN=e OUT= SRC=1.2.3 DST=1.2.3.5 PROTO=TCP SPT=1 DPT=2 SYN", "invalid SRC"),
            ("Jun  8 14:34:33 h kernel: IN=e OUT= SRC=1.2.3.4 DST=1.2.3.5 PROTO=TCP SPT=1 DPT=70000 SYN", "invalid DPT"),
            ("Jun  8 14:34:33 h kernel: IN=e OUT= SRC=1.2.3.4 DST=1.2.3.5 PROTO=TCP SPT=1 SYN", "missing field DPT="),
            ("Jun  8 14:34:33 h kernel: IN=e OUT= SRC=1.2.3.4 DST=1.2.3.5 SPT=1 DPT=2", "missing field PROTO="),
            ("[  203.842973] IN=lo OUT= SRC=1.2.3.4 DST=1.2.3.5 PROTO=UDP SPT=1 DPT=2", "unreadable timestamp"),
            ("Feb 30 14:34:33 h kernel: IN=e OUT= SRC=1.2.3.4 DST=1.2.3.5 PROTO=UDP SPT=1 DPT=2", "unreadable timestamp"),
        ];
        for (line, want) in cases {
            match parse(line) {
                LineOutcome::Error(e) => assert!(e.to_string().starts_with(want), "{line}: {e}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        assert_eq!(
            parse("Jun  8 14:34:33 h sshd[1]: Failed password"),
            LineOutcome::Skip
        );
        assert_eq!(parse(""), LineOutcome::Skip);
    }
}
