//! One warning: its numbers, explanation, context and exports.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

struct AlertData {
    row: AlertRow,
    /// The incident it belongs to (with the incidents it follows or leads to).
    incident: Option<crate::incidents::Incident>,
    now: Option<(Timestamp, Timestamp)>,
    rows: Vec<WindowRow>,
    neighbours: Vec<AlertRow>,
    from: i64,
    to: i64,
    /// A logarithmic y axis for the evidence charts (`?scale=log`).
    log: bool,
}

/// `GET /alerts/{id}`: one warning with its narrative, evidence and context.
pub(super) async fn alert_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let id = path_id(path, "warning")?;
    let q = params(q)?;
    let (scale_name, _) = choice(&q, "scale", &SCALES, 0)?;
    let log = scale_name == "log";
    let d = st
        .with_reader(move |s| {
            let Some(row) = s.alert(id)? else {
                return Ok(None);
            };
            let now = newest_window(s)?;
            let v = warning_of(&row);
            let ws = row.window_start.0;
            let we = v.window_end.0.max(ws + 60_000);
            let episode = v.episode_start.0.min(ws);
            // Two days before the episode to one day after the warning (not past now).
            let from = episode.saturating_sub(2 * DAY);
            let to = (we + DAY).min(now.map_or(we, |n| n.1 .0.max(we)));
            let rows =
                s.port_history(row.proto, row.port, Timestamp(from - WEEK), Timestamp(to))?;
            let neighbours = s
                .alerts(Timestamp(from - DAY), Timestamp(to), 0)?
                .into_iter()
                .filter(|a| a.proto == row.proto && a.port == row.port)
                .collect();
            let incident = crate::incidents::containing(s, id)?;
            Ok(Some(AlertData {
                row,
                incident,
                now,
                rows,
                neighbours,
                from,
                to,
                log,
            }))
        })
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no warning {id}")))?;
    let v = warning_of(&d.row);
    let title = format!(
        "Warning {}: {}/{}",
        d.row.id,
        proto_label(d.row.proto),
        d.row.port
    );
    Ok(page(layout(
        &title,
        &user,
        Nav::Warnings,
        &render_alert(&d, &v),
    )))
}

/// `GET /alerts/{id}/export/{json|stix|misp}`: the warning's exports for the
/// signed-in user (the session is enough, as for the page that links them), as a
/// download; the API serves the same to tokens.
pub(super) async fn alert_export(
    _user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, PageError> {
    let Path((id, format)) = path.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let id: i64 = id
        .parse()
        .map_err(|_| PageError::BadRequest("warning id must be a number".into()))?;
    if !["json", "stix", "misp"].contains(&format.as_str()) {
        return Err(PageError::NotFound(format!(
            "no export {format:?}: json, stix or misp"
        )));
    }
    let (row, links) = st
        .with_reader(move |s| crate::incidents::FollowOns::with_alert(s, id))
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no warning {id}")))?;
    let mut v = warning_of(&row);
    links.add_to(&mut v);
    let (body, kind, name) = match format.as_str() {
        "stix" => (
            scanwatch_alert::stix::stix_bundle(row.id, &v).to_string(),
            crate::export::STIX_CONTENT_TYPE,
            format!("scanwatch-alert-{id}.stix.json"),
        ),
        "misp" => (
            scanwatch_alert::misp::misp_event(row.id, &v).to_string(),
            "application/json",
            format!("scanwatch-alert-{id}.misp.json"),
        ),
        _ => {
            let stored = scanwatch_alert::StoredWarning {
                id: row.id,
                warning: v,
            };
            (
                serde_json::to_string(&stored).unwrap_or_default(),
                "application/json",
                format!("scanwatch-alert-{id}.json"),
            )
        }
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// Where the warning stands in its incident, and the incidents on other ports that
/// the same advisory leads (follow-on surges).
fn incident_note(b: &mut String, inc: &crate::incidents::Incident, id: i64) {
    let _ = write!(
        b,
        "<p class=\"note\" id=\"incident\">Part of <a href=\"/incidents/{}\">incident {}</a> ({} window{}, peak {}{}).",
        inc.id,
        inc.id,
        inc.windows,
        if inc.windows == 1 { "" } else { "s" },
        esc(&inc.peak_severity.to_uppercase()),
        if inc.peak_id == id {
            ": this window".to_string()
        } else {
            format!(" in <a href=\"/alerts/{}\">warning {}</a>", inc.peak_id, inc.peak_id)
        },
    );
    let links = super::incidents::follow_links(inc);
    if !links.is_empty() {
        let _ = write!(b, " {links}");
    }
    b.push_str("</p>");
}

fn render_alert(d: &AlertData, v: &Warning) -> String {
    let r = &d.row;
    let mut b = String::with_capacity(64 * 1024);
    let _ = write!(
        b,
        "<h1>{} {} <span class=\"meaning\">{}</span></h1><p class=\"service\">service name <strong>{}</strong></p><p class=\"headline\" id=\"headline\">{}</p>",
        badge(r.severity_rank),
        port_link(r.proto, r.port),
        esc(meaning(&v.service.notes).unwrap_or(&v.service.name)),
        esc(&v.service.name),
        esc(headline_after_port(&v.headline)),
    );
    let _ = write!(
        b,
        "<p class=\"facts\">window {} to {} ({}) · {} warning · confidence <strong data-field=\"confidence\">{}</strong>{} · priority <strong data-field=\"priority\">{}</strong></p>",
        time_el(r.window_start),
        esc(&html::when(v.window_end)),
        esc(&span(v.window_end.0 - r.window_start.0)),
        esc(v.alert_kind.name()),
        esc(v.confidence.name()),
        if v.verified {
            " (verified by IDS alerts)"
        } else {
            " (not verified)"
        },
        esc(v.priority.name()),
    );
    b.push_str(&now_note(d.now.map(|n| n.1)));
    if let Some(inc) = &d.incident {
        incident_note(&mut b, inc, r.id);
    }
    let _ = write!(
        b,
        "<section id=\"narrative\"><h2>What happened</h2><p>{}</p><p class=\"assessment\">{}</p>\
         <p class=\"priority\" data-field=\"priority_reason\">Priority: {}</p></section>",
        esc(&v.summary),
        esc(&v.assessment),
        esc(&v.priority_reason),
    );
    if let Some(sw) = &v.sweep {
        sweep_section(&mut b, sw);
    }
    // Key numbers.
    b.push_str("<section id=\"key-numbers\"><dl class=\"numbers\">");
    for (label, field, val) in [
        ("sources", "sources", num(v.sources)),
        (
            "baseline sources",
            "baseline.sources",
            float(v.baseline.sources, 1),
        ),
        ("×normal", "times_normal", float(v.times_normal, 1)),
        ("events", "events", num(v.events)),
        (
            "sensors",
            "sensors",
            format!("{} of {}", num(v.sensors), num(v.active_sensors)),
        ),
        ("score", "score", float(v.score, 2)),
    ] {
        let _ = write!(
            b,
            "<div><dt>{label}</dt><dd data-field=\"{field}\">{}</dd></div>",
            esc(&val)
        );
    }
    b.push_str("</dl></section>");
    // Evidence charts.
    let step = (v.window_end.0 - r.window_start.0).max(60_000);
    let from = Timestamp(d.from).floor(step).0;
    let to = Timestamp(d.to - 1).floor(step).0 + step;
    let ChartSpan {
        buckets,
        first,
        lookback,
        min_hist,
        known_from,
    } = chart_span(&d.rows, from, to, step);
    let markers: Vec<Marker> = d
        .neighbours
        .iter()
        .map(|a| marker_of(a, &warning_of(a), a.id == r.id))
        .collect();
    let label = format!("{}/{}", proto_label(r.proto), r.port);
    b.push_str("<section id=\"evidence\"><h2>Evidence</h2>");
    let _ = write!(
        b,
        "<p class=\"note\">{label} per {} window from two days before the surge began to a day after this warning. \
         Band: rolling median ± 3 robust spreads of the previous 7 days (silent windows as zero). \
         Shaded: warnings on this port, this one darker. Scale: <a href=\"/alerts/{id}\"{lin}>linear</a> · \
         <a href=\"/alerts/{id}?scale=log\"{log}>log</a></p>",
        span(step),
        id = r.id,
        lin = if d.log { "" } else { " aria-current=\"page\"" },
        log = if d.log { " aria-current=\"page\"" } else { "" },
    );
    for metric in [Metric::Sources, Metric::Events] {
        let pts = points(&buckets, metric, first, lookback, min_hist, known_from);
        let id = format!("evidence-{}", metric.name());
        let _ = write!(
            b,
            "<figure><figcaption>{} per {}</figcaption>",
            metric.name(),
            span(step)
        );
        b.push_str(&line_chart(&Chart {
            series: metric.name(),
            id: &id,
            title: format!(
                "{label}: {} per window around warning {}",
                metric.name(),
                r.id
            ),
            desc: format!(
                "{} on {label} from {} to {}; the warning's window starts {}",
                metric.name(),
                when(Timestamp(from)),
                when(Timestamp(to)),
                when(r.window_start)
            ),
            from,
            to,
            step,
            points: &pts,
            markers: &markers,
            log: d.log,
        }));
        b.push_str(&legend(metric.name(), true, true));
        b.push_str("</figure>");
    }
    b.push_str("</section>");
    // Top sources.
    b.push_str("<section id=\"top-sources\"><h2>Top sources</h2>");
    if v.top_sources.is_empty() {
        b.push_str("<p>None stored.</p>");
    } else {
        b.push_str("<table class=\"data\"><thead><tr><th>source</th><th class=\"n\">events</th></tr></thead><tbody>");
        for s in &v.top_sources {
            let ip = s.ip.to_string();
            let _ = write!(
                b,
                "<tr><td><a href=\"/sources/{}\">{}</a></td><td class=\"n\">{}</td></tr>",
                url_part(&ip),
                esc(&ip),
                num(s.events)
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section>");
    render_context(&mut b, v);
    // Raw numbers and JSON: every field as stored (the serialized warning).
    let json = serde_json::to_value(v).unwrap_or_default();
    let mut fields = Vec::new();
    numeric_fields("", &json, &mut fields);
    b.push_str("<section id=\"raw\"><h2>Raw numbers</h2><table id=\"raw-numbers\" class=\"data\"><thead><tr><th>field</th><th class=\"n\">value</th></tr></thead><tbody>");
    for (k, n) in &fields {
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{k}</th><td class=\"n\" data-field=\"{k}\">{n}</td></tr>",
            k = esc(k),
            n = esc(n)
        );
    }
    b.push_str("</tbody></table>");
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_else(|_| r.json.clone());
    let _ = write!(
        b,
        "<details id=\"raw-json\"><summary>raw JSON</summary><pre>{}</pre></details>",
        esc(&pretty)
    );
    let _ = write!(
        b,
        "<p id=\"api-links\">Download: <a href=\"/alerts/{id}/export/json\" download>JSON</a> · \
         <a href=\"/alerts/{id}/export/stix\" download>STIX 2.1</a> · <a href=\"/alerts/{id}/export/misp\" download>MISP</a> \
         (the same from the API with a token: <code>/api/v1/alerts/{id}</code>, <code>/stix</code>, <code>/misp</code>)</p></section>",
        id = r.id
    );
    b
}

/// An advisory id as a link to its public record: a CVE to NVD, an EDB id to
/// Exploit-DB; anything else as text.
fn advisory_link(id: &str) -> String {
    let url = if let Some(n) = id
        .strip_prefix("CVE-")
        .filter(|n| n.len() >= 6 && n.chars().all(|c| c.is_ascii_digit() || c == '-'))
    {
        format!("https://nvd.nist.gov/vuln/detail/CVE-{n}")
    } else if let Some(n) = id
        .strip_prefix("EDB-")
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    {
        format!("https://www.exploit-db.com/exploits/{n}")
    } else {
        return esc(id);
    };
    format!(
        "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
        esc(&url),
        esc(id)
    )
}

/// Explanations, mitigations and exposed assets of a warning.
fn render_context(b: &mut String, v: &Warning) {
    b.push_str("<section id=\"explanations\"><h2>Candidate explanations</h2>");
    if v.advisories.is_empty() {
        b.push_str("<p>No imported advisory matches this port.</p>");
    } else {
        b.push_str("<ol class=\"advisories\">");
        for a in &v.advisories {
            let _ = write!(
                b,
                "<li class=\"advisory\"><p><strong>{}</strong> {} <span class=\"note\">score {}{}{}</span></p><p class=\"note\">{} match: {}</p><ul>",
                advisory_link(&a.id),
                esc(&a.title),
                float(a.score, 2),
                a.cvss
                    .map_or(String::new(), |c| format!(", CVSS {}", float(f64::from(c), 1))),
                a.published
                    .as_deref()
                    .map_or(String::new(), |p| format!(", published {}", esc(p))),
                esc(a.match_strength.name()),
                esc(&a.match_reason),
            );
            for r in &a.reasons {
                let _ = write!(b, "<li>{}</li>", esc(r));
            }
            b.push_str("</ul>");
            let ex = a.exploits.len();
            if ex > 0 {
                let dated: Vec<String> = a
                    .exploit_dates
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}{}",
                            e.published.as_deref().unwrap_or(""),
                            e.id,
                            if e.after_surge {
                                " (after the surge)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect();
                let _ = write!(
                    b,
                    "<p class=\"note\" data-field=\"exploits\">{}{}{}</p>",
                    esc(&scanwatch_context::explain::exploits_phrase(
                        ex,
                        a.exploits_at_surge
                    )),
                    if dated.is_empty() { "" } else { ": " },
                    esc(&dated.join(", "))
                );
            }
            // What the imported data says of a fix and of the vendor's patch days
            // (docs/context.md).
            if !a.fix.statement.is_empty() {
                let _ = write!(
                    b,
                    "<p data-field=\"fix\">Fix: {}</p>",
                    esc(&a.fix.statement)
                );
            }
            if let Some(p) = &a.next_patch_day {
                let _ = write!(
                    b,
                    "<p data-field=\"patch-day\">Next scheduled {}: {} ({} days after the surge began)</p>",
                    esc(&p.name),
                    esc(&p.date),
                    p.days_after_surge
                );
            }
            for w in a.fix.workarounds.iter().take(3) {
                let _ = write!(b, "<p data-field=\"workaround\">Workaround: {}</p>", esc(w));
            }
            b.push_str("</li>");
        }
        b.push_str("</ol>");
    }
    b.push_str("</section>");
    b.push_str("<section id=\"mitigations\"><h2>Mitigations</h2>");
    if v.mitigations.is_empty() {
        b.push_str("<p>No block rules for this warning.</p>");
    }
    for (i, m) in v.mitigations.iter().enumerate() {
        let _ = write!(
            b,
            "<div class=\"mitigation\" data-platform=\"{p}\"><h3>{p}</h3>\
             <button type=\"button\" class=\"copy\" data-copy=\"mitigation-{i}\">copy</button>\
             <pre id=\"mitigation-{i}\">{}</pre></div>",
            esc(&m.rule),
            p = esc(m.platform.name()),
        );
    }
    // Besides the firewall: what the vendor data (CSAF), NVD `Mitigation`
    // references and KEV say can be done for the leading explanation.
    if let Some(lead) = v
        .advisories
        .first()
        .filter(|a| !a.fix.workarounds.is_empty())
    {
        let _ = write!(
            b,
            "<h3>Besides the firewall ({})</h3><ul id=\"workarounds\">",
            esc(&lead.id)
        );
        for w in &lead.fix.workarounds {
            let _ = write!(
                b,
                "<li data-field=\"mitigation-workaround\">{}</li>",
                esc(w)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
    b.push_str("<section id=\"exposed\"><h2>Exposed assets</h2>");
    if v.exposed_assets.is_empty() {
        b.push_str("<p>No imported asset is exposed on this port.</p>");
    } else {
        b.push_str(
            "<table id=\"exposed-assets\" class=\"data\"><thead><tr><th class=\"n\">#</th><th>host</th><th>address</th>\
             <th>zone</th><th class=\"n\">score</th><th>why</th></tr></thead><tbody>",
        );
        for e in &v.exposed_assets {
            let _ = write!(
                b,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                e.priority,
                esc(&e.host),
                esc(&e.address.map_or(String::new(), |a| a.to_string())),
                esc(e.zone.as_deref().unwrap_or("")),
                e.score,
                esc(&e.reasons.join("; ")),
            );
        }
        b.push_str("</tbody></table>");
        let _ = write!(
            b,
            "<p class=\"note\">{} exposed in all.</p>",
            v.exposed_total
        );
    }
    b.push_str("</section>");
}

/// Every numeric field of a JSON object, with dotted paths (`baseline.sources`);
/// arrays are skipped (their numbers are shown in their own tables).
fn numeric_fields(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match x {
                Value::Number(n) => out.push((key, n.to_string())),
                Value::Object(_) => numeric_fields(&key, x, out),
                _ => {}
            }
        }
    }
}

/// A sweep warning's campaign: its network, its sources with their port counts,
/// and the ports most of them reached (docs/detection.md, "Sweeps").
fn sweep_section(b: &mut String, sw: &scanwatch_alert::SweepJson) {
    let _ = write!(
        b,
        "<section id=\"sweep\"><h2>The sweep</h2><p>{} source{} of <strong data-field=\"sweep.prefix\">{}</strong> probed {}{} ports across {} sensors ({} events). They are set aside from every port's counts; no advisory of one port explains a sweep.</p>",
        num(sw.sources),
        if sw.sources == 1 { "" } else { "s" },
        esc(&sw.prefix),
        scanwatch_alert::ports_qualifier(sw.ports_capped, sw.ports_estimated),
        num(sw.ports),
        num(sw.sensors),
        num(sw.events),
    );
    b.push_str("<table><thead><tr><th>source</th><th class=\"n\">ports</th><th class=\"n\">events</th><th class=\"n\">sensors</th></tr></thead><tbody>");
    for s in &sw.top_sources {
        let ip = s.ip.to_string();
        let _ = write!(
            b,
            "<tr><td><a href=\"/sources/{}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&ip),
            esc(&ip),
            num(s.ports),
            num(s.events),
            num(s.sensors),
        );
    }
    b.push_str("</tbody></table>");
    let ports: Vec<String> = sw
        .busiest_ports
        .iter()
        .map(|p| format!("{}/{} ({})", p.protocol, p.port, num(p.sources)))
        .collect();
    let _ = write!(
        b,
        "<p>Ports most of its sources reached: {}</p></section>",
        esc(&ports.join(", "))
    );
}

#[cfg(test)]
mod tests {
    use super::advisory_link;

    #[test]
    fn advisories_link_to_their_records() {
        assert_eq!(
            advisory_link("CVE-2007-1748"),
            "<a href=\"https://nvd.nist.gov/vuln/detail/CVE-2007-1748\" rel=\"noopener noreferrer\">CVE-2007-1748</a>"
        );
        assert!(advisory_link("EDB-3737").contains("https://www.exploit-db.com/exploits/3737"));
        // Anything else (or a forged id) stays text, escaped.
        assert_eq!(advisory_link("MS07-029"), "MS07-029");
        assert_eq!(advisory_link("CVE-<script>"), "CVE-&lt;script&gt;");
    }
}
