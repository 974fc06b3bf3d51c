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

/// Whether a role serves yet: while it starts, what it waits for (the bus, the
/// store). Its operations endpoint answers from the first moment, so a role that
/// waits is seen waiting (`/healthz` 503 with the reason, `scanwatch_role_ready 0`)
/// rather than refusing connections.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<std::sync::Mutex<Option<&'static str>>>);

impl Readiness {
    /// Starting, waiting for `what`.
    pub fn starting(what: &'static str) -> Readiness {
        Readiness(Arc::new(std::sync::Mutex::new(Some(what))))
    }

    /// Still starting, now waiting for `what`.
    pub fn waiting_for(&self, what: &'static str) {
        *self.lock() = Some(what);
    }

    /// Serving.
    pub fn ready(&self) {
        *self.lock() = None;
    }

    /// What the role waits for; `None` once it serves.
    pub fn waits_for(&self) -> Option<&'static str> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<&'static str>> {
        // A plain value: a panic elsewhere cannot leave it half-written.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Clone)]
struct Ops {
    role: &'static str,
    metrics: MetricsFn,
    token: Option<Arc<str>>,
    readiness: Readiness,
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
pub fn ops_app(
    role: &'static str,
    metrics: MetricsFn,
    token: Option<String>,
    readiness: Readiness,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .with_state(Ops {
            role,
            metrics,
            token: token.map(Arc::from),
            readiness,
        })
}

/// `/healthz`: 200 `{"status":"ok","role":…}` once the role serves, 503
/// `{"status":"starting","role":…,"waiting_for":…}` before.
async fn healthz(State(o): State<Ops>) -> Response {
    let (status, body) = match o.readiness.waits_for() {
        None => (
            StatusCode::OK,
            serde_json::json!({"status": "ok", "role": o.role}),
        ),
        Some(what) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "starting", "role": o.role, "waiting_for": what}),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics_handler(State(o): State<Ops>, headers: HeaderMap) -> Response {
    metrics_response(o.token.as_deref(), &headers, || {
        format!(
            "{}# HELP scanwatch_role_ready Whether the role serves (0 while it starts).\n\
             # TYPE scanwatch_role_ready gauge\n\
             scanwatch_role_ready{{role=\"{}\"}} {}\n",
            (o.metrics)(),
            o.role,
            u8::from(o.readiness.waits_for().is_none())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> (StatusCode, String) {
        let r = app
            .clone()
            .oneshot(
                Request::get(path)
                    .body(Body::empty())
                    .unwrap_or_else(|_| unreachable!()),
            )
            .await
            .unwrap_or_else(|e| match e {});
        let status = r.status();
        let body = r.into_body().collect().await.map(|b| b.to_bytes());
        let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
        (status, body)
    }

    #[tokio::test]
    async fn a_starting_role_says_what_it_waits_for() {
        let readiness = Readiness::starting("the bus");
        let app = ops_app(
            "aggregator",
            Arc::new(|| "scanwatch_aggregator_events_total 0\n".to_string()),
            None,
            readiness.clone(),
        );
        let (st, body) = get(&app, "/healthz").await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(v["status"], "starting", "{body}");
        assert_eq!(v["role"], "aggregator", "{body}");
        assert_eq!(v["waiting_for"], "the bus", "{body}");
        // Its counters are readable while it starts.
        let (st, body) = get(&app, "/metrics").await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            body.contains("scanwatch_aggregator_events_total 0\n"),
            "{body}"
        );
        assert!(
            body.contains("scanwatch_role_ready{role=\"aggregator\"} 0\n"),
            "{body}"
        );

        readiness.waiting_for("the store");
        let (_, body) = get(&app, "/healthz").await;
        assert!(body.contains(r#""waiting_for":"the store""#), "{body}");

        readiness.ready();
        let (st, body) = get(&app, "/healthz").await;
        assert_eq!(st, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(v["status"], "ok", "{body}");
        assert!(v.get("waiting_for").is_none(), "{body}");
        let (_, body) = get(&app, "/metrics").await;
        assert!(
            body.contains("scanwatch_role_ready{role=\"aggregator\"} 1\n"),
            "{body}"
        );
    }

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
