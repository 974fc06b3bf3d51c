//! The read API for analysts and scripts: warnings, sensors and one port's history,
//! with the same JSON field names as `analyze --json`. Every endpoint needs an API
//! token (`scanwatch admin token add`) as `Authorization: Bearer`; sensor tokens are
//! not accepted here.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use scanwatch_alert::{StoredWarning, Warning};
use scanwatch_event::{parse_rfc3339, Protocol, Timestamp};
use scanwatch_store::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::openapi::{ErrorBody, ReadErrors};
use crate::{bearer, AppError, AppState};

/// Checks the API token; returns its name and role.
pub(crate) async fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    need: Role,
) -> Result<(String, Role), AppError> {
    let token = bearer(headers)
        .ok_or(AppError::UnauthorizedApi)?
        .to_string();
    let who = st
        .with_reader(move |s| s.authenticate_api(&token))
        .await?
        .ok_or(AppError::UnauthorizedApi)?;
    if who.1 < need {
        return Err(AppError::Forbidden(format!(
            "this needs the {} role",
            need.name()
        )));
    }
    Ok(who)
}

/// A path that does not decode (not UTF-8) is a bad request with the usual JSON body,
/// not axum's plain-text rejection.
pub(crate) fn path_error(e: PathRejection) -> AppError {
    AppError::BadRequest(format!("bad path: {}", e.body_text()))
}

/// A query string that does not parse (unknown or repeated parameter, not UTF-8):
/// axum's message, lowercase like every other.
pub(crate) fn query_error(e: axum::extract::rejection::QueryRejection) -> AppError {
    let text = e.body_text();
    let mut c = text.chars();
    AppError::BadRequest(match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => text,
    })
}

fn time_param(name: &str, v: &Option<String>, default: i64) -> Result<Timestamp, AppError> {
    match v {
        None => Ok(Timestamp(default)),
        Some(s) => parse_rfc3339(s).ok_or_else(|| {
            AppError::BadRequest(format!(
                "{name} must be an RFC 3339 time such as 2026-11-26T10:00:00Z"
            ))
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Warnings whose window starts at or after this time (RFC 3339).
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    from: Option<String>,
    /// Warnings whose window starts before this time (RFC 3339).
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    to: Option<String>,
    /// The least severity to list.
    #[param(value_type = Option<scanwatch_detect::Severity>)]
    min_severity: Option<String>,
}

fn with_id(id: i64, json: &str) -> Result<StoredWarning, AppError> {
    let warning = Warning::from_stored(id, json).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(StoredWarning { id, warning })
}

/// `GET /api/v1/alerts?from=&to=&min_severity=`: most severe first, then newest.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "read", params(AlertsQuery),
    security(("api_token" = [])),
    responses((status = 200, description = "Stored warnings, most severe first, then newest", body = [StoredWarning]), ReadErrors))]
pub async fn alerts(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<StoredWarning>>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let Query(q) = q.map_err(query_error)?;
    let from = time_param("from", &q.from, i64::MIN)?;
    let to = time_param("to", &q.to, i64::MAX)?;
    let min = match q.min_severity.as_deref() {
        None => 0,
        Some(s) => scanwatch_detect::Severity::parse(s).ok_or_else(|| {
            AppError::BadRequest("min_severity must be info, low, medium, high or critical".into())
        })? as u8,
    };
    let rows = st.with_reader(move |s| s.alerts(from, to, min)).await?;
    rows.iter()
        .map(|r| with_id(r.id, &r.json))
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
}

/// `GET /api/v1/alerts/{id}`.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "read",
    params(("id" = i64, Path, description = "The warning's id")),
    security(("api_token" = [])),
    responses((status = 200, description = "One stored warning", body = StoredWarning),
        (status = 404, description = "No warning with this id", body = ErrorBody), ReadErrors))]
pub async fn alert(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StoredWarning>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let Path(id) = id.map_err(path_error)?;
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest("alert id must be a number".into()))?;
    let row = st
        .with_reader(move |s| s.alert(id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no alert {id}")))?;
    with_id(row.id, &row.json).map(Json)
}

/// One registered sensor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SensorJson {
    name: String,
    /// `active` or `revoked`.
    #[schema(value_type = String, example = "active")]
    state: &'static str,
    /// When it was added (RFC 3339).
    created: String,
    /// When its last batch arrived (RFC 3339).
    last_seen: Option<String>,
    batches: u64,
    events: u64,
    /// When the last heartbeat arrived, and what the sensor reported in it.
    last_heartbeat: Option<String>,
    #[schema(value_type = Option<Object>)]
    heartbeat: Option<Value>,
    /// How far the sensor's delivered data is complete (RFC 3339; docs/time.md).
    progress: Option<String>,
    /// Whether it holds windows back: `live`, or `idle` (no batch or heartbeat for
    /// the idle time), or `silent` (never delivered).
    #[schema(value_type = String, example = "live")]
    time_state: &'static str,
    /// Set when its last batch was refused for events ahead of the centre's clock:
    /// by how much, e.g. "clock ahead by 1d 0h".
    clock: Option<String>,
    /// `normal` or `trusted` (`scanwatch admin sensor set-trust`; docs/security.md).
    #[schema(value_type = String, example = "normal")]
    trust: &'static str,
}

/// `GET /api/v1/sensors`.
#[utoipa::path(get, path = "/api/v1/sensors", tag = "read",
    security(("api_token" = [])),
    responses((status = 200, description = "Every sensor with its state and counts", body = [SensorJson]), ReadErrors))]
pub async fn sensors(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<SensorJson>>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let rows = st
        .with_reader(move |s| scanwatch_store::trust::sensors_with_trust(&*s))
        .await?;
    let centre = st.centre.clone();
    let times = crate::blocking(move || centre.sensor_times().map_err(AppError::from)).await?;
    let tcfg = *st.centre.time_config();
    let now = (st.clock)();
    Ok(Json(
        rows.into_iter()
            .map(|(s, trust)| {
                let t = times.get(&s.name).copied().unwrap_or_default();
                (s, trust, t)
            })
            .map(|(s, trust, t)| SensorJson {
                progress: t.progress(&tcfg).map(|p| Timestamp(p).to_rfc3339()),
                time_state: if t.last_contact.is_none() {
                    "silent"
                } else if t.live(&tcfg, now) {
                    "live"
                } else {
                    "idle"
                },
                clock: t
                    .clock_ahead_ms
                    .map(|ms| format!("clock ahead by {}", crate::human_ms(ms))),
                trust: trust.name(),
                name: s.name,
                state: if s.revoked { "revoked" } else { "active" },
                created: s.created.to_rfc3339(),
                last_seen: s.last_seen.map(Timestamp::to_rfc3339),
                batches: s.batches,
                events: s.events,
                last_heartbeat: s.heartbeat.as_ref().map(|h| h.0.to_rfc3339()),
                heartbeat: s
                    .heartbeat
                    .as_ref()
                    .and_then(|h| serde_json::from_str(&h.1).ok()),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Start of the range (RFC 3339), inclusive.
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    from: Option<String>,
    /// End of the range (RFC 3339), exclusive.
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    to: Option<String>,
}

/// `GET /api/v1/ports/{tcp|udp}/{port}/history?from=&to=`: one `window` object per
/// window the port was seen in, oldest first.
#[utoipa::path(get, path = "/api/v1/ports/{proto}/{port}/history", tag = "read",
    params(
        ("proto" = crate::openapi::ProtoParam, Path, description = "The protocol"),
        ("port" = u16, Path, description = "The port", minimum = 0, maximum = 65535),
        RangeQuery
    ),
    security(("api_token" = [])),
    responses((status = 200, description = "The port's windows, oldest first", body = [PortWindow]), ReadErrors))]
pub async fn port_history(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<PortWindow>>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let Path((proto, port)) = path.map_err(path_error)?;
    let Query(q) = q.map_err(query_error)?;
    let proto = match proto.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(AppError::BadRequest("protocol must be tcp or udp".into())),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| AppError::BadRequest("port must be 0-65535".into()))?;
    let from = time_param("from", &q.from, i64::MIN)?;
    let to = time_param("to", &q.to, i64::MAX)?;
    let rows = st
        .with_reader(move |s| s.port_history(proto.number(), port, from, to))
        .await?;
    rows.into_iter()
        .map(|r| {
            let top_sources = serde_json::from_str(&r.top_sources_json)
                .map_err(|e| AppError::internal(e.to_string()))?;
            Ok(PortWindow {
                kind: "window",
                protocol: proto.name().into_owned(),
                port: r.port,
                window_start: r.window_start.to_rfc3339(),
                window_end: r.window_end.to_rfc3339(),
                events: r.events,
                sources: r.sources,
                sensors: r.sensors,
                targets: r.targets,
                top_sources,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()
        .map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// What to rank by (default `events`).
    #[param(value_type = Option<crate::openapi::TopByParam>)]
    by: Option<String>,
    /// How many ports (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Start of the range (RFC 3339), inclusive.
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    from: Option<String>,
    /// End of the range (RFC 3339), exclusive.
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    to: Option<String>,
}

fn proto_name(n: u8) -> String {
    Protocol::from_number(n).name().into_owned()
}

/// `GET /api/v1/topports?by=events|sources|sensors&limit=N&from=&to=`, like the
/// Internet Storm Center's top ports; distinct counts are exact over the range.
#[utoipa::path(get, path = "/api/v1/topports", tag = "read", params(TopQuery),
    security(("api_token" = [])),
    responses((status = 200, description = "The busiest ports, busiest first", body = [TopPort]), ReadErrors))]
pub async fn topports(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<TopQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<TopPort>>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let Query(q) = q.map_err(query_error)?;
    let by = match q.by.as_deref().unwrap_or("events") {
        "events" => scanwatch_store::TopBy::Events,
        "sources" => scanwatch_store::TopBy::Sources,
        "sensors" => scanwatch_store::TopBy::Sensors,
        _ => {
            return Err(AppError::BadRequest(
                "by must be events, sources or sensors".into(),
            ))
        }
    };
    let limit: usize = match &q.limit {
        None => 10,
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| AppError::BadRequest("limit must be 1-1000".into()))?,
    };
    let from = time_param("from", &q.from, i64::MIN)?;
    let to = time_param("to", &q.to, i64::MAX)?;
    let rows = st
        .with_reader(move |s| s.top_ports(from, to, by, limit))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                let proto = Protocol::from_number(r.proto);
                TopPort {
                    protocol: proto_name(r.proto),
                    port: r.port,
                    service: scanwatch_context::service_name(proto, r.port).to_string(),
                    events: r.events,
                    sources: r.sources,
                    sensors: r.sensors,
                    targets: r.targets,
                }
            })
            .collect(),
    ))
}

/// `GET /api/v1/sources/{ip}?from=&to=`: what one source did, per port.
#[utoipa::path(get, path = "/api/v1/sources/{ip}", tag = "read",
    params(("ip" = crate::openapi::IpAddress, Path, description = "IPv4 or IPv6 address", example = "192.0.2.1"), RangeQuery),
    security(("api_token" = [])),
    responses((status = 200, description = "The source's events per port", body = SourceActivity), ReadErrors))]
pub async fn source(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: Result<Path<String>, PathRejection>,
    q: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SourceActivity>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let Path(ip) = ip.map_err(path_error)?;
    let Query(q) = q.map_err(query_error)?;
    let addr: std::net::IpAddr = ip
        .parse()
        .map_err(|_| AppError::BadRequest("not an IP address".into()))?;
    let from = time_param("from", &q.from, i64::MIN)?;
    let to = time_param("to", &q.to, i64::MAX)?;
    let rows = st
        .with_reader(move |s| s.source_activity(addr, from, to))
        .await?;
    let ports = rows
        .iter()
        .map(|r| SourcePort {
            protocol: proto_name(r.proto),
            port: r.port,
            events: r.events,
            sensors: r.sensors,
            targets: r.targets,
            first_seen: r.first_seen.to_rfc3339(),
            last_seen: r.last_seen.to_rfc3339(),
        })
        .collect();
    Ok(Json(SourceActivity {
        ip: addr,
        events: rows.iter().map(|r| r.events).sum::<u64>(),
        ports,
    }))
}

/// One closed window of one port: the `"type":"window"` object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortWindow {
    /// Always `window`.
    #[serde(rename = "type")]
    #[schema(example = "window")]
    pub kind: &'static str,
    pub protocol: String,
    pub port: u16,
    #[schema(format = DateTime)]
    pub window_start: String,
    #[schema(format = DateTime)]
    pub window_end: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    pub top_sources: Vec<scanwatch_alert::SourceJson>,
}

/// One row of the top ports: exact distinct counts over the range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopPort {
    pub protocol: String,
    pub port: u16,
    /// The service name, `-` when unknown.
    pub service: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
}

/// What one source did on one port.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourcePort {
    pub protocol: String,
    pub port: u16,
    pub events: u64,
    pub sensors: u64,
    pub targets: u64,
    #[schema(format = DateTime)]
    pub first_seen: String,
    #[schema(format = DateTime)]
    pub last_seen: String,
}

/// What one source did, per port.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceActivity {
    #[schema(value_type = crate::openapi::IpAddress)]
    pub ip: std::net::IpAddr,
    pub events: u64,
    pub ports: Vec<SourcePort>,
}
