//! The dashboard pages driven with `oneshot`: the golden seed-surge network is
//! stored and fed as the server does, then every page answers 200 for a logged-in
//! user with the stored numbers, redirects without a session, refuses bad input
//! with 400/404 pages, draws well-formed SVG, and escapes hostile text.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use scanwatch_collector::web::auth::open_session;
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_event::{Event, Timestamp};
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{AlertRow, Role, UserRecord, WindowRow};
use serde_json::Value;
use tower::ServiceExt;

struct Setup {
    state: AppState,
    dir: tempfile::TempDir,
    admin: String,
    analyst: String,
}

fn user(name: &str, role: Role) -> UserRecord {
    UserRecord {
        name: name.into(),
        role,
        password_hash: "$argon2id$v=19$test".into(),
        created: Timestamp(0),
    }
}

/// A store with two users and, when `seed`, the golden seed-surge network stored
/// and fed hour by hour (as `crates/collector/tests/same_answers.rs`, without HTTP).
async fn setup(seed: bool) -> Setup {
    setup_case("seed-surge", seed).await
}

/// [`setup`] with any golden case.
async fn setup_case(case: &str, seed: bool) -> Setup {
    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == case)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let names: Vec<String> = (0..sc.sensors).map(|i| sc.sensor_name(i)).collect();
    for n in &names {
        store.add_sensor(n, Timestamp(0)).unwrap();
    }
    store.put_user(&user("alice", Role::Admin), false).unwrap();
    store.put_user(&user("bob", Role::Analyst), false).unwrap();
    // As the golden case's args: --window 1h --history 2d.
    let pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 2 * 86_400_000));
    let end = sc.start.0 + i64::from(sc.hours) * 3_600_000;
    let state = AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
        Arc::new(move || Timestamp(end)),
    );
    if seed {
        for (h, hour) in sc.generator().enumerate() {
            let mut per: Vec<Vec<Event>> = vec![Vec::new(); names.len()];
            for (s, e) in hour {
                per[s as usize].push(e);
            }
            for (s, evs) in per.into_iter().enumerate() {
                if evs.is_empty() {
                    continue;
                }
                state
                    .store
                    .lock()
                    .unwrap()
                    .commit_batch(&names[s], &format!("b{h}-{s}"), &evs, Timestamp(end))
                    .unwrap();
                state.feed(&names[s], &evs).unwrap();
            }
        }
    }
    let admin = open_session(&state, "alice").await.unwrap();
    let analyst = open_session(&state, "bob").await.unwrap();
    Setup {
        state,
        dir,
        admin,
        analyst,
    }
}

async fn get(s: &Setup, path: &str, cookie: Option<&str>) -> (StatusCode, String, String) {
    let mut r = Request::get(path);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let (status, text, location) = send(s, r.body(Body::empty()).unwrap()).await;
    // To look at the pages: SCANWATCH_DASHBOARD_DUMP=dir writes each one there.
    if let Some(dir) = std::env::var_os("SCANWATCH_DASHBOARD_DUMP") {
        let name: String = path
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::fs::write(std::path::Path::new(&dir).join(name + ".html"), &text).unwrap();
    }
    (status, text, location)
}

/// One request to the app: (status, body, location).
async fn send(s: &Setup, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = app(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8_lossy(&bytes).into_owned(),
        location,
    )
}

/// Every inline `<svg …>…</svg>` of a page parses as XML; returns how many.
fn check_svgs(html: &str) -> usize {
    let mut n = 0;
    let mut rest = html;
    while let Some(i) = rest.find("<svg") {
        let tail = &rest[i..];
        let j = tail.find("</svg>").expect("unclosed svg") + "</svg>".len();
        let svg = &tail[..j];
        let doc = roxmltree::Document::parse(svg)
            .unwrap_or_else(|e| panic!("svg is not well-formed XML: {e}\n{svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert!(
            root.children().any(|c| c.tag_name().name() == "title"),
            "a chart has a title"
        );
        n += 1;
        rest = &tail[j..];
    }
    n
}

fn alerts(s: &Setup) -> Vec<(AlertRow, Value)> {
    s.state
        .store
        .lock()
        .unwrap()
        .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)
        .unwrap()
        .into_iter()
        .map(|r| {
            let v = serde_json::from_str(&r.json).unwrap();
            (r, v)
        })
        .collect()
}

fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_seed_surge() {
    let s = setup(true).await;
    let all = alerts(&s);
    assert!(!all.is_empty(), "the seed scenario raises warnings");
    let (top, v) = all
        .iter()
        .find(|(r, _)| r.port == 1025 && r.proto == 6)
        .unwrap();

    // Overview.
    let (st, html, _) = get(&s, "/", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"top-ports-table\""), "{html}");
    assert!(html.contains("<svg class=\"spark\" data-series=\"sources\""));
    assert!(html.contains("id=\"now\""), "says what now is");
    assert!(html.contains("<span id=\"user-name\">bob</span>"));
    assert!(html.contains("action=\"/logout\""));
    let ports = html.matches("data-port=").count();
    assert!((1..=10).contains(&ports), "at most ten ports: {ports}");
    assert_eq!(check_svgs(&html), ports, "one sparkline per port");
    assert!(html.contains("data-field=\"sensors-total\">"));
    // The overview reloads itself (a meta refresh, no script) unless told not to.
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"60\">"));
    let (st, off, _) = get(&s, "/?refresh=off", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!off.contains("http-equiv=\"refresh\""), "reloading off");
    let (st, _, _) = get(&s, "/?refresh=often", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let movers = &html[html.find("id=\"top-movers\"").unwrap()..];
    let movers = &movers[..movers.find("</section>").unwrap()];
    // The seed surge leads the top movers: its sources of the last 24 h against the
    // 24 h before, exact, and the change they make.
    let first = movers.find("<tr data-mover=").expect("a mover");
    assert!(
        movers[first..].starts_with("<tr data-mover=\"tcp/1025\""),
        "{movers}"
    );
    let field = |f: &str| -> u64 {
        let at = movers.find(&format!("data-field=\"{f}\">")).unwrap() + f.len() + 14;
        movers[at..movers[at..].find('<').unwrap() + at]
            .replace(',', "")
            .parse()
            .unwrap()
    };
    let (now_s, before_s) = {
        let st = s.state.store.lock().unwrap();
        let (_, end) = st.latest_window().unwrap().unwrap();
        let at = |a: i64, b: i64| {
            st.top_ports(
                Timestamp(a),
                Timestamp(b),
                scanwatch_store::TopBy::Sources,
                1000,
            )
            .unwrap()
            .into_iter()
            .find(|p| p.proto == 6 && p.port == 1025)
            .map_or(0, |p| p.sources)
        };
        let day = 86_400_000;
        (at(end.0 - day, end.0), at(end.0 - 2 * day, end.0 - day))
    };
    assert_eq!((field("sources"), field("before")), (now_s, before_s));
    assert!(now_s > 10 * before_s, "a surge: {now_s} against {before_s}");
    let pct = (now_s as f64 - before_s as f64) / before_s as f64 * 100.0;
    assert!(
        movers.contains(&format!(
            "data-field=\"change\">+{}%",
            scanwatch_alert::thousands(pct.round() as u64)
        )),
        "{movers}"
    );
    assert!(movers.matches("<tr data-mover=").count() <= 10);

    // Warnings list and filter.
    let (st, html, _) = get(&s, "/alerts", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    for (r, _) in &all {
        assert!(
            html.contains(&format!("href=\"/alerts/{}\"", r.id)),
            "{}",
            r.id
        );
    }
    let (st, html, _) = get(&s, "/alerts?severity=critical", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    let critical = all.iter().filter(|(r, _)| r.severity_rank == 4).count();
    assert!(
        html.contains(&format!("data-field=\"count\">{critical}<")),
        "{html}"
    );

    // The warning page.
    let (st, html, _) = get(&s, &format!("/alerts/{}", top.id), Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let sources = v["sources"].as_u64().unwrap();
    assert!(
        html.contains(&format!("data-field=\"sources\">{}<", num(sources))),
        "key number"
    );
    assert!(
        html.contains(&format!("data-field=\"sources\">{sources}<")),
        "raw numbers table"
    );
    assert!(html.contains("<table id=\"raw-numbers\""));
    assert!(html.contains("data-field=\"baseline.sources\""));
    assert!(html.contains("<section id=\"narrative\">"));
    assert!(html.contains("<svg class=\"chart\" data-series=\"sources\""));
    assert!(
        html.contains(&format!("data-alert-id=\"{}\"", top.id)),
        "marked"
    );
    // The exports it links work with the session alone (no API token).
    for (format, marker) in [
        ("json", "\"alert_kind\""),
        ("stix", "\"type\":\"bundle\""),
        ("misp", "\"Event\""),
    ] {
        let link = format!("/alerts/{}/export/{format}", top.id);
        assert!(
            html.contains(&format!("href=\"{link}\"")),
            "{format} linked"
        );
        let (st, body, _) = get(&s, &link, Some(&s.analyst)).await;
        assert_eq!(st, StatusCode::OK, "{format}: {body}");
        assert!(body.contains(marker), "{format}: {body}");
        // Without a session: to the login page, as every page.
        let (st, _, _) = get(&s, &link, None).await;
        assert_ne!(st, StatusCode::OK, "{format} without a session");
    }
    let (st, _, _) = get(
        &s,
        &format!("/alerts/{}/export/pdf", top.id),
        Some(&s.analyst),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(html.contains("<details id=\"raw-json\">"));
    assert!(html.contains("class=\"copy\" data-copy=\"mitigation-0\""));
    assert!(html.contains("dport 1025"), "the nftables rule");
    assert!(check_svgs(&html) >= 2);

    // The port page, every range and window.
    for range in ["24h", "7d", "30d"] {
        for window in ["1h", "6h", "1d"] {
            let path = format!("/ports/tcp/1025?range={range}&window={window}");
            let (st, html, _) = get(&s, &path, Some(&s.analyst)).await;
            assert_eq!(st, StatusCode::OK, "{path}");
            assert_eq!(check_svgs(&html), 3, "{path}");
            for series in ["sources", "events", "sensors"] {
                assert!(html.contains(&format!("<svg class=\"chart\" data-series=\"{series}\"")));
            }
        }
    }
    let (_, html, _) = get(&s, "/ports/tcp/1025?range=30d", Some(&s.analyst)).await;
    assert!(
        html.contains(&format!("data-alert-id=\"{}\"", top.id)),
        "{html}"
    );
    assert!(html.contains("class=\"band\""), "baseline band drawn");
    assert!(html.contains("blackjack"), "service name");
    // What the port means comes first, its service name after.
    let h1 = &html[html.find("<h1>").unwrap()..html.find("</h1>").unwrap()];
    assert!(h1.contains("first dynamic port for MS-RPC"), "{h1}");
    assert!(!h1.contains("blackjack"), "{h1}");
    // Every chart has a legend; the 30 days reach back before the first stored
    // window: drawn as "no data yet", not as silence.
    assert_eq!(html.matches("<p class=\"legend\">").count(), 3);
    assert!(html.contains("<g class=\"nodata\">"), "no-data region");
    assert_eq!(html.matches("data-scale=\"linear\"").count(), 3);
    let (st, log, _) = get(&s, "/ports/tcp/1025?range=30d&scale=log", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(log.matches("data-scale=\"log\"").count(), 3, "log scale");
    assert_eq!(check_svgs(&log), 3);
    let (st, _, _) = get(&s, "/ports/tcp/1025?scale=cubic", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "an unknown scale is refused");
    let (st, log, _) = get(
        &s,
        &format!("/alerts/{}?scale=log", top.id),
        Some(&s.analyst),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        log.matches("data-scale=\"log\"").count(),
        2,
        "the warning's evidence"
    );
    assert!(html.contains("id=\"top-sources\""));
    let ip = v["top_sources"][0]["ip"].as_str().unwrap();
    assert!(html.contains(&format!("href=\"/sources/{ip}\"")), "{ip}");
    // Its source page: first and last seen, the warnings naming it, and the benign
    // tag once an imported list names it.
    let (st, src, _) = get(&s, &format!("/sources/{ip}"), Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(src.contains("id=\"source-facts\""), "{src}");
    assert!(src.contains("data-field=\"first-seen\"><time"), "{src}");
    let naming = all
        .iter()
        .filter(|(_, w)| {
            [
                &w["top_sources"],
                &w["uncorroborated_sources"],
                &w["sweep"]["top_sources"],
            ]
            .iter()
            .any(|list| {
                list.as_array()
                    .is_some_and(|l| l.iter().any(|x| x["ip"] == ip))
            })
        })
        .count();
    assert!(naming >= 1);
    assert!(
        src.contains(&format!("data-field=\"warnings\">{naming}</dd>")),
        "{naming} warnings name it\n{src}"
    );
    assert!(!src.contains("id=\"benign\""), "not listed yet");
    check_svgs(&src);
    s.state
        .store
        .lock()
        .unwrap()
        .put_context_items(
            scanwatch_store::ContextKind::Benign,
            &[scanwatch_store::ContextItem {
                key: format!("list.txt:{ip}/32"),
                origin: "list.txt".into(),
                json: serde_json::json!({"net": format!("{ip}/32"), "label": "example-research"})
                    .to_string(),
            }],
            Timestamp(0),
        )
        .unwrap();
    let (_, src, _) = get(&s, &format!("/sources/{ip}"), Some(&s.analyst)).await;
    assert!(
        src.contains("Known benign scanner: <strong>example-research</strong>"),
        "{src}"
    );
    // Events sum exactly whatever the window.
    let stored: u64 = s
        .state
        .store
        .lock()
        .unwrap()
        .port_history(6, 1025, Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .iter()
        .map(|r| r.events)
        .sum();
    for window in ["1h", "6h", "1d"] {
        let (_, html, _) = get(
            &s,
            &format!("/ports/tcp/1025?range=30d&window={window}"),
            Some(&s.analyst),
        )
        .await;
        assert!(
            html.contains(&format!(
                "<span data-field=\"events\">{}</span>",
                num(stored)
            )),
            "{window}: {stored}"
        );
    }

    // Sources.
    let (st, html, _) = get(&s, &format!("/sources/{ip}"), Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("href=\"/ports/tcp/1025\""));
    assert!(html.contains(&format!("href=\"/alerts/{}\"", top.id)));

    // Sensors: admins get revoke forms with the CSRF token, analysts do not.
    let (st, html, _) = get(&s, "/sensors", Some(&s.admin)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("action=\"/sensors/"));
    assert!(html.contains("/revoke\""));
    assert!(html.contains("name=\"csrf\""));
    let (_, html, _) = get(&s, "/sensors", Some(&s.analyst)).await;
    assert!(!html.contains("/revoke\""));
    assert!(html.contains("data-field=\"batches\""));

    // Search redirects.
    for (q, want) in [
        ("1025", "/ports/tcp/1025"),
        ("udp%2F53", "/ports/udp/53"),
        ("53%2Fudp", "/ports/udp/53"),
        ("192.0.2.1", "/sources/192.0.2.1"),
    ] {
        let (st, _, loc) = get(&s, &format!("/search?q={q}"), Some(&s.analyst)).await;
        assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, want), "{q}");
    }

    // Bad input: 400/404 pages, never a panic.
    for (path, want) in [
        ("/ports/tcp/70000", StatusCode::BAD_REQUEST),
        ("/ports/sctp/1", StatusCode::BAD_REQUEST),
        ("/ports/tcp/-1", StatusCode::BAD_REQUEST),
        ("/ports/tcp/22?range=1y", StatusCode::BAD_REQUEST),
        ("/ports/tcp/22?window=5m", StatusCode::BAD_REQUEST),
        ("/alerts/999999", StatusCode::NOT_FOUND),
        ("/alerts/x", StatusCode::BAD_REQUEST),
        ("/alerts?severity=huge", StatusCode::BAD_REQUEST),
        ("/sources/not-an-ip", StatusCode::BAD_REQUEST),
        ("/search?q=%3Cscript%3E", StatusCode::BAD_REQUEST),
    ] {
        let (st, html, _) = get(&s, path, Some(&s.analyst)).await;
        assert_eq!(st, want, "{path}");
        assert!(html.contains("<p id=\"error\">"), "{path}: an HTML page");
        assert!(!html.contains("<script>"), "{path}");
    }
}

/// The seed network's warnings are a handful of incidents: the list, one incident
/// with its warnings and state form, a state set on the page (CSRF-checked) and
/// through the API (a token), each seen by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_group_a_surge_and_keep_the_analysts_state() {
    let s = setup(true).await;
    let warnings = alerts(&s);
    let (st, list, _) = get(&s, "/incidents", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    let rows = list.matches("data-incident-id=").count();
    assert!(
        rows >= 1 && rows < warnings.len(),
        "{rows} incidents of {} warnings",
        warnings.len()
    );
    // The seed surge: one incident holding all its windows.
    let first = warnings
        .iter()
        .filter(|(r, _)| r.port == 1025)
        .min_by_key(|(r, _)| r.window_start)
        .unwrap();
    let id = first.0.id;
    // The overview leads with it while it is open, however old.
    let (_, overview, _) = get(&s, "/", Some(&s.analyst)).await;
    assert!(overview.contains("id=\"open-incidents\""), "{overview}");
    assert!(
        overview.contains(&format!("data-incident-id=\"{id}\"")),
        "{overview}"
    );
    let (st, page, _) = get(&s, &format!("/incidents/{id}"), Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let n1025 = warnings
        .iter()
        .filter(|(r, v)| r.port == 1025 && v["episode_start"] == first.1["episode_start"])
        .count();
    assert_eq!(page.matches("<tr data-alert-id=").count(), n1025, "{page}");
    assert!(page.contains("data-field=\"state\">new<"), "{page}");
    // Its last window (20 sources) is below its peak (84): falling, or over once
    // a later window has closed without it.
    assert!(
        page.contains("data-field=\"phase\">falling<")
            || page.contains("data-field=\"phase\">over<"),
        "{page}"
    );
    // Any of its warnings finds it.
    let later = warnings
        .iter()
        .filter(|(r, v)| r.port == 1025 && v["episode_start"] == first.1["episode_start"])
        .max_by_key(|(r, _)| r.window_start)
        .unwrap();
    let (st, again, _) = get(&s, &format!("/incidents/{}", later.0.id), Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(again.contains(&format!("Incident {id}:")), "{again}");
    // Set a state with the page's form: without the CSRF token refused.
    let csrf = {
        let pat = "name=\"csrf\" value=\"";
        let i = page.find(pat).unwrap() + pat.len();
        page[i..].split('"').next().unwrap().to_string()
    };
    let post = |body: String| {
        Request::post(format!("/incidents/{id}/state"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &s.analyst)
            .body(Body::from(body))
            .unwrap()
    };
    let (st, _, _) = send(&s, post("state=acknowledged&csrf=wrong".into())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, body, _) = send(&s, post(format!("state=false_positive&note=&csrf={csrf}"))).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a false positive needs a note: {body}"
    );
    let (st, _, loc) = send(
        &s,
        post(format!(
            "state=assigned&assignee=carol&note=look+at+445+too&csrf={csrf}"
        )),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(loc, format!("/incidents/{id}"));
    let (_, page, _) = get(&s, &loc, Some(&s.analyst)).await;
    assert!(page.contains("data-field=\"state\">assigned<"), "{page}");
    assert!(
        page.contains("assigned to carol: look at 445 too"),
        "{page}"
    );
    let (_, list, _) = get(&s, "/incidents?state=assigned", Some(&s.analyst)).await;
    assert_eq!(list.matches("data-incident-id=").count(), 1, "{list}");
    // The API sees it, and sets it back.
    let token = s
        .state
        .store
        .lock()
        .unwrap()
        .add_api_token("script", Role::Analyst, Timestamp(0))
        .unwrap();
    let api = |req: axum::http::request::Builder, body: Body| {
        req.header("authorization", format!("Bearer {token}"))
            .body(body)
            .unwrap()
    };
    let (st, body, _) = send(
        &s,
        api(
            Request::get("/api/v1/incidents?state=assigned"),
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], id);
    assert_eq!(v[0]["state"]["assignee"], "carol");
    assert_eq!(v[0]["state"]["by"], "bob");
    let (st, body, _) = send(
        &s,
        api(
            Request::post(format!("/api/v1/incidents/{}/state", later.0.id))
                .header("content-type", "application/json"),
            Body::from(r#"{"state":"resolved","note":"patched"}"#),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["id"].as_i64(), v["state"]["state"].as_str()),
        (Some(id), Some("resolved"))
    );
    let (_, overview, _) = get(&s, "/", Some(&s.analyst)).await;
    assert!(
        !overview.contains(&format!("data-incident-id=\"{id}\"")),
        "a resolved incident is not open: {overview}"
    );
    for (req, body, want) in [
        (
            Request::post(format!("/api/v1/incidents/{id}/state"))
                .header("content-type", "application/json"),
            r#"{"state":"closed"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Request::post(format!("/api/v1/incidents/{id}/state"))
                .header("content-type", "application/json"),
            r#"{"state":"resolved","extra":1}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Request::post("/api/v1/incidents/999999/state")
                .header("content-type", "application/json"),
            r#"{"state":"resolved"}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            Request::get("/api/v1/incidents?state=closed"),
            "",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (st, b, _) = send(&s, api(req, Body::from(body))).await;
        assert_eq!(st, want, "{b}");
    }
    let (st, _, _) = send(
        &s,
        Request::get("/api/v1/incidents")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// The sensors page flags the sensor far busier than its peers (the golden
/// noisy-sensor network: sensor-04 flooded with 20,000 events in one hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensors_page_flags_a_noisy_sensor() {
    let s = setup_case("noisy-sensor", true).await;
    let (st, html, _) = get(&s, "/sensors", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    let row = |name: &str| {
        let i = html.find(&format!("data-sensor=\"{name}\"")).unwrap();
        html[i..].split("</tr>").next().unwrap().to_string()
    };
    assert!(
        row("sensor-04").contains("data-field=\"busy\""),
        "{}",
        row("sensor-04")
    );
    assert!(
        !row("sensor-01").contains("data-field=\"busy\""),
        "{}",
        row("sensor-01")
    );
}

/// The sensors page shows a sensor's own counters from its last heartbeat, sent
/// as a sensor sends it: among them its busy waits (the centre's 429/503 with
/// Retry-After it waited out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensors_page_shows_a_sensors_heartbeat_counters() {
    let s = setup(false).await;
    let token = s
        .state
        .store
        .lock()
        .unwrap()
        .add_sensor("fw-busy", Timestamp(0))
        .unwrap();
    let hb = r#"{"parse_errors":3,"spool_batches":2,"spool_bytes":4096,"send_failures":1,"busy_refusals":17}"#;
    let (st, b, _) = send(
        &s,
        Request::post("/api/v1/heartbeat")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(hb))
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, html, _) = get(&s, "/sensors", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    let i = html.find("data-sensor=\"fw-busy\"").unwrap();
    let row = html[i..].split("</tr>").next().unwrap();
    for (field, want) in [
        ("parse_errors", "3"),
        ("spool_backlog", "2 (4,096 bytes)"),
        ("send_failures", "1"),
        ("busy_refusals", "17"),
    ] {
        assert!(
            row.contains(&format!("data-field=\"{field}\">{want}</td>")),
            "{field}: {row}"
        );
    }
    // A sensor that never sent a heartbeat shows none of them.
    let i = html.find("data-sensor=\"sensor-01\"").unwrap();
    let row = html[i..].split("</tr>").next().unwrap();
    assert!(row.contains("data-field=\"busy_refusals\">-</td>"), "{row}");
}

/// A sweep is one warning on the desk, with its campaign on its page, and no port
/// warning beside it (docs/detection.md, "Sweeps").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_is_one_warning_with_its_campaign() {
    let s = setup_case("research-sweep", true).await;
    let all = alerts(&s);
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|a| &a.0.kind).collect::<Vec<_>>()
    );
    let (row, v) = &all[0];
    assert_eq!(row.kind, "sweep 203.0.113.0/24");
    assert_eq!(v["alert_kind"], "sweep");
    let (st, list, _) = get(&s, "/alerts", Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(list.contains("sweep 203.0.113.0/24"), "{list}");
    let (st, page, _) = get(&s, &format!("/alerts/{}", row.id), Some(&s.analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("id=\"sweep\""), "{page}");
    assert!(
        page.contains("data-field=\"sweep.prefix\">203.0.113.0/24<"),
        "{page}"
    );
    assert!(page.contains("href=\"/sources/203.0.113."), "{page}");
    assert!(page.contains("probed 2,000 ports"), "{page}");
}

#[tokio::test]
async fn pages_need_a_session_static_files_do_not() {
    let s = setup(false).await;
    for path in [
        "/",
        "/alerts",
        "/alerts/1",
        "/ports/tcp/22",
        "/ports/tcp/70000",
        "/sensors",
        "/sources/192.0.2.1",
        "/search?q=22",
    ] {
        for cookie in [None, Some("scanwatch_session=swt_bogus")] {
            let (st, _, loc) = get(&s, path, cookie).await;
            assert_eq!(st, StatusCode::SEE_OTHER, "{path}");
            assert!(loc.starts_with("/login"), "{path}: {loc}");
        }
    }
    let (st, css, _) = get(&s, "/static/app.css", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(css.contains("svg.chart"));
    let (st, js, _) = get(&s, "/static/app.js", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(js.contains("clipboard"));
    // An empty store renders too.
    for path in ["/", "/alerts", "/ports/tcp/22", "/sensors", "/sources/::1"] {
        let (st, html, _) = get(&s, path, Some(&s.analyst)).await;
        assert_eq!(st, StatusCode::OK, "{path}: {html}");
    }
}

#[tokio::test]
async fn hostile_text_is_escaped() {
    const EVIL: &str = "<script>alert(1)</script>\"'&";
    let s = setup(false).await;
    // Names are validated by the store, so write one behind its back, as a
    // corrupted or hand-edited database could hold it.
    let conn = rusqlite::Connection::open(s.dir.path().join("scanwatch.db")).unwrap();
    conn.execute(
        "UPDATE sensors SET name = ?1, heartbeat_ms = 0, heartbeat = ?2 WHERE name = (SELECT min(name) FROM sensors)",
        rusqlite::params![EVIL, format!("{{\"parse_errors\":\"{}\",\"spool_batches\":3}}", "<b>x</b>")],
    )
    .unwrap();
    drop(conn);
    let h = 3_600_000;
    // Every text field a warning holds is hostile (its enums, times and addresses
    // cannot be: the type refuses them, see the unreadable record below).
    let json = serde_json::json!({
        "alert_kind": "surge", "protocol": "tcp", "port": 22, "severity": "critical",
        "score": 9.0, "window_start": "2026-11-26T10:00:00Z",
        "episode_start": "2026-11-26T10:00:00Z",
        "headline": EVIL, "summary": EVIL, "assessment": EVIL, "priority_reason": EVIL,
        "sources": 7, "window_end": "2026-11-26T11:00:00Z",
        "service": {"name": EVIL, "notes": EVIL},
        "advisories": [{"id": EVIL, "title": EVIL, "reasons": [EVIL], "match_reason": EVIL}],
        "mitigations": [{"platform": "pf", "rule": EVIL}],
        "exposed_assets": [{"host": EVIL, "reasons": [EVIL], "zone": EVIL}],
        "top_sources": [{"ip": "192.0.2.1", "events": 1}],
        EVIL: 1,
    });
    let start = Timestamp(1_795_687_200_000); // 2026-11-26T10:00:00Z
    let id = {
        let mut st = s.state.store.lock().unwrap();
        st.put_windows(&[WindowRow {
            window_start: start,
            window_end: Timestamp(start.0 + h),
            proto: 6,
            port: 22,
            events: 9,
            sources: 7,
            sensors: 1,
            targets: 1,
            top_sources_json: format!("[{{\"ip\":{},\"events\":9}}]", serde_json::json!(EVIL)),
        }])
        .unwrap();
        st.put_alert(&AlertRow {
            id: 0,
            kind: EVIL.into(),
            proto: 6,
            port: 22,
            window_start: start,
            severity_rank: 9,
            json: json.to_string(),
        })
        .unwrap()
    };
    for path in [
        "/".to_string(),
        "/sensors".into(),
        "/alerts".into(),
        format!("/alerts/{id}"),
        "/ports/tcp/22".into(),
    ] {
        let (st, html, _) = get(&s, &path, Some(&s.admin)).await;
        assert_eq!(st, StatusCode::OK, "{path}: {html}");
        assert!(!html.contains("<script>alert"), "{path}: unescaped\n{html}");
        assert!(!html.contains("<b>x</b>"), "{path}");
        check_svgs(&html);
    }
    let (_, html, _) = get(&s, "/sensors", Some(&s.admin)).await;
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    assert!(
        html.contains("action=\"/sensors/%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%27%26/revoke\"")
            || html.contains(
                "action=\"/sensors/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%26/revoke\""
            ),
        "the revoke URL is percent-encoded\n{html}"
    );
    let (_, html, _) = get(&s, &format!("/alerts/{id}"), Some(&s.admin)).await;
    assert!(html.contains("<section id=\"narrative\">"));
    assert!(html.contains("&lt;script&gt;"));
    // A record the warning type cannot read (hostile enums and addresses) still
    // renders, as a stand-in that says so, and no list page fails on it.
    let bad = serde_json::json!({
        "headline": EVIL, "confidence": EVIL, "window_end": "2026-11-26T11:00:00Z",
        "mitigations": [{"platform": EVIL, "rule": EVIL}],
        "top_sources": [{"ip": EVIL, "events": 1}],
    });
    let bad_id = s
        .state
        .store
        .lock()
        .unwrap()
        .put_alert(&AlertRow {
            id: 0,
            kind: EVIL.into(),
            proto: 6,
            port: 22,
            window_start: Timestamp(start.0 + h),
            severity_rank: 9,
            json: bad.to_string(),
        })
        .unwrap();
    for path in [
        format!("/alerts/{bad_id}"),
        "/alerts".into(),
        "/ports/tcp/22".into(),
    ] {
        let (st, html, _) = get(&s, &path, Some(&s.admin)).await;
        assert_eq!(st, StatusCode::OK, "{path}: {html}");
        assert!(!html.contains("<script>alert"), "{path}: unescaped\n{html}");
        assert!(
            html.contains("its stored record is not readable"),
            "{path}: {html}"
        );
    }
}
