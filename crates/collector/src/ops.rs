//! `/healthz` and `/metrics` for the roles that serve nothing else (the scale-out
//! aggregator and detector), and the optional token on `/metrics`
//! (docs/security.md, docs/scale.md).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;

/// The Prometheus text of a role, made at each scrape.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct Ops {
    role: &'static str,
    metrics: MetricsFn,
    token: Option<Arc<str>>,
}

/// Whether a request may read `/metrics`: always without a token configured, else
/// with `Authorization: Bearer <token>` (compared in constant time).
pub fn metrics_allowed(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(want) = token else {
        return true;
    };
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    got.len() == want.len() && bool::from(got.as_bytes().ct_eq(want.as_bytes()))
}

/// The Prometheus answer, or 401 without the metrics token.
pub fn metrics_response(
    token: Option<&str>,
    headers: &HeaderMap,
    text: impl FnOnce() -> String,
) -> Response {
    if !metrics_allowed(token, headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"missing or wrong metrics token"}"#,
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text(),
    )
        .into_response()
}

/// The router of a role's operations endpoint.
pub fn ops_app(role: &'static str, metrics: MetricsFn, token: Option<String>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .with_state(Ops {
            role,
            metrics,
            token: token.map(Arc::from),
        })
}

async fn healthz(State(o): State<Ops>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"status":"ok","role":"{}"}}"#, o.role),
    )
        .into_response()
}

async fn metrics_handler(State(o): State<Ops>, headers: HeaderMap) -> Response {
    metrics_response(o.token.as_deref(), &headers, || (o.metrics)())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_token_is_required_when_set() {
        let mut h = HeaderMap::new();
        assert!(metrics_allowed(None, &h));
        assert!(!metrics_allowed(Some("s3cret"), &h));
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cre".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert!(!metrics_allowed(Some("s3cret"), &h));
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cret".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert!(metrics_allowed(Some("s3cret"), &h));
    }
}
