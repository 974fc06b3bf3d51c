//! `scanwatch server`: the centre on the embedded default. Opens the SQLite store in
//! the data directory, replays the stored events into the pipeline (replay = live, so
//! the warnings after a restart are the ones before it), and serves the collector's
//! HTTP app until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use scanwatch_collector::{app, AppState};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::Pipeline;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::Store;

use crate::config::ServerConfig;

#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// TOML config file (docs/server.md); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (the SQLite store lives here) [default: scanwatch-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8470].
    #[arg(long)]
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

fn wall_clock() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}

pub fn run(args: &ServerArgs, err: &mut dyn Write) -> Result<()> {
    let file_cfg = args.effective_config()?;
    let cfg = file_cfg.detection_args().config()?;
    let data = file_cfg.server.data.clone();
    let listen = file_cfg.server.listen;
    let mut store = SqliteStore::open(&data)?;
    let retention = file_cfg.retention.millis()?;
    let now = wall_clock();
    let (pe, pw) = store.prune(
        Timestamp(now.0 - retention.0),
        Timestamp(now.0 - retention.1),
    )?;
    if pe + pw > 0 {
        writeln!(err, "retention: pruned {pe} events and {pw} windows")?;
    }
    let replay = store.events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))?;
    // Threat context from the data directory: imported advisories, assets and
    // benign scanners, and ports.toml. Loaded once at start (restart to reload).
    let ctx_args = crate::intel::ContextArgs {
        data: Some(data.clone()),
        ..Default::default()
    };
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
    let state = AppState::new(
        Box::new(store),
        pipeline,
        file_cfg.limits(),
        Arc::new(wall_clock),
    )
    .with_context(ctx);
    // Replay in stored time order, in runs of events of the same sensor.
    let mut i = 0;
    while i < replay.len() {
        let sensor = &replay[i].0;
        let run: Vec<_> = replay[i..]
            .iter()
            .take_while(|(s, _)| s == sensor)
            .map(|(_, e)| e.clone())
            .collect();
        i += run.len();
        state
            .feed(sensor, &run)
            .map_err(|e| anyhow::anyhow!("replay failed: {e:?}"))?;
    }
    writeln!(
        err,
        "replayed {} stored events from {}",
        replay.len(),
        data.display()
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let tls = match (&file_cfg.server.tls_cert, &file_cfg.server.tls_key) {
            (Some(c), Some(k)) => Some(tls_config(c, k).await?),
            _ => None,
        };
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen}"))?;
        listener.set_nonblocking(true)?;
        writeln!(
            err,
            "listening on {}://{}",
            if tls.is_some() { "https" } else { "http" },
            listener.local_addr()?
        )?;
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
        match tls {
            Some(tls) => {
                // axum-server does rustls; a handle gives the same graceful shutdown.
                let handle = axum_server::Handle::<SocketAddr>::new();
                let h = handle.clone();
                tokio::spawn(async move {
                    shutdown().await;
                    h.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
                });
                axum_server::from_tcp_rustls(listener, tls)?
                    .handle(handle)
                    .serve(app(state).into_make_service())
                    .await?;
            }
            None => {
                axum::serve(tokio::net::TcpListener::from_std(listener)?, app(state))
                    .with_graceful_shutdown(shutdown())
                    .await?;
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    writeln!(err, "stopped")?;
    Ok(())
}

/// Reads the certificate chain and key (PEM) into a rustls server config (ring
/// provider; TLS 1.2 and 1.3).
async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<axum_server::tls_rustls::RustlsConfig> {
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
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not fit together")?;
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(cfg),
    ))
}

/// Resolves on SIGINT or SIGTERM; in-flight requests finish (each batch commits in
/// one transaction, so none is half-applied).
async fn shutdown() {
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
