//! `scanwatch incidents list|show|set|ack`: the stored warnings grouped into
//! incidents (one per surge), and the analyst's state of each, on the store an
//! admin command would use (`--data` or `--config`).

use std::io::Write;

use anyhow::{bail, Result};
use scanwatch_centre::incidents::{self, Disposition, Incident, StateChange};
use scanwatch_event::Timestamp;

use crate::admin::StoreArgs;

#[derive(Clone, Debug, clap::Args)]
pub struct IncidentsArgs {
    #[command(subcommand)]
    pub command: IncidentsCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, newest first: phase, peak and the analyst's state.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only incidents in this state: new, acknowledged, assigned, resolved or
        /// false_positive.
        #[arg(long)]
        state: Option<String>,
        /// JSON Lines (one incident per line) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One incident with its warnings.
    Show {
        /// The incident's id, or the id of any of its warnings.
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set an incident's state.
    Set {
        /// The incident's id, or the id of any of its warnings.
        id: i64,
        /// new, acknowledged, assigned, resolved or false_positive.
        state: String,
        /// Who it is assigned to (needed for assigned).
        #[arg(long)]
        assignee: Option<String>,
        /// Why (needed for false_positive).
        #[arg(long)]
        note: Option<String>,
        /// Who sets it [default: $USER].
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Acknowledge an incident (set ID acknowledged).
    Ack {
        /// The incident's id, or the id of any of its warnings.
        id: i64,
        /// A note to keep with it.
        #[arg(long)]
        note: Option<String>,
        /// Who acknowledges it [default: $USER].
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn now() -> Timestamp {
    crate::server::wall_clock()
}

fn line(i: &Incident) -> String {
    format!(
        "{:>6}  {:<10} {:<14} {:<22} {:>4}/{:<5} {:<8} {:>3} win  {:<9} {}",
        i.id,
        i.state.state.name(),
        i.kind,
        i.start,
        i.protocol,
        i.port,
        i.peak_severity,
        i.windows,
        serde_json::to_value(i.phase)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        i.headline
    )
}

pub fn run(args: &IncidentsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    match &args.command {
        IncidentsCommand::List { store, state, json } => {
            let want = match state.as_deref() {
                None => None,
                Some(s) => Some(Disposition::parse(s).ok_or_else(|| {
                    anyhow::anyhow!(
                        "state {s:?}: expected new, acknowledged, assigned, resolved or false_positive"
                    )
                })?),
            };
            let (store, _) = store.open_existing()?;
            let all = incidents::load(store.as_ref(), Timestamp(i64::MIN), Timestamp(i64::MAX))?;
            let shown: Vec<&Incident> = all
                .iter()
                .filter(|i| want.is_none_or(|d| i.state.state == d))
                .collect();
            if *json {
                for i in shown {
                    writeln!(out, "{}", serde_json::to_string(i)?)?;
                }
            } else {
                writeln!(
                    out,
                    "{:>6}  {:<10} {:<14} {:<22} {:>10} {:<8} {:>7}  {:<9} headline",
                    "id", "state", "kind", "start", "port", "peak", "windows", "phase"
                )?;
                for i in shown {
                    writeln!(out, "{}", line(i))?;
                }
            }
        }
        IncidentsCommand::Show { id, store, json } => {
            let (store, _) = store.open_existing()?;
            let Some(i) = incidents::containing(store.as_ref(), *id)? else {
                bail!("no incident with warning {id}");
            };
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&i)?)?;
            } else {
                writeln!(out, "{}", line(&i))?;
                writeln!(
                    out,
                    "peak: warning {} in the window of {} ({} sources, {} events, {} sensors, score {})",
                    i.peak_id,
                    i.peak_window_start,
                    i.peak_sources,
                    i.peak_events,
                    i.peak_sensors,
                    i.peak_score
                )?;
                writeln!(out, "last window ended {}", i.last_end)?;
                let ids: Vec<String> = i.warnings.iter().map(i64::to_string).collect();
                writeln!(out, "warnings: {}", ids.join(" "))?;
                // Incidents on other ports the same advisory leads.
                let links = i
                    .follows
                    .iter()
                    .map(|f| ("follows", f))
                    .chain(i.followed_by.iter().map(|f| ("followed by", f)));
                for (verb, f) in links {
                    writeln!(
                        out,
                        "{verb}: incident {} ({}/{}, started {}), the same leading explanation {}",
                        f.id,
                        f.protocol.to_uppercase(),
                        f.port,
                        f.start,
                        f.advisory
                    )?;
                }
                if i.state.state != Disposition::New {
                    writeln!(
                        out,
                        "state: {} by {} at {}{}{}",
                        i.state.state.name(),
                        i.state.by,
                        i.state.at,
                        i.state
                            .assignee
                            .as_deref()
                            .map_or(String::new(), |a| format!(", assigned to {a}")),
                        i.state
                            .note
                            .as_deref()
                            .map_or(String::new(), |n| format!(": {n}"))
                    )?;
                }
            }
        }
        IncidentsCommand::Set {
            id,
            state,
            assignee,
            note,
            by,
            store,
        } => set(
            *id,
            state,
            assignee.clone(),
            note.clone(),
            by,
            store,
            out,
            err,
        )?,
        IncidentsCommand::Ack {
            id,
            note,
            by,
            store,
        } => set(*id, "acknowledged", None, note.clone(), by, store, out, err)?,
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn set(
    id: i64,
    state: &str,
    assignee: Option<String>,
    note: Option<String>,
    by: &Option<String>,
    store: &StoreArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let who = by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into());
    let change = StateChange {
        state: state.to_string(),
        assignee,
        note,
    };
    let st = change.check(&who, now()).map_err(anyhow::Error::msg)?;
    let (mut store, _) = store.open_existing()?;
    let Some(i) = incidents::set_state(store.as_mut(), id, &st, now())? else {
        bail!("no incident with warning {id}");
    };
    writeln!(out, "{}", line(&i))?;
    writeln!(err, "incident {} is {} now", i.id, i.state.state.name())?;
    Ok(())
}
