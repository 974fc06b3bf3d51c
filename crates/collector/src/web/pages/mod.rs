//! The dashboard pages: overview, incidents, port, warnings, warning, sensors and source, all
//! server-rendered HTML with inline SVG charts, plus the stylesheet and the small
//! script (copy buttons) embedded in the binary.
//!
//! Every page reads the store once (one `with_reader` call, on a read connection) and aggregates in
//! memory. "Now" is event time: the end of the newest stored window, so a replayed
//! log shows its own time.

pub mod html;
pub mod series;
pub mod svg;

mod alert;
mod alerts;
mod incidents;
mod overview;
mod port;
mod search;
mod sensors;
mod source;

use alert::{alert_export, alert_page};
use alerts::alerts_page;
use incidents::{incident_page, incidents_page};
use overview::overview;
use port::port_page;
use search::search;
use sensors::sensors_page;
use source::source_page;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use scanwatch_alert::Warning;
use scanwatch_detect::{AlertKind, Severity};
use scanwatch_event::{Protocol, Timestamp};
use scanwatch_store::{AlertRow, Role, SensorRecord, Store, StoreError, WindowRow};
use serde_json::Value;

use crate::web::auth::WebUser;
use crate::AppState;
use html::{
    badge, esc, float, headline_after_port, layout, layout_with, num, page, severity_name, span,
    time_el, url_part, when, window_el, Nav, PageError, SEVERITIES,
};
use series::{points, rebucket, top_sources, Metric};
use svg::{legend, line_chart, sparkline, Chart, Marker};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// The pages: overview, port, warning, sensors, source; and the static files.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/ports/{proto}/{port}", get(port_page))
        .route("/alerts", get(alerts_page))
        .route("/incidents", get(incidents_page))
        .route("/incidents/{id}", get(incident_page))
        .route("/alerts/{id}", get(alert_page))
        .route("/alerts/{id}/export/{format}", get(alert_export))
        .route("/sensors", get(sensors_page))
        .route("/sources/{ip}", get(source_page))
        .route("/search", get(search))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
}

const CSS: &str = include_str!("../../../assets/app.css");
const JS: &str = include_str!("../../../assets/app.js");

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
pub fn newest_window(
    s: &dyn scanwatch_store::WindowStore,
) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
    s.latest_window()
}

/// The number in a page's `{id}` path segment; `what` names it in the error.
fn path_id(path: Result<Path<String>, PathRejection>, what: &str) -> Result<i64, PageError> {
    let Path(id) = path.map_err(|e| PageError::BadRequest(e.body_text()))?;
    id.parse()
        .map_err(|_| PageError::BadRequest(format!("{what} id must be a number")))
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

/// A stored warning for display. An unreadable record (one written behind the
/// centre's back) shows as a stand-in from the row's own columns whose headline
/// says so, so a page of many warnings still renders.
fn warning_of(row: &AlertRow) -> Warning {
    crate::read_warning(row).unwrap_or_else(|| Warning {
        alert_kind: if row.kind.starts_with("sweep") {
            AlertKind::Sweep
        } else if row.kind.starts_with("trend") {
            AlertKind::Trend
        } else {
            AlertKind::Surge
        },
        protocol: proto_label(row.proto).to_ascii_lowercase(),
        port: row.port,
        window_start: row.window_start,
        window_end: Timestamp(row.window_start.0 + HOUR),
        episode_start: row.window_start,
        severity: Severity::ALL
            .get(usize::from(row.severity_rank))
            .copied()
            .unwrap_or(Severity::Info),
        headline: format!("warning {}: its stored record is not readable", row.id),
        ..Warning::default()
    })
}

/// What a port means for security, from its curated note: the note's first clause
/// ("first dynamic port for MS-RPC on Windows 2000/2003/XP"), shown before the
/// service name; `None` without a note.
fn meaning(note: &str) -> Option<&str> {
    let first = note.split(';').next().unwrap_or("").trim();
    (!first.is_empty()).then_some(first)
}

/// The y scales of the charts (`?scale=`).
const SCALES: [(&str, i64); 2] = [("linear", 0), ("log", 1)];

fn marker_of(row: &AlertRow, v: &Warning, current: bool) -> Marker {
    Marker {
        id: row.id,
        from: row.window_start.0,
        to: v.window_end.0.max(row.window_start.0 + 1),
        severity: severity_name(row.severity_rank),
        label: format!(
            "{} warning {}: {}",
            severity_name(row.severity_rank),
            row.id,
            v.headline
        ),
        current,
    }
}

/// A query parameter that must be one of named `options` (`default` when absent).
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
