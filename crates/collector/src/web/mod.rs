//! The dashboard: server-rendered HTML pages with SVG charts for people, behind a
//! login. Pages read the same store as the JSON API; nothing here is needed by the
//! ingest path.

pub mod auth;
pub mod pages;

use axum::Router;

use crate::AppState;

/// The dashboard's routes: the login and logout forms and the pages.
pub fn routes() -> Router<AppState> {
    Router::new().merge(auth::routes()).merge(pages::routes())
}
