//! The sensors: state, traffic and heartbeat counters.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

/// `GET /sensors`: every sensor with its counters and last heartbeat.
pub(super) async fn sensors_page(
    user: WebUser,
    State(st): State<AppState>,
) -> Result<Response, PageError> {
    let sensors = st
        .with_reader(|s| scanwatch_store::trust::sensors_with_trust(&*s))
        .await?;
    let centre = st.centre.clone();
    let times =
        crate::blocking(move || centre.sensor_times().map_err(crate::AppError::from)).await?;
    let tcfg = *st.centre.time_config();
    let clock = (st.clock)();
    let mut b = String::with_capacity(16 * 1024);
    b.push_str("<h1>Sensors</h1>");
    let _ = write!(
        b,
        "<p class=\"note\">Last seen and heartbeats are the server's clock when they arrived (now {}). \
         Counters other than batches and events come from the sensor's last heartbeat; \
         busy waits are the times the centre asked the sensor to send again later (a 429 or 503 \
         with Retry-After: over its rate, too busy, or counting a backlog, docs/server.md). \
         \"Complete through\" is how far its delivered data is complete; a live sensor holds \
         windows back until it gets there (docs/time.md). A trusted sensor's sightings and IDS alerts count without corroboration (docs/security.md). A sensor with at least 1.3 times the median \
         sensor's events is flagged.</p>",
        time_el(clock)
    );
    b.push_str(
        "<table id=\"sensors\" class=\"data\"><thead><tr><th>name</th><th>state</th><th>last seen</th>\
         <th class=\"n\">batches</th><th class=\"n\">events</th><th class=\"n\">parse errors</th>\
         <th class=\"n\">spool backlog</th><th class=\"n\">drops</th><th class=\"n\">send failures</th><th class=\"n\">busy waits</th><th>last heartbeat</th>\
         <th>complete through</th><th>trust</th>",
    );
    let admin = user.role == Role::Admin;
    if admin {
        b.push_str("<th>admin</th>");
    }
    b.push_str("</tr></thead><tbody>");
    // A sensor far busier than its peers is flagged: it is the one trimming cuts
    // (docs/security.md), and worth a look (a noisy network block, a loop, a
    // hostile sensor).
    let mut counts: Vec<u64> = sensors
        .iter()
        .filter(|(s, _)| !s.revoked && s.events > 0)
        .map(|(s, _)| s.events)
        .collect();
    counts.sort_unstable();
    let median = match counts.len() {
        0 | 1 => None,
        n if n % 2 == 1 => Some(counts[n / 2] as f64),
        n => Some((counts[n / 2 - 1] + counts[n / 2]) as f64 / 2.0),
    };
    let busy = |events: u64| {
        median
            .filter(|m| *m > 0.0 && events as f64 >= BUSY_RATIO * m)
            .map(|m| events as f64 / m)
    };
    for (s, level) in &sensors {
        let hb: Value = s
            .heartbeat
            .as_ref()
            .and_then(|h| serde_json::from_str(&h.1).ok())
            .unwrap_or(Value::Null);
        let opt = |k: &str| {
            hb.get(k)
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_string(), num)
        };
        let backlog = match (
            hb.get("spool_batches").and_then(Value::as_u64),
            hb.get("spool_bytes").and_then(Value::as_u64),
        ) {
            (Some(n), Some(by)) => format!("{} ({} bytes)", num(n), num(by)),
            (Some(n), None) => num(n),
            _ => "-".into(),
        };
        let drops = hb.get("capture").filter(|c| c.is_object()).map_or_else(
            || "-".to_string(),
            |c| {
                let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
                num(n("dropped_kernel") + n("dropped_interface"))
            },
        );
        let state = if s.revoked {
            "revoked"
        } else if s.last_seen.is_some_and(|t| clock.0 - t.0 <= HOUR) {
            "active"
        } else if s.last_seen.is_some() {
            "quiet"
        } else {
            "never seen"
        };
        let _ = write!(
            b,
            "<tr data-sensor=\"{name}\" class=\"state-{state_cls}\"><td>{name}</td><td data-field=\"state\">{state}</td><td>{seen}</td>\
             <td class=\"n\" data-field=\"batches\">{}</td><td class=\"n\" data-field=\"events\">{}</td>\
             <td class=\"n\" data-field=\"parse_errors\">{}</td><td class=\"n\" data-field=\"spool_backlog\">{}</td>\
             <td class=\"n\" data-field=\"drops\">{}</td><td class=\"n\" data-field=\"send_failures\">{}</td>\
             <td class=\"n\" data-field=\"busy_refusals\">{}</td><td>{}</td>",
            num(s.batches),
            match busy(s.events) {
                Some(r) => format!(
                    "{} <span class=\"warn\" data-field=\"busy\" title=\"events against the median sensor\">{}× the median</span>",
                    num(s.events),
                    float(r, 1)
                ),
                None => num(s.events),
            },
            opt("parse_errors"),
            esc(&backlog),
            drops,
            opt("send_failures"),
            opt("busy_refusals"),
            s.heartbeat.as_ref().map_or_else(|| "-".into(), |h| time_el(h.0)),
            name = esc(&s.name),
            state_cls = state.replace(' ', "-"),
            seen = s.last_seen.map_or_else(|| "-".into(), time_el),
        );
        let t = times.get(&s.name).copied().unwrap_or_default();
        let progress = match (t.clock_ahead_ms, t.progress(&tcfg)) {
            (Some(ahead), _) => format!(
                "<span class=\"warn\">clock ahead by {}</span>",
                esc(&crate::human_ms(ahead))
            ),
            (None, Some(p)) => format!(
                "{} ({})",
                time_el(Timestamp(p)),
                if t.live(&tcfg, clock) { "live" } else { "idle" }
            ),
            (None, None) => "-".into(),
        };
        let _ = write!(b, "<td data-field=\"progress\">{progress}</td>");
        let _ = write!(
            b,
            "<td data-field=\"trust\" class=\"trust-{0}\">{0}</td>",
            level.name()
        );
        if admin {
            if s.revoked {
                b.push_str("<td></td>");
            } else {
                let _ = write!(
                    b,
                    "<td><form method=\"post\" action=\"/sensors/{}/revoke\" class=\"revoke\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <button type=\"submit\" data-confirm=\"revoke sensor {}? its token stops working at once\">revoke</button></form></td>",
                    url_part(&s.name),
                    esc(&user.csrf),
                    esc(&s.name),
                );
            }
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    if sensors.is_empty() {
        b.push_str(
            "<p>No sensors yet: add one with <code>scanwatch admin sensor add NAME</code>.</p>",
        );
    }
    Ok(page(layout("Sensors", &user, Nav::Sensors, &b)))
}

/// Events against the median sensor's from which a sensor is flagged as busy.
const BUSY_RATIO: f64 = 1.3;
