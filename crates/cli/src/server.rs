//! `scanwatch server`: the centre on the embedded default. Opens the SQLite store in
//! the data directory, replays the stored events into the pipeline (replay = live, so
//! the warnings after a restart are the ones before it), and serves the collector's
//! HTTP app until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use scanwatch_centre::{housekeeping, Centre, Housekeeping};
use scanwatch_collector::{app, AppState};
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
    pub window: Option<scanwatch_event::HumanDuration>,
    /// How far back the per-port baseline looks [default: 7d].
    #[arg(long)]
    pub history: Option<scanwatch_event::HumanDuration>,
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

pub(crate) use crate::clock::wall_clock;

/// Ranks the bounded samples (witnesses, spreads) under the deployment's seed
/// (`sample_seed`), before any cell is made, and logs the ranking's fingerprint (the same in every process
/// of a deployment); `from`: where the seed was read.
pub(crate) fn use_sample_seed(seed: u64, from: &str) -> Result<()> {
    scanwatch_aggregate::sample_seed::set_sample_seed(seed)?;
    tracing::info!(
        ranking = %format!("{:016x}", scanwatch_aggregate::sample_seed::ranking()),
        from,
        "bounded samples ranked under the deployment's sample seed"
    );
    Ok(())
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
    // The deployment's sample seed, before any cell is made (`sample_seed`).
    use_sample_seed(store.sample_seed()?, "the data directory")?;
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
    let keep = file_cfg.retention.keep()?;
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
        .with_retention(keep.events_ms)
        .with_context(ctx);
    // Retention first: the replay then reads only what is kept.
    housekeeping::prune(&centre.store, wall_clock(), keep)?;
    // Notification sinks: built before the replay, which re-raises the stored
    // warnings (each sink sends a warning once; see scanwatch_notify::state).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let notifier = spawn_notifier(
        &file_cfg,
        &|| Ok(Box::new(SqliteStore::open(&data)?)),
        &rt,
        err,
    )?;
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
    housekeeping::checkpoint(&centre, wall_clock());
    if replayed.future_events > 0 {
        writeln!(
            err,
            "replay: left out {} stored events dated beyond the clock skew (docs/time.md)",
            replayed.future_events
        )?;
    }
    let readers = (0..file_cfg.server.read_connections)
        .map(|_| {
            let reader = SqliteStore::open(&data)?;
            if file_cfg.store.map_reads {
                reader.map_for_reading()?;
            }
            Ok(Box::new(reader) as Box<dyn Store>)
        })
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
        // nothing arrives (docs/time.md); checkpoints, retention and the ends of
        // surges for the sinks.
        let clockwork = Housekeeping::spawn(
            centre.clone(),
            Arc::new(wall_clock),
            keep,
            notifier.as_ref().map(|n| n.resolve_hook()),
        )?;
        let served = front_door(listener, tls, state).await;
        clockwork.stop();
        served?;
        Ok::<(), anyhow::Error>(())
    })?;
    // The last one: a restart after a clean stop replays nothing.
    housekeeping::checkpoint(&centre, wall_clock());
    close_notifier(&rt, notifier, err)?;
    writeln!(err, "stopped")?;
    Ok(())
}

/// The notification sinks of a server config (`[[sinks]]`), if any, on `rt`; what
/// each sink sent is remembered in the store `open` connects to (the sinks' role
/// of it only).
pub(crate) fn spawn_notifier(
    cfg: &ServerConfig,
    open: &dyn Fn() -> Result<Box<dyn scanwatch_store::SinkStore>>,
    rt: &tokio::runtime::Runtime,
    err: &mut dyn Write,
) -> Result<Option<scanwatch_notify::Notifier>> {
    if cfg.sinks.is_empty() {
        return Ok(None);
    }
    let store = Arc::new(Mutex::new(open()?));
    let ncfg = scanwatch_notify::NotifyConfig {
        sinks: cfg.sinks.clone(),
    };
    let n = scanwatch_notify::Notifier::spawn(&ncfg, store, Arc::new(wall_clock), rt.handle())?;
    writeln!(err, "notify: {} sinks", ncfg.sinks.len())?;
    Ok(Some(n))
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

    use super::{
        bind, close_notifier, front_door, open_store, server_tls, shutdown, spawn_notifier,
        wall_clock, ServerArgs, ServerRole,
    };
    use crate::config::{ServerConfig, StoreKind};
    use anyhow::{bail, Result};
    use scanwatch_bus::{
        aggregate_handler, run_aggregator, AggregatorCounters, Detector, DetectorCounters, NatsBus,
    };
    use scanwatch_centre::Centre;
    use scanwatch_collector::ops::Readiness;
    use scanwatch_collector::AppState;
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
        // The aggregator's and the detector's /healthz and /metrics answer from
        // the start: "starting", with what the role waits for, until it serves.
        let readiness = Readiness::starting("the bus");
        let agg_counters = Arc::new(AggregatorCounters::default());
        let det_counters = Arc::new(DetectorCounters::default());
        let metrics: Option<(&'static str, scanwatch_collector::ops::MetricsFn)> = match args.role {
            ServerRole::Aggregator => {
                let c = agg_counters.clone();
                Some(("aggregator", Arc::new(move || c.prometheus())))
            }
            ServerRole::Detector => {
                let c = det_counters.clone();
                Some(("detector", Arc::new(move || c.prometheus())))
            }
            _ => None,
        };
        if let Some((role, metrics)) = metrics {
            let _rt = rt.enter();
            ops(&cfg, role, metrics, &readiness, err)?;
        }
        // Every role ranks the bounded samples under the deployment's seed,
        // shared through the bus (`sample_seed`), before any cell is made.
        let seed = rt.block_on(async { NatsBus::connect(&cfg.bus).await?.sample_seed().await })?;
        super::use_sample_seed(seed, "the bus")?;
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
                readiness.waiting_for("the store");
                let store = open_store(&cfg)?;
                let agg = cfg.detection_args().config()?.aggregate;
                // Known benign scanners are left out here, before aggregation, as the
                // embedded pipeline leaves them out (imported into the shared store).
                let (_, benign) = shared_context(&cfg, store.as_ref(), err)?;
                // The aggregator's role of the store only.
                let store: Box<dyn scanwatch_store::AggregatorStore> = store;
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
                    readiness.waiting_for("the bus");
                    let bus = NatsBus::connect(&cfg.bus).await?;
                    let (tx, rx) = tokio::sync::watch::channel(false);
                    let counters = agg_counters;
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
                    readiness.ready();
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
            ServerRole::Detector => detector(&rt, &cfg, det_counters, &readiness, err),
            ServerRole::All => bail!("role all is not a scale-out role"),
        }
    }

    /// Serves `/healthz` and `/metrics` on `[server] ops_listen`, if set (on the
    /// current runtime, until the process ends).
    fn ops(
        cfg: &ServerConfig,
        role: &'static str,
        metrics: scanwatch_collector::ops::MetricsFn,
        readiness: &Readiness,
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
        let router = scanwatch_collector::ops::ops_app(
            role,
            metrics,
            cfg.metrics_token()?,
            readiness.clone(),
        );
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
        counters: Arc<DetectorCounters>,
        readiness: &Readiness,
        err: &mut dyn Write,
    ) -> Result<()> {
        let pcfg = cfg.detection_args().config()?;
        readiness.waiting_for("the store");
        let shared = open_store(cfg)?;
        let (ctx, benign) = shared_context(cfg, shared.as_ref(), err)?;
        drop(shared);
        // Notification sinks, as in `--role all`: the detector raises the warnings.
        // Their state (what was sent to whom) is in the shared store, so a standby
        // that takes over sends nothing twice.
        let notifier = if cfg.sinks.is_empty() {
            None
        } else {
            spawn_notifier(cfg, &|| Ok(open_store(cfg)?), rt, err)?
        };
        let hook = notifier.as_ref().map(|n| n.hook());
        let fresh_cfg = cfg.clone();
        let keep = cfg.retention.keep()?;
        let detector = Detector {
            holder: format!("pid{}-{}", std::process::id(), wall_clock().0),
            ttl: cfg.bus.lease_ttl()?,
            keep,
            clock: Arc::new(wall_clock),
            // The pipeline over a fresh store connection, built again after a
            // failed step.
            fresh: Box::new(move || {
                let mut pipeline = Pipeline::new(pcfg);
                pipeline.set_emit_windows(true);
                pipeline.set_benign(benign.clone());
                pipeline.set_trusted(&ctx.explain.trusted_sensors);
                let store = open_store(&fresh_cfg).map_err(|e| format!("{e:#}"))?;
                let centre = Centre::for_partials(store, pipeline)
                    .with_retention(keep.events_ms)
                    .with_context(ctx.clone());
                Ok(match &hook {
                    Some(h) => centre.with_alert_hook(h.clone()),
                    None => centre,
                })
            }),
            resolve: notifier.as_ref().map(|n| n.resolve_hook()),
            counters,
        };
        let r = rt.block_on(async {
            readiness.waiting_for("the bus");
            let bus = NatsBus::connect(&cfg.bus).await?;
            // Serving: holding the lease or standing by (`scanwatch_detector_lease_held`).
            readiness.ready();
            detector.run(&bus, shutdown()).await;
            writeln!(err, "stopped")?;
            Ok::<(), anyhow::Error>(())
        });
        close_notifier(rt, notifier, err)?;
        r
    }
}
