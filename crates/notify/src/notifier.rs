//! The notifier: the hook the centre calls with each stored warning, one queue and
//! one tokio task per sink (so a slow or failing sink delays nobody else, and each
//! sink sees warnings in the order they were stored), retries with exponential
//! backoff, dead letters, and counters for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scanwatch_event::metrics::{labels, Exposition, MetricKind};
use scanwatch_event::Timestamp;
use scanwatch_store::{DeadLetter, SinkStore};
use tokio::sync::mpsc;

use crate::config::{NotifyConfig, RetryConfig, SinkConfig};
use crate::filter::Filter;
use crate::sink::{Sink, SinkError};
use crate::state::{Decision, SurgeState};
use crate::warning::{Event, Notification, Warning};
use crate::NotifyError;

/// Where the notifier keeps what each sink sent and its dead letters: the store's
/// sink role only (a connection of its own to the centre's store).
pub type SharedStore = Arc<Mutex<Box<dyn SinkStore>>>;
/// Where "now" comes from (the wall clock in the server; fixed in tests).
pub use scanwatch_event::Clock;
/// The hook the collector calls (same type as `scanwatch_collector::AlertHook`).
pub type Hook = Arc<dyn Fn(i64, &scanwatch_alert::Warning) + Send + Sync>;

/// Warnings waiting per sink before new ones are dropped (and counted). Warnings are
/// rare (one per surging port and window), but the replay at start re-raises every
/// stored one at once: this holds weeks of them.
pub const QUEUE: usize = 16_384;

/// What one sink did since start.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Notifications delivered.
    pub sent: AtomicU64,
    /// Delivery attempts that failed (each retry counts).
    pub failed: AtomicU64,
    /// Notifications given up on and stored as dead letters.
    pub dead_lettered: AtomicU64,
    /// Warnings the sink's filters left out.
    pub filtered: AtomicU64,
    /// Later windows not sent (the surge did not grow, or `updates = false`).
    pub skipped: AtomicU64,
    /// Warnings already handled by this sink (the replay at start).
    pub duplicate: AtomicU64,
    /// Warnings dropped because the queue was full or the notifier closed.
    pub dropped: AtomicU64,
    /// Store errors (the warning is not sent: without its state, it could be a
    /// duplicate).
    pub store_errors: AtomicU64,
}

/// A snapshot of one sink's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    pub kind: &'static str,
    pub sent: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub filtered: u64,
    pub skipped: u64,
    pub duplicate: u64,
    pub dropped: u64,
    pub store_errors: u64,
}

/// The counters of every sink, plus warnings that could not be read.
#[derive(Debug, Default)]
pub struct Counters {
    sinks: Vec<(String, &'static str, Arc<SinkCounters>)>,
    pub invalid: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> Vec<SinkStats> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.sinks
            .iter()
            .map(|(name, kind, c)| SinkStats {
                name: name.clone(),
                kind,
                sent: g(&c.sent),
                failed: g(&c.failed),
                dead_lettered: g(&c.dead_lettered),
                filtered: g(&c.filtered),
                skipped: g(&c.skipped),
                duplicate: g(&c.duplicate),
                dropped: g(&c.dropped),
                store_errors: g(&c.store_errors),
            })
            .collect()
    }

    /// Prometheus text exposition lines (HELP, TYPE, one sample per sink).
    pub fn prometheus(&self) -> String {
        let snap = self.snapshot();
        let mut out = Exposition::new();
        type Get = fn(&SinkStats) -> u64;
        let series: [(&str, &str, Get); 8] = [
            ("sent", "Notifications delivered.", |s| s.sent),
            (
                "failed",
                "Notification delivery attempts that failed (each retry counts).",
                |s| s.failed,
            ),
            (
                "dead_lettered",
                "Notifications given up on after the last attempt (stored as dead letters).",
                |s| s.dead_lettered,
            ),
            ("filtered", "Warnings a sink's filters left out.", |s| {
                s.filtered
            }),
            (
                "skipped",
                "Later windows of a surge not sent (no growth, or updates off).",
                |s| s.skipped,
            ),
            (
                "duplicate",
                "Warnings a sink had already handled (replayed at start).",
                |s| s.duplicate,
            ),
            (
                "dropped",
                "Warnings dropped because a sink's queue was full.",
                |s| s.dropped,
            ),
            (
                "store_errors",
                "Warnings not sent because the sink state could not be read or written.",
                |s| s.store_errors,
            ),
        ];
        for (name, help, get) in series {
            let samples: Vec<(String, u64)> = snap
                .iter()
                .map(|s| (labels(&[("sink", &s.name), ("kind", s.kind)]), get(s)))
                .collect();
            out.family(
                &format!("scanwatch_notify_{name}_total"),
                help,
                MetricKind::Counter,
                &samples,
            );
        }
        out.counter(
            "scanwatch_notify_invalid_total",
            "Warnings the notifier could not read.",
            self.invalid.load(Ordering::Relaxed),
        );
        out.finish()
    }
}

struct Inner {
    /// `None` once closed.
    senders: Mutex<Option<Vec<mpsc::Sender<Job>>>>,
    counters: Arc<Counters>,
    pending: AtomicU64,
}

/// Queues warnings to the sinks' tasks. Keep it alive as long as the hook is used;
/// [`Notifier::close`] lets the queued notifications finish.
pub struct Notifier {
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Worker {
    name: String,
    sink: Arc<dyn Sink>,
    filter: Filter,
    attempts: u32,
    initial: Duration,
    max: Duration,
    store: SharedStore,
    clock: Clock,
    counters: Arc<SinkCounters>,
    inner: Arc<Inner>,
}

impl Notifier {
    /// Builds every sink (reading CA files and the host name) and starts one task
    /// per sink on `rt`. Fails on an invalid config.
    pub fn spawn(
        config: &NotifyConfig,
        store: SharedStore,
        clock: Clock,
        rt: &tokio::runtime::Handle,
    ) -> Result<Notifier, NotifyError> {
        config.validate()?;
        let mut built = Vec::new();
        for cfg in &config.sinks {
            built.push((cfg, crate::sink::build(cfg)?));
        }
        Self::spawn_sinks(built, store, clock, rt)
    }

    /// The same with sinks already built (tests, or a sink kind from outside).
    pub fn spawn_sinks(
        sinks: Vec<(&SinkConfig, Box<dyn Sink>)>,
        store: SharedStore,
        clock: Clock,
        rt: &tokio::runtime::Handle,
    ) -> Result<Notifier, NotifyError> {
        let mut counters = Counters::default();
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for (cfg, sink) in sinks {
            let err = |reason: String| NotifyError::Config {
                sink: cfg.name.clone(),
                reason,
            };
            let (initial, max) = cfg.retry.delays();
            let filter = Filter::new(cfg.filter.clone()).map_err(err)?;
            let c = Arc::new(SinkCounters::default());
            counters
                .sinks
                .push((cfg.name.clone(), sink.kind(), c.clone()));
            let (tx, rx) = mpsc::channel(QUEUE);
            senders.push(tx);
            let attempts = cfg.retry.attempts.max(1);
            workers.push((
                cfg.name.clone(),
                Arc::<dyn Sink>::from(sink),
                filter,
                attempts,
                initial,
                max,
                c,
                rx,
            ));
        }
        let inner = Arc::new(Inner {
            senders: Mutex::new(Some(senders)),
            counters: Arc::new(counters),
            pending: AtomicU64::new(0),
        });
        let tasks = workers
            .into_iter()
            .map(
                |(name, sink, filter, attempts, initial, max, counters, rx)| {
                    let w = Worker {
                        name,
                        sink,
                        filter,
                        attempts,
                        initial,
                        max,
                        store: store.clone(),
                        clock: clock.clone(),
                        counters,
                        inner: inner.clone(),
                    };
                    rt.spawn(w.run(rx))
                },
            )
            .collect();
        Ok(Notifier { inner, tasks })
    }

    /// The hook for `AppState::with_alert_hook`: reads the warning and queues it to
    /// every sink without blocking.
    pub fn hook(&self) -> Hook {
        let inner = self.inner.clone();
        Arc::new(move |id: i64, v: &scanwatch_alert::Warning| inner.enqueue_job(id, v, false))
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.inner.counters.clone()
    }

    /// Prometheus text lines of the counters, for `/metrics`.
    pub fn metrics(&self) -> String {
        self.inner.counters.prometheus()
    }

    /// Whether every queued warning has been handled.
    pub fn is_idle(&self) -> bool {
        self.inner.pending.load(Ordering::SeqCst) == 0
    }

    /// Waits until every queued warning has been handled, at most `timeout`; true
    /// when idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_idle() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// The hook that tells the sinks a surge is over, with its last warning: each
    /// sink that was told of the surge gets `resolved` once (docs/notify.md).
    pub fn resolve_hook(&self) -> Hook {
        let inner = self.inner.clone();
        Arc::new(move |id: i64, v: &scanwatch_alert::Warning| inner.enqueue_job(id, v, true))
    }

    /// Stops taking warnings and waits for the queued ones (their retries included).
    pub async fn close(self) {
        if let Ok(mut s) = self.inner.senders.lock() {
            s.take();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// What a sink's task is given: a warning, or the end of its surge.
#[derive(Clone)]
enum Job {
    Warning(Arc<Warning>),
    Resolved(Arc<Warning>),
}

impl Inner {
    fn enqueue_job(&self, id: i64, v: &scanwatch_alert::Warning, resolved: bool) {
        let w = match Warning::new(id, v) {
            Ok(w) if resolved => Job::Resolved(Arc::new(w)),
            Ok(w) => Job::Warning(Arc::new(w)),
            Err(e) => {
                self.counters.invalid.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(warning = id, error = %e, "notify: {e}");
                return;
            }
        };
        let Ok(senders) = self.senders.lock() else {
            return;
        };
        for (i, (_, _, c)) in self.counters.sinks.iter().enumerate() {
            let tx = senders.as_ref().and_then(|s| s.get(i));
            self.pending.fetch_add(1, Ordering::SeqCst);
            let queued = tx.is_some_and(|tx| tx.try_send(w.clone()).is_ok());
            if !queued {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Runs `f` on the sinks' store off the async threads.
fn blocking_store<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut dyn SinkStore) -> Result<T, scanwatch_store::StoreError> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, String>> {
    let store = store.clone();
    async move {
        tokio::task::spawn_blocking(move || {
            let mut s = store
                .lock()
                .map_err(|_| "store lock poisoned".to_string())?;
            f(s.as_mut()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("store task failed: {e}"))?
    }
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            match job {
                Job::Warning(w) => self.handle(&w).await,
                Job::Resolved(w) => self.resolve(&w).await,
            }
            self.inner.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Tells the sink that `w`'s surge is over, once, if it was told of the surge.
    async fn resolve(&self, w: &Arc<Warning>) {
        let now = (self.clock)();
        let key = w.surge_key();
        let (name, k) = (self.name.clone(), key.clone());
        let stored = blocking_store(&self.store, move |s| s.sink_state(&name, &k)).await;
        let mut st = match stored
            .and_then(|s| s.map_or(Ok(None), |j| SurgeState::from_json(&j).map(Some)))
        {
            Ok(Some(st)) => st,
            // Never told of this surge: nothing to end.
            Ok(None) => return,
            Err(e) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %self.name, warning = w.id, error = %e, "notify: sink {}: warning {}: {e}", self.name, w.id);
                return;
            }
        };
        if !st.should_resolve() {
            self.counters.duplicate.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let n = Arc::new(Notification {
            warning: (**w).clone(),
            event: Event::Resolved,
            now_ms: now.0,
        });
        let (payload, result, attempts) = match self.sink.render(&n) {
            Ok(p) => {
                let (r, a) = self.deliver(&n, &p).await;
                (p, r, a)
            }
            Err(e) => (String::new(), Err(e), 0),
        };
        let now = (self.clock)();
        match result {
            Ok(()) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(sink = %self.name, warning = w.id, attempts, error = %e, "notify: sink {}: the end of surge {key} not delivered after {attempts} attempts: {e}", self.name);
                self.dead_letter(format!("resolved:{key}"), attempts, &e, payload, now)
                    .await;
            }
        }
        // Sent or given up on: either way not tried again.
        st.mark_resolved();
        self.save(&key, &st, now).await;
    }

    async fn save(&self, key: &str, st: &SurgeState, now: Timestamp) -> bool {
        let (name, key, json) = (self.name.clone(), key.to_string(), st.to_json());
        match blocking_store(&self.store, move |s| {
            s.put_sink_state(&name, &key, &json, now)
        })
        .await
        {
            Ok(()) => true,
            Err(e) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %self.name, error = %e, "notify: sink {}: cannot save state: {e}", self.name);
                false
            }
        }
    }

    async fn handle(&self, w: &Arc<Warning>) {
        let now = (self.clock)();
        if self.filter.reject(w, now.0).is_some() {
            self.counters.filtered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let key = w.surge_key();
        let (name, k) = (self.name.clone(), key.clone());
        let stored = blocking_store(&self.store, move |s| s.sink_state(&name, &k)).await;
        let mut st = match stored
            .and_then(|s| s.map_or(Ok(SurgeState::default()), |j| SurgeState::from_json(&j)))
        {
            Ok(st) => st,
            Err(e) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %self.name, warning = w.id, error = %e, "notify: sink {}: warning {}: {e}", self.name, w.id);
                return;
            }
        };
        let event = match st.decide(w, self.filter.filters.updates) {
            Decision::Send(e) => e,
            Decision::AlreadyHandled => {
                self.counters.duplicate.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Decision::UpdatesOff | Decision::NotGrown => {
                st.mark_skipped(w);
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                self.save(&key, &st, now).await;
                return;
            }
        };
        let n = Arc::new(Notification {
            warning: (**w).clone(),
            event,
            now_ms: now.0,
        });
        let (payload, result, attempts) = match self.sink.render(&n) {
            Ok(p) => {
                let (r, a) = self.deliver(&n, &p).await;
                (p, r, a)
            }
            Err(e) => (
                serde_json::to_string(&w.record).unwrap_or_default(),
                Err(e),
                0,
            ),
        };
        let now = (self.clock)();
        match result {
            Ok(()) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                st.mark_delivered(w);
            }
            Err(e) => {
                tracing::warn!(
                    sink = %self.name,
                    warning = w.id,
                    attempts,
                    error = %e,
                    "notify: sink {}: warning {} not delivered after {attempts} attempts: {e}",
                    self.name,
                    w.id
                );
                self.dead_letter(format!("warning:{}", w.id), attempts, &e, payload, now)
                    .await;
                st.mark_dead(w);
            }
        }
        self.save(&key, &st, now).await;
    }

    /// Stores what was given up on (`key`: `warning:ID` or `resolved:SURGE`) with
    /// its payload, and counts it.
    async fn dead_letter(
        &self,
        key: String,
        attempts: u32,
        error: &SinkError,
        payload: String,
        at: Timestamp,
    ) {
        let d = DeadLetter {
            sink: self.name.clone(),
            key,
            attempts,
            error: error.to_string(),
            payload,
            at,
        };
        if let Err(e) = blocking_store(&self.store, move |s| s.put_dead_letter(&d)).await {
            self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                sink = %self.name,
                error = %e,
                "notify: sink {}: cannot store a dead letter: {e}",
                self.name
            );
        }
        self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    /// Tries up to `attempts` times; (result, attempts made).
    async fn deliver(&self, n: &Arc<Notification>, payload: &str) -> (Result<(), SinkError>, u32) {
        let payload: Arc<str> = Arc::from(payload);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (sink, n2, p) = (self.sink.clone(), n.clone(), payload.clone());
            let r = tokio::task::spawn_blocking(move || sink.deliver(&n2, &p))
                .await
                .unwrap_or_else(|e| Err(SinkError::Retry(format!("delivery task failed: {e}"))));
            match r {
                Ok(()) => return (Ok(()), attempt),
                Err(e) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    let last = attempt >= self.attempts || matches!(e, SinkError::Permanent(_));
                    if last {
                        return (Err(e), attempt);
                    }
                    tokio::time::sleep(RetryConfig::delay_after(self.initial, self.max, attempt))
                        .await;
                }
            }
        }
    }
}
