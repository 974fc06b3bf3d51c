//! `scanwatch server`: the centre on the embedded default. Opens the SQLite store in
//! the data directory, replays the stored events into the pipeline (replay = live, so
//! the warnings after a restart are the ones before it), and serves the collector's
//! HTTP app until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::Pipeline;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::Store;

use crate::admin::DEFAULT_DATA_DIR;
use crate::analyze::DetectionArgs;

#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// Data directory (the SQLite store lives here).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub detection: DetectionArgs,
}

fn wall_clock() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}

pub fn run(args: &ServerArgs, err: &mut dyn Write) -> Result<()> {
    let cfg = args.detection.config()?;
    let store = SqliteStore::open(&args.data)?;
    let replay = store.events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))?;
    let mut pipeline = Pipeline::new(cfg);
    pipeline.set_emit_windows(true);
    let state = AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
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
        args.data.display()
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        writeln!(err, "listening on http://{}", listener.local_addr()?)?;
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
