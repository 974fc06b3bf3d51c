//! `scanwatch intel import` and `scanwatch assets import|list`: read the files the
//! user supplies (advisories, benign-scanner lists, asset inventories, nmap scans)
//! and keep them in the data directory; and [`load_context`], which gives
//! `analyze`, `demo`, `exposure` and `server` what the data directory knows.

use scanwatch_store::prelude::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scanwatch_centre::context_sources::{Assembler, DataDir, Kept, SHOWN_ERRORS};
use scanwatch_centre::stored_context::{self, StoredContext};
use scanwatch_context::advisory::{self, Advisory};
use scanwatch_context::assets::{self, Asset};
use scanwatch_context::benign::{self, BenignSet};
use scanwatch_context::ContextData;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{ContextItem, ContextKind, ContextStore, ImportCounts, Store};

use crate::admin::DEFAULT_DATA_DIR;

#[derive(Clone, Debug, clap::Args)]
pub struct IntelArgs {
    #[command(subcommand)]
    pub command: IntelCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum IntelCommand {
    /// Import advisories or benign-scanner lists from files (no network access).
    Import {
        /// nvd (NVD CVE JSON 2.0, .json or .json.gz), kev (CISA KEV, JSON or CSV),
        /// exploitdb (files_exploits.csv), csaf (a vendor's CSAF 2.0 advisory: fixes,
        /// workarounds and their dates) or benign (IP/CIDR list, one per line).
        #[arg(value_parser = ["nvd", "kev", "exploitdb", "csaf", "benign"])]
        kind: String,
        /// Files to import (plain or .gz); each is read whole, then stored.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Data directory to import into (the server's `server.data`).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
    /// Count what the data directory holds.
    List {
        /// Data directory to read.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
}

#[derive(Clone, Debug, clap::Args)]
pub struct AssetsArgs {
    #[command(subcommand)]
    pub command: AssetsCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum AssetsCommand {
    /// Import the asset inventory: CSV (see docs/context.md) or nmap XML (-oX).
    Import {
        /// csv (host, address, zone, services, firewall, … : docs/context.md) or
        /// nmap (XML written with -oX).
        #[arg(value_parser = ["csv", "nmap"])]
        kind: String,
        /// Inventory files (plain or .gz); a host imported again replaces its record.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Data directory to import into (the server's `server.data`).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
    /// List the assets in the data directory.
    List {
        /// Data directory to read.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let (mut r, _) = crate::input::open(&name)?;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)
        .with_context(|| format!("cannot read {name}"))?;
    Ok(buf)
}

/// The file's bytes, or `None` after reporting why it cannot be read.
fn read_or_report(f: &Path, err: &mut dyn Write) -> Result<Option<Vec<u8>>> {
    match read_file(f) {
        Ok(b) => Ok(Some(b)),
        Err(e) => {
            writeln!(err, "error: {e:#}")?;
            Ok(None)
        }
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(s) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec})") {
        b.set_style(s.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

/// Stores items in chunks under a progress bar; one transaction per chunk, so an
/// interrupted import keeps whole chunks and a re-import completes it.
fn store_items(
    store: &mut SqliteStore,
    kind: ContextKind,
    items: &[ContextItem],
    what: &str,
) -> Result<ImportCounts> {
    let b = bar(items.len() as u64, what);
    let mut total = ImportCounts::default();
    for chunk in items.chunks(2000) {
        let c = store.put_context_items(kind, chunk, crate::admin::now())?;
        total.added += c.added;
        total.updated += c.updated;
        total.unchanged += c.unchanged;
        b.inc(chunk.len() as u64);
    }
    b.finish_and_clear();
    Ok(total)
}

fn counts_text(c: ImportCounts) -> String {
    format!(
        "{} new, {} updated, {} unchanged",
        c.added, c.updated, c.unchanged
    )
}

fn advisory_items(advs: &[Advisory], origin: &str) -> Result<Vec<ContextItem>> {
    advs.iter()
        .map(|a| {
            // Several vendors may publish CSAF advisories on one CVE: each is kept.
            let key = match a.source {
                advisory::AdvisorySource::Csaf => format!(
                    "csaf:{}:{}",
                    a.id,
                    a.remediations
                        .first()
                        .map_or(a.title.as_str(), |r| r.advisory.as_str())
                ),
                _ => format!("{}:{}", a.source.name(), a.id),
            };
            Ok(ContextItem {
                key,
                origin: origin.to_string(),
                json: serde_json::to_string(a)?,
            })
        })
        .collect()
}

/// Runs `intel`. Returns false when some file or entry was refused.
pub fn run_intel(args: &IntelArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<bool> {
    match &args.command {
        IntelCommand::Import { kind, files, data } => {
            let mut store = SqliteStore::open(data)?;
            let mut ok = true;
            for f in files {
                let name = f.display().to_string();
                let Some(bytes) = read_or_report(f, err)? else {
                    ok = false;
                    continue;
                };
                let origin = f
                    .file_name()
                    .map_or(name.clone(), |n| n.to_string_lossy().into_owned());
                if kind == "benign" {
                    let text = String::from_utf8_lossy(&bytes);
                    let (nets, errors) = benign::parse_list(&text, &origin);
                    for e in errors.iter().take(SHOWN_ERRORS) {
                        writeln!(err, "{name}: {e}")?;
                    }
                    ok &= errors.is_empty();
                    let items = nets
                        .iter()
                        .map(|n| {
                            Ok(ContextItem {
                                key: format!("{origin}:{}", n.net),
                                origin: origin.clone(),
                                json: serde_json::to_string(n)?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    // A list replaces the earlier import of the same file.
                    store.delete_context_origin(ContextKind::Benign, &origin)?;
                    let c = store_items(&mut store, ContextKind::Benign, &items, &name)?;
                    writeln!(
                        out,
                        "{name}: {} benign networks ({} lines refused)",
                        c.added + c.updated + c.unchanged,
                        errors.len()
                    )?;
                    continue;
                }
                let parsed = match kind.as_str() {
                    "nvd" => advisory::parse_nvd_json(&bytes),
                    "kev" if looks_like_json(&bytes) => advisory::parse_kev_json(&bytes),
                    "kev" => advisory::parse_kev_csv(&bytes),
                    "csaf" => advisory::parse_csaf_json(&bytes),
                    _ => advisory::parse_exploitdb_csv(&bytes),
                };
                let parsed = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        writeln!(err, "error: {name}: {e}; nothing imported from this file")?;
                        ok = false;
                        continue;
                    }
                };
                for e in parsed.errors.iter().take(SHOWN_ERRORS) {
                    writeln!(err, "{name}: {e}")?;
                }
                if parsed.errors.len() > SHOWN_ERRORS {
                    writeln!(
                        err,
                        "{name}: {} more entries refused",
                        parsed.errors.len() - SHOWN_ERRORS
                    )?;
                }
                ok &= parsed.errors.is_empty();
                let items = advisory_items(&parsed.advisories, &origin)?;
                let c = store_items(&mut store, ContextKind::Advisory, &items, &name)?;
                writeln!(
                    out,
                    "{name}: {} {kind} entries ({}), {} refused",
                    items.len(),
                    counts_text(c),
                    parsed.errors.len()
                )?;
            }
            Ok(ok)
        }
        IntelCommand::List { data } => {
            let store = SqliteStore::open(data)?;
            let advs = stored_context::advisories(&store)?;
            let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
            for a in &advs {
                *by.entry(a.source.name()).or_default() += 1;
            }
            for (k, n) in by {
                writeln!(out, "{k}: {n} advisories")?;
            }
            writeln!(
                out,
                "benign networks: {}",
                store.context_items(ContextKind::Benign)?.len()
            )?;
            writeln!(
                out,
                "assets: {}",
                store.context_items(ContextKind::Asset)?.len()
            )?;
            writeln!(
                out,
                "IDS alerts from sensors: {}",
                stored_context::ids(&store)?.len()
            )?;
            Ok(true)
        }
    }
}

fn looks_like_json(b: &[u8]) -> bool {
    b.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|&c| c == b'{' || c == b'[')
}

/// Runs `assets`. Returns false when some file or entry was refused.
pub fn run_assets(args: &AssetsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<bool> {
    match &args.command {
        AssetsCommand::Import { kind, files, data } => {
            let mut store = SqliteStore::open(data)?;
            let mut ok = true;
            for f in files {
                let name = f.display().to_string();
                let Some(bytes) = read_or_report(f, err)? else {
                    ok = false;
                    continue;
                };
                let label = format!(
                    "{kind}:{}",
                    f.file_name()
                        .map_or(name.clone(), |n| n.to_string_lossy().into_owned())
                );
                let parsed = if kind == "csv" {
                    assets::parse_csv(&bytes, &label)
                } else {
                    assets::parse_nmap_xml(&bytes, &label)
                };
                let parsed = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        writeln!(err, "error: {name}: {e}; nothing imported from this file")?;
                        ok = false;
                        continue;
                    }
                };
                for e in parsed.errors.iter().take(SHOWN_ERRORS) {
                    writeln!(err, "{name}: {e}")?;
                }
                ok &= parsed.errors.is_empty();
                // Merge with what is stored so a re-import replaces records by key.
                let merged = assets::merge(Vec::new(), parsed.assets.clone());
                let items = merged
                    .iter()
                    .map(|a| {
                        Ok(ContextItem {
                            key: asset_key(a),
                            origin: label.clone(),
                            json: serde_json::to_string(a)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let c = store_items(&mut store, ContextKind::Asset, &items, &name)?;
                writeln!(
                    out,
                    "{name}: {} assets ({}), {} refused",
                    items.len(),
                    counts_text(c),
                    parsed.errors.len()
                )?;
            }
            Ok(ok)
        }
        AssetsCommand::List { data, json } => {
            let store = SqliteStore::open(data)?;
            let assets = stored_context::assets(&store)?;
            for a in &assets {
                if *json {
                    crate::analyze::json_line(out, a)?;
                } else {
                    writeln!(out, "{}", asset_line(a))?;
                }
            }
            Ok(true)
        }
    }
}

/// The store key of an asset: its address, else its host name.
pub fn asset_key(a: &Asset) -> String {
    a.address
        .map_or_else(|| format!("host:{}", a.host), |ip| ip.to_string())
}

/// One line describing an asset.
pub fn asset_line(a: &Asset) -> String {
    let ports: Vec<String> = a
        .open_ports
        .iter()
        .map(|p| format!("{}/{}", p.proto, p.port))
        .collect();
    format!(
        "{:<20} {:<16} roles={} ports={} firewalled={} zone={}",
        a.host,
        a.address.map_or("-".to_string(), |i| i.to_string()),
        if a.roles.is_empty() {
            "-".to_string()
        } else {
            a.roles.join(",")
        },
        if ports.is_empty() {
            "-".to_string()
        } else {
            ports.join(",")
        },
        match a.firewalled {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        },
        a.zone.as_deref().unwrap_or("-")
    )
}

/// Options that add context to warnings, shared by `analyze` and `demo`.
#[derive(Clone, Debug, clap::Args)]
pub struct ContextArgs {
    /// Data directory with imported advisories, assets, benign scanners and
    /// ports.toml (see `scanwatch intel`, `scanwatch assets`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// IDS alert logs (Suricata EVE JSON or Snort/Suricata fast.log) whose CVEs can
    /// confirm an explanation.
    #[arg(long, value_name = "FILE")]
    pub ids: Vec<PathBuf>,
    /// Extra benign-scanner lists (IP/CIDR per line) for this run only.
    #[arg(long, value_name = "FILE")]
    pub benign: Vec<PathBuf>,
    /// The system services database giving names to registered ports.
    #[arg(long, default_value = "/etc/services")]
    pub services: PathBuf,
    /// Sensors whose IDS alerts must name a CVE before it is confirmed (1-4; the
    /// alerts of a trusted sensor or of the files given here confirm alone).
    #[arg(long, default_value_t = 2)]
    pub confirm_min_sensors: usize,
}

impl Default for ContextArgs {
    fn default() -> Self {
        ContextArgs {
            data: None,
            ids: Vec::new(),
            benign: Vec::new(),
            services: PathBuf::from("/etc/services"),
            confirm_min_sensors: 2,
        }
    }
}

/// What the data directory and the files given know, ready for the alert stage;
/// plus the benign set for the pipeline.
pub fn load_context(
    args: &ContextArgs,
    year: i32,
    err: &mut dyn Write,
) -> Result<(ContextData, BenignSet)> {
    load_context_with(args, None, year, err)
}

/// [`load_context`], reading the imported advisories, assets, benign lists and IDS
/// alerts from `shared` (the scale-out store) instead of the data directory's.
/// The assembly is the centre's ([`context_sources`]); this reads the files the
/// user named (stdin and compressed files too) and shows what did not parse.
pub fn load_context_with(
    args: &ContextArgs,
    shared: Option<&dyn Store>,
    year: i32,
    err: &mut dyn Write,
) -> Result<(ContextData, BenignSet)> {
    let kept = match (shared, &args.data) {
        (Some(s), _) => Kept::Shared(StoredContext::read(s)?),
        (None, Some(dir)) => Kept::DataDir(DataDir::read(dir)?),
        (None, None) => Kept::Nothing,
    };
    // The services database is optional: many containers have none.
    let services = std::fs::read_to_string(&args.services).ok();
    let mut context = Assembler::new(services.as_deref(), kept, args.confirm_min_sensors, year)?;
    // One file at a time: an IDS log may be large.
    for f in &args.benign {
        for n in context.add_benign(&f.display().to_string(), &read_file(f)?) {
            writeln!(err, "{n}")?;
        }
    }
    for f in &args.ids {
        for n in context.add_ids(&f.display().to_string(), &read_file(f)?) {
            writeln!(err, "{n}")?;
        }
    }
    Ok(context.finish())
}

#[derive(Clone, Debug, clap::Args)]
pub struct ExposureArgs {
    /// Data directory with the asset inventory (and advisories, and the warnings a
    /// server stored).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Warnings as JSON Lines (`analyze --json`, `demo --json`); default: the
    /// warnings stored in the data directory by `scanwatch server`.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// Stored warnings count as active when their window ended at most this long
    /// before the newest stored warning.
    #[arg(long, default_value = "7d")]
    pub active: String,
    /// IDS alert logs that can confirm an explanation (as for `analyze`).
    #[arg(long, value_name = "FILE")]
    pub ids: Vec<PathBuf>,
    /// JSON Lines output: one object per warning.
    #[arg(long)]
    pub json: bool,
}

/// One active warning, reduced to what exposure needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ActiveWarning {
    proto: scanwatch_event::Protocol,
    port: u16,
    episode_start: scanwatch_event::Timestamp,
    window_end: scanwatch_event::Timestamp,
    severity: String,
    summary: String,
}

/// The active warning of one `analyze --json` line or stored warning (`None` for
/// the other lines).
fn warning_from(line: &str) -> Result<Option<ActiveWarning>> {
    let Some(a) = scanwatch_alert::read_warning_line(line)? else {
        return Ok(None);
    };
    let proto = scanwatch_event::Protocol::parse(&a.protocol)
        .ok_or_else(|| anyhow::anyhow!("unknown protocol {:?}", a.protocol))?;
    Ok(Some(ActiveWarning {
        proto,
        port: a.port,
        episode_start: a.episode_start,
        window_end: a.window_end,
        severity: a.severity.name().to_string(),
        summary: a.summary,
    }))
}

/// One warning per surge (protocol, port, start), its latest window.
fn latest_per_surge(mut v: Vec<ActiveWarning>) -> Vec<ActiveWarning> {
    v.sort_by(|a, b| {
        (a.proto, a.port, a.episode_start, b.window_end).cmp(&(
            b.proto,
            b.port,
            b.episode_start,
            a.window_end,
        ))
    });
    v.dedup_by(|b, a| (a.proto, a.port, a.episode_start) == (b.proto, b.port, b.episode_start));
    v.sort_by(|a, b| b.window_end.cmp(&a.window_end).then(a.cmp(b)));
    v
}

/// Runs `exposure`: for each active warning, the assets that expose the targeted
/// ports or run a matching service, most exposed first.
pub fn run_exposure(args: &ExposureArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<bool> {
    let mut warnings = Vec::new();
    let mut bad = 0usize;
    match &args.alerts {
        Some(f) => {
            let bytes = read_file(f)?;
            for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match warning_from(line) {
                    Ok(Some(w)) => warnings.push(w),
                    Ok(None) => {}
                    Err(e) => {
                        bad += 1;
                        writeln!(err, "{}:{}: {e:#}", f.display(), i + 1)?;
                    }
                }
            }
        }
        None => {
            let store = SqliteStore::open(&args.data)?;
            let rows = store.alerts(
                scanwatch_event::Timestamp(i64::MIN),
                scanwatch_event::Timestamp(i64::MAX),
                0,
            )?;
            for r in rows {
                match warning_from(&r.json) {
                    Ok(Some(w)) => warnings.push(w),
                    Ok(None) => {}
                    Err(e) => {
                        bad += 1;
                        writeln!(err, "stored warning {}: {e:#}", r.id)?;
                    }
                }
            }
            let active = scanwatch_event::parse_duration(&args.active)?;
            if let Some(newest) = warnings.iter().map(|w| w.window_end).max() {
                warnings.retain(|w| w.window_end.0 >= newest.0 - active);
            }
        }
    }
    let warnings = latest_per_surge(warnings);
    let ctx_args = ContextArgs {
        data: Some(args.data.clone()),
        ids: args.ids.clone(),
        ..ContextArgs::default()
    };
    let year = warnings
        .first()
        .and_then(|w| chrono::DateTime::from_timestamp_millis(w.window_end.0))
        .map_or(1970, |d| chrono::Datelike::year(&d));
    let (ctx, _) = load_context(&ctx_args, year, err)?;
    if ctx.assets.is_empty() {
        writeln!(
            err,
            "no assets in {}: import an inventory with `scanwatch assets import csv|nmap FILE`",
            args.data.display()
        )?;
    }
    if warnings.is_empty() {
        writeln!(err, "no active warnings")?;
    }
    for w in &warnings {
        let c = ctx.enrich(w.proto, w.port, w.episode_start, w.window_end);
        if args.json {
            crate::analyze::json_line(
                out,
                &serde_json::json!({
                    "type": "exposure",
                    "protocol": w.proto.name(),
                    "port": w.port,
                    "episode_start": w.episode_start.to_rfc3339(),
                    "window_end": w.window_end.to_rfc3339(),
                    "severity": w.severity,
                    "summary": w.summary,
                    "confidence": c.assessment.confidence,
                    "exposed_total": c.exposed_total,
                    "exposed": c.exposed,
                }),
            )?;
        } else {
            writeln!(
                out,
                "[{}] {}/{} since {}: {}",
                w.severity.to_uppercase(),
                w.proto,
                w.port,
                w.episode_start.to_rfc3339(),
                c.assessment.statement
            )?;
            if c.exposed.is_empty() {
                writeln!(out, "  no asset exposes it")?;
            }
            for (i, e) in c.exposed.iter().enumerate() {
                writeln!(
                    out,
                    "  {}. {} {} (score {}): {}",
                    i + 1,
                    e.host,
                    e.address.map_or(String::new(), |a| a.to_string()),
                    e.score,
                    e.reasons.join(", ")
                )?;
            }
            if c.exposed_total > c.exposed.len() {
                writeln!(out, "  … {} more", c.exposed_total - c.exposed.len())?;
            }
        }
    }
    Ok(bad == 0)
}
