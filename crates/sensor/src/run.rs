//! The sensor loop: follow every source, keep unsolicited inbound events, spool them
//! in batches with the positions reached, and submit the spool to the centre,
//! oldest first, with exponential backoff. Stops when asked, or (with `once`) when
//! every source is read to its end and the spool is empty.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scanwatch_context::ids::{self, IdsLine};
use scanwatch_event::{Timestamp, WireEvent};
use scanwatch_formats::{detect, FormatSpec, LineOutcome, LineParser, ParserOptions};
use thiserror::Error;

use crate::capture::Capture;
use crate::follow::Follower;
use crate::rules::Rules;
use crate::spool::{Positions, Spool, SpoolError};

#[derive(Debug, Error)]
pub enum SensorError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid ca certificate: {0}")]
    Ca(String),
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
}

/// One source: a file and, optionally, its format (auto-detected otherwise).
#[derive(Clone)]
pub struct Source {
    pub path: PathBuf,
    pub format: Option<&'static dyn FormatSpec>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}",
            self.path.display(),
            self.format.map_or("auto", |s| s.name())
        )
    }
}

/// Sensor settings.
#[derive(Clone, Debug)]
pub struct SensorConfig {
    /// Base URL of the centre, e.g. `http://127.0.0.1:8470`.
    pub server: String,
    pub token: String,
    pub spool_dir: PathBuf,
    pub sources: Vec<Source>,
    /// Read existing files from their start instead of their end (backfill).
    pub from_start: bool,
    /// Spool size limit in bytes (default 256 MiB); when full, reading pauses.
    pub max_spool_bytes: u64,
    /// Exit once all sources are read and the spool is empty.
    pub once: bool,
    /// Pause between polls when idle (default 200 ms).
    pub poll: Duration,
    /// Reference time for syslog years (the edge passes the current time).
    pub reference_time: Timestamp,
    /// Local include/exclude rules and target anonymisation.
    pub rules: Rules,
    /// PEM certificates to trust for an `https://` centre instead of the public
    /// web PKI roots (a private CA or the centre's self-signed certificate).
    pub ca_pem: Option<Vec<u8>>,
    /// Capture unsolicited inbound TCP SYN and UDP on this interface (libpcap).
    pub capture: Option<String>,
}

/// The HTTP client: plain HTTP, or TLS (rustls) trusting `ca_pem` or the public roots.
fn agent(cfg: &SensorConfig) -> Result<ureq::Agent, SensorError> {
    let mut b = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30)));
    if let Some(pem) = &cfg.ca_pem {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item.map_err(|e| SensorError::Ca(e.to_string()))? {
                ureq::tls::PemItem::Certificate(c) => certs.push(c),
                _ => return Err(SensorError::Ca("expected only certificates".into())),
            }
        }
        if certs.is_empty() {
            return Err(SensorError::Ca("no certificate in the file".into()));
        }
        b = b.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    Ok(b.build().new_agent())
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorStats {
    pub lines: u64,
    pub events_kept: u64,
    pub events_ignored: u64,
    /// Unsolicited events the local rules left out.
    pub events_excluded: u64,
    pub parse_errors: u64,
    pub batches_sent: u64,
    pub batches_rejected: u64,
    pub send_failures: u64,
    /// Batches the centre refused because their events lie ahead of its clock
    /// (425): kept in the spool and retried; the sensor's clock needs fixing.
    pub clock_refusals: u64,
    /// The centre's last word on such a refusal (names the line and the skew).
    pub clock_refused: Option<String>,
    /// Everything logged up to this time (the sensor host's clock, ms since the
    /// epoch) has been delivered: every source was read to its end and the spool
    /// was empty. Sent in heartbeats as `complete_through` (docs/time.md).
    pub complete_through: Option<i64>,
}

struct Followed {
    follower: Follower,
    parser: Option<Box<dyn LineParser>>,
    format: Option<&'static dyn FormatSpec>,
    pending_lines: Vec<String>,
    /// An IDS alert log (Suricata EVE, fast.log): alerts also carry their rule,
    /// message and CVEs to the centre.
    ids: bool,
}

/// Formats whose lines can be IDS alerts naming CVEs.
const IDS_FORMATS: [&str; 2] = ["suricata", "fastlog"];

/// Reports the sensor's counters and spool backlog to the centre (best effort).
fn heartbeat(
    agent: &ureq::Agent,
    cfg: &SensorConfig,
    stats: &SensorStats,
    spool: &Spool,
    capture: Option<&Capture>,
) {
    let (batches, bytes) = spool.backlog();
    let body = serde_json::json!({
        "spool_batches": batches,
        "spool_bytes": bytes,
        "spool_full": spool.stats.full,
        "spool_corrupt": spool.stats.corrupt,
        "lines": stats.lines,
        "events_kept": stats.events_kept,
        "events_ignored": stats.events_ignored,
        "events_excluded": stats.events_excluded,
        "parse_errors": stats.parse_errors,
        "batches_sent": stats.batches_sent,
        "batches_rejected": stats.batches_rejected,
        "send_failures": stats.send_failures,
        "clock_refusals": stats.clock_refusals,
        "clock_refused": stats.clock_refused,
        "complete_through": stats.complete_through.map(|t| Timestamp(t).to_rfc3339()),
        "capture": capture.map(|c| {
            let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            serde_json::json!({
                "interface": c.iface,
                "frames": g(&c.stats.frames),
                "events": g(&c.stats.events),
                "ignored": g(&c.stats.ignored),
                "dropped_kernel": g(&c.stats.dropped_kernel),
                "dropped_interface": g(&c.stats.dropped_interface),
            })
        }),
    });
    let url = format!("{}/api/v1/heartbeat", cfg.server.trim_end_matches('/'));
    let _ = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {}", cfg.token))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_str());
}

/// The sensor host's clock (ms since the epoch): what a heartbeat's
/// `complete_through` is measured in, as the log lines it read were stamped on
/// this host.
fn host_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How often a running sensor reports its counters.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// How soon after the last heartbeat a sensor reports that its progress
/// (`complete_through`) moved.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// The outcome of one submission.
enum Sent {
    Accepted,
    /// Refused for good (4xx other than 408, 425 and 429): set aside, never retried.
    Rejected(u16),
    /// Refused for events ahead of the centre's clock (425): kept and retried,
    /// with the centre's message.
    TooEarly(String),
    /// Try again later (network error, 408, 429, 5xx).
    Retry,
}

fn submit(agent: &ureq::Agent, cfg: &SensorConfig, id: &str, body: &str) -> Sent {
    let url = format!("{}/api/v1/events", cfg.server.trim_end_matches('/'));
    let r = agent
        .post(&url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("Authorization", &format!("Bearer {}", cfg.token))
        .header("X-Scanwatch-Batch", id)
        .send(body);
    let Ok(r) = r else { return Sent::Retry };
    match r.status().as_u16() {
        200..=299 => Sent::Accepted,
        425 => Sent::TooEarly(
            r.into_body()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_else(|e| format!("unreadable answer: {e}")),
        ),
        // Over the rate, or the body was too slow to arrive (the centre's front
        // door, docs/security.md): the batch is fine, send it again later.
        408 | 429 => Sent::Retry,
        code @ 400..=499 => Sent::Rejected(code),
        _ => Sent::Retry,
    }
}

/// Runs until `stop` is set (or, with `once`, until everything is delivered).
pub fn run(
    cfg: &SensorConfig,
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
) -> Result<SensorStats, SensorError> {
    let agent = agent(cfg)?;
    let capture = cfg
        .capture
        .as_deref()
        .map(|iface| Capture::start(iface, Vec::new()))
        .transpose()?;
    if let Some(c) = &capture {
        log(&format!(
            "capturing on {} for {}",
            c.iface,
            c.addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut spool = Spool::open(&cfg.spool_dir, cfg.max_spool_bytes)?;
    let saved = spool.positions().clone();
    let mut sources: Vec<Followed> = cfg
        .sources
        .iter()
        .map(|s| {
            let key = s.path.display().to_string();
            Followed {
                follower: Follower::new(&s.path, saved.get(&key).copied(), cfg.from_start),
                parser: None,
                format: s.format,
                pending_lines: Vec::new(),
                ids: false,
            }
        })
        .collect();
    let opts = ParserOptions {
        reference_time: cfg.reference_time,
    };
    let ids_year = chrono::DateTime::from_timestamp_millis(cfg.reference_time.0)
        .map_or(1970, |d| chrono::Datelike::year(&d));
    let mut stats = SensorStats::default();
    let mut rules = cfg.rules.clone();
    let mut backoff = Duration::from_millis(200);
    let mut next_send = Instant::now();
    let mut next_heartbeat = Instant::now();
    let mut told_through: Option<i64> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut all_at_end = true;
        let read_at = host_clock_ms();
        // Read and spool, unless the spool is full (backpressure: lines stay unread).
        if spool.backlog().1 < cfg.max_spool_bytes {
            for src in &mut sources {
                let mut lines = std::mem::take(&mut src.pending_lines);
                let at_end =
                    src.follower
                        .poll(&mut lines, 1 << 20)
                        .map_err(|e| SensorError::Read {
                            path: src.follower.path().display().to_string(),
                            source: e,
                        })?;
                all_at_end &= at_end;
                if src.parser.is_none() {
                    let spec = src
                        .format
                        .or_else(|| detect(lines.iter().map(String::as_str)));
                    match spec {
                        Some(spec) => {
                            src.parser = Some(spec.parser(&opts));
                            src.ids = IDS_FORMATS.contains(&spec.name());
                        }
                        None if lines.len() < 50 && !at_end => {
                            src.pending_lines = lines; // not enough lines to tell yet
                            continue;
                        }
                        None => {
                            stats.parse_errors += lines.len() as u64;
                            if !lines.is_empty() {
                                log(&format!(
                                    "{}: cannot tell the log format; give it as PATH:FORMAT",
                                    src.follower.path().display()
                                ));
                            }
                            continue;
                        }
                    }
                }
                let Some(parser) = src.parser.as_mut() else {
                    continue;
                };
                // One poll chunk (at most 1 MiB of log) becomes one batch, spooled
                // together with the position reached: a crash replays nothing twice.
                let mut body = String::new();
                let mut n = 0usize;
                for line in &lines {
                    stats.lines += 1;
                    match parser.parse_line(line) {
                        LineOutcome::Event { mut event, .. } if event.is_unsolicited() => {
                            if rules.keep(&event) {
                                rules.apply(&mut event);
                                let mut w = WireEvent::from_event(&event, None);
                                if src.ids {
                                    if let IdsLine::Hit(h) = ids::parse_line(line, ids_year) {
                                        w.ids = Some(ids::wire_ids(&h));
                                    }
                                }
                                body.push_str(&w.to_line());
                                body.push('\n');
                                n += 1;
                            } else {
                                stats.events_excluded += 1;
                            }
                        }
                        LineOutcome::Event { .. } | LineOutcome::Skip => stats.events_ignored += 1,
                        LineOutcome::Error(_) => stats.parse_errors += 1,
                    }
                }
                stats.events_kept += n as u64;
                let mut positions: Positions = spool.positions().clone();
                positions.insert(
                    src.follower.path().display().to_string(),
                    src.follower.position(),
                );
                if n > 0 {
                    spool.append(&body, n, &positions)?;
                } else if &positions != spool.positions() {
                    spool.set_positions(&positions)?;
                }
            }
        }
        // Captured packets: one batch per poll, no log position to record.
        if let Some(c) = &capture {
            if spool.backlog().1 < cfg.max_spool_bytes {
                let mut body = String::new();
                let mut n = 0usize;
                for mut event in c.take() {
                    if rules.keep(&event) {
                        rules.apply(&mut event);
                        body.push_str(&WireEvent::from_event(&event, None).to_line());
                        body.push('\n');
                        n += 1;
                    } else {
                        stats.events_excluded += 1;
                    }
                }
                if n > 0 {
                    stats.events_kept += n as u64;
                    let positions = spool.positions().clone();
                    spool.append(&body, n, &positions)?;
                }
            }
        }
        // Send what waits, oldest first.
        while Instant::now() >= next_send {
            let Some(batch) = spool.oldest() else { break };
            match submit(&agent, cfg, &batch.id, &batch.body) {
                Sent::Accepted => {
                    spool.ack(batch.seq)?;
                    stats.batches_sent += 1;
                    backoff = Duration::from_millis(200);
                }
                Sent::Rejected(code) => {
                    log(&format!(
                        "batch {} refused by the centre ({code}); set aside",
                        batch.id
                    ));
                    spool.ack(batch.seq)?;
                    stats.batches_rejected += 1;
                }
                Sent::TooEarly(msg) => {
                    // Nothing from the future is counted, and nothing is lost: the
                    // batch waits in the spool until the clocks agree.
                    log(&format!(
                        "batch {} refused: its events are ahead of the centre's clock; kept in the spool ({msg})",
                        batch.id
                    ));
                    stats.clock_refusals += 1;
                    stats.clock_refused = Some(msg);
                    stats.send_failures += 1;
                    next_send = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
                Sent::Retry => {
                    stats.send_failures += 1;
                    next_send = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
        // Everything read so far is delivered: say so, with this host's clock.
        if all_at_end && spool.backlog().0 == 0 {
            stats.complete_through = Some(read_at);
        }
        // Progress is worth telling soon: the centre closes windows on it. A
        // heartbeat goes out at most every PROGRESS_EVERY when it moved, and every
        // HEARTBEAT_EVERY anyway.
        let moved = stats.complete_through > told_through;
        if moved && Instant::now() + HEARTBEAT_EVERY >= next_heartbeat + PROGRESS_EVERY {
            next_heartbeat = Instant::now();
        }
        if Instant::now() >= next_heartbeat {
            told_through = stats.complete_through;
            heartbeat(&agent, cfg, &stats, &spool, capture.as_ref());
            next_heartbeat = Instant::now() + HEARTBEAT_EVERY;
        }
        if cfg.once && all_at_end && spool.backlog().0 == 0 {
            heartbeat(&agent, cfg, &stats, &spool, capture.as_ref());
            break;
        }
        std::thread::sleep(cfg.poll);
    }
    Ok(stats)
}
