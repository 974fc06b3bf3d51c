//! The webhook sink against a real HTTP receiver on loopback: signatures, retries,
//! dead letters, the Slack shape, filters, and once-per-sink delivery with new and
//! update across a restart of the SQLite store.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{clock, config, sqlite, warning};
use hmac::{Hmac, Mac};
use scanwatch_notify::Notifier;
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "test secret";

#[derive(Clone, Debug)]
struct Got {
    path: String,
    event: String,
    id: String,
    body: Value,
    raw: String,
}

#[derive(Clone, Default)]
struct Receiver {
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicU32>,
    always_fail: bool,
    requests: Arc<AtomicU32>,
    bad_signatures: Arc<AtomicU32>,
    got: Arc<Mutex<Vec<Got>>>,
}

fn verify(body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn handle(
    State(rx): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    rx.requests.fetch_add(1, Ordering::SeqCst);
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if !verify(&body, h("x-scanwatch-signature").as_deref()) {
        rx.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if h("content-type").as_deref() != Some("application/json")
        || h("x-scanwatch-timestamp").is_none()
    {
        return StatusCode::BAD_REQUEST;
    }
    if rx.always_fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if rx
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let raw = String::from_utf8(body.to_vec()).expect("utf-8 body");
    rx.got.lock().expect("lock").push(Got {
        path: uri.path().to_string(),
        event: h("x-scanwatch-event").unwrap_or_default(),
        id: h("x-scanwatch-id").unwrap_or_default(),
        body: serde_json::from_str(&raw).expect("json body"),
        raw,
    });
    StatusCode::OK
}

/// Starts the receiver on 127.0.0.1:0; returns its base URL.
async fn start(rx: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(handle).with_state(rx);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn sink(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[sinks]]\nkind = \"webhook\"\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
         initial_delay = \"5ms\"\nmax_delay = \"20ms\"\ntimeout = \"5s\"\n{extra}\n"
    )
}

async fn idle(n: &Notifier) {
    assert!(
        n.wait_idle(Duration::from_secs(20)).await,
        "notifier did not finish"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_retried_then_delivered() {
    let rx = Receiver {
        fail_first: Arc::new(AtomicU32::new(2)),
        ..Receiver::default()
    };
    let url = start(rx.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    let cfg = config(&sink("soc", &format!("{url}/hook"), "attempts = 4"));
    let n = Notifier::spawn(
        &cfg,
        store.clone(),
        clock(),
        &tokio::runtime::Handle::current(),
    )
    .expect("spawn");
    (n.hook())(1, &warning(1, 445, 100, "high"));
    idle(&n).await;
    assert_eq!(rx.requests.load(Ordering::SeqCst), 3, "two 500s then 200");
    assert_eq!(rx.bad_signatures.load(Ordering::SeqCst), 0);
    let got = rx.got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].path.as_str(),
            got[0].event.as_str(),
            got[0].id.as_str()
        ),
        ("/hook", "new", "1")
    );
    assert_eq!(got[0].body["event"], "new");
    assert_eq!(got[0].body["port"], 445);
    assert_eq!(got[0].body["top_sources"][0]["ip"], "192.0.2.1");
    let s = &n.counters().snapshot()[0];
    assert_eq!((s.sent, s.failed, s.dead_lettered), (1, 2, 0));
    let m = n.metrics();
    assert!(
        m.contains("scanwatch_notify_sent_total{sink=\"soc\",kind=\"webhook\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("scanwatch_notify_failed_total{sink=\"soc\",kind=\"webhook\"} 2\n"),
        "{m}"
    );
    assert!(store
        .lock()
        .expect("lock")
        .dead_letters()
        .expect("dead letters")
        .is_empty());
    n.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_receiver_gives_exactly_one_dead_letter() {
    let rx = Receiver {
        always_fail: true,
        ..Receiver::default()
    };
    let url = start(rx.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    let cfg = config(&sink("soc", &url, "attempts = 3"));
    let n = Notifier::spawn(
        &cfg,
        store.clone(),
        clock(),
        &tokio::runtime::Handle::current(),
    )
    .expect("spawn");
    (n.hook())(7, &warning(7, 445, 100, "high"));
    idle(&n).await;
    // The replay re-raises it: it is not tried again.
    (n.hook())(7, &warning(7, 445, 100, "high"));
    idle(&n).await;
    assert_eq!(rx.requests.load(Ordering::SeqCst), 3);
    let dead = store
        .lock()
        .expect("lock")
        .dead_letters()
        .expect("dead letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(
        (d.sink.as_str(), d.key.as_str(), d.attempts),
        ("soc", "warning:7", 3)
    );
    assert!(d.error.contains("500"), "{}", d.error);
    let payload: Value = serde_json::from_str(&d.payload).expect("payload is the json body");
    assert_eq!(
        (payload["id"].as_i64(), payload["event"].as_str()),
        (Some(7), Some("new"))
    );
    let s = &n.counters().snapshot()[0];
    assert_eq!(
        (s.sent, s.failed, s.dead_lettered, s.duplicate),
        (0, 3, 1, 1)
    );
    n.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_format_is_text_and_attachments() {
    let rx = Receiver::default();
    let url = start(rx.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&sink(
        "chat",
        &url,
        "format = \"slack\"\ndashboard_url = \"https://sw.example.net\"",
    ));
    let n = Notifier::spawn(
        &cfg,
        sqlite(dir.path()),
        clock(),
        &tokio::runtime::Handle::current(),
    )
    .expect("spawn");
    (n.hook())(3, &warning(3, 445, 100, "critical"));
    idle(&n).await;
    let got = rx.got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    let b = &got[0].body;
    let text = b["text"].as_str().expect("text");
    assert!(
        text.starts_with("*New surge: CRITICAL tcp/445 (likely)*: tcp/445: 100 sources"),
        "{text}"
    );
    let a = &b["attachments"][0];
    assert_eq!(a["title_link"], "https://sw.example.net/alerts/3");
    assert!(a["text"]
        .as_str()
        .expect("text")
        .contains("Scanning of SMB"));
    assert!(a["fallback"].is_string() && a["color"].is_string());
    let fields = a["fields"].as_array().expect("fields");
    assert!(fields
        .iter()
        .all(|f| f["title"].is_string() && f["value"].is_string()));
    assert!(b
        .as_object()
        .expect("object")
        .keys()
        .all(|k| k == "text" || k == "attachments"));
    assert!(!got[0].raw.contains("\"blocks\""));
    n.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_once_per_sink_and_updates_across_a_restart() {
    let rx = Receiver::default();
    let url = start(rx.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}",
        sink(
            "all",
            &format!("{url}/all"),
            "ports = [\"tcp/445\"]\nmin_severity = \"medium\"\nmin_confidence = \"likely\""
        ),
        sink("first", &format!("{url}/first"), "updates = false")
    );
    let cfg = config(&text);
    let rt = tokio::runtime::Handle::current();
    let run = |ws: Vec<(i64, u16, u64, &'static str)>| {
        let cfg = cfg.clone();
        let dir = dir.path().to_path_buf();
        let rt = rt.clone();
        async move {
            let n = Notifier::spawn(&cfg, sqlite(&dir), clock(), &rt).expect("spawn");
            for (id, port, sources, sev) in ws {
                (n.hook())(id, &warning(id, port, sources, sev));
            }
            idle(&n).await;
            let snap = n.counters().snapshot();
            n.close().await;
            snap
        }
    };
    let before = vec![
        (1, 445, 100, "medium"),    // new
        (2, 445, 100, "medium"),    // same size: skipped
        (3, 445, 150, "medium"),    // more sources: update
        (4, 3389, 900, "critical"), // port filter ("all" only)
        (5, 445, 999, "low"),       // severity filter ("all" only)
    ];
    let snap = run(before.clone()).await;
    let got = |path: &str| -> Vec<(String, String)> {
        rx.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|g| g.path == path)
            .map(|g| (g.id.clone(), g.event.clone()))
            .collect()
    };
    let pair = |id: &str, e: &str| (id.to_string(), e.to_string());
    assert_eq!(got("/all"), vec![pair("1", "new"), pair("3", "update")]);
    // "first": no port or severity filter; the 3389 surge is its own surge.
    assert_eq!(got("/first"), vec![pair("1", "new"), pair("4", "new")]);
    assert_eq!((snap[0].sent, snap[0].skipped, snap[0].filtered), (2, 1, 2));
    assert_eq!((snap[1].sent, snap[1].skipped, snap[1].filtered), (2, 3, 0));

    // Restart: a new notifier over the reopened store; the server's replay re-raises
    // the same warnings with the same ids, then the surge grows again.
    let mut after = before.clone();
    after.push((6, 445, 200, "medium"));
    let snap = run(after).await;
    assert_eq!(
        got("/all"),
        vec![pair("1", "new"), pair("3", "update"), pair("6", "update")]
    );
    assert_eq!(got("/first"), vec![pair("1", "new"), pair("4", "new")]);
    assert_eq!((snap[0].sent, snap[0].duplicate), (1, 3));
    let state = sqlite(dir.path())
        .lock()
        .expect("lock")
        .sink_state("all", "surge:tcp/445/2026-11-26T09:00:00Z")
        .expect("read")
        .expect("state kept");
    let v: Value = serde_json::from_str(&state).expect("json state");
    assert_eq!(v["v"], 1);
    assert_eq!(v["delivered"], serde_json::json!([1, 3, 6]));
    assert_eq!(rx.bad_signatures.load(Ordering::SeqCst), 0);
}

/// The end of a surge goes once to a sink that was told of it, survives a restart
/// of the notifier (the state is in the store), and a later warning of the same
/// surge opens it again as `new`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surge_that_is_over_is_resolved_once() {
    let rx = Receiver::default();
    let url = start(rx.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    let cfg = config(&sink("soc", &url, ""));
    let spawn = || {
        Notifier::spawn(
            &cfg,
            store.clone(),
            clock(),
            &tokio::runtime::Handle::current(),
        )
        .expect("spawn")
    };
    let events = || -> Vec<String> {
        rx.got
            .lock()
            .expect("lock")
            .iter()
            .map(|g| g.event.clone())
            .collect()
    };
    let n = spawn();
    // A surge this sink was never told of: nothing to end.
    (n.resolve_hook())(9, &warning(9, 3389, 100, "high"));
    idle(&n).await;
    assert_eq!(rx.requests.load(Ordering::SeqCst), 0);
    (n.hook())(1, &warning(1, 445, 100, "high"));
    idle(&n).await;
    (n.resolve_hook())(1, &warning(1, 445, 100, "high"));
    idle(&n).await;
    (n.resolve_hook())(1, &warning(1, 445, 100, "high"));
    idle(&n).await;
    n.close().await;
    let n = spawn();
    (n.resolve_hook())(1, &warning(1, 445, 100, "high"));
    idle(&n).await;
    assert_eq!(
        events(),
        ["new", "resolved"],
        "resolved once, restart or not"
    );
    let got = rx.got.lock().expect("lock").clone();
    assert_eq!(got[1].body["event"], "resolved");
    assert_eq!(got[1].body["id"], 1);
    // The surge warns again: a new story for the sink, and it can end again.
    (n.hook())(2, &warning(2, 445, 90, "medium"));
    idle(&n).await;
    (n.resolve_hook())(2, &warning(2, 445, 90, "medium"));
    idle(&n).await;
    assert_eq!(events(), ["new", "resolved", "new", "resolved"]);
    n.close().await;
}
