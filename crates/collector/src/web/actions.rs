//! Admin actions of the dashboard: forms that change state, each behind the admin
//! role and the session's CSRF token, answering with a redirect (303) back to the
//! page they were sent from.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use scanwatch_store::{valid_sensor_name, StoreError};
use serde::Deserialize;

use super::auth::{error_page, verify_csrf, WebUser};
use crate::AppState;

/// A form that carries only the CSRF token.
#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /sensors/{name}/revoke` (admin): the sensor's token is refused from now
/// on; its data stays.
async fn revoke_sensor(
    user: WebUser,
    State(st): State<AppState>,
    Path(name): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Err(r) = user.require_admin() {
        return r;
    }
    let token = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(r) = verify_csrf(&user, &token) {
        return r;
    }
    if !valid_sensor_name(&name) {
        return error_page(StatusCode::NOT_FOUND, "not found", "no such sensor");
    }
    let n = name.clone();
    let found = st
        .with_store(move |s| match s.revoke_sensor(&n) {
            Ok(()) => Ok(true),
            Err(StoreError::NoSuchSensor(_)) => Ok(false),
            Err(e) => Err(e),
        })
        .await;
    match found {
        Ok(true) => {
            tracing::info!(user = %user.name, sensor = %name, "dashboard: {} revoked sensor {name:?}", user.name);
            Redirect::to("/sensors").into_response()
        }
        Ok(false) => error_page(StatusCode::NOT_FOUND, "not found", "no such sensor"),
        Err(e) => e.into_response(),
    }
}

/// The admin actions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sensors/{name}/revoke", post(revoke_sensor))
        .layer(axum::extract::DefaultBodyLimit::max(16 << 10))
}
