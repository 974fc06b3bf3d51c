//! The `scanwatch` binary: parses arguments and runs a command. Errors are reported
//! here, at the edge, with anyhow.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use scanwatch::cli::{Cli, Command, LogFormat};
use scanwatch::{admin, analyze, demo, intel, sensor, server};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_log(cli.log_format);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let ok = |good: bool| u8::from(!good);
    // Exit status: 0 success; 1 an input could not be read or nothing in it
    // parsed (`analyze`), or a command's own failure; 2 an error; 3 `analyze
    // --fail-on` matched a warning.
    let result: anyhow::Result<u8> = match &cli.command {
        Command::Analyze(a) => analyze::run(a, &mut out, &mut err).map(|o| {
            if o.failed > 0 {
                1
            } else if o.fail_on_hit {
                3
            } else {
                0
            }
        }),
        Command::Demo(d) => demo::run(d, &mut out, &mut err).map(|()| 0),
        Command::Admin(a) => admin::run(a, &mut out, &mut err).map(|()| 0),
        Command::Server(s) => server::run(s, &mut err).map(|()| 0),
        Command::Sensor(s) => sensor::run(s, &mut err).map(|()| 0),
        Command::Intel(a) => intel::run_intel(a, &mut out, &mut err).map(ok),
        Command::Assets(a) => intel::run_assets(a, &mut out, &mut err).map(ok),
        Command::Exposure(a) => intel::run_exposure(a, &mut out, &mut err).map(ok),
        Command::Incidents(a) => scanwatch::incidents::run(a, &mut out, &mut err).map(|()| 0),
        Command::Block(a) => scanwatch::block::run(a, &mut out, &mut err).map(|()| 0),
        Command::Completions { shell } => {
            scanwatch::cli::completions(*shell, &mut out);
            Ok(0)
        }
        Command::Man { dir } => scanwatch::cli::man_pages(dir)
            .map_err(anyhow::Error::from)
            .and_then(|files| {
                writeln!(err, "wrote {} man pages to {}", files.len(), dir.display())?;
                Ok(0)
            }),
    };
    let flushed = out.flush();
    match result {
        Ok(code) => match flushed {
            Ok(()) => ExitCode::from(code),
            // A closed pipe (e.g. `| head`) is not an error worth reporting.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(err, "error: cannot write the output: {e}");
                ExitCode::from(2)
            }
        },
        Err(e) => {
            // A closed pipe (e.g. `| head`), wherever in the chain (an io error, or
            // the io error inside a JSON writer's), ends the run quietly.
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
                    || c.downcast_ref::<serde_json::Error>()
                        .is_some_and(|e| e.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(err, "error: {e:#}");
            ExitCode::from(2)
        }
    }
}
