//! The centre gives the same warnings as `analyze`: the golden seed-surge network is
//! submitted over the ingest API, sensor by sensor and hour by hour, and the read API
//! then returns exactly the warnings of `testdata/seed-surge/expected.jsonl`. Also
//! the read API's authorization and refusals.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use scanwatch_collector::{app, AppState, Limits, BATCH_HEADER};
use scanwatch_event::{Timestamp, WireEvent};
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::Role;
use serde_json::Value;
use tower::ServiceExt;

/// The centre's clock in these tests: after the events they send (the centre
/// refuses events further ahead of its clock than the clock skew allows).
const NOW: i64 = 1_795_694_400_000; // 2026-11-26T12:00:00Z

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_warnings_equal_analyze_warnings() {
    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let tokens: Vec<String> = (0..sc.sensors)
        .map(|i| store.add_sensor(&sc.sensor_name(i), Timestamp(0)).unwrap())
        .collect();
    let analyst = store
        .add_api_token("alice", Role::Analyst, Timestamp(0))
        .unwrap();
    // As the golden case's args: --window 1h --history 2d (other settings default).
    let mut pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 2 * 86_400_000));
    pipeline.set_emit_windows(true);
    let state = AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
        Arc::new(|| Timestamp(NOW)),
    );

    for (h, hour) in sc.generator().enumerate() {
        for s in 0..sc.sensors {
            let name = sc.sensor_name(s);
            let body: String = hour
                .iter()
                .filter(|(i, _)| *i == s)
                .map(|(_, e)| WireEvent::from_event(e, Some(&name)).to_line() + "\n")
                .collect();
            if body.is_empty() {
                continue;
            }
            let req = Request::post("/api/v1/events")
                .header("authorization", format!("Bearer {}", tokens[s as usize]))
                .header(BATCH_HEADER, format!("{name}-{h}"))
                .body(Body::from(body))
                .unwrap();
            let (st, v) = call(&state, req).await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
    }

    let (st, got) = call(&state, get("/api/v1/alerts", Some(&analyst))).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    let mut got: Vec<Value> = got.as_array().unwrap().clone();
    for g in &mut got {
        g.as_object_mut().unwrap().remove("id");
    }
    let expected_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/seed-surge/expected.jsonl"
    ))
    .unwrap();
    let mut expected: Vec<Value> = expected_text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "alert")
        .collect();
    let key = |v: &Value| {
        (
            v["window_start"].as_str().unwrap().to_string(),
            v["port"].as_u64().unwrap(),
        )
    };
    got.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "the server's warning differs from analyze's");
    }

    // One port's history, as `window` objects.
    let (st, hist) = call(
        &state,
        get(
            "/api/v1/ports/tcp/1025/history?from=2026-11-19T10:00:00Z&to=2026-11-19T11:00:00Z",
            Some(&analyst),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{hist}");
    let onset = &hist.as_array().unwrap()[0];
    assert_eq!(onset["window_start"], "2026-11-19T10:00:00Z");
    let golden_onset = expected
        .iter()
        .find(|e| e["window_start"] == "2026-11-19T10:00:00Z")
        .unwrap();
    assert_eq!(onset["sources"], golden_onset["sources"]);
    assert_eq!(onset["events"], golden_onset["events"]);

    // One alert by id; sensors.
    let (_, all) = call(
        &state,
        get("/api/v1/alerts?min_severity=critical", Some(&analyst)),
    )
    .await;
    let id = all[0]["id"].as_i64().unwrap();
    let (st, one) = call(&state, get(&format!("/api/v1/alerts/{id}"), Some(&analyst))).await;
    assert_eq!(
        (st, one["severity"].as_str()),
        (StatusCode::OK, Some("critical"))
    );
    let (st, sensors) = call(&state, get("/api/v1/sensors", Some(&analyst))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sensors.as_array().unwrap().len(), sc.sensors as usize);

    // Top ports over the surge day: TCP/1025 has the most sources; exact counts.
    let (st, top) = call(
        &state,
        get(
            "/api/v1/topports?by=sources&limit=3&from=2026-11-19T00:00:00Z&to=2026-11-20T00:00:00Z",
            Some(&analyst),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{top}");
    let top = top.as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert_eq!(
        (top[0]["protocol"].as_str(), top[0]["port"].as_u64()),
        (Some("tcp"), Some(1025))
    );
    assert!(top[0]["sources"].as_u64().unwrap() > 500, "{}", top[0]);
    // What one of the surge's top sources did.
    let ip = golden_onset["top_sources"][0]["ip"].as_str().unwrap();
    let (st, src) = call(
        &state,
        get(&format!("/api/v1/sources/{ip}"), Some(&analyst)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{src}");
    assert_eq!(src["ports"][0]["port"], 1025);
    assert!(
        src["events"].as_u64().unwrap()
            >= golden_onset["top_sources"][0]["events"].as_u64().unwrap()
    );

    // The warnings carry their context in the API too.
    let (_, all_alerts) = call(&state, get("/api/v1/alerts", Some(&analyst))).await;
    let first = &all_alerts.as_array().unwrap()[0];
    assert_eq!(first["service"]["name"], "blackjack", "{first}");
    assert!(first["confidence"].is_string());
    assert!(first["mitigations"][0]["rule"]
        .as_str()
        .unwrap()
        .contains("dport 1025"));

    // The Atom feed and the blocklist read the same stored warnings.
    let text = |req: Request<Body>| {
        let state = state.clone();
        async move {
            let resp = app(state).oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (st, atom) = text(get("/feeds/alerts.atom", Some(&analyst))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        atom.matches("<entry>").count(),
        all_alerts.as_array().unwrap().len().min(100)
    );
    assert!(atom.contains("TCP/1025: "), "{atom}");
    let (st, _) = text(get("/feeds/alerts.atom", None)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, list) = text(get("/api/v1/blocklist?format=txt", Some(&analyst))).await;
    assert_eq!(st, StatusCode::OK);
    // Every top source of the newest warning is listed.
    let newest = all_alerts
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|a| a["window_end"].as_str().unwrap().to_string())
        .unwrap();
    for src in newest["top_sources"].as_array().unwrap() {
        let ip = src["ip"].as_str().unwrap();
        assert!(list.lines().any(|l| l == ip), "{ip} not in {list}");
    }
    let (st, nft) = text(get("/api/v1/blocklist?format=nft&hours=6", Some(&analyst))).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        nft.contains("set sources_v4") && nft.contains("timeout 6h"),
        "{nft}"
    );
    let (st, _) = text(get("/api/v1/blocklist?format=pdf", Some(&analyst))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Refusals of the read API.
    for (path, token, want) in [
        ("/api/v1/alerts", None, StatusCode::UNAUTHORIZED),
        (
            "/api/v1/alerts",
            Some(tokens[0].as_str()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/api/v1/alerts?from=yesterday",
            Some(analyst.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/alerts?min_severity=huge",
            Some(analyst.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/alerts?bogus=1",
            Some(analyst.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/alerts/999999",
            Some(analyst.as_str()),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/alerts/x",
            Some(analyst.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/ports/sctp/1/history",
            Some(analyst.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/ports/tcp/70000/history",
            Some(analyst.as_str()),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (st, v) = call(&state, get(path, token)).await;
        assert_eq!(st, want, "{path}: {v}");
        assert!(v["error"].is_string(), "{path}: JSON error body: {v}");
    }
}
