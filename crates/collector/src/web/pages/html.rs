//! HTML building blocks of the dashboard: escaping, the one page layout, number and
//! time formatting, and the HTML error page. Hand-written strings rather than a
//! template engine: the pages are few and small, and every piece of text goes
//! through [`esc`].

use std::fmt::Write as _;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use scanwatch_event::Timestamp;

use crate::web::auth::WebUser;
use crate::AppError;

/// Escapes text for HTML and SVG (element content and quoted attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newlines are not allowed in XML.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment or query value (for links built from data).
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `1234567` → `1,234,567`: the digit grouping of the text report and exports.
pub use scanwatch_alert::thousands as num;

/// A float for people: thousands separators, at most `decimals` decimals.
pub fn float(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    if x.abs() >= 1000.0 {
        let r = x.round();
        return if r < 0.0 {
            format!("-{}", num((-r) as u64))
        } else {
            num(r as u64)
        };
    }
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Civil date (year, month, day) of a day number since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`); the collector does not link a date crate.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Date and time parts of an instant: (year, month, day, hour, minute).
pub fn parts(t: Timestamp) -> (i64, u32, u32, u32, u32) {
    let days = t.0.div_euclid(86_400_000);
    let ms = t.0.rem_euclid(86_400_000);
    let (y, m, d) = civil(days);
    (y, m, d, (ms / 3_600_000) as u32, (ms / 60_000 % 60) as u32)
}

/// The one time format of the dashboard: `2026-11-26 10:00 UTC` (ISO date, UTC),
/// with seconds when the instant is not on a whole minute (`16:04:30 UTC`, the end
/// of a 30 s window).
pub fn when(t: Timestamp) -> String {
    let (y, m, d, h, mi) = parts(t);
    let sec = t.0.rem_euclid(60_000);
    if sec == 0 {
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02} UTC")
    } else {
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{:02} UTC", sec / 1000)
    }
}

/// A window: its start as a `<time>` element and its length (`2026-11-26 10:00 UTC ·
/// 1 h`), the one way a window is written on the pages.
pub fn window_el(start: Timestamp, end: Timestamp) -> String {
    format!(
        "{} <span class=\"note\">· {}</span>",
        time_el(start),
        esc(&span(end.0 - start.0))
    )
}

/// A `<time>` element with the RFC 3339 instant and the readable form.
pub fn time_el(t: Timestamp) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        esc(&t.to_rfc3339()),
        esc(&when(t))
    )
}

/// A duration in the largest whole unit: `3 h`, `2 d`, `45 min`.
pub fn span(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("{} s", ms / 1000)
    } else if ms >= 86_400_000 && ms % 86_400_000 == 0 {
        format!("{} d", ms / 86_400_000)
    } else if ms >= 3_600_000 {
        format!("{} h", float(ms as f64 / 3_600_000.0, 1))
    } else {
        format!("{} min", ms / 60_000)
    }
}

/// Names of the severity ranks stored with warnings (0 info … 4 critical).
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// A warning's headline without its leading `TCP/445: `, for places that show the
/// port beside it already.
pub fn headline_after_port(h: &str) -> &str {
    match h.split_once(": ") {
        Some((head, rest))
            if head.split_once('/').is_some_and(|(p, n)| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    && n.parse::<u16>().is_ok()
            }) =>
        {
            rest
        }
        _ => h,
    }
}

pub fn severity_name(rank: u8) -> &'static str {
    SEVERITIES
        .get(usize::from(rank))
        .copied()
        .unwrap_or("critical")
}

/// A severity badge.
pub fn badge(rank: u8) -> String {
    let n = severity_name(rank);
    format!("<span class=\"sev sev-{n}\">{n}</span>")
}

/// Which nav entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Incidents,
    Warnings,
    Sensors,
    None,
}

/// The one layout: head, nav bar with search, user and logout form, the body.
pub fn layout(title: &str, user: &WebUser, nav: Nav, body: &str) -> String {
    layout_with(title, user, nav, body, None)
}

/// `layout` for a page that reloads itself every `refresh` seconds (a meta refresh:
/// no script, so it works offline and under the content security policy).
pub fn layout_with(
    title: &str,
    user: &WebUser,
    nav: Nav,
    body: &str,
    refresh: Option<u32>,
) -> String {
    let item = |n: Nav, href: &str, label: &str| {
        let cur = if n == nav {
            " aria-current=\"page\" class=\"current\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{cur}>{label}</a>")
    };
    let mut s = String::with_capacity(body.len() + 2048);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{title} · scanwatch</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\">\
         <script src=\"/static/app.js\" defer></script></head><body>\
         <header class=\"top\"><nav aria-label=\"main\"><span class=\"brand\">scanwatch</span>{o}{i}{w}{se}</nav>\
         <form class=\"search\" method=\"get\" action=\"/search\" role=\"search\">\
         <input type=\"search\" name=\"q\" placeholder=\"port (445, udp/53) or IP\" aria-label=\"port or IP\">\
         <button type=\"submit\">go</button></form>\
         <div class=\"user\"><span id=\"user-name\">{name}</span> ({role})\
         <form method=\"post\" action=\"/logout\" class=\"logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">log out</button></form></div>\
         </header><main>{body}</main></body></html>\n",
        title = esc(title),
        refresh = refresh.map_or(String::new(), |n| format!(
            "<meta http-equiv=\"refresh\" content=\"{n}\">"
        )),
        o = item(Nav::Overview, "/", "Overview"),
        i = item(Nav::Incidents, "/incidents", "Incidents"),
        w = item(Nav::Warnings, "/alerts", "Warnings"),
        se = item(Nav::Sensors, "/sensors", "Sensors"),
        name = esc(&user.name),
        role = esc(user.role.name()),
        csrf = esc(&user.csrf),
    );
    s
}

/// A rendered page. The dashboard's guard (`web::guard`) adds the content security
/// policy and the other security headers to every HTML answer.
pub fn page(html: String) -> Response {
    let mut r = axum::response::Html(html).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Errors of the pages, answered as small HTML pages (the JSON API has `AppError`).
#[derive(Debug)]
pub enum PageError {
    BadRequest(String),
    NotFound(String),
    /// The centre cannot answer now (the stored aggregates being counted
    /// again): 503 with `Retry-After`, as the API answers.
    Busy(String),
    Internal(String),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(m) => PageError::NotFound(m),
            AppError::BadRequest(m) => PageError::BadRequest(m),
            AppError::Busy(m) => PageError::Busy(m),
            other => PageError::Internal(format!("{other:?}")),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            PageError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            PageError::Internal(m) => {
                tracing::error!(error = %m, "internal error: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{code} · scanwatch</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
             <body><main class=\"error\"><h1>{code}</h1><p id=\"error\">{msg}</p>\
             <p><a href=\"/\">back to the overview</a></p></main></body></html>\n",
            code = status.as_u16(),
            msg = esc(&msg),
        );
        let mut r = page(html);
        *r.status_mut() = status;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read the centre cannot answer now (the aggregates being counted again)
    /// is a 503 page with `Retry-After`, as the API answers, not a 500.
    #[test]
    fn a_busy_read_is_a_503_page() {
        let r = PageError::from(AppError::Busy("try again shortly".into())).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        let r = PageError::from(AppError::internal("x")).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }

    /// A damaged aggregate met again during its recount is not a read a
    /// recount will mend: a 500 (the way out only in the log), in the API and
    /// on a page, while a first one is a 503 to try again.
    #[test]
    fn a_damage_that_came_back_is_a_500_and_a_first_one_a_503() {
        use scanwatch_store::StoreError;
        let came_back = || StoreError::DamageRecurs("a cell of tcp/445".into());
        for r in [
            AppError::from(came_back()).into_response(),
            PageError::from(AppError::from(came_back())).into_response(),
        ] {
            assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(r.headers().get(header::RETRY_AFTER).is_none());
        }
        let first = AppError::from(StoreError::DamagedAggregate("a cell".into())).into_response();
        assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn the_port_is_not_said_twice() {
        assert_eq!(headline_after_port("TCP/445: 339 sources"), "339 sources");
        assert_eq!(headline_after_port("UDP/53: x: y"), "x: y");
        assert_eq!(
            headline_after_port("sweep from 203.0.113.0/24: 32 sources"),
            "sweep from 203.0.113.0/24: 32 sources"
        );
        assert_eq!(headline_after_port("no port here"), "no port here");
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{1}b"), "a\u{fffd}b");
    }

    #[test]
    fn formats_numbers_and_dates() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(float(2.50, 2), "2.5");
        assert_eq!(float(12345.6, 1), "12,346");
        assert_eq!(when(Timestamp(0)), "1970-01-01 00:00 UTC");
        // 2026-11-26T10:40:00Z
        assert_eq!(when(Timestamp(1_795_689_600_000)), "2026-11-26 10:40 UTC");
        // The end of a 30 s window keeps its seconds.
        assert_eq!(
            when(Timestamp(1_795_689_630_000)),
            "2026-11-26 10:40:30 UTC"
        );
        assert_eq!(span(30_000), "30 s");
        assert_eq!(span(3_600_000), "1 h");
        assert_eq!(
            window_el(Timestamp(0), Timestamp(30_000)),
            "<time datetime=\"1970-01-01T00:00:00Z\">1970-01-01 00:00 UTC</time> <span class=\"note\">· 30 s</span>"
        );
        assert_eq!(url_part("a b/c"), "a%20b%2Fc");
    }
}
