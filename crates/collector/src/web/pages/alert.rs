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
}

/// `GET /alerts/{id}`: one warning with its narrative, evidence and context.
pub(super) async fn alert_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let id = path_id(path, "warning")?;
    let d = st
        .with_reader(move |s| {
            let Some(row) = s.alert(id)? else {
                return Ok(None);
            };
            let now = newest_window(s)?;
            let v = parse_json(&row);
            let ws = row.window_start.0;
            let we = scanwatch_event::parse_rfc3339(jstr(&v, "window_end"))
                .map_or(ws + HOUR, |t| t.0)
                .max(ws + 60_000);
            let episode = scanwatch_event::parse_rfc3339(jstr(&v, "episode_start"))
                .map_or(ws, |t| t.0)
                .min(ws);
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
            }))
        })
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no warning {id}")))?;
    let v = parse_json(&d.row);
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
    let mut v = parse_json(&row);
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
            let mut v = v;
            if let Some(m) = v.as_object_mut() {
                m.insert("id".into(), row.id.into());
            }
            (
                v.to_string(),
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

fn render_alert(d: &AlertData, v: &Value) -> String {
    let r = &d.row;
    let mut b = String::with_capacity(64 * 1024);
    let _ = write!(
        b,
        "<h1>{} {} <span class=\"service\">{}</span></h1><p class=\"headline\" id=\"headline\">{}</p>",
        badge(r.severity_rank),
        port_link(r.proto, r.port),
        esc(v.get("service").map_or("", |s| jstr(s, "name"))),
        esc(headline_after_port(jstr(v, "headline"))),
    );
    let _ = write!(
        b,
        "<p class=\"facts\">window {} to {} · {} warning · confidence <strong data-field=\"confidence\">{}</strong>{} · priority <strong data-field=\"priority\">{}</strong></p>",
        time_el(r.window_start),
        esc(&scanwatch_event::parse_rfc3339(jstr(v, "window_end")).map_or_else(String::new, html::when)),
        esc(jstr(v, "alert_kind")),
        esc(jstr(v, "confidence")),
        if v.get("verified").and_then(Value::as_bool) == Some(true) {
            " (verified by IDS alerts)"
        } else {
            " (not verified)"
        },
        esc(jstr(v, "priority")),
    );
    b.push_str(&now_note(d.now.map(|n| n.1)));
    if let Some(inc) = &d.incident {
        incident_note(&mut b, inc, r.id);
    }
    let _ = write!(
        b,
        "<section id=\"narrative\"><h2>What happened</h2><p>{}</p><p class=\"assessment\">{}</p>\
         <p class=\"priority\" data-field=\"priority_reason\">Priority: {}</p></section>",
        esc(jstr(v, "summary")),
        esc(jstr(v, "assessment")),
        esc(jstr(v, "priority_reason")),
    );
    if let Some(sw) = v.get("sweep").filter(|s| s.is_object()) {
        sweep_section(&mut b, sw);
    }
    // Key numbers.
    let base = v.get("baseline").cloned().unwrap_or(Value::Null);
    b.push_str("<section id=\"key-numbers\"><dl class=\"numbers\">");
    for (label, field, val) in [
        ("sources", "sources", num(jnum(v, "sources") as u64)),
        (
            "baseline sources",
            "baseline.sources",
            float(jnum(&base, "sources"), 1),
        ),
        ("×normal", "times_normal", float(jnum(v, "times_normal"), 1)),
        ("events", "events", num(jnum(v, "events") as u64)),
        (
            "sensors",
            "sensors",
            format!(
                "{} of {}",
                num(jnum(v, "sensors") as u64),
                num(jnum(v, "active_sensors") as u64)
            ),
        ),
        ("score", "score", float(jnum(v, "score"), 2)),
    ] {
        let _ = write!(
            b,
            "<div><dt>{label}</dt><dd data-field=\"{field}\">{}</dd></div>",
            esc(&val)
        );
    }
    b.push_str("</dl></section>");
    // Evidence charts.
    let step = (v
        .get("window_end")
        .and_then(Value::as_str)
        .and_then(scanwatch_event::parse_rfc3339)
        .map_or(HOUR, |t| t.0 - r.window_start.0))
    .max(60_000);
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
        .map(|a| marker_of(a, &parse_json(a), a.id == r.id))
        .collect();
    let label = format!("{}/{}", proto_label(r.proto), r.port);
    b.push_str("<section id=\"evidence\"><h2>Evidence</h2>");
    let _ = write!(
        b,
        "<p class=\"note\">{label} per {} window from two days before the surge began to a day after this warning. \
         Band: rolling median ± 3 robust spreads of the previous 7 days (silent windows as zero). \
         Shaded: warnings on this port, this one darker.</p>",
        span(step)
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
        }));
        b.push_str("</figure>");
    }
    b.push_str("</section>");
    // Top sources.
    b.push_str("<section id=\"top-sources\"><h2>Top sources</h2>");
    match v.get("top_sources").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            b.push_str("<table class=\"data\"><thead><tr><th>source</th><th class=\"n\">events</th></tr></thead><tbody>");
            for s in list {
                let ip = jstr(s, "ip");
                let _ = write!(
                    b,
                    "<tr><td><a href=\"/sources/{}\">{}</a></td><td class=\"n\">{}</td></tr>",
                    url_part(ip),
                    esc(ip),
                    num(jnum(s, "events") as u64)
                );
            }
            b.push_str("</tbody></table>");
        }
        _ => b.push_str("<p>None stored.</p>"),
    }
    b.push_str("</section>");
    render_context(&mut b, v);
    // Raw numbers and JSON.
    let mut fields = Vec::new();
    numeric_fields("", v, &mut fields);
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
    let pretty = serde_json::to_string_pretty(v).unwrap_or_else(|_| r.json.clone());
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
fn render_context(b: &mut String, v: &Value) {
    let empty = Vec::new();
    let arr = |k: &str| v.get(k).and_then(Value::as_array).unwrap_or(&empty);
    b.push_str("<section id=\"explanations\"><h2>Candidate explanations</h2>");
    let adv = arr("advisories");
    if adv.is_empty() {
        b.push_str("<p>No imported advisory matches this port.</p>");
    } else {
        b.push_str("<ol class=\"advisories\">");
        for a in adv {
            let _ = write!(
                b,
                "<li class=\"advisory\"><p><strong>{}</strong> {} <span class=\"note\">score {}{}{}</span></p><p class=\"note\">{} match: {}</p><ul>",
                advisory_link(jstr(a, "id")),
                esc(jstr(a, "title")),
                float(jnum(a, "score"), 2),
                a.get("cvss")
                    .and_then(Value::as_f64)
                    .map_or(String::new(), |c| format!(", CVSS {}", float(c, 1))),
                a.get("published")
                    .and_then(Value::as_str)
                    .map_or(String::new(), |p| format!(", published {}", esc(p))),
                esc(jstr(a, "match_strength")),
                esc(jstr(a, "match_reason")),
            );
            for r in a
                .get("reasons")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let _ = write!(b, "<li>{}</li>", esc(r.as_str().unwrap_or("")));
            }
            b.push_str("</ul>");
            let ex = a
                .get("exploits")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if ex > 0 {
                let dated: Vec<String> = a
                    .get("exploit_dates")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let later = e.get("after_surge").and_then(Value::as_bool) == Some(true);
                        format!(
                            "{} {}{}",
                            jstr(e, "published"),
                            jstr(e, "id"),
                            if later { " (after the surge)" } else { "" }
                        )
                    })
                    .collect();
                let at_surge = a
                    .get("exploits_at_surge")
                    .and_then(Value::as_u64)
                    .map_or(ex, |n| n as usize);
                let _ = write!(
                    b,
                    "<p class=\"note\" data-field=\"exploits\">{}{}{}</p>",
                    esc(&scanwatch_context::explain::exploits_phrase(ex, at_surge)),
                    if dated.is_empty() { "" } else { ": " },
                    esc(&dated.join(", "))
                );
            }
            // What the imported data says of a fix and of the vendor's patch days
            // (docs/context.md).
            if let Some(f) = a
                .get("fix")
                .and_then(|f| f.get("statement"))
                .and_then(Value::as_str)
            {
                let _ = write!(b, "<p data-field=\"fix\">Fix: {}</p>", esc(f));
            }
            if let Some(p) = a.get("next_patch_day").filter(|p| p.is_object()) {
                let _ = write!(
                    b,
                    "<p data-field=\"patch-day\">Next scheduled {}: {} ({} days after the surge began)</p>",
                    esc(jstr(p, "name")),
                    esc(jstr(p, "date")),
                    jnum(p, "days_after_surge")
                );
            }
            for w in a
                .get("fix")
                .and_then(|f| f.get("workarounds"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .take(3)
            {
                let _ = write!(
                    b,
                    "<p data-field=\"workaround\">Workaround: {}</p>",
                    esc(w.as_str().unwrap_or(""))
                );
            }
            b.push_str("</li>");
        }
        b.push_str("</ol>");
    }
    b.push_str("</section>");
    b.push_str("<section id=\"mitigations\"><h2>Mitigations</h2>");
    let mit = arr("mitigations");
    if mit.is_empty() {
        b.push_str("<p>No block rules for this warning.</p>");
    }
    for (i, m) in mit.iter().enumerate() {
        let platform = jstr(m, "platform");
        let _ = write!(
            b,
            "<div class=\"mitigation\" data-platform=\"{p}\"><h3>{p}</h3>\
             <button type=\"button\" class=\"copy\" data-copy=\"mitigation-{i}\">copy</button>\
             <pre id=\"mitigation-{i}\">{}</pre></div>",
            esc(jstr(m, "rule")),
            p = esc(platform),
        );
    }
    // Besides the firewall: what the vendor data (CSAF), NVD `Mitigation`
    // references and KEV say can be done for the leading explanation.
    let lead = arr("advisories").first();
    let workarounds: Vec<&str> = lead
        .and_then(|a| a.get("fix"))
        .and_then(|f| f.get("workarounds"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !workarounds.is_empty() {
        let _ = write!(
            b,
            "<h3>Besides the firewall ({})</h3><ul id=\"workarounds\">",
            esc(lead.map_or("", |a| jstr(a, "id")))
        );
        for w in workarounds {
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
    let ex = arr("exposed_assets");
    if ex.is_empty() {
        b.push_str("<p>No imported asset is exposed on this port.</p>");
    } else {
        b.push_str(
            "<table id=\"exposed-assets\" class=\"data\"><thead><tr><th class=\"n\">#</th><th>host</th><th>address</th>\
             <th>zone</th><th class=\"n\">score</th><th>why</th></tr></thead><tbody>",
        );
        for e in ex {
            let reasons: Vec<&str> = e
                .get("reasons")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let _ = write!(
                b,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                jnum(e, "priority") as u64,
                esc(jstr(e, "host")),
                esc(jstr(e, "address")),
                esc(jstr(e, "zone")),
                jnum(e, "score") as u64,
                esc(&reasons.join("; ")),
            );
        }
        b.push_str("</tbody></table>");
        let _ = write!(
            b,
            "<p class=\"note\">{} exposed in all.</p>",
            jnum(v, "exposed_total") as u64
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
fn sweep_section(b: &mut String, sw: &Value) {
    let _ = write!(
        b,
        "<section id=\"sweep\"><h2>The sweep</h2><p>{} source{} of <strong data-field=\"sweep.prefix\">{}</strong> probed {}{} ports across {} sensors ({} events). They are set aside from every port's counts; no advisory of one port explains a sweep.</p>",
        num(jnum(sw, "sources") as u64),
        if jnum(sw, "sources") as u64 == 1 { "" } else { "s" },
        esc(jstr(sw, "prefix")),
        if sw.get("ports_capped").and_then(Value::as_bool) == Some(true) {
            "at least "
        } else {
            ""
        },
        num(jnum(sw, "ports") as u64),
        num(jnum(sw, "sensors") as u64),
        num(jnum(sw, "events") as u64),
    );
    b.push_str("<table><thead><tr><th>source</th><th class=\"n\">ports</th><th class=\"n\">events</th><th class=\"n\">sensors</th></tr></thead><tbody>");
    for s in sw
        .get("top_sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ip = jstr(s, "ip");
        let _ = write!(
            b,
            "<tr><td><a href=\"/sources/{}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(ip),
            esc(ip),
            num(jnum(s, "ports") as u64),
            num(jnum(s, "events") as u64),
            num(jnum(s, "sensors") as u64),
        );
    }
    b.push_str("</tbody></table>");
    let ports: Vec<String> = sw
        .get("busiest_ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}/{} ({})",
                jstr(p, "protocol"),
                jnum(p, "port") as u64,
                num(jnum(p, "sources") as u64)
            )
        })
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
