//! Dashboard logins: users with roles, argon2 password hashes, session cookies,
//! CSRF tokens and login rate limits.
//!
//! - **Passwords** are Argon2id PHC strings (random salt, the crate's default cost:
//!   19 MiB, 2 passes), made by [`hash_password`] (the CLI's `admin user add` calls
//!   it too) and checked off the async threads, at most two at a time. An unknown
//!   user name is checked against a dummy hash, so timing does not tell which names
//!   exist.
//! - **Sessions** last [`SESSION_LIFETIME_MS`] (12 h, absolute: no sliding renewal).
//!   The cookie `scanwatch_session` carries 256 random bits; the store keeps only
//!   their SHA-256. It is `HttpOnly; SameSite=Strict; Path=/`, and `Secure` when the
//!   server speaks TLS ([`AppState::with_secure_cookies`]; off by default because
//!   browsers refuse `Secure` cookies over plain HTTP except on `localhost`).
//! - **CSRF**: every form that changes state carries the session's CSRF token in a
//!   hidden `csrf` field ([`verify_csrf`], constant-time). The login form, which has
//!   no session yet, uses a double-submit cookie signed with a per-process key (HMAC
//!   SHA-256, one hour). Cross-site POSTs (`Sec-Fetch-Site`, `Origin`) are refused
//!   before any handler runs ([`same_origin`], applied by `web::routes`).
//! - **Login rate limits** ([`LoginLimits`]) are kept in memory in [`WebState`]: a
//!   restart forgets them, and several centres behind one name would each count on
//!   their own. Failures count per user name and per client address (IPv6 by /64);
//!   the address is the TCP peer (`ConnectInfo`), so behind a reverse proxy every
//!   client shares the proxy's budget. Without a peer address (tests, other
//!   embeddings) one global budget replaces the per-address one. Anyone can lock a
//!   user name for the window by failing on purpose: that is the price of the limit.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Query, State};
use axum::http::header::{HeaderValue, COOKIE, HOST, LOCATION, ORIGIN, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use hmac::{Hmac, Mac};
use scanwatch_event::Timestamp;
use scanwatch_store::{hash_token, new_token, Role, SessionRecord};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{AppError, AppState};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "scanwatch_session";

/// Name of the login form's pre-session CSRF cookie (sent to `/login` only).
pub const LOGIN_CSRF_COOKIE: &str = "scanwatch_login_csrf";

/// How long a session lasts from login (12 h), whatever happens meanwhile.
pub const SESSION_LIFETIME_MS: i64 = 12 * 3_600_000;

/// How long a login form stays valid (1 h).
pub const LOGIN_FORM_LIFETIME_MS: i64 = 3_600_000;

/// Shortest password `admin user add` accepts.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Longest password the login form checks (longer ones simply fail).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Password hashes checked at the same time (each takes 19 MiB and a core).
const HASHING_SLOTS: usize = 2;

/// At most this many rate-limit keys are remembered; beyond it expired ones are
/// dropped, and if still beyond, the oldest ones.
const MAX_LIMIT_KEYS: usize = 100_000;

/// How many failed logins are allowed within a window before 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per user name (default 5).
    pub per_user: usize,
    /// Failures per client address (default 20).
    pub per_client: usize,
    /// Failures of all clients together when the client address is unknown
    /// (default 100).
    pub global: usize,
    /// Length of the sliding window (default 15 minutes).
    pub window_ms: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: 5,
            per_client: 20,
            global: 100,
            window_ms: 15 * 60_000,
        }
    }
}

/// What the dashboard keeps beside the store, in memory: login rate limits, the key
/// that signs login forms, and whether cookies are `Secure`.
pub struct WebState {
    /// Set `Secure` on cookies (the server speaks HTTPS).
    pub secure_cookies: bool,
    pub limits: LoginLimits,
    failures: Mutex<Failures>,
    form_key: OnceLock<[u8; 32]>,
    hashing: Arc<tokio::sync::Semaphore>,
}

impl Default for WebState {
    fn default() -> Self {
        WebState {
            secure_cookies: false,
            limits: LoginLimits::default(),
            failures: Mutex::new(Failures::default()),
            form_key: OnceLock::new(),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING_SLOTS)),
        }
    }
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("secure_cookies", &self.secure_cookies)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl WebState {
    /// The same state with `Secure` cookies on or off.
    pub fn with_secure_cookies(mut self, on: bool) -> WebState {
        self.secure_cookies = on;
        self
    }

    /// The same state with other login limits.
    pub fn with_limits(mut self, limits: LoginLimits) -> WebState {
        self.limits = limits;
        self
    }

    fn form_key(&self) -> Result<&[u8; 32], AppError> {
        if let Some(k) = self.form_key.get() {
            return Ok(k);
        }
        let mut k = [0u8; 32];
        getrandom::fill(&mut k)
            .map_err(|e| AppError::internal(format!("cannot read random bytes: {e}")))?;
        Ok(self.form_key.get_or_init(|| k))
    }

    fn failures(&self) -> Result<std::sync::MutexGuard<'_, Failures>, AppError> {
        self.failures
            .lock()
            .map_err(|_| AppError::internal("login limits lock poisoned"))
    }
}

impl AppState {
    /// The same state with `Secure` session cookies (when the server speaks TLS).
    /// Call it while building the state: the dashboard's in-memory state starts anew.
    pub fn with_secure_cookies(mut self, on: bool) -> AppState {
        let limits = self.web.limits;
        self.web = Arc::new(
            WebState::default()
                .with_limits(limits)
                .with_secure_cookies(on),
        );
        self
    }

    /// The same state with other login limits (same caveat as `with_secure_cookies`).
    pub fn with_login_limits(mut self, limits: LoginLimits) -> AppState {
        let secure = self.web.secure_cookies;
        self.web = Arc::new(
            WebState::default()
                .with_limits(limits)
                .with_secure_cookies(secure),
        );
        self
    }
}

/// Failed login attempts per key (`user:NAME`, `ip:ADDR`, `global`), newest last.
#[derive(Debug, Default)]
struct Failures {
    by_key: HashMap<String, VecDeque<Timestamp>>,
}

impl Failures {
    fn prune(&mut self, key: &str, now: Timestamp, window: i64) -> usize {
        let Some(q) = self.by_key.get_mut(key) else {
            return 0;
        };
        while q.front().is_some_and(|t| t.0 <= now.0 - window) {
            q.pop_front();
        }
        let n = q.len();
        if n == 0 {
            self.by_key.remove(key);
        }
        n
    }

    /// Starts an attempt: if any key is at its limit, the seconds to wait; else the
    /// attempt counts as a failure on every key until [`Failures::succeeded`].
    fn begin(&mut self, keys: &[(String, usize)], now: Timestamp, window: i64) -> Option<i64> {
        let mut wait_ms = 0;
        for (k, limit) in keys {
            if self.prune(k, now, window) >= *limit {
                let oldest = self
                    .by_key
                    .get(k)
                    .and_then(|q| q.iter().rev().nth(limit.saturating_sub(1)))
                    .map_or(now.0, |t| t.0);
                wait_ms = wait_ms.max(oldest + window - now.0);
            }
        }
        if wait_ms > 0 {
            return Some((wait_ms + 999) / 1000);
        }
        if self.by_key.len() + keys.len() > MAX_LIMIT_KEYS {
            self.by_key
                .retain(|_, q| q.back().is_some_and(|t| t.0 > now.0 - window));
            while self.by_key.len() + keys.len() > MAX_LIMIT_KEYS {
                let oldest = self
                    .by_key
                    .iter()
                    .min_by_key(|(_, q)| q.back().map_or(i64::MIN, |t| t.0))
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => self.by_key.remove(&k),
                    None => break,
                };
            }
        }
        for (k, limit) in keys {
            let q = self.by_key.entry(k.clone()).or_default();
            q.push_back(now);
            while q.len() > *limit {
                q.pop_front();
            }
        }
        None
    }

    /// A successful login: the user's failures are forgotten, and this attempt no
    /// longer counts against the other keys.
    fn succeeded(&mut self, user_key: &str, other_keys: &[(String, usize)], now: Timestamp) {
        self.by_key.remove(user_key);
        for (k, _) in other_keys {
            if let Some(q) = self.by_key.get_mut(k) {
                if let Some(i) = q.iter().rposition(|t| *t == now) {
                    q.remove(i);
                }
                if q.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct PasswordError(String);

/// Hashes a password with Argon2id (random salt, default cost) into a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$...`). Slow on purpose: call it off the async
/// threads.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError(e.to_string()))?;
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| PasswordError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false for a malformed one).
/// Slow on purpose: call it off the async threads.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of no one's password (same cost as real ones), checked when the user does
/// not exist so that the answer takes as long as for a real user.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_with_salt("scanwatch dummy password", b"scanwatch-dummy!").unwrap_or_default()
    })
}

/// A logged-in dashboard user; extracting it from a request without a live session
/// redirects to the login page (303, `next` = the page asked for).
#[derive(Clone, Debug)]
pub struct WebUser {
    pub name: String,
    pub role: Role,
    /// The session's CSRF token: put it in every form that changes state.
    pub csrf: String,
}

impl WebUser {
    /// Refuses (403) a user without the admin role.
    // The error is the answer to send as it is (a handler returns it at once).
    #[allow(clippy::result_large_err)]
    pub fn require_admin(&self) -> Result<(), Response> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(error_page(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs the admin role",
            ))
        }
    }
}

/// Refuses (403) a form whose `csrf` field is not the session's CSRF token
/// (compared in constant time).
#[allow(clippy::result_large_err)] // the error is the answer to send as it is
pub fn verify_csrf(user: &WebUser, form_token: &str) -> Result<(), Response> {
    if !form_token.is_empty() && bool::from(form_token.as_bytes().ct_eq(user.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(csrf_refused())
    }
}

fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "forbidden",
        "the form was not sent from this site or has expired; go back, reload the page and try again",
    )
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The user and the hash of the session id of a request's live session, if any.
async fn current(headers: &HeaderMap, st: &AppState) -> Result<Option<WebUser>, AppError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
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
        .await?;
    Ok(found.map(|(u, sess)| WebUser {
        name: u.name,
        role: u.role,
        csrf: sess.csrf,
    }))
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        match current(&parts.headers, st).await {
            Ok(Some(u)) => Ok(u),
            Ok(None) => {
                let next = if parts.method == axum::http::Method::GET
                    || parts.method == axum::http::Method::HEAD
                {
                    parts.uri.path_and_query().map(|p| p.as_str())
                } else {
                    None
                };
                Err(to_login(next))
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// 303 to the login page, coming back to `next` (a local path) afterwards.
fn to_login(next: Option<&str>) -> Response {
    let loc = match next.and_then(safe_next) {
        Some(n) if n != "/" => format!("/login?next={}", percent_encode(n)),
        _ => "/login".to_string(),
    };
    see_other(&loc)
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(v) => r.headers_mut().insert(LOCATION, v),
        Err(_) => r
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/")),
    };
    r
}

/// `next` if it is a path on this site (starts with one `/`, printable ASCII, no
/// backslash), else `None`: no redirects elsewhere.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && next.bytes().all(|c| c.is_ascii_graphic() && c != b'\\');
    ok.then_some(next)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values: the one
/// escaper of the dashboard ([`crate::web::pages::html::esc`]).
pub use crate::web::pages::html::esc as escape;

/// A small HTML page with a message, for refusals.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · scanwatch</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main class=\"message\"><h1>{t}</h1><p class=\"error\">{m}</p>\
         <p><a href=\"/\">back to the overview</a></p></main></body></html>\n",
        t = escape(title),
        m = escape(message),
    );
    (status, Html(body)).into_response()
}

/// Whether a state-changing request comes from this site: a `Sec-Fetch-Site` other
/// than `same-origin` (or `none`, typed by the user) is refused, and so is an
/// `Origin` other than this host. Requests with neither (scripts, old browsers)
/// pass: the CSRF token still protects them.
pub fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")) {
            return false;
        }
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // "null" and anything else opaque
    };
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let norm = |a: &str| {
        let a = a.to_ascii_lowercase();
        match a.strip_suffix(default_port) {
            Some(s) => s.to_string(),
            None => a,
        }
    };
    norm(authority) == norm(host)
}

/// Opens a session for an existing user and returns the `Cookie` header value
/// that carries it (for tests and for the login form).
pub async fn open_session(st: &AppState, user: &str) -> Result<String, AppError> {
    let (id, _) = new_session(st, user).await?;
    Ok(format!("{SESSION_COOKIE}={id}"))
}

/// Stores a new session for `user`; returns its id (for the cookie only) and CSRF
/// token.
async fn new_session(st: &AppState, user: &str) -> Result<(String, String), AppError> {
    let id = new_token()?;
    let csrf = new_token()?;
    let now = (st.clock)();
    let rec = SessionRecord {
        id_hash: hash_token(&id),
        user: user.to_string(),
        csrf: csrf.clone(),
        created: now,
        expires: Timestamp(now.0.saturating_add(SESSION_LIFETIME_MS)),
    };
    st.with_store(move |s| s.put_session(&rec)).await?;
    Ok((id, csrf))
}

fn set_cookie(r: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().append(SET_COOKIE, v);
    }
}

fn cookie_attrs(st: &AppState, path: &str, max_age_ms: i64) -> String {
    format!(
        "HttpOnly; SameSite=Strict; Path={path}; Max-Age={}{}",
        max_age_ms / 1000,
        if st.web.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

type HmacSha256 = Hmac<Sha256>;

fn form_mac(key: &[u8; 32], issued: i64, nonce: &str) -> Result<String, AppError> {
    let mut mac = HmacSha256::new_from_slice(key)
        .map_err(|e| AppError::internal(format!("cannot key the form signature: {e}")))?;
    mac.update(format!("scanwatch login form|{issued}|{nonce}").as_bytes());
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The login form's token: the nonce for the hidden field, and the signed cookie
/// value `ISSUED.NONCE.MAC`. Reuses a still valid cookie (several open tabs).
fn login_token(st: &AppState, headers: &HeaderMap) -> Result<(String, String), AppError> {
    let now = (st.clock)();
    if let Some(v) = cookie(headers, LOGIN_CSRF_COOKIE) {
        if let Some(nonce) = check_login_cookie(st, v, now)? {
            // Renew it only when it is about to expire.
            if let Some(issued) = v.split('.').next().and_then(|s| s.parse::<i64>().ok()) {
                if now.0 - issued < LOGIN_FORM_LIFETIME_MS / 2 {
                    return Ok((nonce, v.to_string()));
                }
            }
        }
    }
    let nonce = new_token()?;
    let mac = form_mac(st.web.form_key()?, now.0, &nonce)?;
    Ok((nonce.clone(), format!("{}.{nonce}.{mac}", now.0)))
}

/// The nonce of a genuine, unexpired login cookie.
fn check_login_cookie(st: &AppState, v: &str, now: Timestamp) -> Result<Option<String>, AppError> {
    let mut it = v.splitn(3, '.');
    let (Some(issued), Some(nonce), Some(mac)) = (it.next(), it.next(), it.next()) else {
        return Ok(None);
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return Ok(None);
    };
    if issued > now.0 || now.0 - issued > LOGIN_FORM_LIFETIME_MS {
        return Ok(None);
    }
    let want = form_mac(st.web.form_key()?, issued, nonce)?;
    Ok(bool::from(want.as_bytes().ct_eq(mac.as_bytes())).then(|| nonce.to_string()))
}

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The client's address for rate limits: the TCP peer, IPv6 by its /64.
fn client_key(parts_ext: &axum::http::Extensions) -> Option<String> {
    let ConnectInfo(addr) = parts_ext.get::<ConnectInfo<SocketAddr>>()?;
    Some(match addr.ip().to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    })
}

fn login_page(
    st: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    username: &str,
    next: Option<&str>,
) -> Response {
    let (nonce, cookie_value) = match login_token(st, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let error = error.map_or_else(String::new, |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    let next = next.and_then(safe_next).map_or_else(String::new, |n| {
        format!(
            "<input type=\"hidden\" name=\"next\" value=\"{}\">",
            escape(n)
        )
    });
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Log in · scanwatch</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body class=\"login\"><main class=\"login\">\
         <h1>scanwatch</h1><p class=\"tagline\">Early warning for Internet scanning surges</p>\
         {error}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{next}\
         <p><label for=\"username\">User name</label><br>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus \
         maxlength=\"64\" value=\"{user}\"></p>\
         <p><label for=\"password\">Password</label><br>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
         <p><button type=\"submit\">Log in</button></p></form></main></body></html>\n",
        csrf = escape(&nonce),
        user = escape(username),
    );
    let mut r = (status, Html(body)).into_response();
    set_cookie(
        &mut r,
        format!(
            "{LOGIN_CSRF_COOKIE}={cookie_value}; {}",
            cookie_attrs(st, "/login", LOGIN_FORM_LIFETIME_MS)
        ),
    );
    r
}

/// `GET /login`: the form (or straight on, for a user already logged in).
async fn login_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = query.ok().and_then(|Query(q)| q.next);
    match current(&headers, &st).await {
        Ok(Some(_)) => see_other(next.as_deref().and_then(safe_next).unwrap_or("/")),
        Ok(None) => login_page(&st, &headers, StatusCode::OK, None, "", next.as_deref()),
        Err(e) => e.into_response(),
    }
}

/// `POST /login`: checks the form token, the rate limits and the password, then
/// opens a session and goes to `next`.
async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return login_page(
            &st,
            &headers,
            StatusCode::BAD_REQUEST,
            Some("the login form could not be read; please try again"),
            "",
            None,
        );
    };
    let next = f.next.as_deref().and_then(safe_next);
    let now = (st.clock)();
    let genuine = match cookie(&headers, LOGIN_CSRF_COOKIE) {
        Some(v) => match check_login_cookie(&st, v, now) {
            Ok(n) => n.is_some_and(|n| {
                !f.csrf.is_empty() && bool::from(n.as_bytes().ct_eq(f.csrf.as_bytes()))
            }),
            Err(e) => return e.into_response(),
        },
        None => false,
    };
    if !genuine {
        return login_page(
            &st,
            &headers,
            StatusCode::FORBIDDEN,
            Some("the login form has expired or was not sent from this site; please try again"),
            &f.username,
            next,
        );
    }
    let username = f.username.trim().to_string();
    let limits = st.web.limits;
    let user_key = format!("user:{username}");
    let other_keys = vec![match client_key(&ext) {
        Some(k) => (k, limits.per_client),
        None => ("global".to_string(), limits.global),
    }];
    let mut keys = other_keys.clone();
    keys.push((user_key.clone(), limits.per_user));
    let wait = match st.web.failures() {
        Ok(mut fl) => fl.begin(&keys, now, limits.window_ms),
        Err(e) => return e.into_response(),
    };
    if let Some(secs) = wait {
        let mut r = login_page(
            &st,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "too many failed logins; try again in {} minute{}",
                (secs + 59) / 60,
                if (secs + 59) / 60 == 1 { "" } else { "s" }
            )),
            &username,
            next,
        );
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let ok = match check_password(&st, &username, f.password).await {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    if !ok {
        return login_page(
            &st,
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("unknown user name or wrong password"),
            &username,
            next,
        );
    }
    if let Ok(mut fl) = st.web.failures() {
        fl.succeeded(&user_key, &other_keys, now);
    }
    // A session cookie the browser still had is ended, and expired sessions with it.
    let old = cookie(&headers, SESSION_COOKIE).map_or_else(String::new, hash_token);
    if let Err(e) = st.with_store(move |s| s.delete_session(&old, now)).await {
        return e.into_response();
    }
    let (id, _) = match new_session(&st, &username).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let mut r = see_other(next.unwrap_or("/"));
    set_cookie(
        &mut r,
        format!(
            "{SESSION_COOKIE}={id}; {}",
            cookie_attrs(&st, "/", SESSION_LIFETIME_MS)
        ),
    );
    set_cookie(
        &mut r,
        format!("{LOGIN_CSRF_COOKIE}=; {}", cookie_attrs(&st, "/login", 0)),
    );
    r
}

/// Whether `password` is `username`'s; as slow for an unknown user as for a known.
async fn check_password(st: &AppState, username: &str, password: String) -> Result<bool, AppError> {
    let name = username.to_string();
    let user = if name.is_empty() || name.len() > 64 {
        None
    } else {
        st.with_store(move |s| s.user(&name)).await?
    };
    let permit = st
        .web
        .hashing
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
    crate::blocking(move || {
        let _permit = permit;
        // An unknown user, or an overlong password, is checked against the dummy
        // hash, so that it fails as slowly as a wrong password.
        let ok = match user {
            Some(u) if password.len() <= MAX_PASSWORD_LEN => {
                verify_password(&password, &u.password_hash)
            }
            _ => {
                verify_password("", dummy_hash());
                false
            }
        };
        Ok(ok)
    })
    .await
}

/// `POST /logout`: ends the session (CSRF token required) and goes to the login page.
async fn logout(
    user: WebUser,
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let token = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(r) = verify_csrf(&user, &token) {
        return r;
    }
    let id_hash = cookie(&headers, SESSION_COOKIE).map_or_else(String::new, hash_token);
    let now = (st.clock)();
    if let Err(e) = st
        .with_store(move |s| s.delete_session(&id_hash, now))
        .await
    {
        return e.into_response();
    }
    let mut r = see_other("/login");
    set_cookie(
        &mut r,
        format!("{SESSION_COOKIE}=; {}", cookie_attrs(&st, "/", 0)),
    );
    r
}

/// `/login` and `/logout`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .layer(DefaultBodyLimit::max(16 << 10))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next("/ports/tcp/22?x=1"), Some("/ports/tcp/22?x=1"));
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "",
            "/a b",
            "/\u{7f}",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn limits_count_and_forget() {
        let mut f = Failures::default();
        let keys = vec![("user:a".to_string(), 2)];
        assert_eq!(f.begin(&keys, Timestamp(0), 1000), None);
        assert_eq!(f.begin(&keys, Timestamp(100), 1000), None);
        assert_eq!(f.begin(&keys, Timestamp(200), 1000), Some(1));
        assert_eq!(f.begin(&keys, Timestamp(1000), 1000), None);
        f.succeeded("user:a", &[], Timestamp(1000));
        assert!(f.by_key.is_empty());
    }

    #[test]
    fn same_origin_checks() {
        let uri: Uri = "/logout".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("centre:8080"));
        assert!(same_origin(&h, &uri));
        h.insert(ORIGIN, HeaderValue::from_static("http://centre:8080"));
        assert!(same_origin(&h, &uri));
        h.insert(ORIGIN, HeaderValue::from_static("http://evil:8080"));
        assert!(!same_origin(&h, &uri));
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h, &uri));
        h.remove(ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, &uri));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h, &uri));
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
