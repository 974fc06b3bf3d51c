//! `scanwatch admin`: manage sensors, API tokens and dashboard users in the data
//! directory (`--data`, the embedded SQLite store) or in the store a server config
//! names (`--config`: its `[store]`, e.g. the ClickHouse store shared by the
//! scale-out roles, where any collector then accepts the sensor). Tokens are printed
//! once and stored only as hashes; passwords are read from standard input and stored
//! only as Argon2id hashes.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use scanwatch_collector::web::auth::{hash_password, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::trust::TrustLevel;
use scanwatch_store::{Role, Store, UserRecord};

/// Default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "scanwatch-data";

/// Which store an admin command works on.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// Data directory of the embedded SQLite store.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Server config (TOML): use the store its `[store]` names (SQLite in its
    /// `server.data`, or ClickHouse shared by the scale-out roles).
    #[arg(long, conflicts_with = "data")]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens an existing store for reading: a SQLite data directory that does not
    /// exist is an error, not created (a read in the wrong directory must not
    /// leave an empty store behind).
    pub fn open_existing(&self) -> Result<(Box<dyn Store>, String)> {
        if self.config.is_none() && !self.data.join(scanwatch_store::sqlite::DB_FILE).exists() {
            anyhow::bail!(
                "no scanwatch data in {}: give --data DIR (or --config FILE) of an existing store; `scanwatch server` or `admin sensor add` creates one",
                self.data.display()
            );
        }
        self.open()
    }

    /// Opens the store, with a description of it for messages.
    pub fn open(&self) -> Result<(Box<dyn Store>, String)> {
        match &self.config {
            None => Ok((
                Box::new(SqliteStore::open(&self.data)?),
                self.data.display().to_string(),
            )),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let cfg = crate::config::ServerConfig::parse(&text)
                    .with_context(|| format!("in {}", path.display()))?;
                let what = match cfg.store.kind {
                    crate::config::StoreKind::Sqlite => cfg.server.data.display().to_string(),
                    kind => format!(
                        "the {kind} store at {}",
                        cfg.store.url.as_deref().unwrap_or("?")
                    ),
                };
                Ok((crate::server::open_store(&cfg)?, what))
            }
        }
    }
}

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
    /// Manage dashboard users: people who log in to the web pages.
    #[command(subcommand)]
    User(UserCommand),
    /// Upgrade the embedded store's schema to this build's version. A copy of the
    /// database as it was is written first (scanwatch.db.v<N>.bak, the owner's
    /// only). Any command that opens the store migrates the same way; with --check
    /// nothing is changed: it says what would be.
    Migrate {
        /// Say what would change, change nothing.
        #[arg(long)]
        check: bool,
        /// Data directory of the embedded SQLite store.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Add a dashboard user, or with --reset set a new password (which ends the
    /// user's sessions). The password is the first line of standard input (asked
    /// for without echo on a terminal), at least 8 characters.
    Add {
        /// 1-64 letters, digits, '.', '_' or '-'.
        name: String,
        /// analyst: reads the pages; admin: also uses the admin forms. Required for
        /// a new user; with --reset, changes the role.
        #[arg(long, value_parser = ["analyst", "admin"], required_unless_present = "reset")]
        role: Option<String>,
        /// Change the password of an existing user.
        #[arg(long)]
        reset: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List dashboard users with their roles.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Remove a dashboard user: their sessions end at once and they cannot sign
    /// in; the name may be added again.
    Remove {
        /// The user's name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (shown once; only a hash is stored).
    Add {
        /// The token's name (who or what uses it), shown in the server's log.
        name: String,
        /// analyst: read endpoints; admin: also endpoints that change state.
        #[arg(long, value_parser = ["analyst", "admin"])]
        role: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List API tokens (names, roles, state; never the tokens).
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Revoke an API token: refused from now on.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where a list comes from and how it is printed.
#[derive(Clone, Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output: table, or json (one object per line).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
}

/// How a list is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum SensorCommand {
    /// Register a sensor and print its token (shown once; only a hash is stored).
    Add {
        /// 1-64 letters, digits, '.', '_' or '-'.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List sensors with their state and counts.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Revoke a sensor: its token is refused from now on; its data stays.
    Revoke {
        /// The sensor's name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set how far a sensor is trusted: `trusted` (its sightings corroborate a
    /// source for the blocklist and its IDS alerts confirm on their own) or
    /// `normal` (the default). Servers read it at start (docs/security.md).
    SetTrust {
        /// The sensor's name.
        name: String,
        /// `trusted` or `normal`.
        level: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// When a sensor, token or user was created is wall time.
pub use crate::clock::wall_clock as now;

pub fn run(args: &AdminArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    match &args.command {
        AdminCommand::Sensor(SensorCommand::Add { name, store }) => {
            let (mut store, what) = store.open()?;
            let token = store.add_sensor(name, now())?;
            writeln!(out, "{token}")?;
            // The token first, then the hint: stdout is buffered, stderr is not.
            out.flush()?;
            writeln!(
                err,
                "sensor {name:?} added to {what}; keep the token above: it is not shown again"
            )?;
        }
        AdminCommand::Sensor(SensorCommand::List {
            list: ListArgs { store, output },
        }) => {
            let (store, _) = store.open_existing()?;
            let trust: std::collections::BTreeMap<String, TrustLevel> =
                scanwatch_store::trust::trust_levels(store.as_ref())?
                    .into_iter()
                    .collect();
            if *output == Output::Json {
                for s in store.sensors()? {
                    let v = serde_json::json!({
                        "name": s.name,
                        "state": if s.revoked { "revoked" } else { "active" },
                        "batches": s.batches,
                        "events": s.events,
                        "last_seen": s.last_seen.map(|t| t.to_rfc3339()),
                        "trust": trust.get(&s.name).copied().unwrap_or_default().name(),
                    });
                    writeln!(out, "{v}")?;
                }
                return Ok(());
            }
            writeln!(
                out,
                "{:<24} {:<8} {:>10} {:>12}  {:<24}  trust",
                "name", "state", "batches", "events", "last seen"
            )?;
            for s in store.sensors()? {
                writeln!(
                    out,
                    "{:<24} {:<8} {:>10} {:>12}  {:<24}  {}",
                    s.name,
                    if s.revoked { "revoked" } else { "active" },
                    s.batches,
                    s.events,
                    s.last_seen
                        .map_or_else(|| "never".to_string(), |t| t.to_rfc3339()),
                    trust.get(&s.name).copied().unwrap_or_default().name(),
                )?;
            }
        }
        AdminCommand::Token(TokenCommand::List {
            list: ListArgs { store, output },
        }) => {
            let (store, _) = store.open_existing()?;
            let tokens = store.api_tokens()?;
            if *output == Output::Json {
                for t in tokens {
                    let v = serde_json::json!({
                        "name": t.name,
                        "role": t.role.name(),
                        "created": t.created.to_rfc3339(),
                        "state": if t.revoked { "revoked" } else { "active" },
                    });
                    writeln!(out, "{v}")?;
                }
            } else {
                writeln!(out, "{:<24} {:<8} {:<8}  created", "name", "role", "state")?;
                for t in tokens {
                    writeln!(
                        out,
                        "{:<24} {:<8} {:<8}  {}",
                        t.name,
                        t.role.name(),
                        if t.revoked { "revoked" } else { "active" },
                        t.created.to_rfc3339()
                    )?;
                }
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { name, store }) => {
            let (mut store, what) = store.open_existing()?;
            store.revoke_api_token(name)?;
            writeln!(
                err,
                "API token {name:?} of {what} revoked: it is refused from now on"
            )?;
        }
        AdminCommand::Token(TokenCommand::Add { name, role, store }) => {
            let role = Role::parse(role)
                .ok_or_else(|| anyhow::anyhow!("role must be analyst or admin"))?;
            let (mut store, _) = store.open()?;
            let token = store.add_api_token(name, role, now())?;
            writeln!(out, "{token}")?;
            // The token first, then the hint: stdout is buffered, stderr is not.
            out.flush()?;
            writeln!(
                err,
                "{} token {name:?} added; keep the token above: it is not shown again",
                role.name()
            )?;
        }
        AdminCommand::Sensor(SensorCommand::SetTrust { name, level, store }) => {
            let level = TrustLevel::parse(level)
                .ok_or_else(|| anyhow::anyhow!("trust level must be trusted or normal"))?;
            let (mut store, _) = store.open()?;
            if !store.sensors()?.iter().any(|s| &s.name == name) {
                anyhow::bail!("no sensor named {name:?}");
            }
            scanwatch_store::trust::set_trust(store.as_mut(), name, level, now())?;
            writeln!(
                err,
                "sensor {name:?} is now {}; restart the server to apply it",
                level.name()
            )?;
        }
        AdminCommand::Sensor(SensorCommand::Revoke { name, store }) => {
            let (mut store, _) = store.open()?;
            store.revoke_sensor(name)?;
            writeln!(err, "sensor {name:?} revoked")?;
        }
        AdminCommand::User(cmd) => {
            let stdin = std::io::stdin();
            let terminal = stdin.is_terminal();
            run_user(cmd, &mut stdin.lock(), terminal, out, err)?;
        }
        AdminCommand::Migrate { check, data } => migrate(data, *check, out)?,
    }
    Ok(())
}

/// `admin migrate [--check]`: what the schema migration does (or would do).
fn migrate(data: &std::path::Path, check: bool, out: &mut dyn Write) -> Result<()> {
    use scanwatch_store::sqlite::migration_plan;
    let Some(plan) = migration_plan(data)? else {
        anyhow::bail!(
            "no database in {}: nothing to migrate (the first start creates it)",
            data.display()
        );
    };
    if plan.steps.is_empty() {
        writeln!(
            out,
            "{}: schema version {}, up to date",
            data.display(),
            plan.from
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{}: schema version {} -> {}{}",
        data.display(),
        plan.from,
        plan.to,
        if check {
            " (--check: nothing changed)"
        } else {
            ""
        }
    )?;
    for (v, what) in &plan.steps {
        writeln!(out, "  version {v} adds {what}")?;
    }
    if check {
        writeln!(
            out,
            "a copy of the database as it is would be written to {} first",
            plan.backup.display()
        )?;
        return Ok(());
    }
    SqliteStore::open(data)?;
    writeln!(
        out,
        "migrated; the database as it was is in {}",
        plan.backup.display()
    )?;
    Ok(())
}

/// Reads the password: the first line of `input`, or typed without echo when
/// standard input is a terminal.
fn read_password(input: &mut dyn BufRead, terminal: bool) -> Result<String> {
    let pw = if terminal {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        input.read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        anyhow::bail!("empty password: give it as the first line of standard input");
    }
    let n = pw.chars().count();
    if n < MIN_PASSWORD_LEN {
        anyhow::bail!("password too short: {n} characters; use at least {MIN_PASSWORD_LEN}");
    }
    if pw.len() > MAX_PASSWORD_LEN {
        anyhow::bail!("password too long: use at most {MAX_PASSWORD_LEN} bytes");
    }
    Ok(pw)
}

/// `scanwatch admin user ...`, reading a password from `input`.
pub fn run_user(
    cmd: &UserCommand,
    input: &mut dyn BufRead,
    terminal: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            role,
            reset,
            store,
        } => {
            if !scanwatch_store::valid_sensor_name(name) {
                anyhow::bail!(
                    "invalid user name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"
                );
            }
            let role = role
                .as_deref()
                .map(|r| {
                    Role::parse(r).ok_or_else(|| anyhow::anyhow!("role must be analyst or admin"))
                })
                .transpose()?;
            let (mut store, _) = store.open()?;
            let existing = store.user(name)?;
            let (role, created) = match (&existing, reset) {
                (Some(_), false) => anyhow::bail!(
                    "a user named {name:?} already exists; use --reset to set a new password"
                ),
                (None, true) => anyhow::bail!("no user named {name:?}; add it without --reset"),
                (Some(u), true) => (role.unwrap_or(u.role), u.created),
                (None, false) => (
                    role.ok_or_else(|| anyhow::anyhow!("--role is required for a new user"))?,
                    now(),
                ),
            };
            let password = read_password(input, terminal)?;
            let password_hash = hash_password(&password)?;
            store.put_user(
                &UserRecord {
                    name: name.clone(),
                    role,
                    password_hash,
                    created,
                },
                *reset,
            )?;
            if *reset {
                writeln!(
                    err,
                    "password of {} user {name:?} changed; their sessions are ended",
                    role.name()
                )?;
            } else {
                writeln!(err, "{} user {name:?} added", role.name())?;
            }
        }
        UserCommand::Remove { name, store } => {
            let (mut store, _) = store.open_existing()?;
            if !store.remove_user(name, now())? {
                anyhow::bail!("no user named {name:?}");
            }
            writeln!(err, "user {name:?} removed; their sessions are ended")?;
        }
        UserCommand::List {
            list: ListArgs { store, output },
        } => {
            let (store, _) = store.open_existing()?;
            if *output == Output::Json {
                for u in store.users()? {
                    let v = serde_json::json!({
                        "name": u.name,
                        "role": u.role.name(),
                        "created": u.created.to_rfc3339(),
                    });
                    writeln!(out, "{v}")?;
                }
                return Ok(());
            }
            writeln!(out, "{:<24} {:<8}  created", "name", "role")?;
            for u in store.users()? {
                writeln!(
                    out,
                    "{:<24} {:<8}  {}",
                    u.name,
                    u.role.name(),
                    u.created.to_rfc3339()
                )?;
            }
        }
    }
    Ok(())
}
