//! The API contract cannot drift: the document served at `/api/v1/openapi.json` is
//! valid OpenAPI 3.1, names every `/api/v1/...` and `/feeds/...` route the code
//! declares (read from the sources, so a new route without a description fails
//! here), and every operation it names is routed (probed through `app()`).
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

/// The centre's clock in these tests: after the events they send (the centre
/// refuses events further ahead of its clock than the clock skew allows).
const NOW: i64 = 1_795_694_400_000; // 2026-11-26T12:00:00Z

fn state(dir: &tempfile::TempDir) -> AppState {
    let store = SqliteStore::open(dir.path()).unwrap();
    let pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000));
    AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
        Arc::new(|| Timestamp(NOW)),
    )
}

async fn send(st: &AppState, method: Method, uri: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

async fn served_doc(st: &AppState) -> Value {
    let (status, body) = send(st, Method::GET, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "the document needs no token");
    serde_json::from_slice(&body).unwrap()
}

/// `(method, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                ops.insert((method.clone(), path.clone()));
            }
        }
    }
    ops
}

/// `(method, path)` of every `.route("PATH", get(..).post(..))` in the crate's
/// sources whose path is part of the API (`/api/...`, `/feeds/...`).
fn declared_routes() -> BTreeSet<(String, String)> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut files = vec![std::path::PathBuf::from(src)];
    let mut routes = BTreeSet::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        routes.extend(routes_in(&text));
    }
    routes
}

/// Scans one source file for `.route(` calls: the first string literal is the path,
/// the method routers (`get(`, `post(`, ...) up to the call's closing parenthesis
/// are its methods.
fn routes_in(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let Some(q1) = rest.find('"') else { break };
        let Some(q2) = rest[q1 + 1..].find('"') else {
            break;
        };
        let path = &rest[q1 + 1..q1 + 1 + q2];
        // The call's arguments end at the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = rest.len();
        for (j, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &rest[q1 + 1 + q2 + 1..end];
        if path.starts_with("/api/") || path.starts_with("/feeds/") {
            for m in ["get", "post", "put", "patch", "delete"] {
                let bare = format!("{m}(");
                let chained = format!(".{m}(");
                let starts = args.trim_start_matches([',', ' ', '\n']).starts_with(&bare);
                if starts || args.contains(&chained) || args.contains(&format!("routing::{bare}")) {
                    out.push((m.to_string(), path.to_string()));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(&dir);
    let doc = served_doc(&st).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // A typed parse: every path item, operation, parameter and schema is well-formed.
    let spec: oas3::Spec = serde_json::from_value(doc.clone()).unwrap();
    let ops = spec.operations().count();
    assert_eq!(ops, operations(&doc).len());
    // Every `$ref` resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"$ref\":\"").skip(1) {
        let r = &part[..part.find('"').unwrap()];
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    // Both token schemes, and every operation but the open ones uses one.
    let schemes = &doc["components"]["securitySchemes"];
    for s in ["api_token", "sensor_token"] {
        assert_eq!(schemes[s]["type"], "http", "{s}");
        assert_eq!(schemes[s]["scheme"], "bearer", "{s}");
    }
    let open = ["/healthz", "/metrics", "/api/v1/openapi.json"];
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let sec = op["security"].as_array().map(Vec::len).unwrap_or(0);
        if open.contains(&path.as_str()) {
            assert_eq!(sec, 0, "{method} {path} needs no token");
            continue;
        }
        assert_eq!(sec, 1, "{method} {path} names its token");
        let want = if path == "/api/v1/events" || path == "/api/v1/heartbeat" {
            "sensor_token"
        } else {
            "api_token"
        };
        assert!(op["security"][0].get(want).is_some(), "{method} {path}");
        // Every refusal is documented with the error body.
        for status in ["400", "401", "500"] {
            let r = &op["responses"][status];
            assert!(r.is_object(), "{method} {path} documents {status}");
            assert_eq!(
                r["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
        // Path parameters are declared.
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(['{', '}']);
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path"),
                "{method} {path}: path parameter {name}"
            );
        }
    }
    let ingest = &doc["paths"]["/api/v1/events"]["post"];
    for status in ["200", "400", "401", "413", "415", "429"] {
        assert!(ingest["responses"][status].is_object(), "ingest {status}");
    }
    let params: Vec<&str> = ingest["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"x-scanwatch-batch"));
    // A header is absent or a value: never the text `null`.
    for p in ingest["parameters"].as_array().unwrap() {
        assert!(!p["schema"].to_string().contains("\"null\""), "{p}");
    }
    assert!(ingest["requestBody"]["content"]["application/x-ndjson"].is_object());
    // The query parameters of the read API.
    let names = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        names("/api/v1/alerts"),
        set(&["from", "to", "min_severity"])
    );
    assert_eq!(
        names("/api/v1/topports"),
        set(&["by", "limit", "from", "to"])
    );
    assert_eq!(names("/api/v1/sources/{ip}"), set(&["from", "to"]));
    assert_eq!(
        names("/api/v1/ports/{proto}/{port}/history"),
        set(&["from", "to"])
    );
    assert_eq!(names("/api/v1/blocklist"), set(&["format", "hours"]));
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(&dir);
    let doc = served_doc(&st).await;
    let documented = operations(&doc);
    let declared = declared_routes();
    assert!(
        declared.contains(&("get".into(), "/api/v1/alerts".into()))
            && declared.contains(&("post".into(), "/api/v1/events".into()))
            && declared.contains(&("get".into(), "/api/v1/ports/{proto}/{port}/history".into())),
        "the route scanner finds the routes: {declared:?}"
    );
    let api = |p: &str| p.starts_with("/api/") || p.starts_with("/feeds/");
    let documented_api: BTreeSet<_> = documented.iter().filter(|(_, p)| api(p)).cloned().collect();
    let undocumented: Vec<_> = declared.difference(&documented_api).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented_api.difference(&declared).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );

    // Probe: every documented operation is routed for its method (no token: the
    // protected ones answer 401, the open ones 200); axum's own 404 has no body.
    let (status, body) = send(&st, Method::GET, "/api/v1/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.is_empty(), "an unrouted path has no body");
    for (method, path) in &documented {
        let uri = path
            .replace("{id}", "1")
            .replace("{proto}", "tcp")
            .replace("{port}", "445")
            .replace("{ip}", "192.0.2.1");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, body) = send(&st, m, &uri).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            status != StatusCode::NOT_FOUND || !body.is_empty(),
            "{method} {path} is not routed"
        );
        let op = &doc["paths"][path][method.as_str()];
        assert!(
            op["responses"][status.as_str()].is_object(),
            "{method} {path} answered {status}, which the document does not list"
        );
        if status.is_client_error() {
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"].is_string(), "{method} {path}: {v}");
        }
    }
}

#[test]
fn the_route_scanner_reads_chained_and_wrapped_routes() {
    let src = r#"
        Router::new()
            .route("/api/v1/x", get(a).post(b))
            .route(
                "/api/v1/y/{id}/z",
                post(c),
            )
            .route("/login", get(login))
            .route("/feeds/f.atom", axum::routing::get(f))
    "#;
    let got: BTreeSet<_> = routes_in(src).into_iter().collect();
    let want: BTreeSet<(String, String)> = [
        ("get", "/api/v1/x"),
        ("post", "/api/v1/x"),
        ("post", "/api/v1/y/{id}/z"),
        ("get", "/feeds/f.atom"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
}

/// Found while fuzzing ingest: one line with a huge `count` was answered 429 for
/// ever (no bucket is that large), so a sensor retried it without end. It is a
/// documented 413 now, which the sensor sets aside.
#[tokio::test]
async fn a_batch_counting_more_than_a_burst_is_413_not_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let token = store.add_sensor("fw-1", Timestamp(0)).unwrap();
    let pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000));
    let st = AppState::new(
        Box::new(store),
        pipeline,
        Limits {
            max_events_per_second_per_sensor: 1000,
            ..Limits::default()
        },
        Arc::new(|| Timestamp(NOW)),
    );
    let doc = served_doc(&st).await;
    let post = |count: u64, batch: &str| {
        let line = format!(
            r#"{{"v":1,"time":"2026-11-26T10:40:00Z","proto":"tcp","src":"192.0.2.1","dst":"198.18.0.1","dst_port":1025,"count":{count}}}"#
        );
        Request::post("/api/v1/events")
            .header("authorization", format!("Bearer {token}"))
            .header(scanwatch_collector::BATCH_HEADER, batch)
            .body(Body::from(line))
            .unwrap()
    };
    // Within the per-line bound but beyond ten seconds of the sensor's rate: 413.
    let resp = app(st.clone()).oneshot(post(65_535, "big")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(doc["paths"]["/api/v1/events"]["post"]["responses"]["413"].is_object());
    // Beyond the per-line bound (docs/security.md): a clear 400 naming the line.
    let resp = app(st.clone())
        .oneshot(post(4_294_967_295, "huge"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("line 1: count 4294967295 above the bound 65535"),
        "{text}"
    );
}

/// The ingest body's schema is derived from the wire event's own type
/// (`scanwatch_event::WireEvent`, feature `schema`): the fields the parser
/// requires are required, an address is IPv4 or IPv6, and the IDS part is typed.
#[tokio::test]
async fn the_ingest_body_is_the_wire_event() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(&dir);
    let doc = served_doc(&st).await;
    let body = &doc["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
        ["application/x-ndjson"]["schema"];
    assert_eq!(body["$ref"], "#/components/schemas/WireEvent", "{body}");
    let w = &doc["components"]["schemas"]["WireEvent"];
    let mut required: Vec<&str> = w["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["dst", "proto", "src", "time"], "{w}");
    let props = w["properties"].as_object().unwrap();
    for key in [
        "v",
        "time",
        "sensor",
        "proto",
        "src",
        "src_port",
        "dst",
        "dst_port",
        "flags",
        "icmp_type",
        "direction",
        "action",
        "count",
        "ids",
    ] {
        assert!(props.contains_key(key), "{key} missing: {w}");
    }
    assert_eq!(props.len(), 14, "{w}");
    assert_eq!(
        props["src"]["$ref"], "#/components/schemas/IpAddress",
        "{w}"
    );
    assert_eq!(props["time"]["format"], "date-time", "{w}");
    assert!(
        doc["components"]["schemas"]["WireIds"]["properties"]["cves"].is_object(),
        "{w}"
    );
    // An event the parser takes round-trips as a line of that shape.
    let line = r#"{"v":1,"time":"2026-11-26T10:40:00Z","proto":"tcp","src":"192.0.2.1","dst":"198.18.0.1","dst_port":1025,"flags":"S"}"#;
    let e = scanwatch_event::WireEvent::parse_line(line).unwrap();
    let back: Value = serde_json::from_str(&e.to_line()).unwrap();
    for key in back.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "{key}");
    }
}
