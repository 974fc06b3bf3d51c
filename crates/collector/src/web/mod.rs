//! The dashboard: server-rendered HTML pages with SVG charts for people, behind a
//! login. Pages read the same store as the JSON API; nothing here is needed by the
//! ingest path.

pub mod actions;
pub mod auth;
pub mod pages;

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::AppState;

/// Content security policy of every HTML page: nothing but this site's own files
/// (no inline scripts or styles), never in a frame.
pub const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; \
                       frame-ancestors 'none'; object-src 'none'";

/// The dashboard's routes: the login and logout forms, the pages and the admin
/// actions, behind [`guard`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(pages::routes())
        .merge(actions::routes())
        .layer(axum::middleware::from_fn(guard))
}

/// Refuses cross-site requests that change state (403) and adds the security
/// headers: `nosniff` and `Referrer-Policy` everywhere, and on HTML the CSP, no
/// framing and `Cache-Control: no-store` (unless the page set its own).
async fn guard(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut resp = if safe || auth::same_origin(req.headers(), req.uri()) {
        next.run(req).await
    } else {
        auth::error_page(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a form from another site cannot change anything here",
        )
    };
    let h = resp.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let html = h
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    resp
}
