//! Sink configuration: a TOML `[[sinks]]` array of tables, one per sink, with
//! `kind`, `name`, the keys of that kind, the common filter keys and the common retry
//! keys side by side. Unknown keys are refused; defaults are documented on each
//! field; [`NotifyConfig::validate`] checks everything without I/O.
//!
//! ```toml
//! [[sinks]]
//! kind = "webhook"
//! name = "soc"
//! url = "https://hooks.example.net/scanwatch"
//! secret = "a long random string"
//! format = "json"              # or "slack" (Slack and Mattermost incoming webhooks)
//! min_severity = "high"        # filters, common to every kind
//! ports = ["tcp/445", 3389]
//! updates = false
//! attempts = 5                 # retries, common to every kind
//!
//! [[sinks]]
//! kind = "syslog"
//! name = "siem"
//! host = "10.0.0.5"
//! transport = "tcp"
//! format = "cef"
//!
//! [[sinks]]
//! kind = "email"
//! name = "oncall"
//! host = "smtp.example.net"
//! from = "scanwatch <scanwatch@example.net>"
//! to = ["oncall@example.net"]
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use scanwatch_event::HumanDuration;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::warning::{Confidence, Severity};
use crate::NotifyError;

/// All sinks.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
}

impl NotifyConfig {
    /// Checks every sink and that names are unique, without I/O.
    pub fn validate(&self) -> Result<(), NotifyError> {
        validate_sinks(&self.sinks)
    }
}

/// Checks a list of sinks (as the server's config holds it), without I/O.
pub fn validate_sinks(sinks: &[SinkConfig]) -> Result<(), NotifyError> {
    let mut names = BTreeSet::new();
    for s in sinks {
        s.validate()?;
        if !names.insert(s.name.as_str()) {
            return Err(NotifyError::Invalid(format!(
                "two sinks are named {:?}",
                s.name
            )));
        }
    }
    Ok(())
}

/// A secret (webhook key, SMTP password): never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One sink: its name, its filters, its retries and its kind with the kind's keys.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkConfig {
    /// Unique; 1-64 letters, digits, `.`, `_` or `-`. Keys the sink's state and dead
    /// letters in the store, so renaming a sink starts it afresh.
    pub name: String,
    pub filter: Filters,
    pub retry: RetryConfig,
    pub kind: SinkKind,
}

/// The kinds of sink and their own keys.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkKind {
    Webhook(WebhookConfig),
    Syslog(SyslogConfig),
    Email(EmailConfig),
}

impl SinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Syslog(_) => "syslog",
            SinkKind::Email(_) => "email",
        }
    }
}

/// The keys every kind shares, split off before the kind's own struct (which
/// refuses unknown keys) reads the rest. Serde's `flatten` would lose
/// `deny_unknown_fields`, hence this.
const FILTER_KEYS: &[&str] = &[
    "min_severity",
    "min_confidence",
    "ports",
    "updates",
    "max_age",
];
const RETRY_KEYS: &[&str] = &["attempts", "initial_delay", "max_delay"];

fn take(m: &mut Map<String, Value>, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = m.remove(*k) {
            out.insert((*k).to_string(), v);
        }
    }
    Value::Object(out)
}

impl<'de> Deserialize<'de> for SinkConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut m = Map::<String, Value>::deserialize(d)?;
        let name = match m.remove("name") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(D::Error::custom("sink name must be a string")),
            None => return Err(D::Error::custom("every sink needs a name")),
        };
        let kind = match m.remove("kind") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(D::Error::custom(format!(
                    "sink {name:?}: kind must be \"webhook\", \"syslog\" or \"email\""
                )))
            }
        };
        let ctx = |e: serde_json::Error| D::Error::custom(format!("sink {name:?}: {e}"));
        let filter: Filters = serde_json::from_value(take(&mut m, FILTER_KEYS)).map_err(ctx)?;
        let retry: RetryConfig = serde_json::from_value(take(&mut m, RETRY_KEYS)).map_err(ctx)?;
        let rest = Value::Object(m);
        let kind = match kind.as_str() {
            "webhook" => SinkKind::Webhook(serde_json::from_value(rest).map_err(ctx)?),
            "syslog" => SinkKind::Syslog(serde_json::from_value(rest).map_err(ctx)?),
            "email" => SinkKind::Email(serde_json::from_value(rest).map_err(ctx)?),
            other => {
                return Err(D::Error::custom(format!(
                "sink {name:?}: unknown kind {other:?}: use \"webhook\", \"syslog\" or \"email\""
            )))
            }
        };
        Ok(SinkConfig {
            name,
            filter,
            retry,
            kind,
        })
    }
}

/// A default duration (a literal that parses).
fn dur(text: &str) -> HumanDuration {
    text.parse()
        .unwrap_or_else(|_| unreachable!("default duration {text:?}"))
}

/// `max_age` of a sink: a duration (`1d`), or `none` for any age.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MaxAge(Option<HumanDuration>);

impl std::str::FromStr for MaxAge {
    type Err = scanwatch_event::DurationError;

    fn from_str(s: &str) -> Result<MaxAge, Self::Err> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(MaxAge(None));
        }
        s.parse().map(|d| MaxAge(Some(d)))
    }
}

impl TryFrom<String> for MaxAge {
    type Error = scanwatch_event::DurationError;

    fn try_from(s: String) -> Result<MaxAge, Self::Error> {
        s.parse()
    }
}

impl SinkConfig {
    /// Checks this sink without I/O.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let err = |reason: String| NotifyError::Config {
            sink: self.name.clone(),
            reason,
        };
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(err(
                "invalid name: use 1-64 letters, digits, '.', '_' or '-'".into(),
            ));
        }
        self.retry.validate().map_err(err)?;
        match &self.kind {
            SinkKind::Webhook(c) => c.validate(),
            SinkKind::Syslog(c) => c.validate(),
            SinkKind::Email(c) => c.validate(),
        }
        .map_err(err)
    }
}

/// A port a filter lets through: `445` (any protocol) or `tcp/445`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PortIn")]
pub struct PortSpec {
    /// `None`: any protocol.
    pub protocol: Option<String>,
    pub port: u16,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortIn {
    Number(i64),
    Text(String),
}

impl TryFrom<PortIn> for PortSpec {
    type Error = String;
    fn try_from(p: PortIn) -> Result<Self, String> {
        match p {
            PortIn::Number(n) => u16::try_from(n)
                .map(|port| PortSpec {
                    protocol: None,
                    port,
                })
                .map_err(|_| format!("invalid port {n}")),
            PortIn::Text(s) => PortSpec::parse(&s),
        }
    }
}

impl PortSpec {
    pub fn parse(s: &str) -> Result<PortSpec, String> {
        let bad = || format!("invalid port {s:?}: use a number or \"tcp/445\"");
        let (protocol, port) = match s.split_once('/') {
            Some((p, n)) => {
                let p = p.trim().to_ascii_lowercase();
                if !matches!(p.as_str(), "tcp" | "udp" | "icmp" | "icmpv6" | "sctp") {
                    return Err(bad());
                }
                (Some(p), n)
            }
            None => (None, s),
        };
        let port = port.trim().parse::<u16>().map_err(|_| bad())?;
        Ok(PortSpec { protocol, port })
    }

    pub fn matches(&self, protocol: &str, port: u16) -> bool {
        self.port == port
            && self
                .protocol
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case(protocol))
    }
}

/// Which warnings a sink gets.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filters {
    /// Least severity sent (default `info`: all).
    pub min_severity: Severity,
    /// Least confidence sent (default `suspected`: all).
    pub min_confidence: Confidence,
    /// Only these ports (default empty: all ports).
    pub ports: Vec<PortSpec>,
    /// Whether later windows of a surge are sent as updates (default true). With
    /// false, a sink gets at most one notification per surge.
    pub updates: bool,
    /// Warnings whose window ended longer ago than this (by the notifier's clock)
    /// are not sent (default `1d`; `none` sends any age). The server re-raises
    /// every stored warning when it replays at start: this keeps a newly added
    /// sink from receiving the whole history.
    pub max_age: MaxAge,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            min_severity: Severity::Info,
            min_confidence: Confidence::Suspected,
            ports: Vec::new(),
            updates: true,
            max_age: MaxAge(Some(dur("1d"))),
        }
    }
}

impl Filters {
    /// The age limit, `None` for `none`.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age.0.as_ref().map(HumanDuration::span)
    }
}

/// How often and how patiently a sink retries.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts before a notification becomes a dead letter (default 5, at most 100).
    pub attempts: u32,
    /// Wait after the first failure (default `1s`); doubled after each further one.
    pub initial_delay: HumanDuration,
    /// The longest wait between two attempts (default `5m`).
    pub max_delay: HumanDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 5,
            initial_delay: dur("1s"),
            max_delay: dur("5m"),
        }
    }
}

impl RetryConfig {
    /// (initial, max) delays.
    pub fn delays(&self) -> (Duration, Duration) {
        (self.initial_delay.span(), self.max_delay.span())
    }

    /// The wait after failed attempt number `n` (1-based): `initial * 2^(n-1)`,
    /// capped at `max`. No jitter: one centre, a handful of sinks, no herd to spread.
    pub fn delay_after(initial: Duration, max: Duration, n: u32) -> Duration {
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        initial.saturating_mul(factor).min(max)
    }

    fn validate(&self) -> Result<(), String> {
        if self.attempts == 0 || self.attempts > 100 {
            return Err("attempts must be 1 to 100".into());
        }
        let (i, m) = self.delays();
        if i > m {
            return Err("initial_delay must not exceed max_delay".into());
        }
        Ok(())
    }
}

/// The body a webhook posts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The warning's JSON plus `"event": "new" | "update"` (default).
    #[default]
    Json,
    /// A Slack/Mattermost incoming-webhook message (`text` and `attachments`).
    Slack,
}

/// `kind = "webhook"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL (required).
    pub url: String,
    /// Key of the `X-Scanwatch-Signature` HMAC-SHA256 header (default: none, no
    /// signature header).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// `json` (default) or `slack`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Timeout of one request (default `10s`).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Base URL of the dashboard; adds a link to the warning (default: none).
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

fn default_timeout() -> HumanDuration {
    dur("10s")
}

fn check_url(what: &str, u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("{what} must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') || u.chars().any(char::is_whitespace) {
        return Err(format!("{what} {u:?} is not a valid URL"));
    }
    Ok(())
}

impl WebhookConfig {
    fn validate(&self) -> Result<(), String> {
        check_url("url", &self.url)?;
        if let Some(d) = &self.dashboard_url {
            check_url("dashboard_url", d)?;
        }
        if self.secret.as_ref().is_some_and(|s| s.0.is_empty()) {
            return Err("secret must not be empty (leave it out for no signature)".into());
        }
        Ok(())
    }
}

/// How syslog messages travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// RFC 5426, one message per datagram (default).
    #[default]
    Udp,
    /// RFC 6587 octet-counting framing, one connection per notification.
    Tcp,
}

/// What the MSG part of a syslog message is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// The headline (default); the numbers are in the structured data.
    #[default]
    Text,
    /// An ArcSight CEF:0 record.
    Cef,
}

/// `kind = "syslog"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Receiver (default `127.0.0.1`).
    #[serde(default = "default_syslog_host")]
    pub host: String,
    /// Receiver port (default 514).
    #[serde(default = "default_syslog_port")]
    pub port: u16,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport: SyslogTransport,
    /// Facility name: `kern`, `user`, ..., `local0` to `local7` (default `local0`).
    #[serde(default = "default_facility")]
    pub facility: String,
    /// APP-NAME (default `scanwatch`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME (default: this machine's name, read once at start).
    #[serde(default)]
    pub hostname: Option<String>,
    /// `text` (default) or `cef`.
    #[serde(default)]
    pub format: SyslogFormat,
    /// Private enterprise number of the structured-data id `scanwatch@N` (default
    /// 32473, the number RFC 5612 reserves for documentation: set your own).
    #[serde(default = "default_enterprise")]
    pub enterprise_id: u32,
    /// Connect and write timeout for TCP (default `10s`).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_syslog_host() -> String {
    "127.0.0.1".into()
}
fn default_syslog_port() -> u16 {
    514
}
fn default_facility() -> String {
    "local0".into()
}
fn default_app_name() -> String {
    "scanwatch".into()
}
fn default_enterprise() -> u32 {
    32473
}

/// RFC 5424 PRINTUSASCII (33-126): what HOSTNAME and APP-NAME may contain.
pub(crate) fn printusascii(s: &str) -> bool {
    s.bytes().all(|b| (33..=126).contains(&b))
}

impl SyslogConfig {
    fn validate(&self) -> Result<(), String> {
        if self.host.trim().is_empty() {
            return Err("host must not be empty".into());
        }
        if self.port == 0 {
            return Err("port must not be 0".into());
        }
        crate::syslog::facility_code(&self.facility)
            .ok_or_else(|| format!("unknown facility {:?}", self.facility))?;
        if self.app_name.is_empty() || self.app_name.len() > 48 || !printusascii(&self.app_name) {
            return Err("app_name must be 1-48 printable ASCII characters without spaces".into());
        }
        if let Some(h) = &self.hostname {
            if h.is_empty() || h.len() > 255 || !printusascii(h) {
                return Err(
                    "hostname must be 1-255 printable ASCII characters without spaces".into(),
                );
            }
        }
        if self.enterprise_id == 0 {
            return Err("enterprise_id must be a private enterprise number".into());
        }
        Ok(())
    }
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (only for a relay on the same host or a test).
    None,
    /// STARTTLS, required: nothing is sent if the server does not offer it
    /// (default; port 587).
    #[default]
    Starttls,
    /// STARTTLS when the server offers it, plain otherwise (not recommended).
    Opportunistic,
    /// TLS from the first byte (SMTPS; port 465).
    Tls,
}

/// `kind = "email"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server (required).
    pub host: String,
    /// Default: 465 with `tls = "tls"`, 25 with `none`, 587 otherwise.
    #[serde(default)]
    pub port: Option<u16>,
    /// `none`, `starttls` (default, required), `opportunistic` or `tls`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of an extra trusted CA (e.g. a private one); read at start.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// SMTP login (default none); give `password` too.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender, `name <addr>` or `addr` (required).
    pub from: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    /// Put before every subject (default `[scanwatch]`).
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// Base URL of the dashboard; adds a link to the warning (default: none).
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// Timeout of the SMTP conversation steps (default `30s`).
    #[serde(default = "default_smtp_timeout")]
    pub timeout: HumanDuration,
}

fn default_subject_prefix() -> String {
    "[scanwatch]".into()
}
fn default_smtp_timeout() -> HumanDuration {
    dur("30s")
}

impl EmailConfig {
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
            SmtpTls::Starttls | SmtpTls::Opportunistic => 587,
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.host.trim().is_empty() {
            return Err("host must not be empty".into());
        }
        if self.port == Some(0) {
            return Err("port must not be 0".into());
        }
        self.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("invalid from address {:?}: {e}", self.from))?;
        if self.to.is_empty() {
            return Err("to needs at least one address".into());
        }
        for t in &self.to {
            t.parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("invalid to address {t:?}: {e}"))?;
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("username and password go together".into());
        }
        if self.subject_prefix.contains(['\r', '\n']) {
            return Err("subject_prefix must be one line".into());
        }
        if let Some(d) = &self.dashboard_url {
            check_url("dashboard_url", d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NotifyConfig, String> {
        let c: NotifyConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn parses_every_kind_with_defaults() {
        let c = parse(
            r#"
            [[sinks]]
            kind = "webhook"
            name = "soc"
            url = "https://hooks.example.net/x"
            secret = "k"
            format = "slack"
            min_severity = "high"
            ports = ["tcp/445", 3389]
            updates = false
            attempts = 3
            initial_delay = "10ms"

            [[sinks]]
            kind = "syslog"
            name = "siem"
            transport = "tcp"
            format = "cef"

            [[sinks]]
            kind = "email"
            name = "oncall"
            host = "smtp.example.net"
            from = "scanwatch <sw@example.net>"
            to = ["a@example.net"]
            "#,
        )
        .expect("valid");
        assert_eq!(c.sinks.len(), 3);
        let w = &c.sinks[0];
        assert_eq!(w.filter.min_severity, Severity::High);
        assert!(!w.filter.updates);
        assert_eq!(w.filter.ports.len(), 2);
        assert!(w.filter.ports[0].matches("tcp", 445));
        assert!(!w.filter.ports[0].matches("udp", 445));
        assert!(w.filter.ports[1].matches("udp", 3389));
        assert_eq!(w.retry.attempts, 3);
        assert!(format!("{w:?}").contains("Secret(***)"));
        let SinkKind::Syslog(s) = &c.sinks[1].kind else {
            panic!("syslog expected")
        };
        assert_eq!((s.port, s.facility.as_str()), (514, "local0"));
        assert_eq!(c.sinks[1].filter, Filters::default());
        let SinkKind::Email(e) = &c.sinks[2].kind else {
            panic!("email expected")
        };
        assert_eq!((e.tls, e.effective_port()), (SmtpTls::Starttls, 587));
    }

    #[test]
    fn refuses_mistakes_with_a_reason() {
        let cases = [
            (
                "[[sinks]]\nkind='webhook'\nname='a'\nurl='https://x'\nbogus=1",
                "unknown field `bogus`",
            ),
            ("[[sinks]]\nkind='pager'\nname='a'", "unknown kind"),
            ("[[sinks]]\nkind='webhook'\nurl='https://x'", "needs a name"),
            ("[[sinks]]\nkind='webhook'\nname='a'\nurl='ftp://x'", "http://"),
            (
                "[[sinks]]\nkind='webhook'\nname='a'\nurl='https://x'\nmin_severity='huge'",
                "unknown variant",
            ),
            (
                "[[sinks]]\nkind='webhook'\nname='a'\nurl='https://x'\nports=['tcp/99999']",
                "invalid port",
            ),
            (
                "[[sinks]]\nkind='webhook'\nname='a'\nurl='https://x'\nattempts=0",
                "attempts",
            ),
            (
                "[[sinks]]\nkind='webhook'\nname='a'\nurl='https://x'\ninitial_delay='1m'\nmax_delay='1s'",
                "initial_delay",
            ),
            (
                "[[sinks]]\nkind='webhook'\nname='a'\nurl='https://x'\nmax_age='a week'",
                "invalid duration \"a week\"",
            ),
            (
                "[[sinks]]\nkind='syslog'\nname='a'\ntimeout='soon'",
                "invalid duration \"soon\"",
            ),
            (
                "[[sinks]]\nkind='webhook'\nname='a'\nurl='https://x'\n[[sinks]]\nkind='webhook'\nname='a'\nurl='https://y'",
                "two sinks",
            ),
            ("[[sinks]]\nkind='syslog'\nname='a'\nfacility='lokal0'", "facility"),
            ("[[sinks]]\nkind='syslog'\nname='a'\napp_name='a b'", "app_name"),
            (
                "[[sinks]]\nkind='email'\nname='a'\nhost='h'\nfrom='nope'\nto=['a@b.c']",
                "from address",
            ),
            (
                "[[sinks]]\nkind='email'\nname='a'\nhost='h'\nfrom='a@b.c'\nto=[]",
                "at least one",
            ),
            (
                "[[sinks]]\nkind='email'\nname='a'\nhost='h'\nfrom='a@b.c'\nto=['a@b.c']\nusername='u'",
                "go together",
            ),
            ("[[sinks]]\nkind='webhook'\nname='a b'\nurl='https://x'", "invalid name"),
        ];
        for (text, want) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let ms = Duration::from_millis;
        let d: Vec<_> = (1..=6)
            .map(|n| RetryConfig::delay_after(ms(10), ms(100), n))
            .collect();
        assert_eq!(d, vec![ms(10), ms(20), ms(40), ms(80), ms(100), ms(100)]);
        assert_eq!(RetryConfig::delay_after(ms(10), ms(100), u32::MAX), ms(100));
    }
}
