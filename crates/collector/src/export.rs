//! Machine-readable exports of one warning: a STIX 2.1 bundle and a MISP event.
//! Both are built from the warning as stored (typed), like `GET /api/v1/alerts/{id}`,
//! with its incident's follow-on surges (`follows`, `followed_by`), and need an API
//! token with the analyst role.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scanwatch_alert::Warning;
use scanwatch_store::Role;
use serde_json::Value;

use crate::api::authorize;
use crate::{AppError, AppState};

/// The media type of STIX 2.1 content.
pub const STIX_CONTENT_TYPE: &str = "application/stix+json;version=2.1";

/// Checks the token and the id, and reads the stored warning `id`.
async fn stored_alert(
    st: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<(i64, Warning), AppError> {
    authorize(st, headers, Role::Analyst).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest("alert id must be a number".into()))?;
    let (row, links) = st
        .with_reader(move |s| crate::incidents::FollowOns::with_alert(s, id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no alert {id}")))?;
    let mut v =
        Warning::from_stored(row.id, &row.json).map_err(|e| AppError::internal(e.to_string()))?;
    links.add_to(&mut v);
    Ok((row.id, v))
}

/// `GET /api/v1/alerts/{id}/stix`: a STIX 2.1 bundle for one warning, as
/// `application/stix+json;version=2.1`.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/stix", tag = "feeds", params(("id" = i64, Path, description = "The warning's id")), security(("api_token" = [])), responses((status = 200, description = "A STIX 2.1 bundle", body = Object, content_type = "application/stix+json;version=2.1"), (status = 404, description = "No warning with this id", body = crate::openapi::ErrorBody), crate::openapi::ReadErrors))]
pub async fn alert_stix(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let Path(id) = id.map_err(crate::api::path_error)?;
    let (id, v) = stored_alert(&st, &headers, &id).await?;
    let bundle = scanwatch_alert::stix::stix_bundle(id, &v);
    Ok((
        [(header::CONTENT_TYPE, STIX_CONTENT_TYPE)],
        bundle.to_string(),
    )
        .into_response())
}

/// `GET /api/v1/alerts/{id}/misp`: a MISP event for one warning.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/misp", tag = "feeds", params(("id" = i64, Path, description = "The warning's id")), security(("api_token" = [])), responses((status = 200, description = "A MISP event", body = Object), (status = 404, description = "No warning with this id", body = crate::openapi::ErrorBody), crate::openapi::ReadErrors))]
pub async fn alert_misp(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(id) = id.map_err(crate::api::path_error)?;
    let (id, v) = stored_alert(&st, &headers, &id).await?;
    Ok(Json(scanwatch_alert::misp::misp_event(id, &v)))
}
