//! The demo through the real centre: an embedded server on loopback with its own
//! store, the demo network's sensors registered with their own tokens and
//! submitting one batch per sensor and hour over HTTP, the warnings read back from
//! the read API, and a dashboard login printed so the result can be looked at.

use scanwatch_store::prelude::*;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::Datelike;
use scanwatch_alert::StoredWarning;
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_event::WireEvent;
use scanwatch_pipeline::Pipeline;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{new_token, Role, UserRecord};

use crate::demo::{describe, log_writers, scenario, start_date, DemoArgs};
use crate::intel::load_context;

/// The dashboard user the demo creates (an admin, so every page can be tried).
pub const DEMO_USER: &str = "demo";

/// Submissions of one batch are tried this often before the demo gives up.
const ATTEMPTS: u32 = 5;

use crate::clock::wall_clock;

/// POSTs one batch with the sensor's token, retrying (bounded) on 429, 5xx and
/// network errors as a sensor would.
fn submit(agent: &ureq::Agent, base: &str, token: &str, batch: &str, body: &str) -> Result<()> {
    let url = format!("{base}/api/v1/events");
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200 << attempt));
        }
        match agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("X-Scanwatch-Batch", batch)
            .send(body)
        {
            Ok(_) => return Ok(()),
            Err(ureq::Error::StatusCode(c)) if c == 429 || c >= 500 => last = format!("HTTP {c}"),
            Err(ureq::Error::StatusCode(c)) => bail!("the centre refused batch {batch}: HTTP {c}"),
            Err(e) => last = e.to_string(),
        }
    }
    bail!("cannot deliver batch {batch} after {ATTEMPTS} attempts: {last}")
}

pub fn run(args: &DemoArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let cfg = args.detection.config()?;
    let start = start_date(args)?;
    let sc = scenario(start);
    let (ctx, benign) = load_context(&args.context, start.year(), err)?;

    // The centre's own store: a fresh directory each run (inside --data when given,
    // so it can be opened later with `scanwatch server --data DATA/demo-centre`).
    let _tmp;
    let store_dir: PathBuf = match &args.context.data {
        Some(d) => {
            let p = d.join("demo-centre");
            if p.exists() {
                std::fs::remove_dir_all(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
            p
        }
        None => {
            _tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
            _tmp.path().to_path_buf()
        }
    };
    let mut store = SqliteStore::open(&store_dir)?;
    // As the server does: the store's sample seed (`sample_seed`).
    crate::server::use_sample_seed(store.sample_seed()?, "the demo's store")?;
    let now = wall_clock();
    let names: Vec<String> = (0..sc.sensors).map(|i| sc.sensor_name(i)).collect();
    let mut tokens = Vec::with_capacity(names.len());
    for n in &names {
        tokens.push(store.add_sensor(n, now)?);
    }
    let api_token = store.add_api_token("demo", Role::Analyst, now)?;
    // 24 hex digits of a fresh 256-bit token: a random password for the dashboard.
    let password = new_token()?[4..28].to_string();
    let hash = scanwatch_collector::web::auth::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("cannot hash the demo password: {e:?}"))?;
    store.put_user(
        &UserRecord {
            name: DEMO_USER.into(),
            role: Role::Admin,
            password_hash: hash,
            created: now,
        },
        true,
    )?;

    let mut pipeline = Pipeline::new(cfg);
    pipeline.set_emit_windows(true);
    pipeline.set_benign(benign);
    // The simulated sensors replay ten days in seconds: no per-sensor rate limit.
    let limits = Limits {
        max_events_per_second_per_sensor: u64::MAX / 64,
        ..Limits::default()
    };
    let state =
        AppState::new(Box::new(store), pipeline, limits, Arc::new(wall_clock)).with_context(ctx);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(async move {
        axum::serve(
            tokio::net::TcpListener::from_std(listener)?,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
    });

    writeln!(err, "{}", describe(&sc))?;
    writeln!(
        err,
        "centre listening on {base} (store {}); {} sensors submit over HTTP",
        store_dir.display(),
        names.len()
    )?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut writers = match &args.write_logs {
        Some(dir) => log_writers(dir, &names)?,
        None => Vec::new(),
    };
    let bar = indicatif::ProgressBar::new(u64::from(sc.hours)).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} simulated hours {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut events, mut batches) = (0u64, 0u64);
    for (hour, items) in sc.generator().enumerate() {
        let mut bodies = vec![String::new(); names.len()];
        for (s, e) in &items {
            let i = *s as usize;
            if let Some(w) = writers.get_mut(i) {
                writeln!(w, "{}", scanwatch_simulate::netfilter_line(&names[i], e))?;
            }
            bodies[i].push_str(&WireEvent::from_event(e, None).to_line());
            bodies[i].push('\n');
        }
        events += items.len() as u64;
        // Two sensors at a time: the centre is one process on a small machine.
        let work: Vec<usize> = (0..names.len())
            .filter(|i| !bodies[*i].is_empty())
            .collect();
        batches += work.len() as u64;
        std::thread::scope(|scope| -> Result<()> {
            let handles: Vec<_> = work
                .chunks(work.len().div_ceil(2).max(1))
                .map(|chunk| {
                    let (agent, base, names, tokens, bodies) =
                        (&agent, &base, &names, &tokens, &bodies);
                    scope.spawn(move || -> Result<()> {
                        for &i in chunk {
                            let id = format!("demo-{}-{hour}", names[i]);
                            submit(agent, base, &tokens[i], &id, &bodies[i])?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a simulated sensor thread panicked"))??;
            }
            Ok(())
        })?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    for w in writers {
        w.finish()?.flush()?;
    }
    writeln!(
        err,
        "submitted {events} events in {batches} batches from {} sensors",
        names.len()
    )?;

    let body = agent
        .get(&format!("{base}/api/v1/alerts"))
        .header("Authorization", &format!("Bearer {api_token}"))
        .call()
        .context("cannot read the warnings from the centre")?
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .context("cannot read the warnings from the centre")?;
    let mut alerts: Vec<StoredWarning> =
        serde_json::from_str(&body).context("the centre's warnings are not warnings")?;
    alerts.sort_by_key(|a| (a.warning.window_start, a.warning.port));
    if args.json {
        for a in &alerts {
            writeln!(out, "{}", serde_json::to_string(a)?)?;
        }
    } else {
        let updates = alerts.iter().filter(|a| a.warning.update).count();
        writeln!(
            out,
            "{} warnings stored by the centre ({} new surges or trends, {updates} updates of running surges):\n",
            alerts.len(),
            alerts.len() - updates
        )?;
        for a in alerts.iter().filter(|a| !a.warning.update) {
            writeln!(
                out,
                "[{}] #{} {}\n",
                a.warning.severity.name().to_uppercase(),
                a.id,
                a.warning.summary
            )?;
        }
    }
    // The warnings now, not when the centre stops (stdout is buffered).
    out.flush()?;
    let first = alerts.iter().find(|a| !a.warning.update).map(|a| a.id);
    writeln!(err, "dashboard: {base}/")?;
    if let Some(id) = first {
        writeln!(err, "first warning: {base}/alerts/{id}")?;
    }
    writeln!(err, "login: user {DEMO_USER} password {password}")?;
    writeln!(
        err,
        "API: curl -H 'Authorization: Bearer {api_token}' {base}/api/v1/alerts"
    )?;
    if args.serve {
        writeln!(err, "serving until Ctrl-C")?;
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    } else {
        writeln!(
            err,
            "the centre stops now: run with --serve to keep it up and look"
        )?;
    }
    let _ = stop_tx.send(());
    rt.block_on(server)
        .context("the demo centre failed")?
        .context("the demo centre failed")?;
    Ok(())
}
