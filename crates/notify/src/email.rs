//! `kind = "email"`: a plain-text email over SMTP (lettre, rustls with the ring
//! provider and the webpki roots plus an optional private CA).
//!
//! Subject: `[scanwatch] HIGH tcp/445: <headline>` (`update:` after the prefix for
//! updates). Body: the headline, what the notification is, the summary, the
//! mitigations, the advisories and, with `dashboard_url`, a link to the warning.

use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{EmailConfig, SmtpTls};
use crate::sink::{Sink, SinkError};
use crate::warning::{Event, Notification};

pub struct Email {
    cfg: EmailConfig,
    from: Mailbox,
    to: Vec<Mailbox>,
    envelope: Envelope,
    transport: SmtpTransport,
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The subject of a notification.
pub fn subject(prefix: &str, n: &Notification) -> String {
    let w = &n.warning;
    let upd = match n.event {
        Event::New => "",
        Event::Update => "update: ",
        Event::Resolved => "over: ",
    };
    let s = format!(
        "{upd}{} {}: {}",
        w.severity.name().to_uppercase(),
        w.port_label(),
        one_line(&w.headline)
    );
    if prefix.is_empty() {
        s
    } else {
        format!("{prefix} {s}")
    }
}

/// The plain-text body of a notification.
pub fn body(n: &Notification, dashboard: Option<&str>) -> String {
    let w = &n.warning;
    let mut b = String::new();
    b.push_str(&w.headline);
    b.push_str("\n\n");
    b.push_str(&match n.event {
        Event::New => format!(
            "New surge on {} since {} (severity {}, confidence {}).\n",
            w.port_label(),
            w.episode_start,
            w.severity.name(),
            w.confidence.name()
        ),
        Event::Update => format!(
            "Update: the surge on {} since {} grew to {} sources (severity {}, confidence {}).\n",
            w.port_label(),
            w.episode_start,
            w.sources,
            w.severity.name(),
            w.confidence.name()
        ),
        Event::Resolved => format!(
            "Over: the surge on {} since {} has had no warning for more than a window; its last warning was the window ending {}.\n",
            w.port_label(),
            w.episode_start,
            w.window_end
        ),
    });
    b.push_str(&format!(
        "Window {} to {}: {} events from {} sources seen by {} sensors, {:.1} times normal.\n",
        w.window_start, w.window_end, w.events, w.sources, w.sensors, w.times_normal
    ));
    if !w.summary.is_empty() {
        b.push('\n');
        b.push_str(&w.summary);
        b.push('\n');
    }
    if !w.mitigations.is_empty() {
        b.push_str("\nMitigations:\n");
        for m in &w.mitigations {
            b.push_str(&format!("\n[{}]\n{}\n", m.platform, m.rule.trim_end()));
        }
    }
    if !w.advisories.is_empty() {
        b.push_str(&format!("\nAdvisories: {}\n", w.advisories.join(", ")));
    }
    if let Some(base) = dashboard {
        b.push_str(&format!(
            "\nDashboard: {}\n",
            crate::webhook::dashboard_link(base, w.id)
        ));
    }
    b.push_str(&format!("\n-- \nscanwatch warning {}\n", w.id));
    b
}

impl Email {
    /// Reads `ca_file` when one is configured.
    pub fn new(cfg: EmailConfig) -> Result<Email, String> {
        let timeout = cfg.timeout.span();
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("invalid from address: {e}"))?;
        let to = cfg
            .to
            .iter()
            .map(|t| t.parse::<Mailbox>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("invalid to address: {e}"))?;
        let envelope = Envelope::new(
            Some(from.email.clone()),
            to.iter().map(|m| m.email.clone()).collect(),
        )
        .map_err(|e| format!("invalid envelope: {e}"))?;
        let tls = if cfg.tls == SmtpTls::None {
            Tls::None
        } else {
            let mut p = TlsParameters::builder(cfg.host.clone());
            if let Some(path) = &cfg.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("invalid ca_file {}: {e}", path.display()))?;
                p = p.add_root_certificate(cert);
            }
            let p = p
                .build_rustls()
                .map_err(|e| format!("cannot set up TLS: {e}"))?;
            match cfg.tls {
                SmtpTls::Starttls => Tls::Required(p),
                SmtpTls::Opportunistic => Tls::Opportunistic(p),
                _ => Tls::Wrapper(p),
            }
        };
        let mut b = SmtpTransport::builder_dangerous(cfg.host.as_str())
            .port(cfg.effective_port())
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            b = b.credentials(Credentials::new(u.clone(), p.0.clone()));
        }
        Ok(Email {
            transport: b.build(),
            cfg,
            from,
            to,
            envelope,
        })
    }
}

impl Sink for Email {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn render(&self, n: &Notification) -> Result<String, SinkError> {
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject(&self.cfg.subject_prefix, n))
            .date(SystemTime::UNIX_EPOCH + Duration::from_millis(n.now_ms.max(0).unsigned_abs()))
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            m = m.to(t.clone());
        }
        let msg = m
            .body(body(n, self.cfg.dashboard_url.as_deref()))
            .map_err(|e| SinkError::Permanent(format!("cannot build the email: {e}")))?;
        // lettre encodes non-ASCII bodies (quoted-printable or base64) and headers
        // (RFC 2047), so the formatted message is ASCII.
        String::from_utf8(msg.formatted())
            .map_err(|e| SinkError::Permanent(format!("cannot build the email: {e}")))
    }

    fn deliver(&self, _n: &Notification, payload: &str) -> Result<(), SinkError> {
        match self.transport.send_raw(&self.envelope, payload.as_bytes()) {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SinkError::Permanent(format!("smtp: {e}"))),
            Err(e) => Err(SinkError::Retry(format!("smtp: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warning::Warning;

    fn note(event: Event) -> Notification {
        Notification {
            warning: Warning::from_stored(9, &crate::warning::tests::sample(9).to_string())
                .expect("valid"),
            event,
            now_ms: 1_795_000_000_000,
        }
    }

    #[test]
    fn subject_and_body() {
        assert_eq!(
            subject("[scanwatch]", &note(Event::New)),
            "[scanwatch] HIGH tcp/445: tcp/445: 120 sources, 9.5 times normal"
        );
        assert!(subject("[sw]", &note(Event::Update)).starts_with("[sw] update: HIGH tcp/445"));
        let b = body(&note(Event::New), Some("https://sw.example.net"));
        assert!(b.contains("Scanning of SMB.\nBlock it."), "{b}");
        assert!(b.contains("[nftables]\ntcp dport 445 drop"), "{b}");
        assert!(
            b.contains("Dashboard: https://sw.example.net/alerts/9"),
            "{b}"
        );
        assert!(!body(&note(Event::New), None).contains("Dashboard"));
    }
}
