//! The threat context the centre keeps in its store (imported with `scanwatch
//! intel import` and `scanwatch assets import`, and the IDS alerts sensors sent),
//! read back typed: advisories, assets, benign scanners, IDS alerts and the trusted
//! sensors. On the embedded store that is the data directory; in the scale-out
//! roles, the shared store.

use std::collections::BTreeSet;

use scanwatch_context::advisory::Advisory;
use scanwatch_context::assets::Asset;
use scanwatch_context::benign::BenignNet;
use scanwatch_context::ids::{self, IdsHit};
use scanwatch_store::{ContextItem, ContextKind, ContextStore};

use crate::CentreError;

/// Everything of the context a store holds.
#[derive(Clone, Debug, Default)]
pub struct StoredContext {
    pub advisories: Vec<Advisory>,
    pub assets: Vec<Asset>,
    pub benign: Vec<BenignNet>,
    /// Bounded per sensor and in all ([`ids::bound_hits`]).
    pub ids: Vec<IdsHit>,
    /// Sensors an operator trusts (their IDS alerts confirm alone).
    pub trusted: BTreeSet<String>,
}

impl StoredContext {
    /// Reads all of it; a stored document that does not read is an error naming it.
    pub fn read(store: &dyn ContextStore) -> Result<StoredContext, CentreError> {
        Ok(StoredContext {
            advisories: advisories(store)?,
            assets: assets(store)?,
            benign: benign(store)?,
            ids: ids(store)?,
            trusted: scanwatch_store::trust::trusted_sensors(store)?,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    items: Vec<ContextItem>,
    kind: ContextKind,
) -> Result<Vec<T>, CentreError> {
    items
        .into_iter()
        .map(|i| {
            serde_json::from_str(&i.json).map_err(|e| {
                CentreError::Stored(format!("stored {kind} {:?} cannot be read: {e}", i.key))
            })
        })
        .collect()
}

/// The imported advisories.
pub fn advisories(store: &dyn ContextStore) -> Result<Vec<Advisory>, CentreError> {
    decode(
        store.context_items(ContextKind::Advisory)?,
        ContextKind::Advisory,
    )
}

/// The imported assets.
pub fn assets(store: &dyn ContextStore) -> Result<Vec<Asset>, CentreError> {
    decode(store.context_items(ContextKind::Asset)?, ContextKind::Asset)
}

/// The imported benign-scanner networks.
pub fn benign(store: &dyn ContextStore) -> Result<Vec<BenignNet>, CentreError> {
    decode(
        store.context_items(ContextKind::Benign)?,
        ContextKind::Benign,
    )
}

/// IDS alerts the sensors sent (Suricata EVE, fast.log sources), bounded.
pub fn ids(store: &dyn ContextStore) -> Result<Vec<IdsHit>, CentreError> {
    let stored: Vec<ids::StoredHit> =
        decode(store.context_items(ContextKind::Ids)?, ContextKind::Ids)?;
    let mut hits: Vec<IdsHit> = stored.iter().filter_map(ids::StoredHit::to_hit).collect();
    ids::bound_hits(&mut hits, ids::MAX_HITS_PER_SENSOR, ids::MAX_HITS);
    Ok(hits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scanwatch_event::Timestamp;
    use scanwatch_store::sqlite::SqliteStore;

    #[test]
    fn an_empty_store_has_no_context_and_a_bad_document_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path()).unwrap();
        let c = StoredContext::read(&s).unwrap();
        assert!(c.advisories.is_empty() && c.assets.is_empty() && c.ids.is_empty());
        s.put_context_items(
            ContextKind::Asset,
            &[ContextItem {
                key: "198.18.0.9".into(),
                origin: "test".into(),
                json: "{not json".into(),
            }],
            Timestamp(0),
        )
        .unwrap();
        let e = StoredContext::read(&s).unwrap_err().to_string();
        assert!(e.contains("\"198.18.0.9\" cannot be read"), "{e}");
        assert!(advisories(&s).unwrap().is_empty(), "other kinds still read");
    }
}
