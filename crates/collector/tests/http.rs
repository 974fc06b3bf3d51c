//! The ingest API driven with `oneshot`: every refusal path answers a 4xx with a JSON
//! error and is counted, nothing refused is stored, and resends are harmless.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use scanwatch_collector::{app, AppState, Limits, BATCH_HEADER};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

/// The centre's clock in these tests: after the events they send (the centre
/// refuses events further ahead of its clock than the clock skew allows).
const NOW: i64 = 1_795_694_400_000; // 2026-11-26T12:00:00Z

const LINE: &str = r#"{"v":1,"time":"2026-11-26T10:40:00Z","proto":"tcp","src":"192.0.2.1","dst":"198.18.0.1","dst_port":1025,"flags":"S"}"#;

struct Setup {
    state: AppState,
    token: String,
    revoked: String,
    _dir: tempfile::TempDir,
}

fn setup(limits: Limits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let token = store.add_sensor("fw-1", Timestamp(0)).unwrap();
    let revoked = store.add_sensor("old", Timestamp(0)).unwrap();
    store.revoke_sensor("old").unwrap();
    let pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000));
    let state = AppState::new(
        Box::new(store),
        pipeline,
        limits,
        Arc::new(|| Timestamp(NOW)),
    );
    Setup {
        state,
        token,
        revoked,
        _dir: dir,
    }
}

/// A server over `store` (kept in `dir`) with the tests' pipeline and clock and
/// `limits`; `token` is its sensor's.
fn serve(dir: tempfile::TempDir, store: SqliteStore, token: &str, limits: Limits) -> Setup {
    let state = AppState::new(
        Box::new(store),
        Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000)),
        limits,
        Arc::new(|| Timestamp(NOW)),
    );
    Setup {
        state,
        token: token.to_string(),
        revoked: String::new(),
        _dir: dir,
    }
}

async fn post(
    s: &Setup,
    token: Option<&str>,
    batch: Option<&str>,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::post("/api/v1/events");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = batch {
        req = req.header(BATCH_HEADER, b);
    }
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = app(s.state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Posts a batch with the sensor's token and answers its status, its
/// `Retry-After` (if any) and its JSON body.
async fn post_retry_after(
    s: &Setup,
    token: &str,
    batch: &str,
    body: Vec<u8>,
) -> (StatusCode, Option<String>, Value) {
    let req = Request::post("/api/v1/events")
        .header("authorization", format!("Bearer {token}"))
        .header(BATCH_HEADER, batch)
        .body(Body::from(body))
        .unwrap();
    send(s, req).await
}

/// Sends `req` to the server and answers its status, its `Retry-After` (if any)
/// and its JSON body.
async fn send(s: &Setup, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let resp = app(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, after, serde_json::from_slice(&bytes).unwrap())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn stored(s: &Setup) -> usize {
    s.state
        .store
        .lock()
        .unwrap()
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .len()
}

#[tokio::test]
async fn accepted_once_then_duplicate() {
    let s = setup(Limits::default());
    let body = format!("{LINE}\n{LINE}\n").into_bytes();
    let (st, v) = post(&s, Some(&s.token), Some("b-1"), None, body.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"batch": "b-1", "accepted": 2, "duplicate": false})
    );
    let (st, v) = post(&s, Some(&s.token), Some("b-1"), None, body).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["duplicate"], true);
    assert_eq!(stored(&s), 2, "a resend is not stored twice");
    let (st, v) = post(
        &s,
        Some(&s.token),
        Some("b-2"),
        Some("gzip"),
        gzip(LINE.as_bytes()),
    )
    .await;
    assert_eq!((st, v["accepted"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(stored(&s), 3);
    let zstd = ruzstd::encoding::compress_to_vec(
        format!("{LINE}\n{LINE}\n").as_bytes(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let (st, v) = post(&s, Some(&s.token), Some("b-3"), Some("zstd"), zstd).await;
    assert_eq!(
        (st, v["accepted"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    assert_eq!(stored(&s), 5);
    let c = &s.state.counters;
    assert_eq!(c.batches_accepted.load(Ordering::Relaxed), 3);
    assert_eq!(c.batches_duplicate.load(Ordering::Relaxed), 1);
    assert_eq!(c.events_accepted.load(Ordering::Relaxed), 5);
}

/// (name, token, batch id, content-encoding, body, expected status, expected message)
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Vec<u8>,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn every_refusal_is_a_json_4xx_and_stores_nothing() {
    let limits = Limits {
        max_body_bytes: 4096,
        max_decompressed_bytes: 8192,
        max_events_per_batch: 3,
        ..Limits::default()
    };
    let s = setup(limits);
    let one = LINE.as_bytes().to_vec();
    let cases: Vec<Case> = vec![
        (
            "no token",
            None,
            Some("b"),
            None,
            one.clone(),
            StatusCode::UNAUTHORIZED,
            "sensor token",
        ),
        (
            "bad token",
            Some("swt_nope"),
            Some("b"),
            None,
            one.clone(),
            StatusCode::UNAUTHORIZED,
            "sensor token",
        ),
        (
            "revoked",
            Some(s.revoked.as_str()),
            Some("b"),
            None,
            one.clone(),
            StatusCode::UNAUTHORIZED,
            "revoked",
        ),
        (
            "no batch id",
            Some(s.token.as_str()),
            None,
            None,
            one.clone(),
            StatusCode::BAD_REQUEST,
            BATCH_HEADER,
        ),
        (
            "bad batch id",
            Some(s.token.as_str()),
            Some("a b"),
            None,
            one.clone(),
            StatusCode::BAD_REQUEST,
            BATCH_HEADER,
        ),
        (
            "oversized",
            Some(s.token.as_str()),
            Some("b"),
            None,
            vec![b' '; 5000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds 4096 bytes",
        ),
        (
            "gzip bomb",
            Some(s.token.as_str()),
            Some("b"),
            Some("gzip"),
            gzip(&vec![b'\n'; 1 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "decompressed body exceeds 8192",
        ),
        (
            "bad gzip",
            Some(s.token.as_str()),
            Some("b"),
            Some("gzip"),
            b"not gzip".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid gzip",
        ),
        (
            "brotli",
            Some(s.token.as_str()),
            Some("b"),
            Some("br"),
            one.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-encoding",
        ),
        (
            "zstd bomb",
            Some(s.token.as_str()),
            Some("b"),
            Some("zstd"),
            ruzstd::encoding::compress_to_vec(
                &vec![b'\n'; 1 << 20][..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "decompressed body exceeds 8192",
        ),
        (
            "bad zstd",
            Some(s.token.as_str()),
            Some("b"),
            Some("zstd"),
            b"not zstd".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid zstd",
        ),
        (
            "malformed line",
            Some(s.token.as_str()),
            Some("b"),
            None,
            format!("{LINE}\n{{\"time\":\"x\"}}\n").into_bytes(),
            StatusCode::BAD_REQUEST,
            "line 2:",
        ),
        (
            "not utf-8",
            Some(s.token.as_str()),
            Some("b"),
            None,
            vec![0xff, 0xfe],
            StatusCode::BAD_REQUEST,
            "utf-8",
        ),
        (
            "too many events",
            Some(s.token.as_str()),
            Some("b"),
            None,
            format!("{LINE}\n{LINE}\n{LINE}\n{LINE}\n").into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "more than 3 events",
        ),
    ];
    for (name, token, batch, enc, body, want, msg) in cases {
        let (st, v) = post(&s, token, batch, enc, body).await;
        assert_eq!(st, want, "{name}: {v}");
        let err = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no JSON error body: {v}"));
        assert!(err.contains(msg), "{name}: {err}");
    }
    assert_eq!(stored(&s), 0, "nothing refused is stored");
    let c = &s.state.counters;
    assert_eq!(c.refused_unauthorized.load(Ordering::Relaxed), 3);
    assert_eq!(c.refused_malformed.load(Ordering::Relaxed), 6);
    assert_eq!(c.refused_too_large.load(Ordering::Relaxed), 4);
    assert_eq!(c.refused_encoding.load(Ordering::Relaxed), 1);
    // The batch id of a refused request is still free.
    let (st, _) = post(&s, Some(&s.token), Some("b"), None, one).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn health() {
    let s = setup(Limits::default());
    let resp = app(s.state.clone())
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_sensor_over_its_rate_gets_429_and_recovers() {
    use std::sync::atomic::AtomicI64;
    let now = Arc::new(AtomicI64::new(NOW));
    let clock_now = now.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let token = store.add_sensor("fw-1", Timestamp(0)).unwrap();
    // 1 event/s, bucket of 10.
    let limits = Limits {
        max_events_per_second_per_sensor: 1,
        ..Limits::default()
    };
    let pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000));
    let state = AppState::new(
        Box::new(store),
        pipeline,
        limits,
        Arc::new(move || Timestamp(clock_now.load(Ordering::Relaxed))),
    );
    let s = Setup {
        state,
        token: token.clone(),
        revoked: String::new(),
        _dir: dir,
    };
    let eight = format!("{LINE}\n").repeat(8).into_bytes();
    assert_eq!(
        post(&s, Some(&token), Some("a"), None, eight.clone())
            .await
            .0,
        StatusCode::OK
    );
    let (st, after, v) = post_retry_after(&s, &token, "b", eight.clone()).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    // Two left of ten: six more seconds at one a second hold the batch.
    assert_eq!(after.as_deref(), Some("6"));
    assert!(v["error"].as_str().unwrap().contains("retry later"));
    // Six seconds later the bucket holds 8 again.
    now.store(NOW + 6_000, Ordering::Relaxed);
    assert_eq!(
        post(&s, Some(&token), Some("b"), None, eight).await.0,
        StatusCode::OK
    );
    assert_eq!(stored(&s), 16);
    assert_eq!(
        s.state
            .counters
            .refused_rate_limited
            .load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = setup(Limits::default());
    let _ = post(&s, None, Some("b"), None, LINE.as_bytes().to_vec()).await;
    let _ = post(
        &s,
        Some(&s.token),
        Some("b"),
        None,
        LINE.as_bytes().to_vec(),
    )
    .await;
    let resp = app(s.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("scanwatch_events_accepted_total 1\n"),
        "{text}"
    );
    // One accepted batch: one latency observation, in the +Inf bucket and counted.
    assert!(
        text.contains("scanwatch_ingest_latency_seconds_bucket{le=\"+Inf\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("scanwatch_ingest_latency_seconds_count 1\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE scanwatch_ingest_latency_seconds histogram"));
    assert!(text.contains("scanwatch_windows_closed_total "), "{text}");
    assert!(
        text.contains("scanwatch_requests_refused_total{reason=\"unauthorized\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE scanwatch_batches_accepted_total counter"),
        "{text}"
    );
}

#[tokio::test]
async fn heartbeats_are_recorded_and_refused_without_a_sensor_token() {
    let s = setup(Limits::default());
    let hb = |token: Option<&str>, body: &str| {
        let mut r = Request::post("/api/v1/heartbeat");
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.body(Body::from(body.to_string())).unwrap()
    };
    let resp = app(s.state.clone())
        .oneshot(hb(
            Some(&s.token),
            r#"{"spool_batches":2,"spool_bytes":1234}"#,
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for (token, body, want) in [
        (None, "{}", StatusCode::UNAUTHORIZED),
        (Some(s.revoked.as_str()), "{}", StatusCode::UNAUTHORIZED),
        (Some(s.token.as_str()), "not json", StatusCode::BAD_REQUEST),
        (Some(s.token.as_str()), "[1]", StatusCode::BAD_REQUEST),
    ] {
        let resp = app(s.state.clone()).oneshot(hb(token, body)).await.unwrap();
        assert_eq!(resp.status(), want, "{body}");
    }
    let rec = s
        .state
        .store
        .lock()
        .unwrap()
        .sensors()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "fw-1")
        .unwrap();
    let (at, json) = rec.heartbeat.unwrap();
    assert_eq!(at, Timestamp(NOW));
    assert!(json.contains("\"spool_batches\":2"), "{json}");
}

#[tokio::test]
async fn ids_facts_sent_with_events_are_kept_for_confirmation() {
    let mut s = setup(Limits::default());
    s.state = s
        .state
        .clone()
        .with_context(scanwatch_context::ContextData::builtin());
    let ids_line = r#"{"v":1,"time":"2026-11-26T10:41:00Z","proto":"tcp","src":"192.0.2.9","dst":"198.18.0.1","dst_port":445,"ids":{"rule":"2024218","signature":"ET EXPLOIT Possible ETERNALBLUE MS17-010","cves":["CVE_2017_0144","not-a-cve"]}}"#;
    let body = format!("{LINE}\n{ids_line}\n");
    let (status, v) = post(
        &s,
        Some(&s.token),
        Some("ids-1"),
        None,
        body.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2);
    // A resend is a duplicate and adds no second copy.
    let (status, v) = post(&s, Some(&s.token), Some("ids-1"), None, body.into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["duplicate"], true);
    let ctx = s.state.context.read().unwrap();
    assert_eq!(
        ctx.ids.len(),
        1,
        "only the line with IDS facts is an IDS alert"
    );
    let h = &ctx.ids[0];
    assert_eq!(h.cves, ["CVE-2017-0144"], "normalised, invalid dropped");
    assert_eq!((h.dst_port, h.rule.as_str()), (Some(445), "2024218"));
    drop(ctx);
    let stored = s
        .state
        .store
        .lock()
        .unwrap()
        .context_items(scanwatch_store::ContextKind::Ids)
        .unwrap();
    assert_eq!(
        stored.len(),
        1,
        "stored with the batch, for replay at start"
    );
    assert_eq!(stored[0].origin, "fw-1");
}

/// The sensor token is checked before the body is read: a request without a
/// valid token is answered 401 with none of its body read, so an unauthenticated
/// client cannot make the centre buffer megabytes.
#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    use std::sync::atomic::AtomicBool;
    let s = setup(Limits::default());
    let request = |path: &str, token: Option<&str>, read: Arc<AtomicBool>| {
        let body = http_body_util::Full::new(axum::body::Bytes::from(vec![b'x'; 1 << 20]))
            .map_frame(move |f| {
                read.store(true, Ordering::Relaxed);
                f
            });
        let mut req = Request::post(path).header(BATCH_HEADER, "b1");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.body(Body::new(body)).unwrap()
    };
    for token in [None, Some("swt_not-a-token"), Some(s.revoked.as_str())] {
        for path in ["/api/v1/events", "/api/v1/heartbeat"] {
            let read = Arc::new(AtomicBool::new(false));
            let resp = app(s.state.clone())
                .oneshot(request(path, token, read.clone()))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path} {token:?}");
            assert!(
                !read.load(Ordering::Relaxed),
                "{path} {token:?}: the body was read"
            );
        }
    }
    // With the sensor's token the same body is read, and refused for what it is.
    for (path, want) in [
        ("/api/v1/events", StatusCode::BAD_REQUEST),
        ("/api/v1/heartbeat", StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let read = Arc::new(AtomicBool::new(false));
        let resp = app(s.state.clone())
            .oneshot(request(path, Some(&s.token), read.clone()))
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{path}");
        assert!(read.load(Ordering::Relaxed), "{path}: the body was read");
    }
}

/// A store that defers its counting into the aggregates (as the server's does)
/// is counted after the answers: the ingest handler runs `count_due` once a batch
/// is answered. 24,000 events in three batches (the embedded store counts once
/// 20,000 wait): the watermark of what is counted moves without another request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferring_store_is_counted_after_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let token = store.add_sensor("fw-1", Timestamp(0)).unwrap();
    store.defer_counting();
    let db = store.path().to_path_buf();
    let s = serve(dir, store, &token, Limits::default());
    let watermark = || -> i64 {
        rusqlite::Connection::open(db.with_file_name("counts.db"))
            .unwrap()
            .query_row("SELECT block_id FROM counted", [], |r| r.get(0))
            .unwrap()
    };
    for b in 0..3 {
        let body: String = (0..8_000)
            .map(|i| {
                let n = b * 8_000 + i;
                format!(
                    "{{\"v\":1,\"time\":\"2026-11-26T10:{:02}:{:02}Z\",\"proto\":\"tcp\",\"src\":\"192.0.2.{}\",\"dst\":\"198.18.0.1\",\"dst_port\":{},\"flags\":\"S\"}}\n",
                    n / 60 % 60,
                    n % 60,
                    n % 250,
                    1000 + n % 50
                )
            })
            .collect();
        let (st, v) = post(
            &s,
            Some(&token),
            Some(&format!("b-{b}")),
            None,
            body.into_bytes(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        if b < 2 {
            assert_eq!(watermark(), 0, "16,000 events wait: not counted yet");
        }
    }
    // Counted in a task of its own after the third answer: bounded wait.
    let mut counted = false;
    for _ in 0..100 {
        if watermark() > 0 {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(counted, "the waiting events were never counted");
    assert_eq!(stored(&s), 24_000);
}

/// Ten thousand events in a batch body, batch `b`'s own.
fn ten_thousand(b: usize) -> Vec<u8> {
    (0..10_000)
        .map(|i| {
            let n = b * 10_000 + i;
            format!(
                "{{\"v\":1,\"time\":\"2026-11-26T10:{:02}:{:02}Z\",\"proto\":\"tcp\",\"src\":\"192.0.{}.{}\",\"dst\":\"198.18.0.1\",\"dst_port\":{},\"flags\":\"S\"}}\n",
                n / 60 % 60,
                n % 60,
                n / 250 % 250,
                n % 250,
                1000 + n % 50
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// A server whose store defers its counting (as `scanwatch server` wires it),
/// with at most 40,000 events waiting to be counted, and its `counts.db`.
fn backlog_setup() -> (Setup, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let token = store.add_sensor("fw-1", Timestamp(0)).unwrap();
    store.defer_counting();
    let counts_file = store.path().with_file_name("counts.db");
    let limits = Limits {
        max_uncounted_events: 40_000,
        ..Limits::default()
    };
    (serve(dir, store, &token, limits), counts_file)
}

fn metric(s: &Setup, name: &str) -> u64 {
    let text = s.state.counters.prometheus(&s.state.centre.counters);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

/// While `max_uncounted_events` stored events wait to be counted into the
/// aggregates (a flood faster than the counting), batches are answered 503 with
/// `Retry-After`, nothing of them stored, counted and shown in `/metrics`; once
/// the counting catches up, the batch sent again is stored, once. The counting is
/// held back here by holding the aggregates' file's write lock (the counting
/// started at 20,000 waits for it, under SQLite's 10 s busy timeout: the test
/// releases it well within).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counting_backlog_over_the_bound_refuses_batches_until_counted() {
    let (s, counts_file) = backlog_setup();
    let token = s.token.clone();
    let lock = rusqlite::Connection::open(&counts_file).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let body = ten_thousand;
    let metric = |name: &str| metric(&s, name);
    // 0, 10,000, 20,000 and 30,000 wait before each: under the bound.
    for b in 0..4 {
        let (st, v) = post(&s, Some(&token), Some(&format!("b-{b}")), None, body(b)).await;
        assert_eq!(st, StatusCode::OK, "batch {b}: {v}");
    }
    assert!(
        !s.state.centre.counting_fails(),
        "the counting waits, not fails"
    );
    // 40,000 wait: refused, with why.
    let (st, after, v) = post_retry_after(&s, &token, "b-4", body(4)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(after.as_deref(), Some("1"));
    let why = v["error"].as_str().unwrap();
    assert!(
        why.contains("40000 stored events wait") && why.contains("from 40000 on"),
        "{why}"
    );
    assert_eq!(stored(&s), 40_000, "nothing of the refused batch is stored");
    assert_eq!(
        metric("scanwatch_requests_refused_total{reason=\"backlog\"}"),
        1
    );
    assert_eq!(metric("scanwatch_uncounted_events"), 40_000);
    // A stranger is refused for its token, and learns nothing of the backlog,
    // not even with a stored batch id.
    let (st, _) = post(&s, Some("wrong"), Some("b-2"), None, body(2)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // A batch sent again that is stored already is answered as delivered (a
    // duplicate), not refused: its sender can let go of it.
    let (st, v) = post(&s, Some(&token), Some("b-2"), None, body(2)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["duplicate"], true, "{v}");
    assert_eq!(v["accepted"], 0, "{v}");
    assert_eq!(stored(&s), 40_000);
    assert_eq!(metric("scanwatch_batches_duplicate_total"), 1);
    // When the lookup of the batch id fails (here the store's table of batch ids
    // renamed away by another connection, while the tokens and the backlog still
    // read), the batch is refused as any other: 503, not an error of the centre,
    // and nothing stored; once the table is back, it is the duplicate again.
    let store_file = counts_file.with_file_name(scanwatch_store::sqlite::DB_FILE);
    let other_conn = rusqlite::Connection::open(&store_file).unwrap();
    other_conn
        .execute_batch("ALTER TABLE batches RENAME TO batches_away")
        .unwrap();
    let (st, v) = post(&s, Some(&token), Some("b-2"), None, body(2)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(
        metric("scanwatch_requests_refused_total{reason=\"backlog\"}"),
        2
    );
    other_conn
        .execute_batch("ALTER TABLE batches_away RENAME TO batches")
        .unwrap();
    let (st, v) = post(&s, Some(&token), Some("b-2"), None, body(2)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["duplicate"], true, "{v}");
    assert_eq!(stored(&s), 40_000);
    assert_eq!(metric("scanwatch_batches_duplicate_total"), 2);
    // Another sensor sending that id is refused: the id is stored for fw-1,
    // not for it. So is fw-1's next new batch, and a batch without an id.
    let other = s
        .state
        .store
        .lock()
        .unwrap()
        .add_sensor("fw-2", Timestamp(0))
        .unwrap();
    let (st, v) = post(&s, Some(&other), Some("b-2"), None, body(2)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let (st, v) = post(&s, Some(&token), Some("b-5"), None, body(5)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let (st, v) = post(&s, Some(&token), None, None, body(5)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(stored(&s), 40_000);
    assert_eq!(
        metric("scanwatch_requests_refused_total{reason=\"backlog\"}"),
        4
    );
    // The counting goes on once the lock goes (a counting waits on it, another
    // is started by the refusal): bounded wait for it to catch up.
    // Still waiting on the lock (SQLite's busy timeout is 10 s): had it failed,
    // no counting would be left to catch up.
    assert!(
        !s.state.centre.counting_fails(),
        "the held-up counting failed"
    );
    lock.execute_batch("COMMIT").unwrap();
    let mut counted = false;
    for _ in 0..200 {
        if s.state.store.lock().unwrap().uncounted().unwrap() == 0 {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(counted, "the waiting events were never counted");
    let (st, v) = post(&s, Some(&token), Some("b-4"), None, body(4)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 10_000);
    assert_eq!(stored(&s), 50_000);
    assert_eq!(metric("scanwatch_uncounted_events"), 0);
    assert_eq!(
        metric("scanwatch_requests_refused_total{reason=\"backlog\"}"),
        4
    );
}

/// A counting that fails does not stop ingest, however many events wait:
/// refusing batches would count nothing and only keep them from detection. The
/// counting fails here for a table of the aggregates' file gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_counting_does_not_refuse_batches() {
    let (s, counts_file) = backlog_setup();
    rusqlite::Connection::open(&counts_file)
        .unwrap()
        .execute_batch("DROP TABLE port_cells")
        .unwrap();
    for b in 0..4 {
        let (st, v) = post(
            &s,
            Some(&s.token),
            Some(&format!("b-{b}")),
            None,
            ten_thousand(b),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "batch {b}: {v}");
    }
    // The counting after the answers (20,000 and more waiting) fails: bounded wait.
    let mut failed = false;
    for _ in 0..200 {
        if s.state.centre.counting_fails() {
            failed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(failed, "the counting did not fail");
    let (st, v) = post(&s, Some(&s.token), Some("b-4"), None, ten_thousand(4)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(stored(&s), 50_000);
    assert_eq!(metric(&s, "scanwatch_uncounted_events"), 40_000);
    assert_eq!(metric(&s, "scanwatch_counting_failing"), 1);
    assert_eq!(
        metric(&s, "scanwatch_requests_refused_total{reason=\"backlog\"}"),
        0
    );
}

/// A damaged aggregate met by a read (`/api/v1/topports` over the counted
/// cells): 503 with `Retry-After` and a message of what happens (none of the
/// store's detail), and the read starts a counting (no batch comes) that counts
/// the aggregates again from the stored events: the read then answers as before
/// the damage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_aggregate_answers_busy_until_counted_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let token = store.add_sensor("fw-1", Timestamp(0)).unwrap();
    let analyst = store
        .add_api_token("alice", scanwatch_store::Role::Analyst, Timestamp(0))
        .unwrap();
    let counts_file = store.path().with_file_name("counts.db");
    let s = serve(dir, store, &token, Limits::default());
    // 20,000 events: counted into the cells by the second batch's commit.
    for b in 0..2 {
        let (st, v) = post(
            &s,
            Some(&token),
            Some(&format!("b-{b}")),
            None,
            ten_thousand(b),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let top = || async {
        let req = Request::get(
            "/api/v1/topports?by=sources&limit=5&from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z",
        )
        .header("authorization", format!("Bearer {analyst}"))
        .body(Body::empty())
        .unwrap();
        send(&s, req).await
    };
    let (st, _, before) = top().await;
    assert_eq!(st, StatusCode::OK, "{before}");
    assert_eq!(before.as_array().map(Vec::len), Some(5), "{before}");
    let hit = rusqlite::Connection::open(&counts_file)
        .unwrap()
        .execute("UPDATE port_cells SET src = x'ff00ff'", [])
        .unwrap();
    assert!(hit > 0);
    let (st, after, v) = top().await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(after.as_deref(), Some("1"));
    assert_eq!(
        v["error"],
        "the stored aggregates are being counted again; try again shortly"
    );
    // The counting runs in a task of its own: bounded wait for the read to
    // answer again.
    let mut again = None;
    for _ in 0..100 {
        let (st, _, v) = top().await;
        if st == StatusCode::OK {
            again = Some(v);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        again.as_ref(),
        Some(&before),
        "the aggregates were never counted again"
    );
}
