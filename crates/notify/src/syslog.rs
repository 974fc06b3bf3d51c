//! `kind = "syslog"`: RFC 5424 messages over UDP (RFC 5426) or TCP with RFC 6587
//! octet-counting framing, the warning's numbers as structured data, and the MSG as
//! text (the headline) or as an ArcSight CEF:0 record.
//!
//! The formatting is written here by hand: about a hundred lines whose every byte
//! matters (the PRI, the escaping of SD-PARAM values, of CEF header fields and of
//! CEF extension values), and we know of no well-kept crate that writes RFC 5424
//! structured data together with CEF. Each rule has a unit test, and the
//! integration test has rsyslog parse the result.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use scanwatch_event::Timestamp;

use crate::config::{printusascii, SyslogConfig, SyslogFormat, SyslogTransport};
use crate::sink::{Sink, SinkError};
use crate::warning::{Notification, Severity};

/// Facility code of a name (RFC 5424 table 1, with the usual names).
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "ntp" => 12,
        "security" => 13,
        "console" => 14,
        "solaris-cron" => 15,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// Syslog severity of a warning's severity: critical → 2 (crit), high → 3 (err),
/// medium → 4 (warning), low → 5 (notice), info → 6 (informational).
pub fn severity_code(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// CEF severity (0-10) of a warning's severity.
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 10,
        Severity::High => 8,
        Severity::Medium => 5,
        Severity::Low => 3,
        Severity::Info => 1,
    }
}

/// An SD-PARAM value: `"`, `\` and `]` must be escaped with a backslash
/// (RFC 5424 section 6.3.3).
pub fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A CEF header field: `\` and `|` escaped with a backslash; header fields cannot
/// hold line breaks, so those become spaces.
pub fn cef_header_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A CEF extension value: `\` and `=` escaped with a backslash, line breaks written
/// as `\n` and `\r` (a `|` needs no escape there).
pub fn cef_ext_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Control characters (line breaks above all) would split a line in the
/// receiver's files: a text MSG gets spaces instead.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn millis(rfc3339: &str) -> Option<i64> {
    scanwatch_event::parse_rfc3339(rfc3339).map(|t| t.0)
}

/// The CEF:0 record of a notification.
pub fn cef(n: &Notification) -> String {
    let w = &n.warning;
    let mut ext: Vec<(String, String)> = vec![
        ("rt".into(), n.now_ms.to_string()),
        ("proto".into(), w.protocol.to_uppercase()),
        ("dpt".into(), w.port.to_string()),
        ("cnt".into(), w.events.to_string()),
    ];
    if let Some(s) = millis(&w.window_start) {
        ext.push(("start".into(), s.to_string()));
    }
    if let Some(e) = millis(&w.window_end) {
        ext.push(("end".into(), e.to_string()));
    }
    let labelled = [
        ("cs1", "confidence", w.confidence.name().to_string()),
        ("cs2", "event", n.event.name().to_string()),
        (
            "cs3",
            "advisories",
            w.advisories
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("cs4", "episodeStart", w.episode_start.clone()),
        ("cn1", "sources", w.sources.to_string()),
        ("cn2", "sensors", w.sensors.to_string()),
        ("cfp1", "timesNormal", format!("{:.3}", w.times_normal)),
    ];
    for (k, label, v) in labelled {
        ext.push((format!("{k}Label"), label.to_string()));
        ext.push((k.to_string(), v));
    }
    ext.push(("externalId".into(), w.id.to_string()));
    // CEF caps msg at 1023 characters.
    ext.push(("msg".into(), first_chars(&w.summary, 1023).to_string()));
    let ext: Vec<String> = ext
        .iter()
        .map(|(k, v)| format!("{k}={}", cef_ext_escape(v)))
        .collect();
    format!(
        "CEF:0|scanwatch|scanwatch|{}|surge-{}|{}|{}|{}",
        cef_header_escape(env!("CARGO_PKG_VERSION")),
        n.event.name(),
        cef_header_escape(&w.headline),
        cef_severity(w.severity),
        ext.join(" ")
    )
}

/// The parts of an RFC 5424 header that come from the config.
#[derive(Clone, Debug)]
pub struct Header {
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub enterprise_id: u32,
}

/// The whole RFC 5424 message (without transport framing):
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`.
pub fn format_5424(h: &Header, n: &Notification, format: SyslogFormat) -> String {
    let w = &n.warning;
    let pri = u16::from(h.facility) * 8 + u16::from(severity_code(w.severity));
    let params: [(&str, String); 14] = [
        ("id", w.id.to_string()),
        ("event", n.event.name().into()),
        ("protocol", w.protocol.clone()),
        ("port", w.port.to_string()),
        ("severity", w.severity.name().into()),
        ("confidence", w.confidence.name().into()),
        ("events", w.events.to_string()),
        ("sources", w.sources.to_string()),
        ("sensors", w.sensors.to_string()),
        ("timesNormal", format!("{:.3}", w.times_normal)),
        ("windowStart", w.window_start.clone()),
        ("windowEnd", w.window_end.clone()),
        ("episodeStart", w.episode_start.clone()),
        (
            "advisories",
            w.advisories
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    let mut sd = format!("[scanwatch@{}", h.enterprise_id);
    for (k, v) in params {
        sd.push_str(&format!(" {k}=\"{}\"", sd_escape(&v)));
    }
    sd.push(']');
    let msg = match format {
        SyslogFormat::Text => one_line(&w.headline),
        SyslogFormat::Cef => cef(n),
    };
    format!(
        "<{pri}>1 {} {} {} {} {} {sd} {msg}",
        Timestamp(n.now_ms).to_rfc3339(),
        h.hostname,
        h.app_name,
        h.procid,
        n.event.name(),
    )
}

/// RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`, the length in bytes.
pub fn octet_counted(msg: &str) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

pub struct Syslog {
    cfg: SyslogConfig,
    header: Header,
    timeout: Duration,
}

impl Syslog {
    /// Reads this machine's name when no `hostname` is configured.
    pub fn new(cfg: SyslogConfig) -> Result<Syslog, String> {
        let timeout = cfg.timeout.span();
        let facility = facility_code(&cfg.facility)
            .ok_or_else(|| format!("unknown facility {:?}", cfg.facility))?;
        let hostname = match &cfg.hostname {
            Some(h) => h.clone(),
            None => hostname::get()
                .ok()
                .map(|h| h.to_string_lossy().into_owned())
                .filter(|h| !h.is_empty() && h.len() <= 255 && printusascii(h))
                // The NILVALUE: the receiver may fill in the sender's address.
                .unwrap_or_else(|| "-".into()),
        };
        let header = Header {
            facility,
            hostname,
            app_name: cfg.app_name.clone(),
            procid: std::process::id().to_string(),
            enterprise_id: cfg.enterprise_id,
        };
        Ok(Syslog {
            cfg,
            header,
            timeout,
        })
    }

    fn addr(&self) -> Result<SocketAddr, SinkError> {
        (self.cfg.host.as_str(), self.cfg.port)
            .to_socket_addrs()
            .map_err(|e| SinkError::Retry(format!("cannot resolve {}: {e}", self.cfg.host)))?
            .next()
            .ok_or_else(|| SinkError::Retry(format!("{} has no address", self.cfg.host)))
    }
}

impl Sink for Syslog {
    fn kind(&self) -> &'static str {
        "syslog"
    }

    fn render(&self, n: &Notification) -> Result<String, SinkError> {
        Ok(format_5424(&self.header, n, self.cfg.format))
    }

    fn deliver(&self, _n: &Notification, payload: &str) -> Result<(), SinkError> {
        let addr = self.addr()?;
        let io = |what: &str, e: std::io::Error| SinkError::Retry(format!("{what} {addr}: {e}"));
        match self.cfg.transport {
            SyslogTransport::Udp => {
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock = UdpSocket::bind(local).map_err(|e| io("cannot send to", e))?;
                sock.send_to(payload.as_bytes(), addr)
                    .map_err(|e| io("cannot send to", e))?;
            }
            SyslogTransport::Tcp => {
                let mut s = TcpStream::connect_timeout(&addr, self.timeout)
                    .map_err(|e| io("cannot connect to", e))?;
                s.set_write_timeout(Some(self.timeout))
                    .map_err(|e| io("cannot write to", e))?;
                s.write_all(&octet_counted(payload))
                    .and_then(|()| s.flush())
                    .map_err(|e| io("cannot write to", e))?;
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warning::{Event, Warning};

    fn note() -> Notification {
        let mut v = crate::warning::tests::sample(9);
        v["headline"] = "a|b\\c=d\ne".into();
        v["summary"] = "line one\nx=y | z\\".into();
        v["advisories"] = serde_json::json!([{"id": "CVE-1\"]"}]);
        Notification {
            warning: Warning::from_stored(9, &v.to_string()).expect("valid"),
            event: Event::New,
            now_ms: 1_795_000_000_123,
        }
    }

    fn header() -> Header {
        Header {
            facility: 16,
            hostname: "centre".into(),
            app_name: "scanwatch".into(),
            procid: "42".into(),
            enterprise_id: 32473,
        }
    }

    #[test]
    fn cef_escaping() {
        assert_eq!(cef_header_escape("a|b\\c=d\ne"), "a\\|b\\\\c=d e");
        assert_eq!(cef_ext_escape("a|b\\c=d\ne\rf"), "a|b\\\\c\\=d\\ne\\rf");
    }

    #[test]
    fn sd_escaping() {
        assert_eq!(sd_escape(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
    }

    #[test]
    fn rfc_5424_text_message_is_exact() {
        let m = format_5424(&header(), &note(), SyslogFormat::Text);
        // local0 (16) * 8 + err (3) = 131.
        assert_eq!(
            m,
            "<131>1 2026-11-18T11:06:40.123Z centre scanwatch 42 new [scanwatch@32473 id=\"9\" \
             event=\"new\" protocol=\"tcp\" port=\"445\" severity=\"high\" confidence=\"likely\" \
             events=\"5000\" sources=\"120\" sensors=\"7\" timesNormal=\"9.500\" \
             windowStart=\"2026-11-26T10:00:00Z\" windowEnd=\"2026-11-26T11:00:00Z\" \
             episodeStart=\"2026-11-26T10:00:00Z\" advisories=\"CVE-1\\\"\\]\"] a|b\\c=d e"
        );
    }

    #[test]
    fn cef_message_has_escaped_header_and_extension() {
        let c = cef(&note());
        assert!(
            c.starts_with(concat!(
                "CEF:0|scanwatch|scanwatch|",
                env!("CARGO_PKG_VERSION"),
                "|surge-new|a\\|b\\\\c=d e|8|rt=1795000000123 proto=TCP dpt=445 cnt=5000 "
            )),
            "{c}"
        );
        assert!(c.contains(" cs1Label=confidence cs1=likely "), "{c}");
        assert!(c.contains(" cn1Label=sources cn1=120 "), "{c}");
        assert!(
            c.ends_with(" externalId=9 msg=line one\\nx\\=y | z\\\\"),
            "{c}"
        );
        assert!(!c.contains('\n'));
    }

    #[test]
    fn severities_and_facilities_map() {
        assert_eq!(severity_code(Severity::Critical), 2);
        assert_eq!(severity_code(Severity::Info), 6);
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("kern"), Some(0));
        assert_eq!(facility_code("nope"), None);
        assert_eq!(octet_counted("<1>1 é"), b"7 <1>1 \xc3\xa9".to_vec());
    }
}
