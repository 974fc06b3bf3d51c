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
use crate::listen::{ListenStats, Listener, Transport};

/// How long a stop waits for the syslog receivers to take in what reached this
/// host (until their senders close, at most this).
const FINISH_WITHIN: Duration = Duration::from_secs(1);
use crate::rules::Rules;
use crate::send::{self, Shared};
use crate::spool::{Positions, Spool, SpoolError};
use std::sync::Arc;

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
    #[error("cannot receive syslog on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// A syslog receiver to run: where, over what, and the format of its messages
/// (detected from the first ones when not given).
#[derive(Clone)]
pub struct ListenSpec {
    pub transport: Transport,
    pub addr: std::net::SocketAddr,
    pub format: Option<&'static dyn FormatSpec>,
    /// The certificate and key a TLS receiver presents.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {}:{}",
            self.transport,
            self.addr,
            self.format.map_or("auto", |s| s.name())
        )
    }
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
    /// Syslog receivers (UDP or TCP) whose messages are sources like files.
    pub listen: Vec<ListenSpec>,
    /// A journald source (`journalctl --follow`), its format detected from its
    /// first entries.
    pub journal: Option<crate::journal::JournalSpec>,
}

/// The HTTP client: plain HTTP, or TLS (rustls) trusting `ca_pem` or the public roots.
fn agent(cfg: &SensorConfig) -> Result<ureq::Agent, SensorError> {
    http_agent(cfg.ca_pem.as_deref())
}

/// An HTTP client for the centre (30 s per request): plain HTTP, or TLS (rustls)
/// trusting only the certificates of `ca_pem` (PEM), or the public roots when none.
pub fn http_agent(ca_pem: Option<&[u8]>) -> Result<ureq::Agent, SensorError> {
    let mut b = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30)));
    if let Some(pem) = ca_pem {
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
    /// Submissions the centre refused for the token (401, 403): the batches stay
    /// in the spool.
    pub auth_refusals: u64,
    pub send_failures: u64,
    /// Batches the centre refused because their events lie ahead of its clock
    /// (425): kept in the spool and retried; the sensor's clock needs fixing.
    pub clock_refusals: u64,
    /// The centre's last word on such a refusal (names the line and the skew).
    pub clock_refused: Option<String>,
    /// Batches the centre asked to send again later (429 or 503 with
    /// `Retry-After`, e.g. while it counts a backlog): kept and sent after it.
    pub busy_refusals: u64,
    /// Everything logged up to this time (the sensor host's clock, ms since the
    /// epoch) has been delivered: every source was read to its end and the spool
    /// was empty. Sent in heartbeats as `complete_through` (docs/time.md).
    pub complete_through: Option<i64>,
    /// Bytes of accepted batches on the wire (compressed), and before compression.
    pub wire_bytes: u64,
    pub body_bytes: u64,
}

/// Where a source's lines come from: a followed file, a syslog receiver, or the
/// journal.
enum Input {
    File(Follower),
    Listen(Listener),
    Journal(crate::journal::Journal),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(f) => f.path().display().to_string(),
            Input::Listen(l) => l.name.clone(),
            Input::Journal(j) => j.name().to_string(),
        }
    }

    /// Reads what is there (one read chunk of a file, or the messages received);
    /// true when nothing more is waiting.
    fn read(&mut self, lines: &mut Vec<String>) -> Result<bool, SensorError> {
        match self {
            Input::File(f) => f.poll(lines, READ_CHUNK).map_err(|e| SensorError::Read {
                path: f.path().display().to_string(),
                source: e,
            }),
            Input::Listen(l) => {
                let got = l.take(BATCH_EVENTS);
                let caught_up = got.len() < BATCH_EVENTS;
                lines.extend(got);
                Ok(caught_up)
            }
            Input::Journal(j) => Ok(j.poll(lines, BATCH_EVENTS)),
        }
    }
}

struct Followed {
    input: Input,
    parser: Option<Box<dyn LineParser>>,
    format: Option<&'static dyn FormatSpec>,
    pending_lines: Vec<String>,
    /// Wire events parsed but not yet spooled (a batch being filled), their
    /// number, and when the first of them was read.
    body: String,
    events: usize,
    since: Option<Instant>,
    /// The batch in `body` was refused by a full spool: it is spooled before
    /// this source reads on (`spool_filled`).
    refused: bool,
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
    shared: &Shared,
    capture: Option<&Capture>,
    listens: &[(String, Arc<ListenStats>)],
) {
    let (batches, bytes, spool_stats) = {
        let s = lock(&shared.spool);
        let (b, n) = s.backlog();
        (b, n, s.stats)
    };
    let body = serde_json::json!({
        "spool_batches": batches,
        "spool_bytes": bytes,
        "spool_full": spool_stats.full,
        "spool_corrupt": spool_stats.corrupt,
        "lines": stats.lines,
        "events_kept": stats.events_kept,
        "events_ignored": stats.events_ignored,
        "events_excluded": stats.events_excluded,
        "parse_errors": stats.parse_errors,
        "batches_sent": stats.batches_sent,
        "batches_rejected": stats.batches_rejected,
        "auth_refusals": stats.auth_refusals,
        "send_failures": stats.send_failures,
        "clock_refusals": stats.clock_refusals,
        "clock_refused": stats.clock_refused,
        "busy_refusals": stats.busy_refusals,
        "complete_through": stats.complete_through.map(|t| Timestamp(t).to_rfc3339()),
        "syslog": listens.iter().map(|(name, st)| {
            let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            serde_json::json!({
                "listen": name,
                "messages": g(&st.messages),
                "dropped": g(&st.dropped),
                "malformed": g(&st.malformed),
                "connections": g(&st.connections),
            })
        }).collect::<Vec<_>>(),
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

/// Bytes of log read from one source per pass (about 4,000 netfilter lines).
const READ_CHUNK: usize = 1 << 20;

/// A batch is cut once it holds this many bytes of wire events (about 12,000
/// netfilter events; about 250 KiB gzip'd) ...
const BATCH_BYTES: usize = 2 << 20;

/// ... or this many events, whichever comes first. With one more pass of short
/// lines on top, a batch stays well under the centre's default limits (100,000
/// events, 64 MiB decompressed, 8 MiB as sent).
const BATCH_EVENTS: usize = 20_000;

/// How long read lines may wait to fill a batch before it is spooled and sent.
const LINGER: Duration = Duration::from_secs(1);

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The reading thread's counters with the sender's.
fn merged(stats: &SensorStats, shared: &Shared) -> SensorStats {
    let c = lock(&shared.counters).clone();
    SensorStats {
        batches_sent: c.batches_sent,
        batches_rejected: c.batches_rejected,
        auth_refusals: c.auth_refusals,
        send_failures: c.send_failures,
        clock_refusals: c.clock_refusals,
        clock_refused: c.clock_refused,
        busy_refusals: c.busy_refusals,
        wire_bytes: c.wire_bytes,
        body_bytes: c.body_bytes,
        ..stats.clone()
    }
}

/// Runs until `stop` is set (or, with `once`, until everything is delivered).
///
/// Two threads: this one follows the sources, parses and spools; a sender
/// ([`crate::send`]) submits the spool meanwhile. While any source is behind,
/// reading goes on without pausing; `poll` is the pause once all are read to
/// their end (or while the spool is full).
pub fn run(cfg: &SensorConfig, stop: &AtomicBool) -> Result<SensorStats, SensorError> {
    let agent = agent(cfg)?;
    let capture = cfg
        .capture
        .as_deref()
        .map(|iface| Capture::start(iface, Vec::new()))
        .transpose()?;
    if let Some(c) = &capture {
        tracing::info!(
            interface = %c.iface,
            "capturing on {} for {}",
            c.iface,
            c.addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut listeners = Vec::new();
    for l in &cfg.listen {
        let r = Listener::start(l.transport, l.addr, l.tls.clone()).map_err(|e| {
            SensorError::Listen {
                addr: l.addr.to_string(),
                source: e,
            }
        })?;
        tracing::info!(listen = %r.name, "receiving syslog on {}", r.name);
        listeners.push((r, l.format));
    }
    let shared = Shared::new(Spool::open(&cfg.spool_dir, cfg.max_spool_bytes)?);
    // Set when the reader leaves (asked to stop, or failed): the sender stops too.
    let halt = AtomicBool::new(false);
    let target = send::Target {
        agent: &agent,
        server: &cfg.server,
        token: &cfg.token,
    };
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let r = send::run(&target, &shared, &halt, cfg.poll);
            if r.is_err() {
                halt.store(true, Ordering::Relaxed);
            }
            r
        });
        let read = read_loop(
            cfg,
            stop,
            &halt,
            &agent,
            &shared,
            capture.as_ref(),
            listeners,
        );
        if read.is_err() || stop.load(Ordering::Relaxed) {
            halt.store(true, Ordering::Relaxed);
        }
        shared.reader_done.store(true, Ordering::Relaxed);
        shared.notify();
        let sent = sender
            .join()
            .unwrap_or(Err(crate::spool::SpoolError::SenderPanicked));
        let stats = read?;
        sent?;
        Ok(merged(&stats, &shared))
    })
}

/// Spools a source's batch being filled, with the file position reached (a file),
/// or only records the position when no event was kept. Returns whether it did:
/// a spool too full for the batch (`Spool::append`) leaves it in `src`, its lines
/// read and their position not saved, marked `refused`: the source reads nothing
/// more until it is spooled, so nothing read is dropped and memory holds one
/// batch (a first version dropped the batch, and the next one saved a position
/// past its lines).
fn spool_filled(src: &mut Followed, shared: &Shared) -> Result<bool, SensorError> {
    let mut spool = lock(&shared.spool);
    let mut positions: Positions = spool.positions().clone();
    match &src.input {
        Input::File(f) => {
            positions.insert(f.path().display().to_string(), f.position());
        }
        Input::Journal(j) => {
            if let Some(p) = j.position() {
                positions.insert(j.name().to_string(), p);
            }
        }
        Input::Listen(_) => {}
    }
    let body = std::mem::take(&mut src.body);
    let n = std::mem::take(&mut src.events);
    let since = src.since.take();
    if n > 0 {
        if spool.append(&body, n, &positions)?.is_none() {
            (src.body, src.events, src.since, src.refused) = (body, n, since, true);
            return Ok(false);
        }
        drop(spool);
        shared.notify();
    } else if &positions != spool.positions() {
        spool.set_positions(&positions)?;
    }
    src.refused = false;
    Ok(true)
}

#[allow(clippy::too_many_arguments)] // the run's parts, each used once
fn read_loop(
    cfg: &SensorConfig,
    stop: &AtomicBool,
    halt: &AtomicBool,
    agent: &ureq::Agent,
    shared: &Shared,
    capture: Option<&Capture>,
    listeners: Vec<(Listener, Option<&'static dyn FormatSpec>)>,
) -> Result<SensorStats, SensorError> {
    let saved = lock(&shared.spool).positions().clone();
    let mut sources: Vec<Followed> = cfg
        .sources
        .iter()
        .map(|s| {
            let key = s.path.display().to_string();
            Followed {
                input: Input::File(Follower::new(
                    &s.path,
                    saved.get(&key).copied(),
                    cfg.from_start,
                )),
                parser: None,
                format: s.format,
                pending_lines: Vec::new(),
                body: String::new(),
                events: 0,
                since: None,
                refused: false,
                ids: false,
            }
        })
        .collect();
    let listens: Vec<(String, Arc<ListenStats>)> = listeners
        .iter()
        .map(|(l, _)| (l.name.clone(), l.stats.clone()))
        .collect();
    if let Some(spec) = &cfg.journal {
        let j =
            crate::journal::Journal::start(spec, saved.get(&spec.name()).copied(), cfg.from_start)
                .map_err(|e| SensorError::Read {
                    path: spec.name(),
                    source: e,
                })?;
        tracing::info!(source = %spec.name(), "following {}", spec.name());
        sources.push(Followed {
            input: Input::Journal(j),
            parser: None,
            format: None,
            pending_lines: Vec::new(),
            body: String::new(),
            events: 0,
            since: None,
            refused: false,
            ids: false,
        });
    }
    sources.extend(listeners.into_iter().map(|(l, format)| Followed {
        input: Input::Listen(l),
        parser: None,
        format,
        pending_lines: Vec::new(),
        body: String::new(),
        events: 0,
        since: None,
        refused: false,
        ids: false,
    }));
    let opts = ParserOptions {
        reference_time: cfg.reference_time,
    };
    let ids_year = chrono::DateTime::from_timestamp_millis(cfg.reference_time.0)
        .map_or(1970, |d| chrono::Datelike::year(&d));
    let mut stats = SensorStats::default();
    let mut rules = cfg.rules.clone();
    let mut next_heartbeat = Instant::now();
    let mut told_through: Option<i64> = None;
    let spool_full = || {
        let s = lock(&shared.spool);
        s.backlog().1 >= cfg.max_spool_bytes
    };
    let backlog = || lock(&shared.spool).backlog().0;
    let has_receivers = sources.iter().any(|s| matches!(s.input, Input::Listen(_)));
    // Asked to stop with syslog receivers: they take in what already reached this
    // host (bounded: FINISH_WITHIN), and one last pass parses it, so the spool
    // after the loop holds it (received messages exist nowhere else).
    let mut finishing = false;
    // Whether the last pass took everything the receivers held, and how many
    // final passes ran (bounded, in case a sender outpaces the stop).
    let (mut receivers_empty, mut final_passes) = (false, 0u32);
    // Captured packets' batch that a full spool refused.
    let mut capture_held: Option<(String, usize)> = None;
    while !halt.load(Ordering::Relaxed) {
        if stop.load(Ordering::Relaxed) {
            if !has_receivers || (finishing && (receivers_empty || final_passes >= 64)) {
                break;
            }
            final_passes += 1;
        }
        if stop.load(Ordering::Relaxed) && !finishing {
            for src in &sources {
                if let Input::Listen(l) = &src.input {
                    l.finish(FINISH_WITHIN);
                }
            }
            finishing = true;
        }
        let mut all_at_end = true;
        receivers_empty = true;
        // Some source holds lines read but not yet spooled (a batch filling).
        let mut held = false;
        // Some source's batch did not fit in the spool (it waits in memory).
        let mut refused = false;
        let full = spool_full();
        let read_at = host_clock_ms();
        // Read and spool, unless the spool is full (backpressure: lines stay unread).
        if !full {
            for src in &mut sources {
                if src.refused && !spool_filled(src, shared)? {
                    // Still no room: read nothing more here, look again later.
                    (held, refused) = (true, true);
                    continue;
                }
                let mut lines = std::mem::take(&mut src.pending_lines);
                let at_end = src.input.read(&mut lines)?;
                all_at_end &= at_end;
                if matches!(src.input, Input::Listen(_)) {
                    receivers_empty &= at_end;
                }
                if src.parser.is_none() {
                    let spec = src
                        .format
                        .or_else(|| detect(lines.iter().map(String::as_str)));
                    match spec {
                        Some(spec) => {
                            src.parser = Some(spec.parser(&opts));
                            src.ids = IDS_FORMATS.contains(&spec.name());
                        }
                        // Not enough lines to tell yet: a file that has more, or a
                        // receiver (more messages will come).
                        None if lines.len() < 50
                            && !finishing
                            && (!at_end
                                || matches!(src.input, Input::Listen(_) | Input::Journal(_))) =>
                        {
                            src.pending_lines = lines;
                            continue;
                        }
                        None => {
                            stats.parse_errors += lines.len() as u64;
                            if !lines.is_empty() {
                                tracing::error!(
                                    source = %src.input.name(),
                                    "{}: cannot tell the log format; give it as SOURCE:FORMAT",
                                    src.input.name()
                                );
                            }
                            continue;
                        }
                    }
                }
                let Some(parser) = src.parser.as_mut() else {
                    continue;
                };
                // Lines become wire events in the source's batch being filled. A
                // batch is spooled, with the position reached, when it holds a read
                // chunk's worth, when its first line was read LINGER ago, or when a
                // `once` run reached the end: at a steady trickle one batch a second,
                // not one per pass (each costs three fsyncs here and a commit at the
                // centre). Lines read but not spooled are read again after a crash:
                // their position was not saved.
                let before = src.events;
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
                                src.body.push_str(&w.to_line());
                                src.body.push('\n');
                                src.events += 1;
                            } else {
                                stats.events_excluded += 1;
                            }
                        }
                        LineOutcome::Event { .. } | LineOutcome::Skip => stats.events_ignored += 1,
                        LineOutcome::Error(_) => stats.parse_errors += 1,
                    }
                }
                stats.events_kept += (src.events - before) as u64;
                if !lines.is_empty() && src.since.is_none() {
                    src.since = Some(Instant::now());
                }
                let due = src.body.len() >= BATCH_BYTES
                    || src.events >= BATCH_EVENTS
                    || src.since.is_some_and(|t| t.elapsed() >= LINGER)
                    || (cfg.once && at_end);
                if !due {
                    held = true; // read, not yet spooled
                    continue;
                }
                if !spool_filled(src, shared)? {
                    (held, refused) = (true, true);
                }
            }
        }
        // Captured packets: one batch per pass, no log position to record.
        // A batch a full spool refused is kept and spooled before more is taken
        // (captured packets exist nowhere else).
        if let Some(c) = capture {
            if !spool_full() {
                let (mut body, mut n) = capture_held.take().unwrap_or_default();
                if n == 0 {
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
                    stats.events_kept += n as u64;
                }
                if n > 0 {
                    let mut spool = lock(&shared.spool);
                    let positions = spool.positions().clone();
                    if spool.append(&body, n, &positions)?.is_none() {
                        capture_held = Some((body, n));
                        (held, refused) = (true, true);
                    } else {
                        drop(spool);
                        shared.notify();
                    }
                }
            }
        }
        // Everything read so far is delivered: say so, with this host's clock.
        let delivered = backlog() == 0;
        if all_at_end && !held && !full && delivered {
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
            heartbeat(
                agent,
                cfg,
                &merged(&stats, shared),
                shared,
                capture,
                &listens,
            );
            next_heartbeat = Instant::now() + HEARTBEAT_EVERY;
        }
        if cfg.once && all_at_end && !held && !full && delivered {
            heartbeat(
                agent,
                cfg,
                &merged(&stats, shared),
                shared,
                capture,
                &listens,
            );
            break;
        }
        // Behind: read on at once. Caught up (or the spool is full): pause; a
        // `once` run that only waits for the sender's last answers looks again soon.
        if (all_at_end || full || refused) && !finishing {
            let wait_for_sender = cfg.once && all_at_end && !full;
            std::thread::sleep(if wait_for_sender {
                cfg.poll.min(Duration::from_millis(20))
            } else if refused {
                // A batch waits for room the sender makes as it is answered.
                cfg.poll.min(Duration::from_millis(200))
            } else {
                cfg.poll
            });
        }
    }
    if stop.load(Ordering::Relaxed) {
        // Asked to stop: what was read goes to the spool first (received syslog
        // messages exist nowhere else; a file's lines would only be read again).
        // The sender delivers it at the next start.
        for src in &mut sources {
            if !spool_filled(src, shared)? {
                // A file's lines are read again at the next start (their
                // position is not saved); received messages are lost.
                tracing::warn!(
                    source = %src.input.name(),
                    events = src.events,
                    "stopping with the spool full: {} events read from {} not spooled",
                    src.events,
                    src.input.name()
                );
            }
        }
        if let Some((body, n)) = capture_held.take() {
            let mut spool = lock(&shared.spool);
            let positions = spool.positions().clone();
            if spool.append(&body, n, &positions)?.is_none() {
                tracing::warn!(
                    events = n,
                    "stopping with the spool full: {n} captured packets not spooled"
                );
            }
        }
    }
    Ok(stats)
}
