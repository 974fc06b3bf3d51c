//! The dashboard pages. (Skeleton: being filled in.)

use axum::Router;

use crate::AppState;

/// The pages: overview, port, warning, sensors, source.
pub fn routes() -> Router<AppState> {
    Router::new()
}
