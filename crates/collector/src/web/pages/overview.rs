//! The overview: the open incidents first, the busiest ports now, sensors at a
//! glance.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

struct OverviewData {
    now: Option<(Timestamp, Timestamp)>,
    /// The latest window's cells, then the earlier windows (last 7 days) of its top
    /// ten ports.
    rows: Vec<WindowRow>,
    alerts: Vec<AlertRow>,
    /// Incidents with a warning in the last 30 days.
    incidents: Vec<crate::incidents::Incident>,
    sensors: Vec<SensorRecord>,
    /// The ports of the last 24 h against the 24 h before (exact distinct counts).
    movers: Vec<Mover>,
}

/// A port whose sources moved: the last 24 h against the 24 h before.
struct Mover {
    proto: u8,
    port: u16,
    sources: u64,
    before: u64,
    events: u64,
}

impl Mover {
    /// The change in sources, in percent (`None`: nothing the day before).
    fn change(&self) -> Option<f64> {
        (self.before > 0)
            .then(|| (self.sources as f64 - self.before as f64) / self.before as f64 * 100.0)
    }
}

/// A mover needs at least this many sources in the last 24 h (a port going from
/// one source to three is not news).
const MOVER_MIN_SOURCES: u64 = 10;

/// The ports whose distinct sources rose most over the last 24 h against the 24 h
/// before, as the Internet Storm Center's port reports compare days: new ports first
/// (nothing the day before), then by the change; at most ten.
fn movers(s: &dyn Store, end: Timestamp) -> Result<Vec<Mover>, StoreError> {
    use scanwatch_store::TopBy;
    let day = Timestamp(end.0.saturating_sub(DAY));
    let now = s.top_ports(day, end, TopBy::Sources, 1000)?;
    let before: HashMap<(u8, u16), u64> = s
        .top_ports(
            Timestamp(day.0.saturating_sub(DAY)),
            day,
            TopBy::Sources,
            1000,
        )?
        .into_iter()
        .map(|p| ((p.proto, p.port), p.sources))
        .collect();
    let mut v: Vec<Mover> = now
        .into_iter()
        .filter(|p| p.sources >= MOVER_MIN_SOURCES)
        .map(|p| Mover {
            proto: p.proto,
            port: p.port,
            sources: p.sources,
            before: before.get(&(p.proto, p.port)).copied().unwrap_or(0),
            events: p.events,
        })
        .filter(|m| m.sources > m.before)
        .collect();
    v.sort_by(|a, b| {
        let key = |m: &Mover| m.change().unwrap_or(f64::INFINITY);
        key(b)
            .total_cmp(&key(a))
            .then(b.sources.cmp(&a.sources))
            .then((a.proto, a.port).cmp(&(b.proto, b.port)))
    });
    v.truncate(10);
    Ok(v)
}

/// How far back the overview looks for open incidents.
const OPEN_SPAN: i64 = 30 * DAY;

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

/// Reads what the overview shows. The history is read for the ten ports only
/// (`port_history`): reading every port's week (`windows_between`) costs ~0.3 s
/// with 200 ports, as each row carries its top-source JSON.
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
    let incidents = match now {
        Some((_, end)) => crate::incidents::load(
            s,
            Timestamp(end.0.saturating_sub(OPEN_SPAN)),
            Timestamp(i64::MAX),
        )?,
        None => Vec::new(),
    };
    let movers = match now {
        Some((_, end)) => movers(s, end)?,
        None => Vec::new(),
    };
    Ok(OverviewData {
        now,
        rows,
        alerts,
        incidents,
        sensors: s.sensors()?,
        movers,
    })
}

/// `GET /`: top ports of the latest window against their baseline, active
/// warnings, sensors reporting.
pub(super) async fn overview(
    user: WebUser,
    State(st): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = params(q)?;
    let (_, refresh) = choice(&q, "refresh", &REFRESH, 0)?;
    let refresh = u32::try_from(refresh).ok().filter(|n| *n > 0);
    let clock = (st.clock)();
    let d = st.with_reader(|s| overview_data(s)).await?;
    let mut body = render_overview(&st, &d, clock);
    body.push_str(&match refresh {
        Some(n) => format!(
            "<p class=\"note\" id=\"refresh\">This page reloads every {n} s, so it can stay open on a screen. \
             <a href=\"/?refresh=off\">Stop reloading</a>.</p>"
        ),
        None => "<p class=\"note\" id=\"refresh\">Reloading is off. <a href=\"/\">Reload every 60 s</a>.</p>"
            .to_string(),
    });
    Ok(page(layout_with(
        "Overview",
        &user,
        Nav::Overview,
        &body,
        refresh,
    )))
}

/// `?refresh=`: seconds between reloads of the overview (default 60), or off.
const REFRESH: [(&str, i64); 3] = [("60", 60), ("off", 0), ("300", 300)];

fn render_overview(st: &AppState, d: &OverviewData, clock: Timestamp) -> String {
    let mut b = String::with_capacity(32 * 1024);
    b.push_str("<h1>Overview</h1>");
    b.push_str(&now_note(d.now.map(|n| n.1)));
    b.push_str("<div class=\"cols\">");
    // Open incidents (not resolved, not a false positive) of the last 30 days:
    // the running ones first, then by peak severity, newest first.
    use crate::incidents::{Disposition, Phase};
    let mut open: Vec<&crate::incidents::Incident> = d
        .incidents
        .iter()
        .filter(|i| {
            !matches!(
                i.state.state,
                Disposition::Resolved | Disposition::FalsePositive
            )
        })
        .collect();
    let sev = |i: &crate::incidents::Incident| {
        scanwatch_detect::Severity::parse(&i.peak_severity).map_or(0, |s| s as u8)
    };
    open.sort_by(|a, b| {
        (a.phase == Phase::Over)
            .cmp(&(b.phase == Phase::Over))
            .then(sev(b).cmp(&sev(a)))
            .then(b.start.cmp(&a.start))
    });
    let mut counts = [0usize; 5];
    for i in &open {
        counts[usize::from(sev(i).min(4))] += 1;
    }
    b.push_str("<section id=\"open-incidents\" class=\"card\"><h2>Open incidents</h2><ul class=\"counts\">");
    for rank in (0..5u8).rev() {
        let _ = write!(
            b,
            "<li>{badge} <span data-field=\"open-{name}\">{n}</span></li>",
            name = severity_name(rank),
            badge = badge(rank),
            n = counts[usize::from(rank)],
        );
    }
    b.push_str("</ul><p class=\"note\">Incidents of the last 30 days not resolved or marked a false positive, by their peak severity; an incident is the run of warning windows of one surge.</p>");
    if open.is_empty() {
        b.push_str("<p>No open incident.</p>");
    } else {
        b.push_str("<ol class=\"warnings\">");
        for i in open.iter().take(15) {
            let phase = match i.phase {
                Phase::Rising => "rising",
                Phase::AtPeak => "at peak",
                Phase::Falling => "falling",
                Phase::Over => "over",
            };
            let _ = write!(
                b,
                "<li data-incident-id=\"{id}\">{} {} <a href=\"/incidents/{id}\">{}</a> <span class=\"note\">{phase}, {}; {} window{} since {}</span></li>",
                badge(sev(i)),
                port_link(
                    Protocol::parse(&i.protocol).map_or(6, Protocol::number),
                    i.port
                ),
                esc(headline_after_port(&i.headline)),
                esc(&i.state.state.name().replace('_', " ")),
                i.windows,
                if i.windows == 1 { "" } else { "s" },
                esc(&scanwatch_event::parse_rfc3339(&i.start).map_or_else(|| i.start.clone(), when)),
                id = i.id,
            );
        }
        b.push_str("</ol>");
    }
    let _ = write!(
        b,
        "<p><a href=\"/incidents\">all incidents</a> · <a href=\"/alerts?range=24h\">the {} warning windows of the last 24 h</a></p></section>",
        d.alerts.len()
    );
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
    render_movers(&mut b, &d.movers);
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

/// The top movers: ports whose sources rose most against the day before.
fn render_movers(b: &mut String, movers: &[Mover]) {
    b.push_str("<section id=\"top-movers\"><h2>Top movers, last 24 h</h2>");
    let _ = write!(
        b,
        "<p class=\"note\">Ports with at least {MOVER_MIN_SOURCES} distinct sources in the last 24 h of event time whose \
         sources rose most against the 24 h before (exact distinct counts), new ports first.</p>"
    );
    if movers.is_empty() {
        b.push_str("<p>No port rose.</p></section>");
        return;
    }
    b.push_str(
        "<table class=\"data\"><thead><tr><th>port</th><th>what it is</th><th class=\"n\">sources</th>\
         <th class=\"n\">the day before</th><th class=\"n\">change</th><th class=\"n\">events</th></tr></thead><tbody>",
    );
    for m in movers {
        let p = Protocol::from_number(m.proto);
        let what = scanwatch_context::port_info(p, m.port).map_or_else(
            || "-".to_string(),
            |i| meaning(i.note).unwrap_or(i.name).to_string(),
        );
        let change = m
            .change()
            .map_or("new".to_string(), |c| format!("+{}%", float(c, 0)));
        let _ = write!(
            b,
            "<tr data-mover=\"{}/{}\"><td>{}</td><td>{}</td><td class=\"n\" data-field=\"sources\">{}</td>\
             <td class=\"n\" data-field=\"before\">{}</td><td class=\"n\" data-field=\"change\">{}</td><td class=\"n\">{}</td></tr>",
            p.name(),
            m.port,
            port_link(m.proto, m.port),
            esc(&what),
            num(m.sources),
            num(m.before),
            esc(&change),
            num(m.events),
        );
    }
    b.push_str("</tbody></table></section>");
}
