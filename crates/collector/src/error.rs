//! The one error type of the HTTP app: each variant maps to a status and a JSON body
//! `{"error": "..."}`; internal failures are logged and answered without details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub enum AppError {
    /// Missing, unknown or revoked sensor token.
    Unauthorized,
    /// Missing, unknown or revoked API token.
    UnauthorizedApi,
    /// A valid API token without the role the endpoint needs.
    Forbidden(String),
    /// No such resource.
    NotFound(String),
    /// Malformed request: bad header, bad line, not UTF-8, bad gzip.
    BadRequest(String),
    /// A size limit was exceeded.
    TooLarge(String),
    /// A `Content-Encoding` other than gzip, zstd or identity.
    UnsupportedEncoding(String),
    /// The sensor is over its events-per-second budget: 429 with `Retry-After`,
    /// the seconds until its budget holds the batch.
    RateLimited(String, u64),
    /// An event lies further ahead of the centre's clock than the clock skew
    /// allows: the sensor keeps the batch and retries (425 Too Early).
    ClockAhead(String),
    /// The request body did not arrive in time (408).
    Timeout(String),
    /// The centre cannot take the batch now (a counting backlog): 503 with
    /// `Retry-After`; the sensor sends it again.
    Busy(String),
    /// Anything else; the message is logged, never sent.
    Internal(String),
}

impl AppError {
    pub fn internal(msg: impl Into<String>) -> AppError {
        AppError::Internal(msg.into())
    }
}

impl From<scanwatch_centre::CentreError> for AppError {
    fn from(e: scanwatch_centre::CentreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<scanwatch_store::StoreError> for AppError {
    fn from(e: scanwatch_store::StoreError) -> Self {
        match e {
            // Derived data being counted again: the answer comes back once it
            // is (the detail is logged, not sent).
            scanwatch_store::StoreError::DamagedAggregate(_) => {
                tracing::error!(error = %e, "a query met a damaged aggregate");
                AppError::Busy(
                    "the stored aggregates are being counted again; try again shortly".into(),
                )
            }
            e => AppError::Internal(e.to_string()),
        }
    }
}

#[derive(serde::Serialize)]
struct Body {
    error: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut retry_after: Option<u64> = None;
        let (status, msg) = match self {
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing, unknown or revoked sensor token".to_string(),
            ),
            AppError::UnauthorizedApi => (
                StatusCode::UNAUTHORIZED,
                "missing, unknown or revoked API token".to_string(),
            ),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            AppError::UnsupportedEncoding(e) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content-encoding {e:?}; use gzip, zstd or none"),
            ),
            AppError::RateLimited(m, secs) => {
                retry_after = Some(secs);
                (StatusCode::TOO_MANY_REQUESTS, m)
            }
            AppError::ClockAhead(m) => (StatusCode::TOO_EARLY, m),
            AppError::Timeout(m) => (StatusCode::REQUEST_TIMEOUT, m),
            AppError::Busy(m) => {
                retry_after = Some(1);
                (StatusCode::SERVICE_UNAVAILABLE, m)
            }
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        let mut r = (status, Json(Body { error: msg })).into_response();
        if let Some(secs) = retry_after {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        r
    }
}
