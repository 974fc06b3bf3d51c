//! The centre's clockwork: what a running centre does as time passes, whether or
//! not anything arrives. Windows close on the centre's clock ([`Centre::tick`],
//! every second), the pipeline is checkpointed (every minute: a restart replays at
//! most that minute's events), old data is pruned (hourly), and the ends of surges
//! are told to the notification sinks (every 30 s).
//!
//! [`Housekeeping`] runs the four on one thread of its own (each is short, and all
//! take the same store lock, so running them side by side would gain nothing) until
//! it is stopped. The scale-out detector runs the same steps from its lease loop.
//! The time comes from the caller's clock; waits use the monotonic clock.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scanwatch_event::{Clock, Timestamp};

use crate::{AlertHook, Centre, CentreError, SharedStore};

/// How often windows are closed on the centre's clock.
pub const TICK_EVERY: Duration = Duration::from_secs(1);
/// How often the pipeline is checkpointed.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);
/// How often old data is pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the ends of surges are looked for (the sinks get `resolved` once).
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// How often each step runs (the constants above by default; tests run it faster).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub tick: Duration,
    pub checkpoint: Duration,
    pub prune: Duration,
    pub resolve: Duration,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            tick: TICK_EVERY,
            checkpoint: CHECKPOINT_EVERY,
            prune: PRUNE_EVERY,
            resolve: RESOLVE_EVERY,
        }
    }
}

/// How long data is kept, in milliseconds (`[retention]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Raw events.
    pub events_ms: i64,
    /// Closed windows and warnings.
    pub windows_ms: i64,
}

/// Prunes what is older than `keep` at `now`; returns the events and windows
/// removed (logged when any were).
pub fn prune(
    store: &SharedStore,
    now: Timestamp,
    keep: Retention,
) -> Result<(u64, u64), CentreError> {
    let mut s = crate::centre::lock(store)?;
    let (e, w) = s.prune(
        Timestamp(now.0.saturating_sub(keep.events_ms)),
        Timestamp(now.0.saturating_sub(keep.windows_ms)),
    )?;
    if e + w > 0 {
        tracing::info!(
            events = e,
            windows = w,
            "retention: pruned {e} events and {w} windows"
        );
    }
    Ok((e, w))
}

/// Takes a checkpoint of the centre's pipeline; a failure is logged (the next start
/// then replays more).
pub fn checkpoint(centre: &Centre, now: Timestamp) {
    let started = Instant::now();
    match centre.checkpoint(now) {
        Ok(Some(c)) => tracing::debug!(
            mark = c.mark,
            bytes = c.bytes,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint taken"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
    }
}

/// Tells `resolve` each surge whose incident is over (the hook sends each once per
/// sink); returns how many were told.
pub fn resolve_over(store: &SharedStore, resolve: &AlertHook) -> Result<usize, CentreError> {
    let over = {
        let s = crate::centre::lock(store)?;
        crate::incidents::over(&*s)?
    };
    for (id, w) in &over {
        resolve(*id, w);
    }
    Ok(over.len())
}

/// The steps of the clockwork, by index.
const JOBS: [&str; 4] = ["tick", "checkpoint", "retention", "resolve"];

fn run_job(
    job: usize,
    centre: &Centre,
    clock: &Clock,
    keep: Retention,
    resolve: Option<&AlertHook>,
) {
    match job {
        0 => {
            if let Err(e) = centre.tick(clock()) {
                tracing::warn!(error = %e, "tick failed");
            }
        }
        1 => checkpoint(centre, clock()),
        2 => {
            if let Err(e) = prune(&centre.store, clock(), keep) {
                tracing::warn!(error = %e, "retention failed");
            }
        }
        _ => {
            if let Some(hook) = resolve {
                if let Err(e) = resolve_over(&centre.store, hook) {
                    tracing::warn!(error = %e, "notify: cannot read the incidents");
                }
            }
        }
    }
}

/// The clockwork of a running single-process centre, on a thread of its own.
pub struct Housekeeping {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Housekeeping {
    /// Starts ticking, checkpointing, pruning to `keep` and (with a `resolve` hook)
    /// telling the ends of surges. The first tick and resolve check are at once; the
    /// first checkpoint and prune after their period (the caller did them at start).
    pub fn spawn(
        centre: Centre,
        clock: Clock,
        keep: Retention,
        resolve: Option<AlertHook>,
    ) -> std::io::Result<Housekeeping> {
        Housekeeping::spawn_with(centre, clock, keep, resolve, Schedule::default())
    }

    /// [`Housekeeping::spawn`] on another schedule.
    pub fn spawn_with(
        centre: Centre,
        clock: Clock,
        keep: Retention,
        resolve: Option<AlertHook>,
        every: Schedule,
    ) -> std::io::Result<Housekeeping> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || {
                let start = Instant::now();
                let mut due = [start, start + every.checkpoint, start + every.prune, start];
                let every = [every.tick, every.checkpoint, every.prune, every.resolve];
                loop {
                    let next = due.iter().copied().min().unwrap_or(start);
                    match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
                        Err(RecvTimeoutError::Timeout) => {}
                        // Stopped, or the handle dropped.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let now = Instant::now();
                    for (job, at) in due.iter_mut().enumerate() {
                        if *at > now {
                            continue;
                        }
                        // The next one a period after this one was due, or a period
                        // from now when it ran late (no burst of missed runs).
                        let next = *at + every[job];
                        *at = if next > now { next } else { now + every[job] };
                        // A step that panics costs that run only: the clockwork
                        // goes on (the next tick, checkpoint, prune).
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run_job(job, &centre, &clock, keep, resolve.as_ref());
                        }));
                        if ran.is_err() {
                            tracing::error!(
                                job = JOBS[job],
                                "housekeeping: the {} step panicked",
                                JOBS[job]
                            );
                        }
                    }
                }
            })?;
        Ok(Housekeeping {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the clockwork and waits for the step under way to finish.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Housekeeping {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}
