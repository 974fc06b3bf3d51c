//! The scale-out detector role (docs/scale.md): one detector at a time holds the
//! bus's lease, merges the partial aggregates the aggregators stored
//! ([`PartialMerge`]) and runs detection on the windows they make; the others stand
//! by and take over when the lease expires, rebuilding from the stored partials.
//! The holder also prunes old data (hourly) and tells the sinks the ends of surges,
//! as a single-process centre's housekeeping does.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scanwatch_centre::housekeeping::{self, PRUNE_EVERY, RESOLVE_EVERY};
use scanwatch_centre::{AlertHook, Centre, CentreError, PartialMerge, Retention, StepError};
use scanwatch_event::metrics::{labels, Exposition, MetricKind};
use scanwatch_event::Clock;

use crate::NatsBus;

/// The longest the detector waits for the aggregators to drain the bus before it
/// closes windows on what is committed.
pub const BARRIER_WAIT: Duration = Duration::from_secs(10);

/// How often the holder looks at the bus and the stored partials.
const STEP_EVERY: Duration = Duration::from_millis(300);

/// A fresh centre for the partials over a new store connection (built again after
/// a failed step); the error says why it could not be opened.
pub type FreshCentre = Box<dyn Fn() -> Result<Centre, String> + Send + Sync>;

/// What a detector needs besides the bus.
pub struct Detector {
    /// Names this process in the lease (unique per process).
    pub holder: String,
    /// The lease's time to live (`[bus] lease_ttl`); renewed every third of it.
    pub ttl: Duration,
    /// How long data is kept (`[retention]`).
    pub keep: Retention,
    /// The centre's clock (the wall clock, in the binary).
    pub clock: Clock,
    pub fresh: FreshCentre,
    /// Tells the sinks the ends of surges (`resolved`), if there are sinks.
    pub resolve: Option<AlertHook>,
    pub counters: Arc<DetectorCounters>,
}

impl Detector {
    /// Stands by for the lease and, while holding it, merges and detects, until
    /// `stop`. A bus or store error is waited out, never fatal: a detector that
    /// exits cannot take over.
    pub async fn run(&self, bus: &NatsBus, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            // Standby until the lease is free.
            let mut lease = loop {
                match bus.try_lease("detector", &self.holder).await {
                    Ok(Some(l)) => break l,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "detector: cannot take the lease yet: {e}")
                    }
                }
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(self.ttl / 3) => {}
                }
            };
            tracing::info!("detector: lease taken; rebuilding from the stored partial aggregates");
            self.counters.lease_held.store(1, Relaxed);
            self.counters.leases_taken.fetch_add(1, Relaxed);
            let mut holding = Holding::default();
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    () = &mut stop => {
                        let _ = lease.release().await;
                        return;
                    }
                    () = tokio::time::sleep(STEP_EVERY) => {}
                }
                if renewed.elapsed() >= self.ttl / 3 {
                    match lease.renew().await {
                        Ok(true) => renewed = Instant::now(),
                        Ok(false) => {
                            tracing::warn!("detector: lease lost; standing by");
                            self.counters.lease_held.store(0, Relaxed);
                            break;
                        }
                        // Not known whether it is still ours: keep trying until it
                        // would have expired.
                        Err(e) if renewed.elapsed() < self.ttl => {
                            tracing::warn!(error = %e, "detector: lease renewal failed: {e}");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "detector: lease not renewed within its ttl ({e}); standing by");
                            self.counters.lease_held.store(0, Relaxed);
                            break;
                        }
                    }
                }
                self.cycle(bus, &mut holding).await;
            }
        }
    }

    /// One cycle while holding the lease: the barrier, the ends of surges,
    /// retention, then a merge step.
    async fn cycle(&self, bus: &NatsBus, h: &mut Holding) {
        // Barrier: everything published so far is in the store, so the windows
        // close on all of it (as the embedded run's would). Under a stream that
        // never drains it is waited for at most BARRIER_WAIT; parts committed after
        // their window closed are then re-evaluated as late, as late events are.
        let up = bus.caught_up().await;
        self.counters
            .caught_up
            .store(u64::from(matches!(up, Ok(true))), Relaxed);
        match up {
            Ok(true) => h.waiting = None,
            Ok(false) => {
                if h.waiting.get_or_insert_with(Instant::now).elapsed() < BARRIER_WAIT {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "detector: consumer lag unknown: {e}");
                return;
            }
        }
        let (centre, progress) = match &h.current {
            Some((c, p)) => (c.clone(), p.clone()),
            None => match tokio::task::block_in_place(|| (self.fresh)()) {
                Ok(c) => {
                    let p = Arc::new(Mutex::new(PartialMerge::new()));
                    h.current = Some((c.clone(), p.clone()));
                    if let Ok(mut slot) = self.counters.centre.lock() {
                        *slot = Some(c.clone());
                    }
                    (c, p)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "detector: cannot open the store: {e}");
                    return;
                }
            },
        };
        // The ends of surges, to the sinks (`resolved`, once per sink and surge), by
        // the one detector holding the lease, over the centre's store connection.
        if let Some(resolve) = &self.resolve {
            if h.resolved.is_none_or(|t| t.elapsed() >= RESOLVE_EVERY) {
                h.resolved = Some(Instant::now());
                let (store, resolve) = (centre.store.clone(), resolve.clone());
                let r = tokio::task::spawn_blocking(move || {
                    housekeeping::resolve_over(&store, &resolve)
                })
                .await;
                match r {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "detector: cannot read the incidents: {e}")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "detector: the incident check failed: {e}")
                    }
                }
            }
        }
        // Retention, hourly, by the one detector holding the lease.
        if h.pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            h.pruned = Some(Instant::now());
            let (store, now, keep) = (centre.store.clone(), (self.clock)(), self.keep);
            let r =
                tokio::task::spawn_blocking(move || housekeeping::prune(&store, now, keep)).await;
            match r {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "retention failed: {e}"),
                Err(e) => tracing::warn!(error = %e, "retention failed: {e}"),
            }
        }
        let (c, now) = (centre.clone(), (self.clock)());
        let r = tokio::task::spawn_blocking(move || match progress.lock() {
            Ok(mut p) => p.step(&c, now),
            Err(_) => Err(StepError::Feed(CentreError::Poisoned("detector progress"))),
        })
        .await
        .unwrap_or_else(|_| Err(StepError::Feed(CentreError::Poisoned("detector step"))));
        let counted = if r.is_ok() {
            &self.counters.steps
        } else {
            &self.counters.steps_failed
        };
        counted.fetch_add(1, Relaxed);
        match r {
            Ok(st) => {
                self.counters
                    .partials_refused
                    .fetch_add(st.refused.len() as u64, Relaxed);
                for why in st.refused {
                    tracing::warn!(why = %why, "detector: partial aggregate left out: {why}");
                }
            }
            // Nothing fed: the next cycle reads again.
            Err(StepError::Read(e)) => {
                tracing::warn!(error = %e, "detector: cannot read the store: {e}");
            }
            // A step that failed half way may have merged part of its partials:
            // rebuilding from the stored partials is what a takeover does, so it
            // is exact.
            Err(StepError::Feed(e)) => {
                tracing::warn!(error = %e, "detector: step failed: {e}; rebuilding from the stored partial aggregates");
                h.current = None;
            }
        }
    }
}

/// What a detector keeps while it holds the lease.
#[derive(Default)]
struct Holding {
    /// The centre over the partials and the merge's progress; `None` until opened
    /// and after a failed step.
    current: Option<(Centre, Arc<Mutex<PartialMerge>>)>,
    /// Since when the bus has not drained.
    waiting: Option<Instant>,
    pruned: Option<Instant>,
    resolved: Option<Instant>,
}

/// What the detector role counts, for its `/metrics`.
#[derive(Default)]
pub struct DetectorCounters {
    lease_held: AtomicU64,
    leases_taken: AtomicU64,
    steps: AtomicU64,
    steps_failed: AtomicU64,
    partials_refused: AtomicU64,
    caught_up: AtomicU64,
    /// The counters of the centre while this detector holds the lease.
    centre: Mutex<Option<Centre>>,
}

impl DetectorCounters {
    /// Prometheus text of the counters.
    pub fn prometheus(&self) -> String {
        let mut out = Exposition::new();
        out.gauge(
            "scanwatch_detector_lease_held",
            "Whether this detector holds the lease (1) or stands by (0).",
            self.lease_held.load(Relaxed),
        );
        out.counter(
            "scanwatch_detector_leases_taken_total",
            "Times this detector took the lease.",
            self.leases_taken.load(Relaxed),
        );
        out.family(
            "scanwatch_detector_steps_total",
            "Merge steps over the stored partials, by outcome.",
            MetricKind::Counter,
            &[
                (labels(&[("outcome", "ok")]), self.steps.load(Relaxed)),
                (
                    labels(&[("outcome", "failed")]),
                    self.steps_failed.load(Relaxed),
                ),
            ],
        );
        out.counter(
            "scanwatch_detector_partials_refused_total",
            "Partial aggregates left out (damaged or newer).",
            self.partials_refused.load(Relaxed),
        );
        out.gauge(
            "scanwatch_detector_bus_caught_up",
            "Whether the aggregators had drained the bus at the last step (1) or not (0: lag).",
            self.caught_up.load(Relaxed),
        );
        if let Ok(c) = self.centre.lock() {
            if let Some(c) = c.as_ref() {
                let k = &c.counters;
                for (name, help, v) in [
                    (
                        "scanwatch_alerts_raised_total",
                        "Warnings raised.",
                        &k.alerts_raised,
                    ),
                    (
                        "scanwatch_windows_closed_total",
                        "Window cells closed and stored.",
                        &k.windows_closed,
                    ),
                    (
                        "scanwatch_windows_revised_total",
                        "Closed windows revised with late parts.",
                        &k.windows_revised,
                    ),
                    (
                        "scanwatch_windows_not_revised_total",
                        "Closed windows late parts reached that were not revised: older than the raw events' retention, their other parts are gone.",
                        &k.windows_not_revised,
                    ),
                ] {
                    out.counter(name, help, v.load(Relaxed));
                }
            }
        }
        out.finish()
    }
}
