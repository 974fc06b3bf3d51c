//! `scanwatch sensor run`: follow firewall logs and submit their unsolicited inbound
//! events to the centre through a disk spool.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use scanwatch_event::Timestamp;
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
        /// A log to follow, as PATH or PATH:FORMAT (netfilter, dshield, jsonl); repeatable.
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
    } = &args.command;
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
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut log = |m: &str| {
        let _ = writeln!(std::io::stderr(), "{m}");
    };
    let stats = run_sensor(&cfg, &stop, &mut log)?;
    writeln!(
        err,
        "sensor: {} lines, {} events kept, {} ignored, {} parse errors; {} batches sent, {} refused, {} send retries",
        stats.lines,
        stats.events_kept,
        stats.events_ignored,
        stats.parse_errors,
        stats.batches_sent,
        stats.batches_rejected,
        stats.send_failures
    )?;
    Ok(())
}
