//! How far the operator trusts each sensor (`scanwatch admin sensor set-trust`),
//! kept as context items of kind [`ContextKind::SensorTrust`] keyed by sensor name, so both
//! store backends hold it without a schema change. What trust changes is in
//! docs/security.md: a trusted sensor's sighting corroborates a source for the
//! blocklist, and its IDS alerts confirm an explanation on their own.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{ContextItem, ContextKind, ContextStore, Store, StoreError};

/// A sensor's trust level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    /// One sensor among others: its word needs corroboration (the default).
    #[default]
    Normal,
    /// Run by the operator: its sightings and IDS alerts count on their own.
    Trusted,
}

impl TrustLevel {
    pub fn name(self) -> &'static str {
        match self {
            TrustLevel::Normal => "normal",
            TrustLevel::Trusted => "trusted",
        }
    }

    pub fn parse(s: &str) -> Option<TrustLevel> {
        [TrustLevel::Normal, TrustLevel::Trusted]
            .into_iter()
            .find(|t| t.name() == s)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustRecord {
    level: TrustLevel,
}

/// Sets a sensor's trust level.
pub fn set_trust(
    store: &mut dyn ContextStore,
    sensor: &str,
    level: TrustLevel,
    now: scanwatch_event::Timestamp,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(&TrustRecord { level })
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    store.put_context_items(
        ContextKind::SensorTrust,
        &[ContextItem {
            key: sensor.to_string(),
            origin: "admin".into(),
            json,
        }],
        now,
    )?;
    Ok(())
}

/// Every sensor's trust level that is not the default, by name (records that
/// cannot be read count as normal).
pub fn trust_levels(store: &dyn ContextStore) -> Result<Vec<(String, TrustLevel)>, StoreError> {
    Ok(store
        .context_items(ContextKind::SensorTrust)?
        .into_iter()
        .filter_map(|i| {
            let r: TrustRecord = serde_json::from_str(&i.json).ok()?;
            Some((i.key, r.level))
        })
        .collect())
}

/// Every sensor with its trust level.
pub fn sensors_with_trust(
    store: &dyn Store,
) -> Result<Vec<(crate::SensorRecord, TrustLevel)>, StoreError> {
    let levels: std::collections::BTreeMap<String, TrustLevel> =
        trust_levels(store)?.into_iter().collect();
    Ok(store
        .sensors()?
        .into_iter()
        .map(|s| {
            let l = levels.get(&s.name).copied().unwrap_or_default();
            (s, l)
        })
        .collect())
}

/// The names of the trusted sensors.
pub fn trusted_sensors(store: &dyn ContextStore) -> Result<BTreeSet<String>, StoreError> {
    Ok(trust_levels(store)?
        .into_iter()
        .filter(|(_, l)| *l == TrustLevel::Trusted)
        .map(|(n, _)| n)
        .collect())
}
