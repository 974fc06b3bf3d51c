//! The server's TOML configuration: every key documented in `docs/server.md`, unknown
//! keys refused, a `version` tag, defaults in one place, and validation without I/O.
//! Command-line flags override the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use scanwatch_collector::Limits;
use serde::Deserialize;

use crate::admin::DEFAULT_DATA_DIR;

/// The only config version this build reads.
pub const CONFIG_VERSION: u32 = 1;

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
}

/// How long data is kept; pruned at start and every hour (wall clock at the edge).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Raw events (default 30 days; replayed at start, so this bounds start time too).
    pub events: String,
    /// Window aggregates and warnings (default 400 days).
    pub windows: String,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            events: "30d".into(),
            windows: "400d".into(),
        }
    }
}

impl RetentionSection {
    /// (events, windows) retention in milliseconds.
    pub fn millis(&self) -> Result<(i64, i64)> {
        let e = scanwatch_event::parse_duration(&self.events).context("retention.events")?;
        let w = scanwatch_event::parse_duration(&self.windows).context("retention.windows")?;
        Ok((e, w))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Data directory (default `scanwatch-data`).
    pub data: PathBuf,
    /// Listen address (default `127.0.0.1:8470`).
    pub listen: SocketAddr,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            data: PathBuf::from(DEFAULT_DATA_DIR),
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSection {
    pub window: String,
    pub history: String,
    pub lateness: Option<String>,
    pub min_history: String,
    pub min_sources: u64,
    pub min_sensors: u64,
}

impl Default for DetectionSection {
    fn default() -> Self {
        DetectionSection {
            window: "1h".into(),
            history: "7d".into(),
            lateness: None,
            min_history: "1d".into(),
            min_sources: 20,
            min_sensors: 3,
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
}

impl Default for LimitsSection {
    fn default() -> Self {
        let l = Limits::default();
        LimitsSection {
            max_body_bytes: l.max_body_bytes,
            max_decompressed_bytes: l.max_decompressed_bytes,
            max_events_per_batch: l.max_events_per_batch,
            max_events_per_second_per_sensor: l.max_events_per_second_per_sensor,
        }
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
        }
    }
}

impl ServerConfig {
    /// Parses TOML text (no I/O) and validates it.
    pub fn parse(text: &str) -> Result<ServerConfig> {
        let cfg: ServerConfig = toml::from_str(text).context("invalid config")?;
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
        self.detection_args().config()?;
        let (events, _) = self.retention.millis()?;
        let history = scanwatch_event::parse_duration(&self.detection.history)?;
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
        {
            bail!("limits must be greater than zero");
        }
        if l.max_decompressed_bytes < l.max_body_bytes {
            bail!("limits.max_decompressed_bytes must be at least limits.max_body_bytes");
        }
        Ok(())
    }

    pub fn detection_args(&self) -> crate::analyze::DetectionArgs {
        let d = &self.detection;
        crate::analyze::DetectionArgs {
            window: d.window.clone(),
            history: d.history.clone(),
            lateness: d.lateness.clone(),
            min_history: d.min_history.clone(),
            min_sources: d.min_sources,
            min_sensors: d.min_sensors,
        }
    }

    pub fn limits(&self) -> Limits {
        let l = &self.limits;
        Limits {
            max_body_bytes: l.max_body_bytes,
            max_decompressed_bytes: l.max_decompressed_bytes,
            max_events_per_batch: l.max_events_per_batch,
            max_events_per_second_per_sensor: l.max_events_per_second_per_sensor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(cfg.detection.window, "10m");
        assert_eq!(
            cfg.detection.min_sensors, 3,
            "unset keys keep their defaults"
        );
        assert_eq!(cfg.limits().max_events_per_batch, 5000);
        assert_eq!(
            ServerConfig::parse("version = 1").unwrap(),
            ServerConfig::default()
        );
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
            ("version = 1\n[server]\nlisten = \"nowhere\"", "invalid"),
            (
                "version = 1\n[retention]\nevents = \"1d\"",
                "must be at least detection.history",
            ),
            (
                "version = 1\n[retention]\nwindows = \"forever\"",
                "retention.windows",
            ),
        ] {
            let err = format!("{:#}", ServerConfig::parse(text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
