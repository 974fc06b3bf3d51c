//! `scanwatch admin`: manage sensors in the data directory (tokens are printed once
//! and stored only as hashes).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use scanwatch_event::Timestamp;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{Role, Store};

/// Default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "scanwatch-data";

#[derive(Clone, Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Manage sensors: the hosts allowed to submit events.
    #[command(subcommand)]
    Sensor(SensorCommand),
    /// Manage API tokens: scripts and people reading the API.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (shown once; only a hash is stored).
    Add {
        name: String,
        /// analyst: read endpoints; admin: also endpoints that change state.
        #[arg(long, value_parser = ["analyst", "admin"])]
        role: String,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum SensorCommand {
    /// Register a sensor and print its token (shown once; only a hash is stored).
    Add {
        /// 1-64 letters, digits, '.', '_' or '-'.
        name: String,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
    /// List sensors with their state and counts.
    List {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
    /// Revoke a sensor: its token is refused from now on; its data stays.
    Revoke {
        name: String,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
}

pub fn now() -> Timestamp {
    // The binary's edge may read the clock: when a sensor was created is wall time.
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}

pub fn run(args: &AdminArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    match &args.command {
        AdminCommand::Sensor(SensorCommand::Add { name, data }) => {
            let mut store = SqliteStore::open(data)?;
            let token = store.add_sensor(name, now())?;
            writeln!(out, "{token}")?;
            writeln!(
                err,
                "sensor {name:?} added to {}; keep the token above: it is not shown again",
                data.display()
            )?;
        }
        AdminCommand::Sensor(SensorCommand::List { data }) => {
            let store = SqliteStore::open(data)?;
            writeln!(
                out,
                "{:<24} {:<8} {:>10} {:>12}  last seen",
                "name", "state", "batches", "events"
            )?;
            for s in store.sensors()? {
                writeln!(
                    out,
                    "{:<24} {:<8} {:>10} {:>12}  {}",
                    s.name,
                    if s.revoked { "revoked" } else { "active" },
                    s.batches,
                    s.events,
                    s.last_seen
                        .map_or_else(|| "never".to_string(), |t| t.to_rfc3339())
                )?;
            }
        }
        AdminCommand::Token(TokenCommand::Add { name, role, data }) => {
            let role = Role::parse(role)
                .ok_or_else(|| anyhow::anyhow!("role must be analyst or admin"))?;
            let mut store = SqliteStore::open(data)?;
            let token = store.add_api_token(name, role, now())?;
            writeln!(out, "{token}")?;
            writeln!(
                err,
                "{} token {name:?} added; keep the token above: it is not shown again",
                role.name()
            )?;
        }
        AdminCommand::Sensor(SensorCommand::Revoke { name, data }) => {
            let mut store = SqliteStore::open(data)?;
            store.revoke_sensor(name)?;
            writeln!(err, "sensor {name:?} revoked")?;
        }
    }
    Ok(())
}
