//! `scanwatch sensor run`: follow firewall logs and submit their unsolicited inbound
//! events to the centre through a disk spool.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use scanwatch_sensor::listen::Transport;
use scanwatch_sensor::rules::{Anonymize, Rules};
use scanwatch_sensor::run::{run as run_sensor, ListenSpec, SensorConfig, Source};

use crate::config::SensorFileConfig;

#[derive(Clone, Debug, clap::Args)]
pub struct SensorArgs {
    #[command(subcommand)]
    pub command: SensorCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum SensorCommand {
    /// Follow log files (like tail -F) and submit their events to the centre.
    Run(Box<RunArgs>),
}

/// `sensor run` options; each may also come from `--config` (flags win).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RunArgs {
    /// TOML config file (docs/server.md, "Sensor config"); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Base URL of the centre, e.g. http://127.0.0.1:8470 or https://centre:8470.
    #[arg(long)]
    pub server: Option<String>,
    /// File holding this sensor's token (from `scanwatch admin sensor add`); it must
    /// be readable by its owner only (chmod 600).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Use a token file others can read (refused otherwise: anyone who reads the
    /// token can send as this sensor).
    #[arg(long)]
    pub allow_open_token_file: bool,
    /// Spool directory: batches wait here until the centre acknowledges them.
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// A log to follow, as PATH or PATH:FORMAT (netfilter, dshield, jsonl, suricata, filterlog, winfw, zeek, zeek-json, ulogd-json, pflog, mikrotik, cisco-asa, fastlog); repeatable; replaces the config's sources.
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// Capture unsolicited inbound TCP SYN and UDP to this host's addresses on an
    /// interface (libpcap; needs CAP_NET_RAW), e.g. for darknet and honeypot sensors.
    #[arg(long, value_name = "IFACE")]
    pub capture: Option<String>,
    /// Receive syslog over UDP on ADDR (e.g. 0.0.0.0:514), as ADDR or ADDR:FORMAT
    /// (format detected from the first messages otherwise); repeatable; replaces
    /// the config's syslog_udp.
    #[arg(long = "syslog-udp", value_name = "ADDR[:FORMAT]")]
    pub syslog_udp: Vec<String>,
    /// Receive syslog over TCP on ADDR (RFC 6587: octet counting or a message per
    /// line), as ADDR or ADDR:FORMAT; repeatable; replaces the config's syslog_tcp.
    #[arg(long = "syslog-tcp", value_name = "ADDR[:FORMAT]")]
    pub syslog_tcp: Vec<String>,
    /// Receive syslog over TCP with TLS on ADDR (RFC 5425, e.g. 0.0.0.0:6514), as
    /// ADDR or ADDR:FORMAT, presenting --syslog-tls-cert; repeatable; replaces the
    /// config's syslog_tls.
    #[arg(long = "syslog-tls", value_name = "ADDR[:FORMAT]")]
    pub syslog_tls: Vec<String>,
    /// The certificate chain (PEM) the TLS receivers present.
    #[arg(long = "syslog-tls-cert", value_name = "FILE")]
    pub syslog_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --syslog-tls-cert.
    #[arg(long = "syslog-tls-key", value_name = "FILE")]
    pub syslog_tls_key: Option<PathBuf>,
    /// Follow the systemd journal's kernel messages (`journalctl --follow`), for a
    /// firewall that logs to the journal only.
    #[arg(long)]
    pub journald: bool,
    /// Read this journal directory instead of the system journal.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// journalctl matches instead of _TRANSPORT=kernel (FIELD=VALUE); repeatable.
    #[arg(long, value_name = "FIELD=VALUE")]
    pub journal_match: Vec<String>,
    /// Read existing files from the start (backfill) instead of from their end.
    #[arg(long)]
    pub from_start: bool,
    /// Exit once every source is read and the spool is delivered.
    #[arg(long)]
    pub once: bool,
    /// Spool size limit in MiB; when full, reading pauses until batches are delivered [default: 256].
    #[arg(long)]
    pub max_spool_mib: Option<u64>,
    /// Only send events to these destination ports (e.g. 1-1024,3389).
    #[arg(long)]
    pub include_ports: Option<String>,
    /// Never send events to these destination ports.
    #[arg(long)]
    pub exclude_ports: Option<String>,
    /// Never send events from this source address or CIDR (repeatable), e.g. your own scanners.
    #[arg(long = "exclude-source")]
    pub exclude_sources: Vec<String>,
    /// Only send events the firewall logged with this action (repeatable): accept, drop, reject.
    #[arg(long = "action")]
    pub actions: Vec<String>,
    /// Target addresses sent to the centre: as logged (none), dropped, or keyed prefix-preserving [default: none].
    #[arg(long, value_parser = ["none", "drop", "keyed"])]
    pub anonymize_targets: Option<String>,
    /// Key for --anonymize-targets keyed (a file of at least 16 bytes; keep it secret).
    #[arg(long)]
    pub anonymize_key_file: Option<PathBuf>,
    /// PEM certificate(s) to trust for an https:// centre (its private CA or
    /// self-signed certificate) instead of the public web PKI roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

impl RunArgs {
    /// The config file (if any) with the flags applied on top, validated.
    pub fn effective_config(&self) -> Result<SensorFileConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                SensorFileConfig::parse(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => SensorFileConfig::default(),
        };
        let s = &mut c.sensor;
        if let Some(v) = &self.server {
            s.server = Some(v.clone());
        }
        if let Some(v) = &self.token_file {
            s.token_file = Some(v.clone());
        }
        if let Some(v) = &self.spool {
            s.spool = Some(v.clone());
        }
        if !self.sources.is_empty() {
            s.sources = self.sources.clone();
        }
        if let Some(v) = &self.capture {
            s.capture = Some(v.clone());
        }
        if !self.syslog_udp.is_empty() {
            s.syslog_udp = self.syslog_udp.clone();
        }
        if !self.syslog_tcp.is_empty() {
            s.syslog_tcp = self.syslog_tcp.clone();
        }
        if !self.syslog_tls.is_empty() {
            s.syslog_tls = self.syslog_tls.clone();
        }
        if let Some(v) = &self.syslog_tls_cert {
            s.syslog_tls_cert = Some(v.clone());
        }
        if let Some(v) = &self.syslog_tls_key {
            s.syslog_tls_key = Some(v.clone());
        }
        s.journald |= self.journald;
        if let Some(v) = &self.journal_dir {
            s.journal_dir = Some(v.clone());
        }
        if !self.journal_match.is_empty() {
            s.journal_match = self.journal_match.clone();
        }
        s.from_start |= self.from_start;
        if let Some(v) = self.max_spool_mib {
            s.max_spool_mib = v;
        }
        if let Some(v) = &self.ca_file {
            s.ca_file = Some(v.clone());
        }
        let r = &mut c.rules;
        if let Some(v) = &self.include_ports {
            r.include_ports = Some(v.clone());
        }
        if let Some(v) = &self.exclude_ports {
            r.exclude_ports = Some(v.clone());
        }
        if !self.exclude_sources.is_empty() {
            r.exclude_sources = self.exclude_sources.clone();
        }
        if !self.actions.is_empty() {
            r.actions = self.actions.clone();
        }
        if let Some(v) = &self.anonymize_targets {
            r.anonymize_targets = v.clone();
        }
        if let Some(v) = &self.anonymize_key_file {
            r.anonymize_key_file = Some(v.clone());
        }
        c.validate()?;
        Ok(c)
    }
}

/// `ADDR` or `ADDR:FORMAT` of a syslog receiver.
pub fn parse_listen(s: &str, transport: Transport) -> Result<ListenSpec> {
    let (addr, format) = match s.rsplit_once(':') {
        Some((a, f)) if scanwatch_formats::format_by_name(f).is_some() => {
            (a, scanwatch_formats::format_by_name(f))
        }
        _ => (s, None),
    };
    let addr: std::net::SocketAddr = addr.parse().with_context(|| {
        format!("syslog receiver {s:?}: expected ADDR:PORT or ADDR:PORT:FORMAT, e.g. 0.0.0.0:514")
    })?;
    Ok(ListenSpec {
        transport,
        addr,
        format,
        tls: None,
    })
}

fn parse_source(s: &str) -> Result<Source> {
    if let Some((path, fmt)) = s.rsplit_once(':') {
        if let Some(spec) = scanwatch_formats::format_by_name(fmt) {
            return Ok(Source {
                path: PathBuf::from(path),
                format: Some(spec),
            });
        }
    }
    Ok(Source {
        path: PathBuf::from(s),
        format: None,
    })
}

/// Refuses a token file that users other than its owner can read (or write),
/// unless allowed (docs/security.md).
fn check_token_file(path: &std::path::Path, allow_open: bool) -> Result<()> {
    let m = std::fs::metadata(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let mode = m.permissions().mode() & 0o777;
    if mode & 0o077 != 0 && !allow_open {
        bail!(
            "the token file {} is mode {mode:04o}: other users can read this sensor's token and send as it; run `chmod 600 {}` (or pass --allow-open-token-file)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

pub fn run(args: &SensorArgs, err: &mut dyn Write) -> Result<()> {
    let SensorCommand::Run(run_args) = &args.command;
    let c = run_args.effective_config()?;
    let (Some(server), Some(token_file), Some(spool)) =
        (&c.sensor.server, &c.sensor.token_file, &c.sensor.spool)
    else {
        bail!("validated config lacks server, token_file or spool");
    };
    let r = &c.rules;
    let anonymize = match (r.anonymize_targets.as_str(), &r.anonymize_key_file) {
        ("keyed", Some(f)) => Rules::keyed(
            &std::fs::read(f)
                .with_context(|| format!("cannot read the key file {}", f.display()))?,
        )?,
        ("drop", _) => Anonymize::Drop,
        _ => Anonymize::None,
    };
    let rules = r.rules(anonymize)?;
    check_token_file(token_file, run_args.allow_open_token_file)?;
    if let Ok(m) = std::fs::metadata(spool) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            writeln!(
                err,
                "warning: the spool {} is mode {mode:04o}: others can read the batches waiting there (chmod 700)",
                spool.display()
            )?;
        }
    }
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("cannot read the token file {}", token_file.display()))?
        .trim()
        .to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", token_file.display());
    }
    let sources = c
        .sensor
        .sources
        .iter()
        .map(|s| parse_source(s))
        .collect::<Result<Vec<_>>>()?;
    // The edge reads the clock once: the default year of syslog timestamps.
    let now = crate::clock::wall_clock();
    let cfg = SensorConfig {
        server: server.clone(),
        token,
        spool_dir: spool.clone(),
        sources,
        from_start: c.sensor.from_start,
        max_spool_bytes: c.sensor.max_spool_mib.saturating_mul(1 << 20),
        once: run_args.once,
        poll: Duration::from_millis(200),
        reference_time: now,
        rules,
        capture: c.sensor.capture.clone(),
        journal: c.sensor.journald.then(|| {
            let mut j = scanwatch_sensor::journal::JournalSpec::kernel();
            j.directory = c.sensor.journal_dir.clone();
            if !c.sensor.journal_match.is_empty() {
                j.matches = c.sensor.journal_match.clone();
            }
            j
        }),
        listen: {
            let tls = match (&c.sensor.syslog_tls_cert, &c.sensor.syslog_tls_key) {
                (Some(cert), Some(key)) if !c.sensor.syslog_tls.is_empty() => {
                    Some(crate::server::tls_server_config(cert, key, Vec::new())?)
                }
                _ => None,
            };
            c.sensor
                .receivers()
                .map(|(a, t)| {
                    let mut l = parse_listen(a, t)?;
                    if t == Transport::Tls {
                        l.tls = tls.clone();
                    }
                    Ok(l)
                })
                .collect::<Result<Vec<_>>>()?
        },
        ca_pem: c
            .sensor
            .ca_file
            .as_ref()
            .map(|f| {
                std::fs::read(f).with_context(|| format!("cannot read the CA file {}", f.display()))
            })
            .transpose()?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signal(stop.clone());
    let stats = run_sensor(&cfg, &stop)?;
    writeln!(
        err,
        "sensor: {} lines, {} events kept, {} ignored, {} excluded by local rules, {} parse errors; {} batches sent ({} MiB compressed to {} MiB), {} refused, {} send retries, {} waits for a busy centre",
        stats.lines,
        stats.events_kept,
        stats.events_ignored,
        stats.events_excluded,
        stats.parse_errors,
        stats.batches_sent,
        mib(stats.body_bytes),
        mib(stats.wire_bytes),
        stats.batches_rejected,
        stats.send_failures,
        stats.busy_refusals
    )?;
    Ok(())
}

/// Bytes as MiB with one decimal, for the run's summary line.
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1u32 << 20))
}

/// SIGINT or SIGTERM asks the sensor to stop: it spools what it has read (received
/// syslog messages included) and exits.
fn stop_on_signal(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}
