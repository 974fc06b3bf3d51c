//! The `scanwatch` binary: parses arguments and runs a command. Errors are reported
//! here, at the edge, with anyhow.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scanwatch::{admin, analyze, demo, intel, sensor, server};

#[derive(Debug, Parser)]
#[command(
    name = "scanwatch",
    version,
    about = "Early warning for Internet scanning and attack surges"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How the log (stderr) is written: text lines, or JSON objects with the
    /// level, target and fields. Levels from RUST_LOG (default: info), e.g.
    /// RUST_LOG=scanwatch_notify=debug.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The one place a subscriber is set: the libraries only emit `tracing` events.
fn init_log(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()));
    let _ = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().try_init(),
    };
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read firewall logs, find port surges, print the port report and warnings.
    Analyze(analyze::AnalyzeArgs),
    /// Simulate a sensor network with the seed case and print what scanwatch warns about.
    Demo(demo::DemoArgs),
    /// Manage the data directory: sensors and their tokens.
    Admin(admin::AdminArgs),
    /// Run the centre: sensors submit events over HTTP; stored in SQLite.
    Server(server::ServerArgs),
    /// Run a sensor: follow firewall logs and submit their events to the centre.
    Sensor(sensor::SensorArgs),
    /// Import advisories (NVD, CISA KEV, Exploit-DB) and benign-scanner lists.
    Intel(intel::IntelArgs),
    /// Import and list the asset inventory (CSV or nmap XML).
    Assets(intel::AssetsArgs),
    /// For each active warning, your assets that are most exposed, with reasons.
    Exposure(intel::ExposureArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_log(cli.log_format);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let result = match &cli.command {
        Command::Analyze(a) => analyze::run(a, &mut out, &mut err).map(|failed| failed == 0),
        Command::Demo(d) => demo::run(d, &mut out, &mut err).map(|()| true),
        Command::Admin(a) => admin::run(a, &mut out, &mut err).map(|()| true),
        Command::Server(s) => server::run(s, &mut err).map(|()| true),
        Command::Sensor(s) => sensor::run(s, &mut err).map(|()| true),
        Command::Intel(a) => intel::run_intel(a, &mut out, &mut err),
        Command::Assets(a) => intel::run_assets(a, &mut out, &mut err),
        Command::Exposure(a) => intel::run_exposure(a, &mut out, &mut err),
    };
    let _ = out.flush();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            // A closed pipe (e.g. `| head`) is not an error worth reporting.
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(err, "error: {e:#}");
            ExitCode::from(2)
        }
    }
}
