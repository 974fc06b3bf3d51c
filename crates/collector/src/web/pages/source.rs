//! One source address: its activity across ports and sensors.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

/// How many days of a source's activity its timeline shows (its last ones).
const TIMELINE_DAYS: i64 = 30;

/// `GET /sources/{ip}`: what one address did, per port, and the warnings naming it.
pub(super) async fn source_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let Path(ip) = path.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| PageError::BadRequest("not an IP address".into()))?;
    let (now, rows, alerts, days, benign) = st
        .with_reader(move |s| {
            let now = newest_window(s)?;
            let rows = s.source_activity(addr, Timestamp(i64::MIN), Timestamp(i64::MAX))?;
            let alerts: Vec<AlertRow> = s
                .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)?
                .into_iter()
                .filter(|a| warning_of(a).names_source(addr))
                .collect();
            // Its events per day over its last TIMELINE_DAYS days of activity (one
            // query per day on the store's (source, time) index).
            let mut days = Vec::new();
            if let Some(last) = rows.iter().map(|r| r.last_seen).max() {
                let first = rows.iter().map(|r| r.first_seen).min().unwrap_or(last);
                let end = last.floor(DAY).0 + DAY;
                let start = first.floor(DAY).0.max(end - TIMELINE_DAYS * DAY);
                let mut d = start;
                while d < end {
                    let n: u64 = s
                        .source_activity(addr, Timestamp(d), Timestamp(d + DAY))?
                        .iter()
                        .map(|r| r.events)
                        .sum();
                    days.push((d, n));
                    d += DAY;
                }
            }
            // Whether an imported benign-scanner list names it (and which).
            let benign = crate::feeds::stored_benign(s)?
                .label(addr)
                .map(str::to_string);
            Ok((now, rows, alerts, days, benign))
        })
        .await?;
    let mut b = String::with_capacity(16 * 1024);
    let _ = write!(
        b,
        "<h1>Source <span id=\"source-ip\">{}</span></h1>",
        esc(&addr.to_string())
    );
    b.push_str(&now_note(now.map(|n| n.1)));
    if let Some(label) = &benign {
        let _ = write!(
            b,
            "<p class=\"benign\" id=\"benign\">Known benign scanner: <strong>{}</strong> (an imported list; \
             its events are kept out of every port's counts and it is never put on the blocklist).</p>",
            esc(label)
        );
    }
    if let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.first_seen).min(),
        rows.iter().map(|r| r.last_seen).max(),
    ) {
        let _ = write!(
            b,
            "<dl class=\"numbers\" id=\"source-facts\"><div><dt>first seen</dt><dd data-field=\"first-seen\">{}</dd></div>\
             <div><dt>last seen</dt><dd data-field=\"last-seen\">{}</dd></div>\
             <div><dt>sensors (most on one port)</dt><dd data-field=\"sensors\">{}</dd></div>\
             <div><dt>warnings naming it</dt><dd data-field=\"warnings\">{}</dd></div></dl>",
            time_el(first),
            time_el(last),
            num(rows.iter().map(|r| r.sensors).max().unwrap_or(0)),
            num(alerts.len() as u64),
        );
    }
    if days.len() > 1 {
        let pts: Vec<svg::Point> = days
            .iter()
            .map(|&(t, n)| svg::Point {
                t,
                v: n as f64,
                band: None,
                known: true,
            })
            .collect();
        let markers: Vec<Marker> = alerts
            .iter()
            .map(|a| marker_of(a, &warning_of(a), false))
            .collect();
        let (from, to) = (days[0].0, days[days.len() - 1].0 + DAY);
        let _ = write!(
            b,
            "<figure id=\"source-timeline\"><figcaption>events per day</figcaption>{}{}</figure>",
            line_chart(&Chart {
                series: "events",
                id: "source-timeline-chart",
                title: format!("{addr}: events per day"),
                desc: format!(
                    "events from {addr} per day from {} to {}, with the warnings naming it marked",
                    when(Timestamp(from)),
                    when(Timestamp(to))
                ),
                from,
                to,
                step: DAY,
                points: &pts,
                markers: &markers,
                log: false,
            }),
            legend("events", false, true)
        );
    }
    let total: u64 = rows.iter().map(|r| r.events).sum();
    let _ = write!(
        b,
        "<p><span data-field=\"events\">{}</span> unsolicited events on <span data-field=\"ports\">{}</span> ports \
         in the stored raw events (kept for the events retention, 30 days by default).</p>",
        num(total),
        rows.len()
    );
    if !rows.is_empty() {
        b.push_str(
            "<table id=\"source-ports\" class=\"data\"><thead><tr><th>port</th><th>service</th><th class=\"n\">events</th>\
             <th class=\"n\">sensors</th><th class=\"n\">targets</th><th>first seen</th><th>last seen</th></tr></thead><tbody>",
        );
        for r in rows.iter().take(500) {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"n\" data-field=\"events\">{}</td><td class=\"n\" data-field=\"sensors\">{}</td>\
                 <td class=\"n\" data-field=\"targets\">{}</td><td>{}</td><td>{}</td></tr>",
                port_link(r.proto, r.port),
                esc(&service_name(&st, r.proto, r.port)),
                num(r.events),
                num(r.sensors),
                num(r.targets),
                time_el(r.first_seen),
                time_el(r.last_seen),
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("<section id=\"source-warnings\"><h2>Warnings naming it as a top source</h2>");
    if alerts.is_empty() {
        b.push_str("<p>None.</p>");
    } else {
        b.push_str("<ul>");
        for a in alerts.iter().take(100) {
            let v = warning_of(a);
            let _ = write!(
                b,
                "<li>{} {} <a href=\"/alerts/{}\">{}</a> {}</li>",
                badge(a.severity_rank),
                port_link(a.proto, a.port),
                a.id,
                esc(&v.headline),
                window_el(a.window_start, v.window_end)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
    Ok(page(layout(
        &format!("Source {addr}"),
        &user,
        Nav::None,
        &b,
    )))
}
