//! The collector: the only part of scanwatch that knows HTTP. Sensors `POST` batches
//! of JSON Lines events to `/api/v1/events` with their token; the collector checks
//! the token and every limit, stores the batch durably and exactly once (the batch id
//! makes resends harmless), answers, and feeds the events to the pipeline.
//!
//! Built as `fn app(state) -> Router` so tests drive it with `oneshot`, no socket.

mod api;
pub mod blocklist;
mod error;
mod export;
mod feeds;
pub use blocklist::{nft_script, parse_blocklist_txt, valid_nft_table, DEFAULT_NFT_TABLE};
pub use scanwatch_centre::incidents::{self, read_warning};
mod incidents_api;
pub mod openapi;
pub mod ops;
pub mod serve;
pub mod web;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use scanwatch_centre::Centre;
use scanwatch_context::ids::{hit_from_wire, IdsHit, StoredHit};
use scanwatch_context::ContextData;
use scanwatch_event::batch::{self, BatchError, BodyError, Encoding};
use scanwatch_event::metrics::{labels, Exposition, MetricKind};
use scanwatch_event::{parse_rfc3339, Event, Timestamp};
use scanwatch_pipeline::Pipeline;
use scanwatch_store::{BatchOutcome, ContextItem, Store};
use serde::Serialize;

pub use error::AppError;
pub use scanwatch_centre::{AlertHook, CentreCounters};

/// Header that carries the sensor's batch id.
pub const BATCH_HEADER: &str = "x-scanwatch-batch";

/// Ingest limits. Every violation is a 4xx with a JSON error body, and is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body as sent (default 8 MiB).
    pub max_body_bytes: usize,
    /// Largest body after gzip decompression (default 64 MiB): no compression bombs.
    pub max_decompressed_bytes: usize,
    /// Most events in one batch (default 100,000).
    pub max_events_per_batch: usize,
    /// Sustained events per second one sensor may submit (default 100,000), with a
    /// burst of ten seconds' worth; over it, batches are refused with 429 and the
    /// sensor retries later from its spool.
    pub max_events_per_second_per_sensor: u64,
    /// Time for a request's headers (and a TLS handshake) to arrive (default 10 s).
    pub header_timeout: std::time::Duration,
    /// Time for a request's body to arrive once the token is checked (default 60 s).
    pub body_timeout: std::time::Duration,
    /// Open connections at most (default 1,024).
    pub max_connections: usize,
    /// Open connections from one client address at most (default 32).
    pub max_connections_per_client: usize,
    /// Requests handled at once at most; more are answered 503 (default 256).
    pub max_requests_in_flight: usize,
    /// Committed events from which batches are refused while they wait to be
    /// counted into the store's aggregates (`EventStore::uncounted`; default
    /// 500,000, 0: no bound). Every query reads the waiting events raw on top of
    /// the aggregates, so while a flood arrives faster than the store counts it,
    /// batches are answered 503 with `Retry-After` once this many wait (the
    /// sensors keep them in their spools and send them again after it) while the
    /// counting catches up. A soft bound: it is checked as a batch arrives (the
    /// count read with its token), so the batches already past the check still
    /// commit (one per request in flight at most: in practice a batch per
    /// sensor, at worst `max_requests_in_flight` × `max_events_per_batch`). Not
    /// while the counting fails. The server's config asks for at
    /// least twice the 20,000 events from which the store counts
    /// (`scanwatch_store::sqlite::AGGREGATE_EVERY`).
    pub max_uncounted_events: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 64 << 20,
            max_events_per_batch: 100_000,
            max_events_per_second_per_sensor: 100_000,
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_client: 32,
            max_requests_in_flight: 256,
            max_uncounted_events: 500_000,
        }
    }
}

/// A token bucket per sensor, refilled from the collector's clock.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: std::collections::HashMap<String, (f64, Timestamp)>,
}

impl RateLimiter {
    /// Takes `n` events from `sensor`'s bucket; false (and nothing taken) if it has
    /// fewer. The bucket holds ten seconds' worth and refills at `rate` per second.
    pub fn take(&mut self, sensor: &str, n: u64, rate: u64, now: Timestamp) -> bool {
        let cap = rate as f64 * 10.0;
        let (level, last) = self.buckets.entry(sensor.to_string()).or_insert((cap, now));
        let elapsed = (now.0 - last.0).max(0) as f64 / 1000.0;
        *level = (*level + elapsed * rate as f64).min(cap);
        *last = now;
        if *level >= n as f64 {
            *level -= n as f64;
            true
        } else {
            false
        }
    }

    /// Whole seconds until `sensor`'s bucket (as [`RateLimiter::take`] last left
    /// it) holds `n` events at `rate` a second: what a 429 asks the sensor to
    /// wait (at least one).
    pub fn wait_secs(&self, sensor: &str, n: u64, rate: u64) -> u64 {
        let level = self.buckets.get(sensor).map_or(0.0, |(l, _)| *l);
        let missing = (n as f64 - level).max(0.0);
        ((missing / rate.max(1) as f64).ceil() as u64).max(1)
    }
}

/// Counters of what the collector accepted and refused.
#[derive(Debug, Default)]
pub struct Counters {
    pub batches_accepted: AtomicU64,
    pub batches_duplicate: AtomicU64,
    pub events_accepted: AtomicU64,
    pub refused_unauthorized: AtomicU64,
    pub refused_too_large: AtomicU64,
    pub refused_malformed: AtomicU64,
    pub refused_encoding: AtomicU64,
    pub refused_rate_limited: AtomicU64,
    /// Batches refused because an event lies further ahead of the centre's clock
    /// than the clock skew allows (`docs/time.md`).
    pub refused_clock_ahead: AtomicU64,
    /// Batches whose body did not arrive within the body timeout.
    pub refused_timeout: AtomicU64,
    /// Batches refused (503) while at least `max_uncounted_events` waited to be
    /// counted into the store's aggregates.
    pub refused_backlog: AtomicU64,
    /// The committed events waiting to be counted, as of the last batch.
    pub uncounted_events: AtomicU64,
    /// Set while batches are refused for the backlog (its start and end are logged).
    pub shedding_backlog: std::sync::atomic::AtomicBool,
    /// Whether the counting into the aggregates failed, as of the last batch
    /// (the backlog's bound is off meanwhile).
    pub counting_failing: std::sync::atomic::AtomicBool,
    /// IDS alerts let go from memory over the bounds (still stored).
    pub ids_dropped: AtomicU64,
    /// Time from request to acknowledgement of accepted batches.
    pub ingest_latency: Histogram,
    /// What the front door refused (`serve`).
    pub door: serve::DoorCounters,
}

/// A Prometheus histogram with fixed buckets (seconds), lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn prometheus(&self, out: &mut Exposition, name: &str, help: &str) {
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(le, b)| (*le, b.load(Ordering::Relaxed)))
            .collect();
        out.histogram(
            name,
            help,
            &buckets,
            self.count.load(Ordering::Relaxed),
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        );
    }
}

impl Counters {
    /// Prometheus text exposition of the counters, with the centre's.
    pub fn prometheus(&self, centre: &CentreCounters) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = Exposition::new();
        let mut counter = |name: &str, help: &str, rows: &[(&str, u64)]| {
            let samples: Vec<(String, u64)> = rows
                .iter()
                .map(|(l, v)| {
                    // `reason=…` / `outcome=…`: one label, or none.
                    let l = l
                        .split_once('=')
                        .map_or(String::new(), |(k, v)| labels(&[(k, v)]));
                    (l, *v)
                })
                .collect();
            out.family(name, help, MetricKind::Counter, &samples);
        };
        counter(
            "scanwatch_batches_accepted_total",
            "Batches stored.",
            &[("", g(&self.batches_accepted))],
        );
        counter(
            "scanwatch_batches_duplicate_total",
            "Resent batches answered without storing again.",
            &[("", g(&self.batches_duplicate))],
        );
        counter(
            "scanwatch_events_accepted_total",
            "Events stored.",
            &[("", g(&self.events_accepted))],
        );
        counter(
            "scanwatch_requests_refused_total",
            "Ingest requests refused, by reason.",
            &[
                ("reason=unauthorized", g(&self.refused_unauthorized)),
                ("reason=too_large", g(&self.refused_too_large)),
                ("reason=malformed", g(&self.refused_malformed)),
                ("reason=encoding", g(&self.refused_encoding)),
                ("reason=rate_limited", g(&self.refused_rate_limited)),
                ("reason=clock_ahead", g(&self.refused_clock_ahead)),
                ("reason=timeout", g(&self.refused_timeout)),
                ("reason=backlog", g(&self.refused_backlog)),
            ],
        );
        counter(
            "scanwatch_connections_total",
            "Connections at the front door, by outcome (docs/security.md).",
            &[
                ("outcome=accepted", g(&self.door.connections_accepted)),
                ("outcome=refused", g(&self.door.connections_refused)),
                ("outcome=timed_out", g(&self.door.connections_timed_out)),
            ],
        );
        counter(
            "scanwatch_ids_alerts_dropped_total",
            "IDS alerts let go from memory over the per-sensor or total bound (still stored).",
            &[("", g(&self.ids_dropped))],
        );
        counter(
            "scanwatch_requests_shed_total",
            "Requests answered 503 because the most requests were in flight.",
            &[("", g(&self.door.requests_shed))],
        );
        counter(
            "scanwatch_alerts_raised_total",
            "Warnings raised by the detector.",
            &[("", g(&centre.alerts_raised))],
        );
        counter(
            "scanwatch_windows_closed_total",
            "Window cells (window, protocol, port) closed and stored.",
            &[("", g(&centre.windows_closed))],
        );
        counter(
            "scanwatch_windows_revised_total",
            "Closed windows revised with late events.",
            &[("", g(&centre.windows_revised))],
        );
        counter(
            "scanwatch_windows_not_revised_total",
            "Closed windows late events reached that were not revised: older than the raw events' retention, their other events are gone.",
            &[("", g(&centre.windows_not_revised))],
        );
        counter(
            "scanwatch_alerts_withdrawn_total",
            "Warnings a revision showed no longer hold.",
            &[("", g(&centre.alerts_withdrawn))],
        );
        counter(
            "scanwatch_late_events_total",
            "Events that arrived after their window had closed (revised into it).",
            &[("", g(&centre.late_events))],
        );
        out.gauge(
            "scanwatch_counting_failing",
            "1 while the counting into the aggregates fails (logged; batches are then taken whatever waits), as of the last batch.",
            u64::from(self.counting_failing.load(Ordering::Relaxed)),
        );
        out.gauge(
            "scanwatch_uncounted_events",
            "Stored events waiting to be counted into the aggregates, as of the last batch (batches are refused from limits.max_uncounted_events on).",
            g(&self.uncounted_events),
        );
        self.ingest_latency.prometheus(
            &mut out,
            "scanwatch_ingest_latency_seconds",
            "Time from receiving an ingest request to acknowledging the stored batch.",
        );
        out.finish()
    }
}

/// The clock the collector stamps batches with (injectable for tests).
pub use scanwatch_event::Clock;

/// Where ingest sends batches in the scale-out mode (the one publish trait, in the
/// centre crate; `scanwatch-bus` implements it).
pub use scanwatch_centre::{BatchPublisher, OutgoingBatch, PublishFuture, PublishReport};

/// Shared state of the HTTP app.
#[derive(Clone)]
pub struct AppState {
    /// The centre's runtime: ingested batches are fed to it after their commit.
    pub centre: Centre,
    /// The centre's store (the same one): ingest and every write use it.
    pub store: Arc<Mutex<Box<dyn Store>>>,
    /// Read connections beside the writer (SQLite WAL readers; docs/security.md):
    /// the read API and the dashboard query here, so a slow query never holds
    /// ingest back. Empty: reads share the writer's connection.
    pub readers: Arc<Vec<Mutex<Box<dyn Store>>>>,
    /// Which reader the next read tries first.
    next_reader: Arc<AtomicU64>,
    pub limits: Limits,
    pub counters: Arc<Counters>,
    pub clock: Clock,
    pub rate: Arc<Mutex<RateLimiter>>,
    /// Threat context attached to stored warnings (port facts, explanations,
    /// mitigations, exposed assets); built-in port knowledge by default. IDS alerts
    /// from sensors are added as they arrive.
    pub context: Arc<RwLock<ContextData>>,
    /// Dashboard state beside the store (login rate limits).
    pub web: Arc<web::auth::WebState>,
    /// When set, `/metrics` answers only with `Authorization: Bearer <token>`.
    pub metrics_token: Option<Arc<str>>,
    /// More Prometheus text for `/metrics` (the notification sinks' counters).
    pub extra_metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    /// When set, ingest publishes accepted batches here (and answers after the bus
    /// acknowledged them) instead of committing to the store and feeding the
    /// pipeline (the scale-out collector role).
    pub publisher: Option<Arc<dyn BatchPublisher>>,
}

impl AppState {
    pub fn new(
        store: Box<dyn Store>,
        pipeline: Pipeline,
        limits: Limits,
        clock: Clock,
    ) -> AppState {
        AppState::with_centre(Centre::new(store, pipeline), limits, clock)
    }

    /// The HTTP app over a centre built elsewhere.
    pub fn with_centre(centre: Centre, limits: Limits, clock: Clock) -> AppState {
        AppState {
            store: centre.store.clone(),
            readers: Arc::new(Vec::new()),
            next_reader: Arc::new(AtomicU64::new(0)),
            context: centre.context.clone(),
            centre,
            limits,
            counters: Arc::new(Counters::default()),
            clock,
            rate: Arc::new(Mutex::new(RateLimiter::default())),
            web: Arc::new(web::auth::WebState::default()),
            extra_metrics: None,
            metrics_token: None,
            publisher: None,
        }
    }

    /// The same state with read connections of its own for the read API and the
    /// dashboard (each opened on the same database).
    pub fn with_readers(mut self, readers: Vec<Box<dyn Store>>) -> AppState {
        self.readers = Arc::new(readers.into_iter().map(Mutex::new).collect());
        self
    }

    /// The same state, publishing ingested batches to the event bus.
    pub fn with_publisher(mut self, p: Arc<dyn BatchPublisher>) -> AppState {
        self.publisher = Some(p);
        self
    }

    /// The same state, appending `f()` to the `/metrics` text.
    pub fn with_extra_metrics(mut self, f: Arc<dyn Fn() -> String + Send + Sync>) -> AppState {
        self.extra_metrics = Some(f);
        self
    }

    /// The same state, calling `hook` with every stored warning.
    pub fn with_alert_hook(mut self, hook: AlertHook) -> AppState {
        self.centre = self.centre.with_alert_hook(hook);
        self
    }

    /// The same state, attaching `ctx` to the warnings it stores.
    pub fn with_context(mut self, ctx: ContextData) -> AppState {
        self.centre = self.centre.with_context(ctx);
        self.context = self.centre.context.clone();
        self
    }

    /// Runs `f` on the store off the async threads (SQLite calls block).
    pub(crate) async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, scanwatch_store::StoreError> + Send + 'static,
    ) -> Result<T, AppError> {
        let store = self.store.clone();
        blocking(move || {
            let mut guard = store
                .lock()
                .map_err(|_| AppError::internal("store lock poisoned"))?;
            f(guard.as_mut()).map_err(AppError::from)
        })
        .await
    }

    /// Runs a read-only `f` on a read connection (a free one if any, else the next
    /// in turn), off the async threads; on the writer's connection when there are
    /// no readers.
    pub(crate) async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, scanwatch_store::StoreError> + Send + 'static,
    ) -> Result<T, AppError> {
        // What the batches answered so far did to windows and warnings (waited
        // for before any store lock: the feed takes the writer's).
        let centre = self.centre.clone();
        if self.readers.is_empty() {
            let store = self.store.clone();
            return blocking(move || {
                centre.settled();
                let mut guard = store
                    .lock()
                    .map_err(|_| AppError::internal("store lock poisoned"))?;
                let r = f(guard.as_mut());
                drop(guard);
                read_result(&centre, r)
            })
            .await;
        }
        let readers = self.readers.clone();
        let first = self.next_reader.fetch_add(1, Ordering::Relaxed) as usize;
        blocking(move || {
            centre.settled();
            let n = readers.len();
            let free = (0..n).find_map(|i| readers[(first + i) % n].try_lock().ok());
            let mut guard = match free {
                Some(g) => g,
                None => readers[first % n]
                    .lock()
                    .map_err(|_| AppError::internal("reader lock poisoned"))?,
            };
            let r = f(guard.as_mut());
            drop(guard);
            read_result(&centre, r)
        })
        .await
    }

    /// Feeds events of one sensor to the centre (after their commit), at the
    /// collector's clock.
    pub fn feed(&self, sensor: &str, events: &[Event]) -> Result<(), AppError> {
        self.centre
            .feed(sensor, events, (self.clock)())
            .map_err(AppError::from)
    }

    /// Takes the IDS alerts of an accepted batch into the context, bounded: the
    /// newest per sensor and in all (docs/security.md); the store keeps them for
    /// the events' retention.
    fn take_ids(&self, hits: Vec<scanwatch_context::ids::IdsHit>) {
        if hits.is_empty() {
            return;
        }
        // A poisoned lock: the hits stay in the store and the next start reads them.
        let Ok(mut ctx) = self.context.write() else {
            tracing::warn!("context lock poisoned: ids alerts of a batch not taken in");
            return;
        };
        ctx.ids.extend(hits);
        let dropped = scanwatch_context::ids::bound_hits(
            &mut ctx.ids,
            scanwatch_context::ids::MAX_HITS_PER_SENSOR,
            scanwatch_context::ids::MAX_HITS,
        );
        self.counters
            .ids_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
    }
}

/// The HTTP app.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/api/v1/events", post(ingest))
        .route("/api/v1/heartbeat", post(heartbeat))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/alerts/{id}", get(api::alert))
        .route("/api/v1/alerts/{id}/stix", get(export::alert_stix))
        .route("/api/v1/alerts/{id}/misp", get(export::alert_misp))
        .route("/api/v1/incidents", get(incidents_api::list))
        .route("/api/v1/incidents/{id}", get(incidents_api::show))
        .route(
            "/api/v1/incidents/{id}/state",
            axum::routing::post(incidents_api::set_state),
        )
        .route("/api/v1/sensors", get(api::sensors))
        .route("/api/v1/topports", get(api::topports))
        .route("/api/v1/sources/{ip}", get(api::source))
        .route(
            "/api/v1/ports/{proto}/{port}/history",
            get(api::port_history),
        )
        .route("/api/v1/blocklist", get(feeds::blocklist_handler))
        .route("/feeds/alerts.atom", get(feeds::alerts_atom))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .merge(web::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The server is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text exposition of the counters", body = String, content_type = "text/plain"),
    (status = 401, description = "A metrics token is configured and the request does not carry it", body = openapi::ErrorBody)))]
async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> axum::response::Response {
    // The counters of every batch answered so far (its feed done), for those who
    // may read them.
    if ops::metrics_allowed(st.metrics_token.as_deref(), &headers) {
        let centre = st.centre.clone();
        let _ = tokio::task::spawn_blocking(move || centre.settled()).await;
    }
    ops::metrics_response(st.metrics_token.as_deref(), &headers, || {
        let mut text = st.counters.prometheus(&st.centre.counters);
        if let Some(f) = &st.extra_metrics {
            text.push_str(&f());
        }
        text
    })
}

/// Answer to an ingest request.
#[derive(Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct IngestReply {
    pub batch: String,
    /// Events stored by this request (0 for a duplicate).
    pub accepted: usize,
    /// True when the batch id had been accepted before: nothing was stored again.
    pub duplicate: bool,
}

fn valid_batch_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':'))
}

/// Reads a request body of at most `limit` bytes: over it, 413 with `too_large()`.
async fn read_body(
    body: axum::body::Body,
    limit: usize,
    timeout: std::time::Duration,
    too_large: impl FnOnce() -> String,
) -> Result<Bytes, AppError> {
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            AppError::Timeout(format!(
                "the request body did not arrive within {}",
                human_ms(timeout.as_millis() as i64)
            ))
        })?;
    read.map_err(|e| {
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over {
            AppError::TooLarge(too_large())
        } else {
            AppError::BadRequest("cannot read the request body".into())
        }
    })
}

/// A duration for people: "1d 2h", "5m", "3.2s".
pub fn human_ms(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    let sign = if ms < 0 { "-" } else { "" };
    match s {
        0..60 => format!("{sign}{:.1}s", ms.unsigned_abs() as f64 / 1000.0),
        60..3600 => format!("{sign}{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{sign}{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{sign}{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// A read's result. One that met a damaged aggregate (the store asked for the
/// aggregates to be counted again) starts that counting now, in a task of its
/// own, rather than after the next batch (which may be long in coming); so does
/// one that met it again during that recount (the counting then fails with the
/// way out, and `scanwatch_counting_failing` says so).
fn read_result<T>(
    centre: &Centre,
    r: Result<T, scanwatch_store::StoreError>,
) -> Result<T, AppError> {
    if let Err(
        scanwatch_store::StoreError::DamagedAggregate(_)
        | scanwatch_store::StoreError::DamageRecurs(_),
    ) = &r
    {
        let centre = centre.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = centre.count_due() {
                tracing::warn!(error = %e, "cannot count the stored events into the aggregates yet");
            }
        });
    }
    r.map_err(AppError::from)
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(e.to_string()))?
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Decompresses per `Content-Encoding` (gzip or zstd), never beyond the limit
/// (`scanwatch_event::batch`).
fn decode_body<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, AppError> {
    let value = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"));
    let encoding = Encoding::from_header(value)
        .ok_or_else(|| AppError::UnsupportedEncoding(value.unwrap_or("?").to_ascii_lowercase()))?;
    batch::decompress(encoding, body, limit).map_err(|e| match e {
        BodyError::TooLarge { .. } => AppError::TooLarge(e.to_string()),
        BodyError::Invalid { .. } => AppError::BadRequest(e.to_string()),
    })
}

/// A parsed batch: its events, the line number of each, and the IDS alerts among them.
type ParsedBatch = (Vec<Event>, Vec<usize>, Vec<IdsHit>);

/// Parses a JSON Lines body into events and the IDS alerts among them; the first
/// bad line refuses the whole batch (`scanwatch_event::batch`).
fn parse_batch(body: &[u8], max_events: usize) -> Result<ParsedBatch, AppError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| AppError::BadRequest(format!("body is not utf-8: {e}")))?;
    let (mut events, mut lines, mut hits) = (Vec::new(), Vec::new(), Vec::new());
    batch::read_lines(text, max_events, |line, w, e| {
        if let Some(ids) = &w.ids {
            hits.push(hit_from_wire(
                e.time, e.proto, e.src, e.dst, e.dst_port, ids,
            ));
        }
        events.push(e);
        lines.push(line);
    })
    .map_err(|e| match e {
        BatchError::TooMany { .. } => AppError::TooLarge(e.to_string()),
        BatchError::Line { .. } => AppError::BadRequest(e.to_string()),
    })?;
    Ok((events, lines, hits))
}

/// `POST /api/v1/heartbeat`: a sensor reports its own counters (a JSON object:
/// spool backlog, lines read, parse errors, …), shown by `GET /api/v1/sensors`.
#[utoipa::path(post, path = "/api/v1/heartbeat", tag = "ingest", security(("sensor_token" = [])),
    request_body(content = Object, description = "The sensor's counters: any JSON object, at most 64 KiB. `complete_through` (RFC 3339), when present, says everything the sensor logged up to then is delivered (docs/time.md)"),
    responses((status = 200, description = "Recorded", body = Health),
        (status = 400, description = "Not a JSON object, or complete_through not an RFC 3339 time", body = openapi::ErrorBody),
        (status = 401, description = "No, unknown or revoked sensor token", body = openapi::ErrorBody),
        (status = 408, description = "The body did not arrive within the body timeout", body = openapi::ErrorBody),
        (status = 413, description = "Over 64 KiB (or the server's body limit)", body = openapi::ErrorBody),
        (status = 500, description = "Internal error", body = openapi::ErrorBody)))]
async fn heartbeat(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Health>, AppError> {
    let token = bearer(&headers).ok_or(AppError::Unauthorized)?.to_string();
    // The token first, then the body (at most 64 KiB).
    let known = token.clone();
    st.with_store(move |s| s.authenticate_sensor(&known))
        .await?
        .ok_or(AppError::Unauthorized)?;
    let body = read_body(body, 64 * 1024, st.limits.body_timeout, || {
        "a heartbeat is at most 64 KiB".into()
    })
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("heartbeat is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(AppError::BadRequest(
            "heartbeat must be a JSON object".into(),
        ));
    }
    // "complete_through": everything the sensor logged up to then is delivered
    // (docs/time.md); it moves the sensor's progress.
    let claim = match v.get("complete_through") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(parse_rfc3339(t).ok_or_else(|| {
            AppError::BadRequest(format!("complete_through {t:?} is not an RFC 3339 time"))
        })?),
        Some(_) => {
            return Err(AppError::BadRequest(
                "complete_through must be an RFC 3339 time".into(),
            ))
        }
    };
    let json = v.to_string();
    let now = (st.clock)();
    let store = st.store.clone();
    let centre = st.centre.clone();
    blocking(move || {
        let sensor = {
            let mut s = store
                .lock()
                .map_err(|_| AppError::internal("store lock poisoned"))?;
            let sensor = s
                .authenticate_sensor(&token)?
                .ok_or(AppError::Unauthorized)?;
            s.record_heartbeat(&sensor, &json, now)?;
            sensor
        };
        centre
            .heartbeat(&sensor, claim, now)
            .map_err(AppError::from)
    })
    .await?;
    Ok(Json(Health { status: "ok" }))
}

/// `POST /api/v1/events`: one batch of JSON Lines events from a sensor.
#[utoipa::path(post, path = "/api/v1/events", tag = "ingest", security(("sensor_token" = [])),
    params(
        ("x-scanwatch-batch" = String, Header, description = "The sensor's batch id, 1-128 of A-Z a-z 0-9 . _ - : (resending an accepted id stores nothing)", example = "fw-1:000042", pattern = "^[A-Za-z0-9._:-]{1,128}$"),
        ("content-encoding" = Option<openapi::ContentEncoding>, Header, nullable = false, description = "gzip, zstd or none (any other: 415)")
    ),
    request_body(content = scanwatch_event::WireEvent, content_type = "application/x-ndjson",
        description = "JSON Lines: one event object (this schema) a line (docs/formats.md); the first bad line refuses the batch", example = json!({"v": 1, "time": "2026-11-26T10:40:00Z", "proto": "tcp", "src": "192.0.2.1", "dst": "198.18.0.1", "dst_port": 1025, "flags": "S"})),
    responses((status = 200, description = "Stored durably (or a duplicate of an accepted batch)", body = IngestReply),
        (status = 400, description = "Missing or bad batch id, malformed line, not UTF-8, bad gzip or zstd", body = openapi::ErrorBody),
        (status = 401, description = "No, unknown or revoked sensor token", body = openapi::ErrorBody),
        (status = 408, description = "The body did not arrive within the body timeout; the sensor resends", body = openapi::ErrorBody),
        (status = 413, description = "Body, decompressed body, lines or counted events (ten seconds of the sensor's rate) over the limits: refused for good", body = openapi::ErrorBody),
        (status = 415, description = "A content-encoding other than gzip or zstd", body = openapi::ErrorBody),
        (status = 425, description = "An event lies further ahead of the centre's clock than the clock skew allows (the message names the line and the skew); the sensor keeps the batch and retries", body = openapi::ErrorBody),
        (status = 429, description = "The sensor is over its events per second; retry after `Retry-After`", body = openapi::ErrorBody,
            headers(("retry-after" = u32, description = "Seconds until the sensor's budget holds the batch"))),
        (status = 500, description = "Internal error", body = openapi::ErrorBody),
        (status = 503, description = "The centre is busy: `limits.max_uncounted_events` stored events wait to be counted into the aggregates, or `limits.max_requests_in_flight` requests are handled; the sensor keeps the batch and sends it again after `Retry-After`", body = openapi::ErrorBody,
            headers(("retry-after" = u32, description = "Seconds to wait before sending again")))))]
async fn ingest(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<IngestReply>, AppError> {
    let started = std::time::Instant::now();
    let r = ingest_inner(&st, &headers, body).await;
    let c = &st.counters;
    match &r {
        Ok(reply) if reply.duplicate => c.batches_duplicate.fetch_add(1, Ordering::Relaxed),
        Ok(reply) => {
            c.ingest_latency.observe(started.elapsed());
            c.events_accepted
                .fetch_add(reply.accepted as u64, Ordering::Relaxed);
            c.batches_accepted.fetch_add(1, Ordering::Relaxed)
        }
        Err(AppError::Unauthorized) => c.refused_unauthorized.fetch_add(1, Ordering::Relaxed),
        Err(AppError::TooLarge(_)) => c.refused_too_large.fetch_add(1, Ordering::Relaxed),
        Err(AppError::BadRequest(_)) => c.refused_malformed.fetch_add(1, Ordering::Relaxed),
        Err(AppError::UnsupportedEncoding(_)) => c.refused_encoding.fetch_add(1, Ordering::Relaxed),
        Err(AppError::RateLimited(..)) => c.refused_rate_limited.fetch_add(1, Ordering::Relaxed),
        Err(AppError::ClockAhead(_)) => c.refused_clock_ahead.fetch_add(1, Ordering::Relaxed),
        Err(AppError::Timeout(_)) => c.refused_timeout.fetch_add(1, Ordering::Relaxed),
        Err(AppError::Busy(_)) => c.refused_backlog.fetch_add(1, Ordering::Relaxed),
        Err(
            AppError::Internal(_)
            | AppError::UnauthorizedApi
            | AppError::Forbidden(_)
            | AppError::NotFound(_),
        ) => 0,
    };
    r.map(Json)
}

/// Refuses a batch (503) while `uncounted` committed events wait to be counted
/// into the store's aggregates and that is at least `max_uncounted_events`,
/// making sure a counting runs; logs when the refusing starts and ends. Flow
/// control, not a stop: while the counting fails (logged by it), batches are
/// taken whatever waits, since refusing them would count nothing and only keep
/// them from detection; and a batch stored already (`stored_before`) is not
/// refused (the caller answers it as a duplicate).
fn backlog(st: &AppState, uncounted: u64, stored_before: bool) -> Result<(), AppError> {
    let c = &st.counters;
    let bound = st.limits.max_uncounted_events;
    c.uncounted_events.store(uncounted, Ordering::Relaxed);
    let failing = st.centre.counting_fails();
    c.counting_failing.store(failing, Ordering::Relaxed);
    // A batch sent again that is stored already is not refused: it adds nothing
    // to count, and its sender learns it is delivered (answered as a duplicate)
    // instead of holding it and sending it again.
    if stored_before {
        return Ok(());
    }
    if bound == 0 || uncounted < bound || failing {
        if c.shedding_backlog.swap(false, Ordering::Relaxed) {
            if failing {
                tracing::warn!(
                    uncounted,
                    "the counting into the aggregates fails: accepting batches whatever waits"
                );
            } else {
                tracing::info!(
                    uncounted,
                    "the stored events are counted into the aggregates again: accepting batches"
                );
            }
        }
        return Ok(());
    }
    if !c.shedding_backlog.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            uncounted,
            bound,
            "limits.max_uncounted_events stored events wait to be counted into the aggregates: refusing batches (503) until the counting catches up"
        );
    }
    // A counting runs (started here if none does, whatever its threshold).
    let centre = st.centre.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = centre.count_backlog() {
            tracing::warn!(error = %e, "cannot count the stored events into the aggregates yet");
        }
    });
    Err(AppError::Busy(format!(
        "the centre is counting a backlog: {uncounted} stored events wait to be counted (batches are refused from {bound} on); send the batch again later"
    )))
}

async fn ingest_inner(
    st: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<IngestReply, AppError> {
    let token = bearer(headers).ok_or(AppError::Unauthorized)?.to_string();
    let batch_header = headers
        .get(BATCH_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| valid_batch_id(id))
        .map(str::to_string);
    let bound = st.limits.max_uncounted_events;
    let failing = st.centre.counting_fails();
    let id = batch_header.clone();
    let (sensor, uncounted, stored_before) = st
        .with_store(move |s| {
            let sensor = s.authenticate_sensor(&token)?;
            // Only for a sensor: a stranger learns nothing of the backlog. Not
            // known (the aggregates' file unreadable): taken as none, so a fault
            // of the aggregates never keeps batches from detection.
            let uncounted = match sensor {
                Some(_) => s.uncounted().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read how many stored events wait to be counted");
                    0
                }),
                None => 0,
            };
            // Looked up only when the batch would be refused for the backlog,
            // under the name its token belongs to. Shard key 0: only the embedded
            // store has a backlog (`uncounted` is 0 for ClickHouse), and it keeps
            // every batch id in one table. A failed lookup: the batch is refused
            // as any other.
            let stored_before = match (&sensor, &id) {
                (Some(name), Some(id)) if bound != 0 && uncounted >= bound && !failing => s
                    .stored_batches(0, &[(name, id)])
                    .map(|found| found.first() == Some(&true))
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot look up whether a batch is stored");
                        false
                    }),
                _ => false,
            };
            Ok((sensor, uncounted, stored_before))
        })
        .await?;
    let sensor = sensor.ok_or(AppError::Unauthorized)?;
    let batch = batch_header.ok_or_else(|| {
        AppError::BadRequest(format!(
            "header {BATCH_HEADER} must be 1-128 of A-Z a-z 0-9 . _ - :"
        ))
    })?;
    // The body is read only now, after the token and the batch id passed: a
    // request without a valid token costs no more than its headers.
    let body = read_body(
        body,
        st.limits.max_body_bytes,
        st.limits.body_timeout,
        || format!("request body exceeds {} bytes", st.limits.max_body_bytes),
    )
    .await?;
    // Refused for the backlog after its body is read (the sensor has sent it
    // anyway, and then reads the answer instead of a connection cut mid-send),
    // before it is decompressed and parsed.
    backlog(st, uncounted, stored_before)?;
    // A batch stored already, sent again during a backlog: answered as the
    // duplicate it is, without decompressing, parsing or charging the sensor's
    // rate (it adds nothing).
    if stored_before {
        return Ok(IngestReply {
            batch,
            accepted: 0,
            duplicate: true,
        });
    }
    let raw = decode_body(headers, &body, st.limits.max_decompressed_bytes)?;
    let (events, lines, mut hits) = parse_batch(&raw, st.limits.max_events_per_batch)?;
    // Each IDS alert names its sensor: confirmation needs several (docs/security.md).
    hits.iter_mut()
        .for_each(|h| h.sensor = Some(sensor.clone()));
    let received = (st.clock)();
    // Nothing from the future is counted or stored (docs/time.md): the sensor keeps
    // the batch in its spool and shows its clock as ahead.
    if let Some((i, ahead)) = st.centre.first_ahead(&events, received) {
        // Off the async threads: the centre's engine may be busy storing windows.
        let (centre, name) = (st.centre.clone(), sensor.clone());
        blocking(move || {
            centre
                .refused_ahead(&name, ahead, received)
                .map_err(AppError::from)
        })
        .await?;
        return Err(AppError::ClockAhead(format!(
            "line {}: event time {} is {} ahead of the centre's clock (at most {} allowed); check the sensor's clock",
            lines.get(i).copied().unwrap_or(0),
            events[i].time.to_rfc3339(),
            human_ms(ahead),
            human_ms(st.centre.time_config().max_clock_skew_ms),
        )));
    }
    let counted: u64 = events.iter().map(|e| u64::from(e.count)).sum();
    // More than a full bucket would never pass: refuse it for good, not with a 429
    // the sensor would retry forever.
    let burst = st
        .limits
        .max_events_per_second_per_sensor
        .saturating_mul(10);
    if counted > burst {
        return Err(AppError::TooLarge(format!(
            "the batch counts {counted} events, more than the {burst} a sensor may send at once"
        )));
    }
    let rate = st.limits.max_events_per_second_per_sensor;
    let refused = {
        let mut limiter = st
            .rate
            .lock()
            .map_err(|_| AppError::internal("rate lock poisoned"))?;
        (!limiter.take(&sensor, counted, rate, received))
            .then(|| limiter.wait_secs(&sensor, counted, rate))
    };
    if let Some(secs) = refused {
        return Err(AppError::RateLimited(
            format!("sensor {sensor:?} is over {rate} events per second; retry later"),
            secs,
        ));
    }
    let b2 = batch.clone();
    let items = hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Ok(ContextItem {
                key: format!("{sensor}:{batch}:{i}"),
                origin: sensor.clone(),
                json: serde_json::to_string(&StoredHit::from(h))
                    .map_err(|e| AppError::internal(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    if let Some(p) = &st.publisher {
        let n = events.len();
        let out = OutgoingBatch {
            sensor,
            batch: batch.clone(),
            events,
            ids: items,
            received,
        };
        let duplicate = p
            .publish(&out)
            .await
            .map_err(|e| AppError::internal(e.to_string()))?
            .all_duplicates();
        return Ok(IngestReply {
            batch,
            accepted: if duplicate { 0 } else { n },
            duplicate,
        });
    }
    // Committed and fed in one blocking task (a client that hangs up cannot leave
    // a batch committed and not counted) and in one step of the centre's, which a
    // checkpoint never falls inside (`Centre::ingest`). The answer goes once the
    // batch is durable, before its feed: the sensor's next batch is sent and read
    // meanwhile, and is fed after this one (the centre's feed order); reads wait
    // for the feed (`Centre::settled`).
    let st2 = st.clone();
    let (durable, answered) = tokio::sync::oneshot::channel::<BatchOutcome>();
    let task = tokio::task::spawn_blocking(move || {
        let centre = st2.centre.clone();
        let early = std::sync::atomic::AtomicBool::new(false);
        let r = centre.ingest(
            &sensor,
            &b2,
            &events,
            &items,
            received,
            |outcome, ids_stored| {
                // Durable first, then counted: a crash here loses nothing, and
                // the server replays stored events into the pipeline at start.
                // IDS alerts that could not be stored: the answer is the
                // failure, and they are not taken in; the sensor retries, and
                // its resend (a duplicate) stores them and calls this again.
                if ids_stored {
                    st2.take_ids(hits);
                    early.store(durable.send(outcome).is_ok(), Ordering::Relaxed);
                }
            },
        );
        // Answered already: nobody awaits this result, so its failure is said here
        // (the batch is stored; the state is unfit for checkpoints until restart).
        if let (Err(e), true) = (&r, early.load(Ordering::Relaxed)) {
            tracing::error!(sensor = %sensor, batch = %b2, error = %e, "a stored batch could not be fed to detection after its answer");
        }
        r.map_err(AppError::from)
    });
    let outcome = match answered.await {
        Ok(outcome) => outcome,
        // A duplicate, or a failure: the step's own result.
        Err(_) => task
            .await
            .map_err(|e| AppError::internal(e.to_string()))??,
    };
    // The store's deferred bulk work (if its store defers any), after this answer:
    // the sensor's next batch arrives and is parsed meanwhile. A failure loses
    // nothing (the blocks wait; queries read them) and is tried again after the
    // next batch.
    let centre = st.centre.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = centre.count_due() {
            tracing::warn!(error = %e, "cannot count the stored events into the aggregates yet");
        }
    });
    Ok(match outcome {
        BatchOutcome::Duplicate => IngestReply {
            batch,
            accepted: 0,
            duplicate: true,
        },
        BatchOutcome::Accepted { events: n } => IngestReply {
            batch,
            accepted: n,
            duplicate: false,
        },
    })
}
