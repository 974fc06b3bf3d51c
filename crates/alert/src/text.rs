//! The text report: a top-ports table like the Internet Storm Center's, the busiest
//! windows, and every warning, most severe first, each explained in a sentence.

use std::collections::BTreeMap;
use std::fmt::Write;

use scanwatch_context::{port_info, service_name};
use scanwatch_context::{AlertContext, ContextData};
use scanwatch_detect::report::{PortRow, Report, WindowReport};
use scanwatch_detect::Alert;

use crate::lineage::FollowOn;
use crate::{base_num, by_severity, summary, thousands, times, window_span};

/// Input statistics the reader collected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub files: usize,
    pub lines: u64,
    pub parse_errors: u64,
    pub skipped_lines: u64,
    /// Paint the severities with ANSI colours (the caller decides: a terminal,
    /// and `NO_COLOR` not set).
    pub color: bool,
}

/// `[CRITICAL]`, padded inside the brackets to `width`, in colour when asked
/// (red for critical and high, yellow for medium, cyan for low, dim for info).
fn tag(sev: scanwatch_detect::Severity, width: usize, color: bool) -> String {
    use scanwatch_detect::Severity;
    let t = format!("[{:<width$}]", sev.name().to_uppercase());
    if !color {
        return t;
    }
    let code = match sev {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    format!("\x1b[{code}m{t}\x1b[0m")
}

fn ratio(x: u64, base: f64) -> String {
    times(x as f64 / base.max(1.0))
}

fn table(out: &mut String, rows: &[PortRow]) {
    let _ = writeln!(
        out,
        "  {:<10} {:<15} {:>9} {:>8} {:>8} {:>8}   {:>16} {:>16}",
        "port",
        "service",
        "events",
        "sources",
        "sensors",
        "targets",
        "sources/baseline",
        "events/baseline"
    );
    for r in rows {
        let c = &r.cell;
        let svc: String = service_name(c.proto, c.port).chars().take(15).collect();
        let _ = writeln!(
            out,
            "  {:<10} {:<15} {:>9} {:>8} {:>8} {:>8}   {:>16} {:>16}",
            format!("{}/{}", c.proto, c.port),
            svc,
            thousands(c.events),
            thousands(c.sources),
            thousands(c.sensors),
            thousands(c.targets),
            format!(
                "{} ({})",
                ratio(c.sources, r.baseline.sources.median),
                base_num(r.baseline.sources.median)
            ),
            format!(
                "{} ({})",
                ratio(c.events, r.baseline.events.median),
                base_num(r.baseline.events.median)
            ),
        );
    }
}

/// One closed window as a small table (for `--emit windows` in text mode).
pub fn window_text(out: &mut String, w: &WindowReport) {
    window_block(out, "Window", w);
}

fn window_block(out: &mut String, title: &str, w: &WindowReport) {
    let _ = writeln!(
        out,
        "{title} {} — {} events to ports from {} sensors",
        window_span(w.window.start, w.window.end),
        thousands(w.window.port_events),
        thousands(w.window.active_sensors)
    );
    table(out, &w.top);
    out.push('\n');
}

/// Renders the whole report. `header` is the run description line(s).
pub fn render_report(r: &Report, stats: &RunStats, header: &str) -> String {
    render_report_with(r, stats, header, None)
}

/// The report with each surge's context (port facts, explanation, mitigation,
/// exposed assets) when `ctx` is given.
pub fn render_report_with(
    r: &Report,
    stats: &RunStats,
    header: &str,
    ctx: Option<&ContextData>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} files, {} lines, {} events ({} unsolicited to a port, {} ICMP), {} parse errors, {} late events; {} windows, {} sensors",
        stats.files,
        thousands(stats.lines),
        thousands(r.events),
        thousands(r.port_events),
        thousands(r.icmp_events),
        thousands(stats.parse_errors),
        thousands(r.late_events),
        thousands(r.windows as u64),
        thousands(r.sensors.len() as u64),
    );
    let _ = writeln!(out, "{header}");
    if r.benign_events > 0 {
        let labels: Vec<String> = r
            .benign_by_label
            .iter()
            .map(|(l, n)| format!("{l} {}", thousands(*n)))
            .collect();
        let _ = writeln!(
            out,
            "known benign scanners: {} port events kept out of the counts ({})",
            thousands(r.benign_events),
            labels.join(", ")
        );
    }
    let _ = writeln!(out);
    if let Some(last) = &r.last {
        window_block(&mut out, "Top ports, last window", last);
    }
    for (i, w) in r.busiest.iter().enumerate() {
        window_block(&mut out, &format!("Busiest window #{}:", i + 1), w);
    }

    if r.alerts.is_empty() {
        let _ = writeln!(out, "No warnings.");
        return out;
    }
    // Surges: consecutive warning windows of one port.
    let mut surges: BTreeMap<(i64, scanwatch_event::Protocol, u16), Vec<&Alert>> = BTreeMap::new();
    for a in r.alerts.iter().filter(|a| a.sweep.is_none()) {
        surges
            .entry((a.episode_start.0, a.proto, a.port))
            .or_default()
            .push(a);
    }
    let mut peaks: Vec<(&Alert, &Vec<&Alert>)> = surges
        .values()
        .map(|v| {
            (
                *v.iter().max_by(|a, b| by_severity(b, a)).unwrap_or(&v[0]),
                v,
            )
        })
        .collect();
    // Context per surge, and follow-on links made in the order the surges began.
    let mut lineage = crate::lineage::Lineage::new();
    let mut in_time: Vec<&(&Alert, &Vec<&Alert>)> = peaks.iter().collect();
    in_time.sort_by_key(|(p, all)| (all[0].window_start, p.proto.number(), p.port));
    let mut contexts: BTreeMap<(i64, u8, u16), (AlertContext, Option<FollowOn>)> = BTreeMap::new();
    if let Some(ctx) = ctx {
        for (peak, all) in in_time {
            let first = all[0];
            let c = ctx.enrich(peak.proto, peak.port, first.window_start, peak.window_end);
            let lead = crate::lineage::leading_advisory(
                c.assessment.confidence,
                c.assessment.candidates.first().map(|k| k.id.as_str()),
            )
            .map(str::to_string);
            let follows = lead.and_then(|l| {
                lineage.observe(&l, &peak.proto.name(), peak.port, peak.episode_start)
            });
            contexts.insert(
                (peak.episode_start.0, peak.proto.number(), peak.port),
                (c, follows),
            );
        }
    }
    peaks.sort_by(|a, b| by_severity(a.0, b.0));
    let _ = writeln!(
        out,
        "Surges and trends ({}), most severe first",
        peaks.len()
    );
    for (peak, all) in &peaks {
        let first = all[0];
        let info = port_info(peak.proto, peak.port);
        let _ = writeln!(
            out,
            "  {} {} on {}/{} {}{} — score {:.1}",
            tag(peak.severity, 0, stats.color),
            peak.kind.name(),
            peak.proto,
            peak.port,
            info.map_or("", |i| i.name),
            info.filter(|i| !i.note.is_empty())
                .map_or(String::new(), |i| format!(" ({})", i.note)),
            peak.score
        );
        let _ = writeln!(out, "    peak: {}", summary(peak));
        let _ = writeln!(
            out,
            "    began {} ({} at score {:.1}); {} warning window{}",
            window_span(first.window_start, first.window_end),
            first.severity.name(),
            first.score,
            all.len(),
            if all.len() == 1 { "" } else { "s" }
        );
        if !peak.top_sources.is_empty() {
            let tops: Vec<String> = peak
                .top_sources
                .iter()
                .take(5)
                .map(|(ip, n)| format!("{ip} ({})", thousands(*n)))
                .collect();
            let _ = writeln!(out, "    top sources: {}", tops.join(", "));
        }
        let sensors: Vec<String> = peak
            .top_sensors
            .iter()
            .take(5)
            .map(|(k, n)| format!("{} ({})", r.sensor_name(*k), thousands(*n)))
            .collect();
        let _ = writeln!(
            out,
            "    busiest sensors: {} — the busiest has {:.0}% of the events",
            sensors.join(", "),
            peak.top_sensor_share * 100.0
        );
        if let Some((c, follows)) =
            contexts.get(&(peak.episode_start.0, peak.proto.number(), peak.port))
        {
            context_block(&mut out, c);
            if let Some(f) = follows {
                let _ = writeln!(out, "    {}", f.sentence());
            }
        }
    }
    sweep_block(&mut out, &r.alerts, stats.color);
    let mut all: Vec<&Alert> = r.alerts.iter().collect();
    all.sort_by(|a, b| by_severity(a, b));
    let _ = writeln!(out, "\nAll warnings ({}), most severe first", all.len());
    for a in all {
        let _ = writeln!(
            out,
            "  {} score {:>4.1}  {}",
            tag(a.severity, 8, stats.color),
            a.score,
            summary(a)
        );
    }
    out
}

/// The sweeps: one line per campaign (its consecutive windows together).
fn sweep_block(out: &mut String, alerts: &[Alert], color: bool) {
    let mut campaigns: BTreeMap<(i64, std::net::IpAddr, u8), Vec<&Alert>> = BTreeMap::new();
    for a in alerts {
        if let Some(sw) = &a.sweep {
            campaigns
                .entry((a.episode_start.0, sw.prefix, sw.prefix_len))
                .or_default()
                .push(a);
        }
    }
    if campaigns.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nSweeps ({}): sources probing many ports, kept out of the port counts",
        campaigns.len()
    );
    for all in campaigns.values() {
        let peak = all
            .iter()
            .max_by_key(|a| a.sweep.as_ref().map_or(0, |s| s.ports))
            .unwrap_or(&all[0]);
        let _ = writeln!(
            out,
            "  {} {}; {} window{}",
            tag(peak.severity, 0, color),
            summary(peak),
            all.len(),
            if all.len() == 1 { "" } else { "s" }
        );
        if let Some(sw) = &peak.sweep {
            let tops: Vec<String> = sw
                .top_sources
                .iter()
                .take(5)
                .map(|s| format!("{} ({} ports)", s.ip, thousands(s.ports)))
                .collect();
            let _ = writeln!(out, "    sources: {}", tops.join(", "));
        }
    }
}

/// The context lines of one surge, indented under it.
pub fn context_block(out: &mut String, c: &AlertContext) {
    let a = &c.assessment;
    if let Some(p) = &c.port {
        if !p.note.is_empty() {
            let _ = writeln!(
                out,
                "    what it is: {} — {} [{}]",
                p.name, p.note, p.source
            );
        }
    }
    let _ = writeln!(out, "    assessment: {}", a.statement);
    let _ = writeln!(out, "    priority: {}", a.priority_reason);
    if !a.candidates.is_empty() {
        let _ = writeln!(out, "    possible explanations, best first:");
    }
    for (i, k) in a.candidates.iter().enumerate() {
        let _ = writeln!(
            out,
            "      {}. {} (score {:.1}) {}{}",
            i + 1,
            k.id,
            k.score,
            k.title,
            k.published
                .as_deref()
                .map_or(String::new(), |p| format!(", published {p}"))
        );
        let _ = writeln!(
            out,
            "         {} match: {}",
            k.match_strength.name(),
            k.match_reason
        );
        if !k.exploits.is_empty() {
            let shown: Vec<&str> = k.exploits.iter().take(5).map(String::as_str).collect();
            let _ = writeln!(
                out,
                "         {}: {}{}",
                scanwatch_context::explain::exploits_phrase(k.exploits.len(), k.exploits_at_surge),
                shown.join("; "),
                if k.exploits.len() > 5 { "; …" } else { "" }
            );
        }
        if let Some(kev) = &k.kev {
            let _ = writeln!(
                out,
                "         in CISA KEV since {}{}",
                kev.date_added.as_deref().unwrap_or("?"),
                if kev.known_ransomware {
                    " (used by ransomware)"
                } else {
                    ""
                }
            );
        }
        if let Some(ids) = &k.ids {
            let _ = writeln!(
                out,
                "         IDS: {} alerts from {} sources ({})",
                ids.alerts,
                ids.sources,
                ids.signatures.join("; ")
            );
        }
        let _ = writeln!(out, "         fix: {}", k.fix.statement);
        if let Some(p) = &k.next_patch_day {
            let _ = writeln!(
                out,
                "         next scheduled {}: {} ({} days after the surge began)",
                p.name, p.date, p.days_after_surge
            );
        }
        for w in k.fix.workarounds.iter().take(3) {
            let _ = writeln!(out, "         workaround: {w}");
        }
        if !k.exploit_dates.is_empty() {
            let dated: Vec<String> = k
                .exploit_dates
                .iter()
                .take(8)
                .map(|e| format!("{} {}", e.published.as_deref().unwrap_or("?"), e.id))
                .collect();
            let _ = writeln!(out, "         exploits over time: {}", dated.join(", "));
        }
    }
    let m = &a.mitigation;
    if !m.block.is_empty() {
        let what: Vec<String> = m
            .block
            .iter()
            .map(|b| format!("{} ({})", b.label(), b.why))
            .collect();
        let _ = writeln!(
            out,
            "    block new inbound connections to: {}",
            what.join("; ")
        );
        for (name, text) in [
            ("nftables", &m.rules.nftables),
            ("iptables", &m.rules.iptables),
            ("pf", &m.rules.pf),
            ("windows", &m.rules.windows),
        ] {
            // The rule lines only, once each (nftables repeats them in its input
            // and forward chains; iptables for IPv6 and FORWARD).
            let mut rules: Vec<&str> = Vec::new();
            for l in text.lines().map(str::trim) {
                let rule =
                    l.contains("dport") || l.starts_with("block ") || l.starts_with("netsh ");
                if rule
                    && !l.starts_with("ip6tables")
                    && !l.contains(" FORWARD ")
                    && !rules.contains(&l)
                {
                    rules.push(l);
                }
            }
            let _ = writeln!(out, "      {name}:");
            for l in &rules {
                let _ = writeln!(out, "        {l}");
            }
        }
    }
    for r in &m.required_actions {
        let _ = writeln!(out, "    required action (CISA KEV): {r}");
    }
    if c.exposed_total > 0 {
        let _ = writeln!(
            out,
            "    your most exposed assets ({} of {}):",
            c.exposed.len(),
            c.exposed_total
        );
        for e in &c.exposed {
            let _ = writeln!(
                out,
                "      {} {} (score {}): {}",
                e.host,
                e.address.map_or(String::new(), |a| a.to_string()),
                e.score,
                e.reasons.join(", ")
            );
        }
    }
}
