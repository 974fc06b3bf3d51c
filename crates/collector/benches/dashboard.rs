//! Dashboard render time with 30 days of windows loaded: 720 hourly windows × 200
//! ports (diurnal background, a few busy ports, one surge) with ten top sources
//! each, 40 sensors and a warning a day, stored directly (no pipeline). Then,
//! through the HTTP app (`oneshot`, no network, logged in): the overview, a port
//! page over 7 and 30 days, and a warning page.
//! Run with `cargo bench -p scanwatch-collector --bench dashboard -- --quick`.
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

use scanwatch_store::prelude::*;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use scanwatch_collector::web::auth::open_session;
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{AlertRow, Role, UserRecord, WindowRow};
use tower::ServiceExt;

const HOUR: i64 = 3_600_000;
const HOURS: i64 = 30 * 24;
const PORTS: u16 = 200;

struct Fixture {
    state: AppState,
    cookie: String,
    alert: i64,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    for i in 0..40 {
        store
            .add_sensor(&format!("sensor-{i:02}"), Timestamp(0))
            .unwrap();
    }
    store
        .put_user(
            &UserRecord {
                name: "bench".into(),
                role: Role::Admin,
                password_hash: "x".into(),
                created: Timestamp(0),
            },
            false,
        )
        .unwrap();
    let start = 1_795_000_000_000 / HOUR * HOUR;
    let end = start + HOURS * HOUR;
    let mut rows = Vec::with_capacity((HOURS as usize) * usize::from(PORTS));
    let mut alert = 0;
    for h in 0..HOURS {
        let diurnal = 1.0 + 0.5 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        for p in 0..PORTS {
            // Port numbers: the first 30 "well-known", then a tail.
            let port = if p < 30 { 20 + p * 37 } else { 1000 + p * 113 };
            let busy = if p < 10 {
                200.0
            } else {
                20.0 / (1.0 + f64::from(p) / 20.0)
            };
            let surge = if p == 5 && (HOURS - 30..HOURS - 20).contains(&h) {
                20.0
            } else {
                1.0
            };
            let sources = (busy * diurnal * surge).round().max(1.0) as u64;
            let top: Vec<String> = (0..10u64)
                .map(|k| {
                    format!(
                        "{{\"ip\":\"198.51.{}.{}\",\"events\":{}}}",
                        (u64::from(p) + k) % 256,
                        (h as u64 + k) % 256,
                        10 - k
                    )
                })
                .collect();
            rows.push(WindowRow {
                window_start: Timestamp(start + h * HOUR),
                window_end: Timestamp(start + (h + 1) * HOUR),
                proto: if p % 7 == 3 { 17 } else { 6 },
                port,
                events: sources * 4,
                sources,
                sensors: 12.min(sources),
                targets: sources * 2,
                top_sources_json: format!("[{}]", top.join(",")),
            });
        }
    }
    store.put_windows(&rows).unwrap();
    for d in 0..30 {
        let ws = start + (d * 24 + 12) * HOUR;
        let json = serde_json::json!({
            "type": "alert", "alert_kind": "surge", "protocol": "tcp", "port": 205,
            "window_start": Timestamp(ws).to_rfc3339(),
            "window_end": Timestamp(ws + HOUR).to_rfc3339(),
            "episode_start": Timestamp(ws).to_rfc3339(),
            "events": 4000, "sources": 1000, "sensors": 12, "active_sensors": 40,
            "baseline": {"events": 800.0, "sources": 200.0, "sensors": 12.0, "windows": 168},
            "score": 3.5, "severity": "high", "times_normal": 5.0,
            "headline": "TCP/205: 1000 sources (baseline 200)", "summary": "a surge",
            "top_sources": [{"ip": "198.51.100.1", "events": 10}],
            "advisories": [], "mitigations": [{"platform": "nftables", "rule": "tcp dport 205 drop"}],
            "exposed_assets": [],
        });
        alert = store
            .put_alert(&AlertRow {
                id: 0,
                kind: "surge".into(),
                proto: 6,
                port: 205,
                window_start: Timestamp(ws),
                severity_rank: 3,
                json: json.to_string(),
            })
            .unwrap();
    }
    let pipeline = Pipeline::new(PipelineConfig::new(HOUR, 7 * 24 * HOUR));
    // A live server: the clock is just past the newest window.
    let state = AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
        Arc::new(move || Timestamp(end + 60_000)),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cookie = rt.block_on(open_session(&state, "bench")).unwrap();
    Fixture {
        state,
        cookie,
        alert,
        rt,
        _dir: dir,
    }
}

async fn render(state: &AppState, cookie: &str, path: &str) -> usize {
    let req = Request::get(path)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let alert_path = format!("/alerts/{}", f.alert);
    let pages = [
        ("overview", "/"),
        ("port_7d_1h", "/ports/tcp/205?range=7d&window=1h"),
        ("port_30d_1h", "/ports/tcp/205?range=30d&window=1h"),
        ("port_30d_1d", "/ports/tcp/205?range=30d&window=1d"),
        ("warning", alert_path.as_str()),
    ];
    for (name, path) in pages {
        let bytes = f.rt.block_on(render(&f.state, &f.cookie, path));
        eprintln!("{name}: {path} is {bytes} bytes");
    }
    let mut g = c.benchmark_group("dashboard");
    g.sample_size(10);
    for (name, path) in pages {
        g.bench_function(name, |b| {
            b.iter(|| f.rt.block_on(render(&f.state, &f.cookie, path)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
