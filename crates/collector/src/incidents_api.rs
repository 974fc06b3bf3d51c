//! The incidents API: `GET /api/v1/incidents`, `GET /api/v1/incidents/{id}` and
//! `POST /api/v1/incidents/{id}/state` (analyst role). Incidents are derived from
//! the stored warnings (`incidents`); only the analyst's state is written.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use scanwatch_event::Timestamp;
use scanwatch_store::Role;
use serde::Deserialize;

use crate::api::{authorize, path_error, query_error};
use crate::incidents::{containing, load, Disposition, Incident, StateChange};
use crate::openapi::{ErrorBody, ReadErrors};
use crate::{AppError, AppState};

/// Query of `GET /api/v1/incidents`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentsQuery {
    /// Incidents with a warning window starting at or after this time (RFC 3339).
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    from: Option<String>,
    /// Incidents with a warning window starting before this time (RFC 3339).
    #[param(format = DateTime, example = "2026-11-26T10:00:00Z")]
    to: Option<String>,
    /// Only incidents in this analyst state.
    #[param(value_type = Option<Disposition>)]
    state: Option<String>,
    /// Only incidents whose peak is at least this severe.
    #[param(value_type = Option<scanwatch_detect::Severity>)]
    min_severity: Option<String>,
    /// Only incidents on this port.
    port: Option<u16>,
}

fn time(name: &str, v: &Option<String>, default: i64) -> Result<Timestamp, AppError> {
    match v {
        None => Ok(Timestamp(default)),
        Some(s) => scanwatch_event::parse_rfc3339(s)
            .ok_or_else(|| AppError::BadRequest(format!("{name} must be an RFC 3339 time"))),
    }
}

/// `GET /api/v1/incidents?from=&to=&state=&min_severity=&port=`: newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "read", params(IncidentsQuery),
    security(("api_token" = [])),
    responses((status = 200, description = "Incidents (a surge's warnings together), newest start first", body = [Incident]), ReadErrors))]
pub async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Result<Json<Vec<Incident>>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let Query(q) = q.map_err(query_error)?;
    let from = time("from", &q.from, i64::MIN)?;
    let to = time("to", &q.to, i64::MAX)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(Disposition::parse(s).ok_or_else(|| {
            AppError::BadRequest(
                "state must be new, acknowledged, assigned, resolved or false_positive".into(),
            )
        })?),
    };
    let min = match q.min_severity.as_deref() {
        None => None,
        Some(s) => Some(scanwatch_detect::Severity::parse(s).ok_or_else(|| {
            AppError::BadRequest("min_severity must be info, low, medium, high or critical".into())
        })?),
    };
    let all = st.with_reader(move |s| load(s, from, to)).await?;
    Ok(Json(
        all.into_iter()
            .filter(|i| state.is_none_or(|d| i.state.state == d))
            .filter(|i| q.port.is_none_or(|p| i.port == p))
            .filter(|i| {
                min.is_none_or(|m| {
                    scanwatch_detect::Severity::parse(&i.peak_severity).is_some_and(|s| s >= m)
                })
            })
            .collect(),
    ))
}

fn id_param(id: Result<Path<String>, PathRejection>) -> Result<i64, AppError> {
    let Path(id) = id.map_err(path_error)?;
    id.parse()
        .map_err(|_| AppError::BadRequest("incident id must be a number".into()))
}

/// `GET /api/v1/incidents/{id}`: the incident holding warning `id`.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "read",
    params(("id" = i64, Path, description = "The incident's id, or the id of any of its warnings")),
    security(("api_token" = [])),
    responses((status = 200, description = "One incident", body = Incident),
        (status = 404, description = "No warning with this id", body = ErrorBody), ReadErrors))]
pub async fn show(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Incident>, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let id = id_param(id)?;
    st.with_reader(move |s| containing(s, id))
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no incident with warning {id}")))
}

/// `POST /api/v1/incidents/{id}/state`: sets the analyst's state of the incident
/// holding warning `id` (`{"state": "assigned", "assignee": "carol", "note": "…"}`);
/// returns the incident as it stands.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/state", tag = "read",
    params(("id" = i64, Path, description = "The incident's id, or the id of any of its warnings")),
    request_body = StateChange,
    security(("api_token" = [])),
    responses((status = 200, description = "The incident with its new state", body = Incident),
        (status = 404, description = "No warning with this id", body = ErrorBody), ReadErrors))]
pub async fn set_state(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<StateChange>, JsonRejection>,
) -> Result<Json<Incident>, AppError> {
    let (who, _) = authorize(&st, &headers, Role::Analyst).await?;
    let id = id_param(id)?;
    let Json(change) = body
        .map_err(|e| AppError::BadRequest(format!("bad body: {}", e.body_text().to_lowercase())))?;
    let state = change
        .check(&who, (st.clock)())
        .map_err(AppError::BadRequest)?;
    let now = (st.clock)();
    let found = set(&st, id, state, now).await?;
    found
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no incident with warning {id}")))
}

/// Stores `state` for the incident holding warning `id`; the incident as it
/// stands after, or `None` when there is no such warning.
async fn set(
    st: &AppState,
    id: i64,
    state: crate::incidents::IncidentState,
    now: Timestamp,
) -> Result<Option<Incident>, AppError> {
    st.with_store(move |s| crate::incidents::set_state(s, id, &state, now))
        .await
}
