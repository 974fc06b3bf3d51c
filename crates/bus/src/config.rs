//! `[bus]` of the server's TOML config: which event bus the scale-out roles use and
//! how it is laid out. Unknown keys are refused; [`BusConfig::validate`] checks every
//! value without touching the network.

use std::path::PathBuf;
use std::time::Duration;

use scanwatch_event::HumanDuration;
use serde::Deserialize;

use crate::BusError;

/// Which bus `[bus] kind` names.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum BusKind {
    /// No bus: the embedded single process (the default).
    #[default]
    None,
    /// NATS JetStream (the scale-out roles).
    Nats,
}

impl BusKind {
    pub fn name(self) -> &'static str {
        match self {
            BusKind::None => "none",
            BusKind::Nats => "nats",
        }
    }
}

impl TryFrom<String> for BusKind {
    type Error = String;

    fn try_from(s: String) -> Result<BusKind, String> {
        match s.as_str() {
            "none" => Ok(BusKind::None),
            "nats" => Ok(BusKind::Nats),
            other => Err(format!("bus.kind {other:?}: expected \"none\" or \"nats\"")),
        }
    }
}

/// The event bus settings. Every key has a default, so `[bus]` with `kind = "nats"`
/// and `url` is a working config.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `none` (default: no bus, the embedded single process) or `nats` (JetStream).
    pub kind: BusKind,
    /// NATS server URLs, comma-separated for a cluster (default
    /// `nats://127.0.0.1:4222`); the client connects to any and fails over.
    pub url: String,
    /// JetStream stream that holds the batches (default `SCANWATCH_EVENTS`).
    pub stream: String,
    /// Subject prefix: partition `p` is published to `<prefix>.<p>` (default
    /// `scanwatch.events`).
    pub subject_prefix: String,
    /// Stream replicas (default 1; 3 on a three-node cluster). A batch is
    /// acknowledged to the sensor only once a majority of them hold it.
    pub replicas: usize,
    /// JetStream's duplicate window (default `2m`): a resend with the same
    /// `Nats-Msg-Id` within it is dropped by the server.
    pub duplicate_window: HumanDuration,
    /// How long the stream keeps messages (default `7d`; aggregators normally ack
    /// them within seconds, this bounds a long aggregator outage).
    pub max_age: HumanDuration,
    /// Partitions (default 16): an event goes to `hash(proto, dst_port) % partitions`.
    /// Changing it on a running deployment re-shards; do it with the stream drained.
    pub partitions: u32,
    /// Un-acknowledged messages a partition's consumer may have in flight (default
    /// 4096; the server's default of 1000 stalls large fetches).
    pub max_ack_pending: i64,
    /// Messages per pull request (default 256; at most `max_ack_pending`).
    pub fetch_batch: usize,
    /// How long the server waits for an ack before redelivering (default `30s`).
    pub ack_wait: HumanDuration,
    /// Durable consumer names are `<consumer_prefix>-<partition>` (default
    /// `scanwatch-agg`).
    pub consumer_prefix: String,
    /// Largest message payload (default 900000 bytes, under NATS's default
    /// `max_payload` of 1 MiB); a bigger partition of a batch is split in chunks.
    pub max_message_bytes: usize,
    /// How long a publish is retried (same message id) before the collector gives
    /// up and answers 500, so the sensor retries (default `30s`).
    pub publish_timeout: HumanDuration,
    /// Key-value bucket holding the detector lease (default `scanwatch_leases`).
    pub lease_bucket: String,
    /// Lease time to live (default `10s`): a standby detector takes over at most this
    /// long after the active one stopped renewing.
    pub lease_ttl: HumanDuration,
    /// How this role proves itself to NATS (docs/security.md); the secrets are read
    /// from files at connect, never written in this config. At most one of
    /// `user` + `password_file`, `token_file`, `nkey_seed_file`, `credentials_file`.
    pub user: Option<String>,
    /// File holding the password of `user`.
    pub password_file: Option<PathBuf>,
    /// File holding a NATS token.
    pub token_file: Option<PathBuf>,
    /// File holding an NKey seed (`SU…`).
    pub nkey_seed_file: Option<PathBuf>,
    /// A NATS credentials file (JWT and NKey seed, `.creds`).
    pub credentials_file: Option<PathBuf>,
    /// CA certificate(s), PEM, to trust for the servers' TLS (a private CA); with
    /// it, TLS is required.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for servers that verify clients (with
    /// `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// Client private key (PEM).
    pub tls_key_file: Option<PathBuf>,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            kind: BusKind::None,
            url: "nats://127.0.0.1:4222".into(),
            stream: "SCANWATCH_EVENTS".into(),
            subject_prefix: "scanwatch.events".into(),
            replicas: 1,
            duplicate_window: dur_default("2m"),
            max_age: dur_default("7d"),
            partitions: 16,
            max_ack_pending: 4096,
            fetch_batch: 256,
            ack_wait: dur_default("30s"),
            consumer_prefix: "scanwatch-agg".into(),
            max_message_bytes: 900_000,
            publish_timeout: dur_default("30s"),
            lease_bucket: "scanwatch_leases".into(),
            lease_ttl: dur_default("10s"),
            user: None,
            password_file: None,
            token_file: None,
            nkey_seed_file: None,
            credentials_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

fn dur(key: &str, v: &HumanDuration) -> Result<Duration, BusError> {
    let ms = v
        .millis()
        .map_err(|e| BusError::Config(format!("bus.{key}: {e}")))?;
    if ms <= 0 {
        return Err(BusError::Config(format!(
            "bus.{key} must be greater than zero"
        )));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// A default duration (a literal that parses).
fn dur_default(text: &str) -> HumanDuration {
    text.parse()
        .unwrap_or_else(|_| unreachable!("default duration {text:?}"))
}

fn name_ok(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || extra.contains(&c))
}

impl BusConfig {
    /// Whether a bus is configured (`kind = "nats"`).
    pub fn enabled(&self) -> bool {
        self.kind == BusKind::Nats
    }

    /// The server URLs, trimmed.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn duplicate_window(&self) -> Result<Duration, BusError> {
        dur("duplicate_window", &self.duplicate_window)
    }
    pub fn max_age(&self) -> Result<Duration, BusError> {
        dur("max_age", &self.max_age)
    }
    pub fn ack_wait(&self) -> Result<Duration, BusError> {
        dur("ack_wait", &self.ack_wait)
    }
    pub fn publish_timeout(&self) -> Result<Duration, BusError> {
        dur("publish_timeout", &self.publish_timeout)
    }
    pub fn lease_ttl(&self) -> Result<Duration, BusError> {
        dur("lease_ttl", &self.lease_ttl)
    }

    /// The subject of one partition.
    pub fn subject(&self, partition: u32) -> String {
        format!("{}.{partition}", self.subject_prefix)
    }

    /// The stream that keeps the deployment's sample seed, and its one
    /// subject (`NatsBus::sample_seed`).
    pub fn deployment_stream(&self) -> (String, String) {
        let name = format!("{}_DEPLOYMENT", self.stream);
        let subject = format!("{name}.sample_seed");
        (name, subject)
    }

    /// The durable consumer of one partition.
    pub fn consumer_name(&self, partition: u32) -> String {
        format!("{}-{partition}", self.consumer_prefix)
    }

    /// Checks every value without I/O.
    pub fn validate(&self) -> Result<(), BusError> {
        if self.kind == BusKind::None {
            return Ok(());
        }
        let ways = [
            self.user.is_some() || self.password_file.is_some(),
            self.token_file.is_some(),
            self.nkey_seed_file.is_some(),
            self.credentials_file.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            return Err(BusError::Config(
                "bus: set one of user + password_file, token_file, nkey_seed_file, credentials_file"
                    .into(),
            ));
        }
        if self.user.is_some() != self.password_file.is_some() {
            return Err(BusError::Config(
                "bus.user and bus.password_file go together".into(),
            ));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(BusError::Config(
                "bus.tls_cert_file and bus.tls_key_file go together".into(),
            ));
        }
        let urls = self.urls();
        if urls.is_empty() {
            return Err(BusError::Config("bus.url is empty".into()));
        }
        for u in &urls {
            if !(u.starts_with("nats://") || u.starts_with("tls://")) {
                return Err(BusError::Config(format!(
                    "bus.url {u:?} must start with nats:// or tls://"
                )));
            }
        }
        if !name_ok(&self.stream, b"") {
            return Err(BusError::Config(format!(
                "bus.stream {:?}: use 1-64 letters, digits, '_' or '-'",
                self.stream
            )));
        }
        if !name_ok(&self.subject_prefix, b".")
            || self.subject_prefix.starts_with('.')
            || self.subject_prefix.ends_with('.')
            || self.subject_prefix.contains("..")
        {
            return Err(BusError::Config(format!(
                "bus.subject_prefix {:?}: use dot-separated tokens of letters, digits, '_' or '-'",
                self.subject_prefix
            )));
        }
        if !name_ok(&self.consumer_prefix, b"") {
            return Err(BusError::Config(format!(
                "bus.consumer_prefix {:?}: use 1-64 letters, digits, '_' or '-'",
                self.consumer_prefix
            )));
        }
        if !name_ok(&self.lease_bucket, b"") {
            return Err(BusError::Config(format!(
                "bus.lease_bucket {:?}: use 1-64 letters, digits, '_' or '-'",
                self.lease_bucket
            )));
        }
        let (deployment, _) = self.deployment_stream();
        if !name_ok(&deployment, b"") {
            return Err(BusError::Config(format!(
                "bus.stream {:?}: at most 53 characters (the deployment stream {deployment:?} must fit in 64)",
                self.stream
            )));
        }
        if self.lease_bucket == deployment
            || self.subject_prefix.split('.').next() == Some(deployment.as_str())
        {
            return Err(BusError::Config(format!(
                "bus.lease_bucket and bus.subject_prefix must not be {deployment:?}: that is the deployment stream's"
            )));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(BusError::Config("bus.replicas must be 1 to 5".into()));
        }
        if !(1..=1024).contains(&self.partitions) {
            return Err(BusError::Config("bus.partitions must be 1 to 1024".into()));
        }
        if self.max_ack_pending < 1 {
            return Err(BusError::Config(
                "bus.max_ack_pending must be greater than zero".into(),
            ));
        }
        if self.fetch_batch == 0 || self.fetch_batch as i64 > self.max_ack_pending {
            return Err(BusError::Config(
                "bus.fetch_batch must be 1 to bus.max_ack_pending".into(),
            ));
        }
        if self.max_message_bytes < 4096 {
            return Err(BusError::Config(
                "bus.max_message_bytes must be at least 4096".into(),
            ));
        }
        self.duplicate_window()?;
        self.max_age()?;
        self.ack_wait()?;
        self.publish_timeout()?;
        let ttl = self.lease_ttl()?;
        if ttl < Duration::from_secs(1) {
            return Err(BusError::Config("bus.lease_ttl must be at least 1s".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_documented_and_valid() {
        let c = BusConfig::default();
        assert_eq!(c.kind, BusKind::None);
        assert_eq!(c.stream, "SCANWATCH_EVENTS");
        assert_eq!(c.partitions, 16);
        assert_eq!(c.replicas, 1);
        c.validate().unwrap();
        let n = BusConfig {
            kind: BusKind::Nats,
            ..BusConfig::default()
        };
        n.validate().unwrap();
        assert_eq!(n.subject(3), "scanwatch.events.3");
        assert_eq!(n.consumer_name(3), "scanwatch-agg-3");
    }

    #[test]
    fn an_unknown_kind_is_refused_when_read() {
        assert_eq!(BusKind::try_from("nats".to_string()), Ok(BusKind::Nats));
        assert_eq!(BusKind::try_from("none".to_string()), Ok(BusKind::None));
        let e = BusKind::try_from("kafka".to_string()).unwrap_err();
        assert_eq!(e, "bus.kind \"kafka\": expected \"none\" or \"nats\"");
    }

    #[test]
    fn cluster_urls_split_on_commas() {
        let c = BusConfig {
            kind: BusKind::Nats,
            url: "nats://a:1, nats://b:2,,nats://c:3".into(),
            ..BusConfig::default()
        };
        assert_eq!(c.urls(), ["nats://a:1", "nats://b:2", "nats://c:3"]);
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        let base = BusConfig {
            kind: BusKind::Nats,
            ..BusConfig::default()
        };
        let cases: Vec<(BusConfig, &str)> = vec![
            (
                BusConfig {
                    url: "http://x".into(),
                    ..base.clone()
                },
                "must start with nats://",
            ),
            (
                BusConfig {
                    url: " , ".into(),
                    ..base.clone()
                },
                "bus.url is empty",
            ),
            (
                BusConfig {
                    partitions: 0,
                    ..base.clone()
                },
                "bus.partitions",
            ),
            (
                BusConfig {
                    replicas: 7,
                    ..base.clone()
                },
                "bus.replicas",
            ),
            (
                BusConfig {
                    stream: "a.b".into(),
                    ..base.clone()
                },
                "bus.stream",
            ),
            (
                BusConfig {
                    stream: "S".repeat(60),
                    ..base.clone()
                },
                "at most 53 characters",
            ),
            (
                BusConfig {
                    lease_bucket: "SCANWATCH_EVENTS_DEPLOYMENT".into(),
                    ..base.clone()
                },
                "the deployment stream's",
            ),
            (
                BusConfig {
                    subject_prefix: "SCANWATCH_EVENTS_DEPLOYMENT.events".into(),
                    ..base.clone()
                },
                "the deployment stream's",
            ),
            (
                BusConfig {
                    subject_prefix: "a..b".into(),
                    ..base.clone()
                },
                "bus.subject_prefix",
            ),
            (
                BusConfig {
                    duplicate_window: "1500ms".parse().unwrap(),
                    ..base.clone()
                },
                "bus.duplicate_window",
            ),
            (
                BusConfig {
                    fetch_batch: 10_000,
                    ..base.clone()
                },
                "bus.fetch_batch",
            ),
            (
                BusConfig {
                    lease_ttl: "10ms".parse().unwrap(),
                    ..base.clone()
                },
                "bus.lease_ttl",
            ),
        ];
        for (c, want) in cases {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
