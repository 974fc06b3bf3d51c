//! The warnings list, filtered and paged.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

/// `GET /alerts?severity=info|low|medium|high|critical&range=24h|7d|30d|all`.
pub(super) async fn alerts_page(
    user: WebUser,
    State(st): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = params(q)?;
    let min = match q.get("severity").map(String::as_str) {
        None | Some("") => 0u8,
        Some(s) => SEVERITIES
            .iter()
            .position(|n| *n == s)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| {
                PageError::BadRequest("severity must be info, low, medium, high or critical".into())
            })?,
    };
    let ranges = [("24h", DAY), ("7d", WEEK), ("30d", 30 * DAY), ("all", 0)];
    let (range_name, range) = choice(&q, "range", &ranges, 3)?;
    let (now, rows) = st
        .with_reader(move |s| {
            let now = newest_window(s)?;
            let from = match now {
                Some((_, end)) if range > 0 => end.0.saturating_sub(range),
                _ => i64::MIN,
            };
            Ok((now, s.alerts(Timestamp(from), Timestamp(i64::MAX), min)?))
        })
        .await?;
    let mut b = String::with_capacity(32 * 1024);
    b.push_str("<h1>Warnings</h1>");
    b.push_str(&now_note(now.map(|n| n.1)));
    b.push_str("<nav class=\"switch\" aria-label=\"filters\">at least: ");
    for (i, n) in SEVERITIES.iter().enumerate() {
        switch_link(
            &mut b,
            &format!("/alerts?severity={n}&amp;range={range_name}"),
            n,
            i == usize::from(min),
        );
    }
    b.push_str("· range: ");
    for (n, _) in ranges {
        switch_link(
            &mut b,
            &format!("/alerts?severity={}&amp;range={n}", severity_name(min)),
            n,
            n == range_name,
        );
    }
    b.push_str("</nav>");
    let _ = write!(
        b,
        "<p><span data-field=\"count\">{}</span> warnings, most severe first, then newest.</p>",
        rows.len()
    );
    if !rows.is_empty() {
        b.push_str(
            "<table id=\"warnings\" class=\"data\"><thead><tr><th>severity</th><th>window</th><th>port</th>\
             <th>kind</th><th class=\"n\">sources</th><th class=\"n\">×normal</th><th>confidence</th><th>headline</th></tr></thead><tbody>",
        );
        for a in rows.iter().take(1000) {
            let v = warning_of(a);
            let _ = write!(
                b,
                "<tr data-alert-id=\"{id}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\" data-field=\"sources\">{}</td><td class=\"n\" data-field=\"times_normal\">{}</td>\
                 <td>{}</td><td><a href=\"/alerts/{id}\">{}</a></td></tr>",
                badge(a.severity_rank),
                window_el(a.window_start, v.window_end),
                port_link(a.proto, a.port),
                esc(&a.kind),
                num(v.sources),
                float(v.times_normal, 1),
                esc(v.confidence.name()),
                esc(headline_after_port(&v.headline)),
                id = a.id,
            );
        }
        b.push_str("</tbody></table>");
        if rows.len() > 1000 {
            b.push_str("<p class=\"note\">The first 1,000 are shown; narrow the range or raise the severity.</p>");
        }
    }
    Ok(page(layout("Warnings", &user, Nav::Warnings, &b)))
}
