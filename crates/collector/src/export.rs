//! Machine-readable exports of one warning: a STIX 2.1 bundle and a MISP event.
//! (Skeleton: being filled in.)

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use crate::{AppError, AppState};

/// `GET /api/v1/alerts/{id}/stix`: a STIX 2.1 bundle for one warning.
pub async fn alert_stix(
    State(_st): State<AppState>,
    _headers: HeaderMap,
    Path(_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Err(AppError::NotFound("not built yet".into()))
}

/// `GET /api/v1/alerts/{id}/misp`: a MISP event for one warning.
pub async fn alert_misp(
    State(_st): State<AppState>,
    _headers: HeaderMap,
    Path(_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Err(AppError::NotFound("not built yet".into()))
}
