//! `scanwatch block`: keeps a local nftables table in sync with the centre's
//! blocklist (the top sources of its recent warnings, corroborated by several
//! sensors, benign scanners left out), as CrowdSec's firewall bouncer does for its
//! decisions. Every sync replaces the table: an address the list keeps gets a fresh
//! timeout, one it dropped is let in again, and if the centre cannot be reached
//! the last list expires on its own after `--timeout` (it fails open, never
//! blocks forever).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use scanwatch_collector::{nft_script, parse_blocklist_txt, valid_nft_table, DEFAULT_NFT_TABLE};

#[derive(Clone, Debug, clap::Args)]
pub struct BlockArgs {
    /// Where the list comes from: the centre (`http://HOST:PORT` or `https://…`,
    /// with --token-file) or a file in the blocklist's txt form (one address per
    /// line, `#` comments).
    #[arg(long)]
    pub source: String,
    /// A file holding an API token (analyst role), for a centre.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Trust only the certificates in this PEM file for an `https://` centre (a
    /// centre with its own or a self-signed certificate); default: the public roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// How long an address stays blocked after the last sync that listed it
    /// (e.g. 30m, 1h, 1d).
    #[arg(long, default_value = "1h")]
    pub timeout: String,
    /// The warnings of how many past hours the centre's list covers (1-720).
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// The nftables table (inet) the list is loaded into; it is replaced on every
    /// sync, so give it to scanwatch alone.
    #[arg(long, default_value = DEFAULT_NFT_TABLE)]
    pub table: String,
    /// Time between syncs.
    #[arg(long, default_value = "60s")]
    pub interval: String,
    /// Sync once and exit.
    #[arg(long)]
    pub once: bool,
    /// Print the nftables script instead of loading it.
    #[arg(long)]
    pub dry_run: bool,
    /// The nft program.
    #[arg(long, default_value = "nft")]
    pub nft: PathBuf,
}

/// The list from a centre or a file, as text.
fn fetch(args: &BlockArgs) -> Result<String> {
    if args.source.starts_with("http://") || args.source.starts_with("https://") {
        let token_file = args
            .token_file
            .as_ref()
            .context("--token-file is needed to read a centre's blocklist")?;
        let token = std::fs::read_to_string(token_file)
            .with_context(|| format!("cannot read {}", token_file.display()))?;
        let url = format!(
            "{}/api/v1/blocklist?format=txt&hours={}",
            args.source.trim_end_matches('/'),
            args.hours
        );
        let ca = match &args.ca_file {
            Some(f) => {
                Some(std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?)
            }
            None => None,
        };
        let agent =
            scanwatch_sensor::run::http_agent(ca.as_deref()).context("cannot use the --ca-file")?;
        let body = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", token.trim()))
            .call()
            .with_context(|| format!("cannot read the blocklist from {}", args.source))?
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .with_context(|| format!("cannot read the blocklist from {}", args.source))?;
        Ok(body)
    } else {
        std::fs::read_to_string(&args.source)
            .with_context(|| format!("cannot read {}", args.source))
    }
}

/// One sync: read the list, build the script, load it (or print it).
fn sync(
    args: &BlockArgs,
    timeout_s: i64,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<usize> {
    let text = fetch(args)?;
    let (ips, bad) = parse_blocklist_txt(&text);
    for (line, what) in bad.iter().take(5) {
        writeln!(err, "{}:{line}: not an address: {what:?}", args.source)?;
    }
    if !bad.is_empty() {
        writeln!(
            err,
            "{}: {} lines are not addresses (left out; the other {} are loaded)",
            args.source,
            bad.len(),
            ips.len()
        )?;
    }
    let script = nft_script(
        &ips,
        timeout_s,
        &args.table,
        &format!(
            "{} addresses from {}; each expires {timeout_s}s after this sync unless a later one lists it",
            ips.len(),
            args.source
        ),
    );
    if args.dry_run {
        out.write_all(script.as_bytes())?;
        out.flush()?;
        return Ok(ips.len());
    }
    let mut child = std::process::Command::new(&args.nft)
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", args.nft.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let done = child.wait_with_output()?;
    if !done.status.success() {
        bail!(
            "{} refused the blocklist: {}",
            args.nft.display(),
            String::from_utf8_lossy(&done.stderr).trim()
        );
    }
    Ok(ips.len())
}

pub fn run(args: &BlockArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    if !valid_nft_table(&args.table) {
        bail!(
            "--table {:?}: 1-32 letters, digits or _, starting with a letter",
            args.table
        );
    }
    if !(1..=720).contains(&args.hours) {
        bail!("--hours must be 1-720, not {}", args.hours);
    }
    let timeout_s = scanwatch_event::parse_duration(&args.timeout)? / 1000;
    if timeout_s < 1 {
        bail!("--timeout must be at least 1s");
    }
    let interval = Duration::from_millis(
        u64::try_from(scanwatch_event::parse_duration(&args.interval)?).unwrap_or(60_000),
    )
    .max(Duration::from_secs(1));
    loop {
        match sync(args, timeout_s, out, err) {
            Ok(n) if !args.dry_run => writeln!(
                err,
                "blocklist: {n} addresses in nftables table inet {} (each for {})",
                args.table, args.timeout
            )?,
            Ok(_) => {}
            // One failed sync is said and retried; the table keeps the last list,
            // which expires by itself. A single sync (--once, --dry-run) fails.
            Err(e) if !args.once && !args.dry_run => writeln!(err, "error: {e:#}")?,
            Err(e) => return Err(e),
        }
        if args.once || args.dry_run {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}
