//! One source address: its activity across ports and sensors.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

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
    let (now, rows, alerts) = st
        .with_reader(move |s| {
            let now = newest_window(s)?;
            let rows = s.source_activity(addr, Timestamp(i64::MIN), Timestamp(i64::MAX))?;
            let alerts: Vec<AlertRow> = s
                .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)?
                .into_iter()
                .filter(|a| warning_of(a).names_source(addr))
                .collect();
            Ok((now, rows, alerts))
        })
        .await?;
    let mut b = String::with_capacity(16 * 1024);
    let _ = write!(
        b,
        "<h1>Source <span id=\"source-ip\">{}</span></h1>",
        esc(&addr.to_string())
    );
    b.push_str(&now_note(now.map(|n| n.1)));
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
                time_el(a.window_start)
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
