//! Dashboard logins: users with roles, argon2 password hashes, session cookies and
//! CSRF tokens. (Skeleton: being filled in.)

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use scanwatch_store::{hash_token, new_token, Role, SessionRecord};

use crate::{AppError, AppState};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "scanwatch_session";

/// What the dashboard keeps beside the store (login rate limits).
#[derive(Debug, Default)]
pub struct WebState {}

/// A logged-in dashboard user; extracting it from a request without a live session
/// redirects to the login page.
#[derive(Clone, Debug)]
pub struct WebUser {
    pub name: String,
    pub role: Role,
    /// The session's CSRF token: put it in every form that changes state.
    pub csrf: String,
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(id) = cookie(parts, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let id_hash = hash_token(id);
        let now = (st.clock)();
        let found = st
            .with_store(move |s| {
                let Some(sess) = s.session(&id_hash, now)? else {
                    return Ok(None);
                };
                Ok(s.user(&sess.user)?.map(|u| (u, sess)))
            })
            .await
            .map_err(IntoResponse::into_response)?;
        match found {
            Some((u, sess)) => Ok(WebUser {
                name: u.name,
                role: u.role,
                csrf: sess.csrf,
            }),
            None => Err(to_login()),
        }
    }
}

/// Opens a session for an existing user and returns the `Cookie` header value
/// that carries it (for tests and for the login form).
pub async fn open_session(st: &AppState, user: &str) -> Result<String, AppError> {
    let id = new_token()?;
    let csrf = new_token()?;
    let now = (st.clock)();
    let rec = SessionRecord {
        id_hash: hash_token(&id),
        user: user.to_string(),
        csrf,
        created: now,
        expires: scanwatch_event::Timestamp(now.0 + 12 * 3_600_000),
    };
    st.with_store(move |s| s.put_session(&rec)).await?;
    Ok(format!("{SESSION_COOKIE}={id}"))
}

/// `/login` and `/logout`.
pub fn routes() -> Router<AppState> {
    Router::new()
}
