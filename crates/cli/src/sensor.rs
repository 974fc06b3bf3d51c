//! `scanwatch sensor run`: follow firewall logs and submit their unsolicited inbound
//! events to the centre through a disk spool.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use scanwatch_event::Timestamp;
use scanwatch_sensor::rules::{parse_action, parse_network, parse_ports, Anonymize, Rules};
use scanwatch_sensor::run::{run as run_sensor, SensorConfig, Source};

#[derive(Clone, Debug, clap::Args)]
pub struct SensorArgs {
    #[command(subcommand)]
    pub command: SensorCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum SensorCommand {
    /// Follow log files (like tail -F) and submit their events to the centre.
    Run {
        /// Base URL of the centre, e.g. http://127.0.0.1:8470.
        #[arg(long)]
        server: String,
        /// File holding this sensor's token (from `scanwatch admin sensor add`).
        #[arg(long)]
        token_file: PathBuf,
        /// Spool directory: batches wait here until the centre acknowledges them.
        #[arg(long)]
        spool: PathBuf,
        /// A log to follow, as PATH or PATH:FORMAT (netfilter, dshield, jsonl, suricata, filterlog, winfw, zeek); repeatable.
        #[arg(long = "source", required = true)]
        sources: Vec<String>,
        /// Read existing files from the start (backfill) instead of from their end.
        #[arg(long)]
        from_start: bool,
        /// Exit once every source is read and the spool is delivered.
        #[arg(long)]
        once: bool,
        /// Spool size limit in MiB; when full, reading pauses until batches are delivered.
        #[arg(long, default_value_t = 256)]
        max_spool_mib: u64,
        /// Only send events to these destination ports (e.g. 1-1024,3389).
        #[arg(long)]
        include_ports: Option<String>,
        /// Never send events to these destination ports.
        #[arg(long)]
        exclude_ports: Option<String>,
        /// Never send events from this source address or CIDR (repeatable), e.g. your own scanners.
        #[arg(long = "exclude-source")]
        exclude_sources: Vec<String>,
        /// Only send events the firewall logged with this action (repeatable): accept, drop, reject.
        #[arg(long = "action")]
        actions: Vec<String>,
        /// Target addresses sent to the centre: as logged, dropped, or keyed prefix-preserving.
        #[arg(long, value_parser = ["none", "drop", "keyed"], default_value = "none")]
        anonymize_targets: String,
        /// Key for --anonymize-targets keyed (a file of at least 16 bytes; keep it secret).
        #[arg(long)]
        anonymize_key_file: Option<PathBuf>,
    },
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

pub fn run(args: &SensorArgs, err: &mut dyn Write) -> Result<()> {
    let SensorCommand::Run {
        server,
        token_file,
        spool,
        sources,
        from_start,
        once,
        max_spool_mib,
        include_ports,
        exclude_ports,
        exclude_sources,
        actions,
        anonymize_targets,
        anonymize_key_file,
    } = &args.command;
    let anonymize = match (anonymize_targets.as_str(), anonymize_key_file) {
        ("none", _) => Anonymize::None,
        ("drop", _) => Anonymize::Drop,
        ("keyed", Some(f)) => Rules::keyed(
            &std::fs::read(f)
                .with_context(|| format!("cannot read the key file {}", f.display()))?,
        )?,
        _ => bail!("--anonymize-targets keyed needs --anonymize-key-file"),
    };
    let rules = Rules::new(
        include_ports
            .as_deref()
            .map(parse_ports)
            .transpose()?
            .unwrap_or_default(),
        exclude_ports
            .as_deref()
            .map(parse_ports)
            .transpose()?
            .unwrap_or_default(),
        exclude_sources
            .iter()
            .map(|s| parse_network(s))
            .collect::<Result<_, _>>()?,
        actions
            .iter()
            .map(|a| parse_action(a))
            .collect::<Result<_, _>>()?,
        anonymize,
    );
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("cannot read the token file {}", token_file.display()))?
        .trim()
        .to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", token_file.display());
    }
    let sources = sources
        .iter()
        .map(|s| parse_source(s))
        .collect::<Result<Vec<_>>>()?;
    // The edge reads the clock once: the default year of syslog timestamps.
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    );
    let cfg = SensorConfig {
        server: server.clone(),
        token,
        spool_dir: spool.clone(),
        sources,
        from_start: *from_start,
        max_spool_bytes: max_spool_mib.saturating_mul(1 << 20),
        once: *once,
        poll: Duration::from_millis(200),
        reference_time: now,
        rules,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut log = |m: &str| {
        let _ = writeln!(std::io::stderr(), "{m}");
    };
    let stats = run_sensor(&cfg, &stop, &mut log)?;
    writeln!(
        err,
        "sensor: {} lines, {} events kept, {} ignored, {} excluded by local rules, {} parse errors; {} batches sent, {} refused, {} send retries",
        stats.lines,
        stats.events_kept,
        stats.events_ignored,
        stats.events_excluded,
        stats.parse_errors,
        stats.batches_sent,
        stats.batches_rejected,
        stats.send_failures
    )?;
    Ok(())
}
