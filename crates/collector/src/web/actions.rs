//! Actions of the dashboard: forms that change state, each behind the session's
//! CSRF token (and the admin role where they manage the network), answering with
//! a redirect (303) back to the page they were sent from.

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

/// The state form of an incident page.
#[derive(Debug, Default, Deserialize)]
struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    note: String,
}

/// `POST /incidents/{id}/state` (any signed-in user, CSRF-checked): sets the
/// incident's state and goes back to its page.
async fn set_incident_state(
    user: WebUser,
    State(st): State<AppState>,
    Path(id): Path<String>,
    form: Result<Form<StateForm>, FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    if let Err(r) = verify_csrf(&user, &f.csrf) {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return error_page(StatusCode::NOT_FOUND, "not found", "no such incident");
    };
    let change = crate::incidents::StateChange {
        state: f.state,
        assignee: Some(f.assignee),
        note: Some(f.note),
    };
    let now = (st.clock)();
    let state = match change.check(&user.name, now) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "bad request", &e),
    };
    let done = st
        .with_store(move |s| crate::incidents::set_state(s, id, &state, now))
        .await;
    match done {
        Ok(Some(inc)) => {
            tracing::info!(user = %user.name, incident = inc.id, state = inc.state.state.name(), "dashboard: incident state set");
            Redirect::to(&format!("/incidents/{}", inc.id)).into_response()
        }
        Ok(None) => error_page(StatusCode::NOT_FOUND, "not found", "no such incident"),
        Err(e) => e.into_response(),
    }
}

/// The actions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sensors/{name}/revoke", post(revoke_sensor))
        .route("/incidents/{id}/state", post(set_incident_state))
        .layer(axum::extract::DefaultBodyLimit::max(16 << 10))
}
