//! `scanwatch server`: the centre on the embedded default. Opens the SQLite store in
//! the data directory, replays the stored events into the pipeline (replay = live, so
//! the warnings after a restart are the ones before it), and serves the collector's
//! HTTP app until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
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
    let mut pipeline = Pipeline::new(cfg);
    pipeline.set_emit_windows(true);
    let state = AppState::new(
        Box::new(store),
        pipeline,
        file_cfg.limits(),
        Arc::new(wall_clock),
    );
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
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        writeln!(err, "listening on http://{}", listener.local_addr()?)?;
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
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown())
            .await?;
        Ok::<(), anyhow::Error>(())
    })?;
    writeln!(err, "stopped")?;
    Ok(())
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
