//! Feeds of the stored warnings for other tools: an Atom feed (`/feeds/alerts.atom`)
//! for feed readers and chat bridges, and a blocklist of the current warnings' top
//! sources (`/api/v1/blocklist?format=txt|nft`) with an expiry. Both read the warnings
//! as stored (their JSON), so they say exactly what the API says.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use scanwatch_alert::Warning;
use scanwatch_event::Timestamp;
use scanwatch_store::Role;
use serde::Deserialize;

use crate::api::authorize;
use crate::{AppError, AppState};

/// Warnings in the Atom feed, newest first.
pub const FEED_ENTRIES: usize = 100;

/// The five XML escapes. Hand-written: an XML writer crate is not needed for a
/// flat feed of text elements.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// The Atom document for stored warnings `(id, warning)`, newest first.
pub fn atom(rows: &[(i64, Warning)]) -> String {
    let updated = rows
        .iter()
        .map(|(_, v)| v.window_end)
        .max()
        .map_or("1970-01-01T00:00:00Z".to_string(), Timestamp::to_rfc3339);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n  <id>urn:scanwatch:alerts</id>\n  <title>scanwatch warnings</title>\n  <updated>{}</updated>\n  <author><name>scanwatch</name></author>\n  <generator>scanwatch</generator>\n",
        xml(&updated)
    );
    for (id, v) in rows {
        let severity = v.severity.name();
        out.push_str(&format!(
            "  <entry>\n    <id>urn:scanwatch:alert:{id}</id>\n    <title>[{}] {}</title>\n    <updated>{}</updated>\n    <link rel=\"alternate\" type=\"application/json\" href=\"/api/v1/alerts/{id}\"/>\n    <category term=\"{}\"/>\n    <category term=\"{}\"/>\n    <summary>{}</summary>\n  </entry>\n",
            xml(&severity.to_uppercase()),
            xml(&v.headline),
            xml(&v.window_end.to_rfc3339()),
            xml(severity),
            xml(v.confidence.name()),
            xml(&v.summary),
        ));
    }
    out.push_str("</feed>\n");
    out
}

/// `GET /feeds/alerts.atom` (analyst token).
#[utoipa::path(get, path = "/feeds/alerts.atom", tag = "feeds",
    security(("api_token" = [])),
    responses((status = 200, description = "Atom feed of the 100 newest warnings", body = String, content_type = "application/atom+xml"),
        crate::openapi::ReadErrors))]
pub async fn alerts_atom(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let rows = st
        .with_reader(|s| s.alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0))
        .await?;
    let mut parsed: Vec<(i64, Warning)> = rows
        .iter()
        .filter_map(|r| crate::read_warning(r).map(|v| (r.id, v)))
        .collect();
    parsed.sort_by(|a, b| b.1.window_end.cmp(&a.1.window_end).then(b.0.cmp(&a.0)));
    parsed.truncate(FEED_ENTRIES);
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        atom(&parsed),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlocklistQuery {
    /// `txt` (default) or `nft`.
    #[param(value_type = Option<crate::openapi::BlocklistFormat>)]
    pub format: Option<String>,
    /// Warnings whose window ended at most this many hours before the newest one;
    /// also the entries' lifetime (default 24).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 720)]
    pub hours: Option<String>,
}

/// The blocklist: the top sources of the warnings within `hours` of the newest
/// one, sorted and unique, with the expiry (newest warning's end + hours).
pub fn blocklist(rows: &[Warning], hours: i64) -> (Vec<std::net::IpAddr>, Option<Timestamp>) {
    let Some(newest) = rows.iter().map(|v| v.window_end.0).max() else {
        return (Vec::new(), None);
    };
    let from = newest - hours * 3_600_000;
    let mut ips: Vec<std::net::IpAddr> = rows
        .iter()
        .filter(|v| v.window_end.0 >= from)
        .flat_map(|v| v.top_sources.iter().map(|s| s.ip))
        .collect();
    ips.sort();
    ips.dedup();
    (ips, Some(Timestamp(newest + hours * 3_600_000)))
}

/// The benign-scanner lists imported into the store (`scanwatch intel import
/// benign`, kind `ContextKind::Benign`) as one set; unreadable entries are left out.
pub fn stored_benign(
    s: &dyn scanwatch_store::ContextStore,
) -> Result<scanwatch_context::benign::BenignSet, scanwatch_store::StoreError> {
    let nets: Vec<scanwatch_context::benign::BenignNet> = s
        .context_items(scanwatch_store::ContextKind::Benign)?
        .iter()
        .filter_map(|i| serde_json::from_str(&i.json).ok())
        .collect();
    Ok(scanwatch_context::benign::BenignSet::new(&nets))
}

/// The blocklist as an nftables file: two sets with per-element timeouts and a
/// chain dropping their traffic, in its own table that replaces itself on reload.
pub fn blocklist_nft(ips: &[std::net::IpAddr], hours: i64) -> String {
    use crate::blocklist::{nft_script, DEFAULT_NFT_TABLE};
    nft_script(
        ips,
        hours * 3600,
        DEFAULT_NFT_TABLE,
        &format!("top sources of current warnings; entries expire after {hours}h"),
    )
}

/// `GET /api/v1/blocklist?format=txt|nft&hours=N` (analyst token).
#[utoipa::path(get, path = "/api/v1/blocklist", tag = "feeds", params(BlocklistQuery),
    security(("api_token" = [])),
    responses((status = 200, description = "The top sources of the recent warnings, as plain text or an nftables file", body = String, content_type = "text/plain"),
        crate::openapi::ReadErrors))]
pub async fn blocklist_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<BlocklistQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    authorize(&st, &headers, Role::Analyst).await?;
    let Query(q) = q.map_err(crate::api::query_error)?;
    let hours: i64 = match &q.hours {
        None => 24,
        Some(h) => h
            .parse()
            .ok()
            .filter(|h| (1..=24 * 30).contains(h))
            .ok_or_else(|| AppError::BadRequest("hours must be 1-720".into()))?,
    };
    // The benign-scanner lists as imported now, read at every request: a warning
    // stored before its sources were listed as benign keeps them in its top
    // sources, and they must not be blocked.
    let (rows, benign) = st
        .with_reader(|s| {
            Ok((
                s.alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)?,
                stored_benign(s)?,
            ))
        })
        .await?;
    let values: Vec<Warning> = rows.iter().filter_map(crate::read_warning).collect();
    let (mut ips, expires) = blocklist(&values, hours);
    ips.retain(|ip| !benign.contains(*ip));
    let body = match q.format.as_deref().unwrap_or("txt") {
        "txt" => {
            let mut s = format!(
                "# scanwatch blocklist: top sources of the warnings of the last {hours}h; expires {}\n",
                expires.map_or("-".into(), |t| t.to_rfc3339())
            );
            for ip in &ips {
                s.push_str(&format!("{ip}\n"));
            }
            s
        }
        "nft" => blocklist_nft(&ips, hours),
        _ => return Err(AppError::BadRequest("format must be txt or nft".into())),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(end: &str, ips: &[&str], headline: &str) -> Warning {
        serde_json::from_value(serde_json::json!({
            "type": "alert", "severity": "critical", "confidence": "likely",
            "window_end": end, "headline": headline, "summary": "a & b <c>",
            "top_sources": ips.iter().map(|ip| serde_json::json!({"ip": ip, "events": 1})).collect::<Vec<_>>(),
            "alert_kind": "surge", "protocol": "tcp", "port": 1025, "score": 5.0,
            "window_start": end, "episode_start": end,
        }))
        .unwrap()
    }

    #[test]
    fn atom_escapes_and_lists_newest_first() {
        let rows = vec![
            (2, alert("2026-11-23T03:00:00Z", &[], "TCP/1025: <b>")),
            (1, alert("2026-11-23T02:00:00Z", &[], "x")),
        ];
        let a = atom(&rows);
        assert!(a.starts_with("<?xml"));
        assert!(a.contains("<updated>2026-11-23T03:00:00Z</updated>"));
        assert!(a.contains("<title>[CRITICAL] TCP/1025: &lt;b&gt;</title>"));
        assert!(a.contains("<summary>a &amp; b &lt;c&gt;</summary>"));
        assert!(a.find("alert:2").unwrap() < a.find("alert:1").unwrap());
        assert_eq!(a.matches("<entry>").count(), 2);
    }

    #[test]
    fn blocklist_takes_recent_warnings_and_expires() {
        let rows = vec![
            alert("2026-11-25T10:00:00Z", &["192.0.2.9", "2001:db8::7"], "a"),
            alert("2026-11-25T08:00:00Z", &["192.0.2.1", "192.0.2.9"], "b"),
            alert("2026-11-20T08:00:00Z", &["198.51.100.1"], "old"),
        ];
        let (ips, exp) = blocklist(&rows, 24);
        let s: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(s, ["192.0.2.1", "192.0.2.9", "2001:db8::7"]);
        assert_eq!(exp.unwrap().to_rfc3339(), "2026-11-26T10:00:00Z");
        let nft = blocklist_nft(&ips, 24);
        assert!(nft.contains("elements = { 192.0.2.1 timeout 24h, 192.0.2.9 timeout 24h }"));
        assert!(nft.contains("elements = { 2001:db8::7 timeout 24h }"));
        assert!(blocklist(&[], 24).0.is_empty());
        assert!(!blocklist_nft(&[], 1).contains("elements"));
    }
}
