//! A port's page: its history, sources and warnings over a chosen range.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

fn parse_port(
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Protocol, u16), PageError> {
    let Path((proto, port)) = p.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let proto = match proto.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(PageError::BadRequest("protocol must be tcp or udp".into())),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| PageError::BadRequest("port must be 0-65535".into()))?;
    Ok((proto, port))
}

const RANGES: [(&str, i64); 3] = [("24h", DAY), ("7d", WEEK), ("30d", 30 * DAY)];
const WINDOWS: [(&str, i64); 3] = [("1h", HOUR), ("6h", 6 * HOUR), ("1d", DAY)];

struct PortData {
    now: Option<(Timestamp, Timestamp)>,
    rows: Vec<WindowRow>,
    alerts: Vec<AlertRow>,
}

/// `GET /ports/{proto}/{port}?range=24h|7d|30d&window=1h|6h|1d`.
pub(super) async fn port_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let (proto, port) = parse_port(path)?;
    let q = params(q)?;
    let (range_name, range) = choice(&q, "range", &RANGES, 1)?;
    let (window_name, window) = choice(&q, "window", &WINDOWS, 0)?;
    let (scale_name, _) = choice(&q, "scale", &SCALES, 0)?;
    let pn = proto.number();
    let d = st
        .with_reader(move |s| {
            let now = newest_window(s)?;
            let Some((_, end)) = now else {
                return Ok(PortData {
                    now,
                    rows: Vec::new(),
                    alerts: Vec::new(),
                });
            };
            let from = end.0.saturating_sub(range).saturating_sub(WEEK + window);
            Ok(PortData {
                now,
                rows: s.port_history(pn, port, Timestamp(from), end)?,
                alerts: s
                    .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)?
                    .into_iter()
                    .filter(|a| a.proto == pn && a.port == port)
                    .collect(),
            })
        })
        .await?;
    let title = format!("{}/{port}", proto.name().to_uppercase());
    let body = render_port(
        &st,
        &d,
        proto,
        port,
        (range_name, range),
        (window_name, window),
        scale_name,
    );
    Ok(page(layout(&title, &user, Nav::None, &body)))
}

fn render_port(
    st: &AppState,
    d: &PortData,
    proto: Protocol,
    port: u16,
    (range_name, range): (&str, i64),
    (window_name, window): (&str, i64),
    scale_name: &str,
) -> String {
    let label = format!("{}/{port}", proto.name().to_uppercase());
    let mut b = String::with_capacity(64 * 1024);
    let fact = st
        .context
        .read()
        .ok()
        .and_then(|c| c.ports.info(proto, port));
    let name = fact
        .as_ref()
        .map(|f| f.name.clone())
        .unwrap_or_else(|| scanwatch_context::service_name(proto, port).to_string());
    // What the port means for security first (the curated note), its service name
    // after (docs/dashboard.md).
    let (note, source) = fact.as_ref().map_or((String::new(), String::new()), |f| {
        (f.note.clone(), f.source.clone())
    });
    let _ = write!(
        b,
        "<h1>{} <span class=\"meaning\">{}</span></h1>",
        esc(&label),
        esc(meaning(&note).unwrap_or(&name))
    );
    let _ = write!(
        b,
        "<p class=\"service\" id=\"port-service\">service name <strong>{}</strong>{}{}</p>",
        esc(&name),
        if note.is_empty() {
            String::new()
        } else {
            format!(" · {}", esc(&note))
        },
        if source.is_empty() {
            String::new()
        } else {
            format!(" <span class=\"note\">(source: {})</span>", esc(&source))
        },
    );
    b.push_str(&now_note(d.now.map(|n| n.1)));
    // Range and window switches (links; the page is rendered on the server).
    let base = format!("/ports/{}/{port}", proto.name());
    b.push_str("<nav class=\"switch\" aria-label=\"range\">range: ");
    for (n, _) in RANGES {
        switch_link(
            &mut b,
            &format!("{base}?range={n}&amp;window={window_name}&amp;scale={scale_name}"),
            n,
            n == range_name,
        );
    }
    b.push_str("· window: ");
    for (n, _) in WINDOWS {
        switch_link(
            &mut b,
            &format!("{base}?range={range_name}&amp;window={n}&amp;scale={scale_name}"),
            n,
            n == window_name,
        );
    }
    b.push_str("· scale: ");
    for (n, _) in SCALES {
        switch_link(
            &mut b,
            &format!("{base}?range={range_name}&amp;window={window_name}&amp;scale={n}"),
            n,
            n == scale_name,
        );
    }
    b.push_str("</nav>");
    let Some((nstart, now)) = d.now else {
        b.push_str("<p>No data yet.</p>");
        return b;
    };
    // Stored windows are the finest grain: a shorter window than stored is the stored one.
    let step = window.max(now.0 - nstart.0).max(60_000);
    let to = Timestamp(now.0 - 1).floor(step).0 + step;
    let from = Timestamp(now.0 - range).floor(step).0;
    let ChartSpan {
        buckets,
        first,
        lookback,
        min_hist,
        known_from,
    } = chart_span(&d.rows, from, to, step);
    let markers: Vec<Marker> = d
        .alerts
        .iter()
        .filter(|a| a.window_start.0 < to && a.window_start.0 >= from - step)
        .map(|a| marker_of(a, &warning_of(a), false))
        .collect();
    let shown = &buckets[first.min(buckets.len())..];
    let total_events: u64 = shown.iter().map(|x| x.events).sum();
    let peak_sources = shown.iter().map(|x| x.sources).max().unwrap_or(0);
    let _ = write!(
        b,
        "<p class=\"summary\">Over the last {range_name}: <span data-field=\"events\">{}</span> events; \
         at most <span data-field=\"sources\">{}</span> sources in one window; \
         <span data-field=\"warnings\">{}</span> warnings.</p>",
        num(total_events),
        num(peak_sources),
        markers.len(),
    );
    let _ = write!(
        b,
        "<p class=\"note\" id=\"method\">Windows of {}: stored windows are re-bucketed; events are summed exactly, \
         while sources, sensors and targets of a coarser window are the <strong>largest</strong> count of its stored \
         windows (a lower bound: the same source in two hours counts once in each). Band: rolling median ± 3 robust \
         spreads (1.4826·MAD, at least √median) of the previous 7 days of windows, silent windows as zero, as the \
         detector measures it (docs/detection.md), shown once a day of history is stored. Shaded: warnings, linked.</p>",
        span(step)
    );
    for (metric, what) in [
        (Metric::Sources, "distinct sources"),
        (Metric::Events, "events"),
        (Metric::Sensors, "distinct sensors"),
    ] {
        let pts = points(&buckets, metric, first, lookback, min_hist, known_from);
        let id = format!("chart-{}", metric.name());
        let _ = write!(
            b,
            "<figure><figcaption>{}</figcaption>{}{}</figure>",
            esc(&format!("{what} per {}", span(step))),
            line_chart(&Chart {
                series: metric.name(),
                id: &id,
                title: format!("{label}: {what} per {} window", span(step)),
                desc: format!(
                    "{what} on {label} from {} to {}, with the baseline band and {} warnings marked",
                    when(Timestamp(from)),
                    when(Timestamp(to)),
                    markers.len()
                ),
                from,
                to,
                step,
                points: &pts,
                markers: &markers,
                log: scale_name == "log",
            }),
            legend(metric.name(), true, true)
        );
    }
    b.push_str("<div class=\"cols\">");
    // Top sources over the range.
    let tops = top_sources(
        d.rows
            .iter()
            .filter(|r| r.window_start.0 >= from)
            .map(|r| r.top_sources_json.as_str()),
        20,
    );
    b.push_str("<section id=\"top-sources\" class=\"card\"><h2>Top sources</h2>");
    if tops.is_empty() {
        b.push_str("<p>None in this range.</p>");
    } else {
        b.push_str(
            "<table class=\"data\"><thead><tr><th>source</th><th class=\"n\">events</th>\
             <th class=\"n\">windows</th></tr></thead><tbody>",
        );
        for (ip, ev, w) in &tops {
            let _ = write!(
                b,
                "<tr><td><a href=\"/sources/{}\">{}</a></td><td class=\"n\" data-field=\"events\">{}</td><td class=\"n\">{}</td></tr>",
                url_part(ip),
                esc(ip),
                num(*ev),
                w
            );
        }
        b.push_str("</tbody></table><p class=\"note\">Summed from each window's stored top-source list: \
                    events a source sent in windows where it was not among the top are missing, so these are lower bounds.</p>");
    }
    b.push_str("</section>");
    // Service notes.
    b.push_str("<section id=\"service\" class=\"card\"><h2>Service</h2>");
    match &fact {
        Some(f) => {
            let _ = write!(
                b,
                "<p><strong>{}</strong>{}</p>",
                esc(&f.name),
                if f.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&f.note))
                }
            );
            if !f.source.is_empty() {
                let _ = write!(b, "<p class=\"note\">Source: {}</p>", esc(&f.source));
            }
        }
        None => b.push_str("<p>No notes for this port.</p>"),
    }
    b.push_str("</section></div>");
    // Warnings on this port, their sensors and advisories.
    render_port_warnings(&mut b, &d.alerts);
    b
}

fn render_port_warnings(b: &mut String, alerts: &[AlertRow]) {
    b.push_str("<section id=\"port-warnings\"><h2>Warnings on this port</h2>");
    if alerts.is_empty() {
        b.push_str("<p>No stored warnings.</p></section>");
        return;
    }
    let mut sorted: Vec<(&AlertRow, Warning)> = alerts.iter().map(|a| (a, warning_of(a))).collect();
    sorted.sort_by_key(|x| std::cmp::Reverse(x.0.window_start));
    b.push_str(
        "<table class=\"data\"><thead><tr><th>window</th><th>severity</th><th class=\"n\">sources</th>\
         <th class=\"n\">×normal</th><th class=\"n\">sensors</th><th class=\"n\">top sensor share</th><th>headline</th></tr></thead><tbody>",
    );
    for (a, v) in sorted.iter().take(50) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"n\" data-field=\"sources\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\" data-field=\"sensors\">{} of {}</td><td class=\"n\">{}%</td><td><a href=\"/alerts/{}\">{}</a></td></tr>",
            window_el(a.window_start, v.window_end),
            badge(a.severity_rank),
            num(v.sources),
            float(v.times_normal, 1),
            num(v.sensors),
            num(v.active_sensors),
            float(v.top_sensor_share * 100.0, 0),
            a.id,
            esc(&v.headline),
        );
    }
    b.push_str("</tbody></table>");
    // Which sensors see it: per-sensor names are kept only when a warning stores them.
    b.push_str("<h3 id=\"sensors-seeing\">Sensors</h3>");
    let mut named: BTreeMap<String, u64> = BTreeMap::new();
    for (_, v) in &sorted {
        for s in &v.top_sensors {
            *named.entry(s.sensor.clone()).or_default() += s.events;
        }
    }
    if named.is_empty() {
        b.push_str(
            "<p class=\"note\">Which sensors saw the port is not stored: windows keep the number of distinct \
             sensors (the sensors chart above) and each warning the number of sensors, the sensors that reported \
             anything in its window and the share of events of its busiest sensor, shown in the table.</p>",
        );
    } else {
        // Busiest first, with each one's share of these sensors' events.
        let mut list: Vec<(&String, &u64)> = named.iter().collect();
        list.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let total: u64 = list.iter().map(|(_, e)| **e).sum::<u64>().max(1);
        b.push_str(
            "<table id=\"port-sensors\" class=\"data\"><thead><tr><th>sensor</th><th class=\"n\">events</th>\
             <th class=\"n\">share</th></tr></thead><tbody>",
        );
        for (n, e) in list {
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td></tr>",
                esc(n),
                num(*e),
                float(*e as f64 * 100.0 / total as f64, 0)
            );
        }
        b.push_str("</tbody></table><p class=\"note\">Summed over the top-sensor lists of the warnings above.</p>");
    }
    // Advisories of the warnings, best score per advisory.
    let mut adv: BTreeMap<String, (f64, &scanwatch_alert::AdvisoryJson, usize)> = BTreeMap::new();
    for (_, v) in &sorted {
        for a in &v.advisories {
            let id = a.id.clone();
            let score = a.score;
            let e = adv.entry(id).or_insert((score, a, 0));
            e.2 += 1;
            if score > e.0 {
                e.0 = score;
                e.1 = a;
            }
        }
    }
    b.push_str("<h3 id=\"advisories\">Advisories named by these warnings</h3>");
    if adv.is_empty() {
        b.push_str("<p>None: no imported advisory matches this port.</p>");
    } else {
        let mut list: Vec<_> = adv.into_iter().collect();
        list.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        b.push_str("<ul class=\"advisories\">");
        for (id, (score, a, n)) in list.iter().take(20) {
            let _ = write!(
                b,
                "<li><strong>{}</strong> {} <span class=\"note\">score {}, in {} warning{}; {}</span></li>",
                esc(id),
                esc(&a.title),
                float(*score, 2),
                n,
                if *n == 1 { "" } else { "s" },
                esc(&a.match_reason),
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
}
