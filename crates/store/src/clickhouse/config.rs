//! `[store.clickhouse]`: where and how to reach ClickHouse, checked without I/O.

use super::*;

/// Where and how to reach ClickHouse (`[store.clickhouse]` in the server's TOML).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP URL(s), comma-separated. Without `cluster`: alternatives (replicas), the
    /// first reachable is used. With `cluster`: one server per shard, in shard order.
    pub url: String,
    /// Database name (default `scanwatch`).
    #[serde(default = "default_database")]
    pub database: String,
    /// Cluster name from the servers' `remote_servers`: tables become `*_local` on
    /// every server plus `Distributed` tables over the cluster.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Timeout of each request (`30s`, `500ms`; default `30s`).
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

pub(super) fn default_database() -> String {
    "scanwatch".to_string()
}

pub(super) fn default_timeout() -> String {
    "30s".to_string()
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("cluster", &self.cluster)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub(super) fn valid_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl ClickHouseConfig {
    /// A configuration with the defaults for everything but the URL(s).
    pub fn new(url: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: url.to_string(),
            database: default_database(),
            cluster: None,
            user: None,
            password: None,
            timeout: default_timeout(),
        }
    }

    /// The URLs of the list, trimmed, without a trailing `/`.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// The request timeout.
    pub fn timeout(&self) -> Result<Duration, StoreError> {
        let d = scanwatch_event::parse_span(&self.timeout)
            .map_err(|e| StoreError::Config(format!("timeout: {e}")))?;
        if d.is_zero() {
            return Err(StoreError::Config("timeout must be above zero".into()));
        }
        Ok(d)
    }

    /// Checks the configuration without any I/O.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Config(m));
        let urls = self.urls();
        if urls.is_empty() {
            return bad("url: no URL given".into());
        }
        for u in &urls {
            let rest = u
                .strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"));
            match rest {
                Some(r) if !r.is_empty() => {}
                _ => return bad(format!("url {u:?}: use http://host:port or https://…")),
            }
            if u.chars().any(|c| c.is_whitespace() || c.is_control()) || u.contains(['?', '#']) {
                return bad(format!(
                    "url {u:?}: no spaces, query or fragment (settings are set by scanwatch)"
                ));
            }
        }
        if !valid_ident(&self.database) {
            return bad(format!(
                "database {:?}: use 1-64 letters, digits or '_', not starting with a digit",
                self.database
            ));
        }
        if let Some(c) = &self.cluster {
            if !valid_ident(c) {
                return bad(format!(
                    "cluster {c:?}: use 1-64 letters, digits or '_', not starting with a digit"
                ));
            }
        }
        if let Some(u) = &self.user {
            if u.is_empty() || u.contains(':') || u.chars().any(char::is_control) {
                return bad(format!(
                    "user {u:?}: not empty, no ':' or control characters"
                ));
            }
        }
        if self.password.is_some() && self.user.is_none() {
            return bad("password given without user".into());
        }
        self.timeout().map(|_| ())
    }
}
