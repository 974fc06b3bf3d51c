//! The command line: every subcommand and argument (clap derive), in the library
//! so that tests can check every argument is described and `completions` / `man`
//! can be generated from the same definition. `main.rs` parses and dispatches.

use clap::{Parser, Subcommand};

use crate::{admin, analyze, block, demo, incidents, intel, sensor, server};

#[derive(Debug, Parser)]
#[command(
    name = "scanwatch",
    version,
    about = "Early warning for Internet scanning and attack surges"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How the log (stderr) is written: text lines, or JSON objects with the
    /// level, target and fields. Levels from RUST_LOG (default: info), e.g.
    /// RUST_LOG=scanwatch_notify=debug.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Incidents (a surge's warnings together): list, show, set their state.
    Incidents(incidents::IncidentsArgs),
    /// Keep a local nftables table in sync with the centre's blocklist.
    Block(block::BlockArgs),
    /// Print a shell completion script, e.g.
    /// `scanwatch completions bash > /etc/bash_completion.d/scanwatch`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (scanwatch.1 and one per subcommand, e.g.
    /// scanwatch-analyze.1) into a directory.
    Man {
        /// Directory to write the pages into (created if missing).
        dir: std::path::PathBuf,
    },
}

/// The completion script for `shell`, from the same definition as the parser.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "scanwatch", out);
}

/// Writes `scanwatch.1` and a page per subcommand (`scanwatch-admin-sensor-add.1`,
/// …) into `dir`; returns the files written.
pub fn man_pages(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut written = Vec::new();
    write_pages(&cmd, "scanwatch", dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &std::path::Path,
    written: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    let cmd = cmd
        .clone()
        .display_name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
