//! The overview: the busiest ports now, the newest warnings, sensors at a glance.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

struct OverviewData {
    now: Option<(Timestamp, Timestamp)>,
    /// The latest window's cells, then the earlier windows (last 7 days) of its top
    /// ten ports.
    rows: Vec<WindowRow>,
    alerts: Vec<AlertRow>,
    sensors: Vec<SensorRecord>,
}

/// The ten ports of a window with the most sources (then events).
fn top_ten<'a>(rows: impl Iterator<Item = &'a WindowRow>) -> Vec<&'a WindowRow> {
    let mut v: Vec<&WindowRow> = rows.collect();
    v.sort_by(|a, b| {
        b.sources
            .cmp(&a.sources)
            .then(b.events.cmp(&a.events))
            .then((a.proto, a.port).cmp(&(b.proto, b.port)))
    });
    v.truncate(10);
    v
}

/// Reads what the overview shows. The history is read for the ten ports only, by
/// their primary key: reading every port's week (`windows_between`) costs ~0.3 s
/// with 200 ports, as each row carries its top-source JSON and is found through
/// the time index.
fn overview_data(s: &dyn Store) -> Result<OverviewData, StoreError> {
    let now = newest_window(s)?;
    let (mut rows, alerts) = match now {
        Some((start, end)) => (
            s.windows_between(start, end)?,
            s.alerts(Timestamp(end.0.saturating_sub(DAY)), Timestamp(i64::MAX), 0)?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    if let Some((start, _)) = now {
        let top: Vec<(u8, u16)> = top_ten(rows.iter().filter(|r| r.window_start == start))
            .iter()
            .map(|r| (r.proto, r.port))
            .collect();
        for (proto, port) in top {
            rows.extend(s.port_history(
                proto,
                port,
                Timestamp(start.0.saturating_sub(WEEK)),
                start,
            )?);
        }
    }
    Ok(OverviewData {
        now,
        rows,
        alerts,
        sensors: s.sensors()?,
    })
}

/// `GET /`: top ports of the latest window against their baseline, active
/// warnings, sensors reporting.
pub(super) async fn overview(
    user: WebUser,
    State(st): State<AppState>,
) -> Result<Response, PageError> {
    let clock = (st.clock)();
    let d = st.with_reader(|s| overview_data(s)).await?;
    Ok(page(layout(
        "Overview",
        &user,
        Nav::Overview,
        &render_overview(&st, &d, clock),
    )))
}

fn render_overview(st: &AppState, d: &OverviewData, clock: Timestamp) -> String {
    let mut b = String::with_capacity(32 * 1024);
    b.push_str("<h1>Overview</h1>");
    b.push_str(&now_note(d.now.map(|n| n.1)));
    b.push_str("<div class=\"cols\">");
    // Warnings of the last 24 h, one line per surge: the windows of one surge share
    // protocol, port and episode start, and are listed most severe first.
    let mut surges: Vec<(&AlertRow, Value, usize)> = Vec::new();
    for a in &d.alerts {
        let v = parse_json(a);
        let key = |x: &Value| {
            (
                jstr(x, "episode_start").to_string(),
                jstr(x, "alert_kind").to_string(),
            )
        };
        match surges
            .iter_mut()
            .find(|(r, w, _)| r.proto == a.proto && r.port == a.port && key(w) == key(&v))
        {
            Some(s) => s.2 += 1,
            None => surges.push((a, v, 1)),
        }
    }
    let mut counts = [0usize; 5];
    for (a, _, _) in &surges {
        counts[usize::from(a.severity_rank.min(4))] += 1;
    }
    b.push_str("<section id=\"active-warnings\" class=\"card\"><h2>Surges warned of, last 24 h</h2><ul class=\"counts\">");
    for rank in (0..5u8).rev() {
        let n = counts[usize::from(rank)];
        let _ = write!(
            b,
            "<li><a href=\"/alerts?severity={name}&amp;range=24h\">{badge}</a> <span data-field=\"warnings-{name}\">{n}</span></li>",
            name = severity_name(rank),
            badge = badge(rank),
        );
    }
    b.push_str("</ul><p class=\"note\">By the peak severity of each surge; a surge is the run of warning windows of one port.</p>");
    if surges.is_empty() {
        b.push_str("<p>No warnings in the last 24 hours.</p>");
    } else {
        b.push_str("<ol class=\"warnings\">");
        for (a, v, n) in surges.iter().take(15) {
            let _ = write!(
                b,
                "<li>{} {} <a href=\"/alerts/{}\">{}</a> {} <span class=\"note\">{} warning window{} since {}</span></li>",
                badge(a.severity_rank),
                port_link(a.proto, a.port),
                a.id,
                esc(jstr(v, "headline")),
                time_el(a.window_start),
                n,
                if *n == 1 { "" } else { "s" },
                esc(jstr(v, "episode_start")),
            );
        }
        b.push_str("</ol>");
        let _ = write!(
            b,
            "<p><a href=\"/alerts?range=24h\">all {} warning windows of the last 24 h</a></p>",
            d.alerts.len()
        );
    }
    b.push_str("</section>");
    // Sensors reporting (last_seen is stamped with the server's clock on receipt).
    let live: Vec<&SensorRecord> = d.sensors.iter().filter(|s| !s.revoked).collect();
    let seen_within = |ms: i64| {
        live.iter()
            .filter(|s| s.last_seen.is_some_and(|t| clock.0 - t.0 <= ms))
            .count()
    };
    let _ = write!(
        b,
        "<section id=\"sensors-reporting\" class=\"card\"><h2>Sensors</h2><ul class=\"counts\">\
         <li>sent a batch in the last hour: <span data-field=\"sensors-hour\">{}</span></li>\
         <li>in the last day: <span data-field=\"sensors-day\">{}</span></li>\
         <li>active: <span data-field=\"sensors-total\">{}</span> (revoked: {})</li></ul>\
         <p class=\"note\">By the server's clock when batches arrived. <a href=\"/sensors\">all sensors</a></p></section>",
        seen_within(HOUR),
        seen_within(DAY),
        live.len(),
        d.sensors.len() - live.len(),
    );
    b.push_str("</div>");
    // Top ports of the latest window.
    b.push_str("<section id=\"top-ports\"><h2>Top 10 ports, latest window</h2>");
    let Some((start, end)) = d.now else {
        b.push_str("<p>No data yet.</p></section>");
        return b;
    };
    let wlen = (end.0 - start.0).max(60_000);
    let from = start.0.saturating_sub(WEEK);
    let n_hist = usize::try_from(WEEK / wlen).unwrap_or(168).max(1);
    let latest = top_ten(d.rows.iter().filter(|r| r.window_start == start));
    let index: HashMap<(u8, u16), usize> = latest
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.proto, r.port), i))
        .collect();
    // One pass over the rows: sources per window for the ten ports (silent = 0).
    let mut series = vec![vec![0.0f64; n_hist + 1]; latest.len()];
    for r in &d.rows {
        if let Some(&i) = index.get(&(r.proto, r.port)) {
            if let Some(slot) = usize::try_from((r.window_start.0 - from) / wlen)
                .ok()
                .and_then(|k| series[i].get_mut(k))
            {
                *slot = r.sources as f64;
            }
        }
    }
    let warned: std::collections::HashSet<(u8, u16)> = d
        .alerts
        .iter()
        .filter(|a| a.window_start == start)
        .map(|a| (a.proto, a.port))
        .collect();
    // Windows before the first stored one are unknown, not silent: the baseline and
    // the sparklines start there (the detector's history starts with its data too).
    // The first stored window is that of the ten ports' histories (busy ports are
    // seen from the start).
    let k0 = d
        .rows
        .iter()
        .map(|r| r.window_start)
        .min()
        .and_then(|t| usize::try_from((t.0 - from) / wlen).ok())
        .unwrap_or(0)
        .min(n_hist);
    let _ = write!(
        b,
        "<p class=\"note\">Window {} to {} ({}). Baseline: median sources of the previous {} windows \
         (7 days, or since the first stored window; silent windows count as zero); ×normal = sources ÷ max(baseline, 1), as the detector computes it. \
         Sparklines: sources per window over the 7 days, dashed line the baseline.</p>",
        time_el(start),
        time_el(end),
        span(wlen),
        n_hist - k0
    );
    b.push_str(
        "<table id=\"top-ports-table\" class=\"data\"><thead><tr><th>#</th><th>port</th><th>service</th>\
         <th class=\"n\">sources</th><th class=\"n\">baseline</th><th class=\"n\">×normal</th>\
         <th class=\"n\">events</th><th class=\"n\">sensors</th><th>7 days</th></tr></thead><tbody>",
    );
    for (i, r) in latest.iter().enumerate() {
        let hist = &series[i][k0..n_hist];
        let base = series::median(&mut hist.to_vec());
        let times = r.sources as f64 / base.max(1.0);
        let hot = if warned.contains(&(r.proto, r.port)) {
            " class=\"warned\""
        } else {
            ""
        };
        let label = format!(
            "{}/{} sources per window, 7 days",
            proto_label(r.proto),
            r.port
        );
        let _ = write!(
            b,
            "<tr{hot} data-port=\"{proto}/{port}\"><td>{rank}</td><td>{link}</td><td>{svc}</td>\
             <td class=\"n\" data-field=\"sources\">{src}</td><td class=\"n\" data-field=\"baseline\">{base}</td>\
             <td class=\"n\" data-field=\"times_normal\">{times}</td><td class=\"n\" data-field=\"events\">{ev}</td>\
             <td class=\"n\" data-field=\"sensors\">{sens}</td><td>{spark}</td></tr>",
            proto = esc(&Protocol::from_number(r.proto).name()),
            port = r.port,
            rank = i + 1,
            link = port_link(r.proto, r.port),
            svc = esc(&service_name(st, r.proto, r.port)),
            src = num(r.sources),
            base = float(base, 1),
            times = float(times, 1),
            ev = num(r.events),
            sens = num(r.sensors),
            spark = sparkline("sources", &label, &series[i][k0..], Some(base)),
        );
    }
    b.push_str("</tbody></table></section>");
    b
}
