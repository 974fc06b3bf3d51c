//! `scanwatch server`: the centre on the embedded default. Opens the SQLite store in
//! the data directory, replays the stored events into the pipeline (replay = live, so
//! the warnings after a restart are the ones before it), and serves the collector's
//! HTTP app until SIGINT or SIGTERM.

use scanwatch_store::prelude::*;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use scanwatch_centre::Centre;
use scanwatch_collector::{app, AppState};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::Pipeline;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::Store;

use crate::config::{ServerConfig, StoreKind};

/// What a `scanwatch server` process does (docs/scale.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerRole {
    /// The embedded single process: ingest, detection, API and dashboard.
    All,
    /// Ingest: checks batches and publishes them to the bus (and serves the API).
    Collector,
    /// Aggregates its partitions of the bus into the shared store.
    Aggregator,
    /// Merges the stored partials, detects and notifies (one active, by lease).
    Detector,
    /// The read API and the dashboard over the shared store.
    Api,
}

impl std::fmt::Display for ServerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerRole::All => "all",
            ServerRole::Collector => "collector",
            ServerRole::Aggregator => "aggregator",
            ServerRole::Detector => "detector",
            ServerRole::Api => "api",
        })
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// TOML config file (docs/server.md); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (the SQLite store lives here) [default: scanwatch-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address to listen on, `HOST:PORT` (a host name is resolved, e.g.
    /// `localhost:8470`) [default: 127.0.0.1:8470].
    #[arg(long, value_parser = resolve_listen)]
    pub listen: Option<SocketAddr>,
    /// Window length [default: 1h].
    #[arg(long)]
    pub window: Option<String>,
    /// How far back the per-port baseline looks [default: 7d].
    #[arg(long)]
    pub history: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key the server speaks HTTPS only.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// What this process does (docs/scale.md): `all` is the embedded single process;
    /// `collector`, `aggregator`, `detector` and `api` are the scale-out roles over
    /// `[bus]` and a shared `[store]`.
    #[arg(long, value_enum, default_value_t = ServerRole::All)]
    pub role: ServerRole,
    /// Aggregator instance number: it owns the partitions p with p % instances == instance.
    #[arg(long, default_value_t = 0)]
    pub instance: u32,
    /// Number of aggregator instances.
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    /// Where the aggregator and detector roles serve `/healthz` and `/metrics`
    /// (`[server] ops_listen`).
    #[arg(long)]
    pub ops_listen: Option<SocketAddr>,
}

impl ServerArgs {
    /// The config file (if any) with the flags applied on top, validated.
    pub fn effective_config(&self) -> Result<ServerConfig> {
        let mut cfg = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                ServerConfig::parse(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => ServerConfig::default(),
        };
        if let Some(d) = &self.data {
            cfg.server.data = d.clone();
        }
        if let Some(l) = self.listen {
            cfg.server.listen = l;
        }
        if let Some(l) = self.ops_listen {
            cfg.server.ops_listen = Some(l);
        }
        if let Some(w) = &self.window {
            cfg.detection.window = w.clone();
        }
        if let Some(h) = &self.history {
            cfg.detection.history = h.clone();
        }
        if let (Some(c), Some(k)) = (&self.tls_cert, &self.tls_key) {
            cfg.server.tls_cert = Some(c.clone());
            cfg.server.tls_key = Some(k.clone());
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

pub(crate) fn wall_clock() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}

pub fn run(args: &ServerArgs, err: &mut dyn Write) -> Result<()> {
    if args.role != ServerRole::All {
        return roles::run(args, err);
    }
    let file_cfg = args.effective_config()?;
    if file_cfg.store.kind != StoreKind::Sqlite {
        anyhow::bail!("role all runs on the embedded sqlite store only; use the scale-out roles for store kind {:?}", file_cfg.store.kind.name());
    }
    if file_cfg.bus.enabled() {
        writeln!(err, "role all: [bus] is not used (embedded single process)")?;
    }
    let cfg = file_cfg.detection_args().config()?;
    let data = file_cfg.server.data.clone();
    let listen = file_cfg.server.listen;
    // Bind first: a port in use is said at once, not after the replay; sensors
    // that connect meanwhile wait in the backlog.
    let listener = bind(listen, "listen")?;
    let mut store = SqliteStore::open(&data)?;
    // Batches are answered before the store counts them into its aggregates
    // (the ingest handler runs the counting after its answer).
    scanwatch_store::EventStore::defer_counting(&mut store);
    for w in scanwatch_store::sqlite::permission_warnings(&data) {
        writeln!(err, "warning: {w}")?;
    }
    let damaged = store.damaged_blocks()?;
    if damaged > 0 {
        writeln!(
            err,
            "warning: {damaged} stored event blocks do not decode and were set aside (table damaged_blocks, with why); their events are not counted"
        )?;
    }
    let retention = file_cfg.retention.millis()?;
    let now = wall_clock();
    let (pe, pw) = store.prune(
        Timestamp(now.0 - retention.0),
        Timestamp(now.0 - retention.1),
    )?;
    if pe + pw > 0 {
        writeln!(err, "retention: pruned {pe} events and {pw} windows")?;
    }
    // Threat context from the data directory: imported advisories, assets and
    // benign scanners, and ports.toml. Loaded once at start (restart to reload).
    let ctx_args = file_cfg.context_args();
    let (ctx, benign) = crate::intel::load_context(&ctx_args, 1970, err)?;
    writeln!(
        err,
        "context: {} advisory groups, {} assets",
        ctx.intel.len(),
        ctx.assets.len()
    )?;
    let mut pipeline = Pipeline::new(cfg);
    pipeline.set_emit_windows(true);
    pipeline.set_benign(benign);
    pipeline.set_trusted(&ctx.explain.trusted_sensors);
    let centre = Centre::new(Box::new(store), pipeline)
        .with_time_config(file_cfg.time.config(&cfg)?)
        .with_context(ctx);
    // Notification sinks: built before the replay, which re-raises the stored
    // warnings (each sink sends a warning once; see scanwatch_notify::state).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let notifier = spawn_notifier(&file_cfg, centre.store.clone(), &rt, err)?;
    let centre = match &notifier {
        Some(n) => centre.with_alert_hook(n.hook()),
        None => centre,
    };
    let replayed = centre
        .replay(wall_clock())
        .map_err(|e| anyhow::anyhow!("replay failed: {e}"))?;
    writeln!(
        err,
        "replayed {} stored events from {}",
        replayed.events,
        data.display()
    )?;
    match (&replayed.checkpoint, &replayed.checkpoint_refused) {
        (Some(mark), _) => writeln!(
            err,
            "replay: took up the checkpoint at block {mark}; replayed only the events stored after it"
        )?,
        (None, Some(why)) => writeln!(err, "replay: {why}; replayed every stored event")?,
        (None, None) => {}
    }
    // At once: the next start needs only what arrives from now on.
    take_checkpoint(&centre);
    if replayed.future_events > 0 {
        writeln!(
            err,
            "replay: left out {} stored events dated beyond the clock skew (docs/time.md)",
            replayed.future_events
        )?;
    }
    let readers = (0..file_cfg.server.read_connections)
        .map(|_| Ok(Box::new(SqliteStore::open(&data)?) as Box<dyn Store>))
        .collect::<Result<Vec<_>>>()?;
    let mut state = AppState::with_centre(centre.clone(), file_cfg.limits()?, Arc::new(wall_clock))
        .with_readers(readers);
    state.metrics_token = file_cfg.metrics_token()?.map(Arc::from);
    let state = match &notifier {
        Some(n) => {
            let counters = n.counters();
            state.with_extra_metrics(Arc::new(move || counters.prometheus()))
        }
        None => state,
    };
    rt.block_on(async {
        let tls = server_tls(&file_cfg.server).await?;
        writeln!(
            err,
            "listening on {}://{}",
            if tls.is_some() { "https" } else { "http" },
            listener.local_addr()?
        )?;
        // The centre's clock: windows close on deadlines and idle sensors even when
        // nothing arrives (docs/time.md).
        let ticking = centre.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let c = ticking.clone();
                let r = tokio::task::spawn_blocking(move || c.tick(wall_clock())).await;
                if let Ok(Err(e)) = r {
                    eprintln!("tick failed: {e}");
                }
            }
        });
        // A checkpoint of the pipeline every minute: a restart replays at most the
        // minute's events after it (docs/server.md, "Restart and replay").
        let checkpointing = centre.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let c = checkpointing.clone();
                let _ = tokio::task::spawn_blocking(move || take_checkpoint(&c)).await;
            }
        });
        // Retention, hourly.
        let store = state.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            tick.tick().await;
            loop {
                tick.tick().await;
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let now = wall_clock();
                    if let Ok(mut s) = store.lock() {
                        if let Err(e) = s.prune(
                            Timestamp(now.0 - retention.0),
                            Timestamp(now.0 - retention.1),
                        ) {
                            eprintln!("retention failed: {e}");
                        }
                    }
                })
                .await;
            }
        });
        if let Some(n) = &notifier {
            spawn_resolver(state.store.clone(), n.resolve_hook());
        }
        front_door(listener, tls, state).await?;
        Ok::<(), anyhow::Error>(())
    })?;
    // The last one: a restart after a clean stop replays nothing.
    take_checkpoint(&centre);
    close_notifier(&rt, notifier, err)?;
    writeln!(err, "stopped")?;
    Ok(())
}

/// How often the server takes a checkpoint of its pipeline.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes a checkpoint; a failure is logged (the next start then replays more).
fn take_checkpoint(centre: &Centre) {
    let started = std::time::Instant::now();
    match centre.checkpoint(wall_clock()) {
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

/// The notification sinks of a server config (`[[sinks]]`), if any, on `rt`; what
/// each sink sent is remembered in `store`.
pub(crate) fn spawn_notifier(
    cfg: &ServerConfig,
    store: Arc<Mutex<Box<dyn Store>>>,
    rt: &tokio::runtime::Runtime,
    err: &mut dyn Write,
) -> Result<Option<scanwatch_notify::Notifier>> {
    if cfg.sinks.is_empty() {
        return Ok(None);
    }
    let ncfg = scanwatch_notify::NotifyConfig {
        sinks: cfg.sinks.clone(),
    };
    let n = scanwatch_notify::Notifier::spawn(&ncfg, store, Arc::new(wall_clock), rt.handle())?;
    writeln!(err, "notify: {} sinks", ncfg.sinks.len())?;
    Ok(Some(n))
}

/// How often the ends of surges are looked for (the sinks get `resolved` once).
const RESOLVE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Tells the sinks, every [`RESOLVE_EVERY`], the surges whose incidents are over
/// (on the current tokio runtime, until the process ends).
pub(crate) fn spawn_resolver(
    store: Arc<Mutex<Box<dyn Store>>>,
    resolve: scanwatch_notify::notifier::Hook,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RESOLVE_EVERY);
        loop {
            tick.tick().await;
            let store = store.clone();
            let over = tokio::task::spawn_blocking(move || match store.lock() {
                Ok(s) => {
                    scanwatch_collector::incidents::over(s.as_ref()).map_err(|e| e.to_string())
                }
                Err(_) => Err("store lock poisoned".to_string()),
            })
            .await;
            match over {
                Ok(Ok(list)) => {
                    for (id, w) in list {
                        resolve(id, &w);
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "notify: cannot read the incidents: {e}"),
                Err(e) => tracing::warn!(error = %e, "notify: the incident check failed: {e}"),
            }
        }
    });
}

/// Lets the sinks finish what is queued (bounded: a dead receiver must not hold the
/// shutdown; what is left is sent after the next start's replay).
pub(crate) fn close_notifier(
    rt: &tokio::runtime::Runtime,
    notifier: Option<scanwatch_notify::Notifier>,
    err: &mut dyn Write,
) -> Result<()> {
    if let Some(n) = notifier {
        let pending = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), n.close()).await
        });
        if pending.is_err() {
            writeln!(err, "notify: gave up waiting for queued notifications")?;
        }
    }
    Ok(())
}

/// `HOST:PORT` to one address: an IP address as it is, a host name resolved (its
/// first address, IPv4 first, so `localhost` is 127.0.0.1 where both exist).
pub(crate) fn resolve_listen(s: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(s)
        .map_err(|e| format!("{s:?}: expected HOST:PORT ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?}: the host name has no address"))
}

/// A listening socket on `addr` for the async runtime; `what` names the config key.
pub(crate) fn bind(addr: SocketAddr, what: &str) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} ({what})"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The TLS config of `[server]`, if it names a certificate and a key.
pub(crate) async fn server_tls(
    s: &crate::config::ServerSection,
) -> Result<Option<Arc<rustls::ServerConfig>>> {
    Ok(match (&s.tls_cert, &s.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k).await?),
        _ => None,
    })
}

/// Serves the app behind the collector's front door (connection limits, header and
/// body timeouts, `[limits]`; docs/security.md) until SIGINT or SIGTERM. Over TLS,
/// session cookies are `Secure`.
pub(crate) async fn front_door(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
) -> Result<()> {
    let state = state.with_secure_cookies(tls.is_some());
    let (limits, counters) = (state.limits, state.counters.clone());
    scanwatch_collector::serve::serve(
        tokio::net::TcpListener::from_std(listener)?,
        tls,
        app(state),
        limits,
        counters,
        shutdown(),
    )
    .await?;
    Ok(())
}

/// Reads the certificate chain and key (PEM) into a rustls server config (ring
/// provider; TLS 1.2 and 1.3; HTTP/1.1).
pub(crate) async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>> {
    tls_server_config(cert, key, vec![b"http/1.1".to_vec()])
}

/// Reads the certificate chain and key (PEM) into a rustls server config (ring
/// provider; TLS 1.2 and 1.3) offering the `alpn` protocols: the centre's HTTPS
/// and the sensor's TLS syslog receivers.
pub(crate) fn tls_server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<rustls::ServerConfig>> {
    let cert_pem =
        std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let key_pem = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: invalid certificate: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{}: no certificate found", cert.display());
    }
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("{}: invalid private key: {e}", key.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not fit together")?;
    cfg.alpn_protocols = alpn;
    Ok(Arc::new(cfg))
}

/// Resolves on SIGINT or SIGTERM; in-flight requests finish (each batch commits in
/// one transaction, so none is half-applied).
pub(crate) async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Opens the store a server config names (`[store]`): SQLite in `server.data`, or
/// the shared ClickHouse store of the scale-out roles. Used by the roles and by
/// `scanwatch admin --config`, so both see the same sensors, tokens and users.
pub fn open_store(cfg: &ServerConfig) -> Result<Box<dyn Store>> {
    match cfg.store.kind {
        StoreKind::Sqlite => Ok(Box::new(SqliteStore::open(&cfg.server.data)?)),
        StoreKind::Clickhouse => {
            let ch = cfg.store.clickhouse();
            Ok(Box::new(
                scanwatch_store::clickhouse::ClickHouseStore::open(&ch)
                    .context("cannot open the clickhouse store")?,
            ))
        }
    }
}

/// The scale-out roles (docs/scale.md): `collector` and `api` serve the HTTP app and
/// publish ingested batches to the bus; `aggregator` consumes its partitions into
/// partial window aggregates (and the raw events) in the shared store; `detector`
/// holds the lease, merges the partials and runs detection on the windows they make.
mod roles {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::{
        bind, close_notifier, front_door, open_store, server_tls, shutdown, spawn_notifier,
        wall_clock, ServerArgs, ServerRole, RESOLVE_EVERY,
    };
    use crate::config::{ServerConfig, StoreKind};
    use anyhow::{bail, Result};
    use scanwatch_bus::{aggregate_handler, run_aggregator, AggregatorCounters, NatsBus};
    use scanwatch_centre::{Centre, CentreError, PartialMerge, StepError};
    use scanwatch_collector::AppState;
    use scanwatch_event::metrics::{labels, Exposition, MetricKind};
    use scanwatch_event::Timestamp;
    use scanwatch_pipeline::Pipeline;

    pub fn run(args: &ServerArgs, err: &mut dyn Write) -> Result<()> {
        let cfg = args.effective_config()?;
        if !cfg.bus.enabled() {
            bail!(
                "role {} needs an event bus: set [bus] kind = \"nats\" (docs/scale.md)",
                args.role
            );
        }
        if args.instances == 0 || args.instance >= args.instances {
            bail!("--instance must be below --instances");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        match args.role {
            ServerRole::Collector | ServerRole::Api => {
                let store = open_store(&cfg)?;
                let pcfg = cfg.detection_args().config()?;
                let bus = rt.block_on(NatsBus::connect(&cfg.bus))?;
                let state = AppState::new(
                    store,
                    Pipeline::new(pcfg),
                    cfg.limits()?,
                    Arc::new(wall_clock),
                )
                .with_publisher(Arc::new(bus))
                .with_readers(
                    (0..cfg.server.read_connections)
                        .map(|_| open_store(&cfg))
                        .collect::<Result<Vec<_>>>()?,
                );
                let mut state = state;
                state.metrics_token = cfg.metrics_token()?.map(Arc::from);
                writeln!(
                    err,
                    "role {}: ingest publishes to {}",
                    args.role, cfg.bus.url
                )?;
                serve(&rt, state, &cfg, err)
            }
            ServerRole::Aggregator => {
                let store = open_store(&cfg)?;
                let agg = cfg.detection_args().config()?.aggregate;
                // Known benign scanners are left out here, before aggregation, as the
                // embedded pipeline leaves them out (imported into the shared store).
                let (_, benign) = shared_context(&cfg, store.as_ref(), err)?;
                let store = Arc::new(Mutex::new(store));
                let owned = scanwatch_bus::owned_partitions(
                    cfg.bus.partitions,
                    args.instance,
                    args.instances,
                );
                writeln!(
                    err,
                    "role aggregator {}/{}: partitions {owned:?}",
                    args.instance, args.instances
                )?;
                rt.block_on(async {
                    let bus = NatsBus::connect(&cfg.bus).await?;
                    let (tx, rx) = tokio::sync::watch::channel(false);
                    let counters = Arc::new(AggregatorCounters::default());
                    let c = counters.clone();
                    ops(
                        &cfg,
                        "aggregator",
                        Arc::new(move || aggregator_metrics(&c)),
                        err,
                    )?;
                    let task = tokio::spawn(run_aggregator(
                        bus,
                        aggregate_handler(
                            store,
                            agg,
                            (!benign.is_empty()).then_some(benign),
                            Arc::new(wall_clock),
                        ),
                        args.instance,
                        args.instances,
                        cfg.bus.partitions,
                        rx,
                        counters.clone(),
                    ));
                    shutdown().await;
                    let _ = tx.send(true);
                    let _ = task.await;
                    let c = counters.snapshot();
                    writeln!(
                        err,
                        "aggregator stopped: {} messages stored ({} events), {} duplicates",
                        c.accepted, c.events, c.duplicates
                    )?;
                    Ok::<(), anyhow::Error>(())
                })
            }
            ServerRole::Detector => detector(&rt, &cfg, err),
            ServerRole::All => bail!("role all is not a scale-out role"),
        }
    }

    /// Serves `/healthz` and `/metrics` on `[server] ops_listen`, if set (on the
    /// current runtime, until the process ends).
    fn ops(
        cfg: &ServerConfig,
        role: &'static str,
        metrics: scanwatch_collector::ops::MetricsFn,
        err: &mut dyn Write,
    ) -> Result<()> {
        let Some(addr) = cfg.server.ops_listen else {
            return Ok(());
        };
        let listener = bind(addr, "ops_listen")?;
        writeln!(
            err,
            "role {role}: /healthz and /metrics on http://{}",
            listener.local_addr()?
        )?;
        let router = scanwatch_collector::ops::ops_app(role, metrics, cfg.metrics_token()?);
        let limits = cfg.limits()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(scanwatch_collector::serve::serve(
            listener,
            None,
            router,
            limits,
            Arc::new(scanwatch_collector::Counters::default()),
            std::future::pending::<()>(),
        ));
        Ok(())
    }

    /// Prometheus text of an aggregator's counters.
    fn aggregator_metrics(c: &AggregatorCounters) -> String {
        let s = c.snapshot();
        let mut out = Exposition::new();
        let outcome = |o: &str| labels(&[("outcome", o)]);
        out.family(
            "scanwatch_aggregator_messages_total",
            "Bus messages handled, by outcome (stored: committed; failed: redelivered later).",
            MetricKind::Counter,
            &[
                (outcome("stored"), s.accepted),
                (outcome("duplicate"), s.duplicates),
                (outcome("failed"), s.failed),
                (outcome("refused"), s.refused),
            ],
        );
        out.counter(
            "scanwatch_aggregator_events_total",
            "Events committed.",
            s.events,
        );
        out.finish()
    }

    /// What the detector role counts, for its `/metrics`.
    #[derive(Default)]
    struct DetectorCounters {
        lease_held: std::sync::atomic::AtomicU64,
        leases_taken: std::sync::atomic::AtomicU64,
        steps: std::sync::atomic::AtomicU64,
        steps_failed: std::sync::atomic::AtomicU64,
        partials_refused: std::sync::atomic::AtomicU64,
        caught_up: std::sync::atomic::AtomicU64,
        /// The counters of the centre while this detector holds the lease.
        centre: Mutex<Option<Centre>>,
    }

    impl DetectorCounters {
        fn prometheus(&self) -> String {
            use std::sync::atomic::Ordering::Relaxed;
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
                    ] {
                        out.counter(name, help, v.load(Relaxed));
                    }
                }
            }
            out.finish()
        }
    }

    fn serve(
        rt: &tokio::runtime::Runtime,
        state: AppState,
        cfg: &ServerConfig,
        err: &mut dyn Write,
    ) -> Result<()> {
        rt.block_on(async {
            let listener = bind(cfg.server.listen, "listen")?;
            let tls = server_tls(&cfg.server).await?;
            writeln!(
                err,
                "listening on {}://{}",
                if tls.is_some() { "https" } else { "http" },
                listener.local_addr()?
            )?;
            front_door(listener, tls, state).await?;
            Ok::<(), anyhow::Error>(())
        })?;
        writeln!(err, "stopped")?;
        Ok(())
    }

    /// Threat context and benign scanners from the shared store (imported there by
    /// `scanwatch intel import`); with SQLite that is the data directory.
    fn shared_context(
        cfg: &ServerConfig,
        shared: &dyn scanwatch_store::Store,
        err: &mut dyn Write,
    ) -> Result<(
        scanwatch_context::ContextData,
        scanwatch_context::benign::BenignSet,
    )> {
        let ctx_args = cfg.context_args();
        if cfg.store.kind == StoreKind::Sqlite {
            crate::intel::load_context(&ctx_args, 1970, err)
        } else {
            crate::intel::load_context_with(&ctx_args, Some(shared), 1970, err)
        }
    }

    fn detector(
        rt: &tokio::runtime::Runtime,
        cfg: &ServerConfig,
        err: &mut dyn Write,
    ) -> Result<()> {
        let pcfg = cfg.detection_args().config()?;
        let shared = open_store(cfg)?;
        let (ctx, benign) = shared_context(cfg, shared.as_ref(), err)?;
        drop(shared);
        let ttl = cfg.bus.lease_ttl()?;
        let retention = cfg.retention.millis()?;
        let holder = format!("pid{}-{}", std::process::id(), wall_clock().0);
        // Notification sinks, as in `--role all`: the detector raises the warnings.
        // Their state (what was sent to whom) is in the shared store, so a standby
        // that takes over sends nothing twice.
        let notifier = if cfg.sinks.is_empty() {
            None
        } else {
            spawn_notifier(cfg, Arc::new(Mutex::new(open_store(cfg)?)), rt, err)?
        };
        let hook = notifier.as_ref().map(|n| n.hook());
        let resolve = notifier.as_ref().map(|n| n.resolve_hook());
        let counters = Arc::new(DetectorCounters::default());
        let r = rt.block_on(async {
            let c = counters.clone();
            ops(cfg, "detector", Arc::new(move || c.prometheus()), err)?;
            let bus = NatsBus::connect(&cfg.bus).await?;
            let stop = shutdown();
            tokio::pin!(stop);
            loop {
                // Standby until the lease is free.
                // A bus error here (a node restarting, the lease stream between
                // leaders) is waited out, never fatal: a detector that exits cannot
                // take over.
                let mut lease = loop {
                    match bus.try_lease("detector", &holder).await {
                        Ok(Some(l)) => break l,
                        Ok(None) => {}
                        Err(e) => writeln!(err, "detector: cannot take the lease yet: {e}")?,
                    }
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(ttl / 3) => {}
                    }
                };
                writeln!(
                    err,
                    "detector: lease taken; rebuilding from the stored partial aggregates"
                )?;
                counters.lease_held.store(1, std::sync::atomic::Ordering::Relaxed);
                counters.leases_taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The pipeline over a fresh store connection; built again after a
                // failed step (a store or bus outage), since a step that failed half
                // way may have merged part of its partials: rebuilding from the stored
                // partials is what a takeover does, so it is exact.
                let fresh = || -> Result<(Centre, Arc<Mutex<PartialMerge>>)> {
                    let mut pipeline = Pipeline::new(pcfg);
                    pipeline.set_emit_windows(true);
                    pipeline.set_benign(benign.clone());
                    pipeline.set_trusted(&ctx.explain.trusted_sensors);
                    let state = Centre::for_partials(open_store(cfg)?, pipeline)
                        .with_context(ctx.clone());
                    let state = match &hook {
                        Some(h) => state.with_alert_hook(h.clone()),
                        None => state,
                    };
                    Ok((state, Arc::new(Mutex::new(PartialMerge::new()))))
                };
                let mut current: Option<(Centre, Arc<Mutex<PartialMerge>>)> = None;
                let mut renewed = Instant::now();
                let mut waiting: Option<Instant> = None;
                let mut pruned: Option<Instant> = None;
                let mut resolved: Option<Instant> = None;
                loop {
                    tokio::select! {
                        () = &mut stop => {
                            let _ = lease.release().await;
                            writeln!(err, "stopped")?;
                            return Ok(());
                        }
                        () = tokio::time::sleep(Duration::from_millis(300)) => {}
                    }
                    if renewed.elapsed() >= ttl / 3 {
                        match lease.renew().await {
                            Ok(true) => renewed = Instant::now(),
                            Ok(false) => {
                                writeln!(err, "detector: lease lost; standing by")?;
                                counters.lease_held.store(0, std::sync::atomic::Ordering::Relaxed);
                                break;
                            }
                            // Not known whether it is still ours: keep trying
                            // until it would have expired.
                            Err(e) if renewed.elapsed() < ttl => {
                                writeln!(err, "detector: lease renewal failed: {e}")?;
                            }
                            Err(e) => {
                                writeln!(
                                    err,
                                    "detector: lease not renewed within its ttl ({e}); standing by"
                                )?;
                                counters.lease_held.store(0, std::sync::atomic::Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                    // Barrier: everything published so far is in the store, so the
                    // windows close on all of it (as the embedded run's would). Under
                    // a stream that never drains it is waited for at most
                    // BARRIER_WAIT; parts committed after their window closed are
                    // then re-evaluated as late, as late events are.
                    let up = bus.caught_up().await;
                    counters.caught_up.store(
                        u64::from(matches!(up, Ok(true))),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    match up {
                        Ok(true) => waiting = None,
                        Ok(false) => {
                            if waiting.get_or_insert_with(Instant::now).elapsed() < BARRIER_WAIT {
                                continue;
                            }
                        }
                        Err(e) => {
                            writeln!(err, "detector: consumer lag unknown: {e}")?;
                            continue;
                        }
                    }
                    // The ends of surges, to the sinks (`resolved`, once per sink and
                    // surge), by the one detector holding the lease.
                    // (Over the centre's own store connection: opening one checks
                    // the schema on every server.)
                    if let (Some(resolve), Some((c, _))) = (&resolve, &current) {
                        if resolved.is_none_or(|t: Instant| t.elapsed() >= RESOLVE_EVERY) {
                            resolved = Some(Instant::now());
                            let store = c.store.clone();
                            let over = tokio::task::spawn_blocking(move || match store.lock() {
                                Ok(s) => scanwatch_collector::incidents::over(s.as_ref())
                                    .map_err(anyhow::Error::from),
                                Err(_) => Err(anyhow::anyhow!("store lock poisoned")),
                            })
                            .await
                            .unwrap_or_else(|e| Err(e.into()));
                            match over {
                                Ok(list) => {
                                    for (id, w) in list {
                                        resolve(id, &w);
                                    }
                                }
                                Err(e) => writeln!(err, "detector: cannot read the incidents: {e:#}")?,
                            }
                        }
                    }
                    // Retention, hourly, by the one detector holding the lease.
                    if pruned.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(3600)) {
                        pruned = Some(Instant::now());
                        let store = open_store(cfg);
                        let r = tokio::task::spawn_blocking(move || {
                            let now = wall_clock();
                            store?.prune(
                                Timestamp(now.0 - retention.0),
                                Timestamp(now.0 - retention.1),
                            ).map_err(anyhow::Error::from)
                        })
                        .await
                        .unwrap_or_else(|e| Err(e.into()));
                        match r {
                            Ok((e, w)) if e + w > 0 => writeln!(err, "retention: pruned {e} events and {w} windows")?,
                            Ok(_) => {}
                            Err(e) => writeln!(err, "retention failed: {e:#}")?,
                        }
                    }
                    let (st, pr) = match &current {
                        Some((st, pr)) => (st.clone(), pr.clone()),
                        None => match tokio::task::block_in_place(fresh) {
                            Ok((st, pr)) => {
                                current = Some((st.clone(), pr.clone()));
                                if let Ok(mut c) = counters.centre.lock() {
                                    *c = Some(st.clone());
                                }
                                (st, pr)
                            }
                            Err(e) => {
                                writeln!(err, "detector: cannot open the store: {e:#}")?;
                                continue;
                            }
                        },
                    };
                    let r = tokio::task::spawn_blocking(move || match pr.lock() {
                        Ok(mut p) => p.step(&st, wall_clock()),
                        Err(_) => Err(StepError::Feed(CentreError::Poisoned("detector progress"))),
                    })
                    .await
                    .unwrap_or_else(|_| Err(StepError::Feed(CentreError::Poisoned("detector step"))));
                    let counted = match &r {
                        Ok(_) => &counters.steps,
                        Err(_) => &counters.steps_failed,
                    };
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    match r {
                        Ok(st) => {
                            counters.partials_refused.fetch_add(
                                st.refused.len() as u64,
                                std::sync::atomic::Ordering::Relaxed,
                            );
                            for why in st.refused {
                                writeln!(err, "detector: partial aggregate left out: {why}")?;
                            }
                        }
                        // Nothing fed: the next cycle reads again.
                        Err(StepError::Read(e)) => {
                            writeln!(err, "detector: cannot read the store: {e}")?;
                        }
                        Err(StepError::Feed(e)) => {
                            writeln!(
                                err,
                                "detector: step failed: {e:#}; rebuilding from the stored partial aggregates"
                            )?;
                            current = None;
                        }
                    }
                }
            }
        });
        close_notifier(rt, notifier, err)?;
        r
    }

    /// The longest the detector waits for the aggregators to drain the bus before it
    /// closes windows on what is committed.
    const BARRIER_WAIT: Duration = Duration::from_secs(10);
}
