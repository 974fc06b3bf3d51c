//! `scanwatch demo`: simulate a sensor network with the seed case (TCP/1025 surge,
//! then an exploit wave on TCP/445) and run it through the real centre: an embedded
//! `scanwatch server` on loopback, simulated sensors submitting batches over HTTP
//! with their own tokens, the warnings read back from the API, and the dashboard
//! left up (`--serve`) with a login to look at the result. `--offline` pushes the
//! same network through the pipeline in-process, as `analyze` does, and prints the
//! full report. Optionally writes the simulated logs so they can be replayed with
//! `analyze`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use scanwatch_alert::RunStats;
use scanwatch_pipeline::{sensor_key, Pipeline};
use scanwatch_simulate::{netfilter_line, Scenario};

use chrono::Datelike;
use scanwatch_event::Timestamp;

use crate::analyze::{DetectionArgs, Emit, Emitter};
use crate::intel::{load_context, ContextArgs};

#[derive(Clone, Debug, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub detection: DetectionArgs,
    /// Write JSON Lines to stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// What to print: warnings, per-window port metrics, or both.
    #[arg(long, value_enum, default_value = "alerts")]
    pub emit: Emit,
    /// Also write the simulated logs, one gzip'd netfilter syslog file per sensor, to DIR.
    #[arg(long, value_name = "DIR")]
    pub write_logs: Option<PathBuf>,
    /// Start of the simulated ten days (UTC date). The TCP/1025 surge begins seven
    /// days later; e.g. 2007-04-12 replays the 2007 Windows DNS RPC case against
    /// the real advisories of that week.
    #[arg(long, default_value = "2026-11-16")]
    pub start: String,
    #[command(flatten)]
    pub context: ContextArgs,
    /// Run in-process like `analyze` (no server, no HTTP) and print the full report.
    #[arg(long)]
    pub offline: bool,
    /// Where the demo's centre listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Keep the centre and its dashboard up until Ctrl-C after the replay.
    #[arg(long)]
    pub serve: bool,
}

/// The demo network, starting on `start`.
pub(crate) fn scenario(start: chrono::NaiveDate) -> Scenario {
    let mut sc = scanwatch_simulate::demo();
    sc.start = Timestamp(
        start
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis(),
    );
    sc
}

/// `--start` as a date.
pub(crate) fn start_date(args: &DemoArgs) -> Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(&args.start, "%Y-%m-%d").map_err(|e| {
        anyhow::anyhow!(
            "invalid --start {:?}: {e} (expected YYYY-MM-DD)",
            args.start
        )
    })
}

/// One gzip'd netfilter log per sensor in `dir` (`--write-logs`).
pub(crate) fn log_writers(
    dir: &std::path::Path,
    names: &[String],
) -> Result<Vec<flate2::write::GzEncoder<BufWriter<File>>>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut w = Vec::new();
    for n in names {
        let path = dir.join(format!("{n}.log.gz"));
        let f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        w.push(flate2::write::GzEncoder::new(
            BufWriter::new(f),
            flate2::Compression::fast(),
        ));
    }
    Ok(w)
}

pub(crate) fn describe(sc: &Scenario) -> String {
    let start = sc.start.to_rfc3339();
    let mut s = format!(
        "simulated network \"{}\": {} sensors, {} hours from {start}, {} background ports, {} research scanners",
        sc.name,
        sc.sensors,
        sc.hours,
        sc.background.len(),
        sc.research_scanners
    );
    for surge in &sc.surges {
        let t = scanwatch_event::Timestamp(sc.start.0 + i64::from(surge.start_hour) * 3_600_000);
        s.push_str(&format!(
            "; surge injected on {}/{} at {}",
            surge.proto,
            surge.port,
            t.to_rfc3339()
        ));
    }
    for n in &sc.noisy {
        s.push_str(&format!(
            "; one noisy sensor ({}) on {}/{}",
            sc.sensor_name(n.sensor),
            n.proto,
            n.port
        ));
    }
    s
}

pub fn run(args: &DemoArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    if !args.offline {
        return crate::demo_live::run(args, out, err);
    }
    let cfg = args.detection.config()?;
    let start = start_date(args)?;
    let sc = scenario(start);
    let (ctx, benign) = load_context(&args.context, start.year(), err)?;
    let ctx = Some(ctx);
    let mut pipeline = Pipeline::new(cfg);
    pipeline.set_benign(benign);
    pipeline.set_emit_windows(matches!(args.emit, Emit::Windows | Emit::All));
    let names: Vec<String> = (0..sc.sensors).map(|i| sc.sensor_name(i)).collect();
    let keys: Vec<u64> = names.iter().map(|n| sensor_key(n)).collect();
    for (k, n) in keys.iter().zip(&names) {
        pipeline.name_sensor(*k, n);
    }
    let mut writers = match &args.write_logs {
        Some(dir) => log_writers(dir, &names)?,
        None => Vec::new(),
    };
    let mut emitter = Emitter {
        out,
        json: args.json,
        emit: args.emit,
        error: None,
        ctx: ctx.as_ref(),
    };
    let mut stats = RunStats {
        files: 0,
        ..Default::default()
    };
    for hour in sc.generator() {
        for (s, e) in hour {
            stats.lines += 1;
            if let Some(w) = writers.get_mut(s as usize) {
                writeln!(w, "{}", netfilter_line(&names[s as usize], &e))?;
            }
            pipeline.push(keys[s as usize], &e);
        }
        pipeline.drain(&mut |o| emitter.handle(o));
    }
    for w in writers {
        w.finish()?.flush()?;
    }
    let report = pipeline.finish(&mut |o| emitter.handle(o));
    let header = format!("{}\n{}", describe(&sc), args.detection.describe());
    if args.json {
        writeln!(err, "{header}")?;
    }
    emitter.finish(&report, &stats, &header)?;
    if let Some(dir) = &args.write_logs {
        writeln!(
            err,
            "wrote {} sensor logs to {}; replay them with: scanwatch analyze --year {} {}/*.log.gz",
            sc.sensors,
            dir.display(),
            start.year(),
            dir.display()
        )?;
    }
    Ok(())
}
