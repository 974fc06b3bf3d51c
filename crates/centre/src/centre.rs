//! [`Centre`]: the store, the pipeline, the threat context and the time model of
//! one centre process, and what happens when a batch, a heartbeat or a tick of the
//! clock arrives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::feed_order::FeedOrder;

use scanwatch_aggregate::{sensor_key, SensorKey, Window};
use scanwatch_alert::{alert_json, window_json, Warning};
use scanwatch_context::ContextData;
use scanwatch_detect::Alert;
use scanwatch_event::{parse_rfc3339, Event, Timestamp};
use scanwatch_pipeline::{Output, Pipeline};
use scanwatch_store::{
    AlertRow, BatchOutcome, CentreStore, ContextItem, ContextKind, Store, StoredCheckpoint,
    WindowRow,
};

use crate::checkpoint::{self, CentreState};
use crate::error::CentreError;
use crate::time::{SensorTime, TimeConfig, TimeKeeper};

/// The store, shared by the centre and the read API.
pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// The shared store locked, as the centre may use it: its role only
/// ([`CentreStore`]), so the centre's code cannot reach the dashboard's users,
/// tokens or the sinks' state even though it shares the API's connection.
pub(crate) struct Roles<'a>(MutexGuard<'a, Box<dyn Store>>);

impl std::ops::Deref for Roles<'_> {
    type Target = dyn CentreStore;
    fn deref(&self) -> &Self::Target {
        &**self.0
    }
}

impl std::ops::DerefMut for Roles<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut **self.0
    }
}

/// Locks the shared store for the centre's role.
pub(crate) fn lock(store: &SharedStore) -> Result<Roles<'_>, CentreError> {
    store
        .lock()
        .map(Roles)
        .map_err(|_| CentreError::Poisoned("store"))
}

/// Called with each stored warning (its id and its JSON, as the API shows it), e.g.
/// to queue notifications. It must not block: it runs on the ingest path.
pub type AlertHook = Arc<dyn Fn(i64, &scanwatch_alert::Warning) + Send + Sync>;

/// What the centre did, for `/metrics`.
#[derive(Debug, Default)]
pub struct CentreCounters {
    pub alerts_raised: AtomicU64,
    pub windows_closed: AtomicU64,
    /// Closed windows revised with late events.
    pub windows_revised: AtomicU64,
    /// Warnings that a revision showed no longer hold.
    pub alerts_withdrawn: AtomicU64,
    /// Events that arrived after their window had closed (then revised into it).
    pub late_events: AtomicU64,
    /// Stored events left out of the replay at start because they lie further in
    /// the future than the clock skew allows (stored by an older version).
    pub replay_future_events: AtomicU64,
    /// Closed windows late events reached that were not revised: older than
    /// the raw events' retention, so their other events are gone.
    pub windows_not_revised: AtomicU64,
}

/// The pipeline and the time model, locked together: what closes depends on both.
#[derive(Debug)]
struct Engine {
    pipeline: Pipeline,
    time: TimeKeeper,
}

/// Where a revision reads a closed window's complete data from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The stored raw events (the embedded centre).
    Events,
    /// The stored partial window aggregates (the scale-out detector, which never
    /// reads raw events).
    Partials,
}

/// A partial window aggregate made by a scale-out aggregator, decoded.
#[derive(Clone, Debug)]
pub struct Partial {
    pub window_start: i64,
    pub window: Window,
    /// Its latest event time.
    pub max_time: i64,
    /// Each sensor's latest event time in it (empty in parts stored by versions
    /// before 2: then every sensor in its cells is taken to have reached `max_time`).
    pub sensor_times: Vec<(SensorKey, i64)>,
}

/// What the replay at start did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Stored events fed again: every stored event, or with a checkpoint only
    /// those stored after it.
    pub events: usize,
    /// Stored events dated further ahead of the clock than the skew allows: left out.
    pub future_events: usize,
    /// The event mark of the checkpoint taken up, if one was.
    pub checkpoint: Option<u64>,
    /// Why a stored checkpoint was not used (then every stored event was replayed).
    pub checkpoint_refused: Option<String>,
}

/// What taking a checkpoint did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The store's event mark it covers.
    pub mark: u64,
    /// Its size as stored.
    pub bytes: usize,
}

/// One centre process below HTTP. Cheap to clone (everything is shared).
#[derive(Clone)]
pub struct Centre {
    pub store: SharedStore,
    pub context: Arc<RwLock<ContextData>>,
    pub counters: Arc<CentreCounters>,
    engine: Arc<Mutex<Engine>>,
    /// The surges raised so far by leading advisory, to link follow-on surges
    /// (kept in the checkpoint; a replay of every event renders every warning
    /// again and rebuilds it).
    lineage: Arc<Mutex<scanwatch_alert::lineage::Lineage>>,
    on_alert: Option<AlertHook>,
    source: Source,
    time: TimeConfig,
    /// Held (shared) from a batch's commit to its feed, and (alone) while a
    /// checkpoint reads the store's event mark and the state: a checkpoint never
    /// covers a committed batch it does not hold, nor holds one it does not cover.
    gate: Arc<RwLock<()>>,
    /// One checkpoint at a time.
    checkpointing: Arc<Mutex<()>>,
    /// Set when the state may no longer be what the stored events make of it (a
    /// step failed after the engine had moved, or the replay left events out):
    /// no checkpoint is taken from then on, so the next start takes up the last
    /// good one and replays everything after it.
    tainted: Arc<std::sync::atomic::AtomicBool>,
    /// Set while a [`Centre::count_due`] runs: others return at once instead of
    /// queueing on the store for nothing.
    counting: Arc<std::sync::atomic::AtomicBool>,
    /// Set when the last [`Centre::count_due`] that ran failed, cleared when one
    /// succeeds ([`Centre::counting_fails`]).
    count_failed: Arc<std::sync::atomic::AtomicBool>,
    /// The store's counting on a connection of its own (`EventStore::counter`), so
    /// [`Centre::count_due`] counts without holding the store batches commit
    /// through; `None`: the store's own `count_due`, under its lock.
    counter: Arc<Mutex<Option<Box<dyn scanwatch_store::Counting>>>>,
    /// The order of the feeds (`feed_order.rs`): a place is taken at a batch's
    /// commit and by a heartbeat, so what a sensor sends after an answer is fed
    /// after the answered batch, although the answer does not wait for its feed;
    /// [`Centre::settled`] waits for every place given out.
    order: Arc<FeedOrder>,
    /// Revises no closed window older than this before the clock
    /// ([`Centre::with_retention`]).
    revise_within: Option<i64>,
}

impl Centre {
    /// A centre over `store` whose windows close on every sensor's progress and its
    /// clock, with the default [`TimeConfig`] for the pipeline's windows.
    pub fn new(store: Box<dyn Store>, mut pipeline: Pipeline) -> Centre {
        let pc = *pipeline.config();
        pipeline.set_external_closing();
        let time = TimeConfig::new(pc.aggregate.window_ms, pc.aggregate.lateness_ms);
        Centre::build(store, pipeline, time, Source::Events)
    }

    /// The scale-out detector's centre: fed partial window aggregates
    /// ([`Centre::feed_partials`]) under the same time model, revising closed
    /// windows from the stored partials.
    pub fn for_partials(store: Box<dyn Store>, mut pipeline: Pipeline) -> Centre {
        let pc = *pipeline.config();
        pipeline.set_external_closing();
        let time = TimeConfig::new(pc.aggregate.window_ms, pc.aggregate.lateness_ms);
        Centre::build(store, pipeline, time, Source::Partials)
    }

    fn build(
        store: Box<dyn Store>,
        pipeline: Pipeline,
        time: TimeConfig,
        source: Source,
    ) -> Centre {
        // Without a counter of its own (it could not be opened), the centre
        // counts through the store, as before: slower, never wrong.
        let counter = scanwatch_store::EventStore::counter(&*store).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot open a connection apart for counting; counting through the store");
            None
        });
        Centre {
            counter: Arc::new(Mutex::new(counter)),
            store: Arc::new(Mutex::new(store)),
            context: Arc::new(RwLock::new(ContextData::builtin())),
            counters: Arc::new(CentreCounters::default()),
            engine: Arc::new(Mutex::new(Engine {
                pipeline,
                time: TimeKeeper::new(time),
            })),
            lineage: Arc::default(),
            on_alert: None,
            source,
            time,
            gate: Arc::default(),
            checkpointing: Arc::default(),
            tainted: Arc::default(),
            counting: Arc::default(),
            count_failed: Arc::default(),
            order: Arc::default(),
            revise_within: None,
        }
    }

    /// The same centre, revising no closed window older than `events_ms` (the
    /// raw events' retention, `[retention]`): retention has pruned, or is about
    /// to prune, the other events of such a window (raw or partial), and a
    /// revision from what is left would replace its stored counts with the late
    /// events' alone (a backfill of a sensor two months offline would show a
    /// port's history falling to its few events). Its late events are stored and
    /// counted on the desk until retention prunes them.
    pub fn with_retention(mut self, events_ms: i64) -> Centre {
        self.revise_within = Some(events_ms);
        self
    }

    /// The same centre with other time settings (before anything was fed).
    pub fn with_time_config(mut self, time: TimeConfig) -> Centre {
        self.time = time;
        if let Ok(mut e) = self.engine.lock() {
            e.time = TimeKeeper::new(time);
        }
        self
    }

    /// The same centre, attaching `ctx` to the warnings it stores.
    pub fn with_context(mut self, ctx: ContextData) -> Centre {
        self.context = Arc::new(RwLock::new(ctx));
        self
    }

    /// The same centre, calling `hook` with every stored warning.
    pub fn with_alert_hook(mut self, hook: AlertHook) -> Centre {
        self.on_alert = Some(hook);
        self
    }

    pub fn time_config(&self) -> &TimeConfig {
        &self.time
    }

    fn engine(&self) -> Result<MutexGuard<'_, Engine>, CentreError> {
        self.engine
            .lock()
            .map_err(|_| CentreError::Poisoned("pipeline"))
    }

    fn store(&self) -> Result<Roles<'_>, CentreError> {
        lock(&self.store)
    }

    /// Runs `f` on the pipeline (e.g. to ask for sensor names).
    pub fn with_pipeline<T>(&self, f: impl FnOnce(&mut Pipeline) -> T) -> Result<T, CentreError> {
        Ok(f(&mut self.engine()?.pipeline))
    }

    /// Every sensor's time as the centre sees it, by name.
    pub fn sensor_times(
        &self,
    ) -> Result<std::collections::BTreeMap<String, SensorTime>, CentreError> {
        Ok(self.engine()?.time.sensors().clone())
    }

    /// The first of `events` dated further ahead of `now` than the clock skew
    /// allows, as (its index, how far ahead in ms). Such a batch is refused whole.
    pub fn first_ahead(&self, events: &[Event], now: Timestamp) -> Option<(usize, i64)> {
        TimeKeeper::new(self.time).first_ahead(events.iter().map(|e| e.time), now)
    }

    /// Notes that a batch of `sensor` was refused for events `ahead_ms` in the future.
    pub fn refused_ahead(
        &self,
        sensor: &str,
        ahead_ms: i64,
        now: Timestamp,
    ) -> Result<(), CentreError> {
        // After the feed of what the sensor delivered before (which would clear it).
        let place = self.order.ticket();
        place.wait_turn();
        self.engine()?.time.refused_ahead(sensor, ahead_ms, now);
        Ok(())
    }

    /// Commits one batch of `sensor` (with the IDS alerts it carried, `ids`) and,
    /// when it is new, calls `accepted` (with the outcome and whether the IDS alerts
    /// were stored too) and feeds its events at `received`: one step, which a
    /// checkpoint never falls inside. A duplicate feeds nothing; it stores the
    /// IDS alerts again (their keys are the batch's: unchanged when they were
    /// stored), since the first attempt may have failed to (answered with the
    /// failure, which the sensor retries) or stopped between the batch's commit
    /// and theirs; when that stored any, it calls `accepted` with `true`, so they
    /// are taken in once.
    ///
    /// `accepted` runs once the batch is durable and has its place in the feed
    /// order, before its feed: the collector answers the sensor from it, so the
    /// sensor's next batch is on its way while this one is fed (a crash before the
    /// feed loses nothing: the next start replays the stored events). A duplicate
    /// returns once its original is fed.
    pub fn ingest(
        &self,
        sensor: &str,
        batch: &str,
        events: &[Event],
        ids: &[ContextItem],
        received: Timestamp,
        accepted: impl FnOnce(BatchOutcome, bool),
    ) -> Result<BatchOutcome, CentreError> {
        let _gate = self
            .gate
            .read()
            .map_err(|_| CentreError::Poisoned("checkpoint gate"))?;
        let (outcome, ids, place) = {
            let mut s = self.store()?;
            let o = s.commit_batch(sensor, batch, events, received)?;
            let accepted = matches!(o, BatchOutcome::Accepted { .. });
            let ids = if ids.is_empty() {
                Ok(0)
            } else {
                s.put_context_items(ContextKind::Ids, ids, received)
                    .map(|c| c.added)
            };
            // Under the store's lock: the feeds follow the commits.
            (o, ids, accepted.then(|| self.order.ticket()))
        };
        let added = ids.as_ref().map_or(0, |n| *n);
        let ids_failed = ids.err();
        match place {
            Some(place) => {
                // Durable: fed whatever else fails (its resend is a duplicate), and
                // a feed that fails leaves the state unfit for a checkpoint.
                accepted(outcome, ids_failed.is_none());
                place.wait_turn();
                if let Err(e) = self.feed(sensor, events, received) {
                    self.taint("a committed batch could not be fed", &e);
                    return Err(e);
                }
            }
            // A resend: its original may be answered and not yet fed (the sensor
            // gave up waiting); what follows this answer must see it fed.
            None => {
                self.order.settle();
                if added > 0 {
                    accepted(outcome, true);
                }
            }
        }
        match ids_failed {
            Some(e) => Err(e.into()),
            None => Ok(outcome),
        }
    }

    /// Returns once every batch already committed (so every batch answered) is
    /// fed, so a read that follows an answer sees what the batch did to windows
    /// and warnings.
    pub fn settled(&self) {
        self.order.settle();
    }

    /// Does the store's deferred bulk work if enough waits (`EventStore::count_due`:
    /// the embedded store counting stored blocks into its aggregates; on the
    /// store's counter of its own when it has one, so batches commit meanwhile). The server
    /// defers it (`EventStore::defer_counting`) and calls this after answering for
    /// a batch, so a sensor's next batch is read and parsed while it runs.
    /// Returns at once while another call runs (the ingest handler calls it after
    /// every batch: the calls are not queued on the store).
    pub fn count_due(&self) -> Result<(), CentreError> {
        self.count(false)
    }

    /// As [`Centre::count_due`], but counts whatever waits on the store's
    /// counter, however little (a store without one counts as `count_due`
    /// does): the server calls it while it refuses batches for the backlog.
    pub fn count_backlog(&self) -> Result<(), CentreError> {
        self.count(true)
    }

    fn count(&self, all: bool) -> Result<(), CentreError> {
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Ends a counting: clears `counting`, and marks it failed if it
        /// panicked (the counter's lock is then poisoned, which the next one
        /// reports as a failure), so no later counting is skipped for it.
        struct Running<'a>(&'a AtomicBool, &'a AtomicBool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.1.store(true, Ordering::Relaxed);
                }
                self.0.store(false, Ordering::Release);
            }
        }
        if self.counting.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _running = Running(&self.counting, &self.count_failed);
        let mut apart = match self.counter.lock() {
            Ok(apart) => apart,
            Err(poisoned) => {
                // A counting panicked (its transaction rolled back): a counter
                // afresh, or counting through the store, rather than none ever
                // again. (The store's lock after the counter's: nothing takes
                // them the other way round.)
                let mut apart = poisoned.into_inner();
                *apart = self
                    .store()
                    .ok()
                    .and_then(|s| scanwatch_store::EventStore::counter(&**s.0).ok())
                    .flatten();
                self.counter.clear_poison();
                tracing::warn!("a counting panicked: counting again on a counter afresh");
                apart
            }
        };
        let done = match apart.as_mut() {
            Some(c) if all => c.count_all().map_err(CentreError::from),
            Some(c) => c.count_due().map_err(CentreError::from),
            None => {
                drop(apart);
                self.store()
                    .and_then(|mut s| s.count_due().map_err(CentreError::from))
            }
        };
        self.count_failed.store(done.is_err(), Ordering::Relaxed);
        done
    }

    /// Whether the last counting that ran ([`Centre::count_due`],
    /// [`Centre::count_backlog`]) failed or panicked, until one succeeds: the
    /// server then takes batches whatever waits (refusing them would count
    /// nothing and only keep them from detection).
    pub fn counting_fails(&self) -> bool {
        self.count_failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Feeds the events of one batch of `sensor` the caller committed, received at
    /// `now` (the server commits and feeds through [`Centre::ingest`], which a
    /// checkpoint never falls inside; this is for callers that take no
    /// checkpoints while they feed: tests, benches, the demo):
    /// windows that are complete close, late events revise their windows.
    pub fn feed(&self, sensor: &str, events: &[Event], now: Timestamp) -> Result<(), CentreError> {
        let key = sensor_key(sensor);
        let window = self.time.window_ms;
        let counters = self.counters.clone();
        self.advance(now, None, |eng| {
            eng.pipeline.name_sensor(key, sensor);
            let cb = eng.pipeline.closed_before();
            let mut max: Option<Timestamp> = None;
            let mut last_ws = None;
            let mut late = 0u64;
            for e in events {
                if !eng.pipeline.push(key, e) {
                    late += u64::from(e.count);
                }
                max = max.max(Some(e.time));
                let ws = e.time.floor(window).0;
                if last_ws != Some(ws) && cb.is_none_or(|c| ws >= c) {
                    eng.time.opened(ws, now);
                    last_ws = Some(ws);
                }
            }
            counters.late_events.fetch_add(late, Ordering::Relaxed);
            eng.time.batch(sensor, max, now);
        })
    }

    /// A heartbeat of `sensor` at `now`, claiming (if `claim`) that everything it
    /// logged up to then is delivered. Returns how far ahead of the centre's clock
    /// the claim was, when it was further than the clock skew allows.
    pub fn heartbeat(
        &self,
        sensor: &str,
        claim: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<i64>, CentreError> {
        let mut ahead = None;
        let place = self.order.ticket();
        place.wait_turn();
        self.advance(now, None, |eng| {
            ahead = eng.time.heartbeat(sensor, claim, now);
        })?;
        Ok(ahead)
    }

    /// The centre's clock moved to `now`: windows whose deadline passed, or that
    /// every live sensor has passed, close.
    pub fn tick(&self, now: Timestamp) -> Result<(), CentreError> {
        self.advance(now, None, |_| {})
    }

    /// Feeds partial window aggregates made by scale-out aggregators, with the
    /// names of the sensors they may mention, at the detector's clock `now`: each
    /// sensor's progress moves to its latest event in them, windows that are
    /// complete close, and parts of closed windows revise them.
    pub fn feed_partials(
        &self,
        parts: &[Partial],
        sensors: &[String],
        now: Timestamp,
    ) -> Result<(), CentreError> {
        let window = self.time.window_ms;
        self.advance(now, None, |eng| {
            for s in sensors {
                eng.pipeline.name_sensor(sensor_key(s), s);
            }
            for p in parts {
                let cb = eng.pipeline.closed_before();
                eng.pipeline
                    .push_partial(p.window_start, &p.window, p.max_time);
                let ws = Timestamp(p.window_start).floor(window).0;
                if cb.is_none_or(|c| ws >= c) {
                    eng.time.opened(ws, now);
                }
                let legacy: Vec<(SensorKey, i64)>;
                let times = if p.sensor_times.is_empty() {
                    legacy = sensors_in(&p.window)
                        .into_iter()
                        .map(|k| (k, p.max_time))
                        .collect();
                    &legacy
                } else {
                    &p.sensor_times
                };
                for (k, t) in times {
                    let name = eng.pipeline.sensor_name(*k);
                    // Merged now: the sensor's last contact is the detector's clock.
                    eng.time.batch(&name, Some(Timestamp(*t)), now);
                }
            }
        })
    }

    /// What the store says of the sensors (the scale-out detector reads it every
    /// few seconds): their last batch and heartbeat, and the heartbeats'
    /// `complete_through` claims, taken into their progress.
    pub fn observe_sensors(
        &self,
        records: &[scanwatch_store::SensorRecord],
        now: Timestamp,
    ) -> Result<(), CentreError> {
        self.advance(now, None, |eng| {
            for r in records {
                eng.time.restore(&r.name, stored_time(r));
            }
        })
    }

    /// Takes a checkpoint of the centre's state into the store: the pipeline, each
    /// sensor's time and the surges' lineage, with the store's event mark. `None`
    /// when the store cannot say which events come after a point (ClickHouse), or
    /// for the scale-out detector (it rebuilds from partial aggregates).
    pub fn checkpoint(&self, now: Timestamp) -> Result<Option<CheckpointStats>, CentreError> {
        if self.source != Source::Events || self.tainted.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let _one = self
            .checkpointing
            .lock()
            .map_err(|_| CentreError::Poisoned("checkpoint"))?;
        let (mark, state, digest) = {
            let _gate = self
                .gate
                .write()
                .map_err(|_| CentreError::Poisoned("checkpoint gate"))?;
            let Some(mark) = self.store()?.event_mark()? else {
                return Ok(None);
            };
            let eng = self.engine()?;
            // Looked at again under the gate and the engine: a step that failed
            // while this waited for them (a feed under the gate, a heartbeat's
            // step under the engine) marked the state unfit before letting go.
            if self.tainted.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let lineage = self
                .lineage
                .lock()
                .map_err(|_| CentreError::Poisoned("lineage"))?
                .clone();
            let sensors: Vec<(String, SensorTime)> = eng
                .time
                .sensors()
                .iter()
                .map(|(n, t)| (n.clone(), *t))
                .collect();
            let max_seen = sensors
                .iter()
                .filter_map(|(_, t)| t.delivered_max.map(|m| m.0))
                .max();
            let state = CentreState {
                pipeline: eng.pipeline.state(),
                sensors,
                max_seen,
                lineage,
            };
            (
                mark,
                state,
                checkpoint::digest(eng.pipeline.settings_digest()),
            )
        };
        let bytes =
            checkpoint::encode(&state, digest).map_err(|e| CentreError::Encode(e.to_string()))?;
        let stats = CheckpointStats {
            mark,
            bytes: bytes.len(),
        };
        self.store()?.put_checkpoint(&StoredCheckpoint {
            mark,
            taken: now,
            state: bytes,
        })?;
        Ok(Some(stats))
    }

    /// No checkpoint from now on (said once, with why): the state may not be what
    /// the stored events make of it.
    fn taint(&self, why: &str, e: &dyn std::fmt::Display) {
        if !self.tainted.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "{why}: no more checkpoints until restart (the next start replays from the last one)");
        }
    }

    /// Takes up the stored checkpoint, if there is one this build and these
    /// settings made: returns its event mark and latest event time. A checkpoint
    /// that is refused is said in `stats` (and logged); nothing is changed then.
    fn resume(&self, stats: &mut ReplayStats) -> Result<Option<(u64, i64)>, CentreError> {
        if self.source != Source::Events {
            return Ok(None);
        }
        let Some(stored) = self.store()?.checkpoint()? else {
            return Ok(None);
        };
        let mut eng = self.engine()?;
        let digest = checkpoint::digest(eng.pipeline.settings_digest());
        let state = match checkpoint::decode(&stored.state, digest) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(mark = stored.mark, error = %e, "checkpoint not used; replaying every stored event");
                stats.checkpoint_refused = Some(e.to_string());
                return Ok(None);
            }
        };
        if let Err(e) = eng.pipeline.restore(state.pipeline) {
            tracing::warn!(mark = stored.mark, error = %e, "checkpoint not used; replaying every stored event");
            stats.checkpoint_refused = Some(format!("checkpoint does not decode: {e}"));
            return Ok(None);
        }
        for (name, t) in &state.sensors {
            eng.time.restore(name, *t);
        }
        *self
            .lineage
            .lock()
            .map_err(|_| CentreError::Poisoned("lineage"))? = state.lineage;
        stats.checkpoint = Some(stored.mark);
        Ok(Some((stored.mark, state.max_seen.unwrap_or(i64::MIN))))
    }

    /// Hands every stored warning that holds to the hook, oldest first, as the
    /// full replay does when it closes their windows again: what was stored but
    /// not yet sent when the centre stopped is sent now (each sink sends a warning
    /// once).
    fn raise_stored(&self) -> Result<(), CentreError> {
        let Some(hook) = &self.on_alert else {
            return Ok(());
        };
        let mut rows = self
            .store()?
            .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)?;
        rows.sort_by_key(|r| (r.window_start, r.id));
        for r in rows {
            match serde_json::from_str::<Warning>(&r.json) {
                Ok(w) if !w.withdrawn => hook(r.id, &w),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(warning = r.id, error = %e, "stored warning not readable; not raised")
                }
            }
        }
        Ok(())
    }

    /// Rebuilds the state at start (`now` is the centre's clock): from the stored
    /// checkpoint and the events stored after it, or, without a usable one, from
    /// every stored event; the events in time order, then each sensor's progress
    /// and last contact, then a tick. Events dated beyond the clock skew (stored by
    /// an older version) are left out and counted. The warnings are stored again
    /// under their ids.
    pub fn replay(&self, now: Timestamp) -> Result<ReplayStats, CentreError> {
        let mut stats = ReplayStats::default();
        let resumed = self.resume(&mut stats)?;
        if resumed.is_some() {
            self.raise_stored()?;
        }
        let (events, sensors) = {
            let s = self.store()?;
            let events = match resumed {
                Some((mark, _)) => s.events_after(mark)?,
                None => s.events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))?,
            };
            (events, s.sensors()?)
        };
        let mut max_seen = resumed.map_or(i64::MIN, |(_, m)| m);
        let limit = now.0.saturating_add(self.time.max_clock_skew_ms);
        let mut i = 0;
        while i < events.len() {
            let sensor = events[i].0.clone();
            let n = events[i..].iter().take_while(|(s, _)| *s == sensor).count();
            let run: Vec<&Event> = events[i..i + n]
                .iter()
                .map(|(_, e)| e)
                .filter(|e| e.time.0 <= limit)
                .collect();
            stats.future_events += n - run.len();
            stats.events += run.len();
            i += n;
            if run.is_empty() {
                continue;
            }
            let key = sensor_key(&sensor);
            let run_max = run.iter().map(|e| e.time).max();
            max_seen = max_seen.max(run_max.map_or(i64::MIN, |t| t.0));
            // In time order the largest event time is a true watermark: windows
            // close exactly as `analyze` closes them.
            let horizon = max_seen.saturating_sub(self.time.lateness_ms);
            self.advance(now, Some(horizon), |eng| {
                eng.pipeline.name_sensor(key, &sensor);
                for e in &run {
                    eng.pipeline.push(key, e);
                }
                eng.time.restore(
                    &sensor,
                    SensorTime {
                        delivered_max: run_max,
                        ..SensorTime::default()
                    },
                );
            })?;
        }
        // Taken up from a checkpoint: the windows close on its latest event time
        // too, as a replay of every event would close them.
        if resumed.is_some() && max_seen > i64::MIN {
            self.advance(
                now,
                Some(max_seen.saturating_sub(self.time.lateness_ms)),
                |_| {},
            )?;
        }
        self.counters
            .replay_future_events
            .fetch_add(stats.future_events as u64, Ordering::Relaxed);
        if stats.future_events > 0 {
            // A checkpoint's mark would pass their blocks: they would never be fed.
            self.taint(
                "the replay left out events dated beyond the clock skew",
                &stats.future_events,
            );
        }
        {
            let mut eng = self.engine()?;
            let cb = eng.pipeline.closed_before();
            for r in &sensors {
                eng.time.restore(&r.name, stored_time(r));
            }
            // The windows still open wait from now.
            let open: Vec<i64> = eng.pipeline.open_window_starts();
            for ws in open {
                if cb.is_none_or(|c| ws >= c) {
                    eng.time.opened(ws, now);
                }
            }
        }
        self.tick(now)?;
        Ok(stats)
    }

    /// Runs `push` on the engine, closes what is complete (on the time model, or
    /// on `replay_horizon` during the replay), revises the windows late events
    /// changed from the store, then stores the windows and warnings and hands new
    /// warnings to the hook.
    fn advance(
        &self,
        now: Timestamp,
        replay_horizon: Option<i64>,
        push: impl FnOnce(&mut Engine),
    ) -> Result<(), CentreError> {
        // Held until the outputs are stored, and on a failure until the state is
        // marked unfit: a checkpoint (which takes the engine, then looks at the
        // mark) never sees a window closed whose rows and warnings are not
        // stored.
        let mut guard = self.engine()?;
        let r = self.advance_once(&mut guard, now, replay_horizon, push);
        if let Err(e) = &r {
            // Windows may have closed or been revised without being stored.
            self.taint("a step of the centre failed", e);
        }
        drop(guard);
        r
    }

    fn advance_once(
        &self,
        guard: &mut Engine,
        now: Timestamp,
        replay_horizon: Option<i64>,
        push: impl FnOnce(&mut Engine),
    ) -> Result<(), CentreError> {
        let window = self.time.window_ms;
        let mut outs = Vec::new();
        let mut names = HashMap::new();
        push(guard);
        let eng = guard;
        let mut collect = |o: Output| outs.push(o);
        let horizon = replay_horizon.or_else(|| eng.time.horizon(now));
        if let Some(h) = horizon {
            let cb = h.div_euclid(window) * window;
            if eng.pipeline.closed_before().is_none_or(|c| cb > c) {
                eng.pipeline.close_through(h, &mut collect);
                eng.time.closed(cb);
            }
        }
        let oldest = self.revise_within.map(|ms| now.0.saturating_sub(ms));
        for ws in eng.pipeline.take_dirty() {
            if oldest.is_some_and(|o| ws < o) {
                self.counters
                    .windows_not_revised
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let w = self.complete_window(&eng.pipeline, ws)?;
            eng.pipeline.revise(ws, &w, &mut collect);
        }
        let mut name = |a: &Alert| {
            for (k, _) in &a.top_sensors {
                names
                    .entry(*k)
                    .or_insert_with(|| eng.pipeline.sensor_name(*k));
            }
        };
        for o in &outs {
            match o {
                Output::Alert(a) => name(a),
                Output::Revision(r) => r.alerts.iter().chain(&r.withdrawn).for_each(&mut name),
                Output::Window(_) => {}
            }
        }
        if outs.is_empty() {
            return Ok(());
        }
        self.store_outputs(outs, &names, now)
    }

    /// The complete aggregate of the closed window starting at `ws`, from the store:
    /// its raw events (embedded) or all its partial aggregates (scale-out).
    fn complete_window(&self, pipeline: &Pipeline, ws: i64) -> Result<Window, CentreError> {
        let (from, to) = (Timestamp(ws), Timestamp(ws + self.time.window_ms));
        match self.source {
            Source::Events => {
                let events = self.store()?.events_between(from, to)?;
                Ok(pipeline.window_of(events.iter().map(|(s, e)| (sensor_key(s), e))))
            }
            Source::Partials => {
                let rows = self
                    .store()?
                    .partials_between(from, to, Timestamp(i64::MIN))?;
                let limit = pipeline.config().aggregate.exact_limit;
                let mut w = Window::default();
                for r in rows.iter().filter(|r| r.window_start.0 == ws) {
                    // An undecodable part was reported when it was first read.
                    if let Ok(part) = scanwatch_aggregate::decode_window(&r.state) {
                        w.merge(&part, limit);
                    }
                }
                Ok(w)
            }
        }
    }

    fn store_outputs(
        &self,
        outs: Vec<Output>,
        names: &HashMap<SensorKey, String>,
        now: Timestamp,
    ) -> Result<(), CentreError> {
        let c = &self.counters;
        let mut windows = Vec::new();
        let mut fresh = Vec::new();
        let mut revised = Vec::new();
        let mut withdrawn = Vec::new();
        for o in outs {
            match o {
                Output::Window(w) => {
                    if w.window.late {
                        c.windows_revised.fetch_add(1, Ordering::Relaxed);
                    }
                    windows.extend(w.window.cells.iter().map(|cell| {
                        WindowRow {
                            window_start: w.window.start,
                            window_end: w.window.end,
                            proto: cell.proto.number(),
                            port: cell.port,
                            events: cell.events,
                            sources: cell.sources,
                            sensors: cell.sensors,
                            targets: cell.targets,
                            top_sources_json: serde_json::to_string(
                                &window_json(w.window.start, w.window.end, cell).top_sources,
                            )
                            .unwrap_or_else(|_| "[]".into()),
                        }
                    }));
                }
                Output::Alert(a) => fresh.push(*a),
                Output::Revision(r) => {
                    revised.extend(r.alerts);
                    withdrawn.extend(r.withdrawn);
                }
            }
        }
        c.alerts_raised
            .fetch_add(fresh.len() as u64, Ordering::Relaxed);
        c.windows_closed
            .fetch_add(windows.len() as u64, Ordering::Relaxed);
        c.alerts_withdrawn
            .fetch_add(withdrawn.len() as u64, Ordering::Relaxed);
        let name = |k: SensorKey| {
            names
                .get(&k)
                .cloned()
                .unwrap_or_else(|| format!("{k:016x}"))
        };
        let render = |a: &Alert, withdrawn: bool| -> Result<(AlertRow, Warning), CentreError> {
            let mut j = {
                let ctx = self
                    .context
                    .read()
                    .map_err(|_| CentreError::Poisoned("context"))?;
                alert_json(a, &ctx, &name)
            };
            j.withdrawn = withdrawn;
            if !withdrawn {
                self.lineage
                    .lock()
                    .map_err(|_| CentreError::Poisoned("lineage"))?
                    .link(&mut j);
            }
            let json = serde_json::to_string(&j).map_err(|e| CentreError::Encode(e.to_string()))?;
            Ok((
                AlertRow {
                    id: 0,
                    kind: a.subject(),
                    proto: a.proto.number(),
                    port: a.port,
                    window_start: a.window_start,
                    severity_rank: a.severity as u8,
                    json,
                },
                j,
            ))
        };
        let mut store = self.store()?;
        if !windows.is_empty() {
            store.put_windows(&windows)?;
        }
        let mut notify = Vec::new();
        // A window can close again after a restart (the replay closes on the
        // largest event time, the live centre also on heartbeats and deadlines):
        // what it says now replaces what was stored, under the same id. Every
        // closed window's warnings go to the hook (the sinks send each once).
        for a in &fresh {
            let (row, json) = render(a, false)?;
            notify.push((store.upsert_alert(&row)?.0, json));
        }
        // Revisions: every warning of the windows scored again is stored as it
        // stands now, under its id; new or changed ones are notified unless the
        // window is older than `notify_max_age` (backfill).
        let oldest = now.0.saturating_sub(self.time.notify_max_age_ms);
        for a in &revised {
            let (row, json) = render(a, false)?;
            let (id, changed) = store.upsert_alert(&row)?;
            if changed && a.late {
                c.alerts_raised.fetch_add(1, Ordering::Relaxed);
            }
            if changed && a.window_end.0 >= oldest {
                notify.push((id, json));
            }
        }
        for a in &withdrawn {
            let (row, _) = render(a, true)?;
            store.upsert_alert(&row)?;
        }
        drop(store);
        if let Some(hook) = &self.on_alert {
            for (id, w) in notify {
                hook(id, &w);
            }
        }
        Ok(())
    }
}

/// Every sensor a part counts in its cells.
fn sensors_in(w: &Window) -> Vec<SensorKey> {
    let mut keys: Vec<SensorKey> = w
        .cells
        .values()
        .flat_map(|c| c.sensors.top(usize::MAX, |a, b| a.cmp(b)))
        .map(|(k, _)| k)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A sensor's time as the store keeps it: its last batch or heartbeat, and its
/// last heartbeat's claim (capped at when that heartbeat arrived).
fn stored_time(r: &scanwatch_store::SensorRecord) -> SensorTime {
    let (hb_at, claim) = match &r.heartbeat {
        Some((at, json)) => (
            Some(*at),
            heartbeat_claim(json).map(|c| Timestamp(c.0.min(at.0))),
        ),
        None => (None, None),
    };
    SensorTime {
        last_contact: r.last_seen.max(hb_at),
        claimed: claim,
        ..SensorTime::default()
    }
}

/// The "complete through" claim of a stored heartbeat (RFC 3339), if it has one.
pub(crate) fn heartbeat_claim(json: &str) -> Option<Timestamp> {
    #[derive(serde::Deserialize)]
    struct Claim {
        complete_through: Option<String>,
    }
    let c: Claim = serde_json::from_str(json).ok()?;
    parse_rfc3339(c.complete_through.as_deref()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter whose counting panics.
    struct Panics;

    impl scanwatch_store::Counting for Panics {
        fn count_due(&mut self) -> Result<(), scanwatch_store::StoreError> {
            panic!("a counting that panics");
        }

        fn count_all(&mut self) -> Result<(), scanwatch_store::StoreError> {
            panic!("a counting that panics");
        }
    }

    /// A counting that panics ends as a failure (the server takes batches
    /// whatever waits meanwhile), and the next one runs, on a counter afresh,
    /// instead of returning at once for ever as if one still ran.
    #[test]
    fn a_panicked_counting_is_a_failure_and_skips_no_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = scanwatch_store::sqlite::SqliteStore::open(dir.path()).unwrap();
        let centre = Centre::new(
            Box::new(store),
            Pipeline::new(scanwatch_pipeline::PipelineConfig::new(
                3_600_000,
                7 * 86_400_000,
            )),
        );
        assert!(centre.count_due().is_ok(), "the store's counter counts");
        assert!(!centre.counting_fails());
        *centre.counter.lock().unwrap() = Some(Box::new(Panics));
        let c = centre.clone();
        assert!(std::thread::spawn(move || c.count_backlog())
            .join()
            .is_err());
        assert!(centre.counting_fails());
        assert!(centre.count_backlog().is_ok(), "the next counting ran");
        assert!(!centre.counting_fails());
        assert!(centre.counter.lock().is_ok(), "a counter afresh");
    }
}
