//! `kind = "webhook"`: POSTs JSON to a URL, signed with HMAC-SHA256.
//!
//! Headers: `X-Scanwatch-Signature: sha256=<hex HMAC-SHA256(secret, body)>` (when a
//! secret is set), `X-Scanwatch-Timestamp` (Unix seconds at sending),
//! `X-Scanwatch-Id` (the warning id) and `X-Scanwatch-Event` (`new` or `update`).
//! The signature covers the body only; the body carries the warning id, so a
//! receiver drops a replayed request by id.
//!
//! `format = "json"`: the warning's JSON (as the API shows it) plus
//! `"event": "new" | "update"`. `format = "slack"`: an incoming-webhook message that
//! Slack and Mattermost both accept (`text` plus legacy `attachments`, which both
//! render; Mattermost ignores `blocks`, so none are sent).

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::config::{WebhookConfig, WebhookFormat};
use crate::sink::{Sink, SinkError};
use crate::warning::{Event, Notification, Severity};

/// `sha256=<hex>` of HMAC-SHA256 over `body` with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct Webhook {
    cfg: WebhookConfig,
    agent: ureq::Agent,
}

impl Webhook {
    pub fn new(cfg: WebhookConfig) -> Result<Webhook, String> {
        let timeout = cfg.timeout.span();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A redirected POST would turn into a GET: refuse instead.
            .max_redirects(0)
            .user_agent(concat!("scanwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Webhook { cfg, agent })
    }
}

/// `&`, `<` and `>` are the three characters Slack's message text needs escaped;
/// Mattermost (CommonMark) decodes the same entities, so the text reads the same in
/// both.
pub fn slack_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#8b0000",
        Severity::High => "#d9342b",
        Severity::Medium => "#f2a900",
        Severity::Low => "#2f80ed",
        Severity::Info => "#9e9e9e",
    }
}

/// The link to a warning on the dashboard.
pub fn dashboard_link(base: &str, id: i64) -> String {
    format!("{}/alerts/{id}", base.trim_end_matches('/'))
}

/// The JSON body of `format = "json"`.
pub fn json_body(n: &Notification) -> Value {
    let stored = scanwatch_alert::StoredWarning {
        id: n.warning.id,
        warning: n.warning.record.clone(),
    };
    let mut v = serde_json::to_value(stored).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.insert("event".into(), Value::from(n.event.name()));
    }
    v
}

/// The body of `format = "slack"`.
pub fn slack_body(n: &Notification, dashboard: Option<&str>) -> Value {
    let w = &n.warning;
    let what = match n.event {
        Event::New => "New surge",
        Event::Update => "Surge update",
        Event::Resolved => "Surge over",
    };
    let title = format!(
        "{what}: {} {} ({})",
        w.severity.name().to_uppercase(),
        w.port_label(),
        w.confidence.name()
    );
    let text = format!("*{}*: {}", slack_escape(&title), slack_escape(&w.headline));
    let field = |t: &str, v: String| json!({"title": t, "value": v, "short": true});
    let mut fields = vec![
        field("Sources", w.sources.to_string()),
        field("Events", w.events.to_string()),
        field("Sensors", w.sensors.to_string()),
        field("Times normal", format!("{:.1}", w.times_normal)),
        field("Window", format!("{} – {}", w.window_start, w.window_end)),
        field("Surge since", w.episode_start.clone()),
    ];
    if !w.advisories.is_empty() {
        let ids: Vec<_> = w.advisories.iter().take(5).cloned().collect();
        fields.push(
            json!({"title": "Advisories", "value": slack_escape(&ids.join(", ")), "short": false}),
        );
    }
    let mut att = json!({
        "fallback": format!("{title}: {}", w.headline),
        "color": color(w.severity),
        "title": title,
        "text": slack_escape(&w.summary),
        "fields": fields,
        "footer": format!("scanwatch warning {}", w.id),
    });
    if let (Some(base), Value::Object(m)) = (dashboard, &mut att) {
        m.insert("title_link".into(), Value::from(dashboard_link(base, w.id)));
    }
    json!({"text": text, "attachments": [att]})
}

impl Sink for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn render(&self, n: &Notification) -> Result<String, SinkError> {
        let v = match self.cfg.format {
            WebhookFormat::Json => json_body(n),
            WebhookFormat::Slack => slack_body(n, self.cfg.dashboard_url.as_deref()),
        };
        serde_json::to_string(&v).map_err(|e| SinkError::Permanent(format!("cannot render: {e}")))
    }

    fn deliver(&self, n: &Notification, payload: &str) -> Result<(), SinkError> {
        let mut req = self
            .agent
            .post(&self.cfg.url)
            .header("Content-Type", "application/json")
            .header(
                "X-Scanwatch-Timestamp",
                &(n.now_ms.div_euclid(1000)).to_string(),
            )
            .header("X-Scanwatch-Id", &n.warning.id.to_string())
            .header("X-Scanwatch-Event", n.event.name());
        if let Some(secret) = &self.cfg.secret {
            req = req.header(
                "X-Scanwatch-Signature",
                &signature(secret.0.as_bytes(), payload.as_bytes()),
            );
        }
        match req.send(payload) {
            Ok(resp) => {
                let code = resp.status().as_u16();
                match code {
                    200..=299 => Ok(()),
                    408 | 425 | 429 | 500..=599 => {
                        Err(SinkError::Retry(format!("the receiver answered {code}")))
                    }
                    _ => Err(SinkError::Permanent(format!(
                        "the receiver answered {code}"
                    ))),
                }
            }
            Err(ureq::Error::BadUri(u)) => Err(SinkError::Permanent(format!("bad url: {u}"))),
            Err(e) => Err(SinkError::Retry(format!("request failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warning::Warning;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn note(event: Event) -> Notification {
        let mut v = crate::warning::tests::sample(9);
        v["headline"] = "tcp/445 <up> & away".into();
        Notification {
            warning: Warning::from_stored(9, &v.to_string()).expect("valid"),
            event,
            now_ms: 0,
        }
    }

    #[test]
    fn json_body_is_the_warning_plus_event() {
        let b = json_body(&note(Event::Update));
        assert_eq!(b["event"], "update");
        assert_eq!(b["id"], 9);
        assert_eq!(b["port"], 445);
        assert_eq!(b["top_sources"][0]["ip"], "192.0.2.1");
    }

    #[test]
    fn slack_body_has_text_and_attachments_escaped() {
        let b = slack_body(&note(Event::New), Some("https://sw.example.net/"));
        let text = b["text"].as_str().expect("text");
        assert!(
            text.starts_with("*New surge: HIGH tcp/445 (likely)*"),
            "{text}"
        );
        assert!(text.contains("&lt;up&gt; &amp; away"), "{text}");
        let a = &b["attachments"][0];
        assert_eq!(a["title_link"], "https://sw.example.net/alerts/9");
        assert_eq!(a["color"], "#d9342b");
        assert!(a["fields"].as_array().expect("fields").len() >= 6);
        assert!(b.get("blocks").is_none());
    }
}
