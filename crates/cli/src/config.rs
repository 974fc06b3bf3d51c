//! The server's TOML configuration: every key documented in `docs/server.md`, unknown
//! keys refused, a `version` tag, defaults in one place, and validation without I/O.
//! Command-line flags override the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use scanwatch_collector::Limits;
use scanwatch_event::HumanDuration;
use serde::Deserialize;

use crate::admin::DEFAULT_DATA_DIR;

/// The only config version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// Reads a TOML config; an error names the key it is about (`retention.windows:
/// invalid duration "forever": …`), with the line.
fn read_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    let de = toml::Deserializer::parse(text).context("invalid config")?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = anyhow::Error::from(e.into_inner());
        if path == "." {
            inner.context("invalid config")
        } else {
            inner.context(format!("invalid config: {path}"))
        }
    })
}

/// A default duration (a literal that parses).
fn dur(text: &str) -> HumanDuration {
    text.parse()
        .unwrap_or_else(|_| unreachable!("default duration {text:?}"))
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Config format version; must be 1.
    pub version: u32,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub detection: DetectionSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub retention: RetentionSection,
    /// The centre's time model (`[time]`, docs/time.md).
    #[serde(default)]
    pub time: TimeSection,
    /// Notification sinks (`[[sinks]]`, docs in `scanwatch_notify::config`); none by
    /// default.
    #[serde(default)]
    pub sinks: Vec<scanwatch_notify::SinkConfig>,
    /// Where the data lives (`[store]`, docs/scale.md): SQLite in the data directory
    /// by default.
    #[serde(default)]
    pub store: StoreSection,
    /// The event bus of the scale-out roles (`[bus]`, docs/scale.md); none by
    /// default (the embedded single process).
    #[serde(default)]
    pub bus: scanwatch_bus::BusConfig,
}

/// Which store implementation `[store]` names.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum StoreKind {
    /// `scanwatch.db` in `server.data`: one machine only (the default).
    #[default]
    Sqlite,
    /// Shared ClickHouse servers (the scale-out roles).
    Clickhouse,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Clickhouse => "clickhouse",
        }
    }
}

impl TryFrom<String> for StoreKind {
    type Error = String;

    fn try_from(s: String) -> Result<StoreKind, String> {
        match s.as_str() {
            "sqlite" => Ok(StoreKind::Sqlite),
            "clickhouse" => Ok(StoreKind::Clickhouse),
            other => Err(format!(
                "store.kind {other:?}: expected \"sqlite\" or \"clickhouse\""
            )),
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `[store]`: which `Store` implementation the server uses.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite` (default: `scanwatch.db` in `server.data`; one machine only) or
    /// `clickhouse`.
    pub kind: StoreKind,
    /// ClickHouse HTTP URL, e.g. `http://127.0.0.1:8123` (clickhouse only).
    pub url: Option<String>,
    /// ClickHouse database (default `scanwatch`).
    pub database: String,
    /// ClickHouse cluster name for the Distributed tables (optional).
    pub cluster: Option<String>,
    /// ClickHouse user and password (HTTP basic auth; optional). Keep a config with
    /// a password readable by the scanwatch user only.
    pub user: Option<String>,
    pub password: Option<String>,
    /// Timeout of each ClickHouse request (default `30s`): how long a hung shard holds
    /// an aggregator's fetch before the retry.
    pub timeout: HumanDuration,
    /// The embedded server's read connections (`read_connections`) read the
    /// store's files through a memory map (default true: the desk's long ranges
    /// about a third quicker). false: with `pread`, so that a disk read error fails
    /// a query instead of ending the server (SIGBUS). sqlite only.
    pub map_reads: bool,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            kind: StoreKind::Sqlite,
            url: None,
            database: "scanwatch".into(),
            cluster: None,
            user: None,
            password: None,
            timeout: dur("30s"),
            map_reads: true,
        }
    }
}

impl StoreSection {
    /// Checks the values without I/O.
    pub fn validate(&self) -> Result<()> {
        match self.kind {
            StoreKind::Sqlite => {
                if self.url.is_some()
                    || self.cluster.is_some()
                    || self.user.is_some()
                    || self.password.is_some()
                {
                    bail!(
                        "store.url, store.cluster, store.user and store.password are for kind = \"clickhouse\""
                    );
                }
            }
            StoreKind::Clickhouse => match &self.url {
                None => bail!("store kind clickhouse needs store.url (http://host:8123)"),
                Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    bail!("store.url {u:?} must start with http:// or https://")
                }
                Some(_) => {}
            },
        }
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        };
        if !ok(&self.database) {
            bail!(
                "store.database {:?}: use letters, digits or '_'",
                self.database
            );
        }
        if let Some(c) = &self.cluster {
            if !ok(c) {
                bail!("store.cluster {c:?}: use letters, digits or '_'");
            }
        }
        self.clickhouse()
            .timeout()
            .map_err(|e| anyhow::anyhow!("[store] {e}"))?;
        Ok(())
    }

    /// The ClickHouse store's settings.
    pub fn clickhouse(&self) -> scanwatch_store::clickhouse::ClickHouseConfig {
        scanwatch_store::clickhouse::ClickHouseConfig {
            url: self.url.clone().unwrap_or_default(),
            database: self.database.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            timeout: self.timeout.to_string(),
        }
    }
}

/// How long data is kept; pruned at start and every hour (wall clock at the edge).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Raw events (default 30 days; replayed at start, so this bounds start time too).
    pub events: HumanDuration,
    /// Window aggregates and warnings (default 400 days).
    pub windows: HumanDuration,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            events: dur("30d"),
            windows: dur("400d"),
        }
    }
}

impl RetentionSection {
    /// How long events and windows are kept.
    pub fn keep(&self) -> Result<scanwatch_centre::Retention> {
        Ok(scanwatch_centre::Retention {
            events_ms: self.events.millis().context("retention.events")?,
            windows_ms: self.windows.millis().context("retention.windows")?,
        })
    }
}

/// `[time]`: when windows close and what the centre's clock refuses (docs/time.md).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSection {
    /// Events further ahead of the centre's clock are refused with 425 (default 5m).
    pub max_clock_skew: HumanDuration,
    /// The longest a window waits for a live sensor that does not progress, from
    /// the later of its end and its first event's arrival (default 10m).
    pub max_wait: HumanDuration,
    /// A sensor without a batch or heartbeat for this long holds nothing back
    /// (default 2m).
    pub idle_after: HumanDuration,
    /// Subtracted from a heartbeat's "complete through" claim (default 2s).
    pub grace: HumanDuration,
    /// Warnings raised by revising windows that ended longer ago are stored, not
    /// notified (default 1d).
    pub notify_max_age: HumanDuration,
}

impl Default for TimeSection {
    fn default() -> Self {
        let ms = |v: i64| dur(&format!("{}s", v / 1000));
        use scanwatch_centre::TimeConfig as T;
        TimeSection {
            max_clock_skew: ms(T::DEFAULT_MAX_CLOCK_SKEW_MS),
            max_wait: ms(T::DEFAULT_MAX_WAIT_MS),
            idle_after: ms(T::DEFAULT_IDLE_AFTER_MS),
            grace: ms(T::DEFAULT_GRACE_MS),
            notify_max_age: ms(T::DEFAULT_NOTIFY_MAX_AGE_MS),
        }
    }
}

impl TimeSection {
    /// The time model for windows of the given pipeline settings.
    pub fn config(
        &self,
        p: &scanwatch_pipeline::PipelineConfig,
    ) -> Result<scanwatch_centre::TimeConfig> {
        let d = |name: &str, v: &HumanDuration| -> Result<i64> {
            let ms = v.millis().with_context(|| format!("time.{name}"))?;
            if ms < 0 {
                bail!("time.{name} must not be negative");
            }
            Ok(ms)
        };
        let mut t =
            scanwatch_centre::TimeConfig::new(p.aggregate.window_ms, p.aggregate.lateness_ms);
        t.max_clock_skew_ms = d("max_clock_skew", &self.max_clock_skew)?;
        t.max_wait_ms = d("max_wait", &self.max_wait)?;
        t.idle_after_ms = d("idle_after", &self.idle_after)?;
        t.grace_ms = d("grace", &self.grace)?;
        t.notify_max_age_ms = d("notify_max_age", &self.notify_max_age)?;
        Ok(t)
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Data directory (default `scanwatch-data`).
    pub data: PathBuf,
    /// Listen address (default `127.0.0.1:8470`).
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM). With `tls_key`, the server speaks HTTPS only
    /// (rustls); without both, plain HTTP (put it behind a TLS proxy then).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Store connections for the read API and the dashboard beside the writer's
    /// (default 4; 0: reads share the writer's): a slow query never holds ingest.
    pub read_connections: usize,
    /// Where the aggregator and detector roles serve `/healthz` and `/metrics`
    /// (default: nowhere). The other roles serve them on `listen`.
    pub ops_listen: Option<SocketAddr>,
    /// File holding a token `/metrics` then requires (`Authorization: Bearer`), on
    /// every role (default: open).
    pub metrics_token_file: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            data: PathBuf::from(DEFAULT_DATA_DIR),
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
            tls_cert: None,
            tls_key: None,
            read_connections: 4,
            ops_listen: None,
            metrics_token_file: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSection {
    pub window: HumanDuration,
    pub history: HumanDuration,
    pub lateness: Option<HumanDuration>,
    pub min_history: HumanDuration,
    pub min_sources: u64,
    pub min_sensors: u64,
    pub trim_sensors: usize,
    pub blocklist_min_sensors: usize,
    pub confirm_min_sensors: usize,
    /// Distinct ports that make a source a sweeper in one window (0: off).
    pub sweep_ports: u32,
    /// Read windows against the network's common rise (default true).
    pub network_index: bool,
}

impl Default for DetectionSection {
    fn default() -> Self {
        DetectionSection {
            window: dur("1h"),
            history: dur("7d"),
            lateness: None,
            min_history: dur("1d"),
            min_sources: 20,
            min_sensors: 3,
            trim_sensors: 1,
            blocklist_min_sensors: 2,
            confirm_min_sensors: 2,
            sweep_ports: scanwatch_aggregate::SweepRule::DEFAULT_MIN_PORTS,
            network_index: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_events_per_batch: usize,
    pub max_events_per_second_per_sensor: u64,
    /// Time for a request's headers or a TLS handshake (default "10s").
    pub header_timeout: HumanDuration,
    /// Time for a request's body once its token is checked (default "60s").
    pub body_timeout: HumanDuration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub max_requests_in_flight: usize,
    /// Stored events waiting to be counted into the aggregates from which batches
    /// are answered 503 (default 500,000; 0: no bound; else at least twice the
    /// `scanwatch_store::sqlite::AGGREGATE_EVERY` events from which the store
    /// counts).
    pub max_uncounted_events: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let l = Limits::default();
        LimitsSection {
            max_body_bytes: l.max_body_bytes,
            max_decompressed_bytes: l.max_decompressed_bytes,
            max_events_per_batch: l.max_events_per_batch,
            max_events_per_second_per_sensor: l.max_events_per_second_per_sensor,
            header_timeout: dur(&format!("{}s", l.header_timeout.as_secs())),
            body_timeout: dur(&format!("{}s", l.body_timeout.as_secs())),
            max_connections: l.max_connections,
            max_connections_per_client: l.max_connections_per_client,
            max_requests_in_flight: l.max_requests_in_flight,
            max_uncounted_events: l.max_uncounted_events,
        }
    }
}

impl LimitsSection {
    fn duration(what: &str, s: &HumanDuration) -> Result<std::time::Duration> {
        let ms = s.millis().with_context(|| format!("limits.{what}"))?;
        if ms < 100 {
            bail!("limits.{what} must be at least 100ms");
        }
        Ok(std::time::Duration::from_millis(ms as u64))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            version: CONFIG_VERSION,
            server: ServerSection::default(),
            detection: DetectionSection::default(),
            limits: LimitsSection::default(),
            retention: RetentionSection::default(),
            time: TimeSection::default(),
            sinks: Vec::new(),
            store: StoreSection::default(),
            bus: scanwatch_bus::BusConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Parses TOML text (no I/O) and validates it.
    pub fn parse(text: &str) -> Result<ServerConfig> {
        let cfg: ServerConfig = read_toml(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value without touching the disk or the network.
    pub fn validate(&self) -> Result<()> {
        if self.version != CONFIG_VERSION {
            bail!(
                "config version {} is not supported; this build reads version {CONFIG_VERSION}",
                self.version
            );
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            bail!("server.tls_cert and server.tls_key go together: give both or neither");
        }
        let pcfg = self.detection_args().config()?;
        self.time.config(&pcfg)?;
        let events = self.retention.keep()?.events_ms;
        let history = self.detection.history.millis()?;
        if events < history {
            bail!(
                "retention.events ({}) must be at least detection.history ({})",
                self.retention.events,
                self.detection.history
            );
        }
        let l = &self.limits;
        if l.max_body_bytes == 0
            || l.max_decompressed_bytes == 0
            || l.max_events_per_batch == 0
            || l.max_events_per_second_per_sensor == 0
            || l.max_connections == 0
            || l.max_connections_per_client == 0
            || l.max_requests_in_flight == 0
        {
            bail!("limits must be greater than zero");
        }
        let counted_at_once = scanwatch_store::sqlite::AGGREGATE_EVERY;
        if l.max_uncounted_events != 0 && l.max_uncounted_events < 2 * counted_at_once {
            bail!(
                "limits.max_uncounted_events must be 0 (no bound) or at least {} (twice the events from which the store counts)",
                2 * counted_at_once
            );
        }
        if l.max_connections_per_client > l.max_connections {
            bail!("limits.max_connections_per_client must be at most limits.max_connections");
        }
        self.limits()?;
        if l.max_decompressed_bytes < l.max_body_bytes {
            bail!("limits.max_decompressed_bytes must be at least limits.max_body_bytes");
        }
        let cap = scanwatch_aggregate::WITNESS_CAP;
        if !(1..=cap).contains(&self.detection.confirm_min_sensors) {
            bail!(
                "detection.confirm_min_sensors must be 1-{cap}, not {}",
                self.detection.confirm_min_sensors
            );
        }
        scanwatch_notify::config::validate_sinks(&self.sinks)?;
        self.store.validate()?;
        self.bus.validate()?;
        Ok(())
    }

    /// The metrics token, read from `metrics_token_file` (a missing or empty file is
    /// an error).
    pub fn metrics_token(&self) -> Result<Option<String>> {
        let Some(f) = &self.server.metrics_token_file else {
            return Ok(None);
        };
        let t = std::fs::read_to_string(f)
            .with_context(|| format!("server.metrics_token_file {}", f.display()))?
            .trim()
            .to_string();
        if t.is_empty() {
            bail!("server.metrics_token_file {} is empty", f.display());
        }
        Ok(Some(t))
    }

    /// The context options of a server: its data directory, and what confirms.
    pub fn context_args(&self) -> crate::intel::ContextArgs {
        crate::intel::ContextArgs {
            data: Some(self.server.data.clone()),
            confirm_min_sensors: self.detection.confirm_min_sensors,
            ..Default::default()
        }
    }

    pub fn detection_args(&self) -> crate::analyze::DetectionArgs {
        let d = &self.detection;
        crate::analyze::DetectionArgs {
            window: d.window.to_string(),
            history: d.history.to_string(),
            lateness: d.lateness.as_ref().map(ToString::to_string),
            min_history: d.min_history.to_string(),
            min_sources: d.min_sources,
            min_sensors: d.min_sensors,
            trim_sensors: d.trim_sensors,
            blocklist_min_sensors: d.blocklist_min_sensors,
            sweep_ports: d.sweep_ports,
            network_index: d.network_index,
        }
    }

    /// The collector's limits (validated by [`ServerConfig::validate`]).
    pub fn limits(&self) -> Result<Limits> {
        let l = &self.limits;
        Ok(Limits {
            max_body_bytes: l.max_body_bytes,
            max_decompressed_bytes: l.max_decompressed_bytes,
            max_events_per_batch: l.max_events_per_batch,
            max_events_per_second_per_sensor: l.max_events_per_second_per_sensor,
            header_timeout: LimitsSection::duration("header_timeout", &l.header_timeout)?,
            body_timeout: LimitsSection::duration("body_timeout", &l.body_timeout)?,
            max_connections: l.max_connections,
            max_connections_per_client: l.max_connections_per_client,
            max_requests_in_flight: l.max_requests_in_flight,
            max_uncounted_events: l.max_uncounted_events,
        })
    }
}

/// `scanwatch sensor run --config FILE`: the same options as the flags.
///
/// ```toml
/// version = 1
/// [sensor]
/// server = "https://centre.example.net:8470"
/// token_file = "/etc/scanwatch/token"
/// spool = "/var/lib/scanwatch/spool"
/// ca_file = "/etc/scanwatch/centre-ca.pem"   # optional
/// from_start = false
/// max_spool_mib = 256
/// sources = ["/var/log/kern.log:netfilter", "/var/log/suricata/eve.json:suricata"]
/// capture = "eth0"                           # optional: live capture (libpcap)
/// [rules]
/// include_ports = "1-65535"
/// exclude_ports = "53"
/// exclude_sources = ["192.0.2.0/28"]
/// actions = ["drop", "reject"]
/// anonymize_targets = "keyed"                 # none, drop or keyed
/// anonymize_key_file = "/etc/scanwatch/anon.key"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SensorFileConfig {
    pub version: u32,
    #[serde(default)]
    pub sensor: SensorSection,
    #[serde(default)]
    pub rules: RulesSection,
}

impl Default for SensorFileConfig {
    fn default() -> Self {
        SensorFileConfig {
            version: CONFIG_VERSION,
            sensor: SensorSection::default(),
            rules: RulesSection::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SensorSection {
    pub server: Option<String>,
    pub token_file: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub from_start: bool,
    /// Spool size limit in MiB (default 256).
    pub max_spool_mib: u64,
    /// `PATH` or `PATH:FORMAT`.
    pub sources: Vec<String>,
    /// Interface to capture unsolicited inbound packets on (libpcap).
    pub capture: Option<String>,
    /// Syslog receivers: `ADDR` or `ADDR:FORMAT`, over UDP, over TCP and over TCP
    /// with TLS (RFC 5425; with `syslog_tls_cert` and `syslog_tls_key`).
    pub syslog_udp: Vec<String>,
    pub syslog_tcp: Vec<String>,
    pub syslog_tls: Vec<String>,
    /// The certificate chain (PEM) the TLS receivers present.
    pub syslog_tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub syslog_tls_key: Option<PathBuf>,
    /// Follow the systemd journal (`journalctl --follow`): its kernel messages,
    /// or those of `journal_match`.
    pub journald: bool,
    /// A journal directory to read instead of the system journal.
    pub journal_dir: Option<PathBuf>,
    /// `journalctl` matches (default `["_TRANSPORT=kernel"]`).
    pub journal_match: Vec<String>,
}

impl SensorSection {
    /// Every syslog receiver with its transport.
    pub fn receivers(
        &self,
    ) -> impl Iterator<Item = (&String, scanwatch_sensor::listen::Transport)> {
        use scanwatch_sensor::listen::Transport;
        self.syslog_udp
            .iter()
            .map(|a| (a, Transport::Udp))
            .chain(self.syslog_tcp.iter().map(|a| (a, Transport::Tcp)))
            .chain(self.syslog_tls.iter().map(|a| (a, Transport::Tls)))
    }
}

impl Default for SensorSection {
    fn default() -> Self {
        SensorSection {
            server: None,
            token_file: None,
            spool: None,
            ca_file: None,
            from_start: false,
            max_spool_mib: 256,
            sources: Vec::new(),
            capture: None,
            syslog_udp: Vec::new(),
            syslog_tcp: Vec::new(),
            syslog_tls: Vec::new(),
            syslog_tls_cert: None,
            syslog_tls_key: None,
            journald: false,
            journal_dir: None,
            journal_match: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSection {
    pub include_ports: Option<String>,
    pub exclude_ports: Option<String>,
    pub exclude_sources: Vec<String>,
    pub actions: Vec<String>,
    /// `none` (default), `drop` or `keyed`.
    pub anonymize_targets: String,
    pub anonymize_key_file: Option<PathBuf>,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection {
            include_ports: None,
            exclude_ports: None,
            exclude_sources: Vec::new(),
            actions: Vec::new(),
            anonymize_targets: "none".into(),
            anonymize_key_file: None,
        }
    }
}

impl RulesSection {
    /// The sensor's rules (the anonymiser is built by the caller, who reads the key).
    pub fn rules(
        &self,
        anonymize: scanwatch_sensor::rules::Anonymize,
    ) -> Result<scanwatch_sensor::rules::Rules> {
        use scanwatch_sensor::rules::{parse_action, parse_network, parse_ports, Rules};
        let ports = |p: &Option<String>| -> Result<Vec<(u16, u16)>> {
            Ok(p.as_deref()
                .map(parse_ports)
                .transpose()?
                .unwrap_or_default())
        };
        Ok(Rules::new(
            ports(&self.include_ports).context("include_ports")?,
            ports(&self.exclude_ports).context("exclude_ports")?,
            self.exclude_sources
                .iter()
                .map(|s| parse_network(s))
                .collect::<Result<_, _>>()
                .context("exclude_sources")?,
            self.actions
                .iter()
                .map(|a| parse_action(a))
                .collect::<Result<_, _>>()
                .context("actions")?,
            anonymize,
        ))
    }
}

impl SensorFileConfig {
    /// Parses TOML text (no I/O) and checks what can be checked without the
    /// flags (the required fields are checked by [`SensorFileConfig::validate`]
    /// once the flags are applied).
    pub fn parse(text: &str) -> Result<SensorFileConfig> {
        let cfg: SensorFileConfig = read_toml(text)?;
        if cfg.version != CONFIG_VERSION {
            bail!(
                "config version {} is not supported; this build reads version {CONFIG_VERSION}",
                cfg.version
            );
        }
        Ok(cfg)
    }

    /// Checks every value without touching the disk or the network.
    pub fn validate(&self) -> Result<()> {
        let s = &self.sensor;
        match &s.server {
            None => bail!("no centre: give --server or sensor.server"),
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                bail!("sensor.server {u:?} must start with http:// or https://")
            }
            Some(_) => {}
        }
        if s.token_file.is_none() {
            bail!("no token: give --token-file or sensor.token_file");
        }
        if s.spool.is_none() {
            bail!("no spool directory: give --spool or sensor.spool");
        }
        if s.sources.is_empty()
            && s.capture.is_none()
            && s.syslog_udp.is_empty()
            && s.syslog_tcp.is_empty()
            && s.syslog_tls.is_empty()
            && !s.journald
        {
            bail!("no log to follow: give --source or sensor.sources (or --capture IFACE, --syslog-udp/--syslog-tcp/--syslog-tls ADDR, or --journald)");
        }
        if !s.journald && (s.journal_dir.is_some() || !s.journal_match.is_empty()) {
            bail!("sensor.journal_dir and journal_match are for the journald source: set sensor.journald (--journald) too");
        }
        if let Some(m) = s.journal_match.iter().find(|m| {
            let (k, _) = m.split_once('=').unwrap_or(("", ""));
            k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        }) {
            bail!("sensor.journal_match {m:?}: expected FIELD=VALUE with an upper-case field name, e.g. _TRANSPORT=kernel");
        }
        for (a, t) in s.receivers() {
            crate::sensor::parse_listen(a, t)?;
        }
        match (
            s.syslog_tls.is_empty(),
            s.syslog_tls_cert.is_some(),
            s.syslog_tls_key.is_some(),
        ) {
            (true, false, false) | (false, true, true) => {}
            (false, _, _) => bail!(
                "a TLS syslog receiver needs sensor.syslog_tls_cert and sensor.syslog_tls_key (--syslog-tls-cert, --syslog-tls-key)"
            ),
            (true, _, _) => bail!(
                "sensor.syslog_tls_cert and syslog_tls_key are for TLS receivers: give sensor.syslog_tls (--syslog-tls ADDR) too"
            ),
        }
        if s.max_spool_mib == 0 {
            bail!("sensor.max_spool_mib must be greater than zero");
        }
        let r = &self.rules;
        match (r.anonymize_targets.as_str(), &r.anonymize_key_file) {
            ("none" | "drop", _) | ("keyed", Some(_)) => {}
            ("keyed", None) => bail!(
                "--anonymize-targets keyed needs --anonymize-key-file (rules.anonymize_key_file)"
            ),
            (other, _) => bail!("anonymize_targets {other:?}: expected none, drop or keyed"),
        }
        r.rules(scanwatch_sensor::rules::Anonymize::None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example configs shipped in `examples/` parse and validate, and the
    /// example units start the commands with the paths the examples are meant for.
    #[test]
    fn examples_parse_and_the_units_point_at_them() {
        let server = ServerConfig::parse(include_str!("../../../examples/server.toml")).unwrap();
        assert_eq!(
            server.server.data,
            std::path::PathBuf::from("/var/lib/scanwatch")
        );
        assert!(server.limits().is_ok());
        let sensor =
            SensorFileConfig::parse(include_str!("../../../examples/sensor.toml")).unwrap();
        sensor.validate().unwrap();
        assert_eq!(sensor.sensor.sources.len(), 1);
        for (unit, exec, state) in [
            (
                include_str!("../../../examples/systemd/scanwatch-server.service"),
                "ExecStart=/usr/bin/scanwatch server --config /etc/scanwatch/server.toml",
                "StateDirectory=scanwatch\n",
            ),
            (
                include_str!("../../../examples/systemd/scanwatch-sensor.service"),
                "ExecStart=/usr/bin/scanwatch sensor run --config /etc/scanwatch/sensor.toml",
                "StateDirectory=scanwatch-sensor\n",
            ),
        ] {
            assert!(unit.contains(exec), "{exec}");
            assert!(unit.contains(state), "{state}");
            for hardening in [
                "DynamicUser=yes",
                "ProtectSystem=strict",
                "NoNewPrivileges=yes",
                "CapabilityBoundingSet=\n",
            ] {
                assert!(unit.contains(hardening), "{hardening}");
            }
        }
    }

    #[test]
    fn full_file_and_defaults() {
        let cfg = ServerConfig::parse(
            r#"
version = 1
[server]
data = "/var/lib/scanwatch"
listen = "0.0.0.0:9000"
[detection]
window = "10m"
history = "14d"
min_sources = 30
[limits]
max_events_per_batch = 5000
"#,
        )
        .unwrap();
        assert_eq!(cfg.server.listen.port(), 9000);
        assert_eq!(cfg.detection.window.as_str(), "10m");
        assert_eq!(
            cfg.detection.min_sensors, 3,
            "unset keys keep their defaults"
        );
        assert_eq!(cfg.limits().unwrap().max_events_per_batch, 5000);
        assert_eq!(
            ServerConfig::parse("version = 1").unwrap(),
            ServerConfig::default()
        );
    }

    #[test]
    fn sinks_parse_and_are_validated() {
        let cfg = ServerConfig::parse(
            r#"
version = 1
[[sinks]]
kind = "webhook"
name = "soc"
url = "https://hooks.example.net/x"
min_severity = "high"
[[sinks]]
kind = "syslog"
name = "siem"
transport = "tcp"
"#,
        )
        .unwrap();
        assert_eq!(cfg.sinks.len(), 2);
        assert_eq!(cfg.sinks[1].kind.name(), "syslog");
        for (text, want) in [
            (
                "version = 1\n[[sinks]]\nkind = \"webhook\"\nname = \"a\"\nurl = \"ftp://x\"",
                "http://",
            ),
            (
                "version = 1\n[[sinks]]\nkind = \"syslog\"\nname = \"a\"\nport = 514\nbogus = 1",
                "unknown field `bogus`",
            ),
            (
                "version = 1\n[[sinks]]\nkind = \"syslog\"\nname = \"a\"\n[[sinks]]\nkind = \"syslog\"\nname = \"a\"",
                "two sinks",
            ),
        ] {
            let err = format!("{:#}", ServerConfig::parse(text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn the_backlog_bound_takes_none_or_at_least_twice_the_counting_step() {
        let bound = |text: &str| {
            ServerConfig::parse(text)
                .unwrap()
                .limits()
                .unwrap()
                .max_uncounted_events
        };
        assert_eq!(bound("version = 1"), 500_000, "documented default");
        for n in [0, 40_000, 10_000_000] {
            assert_eq!(
                bound(&format!(
                    "version = 1\n[limits]\nmax_uncounted_events = {n}"
                )),
                n
            );
        }
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        for (text, want) in [
            (
                "version = 1\n[server]\nlisten_on = \"x\"",
                "unknown field `listen_on`",
            ),
            ("version = 1\nextra = 1", "unknown field `extra`"),
            ("version = 2", "config version 2 is not supported"),
            ("[server]", "missing field `version`"),
            (
                "version = 1\n[detection]\nwindow = \"ten\"",
                "invalid duration",
            ),
            (
                "version = 1\n[detection]\nwindow = \"1d\"\nhistory = \"1h\"",
                "must be at least one --window",
            ),
            (
                "version = 1\n[limits]\nmax_events_per_batch = 0",
                "greater than zero",
            ),
            (
                "version = 1\n[limits]\nmax_uncounted_events = 39999",
                "max_uncounted_events must be 0 (no bound) or at least 40000",
            ),
            (
                "version = 1\n[limits]\nmax_uncounted_events = 1",
                "max_uncounted_events must be 0 (no bound) or at least 40000",
            ),
            ("version = 1\n[server]\nlisten = \"nowhere\"", "invalid"),
            (
                "version = 1\n[server]\ntls_cert = \"cert.pem\"",
                "tls_cert and server.tls_key go together",
            ),
            (
                "version = 1\n[retention]\nevents = \"1d\"",
                "must be at least detection.history",
            ),
            (
                "version = 1\n[retention]\nwindows = \"forever\"",
                "retention.windows",
            ),
            (
                "version = 1\n[bus]\nduplicate_window = \"soon\"",
                "invalid config: bus.duplicate_window",
            ),
            (
                "version = 1\n[time]\nmax_wait = \"a while\"",
                "invalid config: time.max_wait",
            ),
        ] {
            let err = format!("{:#}", ServerConfig::parse(text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn store_and_bus_sections_parse_and_are_validated() {
        let cfg = ServerConfig::parse(
            r#"
version = 1
[store]
kind = "clickhouse"
url = "http://127.0.0.1:8123"
cluster = "scanwatch"
[bus]
kind = "nats"
url = "nats://127.0.0.1:4222,nats://127.0.0.1:4223"
replicas = 3
partitions = 8
"#,
        )
        .unwrap();
        assert_eq!(cfg.store.database, "scanwatch", "documented default");
        assert_eq!(cfg.store.timeout.as_str(), "30s", "documented default");
        assert_eq!(cfg.store.clickhouse().timeout().unwrap().as_secs(), 30);
        assert_eq!(cfg.bus.urls().len(), 2);
        assert_eq!(cfg.bus.stream, "SCANWATCH_EVENTS", "documented default");
        let d = ServerConfig::parse("version = 1").unwrap();
        assert_eq!(d.store.kind, StoreKind::Sqlite);
        assert!(d.store.map_reads, "documented default");
        assert!(
            !ServerConfig::parse("version = 1\n[store]\nmap_reads = false")
                .unwrap()
                .store
                .map_reads
        );
        assert!(!d.bus.enabled());
        for (text, want) in [
            (
                "version = 1\n[store]\nkind = \"mysql\"",
                "expected \"sqlite\"",
            ),
            (
                "version = 1\n[store]\nkind = \"clickhouse\"",
                "needs store.url",
            ),
            (
                "version = 1\n[store]\nurl = \"http://x\"",
                "are for kind = \"clickhouse\"",
            ),
            ("version = 1\n[store]\nhost = \"x\"", "unknown field `host`"),
            (
                "version = 1\n[store]\nkind = \"clickhouse\"\nurl = \"http://x\"\ntimeout = \"soon\"",
                // Read as a duration when the config is read: the key is named.
                "invalid config: store.timeout",
            ),
            (
                "version = 1\n[store]\nkind = \"clickhouse\"\nurl = \"http://x\"\ntimeout = \"0s\"",
                "timeout must be above zero",
            ),
            (
                "version = 1\n[store]\npassword = \"x\"",
                "are for kind = \"clickhouse\"",
            ),
            ("version = 1\n[bus]\nkind = \"kafka\"", "bus.kind"),
            (
                "version = 1\n[bus]\nkind = \"nats\"\nurl = \"x\"",
                "nats://",
            ),
            (
                "version = 1\n[bus]\npartition = 3",
                "unknown field `partition`",
            ),
            (
                "version = 1\n[bus]\nkind = \"nats\"\npartitions = 0",
                "bus.partitions",
            ),
        ] {
            let err = format!("{:#}", ServerConfig::parse(text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn sensor_config_parses_validates_and_refuses_mistakes() {
        let text = r#"
version = 1
[sensor]
server = "https://centre.example.net:8470"
token_file = "/etc/scanwatch/token"
spool = "/var/lib/scanwatch/spool"
sources = ["/var/log/kern.log:netfilter"]
[rules]
include_ports = "1-1024"
exclude_sources = ["192.0.2.0/28"]
actions = ["drop"]
"#;
        let c = SensorFileConfig::parse(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.sensor.max_spool_mib, 256, "documented default");
        assert_eq!(c.rules.anonymize_targets, "none");
        let bad = [
            ("version = 2", "version 2 is not supported"),
            ("version = 1\n[sensor]\nservr = \"x\"", "unknown field"),
        ];
        for (t, want) in bad {
            let e = format!("{:#}", SensorFileConfig::parse(t).unwrap_err());
            assert!(e.contains(want), "{t}: {e}");
        }
        let invalid = [
            (text.replace("https://", "ftp://"), "must start with http"),
            (
                text.replace("include_ports = \"1-1024\"", "include_ports = \"0-x\""),
                "include_ports",
            ),
            (text.replace("192.0.2.0/28", "not-a-net"), "exclude_sources"),
            (text.replace("[\"drop\"]", "[\"explode\"]"), "actions"),
            (
                text.replace("actions", "anonymize_targets = \"keyed\"\nactions"),
                "needs --anonymize-key-file",
            ),
            (
                text.replace("sources = [\"/var/log/kern.log:netfilter\"]", ""),
                "no log to follow",
            ),
            (
                text.replace(
                    "sources = [\"/var/log/kern.log:netfilter\"]",
                    "syslog_tls = [\"0.0.0.0:6514\"]",
                ),
                "needs sensor.syslog_tls_cert and sensor.syslog_tls_key",
            ),
            (
                text.replace(
                    "sources = [\"/var/log/kern.log:netfilter\"]",
                    "sources = [\"/var/log/kern.log\"]\nsyslog_tls_cert = \"c.pem\"\nsyslog_tls_key = \"k.pem\"",
                ),
                "give sensor.syslog_tls",
            ),
            (
                text.replace(
                    "sources = [\"/var/log/kern.log:netfilter\"]",
                    "syslog_tls = [\"nowhere\"]\nsyslog_tls_cert = \"c.pem\"\nsyslog_tls_key = \"k.pem\"",
                ),
                "expected ADDR:PORT",
            ),
        ];
        for (t, want) in invalid {
            let e = format!(
                "{:#}",
                SensorFileConfig::parse(&t).unwrap().validate().unwrap_err()
            );
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
