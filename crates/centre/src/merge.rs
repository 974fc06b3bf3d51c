//! The scale-out detector's merge of the stored partial aggregates: which partials
//! are new (each is merged once, by commit and window, whatever their window: a
//! part of a closed window revises it, docs/time.md), the sensors' records every
//! few seconds, and the IDS facts. The binary's detector role runs one step per
//! cycle while it holds the lease; the time of each step comes from its caller.

use std::collections::HashMap;

use scanwatch_aggregate::decode_partial;
use scanwatch_context::ids::StoredHit;
use scanwatch_event::Timestamp;
use scanwatch_store::{ContextKind, PartialRow};

use crate::{Centre, CentreError, Partial};

/// The scale-out detector's progress over the stored partial aggregates. Partials
/// committed since `cursor − COMMIT_MARGIN` are read, whatever their window
/// (a part of a closed window revises it, docs/time.md); those already merged
/// (by commit and window) are skipped, so each is merged once. After each step
/// `cursor` moves to the latest commit stamp seen: a partial visible more than
/// `COMMIT_MARGIN` after its aggregator stamped it is not seen until the next
/// rebuild (a restart or takeover, which reads everything).
pub struct PartialMerge {
    cursor: i64,
    /// When the sensor records (heartbeats, last batches) were last read.
    sensors_read: Option<Timestamp>,
    /// (commit, window start) → commit stamp, of what was merged.
    merged: HashMap<(u64, i64), i64>,
    ids_seen: usize,
}

/// How often the detector reads the sensor records (heartbeats, last batches).
const SENSORS_EVERY_MS: i64 = 2_000;

/// How far back of the newest commit stamp seen the detector reads again: covers
/// a commit whose last insert took long (ClickHouse's 30 s timeout, retried) and
/// aggregator clocks that disagree by up to that much.
const COMMIT_MARGIN_MS: i64 = 300_000;

/// Why a detector step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Nothing was merged: the step can simply be tried again.
    #[error("cannot read the store: {0}")]
    Read(CentreError),
    /// The pipeline may be part-fed: rebuild it from the stored partials.
    #[error("{0}")]
    Feed(CentreError),
}

/// What one step could not merge.
#[derive(Debug, Default)]
pub struct Stepped {
    /// Partials that cannot be read (damaged or from a newer build): left out,
    /// each reported once.
    pub refused: Vec<String>,
}

impl Default for PartialMerge {
    fn default() -> Self {
        PartialMerge::new()
    }
}

impl PartialMerge {
    pub fn new() -> PartialMerge {
        PartialMerge {
            cursor: i64::MIN,
            sensors_read: None,
            merged: HashMap::new(),
            ids_seen: 0,
        }
    }

    /// Merges what is new in the store at `now` (the caller's clock). A failed
    /// read (`StepError::Read`) merged nothing, so the step can simply be tried
    /// again; a failure while feeding (`StepError::Feed`) leaves the pipeline
    /// part-fed.
    pub fn step(&mut self, centre: &Centre, now: Timestamp) -> Result<Stepped, StepError> {
        let read = || -> Result<_, CentreError> {
            let s = crate::centre::lock(&centre.store)?;
            Ok((
                // By commit stamp only, whatever their window: a part of a
                // closed window revises it (docs/time.md).
                s.partials_between(
                    Timestamp(i64::MIN),
                    Timestamp(i64::MAX),
                    Timestamp(self.cursor.saturating_sub(COMMIT_MARGIN_MS)),
                )?,
                s.context_items(ContextKind::Ids)?,
            ))
        };
        let (parts, ids) = read().map_err(StepError::Read)?;
        let records = || -> Result<Vec<scanwatch_store::SensorRecord>, CentreError> {
            let s = crate::centre::lock(&centre.store)?;
            Ok(s.sensors()?)
        };
        // The sensors' heartbeats and last batches every few seconds (one row
        // per sensor: not every cycle), and the sensor list whenever a new
        // partial names a sensor the pipeline has no name for.
        let fresh = if self
            .sensors_read
            .is_none_or(|t| now.0 - t.0 >= SENSORS_EVERY_MS || now.0 < t.0)
        {
            let r = records().map_err(StepError::Read)?;
            self.sensors_read = Some(now);
            Some(r)
        } else {
            None
        };
        let names = fresh.clone();
        let stepped = self.feed(
            centre,
            parts,
            ids,
            || match names {
                Some(r) => Ok(r.into_iter().map(|r| r.name).collect()),
                None => Ok(records()?.into_iter().map(|r| r.name).collect()),
            },
            now,
        )?;
        if let Some(r) = fresh {
            centre.observe_sensors(&r, now).map_err(StepError::Feed)?;
        }
        Ok(stepped)
    }

    /// Merges `parts` (each once) and the IDS facts; `sensors` is asked for the
    /// sensor names only when a new part names a sensor not yet named. A failed
    /// `sensors` read changes nothing (`StepError::Read`).
    pub fn feed(
        &mut self,
        centre: &Centre,
        parts: Vec<PartialRow>,
        ids: Vec<scanwatch_store::ContextItem>,
        sensors: impl FnOnce() -> Result<Vec<String>, CentreError>,
        now: Timestamp,
    ) -> Result<Stepped, StepError> {
        let mut new = Vec::new();
        let mut seen = Vec::new();
        let mut refused = Vec::new();
        for p in parts {
            let key = (p.commit, p.window_start.0);
            if self.merged.contains_key(&key) {
                continue;
            }
            seen.push((key, p.committed.0));
            match decode_partial(&p.state) {
                Ok((w, times)) => new.push(Partial {
                    window_start: p.window_start.0,
                    window: w,
                    max_time: p.max_time.0,
                    sensor_times: times,
                }),
                Err(e) => refused.push(format!(
                    "commit {:016x}, window {}: {e}",
                    p.commit, p.window_start
                )),
            }
        }
        let unnamed = centre
            .with_pipeline(|pl| {
                new.iter().any(|p| {
                    p.sensor_times.iter().any(|(k, _)| !pl.knows_sensor(*k))
                        || p.window.cells.values().any(|c| {
                            c.sensors
                                .top(usize::MAX, |a, b| a.cmp(b))
                                .iter()
                                .any(|(k, _)| !pl.knows_sensor(*k))
                        })
                })
            })
            .map_err(StepError::Feed)?;
        let names = if unnamed {
            sensors().map_err(StepError::Read)?
        } else {
            Vec::new()
        };
        // From here on the step counts as taken.
        for (key, committed) in seen {
            self.merged.insert(key, committed);
            self.cursor = self.cursor.max(committed);
        }
        self.apply(centre, &new, &names, ids, now)
            .map_err(StepError::Feed)?;
        Ok(Stepped { refused })
    }

    /// Takes the IDS facts, feeds the new parts (naming `names`) and moves the
    /// horizon.
    fn apply(
        &mut self,
        centre: &Centre,
        new: &[Partial],
        names: &[String],
        ids: Vec<scanwatch_store::ContextItem>,
        now: Timestamp,
    ) -> Result<(), CentreError> {
        if ids.len() != self.ids_seen {
            let mut hits: Vec<_> = ids
                .iter()
                .filter_map(|i| serde_json::from_str::<StoredHit>(&i.json).ok())
                .filter_map(|h| h.to_hit())
                .collect();
            scanwatch_context::ids::bound_hits(
                &mut hits,
                scanwatch_context::ids::MAX_HITS_PER_SENSOR,
                scanwatch_context::ids::MAX_HITS,
            );
            centre
                .context
                .write()
                .map_err(|_| CentreError::Poisoned("context"))?
                .ids = hits;
            self.ids_seen = ids.len();
        }
        centre.feed_partials(new, names, now)?;
        let since = self.cursor.saturating_sub(COMMIT_MARGIN_MS);
        self.merged.retain(|_, committed| *committed >= since);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test may panic on a broken setup
    use super::*;
    use scanwatch_aggregate::{encode_window, sensor_key, Window};
    use scanwatch_event::WireEvent;
    use scanwatch_pipeline::{Pipeline, PipelineConfig};

    fn part(commit: u64, committed: i64, hour: i64, state: Vec<u8>) -> PartialRow {
        PartialRow {
            commit,
            committed: Timestamp(committed),
            window_start: Timestamp(hour * 3_600_000),
            max_time: Timestamp(hour * 3_600_000 + 1),
            state,
        }
    }

    /// The detector merges each partial once (a re-read skips it), refuses one
    /// it cannot decode with a reason (merging the rest), and closes windows on
    /// the partials' event time.
    #[test]
    fn partials_are_merged_once_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pcfg = PipelineConfig::new(3_600_000, 7 * 86_400_000);
        let mut pipeline = Pipeline::new(pcfg);
        pipeline.set_emit_windows(true);
        let state = Centre::for_partials(
            Box::new(scanwatch_store::sqlite::SqliteStore::open(dir.path()).unwrap()),
            pipeline,
        );
        let e = WireEvent::parse_line(
            r#"{"time":"1970-01-01T00:00:01Z","proto":"tcp","src":"192.0.2.1","dst":"198.18.0.1","dst_port":1025,"flags":"S"}"#,
        )
        .unwrap()
        .to_event()
        .unwrap();
        let mut w = Window::default();
        w.add(sensor_key("fw-1"), &e, 64);
        let good = encode_window(&w);
        let mut bad = good.clone();
        bad[1] ^= 0xff;
        let mut p = PartialMerge::new();
        let first = vec![part(1, 10, 0, good.clone()), part(2, 10, 0, bad)];
        let st = p
            .feed(&state, first.clone(), vec![], || Ok(vec![]), Timestamp(0))
            .unwrap();
        assert_eq!(st.refused.len(), 1);
        assert!(
            st.refused[0].contains("checksum mismatch"),
            "{:?}",
            st.refused
        );
        // The same rows again (the next cycle's re-read): nothing new.
        let st = p
            .feed(&state, first, vec![], || Ok(vec![]), Timestamp(0))
            .unwrap();
        assert!(st.refused.is_empty(), "a refused partial is reported once");
        // A partial three hours on moves the watermark: hour 0 closes with one
        // event (the good partial, merged once).
        p.feed(
            &state,
            vec![part(3, 20, 3, good)],
            vec![],
            || Ok(vec![]),
            Timestamp(0),
        )
        .unwrap();
        let rows = state
            .store
            .lock()
            .unwrap()
            .windows_between(Timestamp(0), Timestamp(3_600_000))
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].port, rows[0].events), (1025, 1));
    }
}
