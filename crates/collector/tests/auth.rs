//! Dashboard logins driven with `oneshot`: pages need a session, passwords are
//! Argon2id, cookies are `HttpOnly; SameSite=Strict`, every state-changing form needs
//! its CSRF token, failed logins are rate limited, `next` never leaves the site, and
//! only admins use the admin forms.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_store::prelude::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use scanwatch_collector::web::auth::{
    hash_password, open_session, verify_password, LoginLimits, WebUser, SESSION_COOKIE,
};
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{hash_token, Role, UserRecord};
use tower::ServiceExt;

const PW: &str = "correct horse battery";

struct Setup {
    state: AppState,
    now: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.add_sensor("fw-1", Timestamp(0)).unwrap();
    // One hash for both users: argon2 is slow in debug builds.
    let hash = hash_password(PW).unwrap();
    for (name, role) in [("alice", Role::Analyst), ("root", Role::Admin)] {
        store
            .put_user(
                &UserRecord {
                    name: name.into(),
                    role,
                    password_hash: hash.clone(),
                    created: Timestamp(0),
                },
                false,
            )
            .unwrap();
    }
    let now = Arc::new(AtomicI64::new(1_800_000_000_000));
    let n = now.clone();
    let state = AppState::new(
        Box::new(store),
        Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000)),
        Limits::default(),
        Arc::new(move || Timestamp(n.load(Ordering::SeqCst))),
    );
    Setup {
        state,
        now,
        _dir: dir,
    }
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .map_or("", |v| v.to_str().unwrap())
    }

    /// The `Set-Cookie` header that sets `name`.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The value of the cookie `name` as set by this response.
    fn cookie_value(&self, name: &str) -> Option<String> {
        let c = self.set_cookie(name)?;
        let v = c.split(';').next()?.split_once('=')?.1.to_string();
        Some(v)
    }
}

async fn send_to(router: Router, req: Request<Body>) -> Resp {
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn send(s: &Setup, req: Request<Body>) -> Resp {
    send_to(app(s.state.clone()), req).await
}

fn form_post(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

/// The value of the hidden input `name` in a page.
fn hidden(body: &str, name: &str) -> Option<String> {
    let pat = format!("name=\"{name}\" value=\"");
    let i = body.find(&pat)? + pat.len();
    Some(body[i..].split('"').next()?.to_string())
}

/// A login form: its `Cookie` header value and its CSRF field.
async fn login_form(s: &Setup) -> (String, String) {
    let r = send(s, Request::get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = format!(
        "scanwatch_login_csrf={}",
        r.cookie_value("scanwatch_login_csrf").unwrap()
    );
    (cookie, hidden(&r.body, "csrf").unwrap())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn login(s: &Setup, user: &str, pw: &str, next: Option<&str>) -> Resp {
    let (cookie, csrf) = login_form(s).await;
    let mut body = format!("username={}&password={}&csrf={csrf}", enc(user), enc(pw));
    if let Some(n) = next {
        body.push_str(&format!("&next={}", enc(n)));
    }
    send(s, form_post("/login", Some(&cookie), &body)).await
}

async fn probe(u: WebUser) -> String {
    format!("hello {} ({:?})", u.name, u.role)
}

fn probe_app(s: &Setup) -> Router {
    Router::new()
        .route("/probe", get(probe))
        .with_state(s.state.clone())
}

/// The session id in a successful login's cookie.
fn session_id(r: &Resp) -> String {
    r.cookie_value(SESSION_COOKIE).unwrap()
}

async fn csrf_of(s: &Setup, cookie: &str) -> String {
    let id = cookie.split_once('=').unwrap().1;
    let now = Timestamp(s.now.load(Ordering::SeqCst));
    let store = s.state.store.lock().unwrap();
    store.session(&hash_token(id), now).unwrap().unwrap().csrf
}

#[tokio::test]
async fn pages_need_a_session() {
    let s = setup();
    let r = send_to(
        probe_app(&s),
        Request::get("/probe?tab=a&b=c")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=/probe%3Ftab%3Da%26b%3Dc");
    assert!(!r.body.contains("hello"));
    // A made-up or expired session is no session.
    let r = send_to(
        probe_app(&s),
        Request::get("/probe")
            .header("cookie", format!("{SESSION_COOKIE}=swt_made_up"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = open_session(&s.state, "alice").await.unwrap();
    let get = |c: &str| {
        Request::get("/probe")
            .header("cookie", c)
            .body(Body::empty())
            .unwrap()
    };
    let r = send_to(probe_app(&s), get(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "hello alice (Analyst)");
    s.now.fetch_add(12 * 3_600_000, Ordering::SeqCst);
    let r = send_to(probe_app(&s), get(&cookie)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "sessions end after 12 h");
}

#[tokio::test]
async fn login_form_is_plain_html_with_security_headers() {
    let s = setup();
    let r = send(
        &s,
        Request::get("/login?next=/sensors")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<form method=\"post\" action=\"/login\">"));
    assert!(r.body.contains("href=\"/static/app.css\""));
    assert!(r.body.contains("scanwatch"));
    assert_eq!(hidden(&r.body, "next").as_deref(), Some("/sensors"));
    let h = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_string();
    assert!(h("content-security-policy").contains("default-src 'self'"));
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "same-origin");
    assert_eq!(h("cache-control"), "no-store");
    let c = r.set_cookie("scanwatch_login_csrf").unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    // A hostile next is not carried into the form.
    let r = send(
        &s,
        Request::get("/login?next=//evil.example/")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(hidden(&r.body, "next"), None);
}

#[tokio::test]
async fn wrong_password_fails_right_one_opens_a_hashed_session() {
    let s = setup();
    let r = login(&s, "alice", "wrong password", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body.contains("unknown user name or wrong password"),
        "{}",
        r.body
    );
    assert!(r.set_cookie(SESSION_COOKIE).is_none());
    // An unknown user gets the very same answer.
    let u = login(&s, "mallory", "wrong password", None).await;
    assert_eq!(u.status, StatusCode::UNAUTHORIZED);
    assert!(u.body.contains("unknown user name or wrong password"));
    // The user name is put back into the form, escaped.
    let x = login(&s, "<b>x</b>", "wrong password", None).await;
    assert!(x.body.contains("&lt;b&gt;x&lt;/b&gt;") && !x.body.contains("<b>x</b>"));

    let r = login(&s, "alice", PW, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/");
    let c = r.set_cookie(SESSION_COOKIE).unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(c.contains(attr), "{attr} missing: {c}");
    }
    assert!(!c.contains("Secure"), "plain HTTP by default: {c}");
    let id = session_id(&r);
    assert!(id.len() >= 64);
    let now = Timestamp(s.now.load(Ordering::SeqCst));
    {
        let store = s.state.store.lock().unwrap();
        let sess = store.session(&hash_token(&id), now).unwrap().unwrap();
        assert_eq!(sess.user, "alice");
        assert_eq!(sess.expires.0 - sess.created.0, 12 * 3_600_000);
        // Only the hash is a key: the id itself finds nothing.
        assert!(store.session(&id, now).unwrap().is_none());
    }
    // The cookie works for pages; the login page sends a logged-in user on.
    let cookie = format!("{SESSION_COOKIE}={id}");
    let p = send_to(
        probe_app(&s),
        Request::get("/probe")
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(p.body, "hello alice (Analyst)");
    let l = send(
        &s,
        Request::get("/login")
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(l.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn secure_cookies_when_asked() {
    let mut s = setup();
    s.state = s.state.clone().with_secure_cookies(true);
    let r = login(&s, "alice", PW, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.set_cookie(SESSION_COOKIE).unwrap().contains("; Secure"));
}

#[tokio::test]
async fn login_form_needs_its_csrf_cookie_and_this_site() {
    let s = setup();
    let (cookie, csrf) = login_form(&s).await;
    let body = |c: &str| format!("username=alice&password={}&csrf={c}", enc(PW));
    // No cookie, wrong field, forged cookie: 403, no session.
    for (cookie, field) in [
        (None, csrf.clone()),
        (Some(cookie.clone()), "swt_wrong".to_string()),
        (Some(cookie.clone()), String::new()),
        (
            Some(format!("scanwatch_login_csrf=1.{csrf}.00")),
            csrf.clone(),
        ),
    ] {
        let r = send(&s, form_post("/login", cookie.as_deref(), &body(&field))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.set_cookie(SESSION_COOKIE).is_none());
    }
    // The form expires after an hour.
    s.now.fetch_add(3_600_001, Ordering::SeqCst);
    let r = send(&s, form_post("/login", Some(&cookie), &body(&csrf))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Cross-site posts are refused before anything else.
    let (cookie, csrf) = login_form(&s).await;
    for (h, v) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let mut req = form_post("/login", Some(&cookie), &body(&csrf));
        req.headers_mut().insert(h, v.parse().unwrap());
        req.headers_mut()
            .insert("host", "centre.example:8080".parse().unwrap());
        let r = send(&s, req).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{h}: {v}");
    }
    // The same site is fine.
    let mut req = form_post("/login", Some(&cookie), &body(&csrf));
    req.headers_mut()
        .insert("origin", "http://centre.example:8080".parse().unwrap());
    req.headers_mut()
        .insert("host", "centre.example:8080".parse().unwrap());
    req.headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().unwrap());
    let r = send(&s, req).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test]
async fn next_never_leaves_the_site() {
    let s = setup();
    let r = login(&s, "alice", PW, Some("/ports/tcp/22?w=1")).await;
    assert_eq!(r.location(), "/ports/tcp/22?w=1");
    for bad in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "evil.example",
        "javascript:alert(1)",
    ] {
        let r = login(&s, "alice", PW, Some(bad)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), "/", "next {bad:?}");
    }
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let s = setup();
    let cookie = open_session(&s.state, "alice").await.unwrap();
    let csrf = csrf_of(&s, &cookie).await;
    let r = send(&s, form_post("/logout", Some(&cookie), "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&s, form_post("/logout", Some(&cookie), "csrf=swt_wrong")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Still logged in.
    let id = cookie.split_once('=').unwrap().1.to_string();
    let now = Timestamp(s.now.load(Ordering::SeqCst));
    assert!(s
        .state
        .store
        .lock()
        .unwrap()
        .session(&hash_token(&id), now)
        .unwrap()
        .is_some());
    let r = send(
        &s,
        form_post("/logout", Some(&cookie), &format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    assert!(r.set_cookie(SESSION_COOKIE).unwrap().contains("Max-Age=0"));
    assert!(s
        .state
        .store
        .lock()
        .unwrap()
        .session(&hash_token(&id), now)
        .unwrap()
        .is_none());
    // Without a session, logout sends to the login page.
    let r = send(&s, form_post("/logout", None, "csrf=x")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
}

#[tokio::test]
async fn failed_logins_are_limited_per_user_until_the_window_passes() {
    let s = setup();
    for _ in 0..5 {
        let r = login(&s, "alice", "wrong password", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits, and says how long.
    let r = login(&s, "alice", PW, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = r
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(r.body.contains("too many failed logins"));
    assert!(r.set_cookie(SESSION_COOKIE).is_none());
    // Other users are not affected.
    let r = login(&s, "root", PW, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // After the window, alice logs in; success clears her count.
    s.now.fetch_add(15 * 60_000, Ordering::SeqCst);
    let r = login(&s, "alice", PW, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test]
async fn failed_logins_are_limited_per_client_address() {
    let mut s = setup();
    s.state = s.state.clone().with_login_limits(LoginLimits {
        per_user: 5,
        per_client: 2,
        global: 100,
        window_ms: 60_000,
    });
    let from = |ip: &str, req: Request<Body>| {
        let mut req = req;
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        req
    };
    let attempt = |ip: &'static str, user: &'static str, pw: &'static str| {
        let s = &s;
        async move {
            let (cookie, csrf) = login_form(s).await;
            let body = format!("username={user}&password={}&csrf={csrf}", enc(pw));
            send(s, from(ip, form_post("/login", Some(&cookie), &body))).await
        }
    };
    assert_eq!(
        attempt("192.0.2.7", "nobody1", "wrong password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("192.0.2.7", "nobody2", "wrong password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A third user name from the same address: refused before any password check.
    assert_eq!(
        attempt("192.0.2.7", "alice", PW).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another address is fine.
    assert_eq!(
        attempt("192.0.2.8", "alice", PW).await.status,
        StatusCode::SEE_OTHER
    );
    s.now.fetch_add(60_000, Ordering::SeqCst);
    assert_eq!(
        attempt("192.0.2.7", "alice", PW).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn only_admins_revoke_sensors_and_only_with_the_csrf_token() {
    let s = setup();
    let revoked = |s: &Setup| s.state.store.lock().unwrap().sensors().unwrap()[0].revoked;
    // No session: to the login page.
    let r = send(&s, form_post("/sensors/fw-1/revoke", None, "csrf=x")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login"));
    // An analyst, even with the right token: 403.
    let analyst = open_session(&s.state, "alice").await.unwrap();
    let csrf = csrf_of(&s, &analyst).await;
    let r = send(
        &s,
        form_post(
            "/sensors/fw-1/revoke",
            Some(&analyst),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!revoked(&s));
    // An admin without, or with another session's, token: 403.
    let admin = open_session(&s.state, "root").await.unwrap();
    let csrf = csrf_of(&s, &admin).await;
    for body in [
        String::new(),
        format!("csrf={}", csrf_of(&s, &analyst).await),
    ] {
        let r = send(&s, form_post("/sensors/fw-1/revoke", Some(&admin), &body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert!(!revoked(&s));
    // A cross-site post with the right token: 403 all the same.
    let mut req = form_post(
        "/sensors/fw-1/revoke",
        Some(&admin),
        &format!("csrf={csrf}"),
    );
    req.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(send(&s, req).await.status, StatusCode::FORBIDDEN);
    assert!(!revoked(&s));
    // An admin with the token: revoked, back to the sensors page.
    let r = send(
        &s,
        form_post(
            "/sensors/fw-1/revoke",
            Some(&admin),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/sensors");
    assert!(revoked(&s));
    let r = send(
        &s,
        form_post(
            "/sensors/nope/revoke",
            Some(&admin),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[test]
fn passwords_are_argon2id_phc_with_random_salt() {
    let a = hash_password("hunter2hunter2").unwrap();
    let b = hash_password("hunter2hunter2").unwrap();
    assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
    assert_ne!(a, b, "random salt");
    assert!(!a.contains("hunter2"));
    assert!(verify_password("hunter2hunter2", &a));
    assert!(!verify_password("hunter2hunter3", &a));
    assert!(!verify_password("hunter2hunter2", "not a phc string"));
}
