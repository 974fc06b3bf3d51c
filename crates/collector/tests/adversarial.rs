//! The attacks of the trust issue, one test each, against the centre's HTTP app
//! with real sensor tokens: the golden seed-surge network (eight honest sensors,
//! four days, a surge on tcp/1025 from 2026-11-19T10:00Z) is delivered hour by
//! hour over the ingest API, with one or more hostile sensors ("mallory-N", valid
//! tokens) sending what the attack needs. Each test states the defence with
//! numbers: the surge still warns in the same windows, an address is not in the
//! blocklist, the baseline does not move, the confirmation is not given, a port no
//! honest sensor saw stays quiet. docs/security.md quotes these numbers.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use scanwatch_collector::{app, AppState, Limits, BATCH_HEADER};
use scanwatch_context::advisory::{Advisory, AdvisorySource};
use scanwatch_context::explain::Intel;
use scanwatch_context::ContextData;
use scanwatch_event::{Timestamp, WireEvent};
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_simulate::Scenario;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{Role, Store};
use serde_json::Value;
use tower::ServiceExt;

/// The centre's clock: after every event sent.
const NOW: i64 = 1_795_694_400_000; // 2026-11-26T12:00:00Z
const HOUR: i64 = 3_600_000;
/// The hour the golden surge on tcp/1025 begins.
const ONSET: &str = "2026-11-19T10:00:00Z";

fn seed() -> Scenario {
    scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap()
}

/// What hostile sensors send in one hour: (hostile sensor index, JSON line).
type Attack<'a> = &'a dyn Fn(i64) -> Vec<(usize, String)>;

/// One wire line: a SYN to `port` from `src` at `t` (ms), `count` of them.
fn line(t: i64, src: &str, port: u16, count: u32) -> String {
    format!(
        r#"{{"v":1,"time":"{}","proto":"tcp","src":"{src}","dst":"198.18.200.1","dst_port":{port},"flags":"S","count":{count}}}"#,
        Timestamp(t).to_rfc3339()
    )
}

/// An IDS alert line naming `cve` on `port`.
fn ids_line(t: i64, src: &str, port: u16, cve: &str) -> String {
    format!(
        r#"{{"v":1,"time":"{}","proto":"tcp","src":"{src}","dst":"198.18.200.1","dst_port":{port},"flags":"S","ids":{{"rule":"1:9000001:1","signature":"EXPLOIT attempt {cve}","cves":["{cve}"]}}}}"#,
        Timestamp(t).to_rfc3339()
    )
}

/// `n` made-up addresses from `seed` (documentation and benchmark ranges are
/// avoided so that they look like Internet sources).
fn spoofed(seed: u32, n: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            let x = seed.wrapping_mul(7919).wrapping_add(i);
            format!(
                "{}.{}.{}.{}",
                11 + (x >> 16) % 100,
                (x >> 8) & 255,
                x & 255,
                1 + seed % 250
            )
        })
        .collect()
}

struct Run {
    state: AppState,
    analyst: String,
    tokens: BTreeMap<String, String>,
    /// What the hostile sensors' batches got: (sensor, status, body).
    hostile: Vec<(String, StatusCode, String)>,
}

impl Run {
    async fn call(&self, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    async fn get(&self, path: &str) -> Vec<u8> {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {}", self.analyst))
            .body(Body::empty())
            .unwrap();
        let (st, body) = self.call(req).await;
        assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        body
    }

    async fn post(&self, sensor: &str, batch: &str, body: String) -> (StatusCode, String) {
        let req = Request::post("/api/v1/events")
            .header("authorization", format!("Bearer {}", self.tokens[sensor]))
            .header(BATCH_HEADER, batch)
            .body(Body::from(body))
            .unwrap();
        let (st, b) = self.call(req).await;
        (st, String::from_utf8_lossy(&b).into_owned())
    }

    /// Every stored warning, by (window start, port).
    async fn warnings(&self) -> BTreeMap<(String, u64), Value> {
        let v: Value = serde_json::from_slice(&self.get("/api/v1/alerts").await).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["withdrawn"] != true)
            .map(|a| {
                (
                    (
                        a["window_start"].as_str().unwrap().to_string(),
                        a["port"].as_u64().unwrap(),
                    ),
                    a.clone(),
                )
            })
            .collect()
    }

    async fn blocklist(&self) -> Vec<String> {
        let text = String::from_utf8(self.get("/api/v1/blocklist?hours=720").await).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Delivers the seed-surge network hour by hour, each honest sensor's batch then
/// each hostile sensor's lines of that hour; `hostile` sensors are registered as
/// `mallory-1` … Every honest batch must be accepted; the hostile answers are kept.
async fn deliver(
    hostile: usize,
    blocklist_min_sensors: usize,
    intel: Option<Intel>,
    attack: Attack<'_>,
) -> Run {
    deliver_with(hostile, blocklist_min_sensors, intel, false, attack).await
}

/// [`deliver`], with `mallory-1` marked trusted when `trust_first` (as `scanwatch
/// admin sensor set-trust mallory-1 trusted` and a server start do).
async fn deliver_with(
    hostile: usize,
    blocklist_min_sensors: usize,
    intel: Option<Intel>,
    trust_first: bool,
    attack: Attack<'_>,
) -> Run {
    let sc = seed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let mut tokens = BTreeMap::new();
    for i in 0..sc.sensors {
        let n = sc.sensor_name(i);
        tokens.insert(n.clone(), store.add_sensor(&n, Timestamp(0)).unwrap());
    }
    for i in 1..=hostile {
        let n = format!("mallory-{i}");
        tokens.insert(n.clone(), store.add_sensor(&n, Timestamp(0)).unwrap());
    }
    let analyst = store
        .add_api_token("alice", Role::Analyst, Timestamp(0))
        .unwrap();
    if trust_first {
        scanwatch_store::trust::set_trust(
            &mut store,
            "mallory-1",
            scanwatch_store::trust::TrustLevel::Trusted,
            Timestamp(0),
        )
        .unwrap();
    }
    let trusted = scanwatch_store::trust::trusted_sensors(&store).unwrap();
    // As the golden case: --window 1h --history 2d.
    let mut cfg = PipelineConfig::new(HOUR, 2 * 86_400_000);
    cfg.detect.blocklist_min_sensors = blocklist_min_sensors;
    let mut pipeline = Pipeline::new(cfg);
    pipeline.set_emit_windows(true);
    pipeline.set_trusted(&trusted);
    let state = AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
        Arc::new(|| Timestamp(NOW)),
    );
    let mut ctx = ContextData::builtin();
    ctx.explain.trusted_sensors = trusted;
    if let Some(intel) = intel {
        ctx.intel = intel;
    }
    let state = state.with_context(ctx);
    let mut run = Run {
        state,
        analyst,
        tokens,
        hostile: Vec::new(),
    };
    // The data directory must outlive the run's store.
    std::mem::forget(dir);
    for (h, hour) in sc.generator().enumerate() {
        let hour_start = sc.start.0 + h as i64 * HOUR;
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
            let (st, v) = run.post(&name, &format!("{name}-{h}"), body).await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
        let mut bodies: BTreeMap<usize, String> = BTreeMap::new();
        for (m, l) in attack(hour_start) {
            let b = bodies.entry(m).or_default();
            b.push_str(&l);
            b.push('\n');
        }
        for (m, body) in bodies {
            let name = format!("mallory-{m}");
            let (st, v) = run.post(&name, &format!("{name}-{h}"), body).await;
            run.hostile.push((name, st, v));
        }
    }
    // An hour later by the centre's clock: a hostile sensor that stopped sending is
    // idle and holds no window open (docs/time.md), so every window has closed.
    run.state.centre.tick(Timestamp(NOW + HOUR)).unwrap();
    run
}

/// A centre in `dir` with `sensors` registered, an analyst token and `readers`
/// read connections (1 h windows, 2 d history), fed nothing yet.
fn small_centre(dir: &std::path::Path, sensors: &[&str], readers: usize) -> Run {
    let mut store = SqliteStore::open(dir).unwrap();
    let tokens = sensors
        .iter()
        .map(|n| (n.to_string(), store.add_sensor(n, Timestamp(0)).unwrap()))
        .collect();
    let analyst = store
        .add_api_token("alice", Role::Analyst, Timestamp(0))
        .unwrap();
    let readers: Vec<Box<dyn Store>> = (0..readers)
        .map(|_| Box::new(SqliteStore::open(dir).unwrap()) as Box<dyn Store>)
        .collect();
    let state = AppState::new(
        Box::new(store),
        Pipeline::new(PipelineConfig::new(HOUR, 2 * 86_400_000)),
        Limits::default(),
        Arc::new(|| Timestamp(NOW)),
    )
    .with_readers(readers);
    Run {
        state,
        analyst,
        tokens,
        hostile: Vec::new(),
    }
}

/// Asserts that every hostile batch was accepted (the attacks use valid input).
fn all_accepted(run: &Run) {
    for (name, st, v) in &run.hostile {
        assert_eq!(*st, StatusCode::OK, "{name}: {v}");
    }
}

fn no_attack(_: i64) -> Vec<(usize, String)> {
    Vec::new()
}

fn onset_ms() -> i64 {
    scanwatch_event::parse_rfc3339(ONSET).unwrap().0
}

/// The tcp/1025 warnings of a run, by window start.
fn surge_windows(w: &BTreeMap<(String, u64), Value>) -> Vec<String> {
    w.keys()
        .filter(|(_, p)| *p == 1025)
        .map(|(t, _)| t.clone())
        .collect()
}

/// Row 1: during the surge one sensor sends lines with the largest `count` a line
/// may carry, on the surging port, every hour: the surge still warns in every
/// window it warns in without the attack; a line above the bound is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sensor_with_huge_counts_cannot_hide_a_surge() {
    let clean = deliver(0, 2, None, &no_attack).await.warnings().await;
    let attack = |t: i64| {
        let on = (onset_ms()..onset_ms() + 12 * HOUR).contains(&t);
        if on {
            vec![(
                1,
                line(t + 60_000, "203.0.113.77", 1025, scanwatch_event::MAX_COUNT),
            )]
        } else {
            Vec::new()
        }
    };
    let run = deliver(1, 2, None, &attack).await;
    all_accepted(&run);
    let got = run.warnings().await;
    assert_eq!(surge_windows(&got), surge_windows(&clean));
    assert_eq!(surge_windows(&got).len(), 12, "{:?}", surge_windows(&got));
    let onset = &got[&(ONSET.to_string(), 1025)];
    assert_eq!(onset["trimmed"]["left_out"][0], "mallory-1", "{onset}");
    // Above the bound: refused with a reason, nothing of the batch counted.
    let (st, v) = run
        .post(
            "mallory-1",
            "too-big",
            line(
                onset_ms(),
                "203.0.113.77",
                1025,
                scanwatch_event::MAX_COUNT + 1,
            ),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.contains("above the bound 65535"), "{v}");
}

/// The first `k` hostile sensors each report 9.9.9.9 with 150 events on tcp/1025
/// in every hour of the surge.
fn nine_during_surge(k: usize) -> impl Fn(i64) -> Vec<(usize, String)> {
    move |t: i64| {
        if !(onset_ms()..onset_ms() + 12 * HOUR).contains(&t) {
            return Vec::new();
        }
        (1..=k)
            .map(|m| (m, line(t + 60_000, "9.9.9.9", 1025, 150)))
            .collect()
    }
}

/// Row 2: during the surge one sensor reports 9.9.9.9 with 150 events an hour on the
/// surging port: it is not a top source and not in the blocklist (it is listed as
/// uncorroborated); the corroborated top sources still are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sensor_cannot_put_an_address_in_the_blocklist() {
    let attack = nine_during_surge(1);
    let run = deliver(1, 2, None, &attack).await;
    all_accepted(&run);
    let w = run.warnings().await;
    let onset = &w[&(ONSET.to_string(), 1025)];
    let ips = |k: &str| -> Vec<String> {
        onset[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ip"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        !ips("top_sources").contains(&"9.9.9.9".to_string()),
        "{onset}"
    );
    assert_eq!(ips("uncorroborated_sources")[0], "9.9.9.9", "{onset}");
    assert!(ips("top_sources").len() >= 5, "{onset}");
    let bl = run.blocklist().await;
    assert!(!bl.contains(&"9.9.9.9".to_string()));
    assert!(bl.contains(&ips("top_sources")[0]), "{bl:?}");

    // Two colluding sensors reach the default corroboration (2); with
    // blocklist_min_sensors = 3 they do not.
    let two = nine_during_surge(2);
    let bl = deliver(2, 2, None, &two).await.blocklist().await;
    assert!(
        bl.contains(&"9.9.9.9".to_string()),
        "the documented limit: two tokens corroborate"
    );
    let bl = deliver(2, 3, None, &two).await.blocklist().await;
    assert!(!bl.contains(&"9.9.9.9".to_string()));
}

/// Row 3: one sensor sends 300 spoofed sources an hour on tcp/1025 for the 48 hours
/// before the surge (the whole history): the baseline moves by at most 3 sources
/// (not 300) and the surge warns in the same windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sensor_cannot_raise_a_baseline() {
    let clean = deliver(0, 2, None, &no_attack).await.warnings().await;
    let attack = |t: i64| {
        if (onset_ms() - 48 * HOUR..onset_ms()).contains(&t) {
            spoofed((t / HOUR) as u32, 300)
                .into_iter()
                .map(|ip| (1, line(t + 60_000, &ip, 1025, 1)))
                .collect()
        } else {
            Vec::new()
        }
    };
    let run = deliver(1, 2, None, &attack).await;
    all_accepted(&run);
    let got = run.warnings().await;
    assert_eq!(surge_windows(&got), surge_windows(&clean));
    let key = (ONSET.to_string(), 1025);
    let (b_clean, b_got) = (
        clean[&key]["baseline"]["sources"].as_f64().unwrap(),
        got[&key]["baseline"]["sources"].as_f64().unwrap(),
    );
    // Winsorised, the hostile sensor adds at most what its busiest honest peer
    // adds in a window (one or two sources on this quiet port), not its 300.
    assert!(
        (b_got - b_clean).abs() <= 3.0,
        "baseline {b_clean} → {b_got} with 300 spoofed sources an hour"
    );
    eprintln!("baseline of tcp/1025 at the onset: {b_clean} → {b_got}");
}

fn intel_1025() -> Intel {
    let mut a = Advisory::new(AdvisorySource::ExploitDb, "EDB-99999");
    a.title = "Windows DNS RPC remote code execution".into();
    a.description = a.title.clone();
    a.cves = vec!["CVE-2026-1025".into()];
    a.ports = vec![1025];
    a.published = Some("2026-11-12".into());
    a.platform = Some("windows".into());
    a.exploit_type = Some("remote".into());
    Intel::new(&[a])
}

/// Row 4: one sensor sends one IDS alert naming a CVE on the surging port: the
/// warning is not "confirmed" and gets no IDS points; two sensors' alerts confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sensor_cannot_confirm_an_explanation() {
    // Each of the first `k` hostile sensors sends one alert in the onset hour.
    let alerts = |k: usize| {
        move |t: i64| {
            if t != onset_ms() {
                return Vec::new();
            }
            (1..=k)
                .map(|m| {
                    let src = format!("203.0.113.{m}");
                    (m, ids_line(t + 60_000, &src, 1025, "CVE-2026-1025"))
                })
                .collect()
        }
    };
    let onset = |w: &BTreeMap<(String, u64), Value>| w[&(ONSET.to_string(), 1025)].clone();
    let w = deliver(1, 2, Some(intel_1025()), &alerts(1))
        .await
        .warnings()
        .await;
    let one = onset(&w);
    assert_ne!(one["confidence"], "confirmed", "{}", one["assessment"]);
    assert_eq!(one["verified"], false);
    let adv = &one["advisories"][0];
    assert_eq!(adv["id"], "CVE-2026-1025", "{one}");
    assert_eq!(adv["ids"]["corroborated"], false);
    let reasons = adv["reasons"].as_array().unwrap();
    assert!(
        !reasons.iter().any(|r| r.as_str().unwrap().ends_with("+5")),
        "{adv}"
    );
    // Control: two sensors' alerts confirm (the defence is the rule, not a switch).
    let w = deliver(2, 2, Some(intel_1025()), &alerts(2))
        .await
        .warnings()
        .await;
    let two = onset(&w);
    assert_eq!(two["confidence"], "confirmed", "{}", two["assessment"]);
}

/// Row 5 and collusion: k hostile sensors send `sources` spoofed sources each per
/// hour on tcp/3389 (no honest sensor sees it) for the last day, with counts of
/// 20. Up to the documented k = min_sensors + trim_sensors − 1 = 3 they raise no
/// warning and nothing of theirs is blocked, whether their sources are their own or
/// shared; four can (the bound is tight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_to_three_colluding_sensors_cannot_raise_a_warning() {
    let from = onset_ms() - 12 * HOUR;
    for (k, shared) in [(1, false), (2, true), (3, false), (3, true), (4, true)] {
        let attack = move |t: i64| {
            if t < from {
                return Vec::new();
            }
            let mut out = Vec::new();
            for m in 1..=k {
                let seed = if shared { 0 } else { m as u32 * 1000 };
                for ip in spoofed(seed + (t / HOUR) as u32 % 1000, 70) {
                    out.push((m, line(t + 60_000, &ip, 3389, 20)));
                }
            }
            out
        };
        let run = deliver(k, 2, None, &attack).await;
        all_accepted(&run);
        let w = run.warnings().await;
        let on_3389: Vec<_> = w.keys().filter(|(_, p)| *p == 3389).collect();
        if k <= 3 {
            assert!(
                on_3389.is_empty(),
                "{k} sensors (shared {shared}) raised {on_3389:?}"
            );
            let bl = run.blocklist().await;
            assert!(
                spoofed(1000 + (from / HOUR) as u32 % 1000, 70)
                    .iter()
                    .all(|ip| !bl.contains(ip)),
                "{bl:?}"
            );
        } else {
            assert!(
                !on_3389.is_empty(),
                "four colluding sensors are past the documented bound"
            );
        }
        // The honest surge is unaffected.
        assert_eq!(surge_windows(&w).len(), 12, "k = {k}");
    }
}

/// Row 6: one sensor sends an event dated 2099 in the middle of the history, then
/// goes on sending valid events: the line is refused (425) with the line and the
/// skew named, nothing of that batch is counted, and the surge still warns in the
/// same windows as without the attack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sensor_from_the_future_cannot_blind_the_centre() {
    let clean = deliver(0, 2, None, &no_attack).await.warnings().await;
    let far = scanwatch_event::parse_rfc3339("2099-01-01T00:00:00Z")
        .unwrap()
        .0;
    let attack = move |t: i64| {
        if t == onset_ms() - 24 * HOUR {
            vec![(1, line(far, "203.0.113.5", 1025, 1))]
        } else {
            vec![(1, line(t + 60_000, "203.0.113.5", 22, 1))]
        }
    };
    let run = deliver(1, 2, None, &attack).await;
    let refused: Vec<_> = run
        .hostile
        .iter()
        .filter(|h| h.1 != StatusCode::OK)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].1.as_u16(), 425, "{:?}", refused[0]);
    assert!(
        refused[0].2.contains("line 1") && refused[0].2.contains("ahead of the centre's clock"),
        "{:?}",
        refused[0]
    );
    assert_eq!(surge_windows(&run.warnings().await), surge_windows(&clean));
}

/// A sensor the operator marked trusted corroborates alone: its 9.9.9.9 is blocked,
/// and `/api/v1/sensors` shows its trust level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_sensor_corroborates_alone() {
    let attack = nine_during_surge(1);
    let run = deliver_with(1, 2, None, true, &attack).await;
    all_accepted(&run);
    assert!(run.blocklist().await.contains(&"9.9.9.9".to_string()));
    let sensors: Value = serde_json::from_slice(&run.get("/api/v1/sensors").await).unwrap();
    let trust: BTreeMap<&str, &str> = sensors
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["trust"].as_str().unwrap()))
        .collect();
    assert_eq!(trust["mallory-1"], "trusted");
    assert_eq!(trust["sensor-01"], "normal");
}

/// Row 10: reads never stall writes. Queries run on read connections beside the
/// writer's (SQLite WAL readers): with the writer's connection held (a commit in
/// progress), `topports`, the warnings and the blocklist still answer; with every
/// read connection held by slow queries, a batch is still ingested. (The latency
/// figure is a benchmark: `crates/collector/benches/query.rs`, BENCHMARKS.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Holding a connection's lock across the requests is the point of the test.
#[allow(clippy::await_holding_lock)]
async fn reads_and_writes_use_their_own_connections() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_centre(dir.path(), &["fw-1"], 2);
    let (st, v) = run
        .post("fw-1", "b1", line(NOW - HOUR, "203.0.113.1", 1025, 1))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let within = Duration::from_secs(10);
    {
        let _writer = run.state.store.lock().unwrap();
        for path in [
            "/api/v1/topports?by=sources&limit=5",
            "/api/v1/alerts",
            "/api/v1/blocklist",
        ] {
            let body = tokio::time::timeout(within, run.get(path)).await;
            assert!(body.is_ok(), "{path} waited for the writer");
        }
        let top: Value =
            serde_json::from_slice(&run.get("/api/v1/topports?by=sources&limit=5").await).unwrap();
        assert_eq!(
            top[0]["port"], 1025,
            "the reader sees the committed batch: {top}"
        );
    }
    {
        let _r: Vec<_> = run
            .state
            .readers
            .iter()
            .map(|r| r.lock().unwrap())
            .collect();
        let posted = tokio::time::timeout(
            within,
            run.post(
                "fw-1",
                "b2",
                line(NOW - HOUR + 1000, "203.0.113.2", 1025, 1),
            ),
        )
        .await;
        let (st, v) = posted.expect("ingest waited for the readers");
        assert_eq!(st, StatusCode::OK, "{v}");
    }
}

/// Row 9: one sensor floods the centre with IDS alerts (60,000 lines with long
/// signatures): memory keeps at most `MAX_HITS_PER_SENSOR` of them (the newest),
/// another sensor's alerts stay, and the rest is counted as let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ids_flood_is_bounded_in_memory() {
    use scanwatch_context::ids::MAX_HITS_PER_SENSOR;
    let dir = tempfile::tempdir().unwrap();
    let run = small_centre(dir.path(), &["honest", "mallory-1"], 0);
    let (st, v) = run
        .post(
            "honest",
            "h1",
            ids_line(NOW - HOUR, "203.0.113.1", 445, "CVE-2017-0144"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let long = "A".repeat(500);
    for b in 0..6 {
        let body: String = (0..10_000)
            .map(|i| {
                ids_line(
                    NOW - HOUR + b * 10_000 + i,
                    "203.0.113.9",
                    445,
                    "CVE-2017-0144",
                )
                .replace("EXPLOIT attempt", &long)
                    + "\n"
            })
            .collect();
        let (st, v) = run.post("mallory-1", &format!("m{b}"), body).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let ctx = run.state.context.read().unwrap();
    let of = |s: &str| {
        ctx.ids
            .iter()
            .filter(|h| h.sensor.as_deref() == Some(s))
            .count()
    };
    assert_eq!(of("mallory-1"), MAX_HITS_PER_SENSOR);
    assert_eq!(of("honest"), 1);
    assert_eq!(
        run.state
            .counters
            .ids_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        60_000 - MAX_HITS_PER_SENSOR as u64
    );
}
