//! Incidents: the list (one row per surge, filterable by state) and one incident
//! with its warnings and the form that sets its state.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

use crate::incidents::{self, Disposition, Incident, Phase};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncidentsQuery {
    state: Option<String>,
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Rising => "rising",
        Phase::AtPeak => "at peak",
        Phase::Falling => "falling",
        Phase::Over => "over",
    }
}

fn rank(sev: &str) -> u8 {
    scanwatch_detect::Severity::parse(sev).map_or(0, |s| s as u8)
}

/// The incidents on other ports an incident follows or is followed by (the same
/// leading advisory), as sentences with links; empty when none.
pub(super) fn follow_links(inc: &Incident) -> String {
    let mut b = String::new();
    let items = inc.follows.iter().map(|f| ("follows", "Follows", f)).chain(
        inc.followed_by
            .iter()
            .map(|f| ("followed-by", "Followed by", f)),
    );
    for (field, verb, f) in items {
        if !b.is_empty() {
            b.push(' ');
        }
        let _ = write!(
            b,
            "<span data-field=\"{field}\">{verb} <a href=\"/incidents/{}\">incident {}</a> ({}/{}, started {}): the same leading explanation, {}.</span>",
            f.id,
            f.id,
            esc(&f.protocol.to_uppercase()),
            f.port,
            esc(&when_text(&f.start)),
            esc(&f.advisory),
        );
    }
    b
}

fn when_text(rfc: &str) -> String {
    scanwatch_event::parse_rfc3339(rfc).map_or_else(|| rfc.to_string(), when)
}

/// `GET /incidents?state=`: newest first.
pub(super) async fn incidents_page(
    user: WebUser,
    State(st): State<AppState>,
    q: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = q.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let want = match q.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(
            Disposition::parse(s)
                .ok_or_else(|| PageError::BadRequest(format!("no state {s:?}")))?,
        ),
    };
    let all = st
        .with_reader(|s| incidents::load(s, Timestamp(i64::MIN), Timestamp(i64::MAX)))
        .await?;
    let rows: Vec<&Incident> = all
        .iter()
        .filter(|i| want.is_none_or(|d| i.state.state == d))
        .collect();
    let mut b = String::with_capacity(32 * 1024);
    b.push_str("<h1>Incidents</h1><nav class=\"filters\" aria-label=\"state\">");
    for (label, value) in [("all", "all")]
        .into_iter()
        .chain(Disposition::ALL.iter().map(|d| (d.name(), d.name())))
    {
        let cur = match want {
            None => value == "all",
            Some(d) => d.name() == value,
        };
        let _ = write!(
            b,
            "<a href=\"/incidents?state={value}\"{}>{}</a> ",
            if cur {
                " aria-current=\"page\" class=\"current\""
            } else {
                ""
            },
            esc(&label.replace('_', " "))
        );
    }
    b.push_str("</nav>");
    let _ = write!(
        b,
        "<p><span data-field=\"count\">{}</span> incidents (a surge's warning windows together), newest first.</p>",
        rows.len()
    );
    if !rows.is_empty() {
        b.push_str(
            "<table id=\"incidents\" class=\"data\"><thead><tr><th>peak</th><th>state</th><th>started</th>\
             <th>port</th><th>kind</th><th class=\"n\">windows</th><th>now</th><th class=\"n\">peak sources</th><th>last headline</th></tr></thead><tbody>",
        );
        for i in rows.iter().take(1000) {
            let _ = write!(
                b,
                "<tr data-incident-id=\"{id}\"><td>{}</td><td data-field=\"state\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\">{}</td><td data-field=\"phase\">{}</td><td class=\"n\">{}</td><td><a href=\"/incidents/{id}\">{}</a></td></tr>",
                badge(rank(&i.peak_severity)),
                esc(&i.state.state.name().replace('_', " ")),
                esc(&when_text(&i.start)),
                port_link(
                    Protocol::parse(&i.protocol).map_or(6, Protocol::number),
                    i.port
                ),
                esc(&i.kind),
                i.windows,
                phase_name(i.phase),
                num(i.peak_sources),
                esc(headline_after_port(&i.headline)),
                id = i.id,
            );
        }
        b.push_str("</tbody></table>");
    }
    Ok(page(layout("Incidents", &user, Nav::Incidents, &b)))
}

/// `GET /incidents/{id}`: one incident (any of its warnings' ids finds it).
pub(super) async fn incident_page(
    user: WebUser,
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let id = path_id(path, "incident")?;
    let (inc, rows) = st
        .with_reader(move |s| {
            let Some(inc) = incidents::containing(s, id)? else {
                return Ok(None);
            };
            let mut rows = Vec::new();
            for w in &inc.warnings {
                if let Some(r) = s.alert(*w)? {
                    rows.push(r);
                }
            }
            Ok(Some((inc, rows)))
        })
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no incident with warning {id}")))?;
    let mut b = String::with_capacity(16 * 1024);
    let _ = write!(
        b,
        "<h1>{} Incident {}: {} {}</h1><p class=\"headline\">{}</p>\
         <p class=\"facts\">started {} · {} warning window{} · last ended {} · now <strong data-field=\"phase\">{}</strong> · \
         state <strong data-field=\"state\">{}</strong></p>",
        badge(rank(&inc.peak_severity)),
        inc.id,
        esc(&inc.kind),
        port_link(
            Protocol::parse(&inc.protocol).map_or(6, Protocol::number),
            inc.port
        ),
        esc(headline_after_port(&inc.headline)),
        esc(&when_text(&inc.start)),
        inc.windows,
        if inc.windows == 1 { "" } else { "s" },
        esc(&when_text(&inc.last_end)),
        phase_name(inc.phase),
        esc(&inc.state.state.name().replace('_', " ")),
    );
    if inc.state.state != Disposition::New {
        let _ = write!(
            b,
            "<p class=\"note\" id=\"state-by\">set by {} at {}{}{}</p>",
            esc(&inc.state.by),
            esc(&when_text(&inc.state.at)),
            inc.state
                .assignee
                .as_deref()
                .map_or(String::new(), |a| format!(", assigned to {}", esc(a))),
            inc.state
                .note
                .as_deref()
                .map_or(String::new(), |n| format!(": {}", esc(n))),
        );
    }
    let _ = write!(
        b,
        "<p>Peak: <a href=\"/alerts/{}\">the window of {}</a>, {} sources, {} events, {} sensors.</p>",
        inc.peak_id,
        esc(&when_text(&inc.peak_window_start)),
        num(inc.peak_sources),
        num(inc.peak_events),
        num(inc.peak_sensors),
    );
    // Incidents on other ports that the same advisory leads.
    let links = follow_links(&inc);
    if !links.is_empty() {
        let _ = write!(b, "<p id=\"follow-on\">{links}</p>");
    }
    // The state form (any signed-in analyst; CSRF-checked).
    let _ = write!(
        b,
        "<form id=\"state-form\" method=\"post\" action=\"/incidents/{}/state\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>state <select name=\"state\">",
        inc.id,
        esc(&user.csrf)
    );
    for d in Disposition::ALL {
        let _ = write!(
            b,
            "<option value=\"{}\"{}>{}</option>",
            d.name(),
            if d == inc.state.state {
                " selected"
            } else {
                ""
            },
            d.name().replace('_', " ")
        );
    }
    let _ = write!(
        b,
        "</select></label> <label>assignee <input name=\"assignee\" value=\"{}\" maxlength=\"200\"></label> \
         <label>note <input name=\"note\" maxlength=\"2000\"></label> <button type=\"submit\">set</button></form>",
        esc(inc.state.assignee.as_deref().unwrap_or(""))
    );
    b.push_str(
        "<h2>Its warnings</h2><table id=\"incident-warnings\" class=\"data\"><thead><tr><th>severity</th><th>window</th>\
         <th class=\"n\">sources</th><th class=\"n\">score</th><th>headline</th></tr></thead><tbody>",
    );
    for r in &rows {
        let v = warning_of(r);
        let _ = write!(
            b,
            "<tr data-alert-id=\"{id}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><a href=\"/alerts/{id}\">{}</a></td></tr>",
            badge(r.severity_rank),
            window_el(r.window_start, v.window_end),
            num(v.sources),
            float(v.score, 1),
            esc(headline_after_port(&v.headline)),
            id = r.id,
        );
    }
    b.push_str("</tbody></table>");
    Ok(page(layout(
        &format!("Incident {}", inc.id),
        &user,
        Nav::Incidents,
        &b,
    )))
}
