//! The dashboard pages: overview, port, warnings, warning, sensors and source, all
//! server-rendered HTML with inline SVG charts, plus the stylesheet and the small
//! script (copy buttons) embedded in the binary.
//!
//! Every page reads the store once (one `with_reader` call, on a read connection) and aggregates in
//! memory. "Now" is event time: the end of the newest stored window, so a replayed
//! log shows its own time.

#[path = "html.rs"]
pub mod html;
#[path = "series.rs"]
pub mod series;
#[path = "svg.rs"]
pub mod svg;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use scanwatch_event::{Protocol, Timestamp};
use scanwatch_store::{AlertRow, Role, SensorRecord, Store, StoreError, WindowRow};
use serde_json::Value;

use crate::web::auth::WebUser;
use crate::AppState;
use html::{
    badge, esc, float, layout, num, page, severity_name, span, time_el, url_part, when, Nav,
    PageError, SEVERITIES,
};
use series::{points, rebucket, top_sources, Metric};
use svg::{line_chart, sparkline, Chart, Marker};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// The pages: overview, port, warning, sensors, source; and the static files.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/ports/{proto}/{port}", get(port_page))
        .route("/alerts", get(alerts_page))
        .route("/alerts/{id}", get(alert_page))
        .route("/sensors", get(sensors_page))
        .route("/sources/{ip}", get(source_page))
        .route("/search", get(search))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
}

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// `GET /static/app.css` (no login).
async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /static/app.js` (no login).
async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

type Params = HashMap<String, String>;

fn params(q: Result<Query<Params>, QueryRejection>) -> Result<Params, PageError> {
    q.map(|Query(p)| p)
        .map_err(|e| PageError::BadRequest(e.body_text()))
}

/// Windows re-bucketed for a chart of `[from, to)` in steps of `step`, with the
/// week before it for the baseline band: where the shown part starts, how many
/// buckets the band looks back, the history it needs, and the first bucket with data.
struct ChartSpan {
    buckets: Vec<series::Bucket>,
    first: usize,
    lookback: usize,
    min_hist: usize,
    known_from: usize,
}

fn chart_span(rows: &[WindowRow], from: i64, to: i64, step: i64) -> ChartSpan {
    let hist_from = Timestamp(from - WEEK).floor(step).0;
    let buckets = rebucket(rows, hist_from, to, step);
    ChartSpan {
        first: usize::try_from((from - hist_from) / step).unwrap_or(0),
        lookback: usize::try_from(WEEK / step).unwrap_or(1).max(1),
        min_hist: usize::try_from(DAY / step).unwrap_or(1).max(1),
        known_from: buckets.iter().position(|x| x.windows > 0).unwrap_or(0),
        buckets,
    }
}

/// One link of a range/window/filter switch, marked when it is the current choice.
fn switch_link(b: &mut String, href: &str, label: &str, current: bool) {
    let cur = if current {
        " aria-current=\"true\" class=\"current\""
    } else {
        ""
    };
    let _ = write!(b, "<a href=\"{href}\"{cur}>{}</a> ", esc(label));
}

/// The newest stored window (start, end): "now" for the pages is event time, so a
/// replayed log shows its own time.
pub fn newest_window(s: &dyn Store) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
    s.latest_window()
}

fn proto_label(proto: u8) -> String {
    Protocol::from_number(proto).name().to_uppercase()
}

/// `TCP/1025` linked to its port page.
fn port_link(proto: u8, port: u16) -> String {
    let p = Protocol::from_number(proto);
    match p {
        Protocol::Tcp | Protocol::Udp => format!(
            "<a href=\"/ports/{}/{port}\">{}/{port}</a>",
            p.name(),
            proto_label(proto)
        ),
        _ => format!("{}/{port}", esc(&proto_label(proto))),
    }
}

fn service_name(st: &AppState, proto: u8, port: u16) -> String {
    let p = Protocol::from_number(proto);
    st.context
        .read()
        .ok()
        .and_then(|c| c.ports.info(p, port).map(|f| f.name))
        .unwrap_or_else(|| scanwatch_context::service_name(p, port).to_string())
}

/// A note saying what "now" is.
fn now_note(now: Option<Timestamp>) -> String {
    match now {
        Some(t) => format!(
            "<p class=\"note\" id=\"now\">Times are event time: \"now\" is the end of the newest stored window, \
             {}, not the wall clock, so a replayed log shows its own time.</p>",
            time_el(t)
        ),
        None => "<p class=\"note\" id=\"now\">No windows are stored yet: sensors have not sent enough \
                 events for a window to close.</p>"
            .to_string(),
    }
}

fn jstr<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn jnum(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn parse_json(row: &AlertRow) -> Value {
    serde_json::from_str(&row.json).unwrap_or(Value::Null)
}

fn marker_of(row: &AlertRow, v: &Value, current: bool) -> Marker {
    let end = scanwatch_event::parse_rfc3339(jstr(v, "window_end"))
        .map_or(row.window_start.0 + HOUR, |t| t.0);
    Marker {
        id: row.id,
        from: row.window_start.0,
        to: end.max(row.window_start.0 + 1),
        severity: severity_name(row.severity_rank),
        label: format!(
            "{} warning {}: {}",
            severity_name(row.severity_rank),
            row.id,
            jstr(v, "headline")
        ),
        current,
    }
}

// ---------------------------------------------------------------- overview

struct OverviewData {
    now: Option<(Timestamp, Timestamp)>,
    /// The latest window's cells, then the earlier windows (last 7 days) of its top
    /// ten ports.
    rows: Vec<WindowRow>,
    alerts: Vec<AlertRow>,
    sensors: Vec<SensorRecord>,
}

/// The ten ports of a window with the most sources (then events).
fn top_ten<'a>(rows: impl Iterator<Item = &'a WindowRow>) -> Vec<&'a WindowRow> {
    let mut v: Vec<&WindowRow> = rows.collect();
    v.sort_by(|a, b| {
        b.sources
            .cmp(&a.sources)
            .then(b.events.cmp(&a.events))
            .then((a.proto, a.port).cmp(&(b.proto, b.port)))
    });
    v.truncate(10);
    v
}

/// Reads what the overview shows. The history is read for the ten ports only, by
/// their primary key: reading every port's week (`windows_between`) costs ~0.3 s
/// with 200 ports, as each row carries its top-source JSON and is found through
/// the time index.
fn overview_data(s: &dyn Store) -> Result<OverviewData, StoreError> {
    let now = newest_window(s)?;
    let (mut rows, alerts) = match now {
        Some((start, end)) => (
            s.windows_between(start, end)?,
            s.alerts(Timestamp(end.0.saturating_sub(DAY)), Timestamp(i64::MAX), 0)?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    if let Some((start, _)) = now {
        let top: Vec<(u8, u16)> = top_ten(rows.iter().filter(|r| r.window_start == start))
            .iter()
            .map(|r| (r.proto, r.port))
            .collect();
        for (proto, port) in top {
            rows.extend(s.port_history(
                proto,
                port,
                Timestamp(start.0.saturating_sub(WEEK)),
                start,
            )?);
        }
    }
    Ok(OverviewData {
        now,
        rows,
        alerts,
        sensors: s.sensors()?,
    })
}

/// `GET /`: top ports of the latest window against their baseline, active
/// warnings, sensors reporting.
async fn overview(user: WebUser, State(st): State<AppState>) -> Result<Response, PageError> {
    let clock = (st.clock)();
    let d = st.with_reader(|s| overview_data(s)).await?;
    Ok(page(layout(
        "Overview",
        &user,
        Nav::Overview,
        &render_overview(&st, &d, clock),
    )))
}

fn render_overview(st: &AppState, d: &OverviewData, clock: Timestamp) -> String {
    let mut b = String::with_capacity(32 * 1024);
    b.push_str("<h1>Overview</h1>");
    b.push_str(&now_note(d.now.map(|n| n.1)));
    b.push_str("<div class=\"cols\">");
    // Warnings of the last 24 h, one line per surge: the windows of one surge share
    // protocol, port and episode start, and are listed most severe first.
    let mut surges: Vec<(&AlertRow, Value, usize)> = Vec::new();
    for a in &d.alerts {
        let v = parse_json(a);
        let key = |x: &Value| {
            (
                jstr(x, "episode_start").to_string(),
                jstr(x, "alert_kind").to_string(),
            )
        };
        match surges
            .iter_mut()
            .find(|(r, w, _)| r.proto == a.proto && r.port == a.port && key(w) == key(&v))
        {
            Some(s) => s.2 += 1,
            None => surges.push((a, v, 1)),
        }
    }
    let mut counts = [0usize; 5];
    for (a, _, _) in &surges {
        counts[usize::from(a.severity_rank.min(4))] += 1;
    }
    b.push_str("<section id=\"active-warnings\" class=\"card\"><h2>Surges warned of, last 24 h</h2><ul class=\"counts\">");
    for rank in (0..5u8).rev() {
        let n = counts[usize::from(rank)];
        let _ = write!(
            b,
            "<li><a href=\"/alerts?severity={name}&amp;range=24h\">{badge}</a> <span data-field=\"warnings-{name}\">{n}</span></li>",
            name = severity_name(rank),
            badge = badge(rank),
        );
    }
    b.push_str("</ul><p class=\"note\">By the peak severity of each surge; a surge is the run of warning windows of one port.</p>");
    if surges.is_empty() {
        b.push_str("<p>No warnings in the last 24 hours.</p>");
    } else {
        b.push_str("<ol class=\"warnings\">");
        for (a, v, n) in surges.iter().take(15) {
            let _ = write!(
                b,
                "<li>{} {} <a href=\"/alerts/{}\">{}</a> {} <span class=\"note\">{} warning window{} since {}</span></li>",
                badge(a.severity_rank),
                port_link(a.proto, a.port),
                a.id,
                esc(jstr(v, "headline")),
                time_el(a.window_start),
                n,
                if *n == 1 { "" } else { "s" },
                esc(jstr(v, "episode_start")),
            );
        }
        b.push_str("</ol>");
        let _ = write!(
            b,
            "<p><a href=\"/alerts?range=24h\">all {} warning windows of the last 24 h</a></p>",
            d.alerts.len()
        );
    }
    b.push_str("</section>");
    // Sensors reporting (last_seen is stamped with the server's clock on receipt).
    let live: Vec<&SensorRecord> = d.sensors.iter().filter(|s| !s.revoked).collect();
    let seen_within = |ms: i64| {
        live.iter()
            .filter(|s| s.last_seen.is_some_and(|t| clock.0 - t.0 <= ms))
            .count()
    };
    let _ = write!(
        b,
        "<section id=\"sensors-reporting\" class=\"card\"><h2>Sensors</h2><ul class=\"counts\">\
         <li>sent a batch in the last hour: <span data-field=\"sensors-hour\">{}</span></li>\
         <li>in the last day: <span data-field=\"sensors-day\">{}</span></li>\
         <li>active: <span data-field=\"sensors-total\">{}</span> (revoked: {})</li></ul>\
         <p class=\"note\">By the server's clock when batches arrived. <a href=\"/sensors\">all sensors</a></p></section>",
        seen_within(HOUR),
        seen_within(DAY),
        live.len(),
        d.sensors.len() - live.len(),
    );
    b.push_str("</div>");
    // Top ports of the latest window.
    b.push_str("<section id=\"top-ports\"><h2>Top 10 ports, latest window</h2>");
    let Some((start, end)) = d.now else {
        b.push_str("<p>No data yet.</p></section>");
        return b;
    };
    let wlen = (end.0 - start.0).max(60_000);
    let from = start.0.saturating_sub(WEEK);
    let n_hist = usize::try_from(WEEK / wlen).unwrap_or(168).max(1);
    let latest = top_ten(d.rows.iter().filter(|r| r.window_start == start));
    let index: HashMap<(u8, u16), usize> = latest
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.proto, r.port), i))
        .collect();
    // One pass over the rows: sources per window for the ten ports (silent = 0).
    let mut series = vec![vec![0.0f64; n_hist + 1]; latest.len()];
    for r in &d.rows {
        if let Some(&i) = index.get(&(r.proto, r.port)) {
            if let Some(slot) = usize::try_from((r.window_start.0 - from) / wlen)
                .ok()
                .and_then(|k| series[i].get_mut(k))
            {
                *slot = r.sources as f64;
            }
        }
    }
    let warned: std::collections::HashSet<(u8, u16)> = d
        .alerts
        .iter()
        .filter(|a| a.window_start == start)
        .map(|a| (a.proto, a.port))
        .collect();
    // Windows before the first stored one are unknown, not silent: the baseline and
    // the sparklines start there (the detector's history starts with its data too).
    // The first stored window is that of the ten ports' histories (busy ports are
    // seen from the start).
    let k0 = d
        .rows
        .iter()
        .map(|r| r.window_start)
        .min()
        .and_then(|t| usize::try_from((t.0 - from) / wlen).ok())
        .unwrap_or(0)
        .min(n_hist);
    let _ = write!(
        b,
        "<p class=\"note\">Window {} to {} ({}). Baseline: median sources of the previous {} windows \
         (7 days, or since the first stored window; silent windows count as zero); ×normal = sources ÷ max(baseline, 1), as the detector computes it. \
         Sparklines: sources per window over the 7 days, dashed line the baseline.</p>",
        time_el(start),
        time_el(end),
        span(wlen),
        n_hist - k0
    );
    b.push_str(
        "<table id=\"top-ports-table\" class=\"data\"><thead><tr><th>#</th><th>port</th><th>service</th>\
         <th class=\"n\">sources</th><th class=\"n\">baseline</th><th class=\"n\">×normal</th>\
         <th class=\"n\">events</th><th class=\"n\">sensors</th><th>7 days</th></tr></thead><tbody>",
    );
    for (i, r) in latest.iter().enumerate() {
        let hist = &series[i][k0..n_hist];
        let base = series::median(&mut hist.to_vec());
        let times = r.sources as f64 / base.max(1.0);
        let hot = if warned.contains(&(r.proto, r.port)) {
            " class=\"warned\""
        } else {
            ""
        };
        let label = format!(
            "{}/{} sources per window, 7 days",
            proto_label(r.proto),
            r.port
        );
        let _ = write!(
            b,
            "<tr{hot} data-port=\"{proto}/{port}\"><td>{rank}</td><td>{link}</td><td>{svc}</td>\
             <td class=\"n\" data-field=\"sources\">{src}</td><td class=\"n\" data-field=\"baseline\">{base}</td>\
             <td class=\"n\" data-field=\"times_normal\">{times}</td><td class=\"n\" data-field=\"events\">{ev}</td>\
             <td class=\"n\" data-field=\"sensors\">{sens}</td><td>{spark}</td></tr>",
            proto = esc(&Protocol::from_number(r.proto).name()),
            port = r.port,
            rank = i + 1,
            link = port_link(r.proto, r.port),
            svc = esc(&service_name(st, r.proto, r.port)),
            src = num(r.sources),
            base = float(base, 1),
            times = float(times, 1),
            ev = num(r.events),
            sens = num(r.sensors),
            spark = sparkline("sources", &label, &series[i][k0..], Some(base)),
        );
    }
    b.push_str("</tbody></table></section>");
    b
}

// ---------------------------------------------------------------- port page

fn parse_port(
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Protocol, u16), PageError> {
    let Path((proto, port)) = p.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let proto = match proto.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(PageError::BadRequest("protocol must be tcp or udp".into())),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| PageError::BadRequest("port must be 0-65535".into()))?;
    Ok((proto, port))
}

const RANGES: [(&str, i64); 3] = [("24h", DAY), ("7d", WEEK), ("30d", 30 * DAY)];
const WINDOWS: [(&str, i64); 3] = [("1h", HOUR), ("6h", 6 * HOUR), ("1d", DAY)];

fn choice(
    p: &Params,
    key: &str,
    options: &[(&'static str, i64)],
    default: usize,
) -> Result<(&'static str, i64), PageError> {
    match p.get(key) {
        None => Ok(options[default]),
        Some(v) => options
            .iter()
            .find(|(n, _)| n == v)
            .copied()
            .ok_or_else(|| {
                PageError::BadRequest(format!(
                    "{key} must be one of {}",
                    options.iter().map(|o| o.0).collect::<Vec<_>>().join(", ")
                ))
            }),
    }
}

struct PortData {
    now: Option<(Timestamp, Timestamp)>,
    rows: Vec<WindowRow>,
    alerts: Vec<AlertRow>,
}

/// `GET /ports/{proto}/{port}?range=24h|7d|30d&window=1h|6h|1d`.
async fn port_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let (proto, port) = parse_port(path)?;
    let q = params(q)?;
    let (range_name, range) = choice(&q, "range", &RANGES, 1)?;
    let (window_name, window) = choice(&q, "window", &WINDOWS, 0)?;
    let pn = proto.number();
    let d = st
        .with_reader(move |s| {
            let now = newest_window(s)?;
            let Some((_, end)) = now else {
                return Ok(PortData {
                    now,
                    rows: Vec::new(),
                    alerts: Vec::new(),
                });
            };
            let from = end.0.saturating_sub(range).saturating_sub(WEEK + window);
            Ok(PortData {
                now,
                rows: s.port_history(pn, port, Timestamp(from), end)?,
                alerts: s
                    .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)?
                    .into_iter()
                    .filter(|a| a.proto == pn && a.port == port)
                    .collect(),
            })
        })
        .await?;
    let title = format!("{}/{port}", proto.name().to_uppercase());
    let body = render_port(
        &st,
        &d,
        proto,
        port,
        (range_name, range),
        (window_name, window),
    );
    Ok(page(layout(&title, &user, Nav::None, &body)))
}

fn render_port(
    st: &AppState,
    d: &PortData,
    proto: Protocol,
    port: u16,
    (range_name, range): (&str, i64),
    (window_name, window): (&str, i64),
) -> String {
    let label = format!("{}/{port}", proto.name().to_uppercase());
    let mut b = String::with_capacity(64 * 1024);
    let fact = st
        .context
        .read()
        .ok()
        .and_then(|c| c.ports.info(proto, port));
    let name = fact
        .as_ref()
        .map(|f| f.name.clone())
        .unwrap_or_else(|| scanwatch_context::service_name(proto, port).to_string());
    let _ = write!(
        b,
        "<h1>{} <span class=\"service\">{}</span></h1>",
        esc(&label),
        esc(&name)
    );
    b.push_str(&now_note(d.now.map(|n| n.1)));
    // Range and window switches (links; the page is rendered on the server).
    let base = format!("/ports/{}/{port}", proto.name());
    b.push_str("<nav class=\"switch\" aria-label=\"range\">range: ");
    for (n, _) in RANGES {
        switch_link(
            &mut b,
            &format!("{base}?range={n}&amp;window={window_name}"),
            n,
            n == range_name,
        );
    }
    b.push_str("· window: ");
    for (n, _) in WINDOWS {
        switch_link(
            &mut b,
            &format!("{base}?range={range_name}&amp;window={n}"),
            n,
            n == window_name,
        );
    }
    b.push_str("</nav>");
    let Some((nstart, now)) = d.now else {
        b.push_str("<p>No data yet.</p>");
        return b;
    };
    // Stored windows are the finest grain: a shorter window than stored is the stored one.
    let step = window.max(now.0 - nstart.0).max(60_000);
    let to = Timestamp(now.0 - 1).floor(step).0 + step;
    let from = Timestamp(now.0 - range).floor(step).0;
    let ChartSpan {
        buckets,
        first,
        lookback,
        min_hist,
        known_from,
    } = chart_span(&d.rows, from, to, step);
    let markers: Vec<Marker> = d
        .alerts
        .iter()
        .filter(|a| a.window_start.0 < to && a.window_start.0 >= from - step)
        .map(|a| marker_of(a, &parse_json(a), false))
        .collect();
    let shown = &buckets[first.min(buckets.len())..];
    let total_events: u64 = shown.iter().map(|x| x.events).sum();
    let peak_sources = shown.iter().map(|x| x.sources).max().unwrap_or(0);
    let _ = write!(
        b,
        "<p class=\"summary\">Over the last {range_name}: <span data-field=\"events\">{}</span> events; \
         at most <span data-field=\"sources\">{}</span> sources in one window; \
         <span data-field=\"warnings\">{}</span> warnings.</p>",
        num(total_events),
        num(peak_sources),
        markers.len(),
    );
    let _ = write!(
        b,
        "<p class=\"note\" id=\"method\">Windows of {}: stored windows are re-bucketed; events are summed exactly, \
         while sources, sensors and targets of a coarser window are the <strong>largest</strong> count of its stored \
         windows (a lower bound: the same source in two hours counts once in each). Band: rolling median ± 3 robust \
         spreads (1.4826·MAD, at least √median) of the previous 7 days of windows, silent windows as zero, as the \
         detector measures it (docs/detection.md), shown once a day of history is stored. Shaded: warnings, linked.</p>",
        span(step)
    );
    for (metric, what) in [
        (Metric::Sources, "distinct sources"),
        (Metric::Events, "events"),
        (Metric::Sensors, "distinct sensors"),
    ] {
        let pts = points(&buckets, metric, first, lookback, min_hist, known_from);
        let id = format!("chart-{}", metric.name());
        let _ = write!(
            b,
            "<figure><figcaption>{}</figcaption>{}</figure>",
            esc(&format!("{what} per {}", span(step))),
            line_chart(&Chart {
                series: metric.name(),
                id: &id,
                title: format!("{label}: {what} per {} window", span(step)),
                desc: format!(
                    "{what} on {label} from {} to {}, with the baseline band and {} warnings marked",
                    when(Timestamp(from)),
                    when(Timestamp(to)),
                    markers.len()
                ),
                from,
                to,
                step,
                points: &pts,
                markers: &markers,
            })
        );
    }
    b.push_str("<div class=\"cols\">");
    // Top sources over the range.
    let tops = top_sources(
        d.rows
            .iter()
            .filter(|r| r.window_start.0 >= from)
            .map(|r| r.top_sources_json.as_str()),
        20,
    );
    b.push_str("<section id=\"top-sources\" class=\"card\"><h2>Top sources</h2>");
    if tops.is_empty() {
        b.push_str("<p>None in this range.</p>");
    } else {
        b.push_str(
            "<table class=\"data\"><thead><tr><th>source</th><th class=\"n\">events</th>\
             <th class=\"n\">windows</th></tr></thead><tbody>",
        );
        for (ip, ev, w) in &tops {
            let _ = write!(
                b,
                "<tr><td><a href=\"/sources/{}\">{}</a></td><td class=\"n\" data-field=\"events\">{}</td><td class=\"n\">{}</td></tr>",
                url_part(ip),
                esc(ip),
                num(*ev),
                w
            );
        }
        b.push_str("</tbody></table><p class=\"note\">Summed from each window's stored top-source list: \
                    events a source sent in windows where it was not among the top are missing, so these are lower bounds.</p>");
    }
    b.push_str("</section>");
    // Service notes.
    b.push_str("<section id=\"service\" class=\"card\"><h2>Service</h2>");
    match &fact {
        Some(f) => {
            let _ = write!(
                b,
                "<p><strong>{}</strong>{}</p>",
                esc(&f.name),
                if f.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&f.note))
                }
            );
            if !f.source.is_empty() {
                let _ = write!(b, "<p class=\"note\">Source: {}</p>", esc(&f.source));
            }
        }
        None => b.push_str("<p>No notes for this port.</p>"),
    }
    b.push_str("</section></div>");
    // Warnings on this port, their sensors and advisories.
    render_port_warnings(&mut b, &d.alerts);
    b
}

fn render_port_warnings(b: &mut String, alerts: &[AlertRow]) {
    b.push_str("<section id=\"port-warnings\"><h2>Warnings on this port</h2>");
    if alerts.is_empty() {
        b.push_str("<p>No stored warnings.</p></section>");
        return;
    }
    let mut sorted: Vec<(&AlertRow, Value)> = alerts.iter().map(|a| (a, parse_json(a))).collect();
    sorted.sort_by_key(|x| std::cmp::Reverse(x.0.window_start));
    b.push_str(
        "<table class=\"data\"><thead><tr><th>window</th><th>severity</th><th class=\"n\">sources</th>\
         <th class=\"n\">×normal</th><th class=\"n\">sensors</th><th class=\"n\">top sensor share</th><th>headline</th></tr></thead><tbody>",
    );
    for (a, v) in sorted.iter().take(50) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"n\" data-field=\"sources\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\" data-field=\"sensors\">{} of {}</td><td class=\"n\">{}%</td><td><a href=\"/alerts/{}\">{}</a></td></tr>",
            time_el(a.window_start),
            badge(a.severity_rank),
            num(jnum(v, "sources") as u64),
            float(jnum(v, "times_normal"), 1),
            num(jnum(v, "sensors") as u64),
            num(jnum(v, "active_sensors") as u64),
            float(jnum(v, "top_sensor_share") * 100.0, 0),
            a.id,
            esc(jstr(v, "headline")),
        );
    }
    b.push_str("</tbody></table>");
    // Which sensors see it: per-sensor names are kept only when a warning stores them.
    b.push_str("<h3 id=\"sensors-seeing\">Sensors</h3>");
    let mut named: BTreeMap<String, u64> = BTreeMap::new();
    for (_, v) in &sorted {
        if let Some(list) = v.get("top_sensors").and_then(Value::as_array) {
            for s in list {
                let name = s
                    .get("sensor")
                    .or_else(|| s.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                *named.entry(name.to_string()).or_default() +=
                    s.get("events").and_then(Value::as_u64).unwrap_or(0);
            }
        }
    }
    if named.is_empty() {
        b.push_str(
            "<p class=\"note\">Which sensors saw the port is not stored: windows keep the number of distinct \
             sensors (the sensors chart above) and each warning the number of sensors, the sensors that reported \
             anything in its window and the share of events of its busiest sensor, shown in the table.</p>",
        );
    } else {
        b.push_str("<ul>");
        for (n, e) in &named {
            let _ = write!(b, "<li>{}: {} events</li>", esc(n), num(*e));
        }
        b.push_str("</ul>");
    }
    // Advisories of the warnings, best score per advisory.
    let mut adv: BTreeMap<String, (f64, &Value, usize)> = BTreeMap::new();
    for (_, v) in &sorted {
        for a in v
            .get("advisories")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = jstr(a, "id").to_string();
            let score = jnum(a, "score");
            let e = adv.entry(id).or_insert((score, a, 0));
            e.2 += 1;
            if score > e.0 {
                e.0 = score;
                e.1 = a;
            }
        }
    }
    b.push_str("<h3 id=\"advisories\">Advisories named by these warnings</h3>");
    if adv.is_empty() {
        b.push_str("<p>None: no imported advisory matches this port.</p>");
    } else {
        let mut list: Vec<_> = adv.into_iter().collect();
        list.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        b.push_str("<ul class=\"advisories\">");
        for (id, (score, a, n)) in list.iter().take(20) {
            let _ = write!(
                b,
                "<li><strong>{}</strong> {} <span class=\"note\">score {}, in {} warning{}; {}</span></li>",
                esc(id),
                esc(jstr(a, "title")),
                float(*score, 2),
                n,
                if *n == 1 { "" } else { "s" },
                esc(jstr(a, "match_reason")),
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
}

// ---------------------------------------------------------------- warnings list

/// `GET /alerts?severity=info|low|medium|high|critical&range=24h|7d|30d|all`.
async fn alerts_page(
    user: WebUser,
    State(st): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = params(q)?;
    let min = match q.get("severity").map(String::as_str) {
        None | Some("") => 0u8,
        Some(s) => SEVERITIES
            .iter()
            .position(|n| *n == s)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| {
                PageError::BadRequest("severity must be info, low, medium, high or critical".into())
            })?,
    };
    let ranges = [("24h", DAY), ("7d", WEEK), ("30d", 30 * DAY), ("all", 0)];
    let (range_name, range) = choice(&q, "range", &ranges, 3)?;
    let (now, rows) = st
        .with_reader(move |s| {
            let now = newest_window(s)?;
            let from = match now {
                Some((_, end)) if range > 0 => end.0.saturating_sub(range),
                _ => i64::MIN,
            };
            Ok((now, s.alerts(Timestamp(from), Timestamp(i64::MAX), min)?))
        })
        .await?;
    let mut b = String::with_capacity(32 * 1024);
    b.push_str("<h1>Warnings</h1>");
    b.push_str(&now_note(now.map(|n| n.1)));
    b.push_str("<nav class=\"switch\" aria-label=\"filters\">at least: ");
    for (i, n) in SEVERITIES.iter().enumerate() {
        switch_link(
            &mut b,
            &format!("/alerts?severity={n}&amp;range={range_name}"),
            n,
            i == usize::from(min),
        );
    }
    b.push_str("· range: ");
    for (n, _) in ranges {
        switch_link(
            &mut b,
            &format!("/alerts?severity={}&amp;range={n}", severity_name(min)),
            n,
            n == range_name,
        );
    }
    b.push_str("</nav>");
    let _ = write!(
        b,
        "<p><span data-field=\"count\">{}</span> warnings, most severe first, then newest.</p>",
        rows.len()
    );
    if !rows.is_empty() {
        b.push_str(
            "<table id=\"warnings\" class=\"data\"><thead><tr><th>severity</th><th>window</th><th>port</th>\
             <th>kind</th><th class=\"n\">sources</th><th class=\"n\">×normal</th><th>confidence</th><th>headline</th></tr></thead><tbody>",
        );
        for a in rows.iter().take(1000) {
            let v = parse_json(a);
            let _ = write!(
                b,
                "<tr data-alert-id=\"{id}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\" data-field=\"sources\">{}</td><td class=\"n\" data-field=\"times_normal\">{}</td>\
                 <td>{}</td><td><a href=\"/alerts/{id}\">{}</a></td></tr>",
                badge(a.severity_rank),
                time_el(a.window_start),
                port_link(a.proto, a.port),
                esc(&a.kind),
                num(jnum(&v, "sources") as u64),
                float(jnum(&v, "times_normal"), 1),
                esc(jstr(&v, "confidence")),
                esc(jstr(&v, "headline")),
                id = a.id,
            );
        }
        b.push_str("</tbody></table>");
        if rows.len() > 1000 {
            b.push_str("<p class=\"note\">The first 1,000 are shown; narrow the range or raise the severity.</p>");
        }
    }
    Ok(page(layout("Warnings", &user, Nav::Warnings, &b)))
}

// ---------------------------------------------------------------- warning page

struct AlertData {
    row: AlertRow,
    now: Option<(Timestamp, Timestamp)>,
    rows: Vec<WindowRow>,
    neighbours: Vec<AlertRow>,
    from: i64,
    to: i64,
}

/// `GET /alerts/{id}`: one warning with its narrative, evidence and context.
async fn alert_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let Path(id) = path.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let id: i64 = id
        .parse()
        .map_err(|_| PageError::BadRequest("warning id must be a number".into()))?;
    let d = st
        .with_reader(move |s| {
            let Some(row) = s.alert(id)? else {
                return Ok(None);
            };
            let now = newest_window(s)?;
            let v = parse_json(&row);
            let ws = row.window_start.0;
            let we = scanwatch_event::parse_rfc3339(jstr(&v, "window_end"))
                .map_or(ws + HOUR, |t| t.0)
                .max(ws + 60_000);
            let episode = scanwatch_event::parse_rfc3339(jstr(&v, "episode_start"))
                .map_or(ws, |t| t.0)
                .min(ws);
            // Two days before the episode to one day after the warning (not past now).
            let from = episode.saturating_sub(2 * DAY);
            let to = (we + DAY).min(now.map_or(we, |n| n.1 .0.max(we)));
            let rows =
                s.port_history(row.proto, row.port, Timestamp(from - WEEK), Timestamp(to))?;
            let neighbours = s
                .alerts(Timestamp(from - DAY), Timestamp(to), 0)?
                .into_iter()
                .filter(|a| a.proto == row.proto && a.port == row.port)
                .collect();
            Ok(Some(AlertData {
                row,
                now,
                rows,
                neighbours,
                from,
                to,
            }))
        })
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no warning {id}")))?;
    let v = parse_json(&d.row);
    let title = format!(
        "Warning {}: {}/{}",
        d.row.id,
        proto_label(d.row.proto),
        d.row.port
    );
    Ok(page(layout(
        &title,
        &user,
        Nav::Warnings,
        &render_alert(&d, &v),
    )))
}

fn render_alert(d: &AlertData, v: &Value) -> String {
    let r = &d.row;
    let mut b = String::with_capacity(64 * 1024);
    let _ = write!(
        b,
        "<h1>{} {} <span class=\"service\">{}</span></h1><p class=\"headline\" id=\"headline\">{}</p>",
        badge(r.severity_rank),
        port_link(r.proto, r.port),
        esc(v.get("service").map_or("", |s| jstr(s, "name"))),
        esc(jstr(v, "headline")),
    );
    let _ = write!(
        b,
        "<p class=\"facts\">window {} to {} · {} warning · confidence <strong data-field=\"confidence\">{}</strong>{}</p>",
        time_el(r.window_start),
        esc(&scanwatch_event::parse_rfc3339(jstr(v, "window_end")).map_or_else(String::new, html::when)),
        esc(jstr(v, "alert_kind")),
        esc(jstr(v, "confidence")),
        if v.get("verified").and_then(Value::as_bool) == Some(true) {
            " (verified by IDS alerts)"
        } else {
            " (not verified)"
        },
    );
    b.push_str(&now_note(d.now.map(|n| n.1)));
    let _ = write!(
        b,
        "<section id=\"narrative\"><h2>What happened</h2><p>{}</p><p class=\"assessment\">{}</p></section>",
        esc(jstr(v, "summary")),
        esc(jstr(v, "assessment")),
    );
    // Key numbers.
    let base = v.get("baseline").cloned().unwrap_or(Value::Null);
    b.push_str("<section id=\"key-numbers\"><dl class=\"numbers\">");
    for (label, field, val) in [
        ("sources", "sources", num(jnum(v, "sources") as u64)),
        (
            "baseline sources",
            "baseline.sources",
            float(jnum(&base, "sources"), 1),
        ),
        ("×normal", "times_normal", float(jnum(v, "times_normal"), 1)),
        ("events", "events", num(jnum(v, "events") as u64)),
        (
            "sensors",
            "sensors",
            format!(
                "{} of {}",
                num(jnum(v, "sensors") as u64),
                num(jnum(v, "active_sensors") as u64)
            ),
        ),
        ("score", "score", float(jnum(v, "score"), 2)),
    ] {
        let _ = write!(
            b,
            "<div><dt>{label}</dt><dd data-field=\"{field}\">{}</dd></div>",
            esc(&val)
        );
    }
    b.push_str("</dl></section>");
    // Evidence charts.
    let step = (v
        .get("window_end")
        .and_then(Value::as_str)
        .and_then(scanwatch_event::parse_rfc3339)
        .map_or(HOUR, |t| t.0 - r.window_start.0))
    .max(60_000);
    let from = Timestamp(d.from).floor(step).0;
    let to = Timestamp(d.to - 1).floor(step).0 + step;
    let ChartSpan {
        buckets,
        first,
        lookback,
        min_hist,
        known_from,
    } = chart_span(&d.rows, from, to, step);
    let markers: Vec<Marker> = d
        .neighbours
        .iter()
        .map(|a| marker_of(a, &parse_json(a), a.id == r.id))
        .collect();
    let label = format!("{}/{}", proto_label(r.proto), r.port);
    b.push_str("<section id=\"evidence\"><h2>Evidence</h2>");
    let _ = write!(
        b,
        "<p class=\"note\">{label} per {} window from two days before the surge began to a day after this warning. \
         Band: rolling median ± 3 robust spreads of the previous 7 days (silent windows as zero). \
         Shaded: warnings on this port, this one darker.</p>",
        span(step)
    );
    for metric in [Metric::Sources, Metric::Events] {
        let pts = points(&buckets, metric, first, lookback, min_hist, known_from);
        let id = format!("evidence-{}", metric.name());
        let _ = write!(
            b,
            "<figure><figcaption>{} per {}</figcaption>",
            metric.name(),
            span(step)
        );
        b.push_str(&line_chart(&Chart {
            series: metric.name(),
            id: &id,
            title: format!(
                "{label}: {} per window around warning {}",
                metric.name(),
                r.id
            ),
            desc: format!(
                "{} on {label} from {} to {}; the warning's window starts {}",
                metric.name(),
                when(Timestamp(from)),
                when(Timestamp(to)),
                when(r.window_start)
            ),
            from,
            to,
            step,
            points: &pts,
            markers: &markers,
        }));
        b.push_str("</figure>");
    }
    b.push_str("</section>");
    // Top sources.
    b.push_str("<section id=\"top-sources\"><h2>Top sources</h2>");
    match v.get("top_sources").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            b.push_str("<table class=\"data\"><thead><tr><th>source</th><th class=\"n\">events</th></tr></thead><tbody>");
            for s in list {
                let ip = jstr(s, "ip");
                let _ = write!(
                    b,
                    "<tr><td><a href=\"/sources/{}\">{}</a></td><td class=\"n\">{}</td></tr>",
                    url_part(ip),
                    esc(ip),
                    num(jnum(s, "events") as u64)
                );
            }
            b.push_str("</tbody></table>");
        }
        _ => b.push_str("<p>None stored.</p>"),
    }
    b.push_str("</section>");
    render_context(&mut b, v);
    // Raw numbers and JSON.
    let mut fields = Vec::new();
    numeric_fields("", v, &mut fields);
    b.push_str("<section id=\"raw\"><h2>Raw numbers</h2><table id=\"raw-numbers\" class=\"data\"><thead><tr><th>field</th><th class=\"n\">value</th></tr></thead><tbody>");
    for (k, n) in &fields {
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{k}</th><td class=\"n\" data-field=\"{k}\">{n}</td></tr>",
            k = esc(k),
            n = esc(n)
        );
    }
    b.push_str("</tbody></table>");
    let pretty = serde_json::to_string_pretty(v).unwrap_or_else(|_| r.json.clone());
    let _ = write!(
        b,
        "<details id=\"raw-json\"><summary>raw JSON</summary><pre>{}</pre></details>",
        esc(&pretty)
    );
    let _ = write!(
        b,
        "<p id=\"api-links\">Machine-readable (API token required): <a href=\"/api/v1/alerts/{id}\">JSON</a> · \
         <a href=\"/api/v1/alerts/{id}/stix\">STIX 2.1</a> · <a href=\"/api/v1/alerts/{id}/misp\">MISP</a></p></section>",
        id = r.id
    );
    b
}

/// Explanations, mitigations and exposed assets of a warning.
fn render_context(b: &mut String, v: &Value) {
    let empty = Vec::new();
    let arr = |k: &str| v.get(k).and_then(Value::as_array).unwrap_or(&empty);
    b.push_str("<section id=\"explanations\"><h2>Candidate explanations</h2>");
    let adv = arr("advisories");
    if adv.is_empty() {
        b.push_str("<p>No imported advisory matches this port.</p>");
    } else {
        b.push_str("<ol class=\"advisories\">");
        for a in adv {
            let _ = write!(
                b,
                "<li class=\"advisory\"><p><strong>{}</strong> {} <span class=\"note\">score {}{}{}</span></p><p class=\"note\">{} match: {}</p><ul>",
                esc(jstr(a, "id")),
                esc(jstr(a, "title")),
                float(jnum(a, "score"), 2),
                a.get("cvss")
                    .and_then(Value::as_f64)
                    .map_or(String::new(), |c| format!(", CVSS {}", float(c, 1))),
                a.get("published")
                    .and_then(Value::as_str)
                    .map_or(String::new(), |p| format!(", published {}", esc(p))),
                esc(jstr(a, "match_strength")),
                esc(jstr(a, "match_reason")),
            );
            for r in a
                .get("reasons")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let _ = write!(b, "<li>{}</li>", esc(r.as_str().unwrap_or("")));
            }
            b.push_str("</ul>");
            let ex = a
                .get("exploits")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if ex > 0 {
                let dated: Vec<String> = a
                    .get("exploit_dates")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| format!("{} {}", jstr(e, "published"), jstr(e, "id")))
                    .collect();
                let _ = write!(
                    b,
                    "<p class=\"note\" data-field=\"exploits\">{ex} public exploit(s){}{}</p>",
                    if dated.is_empty() { "" } else { ": " },
                    esc(&dated.join(", "))
                );
            }
            // What the imported data says of a fix and of the vendor's patch days
            // (docs/context.md).
            if let Some(f) = a
                .get("fix")
                .and_then(|f| f.get("statement"))
                .and_then(Value::as_str)
            {
                let _ = write!(b, "<p data-field=\"fix\">Fix: {}</p>", esc(f));
            }
            if let Some(p) = a.get("next_patch_day").filter(|p| p.is_object()) {
                let _ = write!(
                    b,
                    "<p data-field=\"patch-day\">Next scheduled {}: {} ({} days after the surge began)</p>",
                    esc(jstr(p, "name")),
                    esc(jstr(p, "date")),
                    jnum(p, "days_after_surge")
                );
            }
            for w in a
                .get("fix")
                .and_then(|f| f.get("workarounds"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .take(3)
            {
                let _ = write!(
                    b,
                    "<p data-field=\"workaround\">Workaround: {}</p>",
                    esc(w.as_str().unwrap_or(""))
                );
            }
            b.push_str("</li>");
        }
        b.push_str("</ol>");
    }
    b.push_str("</section>");
    b.push_str("<section id=\"mitigations\"><h2>Mitigations</h2>");
    let mit = arr("mitigations");
    if mit.is_empty() {
        b.push_str("<p>No block rules for this warning.</p>");
    }
    for (i, m) in mit.iter().enumerate() {
        let platform = jstr(m, "platform");
        let _ = write!(
            b,
            "<div class=\"mitigation\" data-platform=\"{p}\"><h3>{p}</h3>\
             <button type=\"button\" class=\"copy\" data-copy=\"mitigation-{i}\">copy</button>\
             <pre id=\"mitigation-{i}\">{}</pre></div>",
            esc(jstr(m, "rule")),
            p = esc(platform),
        );
    }
    b.push_str("</section>");
    b.push_str("<section id=\"exposed\"><h2>Exposed assets</h2>");
    let ex = arr("exposed_assets");
    if ex.is_empty() {
        b.push_str("<p>No imported asset is exposed on this port.</p>");
    } else {
        b.push_str(
            "<table id=\"exposed-assets\" class=\"data\"><thead><tr><th class=\"n\">#</th><th>host</th><th>address</th>\
             <th>zone</th><th class=\"n\">score</th><th>why</th></tr></thead><tbody>",
        );
        for e in ex {
            let reasons: Vec<&str> = e
                .get("reasons")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let _ = write!(
                b,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                jnum(e, "priority") as u64,
                esc(jstr(e, "host")),
                esc(jstr(e, "address")),
                esc(jstr(e, "zone")),
                jnum(e, "score") as u64,
                esc(&reasons.join("; ")),
            );
        }
        b.push_str("</tbody></table>");
        let _ = write!(
            b,
            "<p class=\"note\">{} exposed in all.</p>",
            jnum(v, "exposed_total") as u64
        );
    }
    b.push_str("</section>");
}

/// Every numeric field of a JSON object, with dotted paths (`baseline.sources`);
/// arrays are skipped (their numbers are shown in their own tables).
fn numeric_fields(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match x {
                Value::Number(n) => out.push((key, n.to_string())),
                Value::Object(_) => numeric_fields(&key, x, out),
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------- sensors

/// `GET /sensors`: every sensor with its counters and last heartbeat.
async fn sensors_page(user: WebUser, State(st): State<AppState>) -> Result<Response, PageError> {
    let sensors = st
        .with_reader(|s| scanwatch_store::trust::sensors_with_trust(&*s))
        .await?;
    let times = st.centre.sensor_times().map_err(crate::AppError::from)?;
    let tcfg = *st.centre.time_config();
    let clock = (st.clock)();
    let mut b = String::with_capacity(16 * 1024);
    b.push_str("<h1>Sensors</h1>");
    let _ = write!(
        b,
        "<p class=\"note\">Last seen and heartbeats are the server's clock when they arrived (now {}). \
         Counters other than batches and events come from the sensor's last heartbeat. \
         \"Complete through\" is how far its delivered data is complete; a live sensor holds \
         windows back until it gets there (docs/time.md). A trusted sensor's sightings and IDS alerts          count without corroboration (docs/security.md).</p>",
        time_el(clock)
    );
    b.push_str(
        "<table id=\"sensors\" class=\"data\"><thead><tr><th>name</th><th>state</th><th>last seen</th>\
         <th class=\"n\">batches</th><th class=\"n\">events</th><th class=\"n\">parse errors</th>\
         <th class=\"n\">spool backlog</th><th class=\"n\">drops</th><th class=\"n\">send failures</th><th>last heartbeat</th>\
         <th>complete through</th><th>trust</th>",
    );
    let admin = user.role == Role::Admin;
    if admin {
        b.push_str("<th>admin</th>");
    }
    b.push_str("</tr></thead><tbody>");
    for (s, level) in &sensors {
        let hb: Value = s
            .heartbeat
            .as_ref()
            .and_then(|h| serde_json::from_str(&h.1).ok())
            .unwrap_or(Value::Null);
        let opt = |k: &str| {
            hb.get(k)
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_string(), num)
        };
        let backlog = match (
            hb.get("spool_batches").and_then(Value::as_u64),
            hb.get("spool_bytes").and_then(Value::as_u64),
        ) {
            (Some(n), Some(by)) => format!("{} ({} bytes)", num(n), num(by)),
            (Some(n), None) => num(n),
            _ => "-".into(),
        };
        let drops = hb.get("capture").filter(|c| c.is_object()).map_or_else(
            || "-".to_string(),
            |c| num(jnum(c, "dropped_kernel") as u64 + jnum(c, "dropped_interface") as u64),
        );
        let state = if s.revoked {
            "revoked"
        } else if s.last_seen.is_some_and(|t| clock.0 - t.0 <= HOUR) {
            "active"
        } else if s.last_seen.is_some() {
            "quiet"
        } else {
            "never seen"
        };
        let _ = write!(
            b,
            "<tr data-sensor=\"{name}\" class=\"state-{state_cls}\"><td>{name}</td><td data-field=\"state\">{state}</td><td>{seen}</td>\
             <td class=\"n\" data-field=\"batches\">{}</td><td class=\"n\" data-field=\"events\">{}</td>\
             <td class=\"n\" data-field=\"parse_errors\">{}</td><td class=\"n\" data-field=\"spool_backlog\">{}</td>\
             <td class=\"n\" data-field=\"drops\">{}</td><td class=\"n\" data-field=\"send_failures\">{}</td><td>{}</td>",
            num(s.batches),
            num(s.events),
            opt("parse_errors"),
            esc(&backlog),
            drops,
            opt("send_failures"),
            s.heartbeat.as_ref().map_or_else(|| "-".into(), |h| time_el(h.0)),
            name = esc(&s.name),
            state_cls = state.replace(' ', "-"),
            seen = s.last_seen.map_or_else(|| "-".into(), time_el),
        );
        let t = times.get(&s.name).copied().unwrap_or_default();
        let progress = match (t.clock_ahead_ms, t.progress(&tcfg)) {
            (Some(ahead), _) => format!(
                "<span class=\"warn\">clock ahead by {}</span>",
                esc(&crate::human_ms(ahead))
            ),
            (None, Some(p)) => format!(
                "{} ({})",
                time_el(Timestamp(p)),
                if t.live(&tcfg, clock) { "live" } else { "idle" }
            ),
            (None, None) => "-".into(),
        };
        let _ = write!(b, "<td data-field=\"progress\">{progress}</td>");
        let _ = write!(
            b,
            "<td data-field=\"trust\" class=\"trust-{0}\">{0}</td>",
            level.name()
        );
        if admin {
            if s.revoked {
                b.push_str("<td></td>");
            } else {
                let _ = write!(
                    b,
                    "<td><form method=\"post\" action=\"/sensors/{}/revoke\" class=\"revoke\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <button type=\"submit\" data-confirm=\"revoke sensor {}? its token stops working at once\">revoke</button></form></td>",
                    url_part(&s.name),
                    esc(&user.csrf),
                    esc(&s.name),
                );
            }
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    if sensors.is_empty() {
        b.push_str(
            "<p>No sensors yet: add one with <code>scanwatch admin sensor add NAME</code>.</p>",
        );
    }
    Ok(page(layout("Sensors", &user, Nav::Sensors, &b)))
}

// ---------------------------------------------------------------- source

/// `GET /sources/{ip}`: what one address did, per port, and the warnings naming it.
async fn source_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let Path(ip) = path.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| PageError::BadRequest("not an IP address".into()))?;
    let (now, rows, alerts) = st
        .with_reader(move |s| {
            let now = newest_window(s)?;
            let rows = s.source_activity(addr, Timestamp(i64::MIN), Timestamp(i64::MAX))?;
            let needle = format!("\"ip\":\"{addr}\"");
            let alerts: Vec<AlertRow> = s
                .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)?
                .into_iter()
                .filter(|a| a.json.contains(&needle))
                .collect();
            Ok((now, rows, alerts))
        })
        .await?;
    let mut b = String::with_capacity(16 * 1024);
    let _ = write!(
        b,
        "<h1>Source <span id=\"source-ip\">{}</span></h1>",
        esc(&addr.to_string())
    );
    b.push_str(&now_note(now.map(|n| n.1)));
    let total: u64 = rows.iter().map(|r| r.events).sum();
    let _ = write!(
        b,
        "<p><span data-field=\"events\">{}</span> unsolicited events on <span data-field=\"ports\">{}</span> ports \
         in the stored raw events (kept for the events retention, 30 days by default).</p>",
        num(total),
        rows.len()
    );
    if !rows.is_empty() {
        b.push_str(
            "<table id=\"source-ports\" class=\"data\"><thead><tr><th>port</th><th>service</th><th class=\"n\">events</th>\
             <th class=\"n\">sensors</th><th class=\"n\">targets</th><th>first seen</th><th>last seen</th></tr></thead><tbody>",
        );
        for r in rows.iter().take(500) {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"n\" data-field=\"events\">{}</td><td class=\"n\" data-field=\"sensors\">{}</td>\
                 <td class=\"n\" data-field=\"targets\">{}</td><td>{}</td><td>{}</td></tr>",
                port_link(r.proto, r.port),
                esc(&service_name(&st, r.proto, r.port)),
                num(r.events),
                num(r.sensors),
                num(r.targets),
                time_el(r.first_seen),
                time_el(r.last_seen),
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("<section id=\"source-warnings\"><h2>Warnings naming it as a top source</h2>");
    if alerts.is_empty() {
        b.push_str("<p>None.</p>");
    } else {
        b.push_str("<ul>");
        for a in alerts.iter().take(100) {
            let v = parse_json(a);
            let _ = write!(
                b,
                "<li>{} {} <a href=\"/alerts/{}\">{}</a> {}</li>",
                badge(a.severity_rank),
                port_link(a.proto, a.port),
                a.id,
                esc(jstr(&v, "headline")),
                time_el(a.window_start)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
    Ok(page(layout(
        &format!("Source {addr}"),
        &user,
        Nav::None,
        &b,
    )))
}

// ---------------------------------------------------------------- search

/// `GET /search?q=`: a port (`445`, `tcp/445`, `udp/53`, `53/udp`) or an IP address.
async fn search(
    _user: WebUser,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = params(q)?;
    let text = q.get("q").map(|s| s.trim()).unwrap_or("");
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(
            Redirect::to(&format!("/sources/{}", url_part(&ip.to_string()))).into_response(),
        );
    }
    let lower = text.to_ascii_lowercase();
    let (proto, port) = match lower.split_once('/') {
        Some((a, b)) if a == "tcp" || a == "udp" => (a.to_string(), b.to_string()),
        Some((a, b)) if b == "tcp" || b == "udp" => (b.to_string(), a.to_string()),
        Some(_) => (String::new(), String::new()),
        None => ("tcp".to_string(), lower.clone()),
    };
    match port.parse::<u16>() {
        Ok(p) if !proto.is_empty() => {
            Ok(Redirect::to(&format!("/ports/{proto}/{p}")).into_response())
        }
        _ => Err(PageError::BadRequest(format!(
            "{text:?} is neither a port (445, tcp/445, udp/53) nor an IP address"
        ))),
    }
}
