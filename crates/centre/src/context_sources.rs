//! The threat context a run explains its warnings with, assembled from where it is
//! kept: the store (imported advisories, assets, benign scanners, IDS alerts,
//! trusted sensors: [`StoredContext`]), the data directory's own files (`ports.toml`,
//! `patchdays.toml`), the system's services database, and the files the user names
//! for one run (benign lists, IDS logs). `analyze`, `demo`, `exposure` and every
//! server role take it from here, so they explain alike.
//!
//! The caller reads the user's files (it knows stdin and compressed inputs) and
//! hands their bytes over; what does not parse is returned as notices for the
//! caller to show, never printed here.

use std::path::{Path, PathBuf};

use scanwatch_context::benign::{self, BenignSet};
use scanwatch_context::explain::{ExplainConfig, Intel};
use scanwatch_context::ids::{self, IdsLine};
use scanwatch_context::knowledge::{self, PortKnowledge};
use scanwatch_context::patchday::PatchDays;
use scanwatch_context::{services, ContextData};
use scanwatch_store::sqlite::{SqliteStore, DB_FILE};

use crate::{CentreError, StoredContext};

/// The user's port notes, read from the data directory when present.
pub const PORTS_FILE: &str = "ports.toml";
/// The user's patch-day table in the data directory (docs/context.md): adds vendors
/// to the built-in one or replaces them.
pub const PATCH_DAYS_FILE: &str = "patchdays.toml";
/// Entry errors shown per file (all are counted).
pub const SHOWN_ERRORS: usize = 10;

/// A file the user gave for this run, as read by the caller.
#[derive(Clone, Debug)]
pub struct GivenFile {
    /// How notices name it (its path as given).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What a data directory holds of the context.
#[derive(Clone, Debug, Default)]
pub struct DataDir {
    pub stored: StoredContext,
    /// `ports.toml`, when present.
    pub ports: Option<String>,
    /// `patchdays.toml`, when present.
    pub patch_days: Option<String>,
    /// Where it was read from (notices and errors name the files in it).
    pub path: PathBuf,
}

impl DataDir {
    /// Reads the embedded store of `dir` and its context files; a directory with no
    /// store is an error that says how to fill one.
    pub fn read(dir: &Path) -> Result<DataDir, CentreError> {
        if !dir.join(DB_FILE).exists() {
            return Err(CentreError::Context(format!(
                "{} has no scanwatch data (import with `scanwatch intel import` or `scanwatch assets import` first)",
                dir.display()
            )));
        }
        let stored = StoredContext::read(&SqliteStore::open(dir)?)?;
        let text = |name: &str| -> Result<Option<String>, CentreError> {
            let p = dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(CentreError::Context(format!(
                    "cannot read {}: {e}",
                    p.display()
                ))),
            }
        };
        Ok(DataDir {
            stored,
            ports: text(PORTS_FILE)?,
            patch_days: text(PATCH_DAYS_FILE)?,
            path: dir.to_path_buf(),
        })
    }
}

/// Everything the context is assembled from.
#[derive(Clone, Debug, Default)]
pub struct ContextParts {
    /// The services database's text (`/etc/services`), when there is one.
    pub services: Option<String>,
    /// The context kept in the store: a data directory's, with its files, or the
    /// shared store's (scale-out roles, no files).
    pub data: Option<DataDir>,
    pub stored: Option<StoredContext>,
    /// Benign-scanner lists for this run (IP/CIDR per line).
    pub benign: Vec<GivenFile>,
    /// IDS alert logs for this run (EVE JSON or fast.log).
    pub ids: Vec<GivenFile>,
    /// Sensors whose IDS alerts must name a CVE before it is confirmed.
    pub confirm_min_sensors: usize,
}

/// The context for the alert stage, the benign set for the pipeline, and what did
/// not parse (one line each, bounded per file).
pub struct Assembled {
    pub context: ContextData,
    pub benign: BenignSet,
    pub notices: Vec<String>,
}

/// Assembles the context; `year` dates the IDS lines that carry none (fast.log).
/// A `ports.toml` or `patchdays.toml` that does not parse is an error naming it; a
/// bad line of a given file is a notice and is skipped.
pub fn assemble(parts: ContextParts, year: i32) -> Result<Assembled, CentreError> {
    let mut ports = PortKnowledge::builtin();
    if let Some(text) = &parts.services {
        ports = ports.with_services(&services::parse_services(text));
    }
    let mut patch_days = PatchDays::builtin();
    let mut stored = parts.stored.unwrap_or_default();
    if let Some(dir) = parts.data {
        let named = |f: &str| dir.path.join(f).display().to_string();
        if let Some(text) = &dir.ports {
            let o = knowledge::parse_overrides(text)
                .map_err(|e| CentreError::Context(format!("{}: {e}", named(PORTS_FILE))))?;
            ports = ports.with_overrides(&o);
        }
        if let Some(text) = &dir.patch_days {
            let user = PatchDays::parse(text)
                .map_err(|e| CentreError::Context(format!("{}: {e}", named(PATCH_DAYS_FILE))))?;
            patch_days = patch_days.with_overrides(user);
        }
        stored = dir.stored;
    }
    let mut notices = Vec::new();
    for f in &parts.benign {
        let text = String::from_utf8_lossy(&f.bytes);
        let label = Path::new(&f.name)
            .file_name()
            .map_or("benign".into(), |n| n.to_string_lossy().into_owned());
        let (nets, errors) = benign::parse_list(&text, &label);
        notices.extend(
            errors
                .iter()
                .take(SHOWN_ERRORS)
                .map(|e| format!("{}: {e}", f.name)),
        );
        stored.benign.extend(nets);
    }
    for f in &parts.ids {
        let text = String::from_utf8_lossy(&f.bytes);
        let mut bad = 0usize;
        for (i, line) in text.lines().enumerate() {
            match ids::parse_line(line, year) {
                IdsLine::Hit(h) => stored.ids.push(h),
                IdsLine::Skip => {}
                IdsLine::Error(e) => {
                    bad += 1;
                    if bad <= SHOWN_ERRORS {
                        notices.push(format!("{}:{}: {e}", f.name, i + 1));
                    }
                }
            }
        }
        if bad > 0 {
            notices.push(format!(
                "{}: {bad} lines are not IDS alerts and were skipped",
                f.name
            ));
        }
    }
    let context = ContextData {
        ports,
        intel: Intel::new(&stored.advisories),
        ids: stored.ids,
        assets: stored.assets,
        explain: ExplainConfig {
            confirm_min_sensors: parts.confirm_min_sensors,
            trusted_sensors: stored.trusted,
            patch_days,
            ..ExplainConfig::default()
        },
    };
    Ok(Assembled {
        context,
        benign: BenignSet::new(&stored.benign),
        notices,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scanwatch_store::{ContextItem, ContextKind, ContextStore};

    fn given(name: &str, text: &str) -> GivenFile {
        GivenFile {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_directory_without_a_store_says_how_to_fill_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = DataDir::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("has no scanwatch data"), "{e}");
    }

    #[test]
    fn assembles_the_store_the_files_and_what_the_user_gave() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = SqliteStore::open(dir.path()).unwrap();
            let parsed = scanwatch_context::assets::parse_csv(
                b"host,address,os,roles,open_ports,firewalled,zone\ndns1,198.18.0.5,linux,dns,tcp/53,no,dmz\n",
                "test",
            )
            .unwrap();
            assert_eq!(parsed.assets.len(), 1, "{:?}", parsed.errors);
            s.put_context_items(
                ContextKind::Asset,
                &[ContextItem {
                    key: "198.18.0.5".into(),
                    origin: "test".into(),
                    json: serde_json::to_string(&parsed.assets[0]).unwrap(),
                }],
                scanwatch_event::Timestamp(0),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join(PORTS_FILE),
            "version = 1\n[[port]]\nproto = \"tcp\"\nport = 40404\nname = \"our-app\"\n",
        )
        .unwrap();
        let parts = ContextParts {
            services: Some("domain 53/tcp\n".into()),
            data: Some(DataDir::read(dir.path()).unwrap()),
            stored: None,
            benign: vec![given("lists/research.txt", "198.51.100.0/24\nnot-a-net\n")],
            ids: vec![given("fast.log", "garbage line\n")],
            confirm_min_sensors: 3,
        };
        let a = assemble(parts, 2026).unwrap();
        assert_eq!(a.context.assets.len(), 1);
        assert_eq!(a.context.explain.confirm_min_sensors, 3);
        assert!(a.benign.contains("198.51.100.7".parse().unwrap()));
        assert!(!a.benign.contains("203.0.113.7".parse().unwrap()));
        let name = a.context.ports.name(scanwatch_event::Protocol::Tcp, 40404);
        assert_eq!(name, "our-app", "ports.toml is read");
        assert_eq!(a.notices.len(), 3, "{:?}", a.notices);
        assert!(
            a.notices[0].starts_with("lists/research.txt: "),
            "{:?}",
            a.notices
        );
        assert!(a.notices[1].starts_with("fast.log:1: "), "{:?}", a.notices);
        assert_eq!(
            a.notices[2],
            "fast.log: 1 lines are not IDS alerts and were skipped"
        );
    }

    #[test]
    fn a_bad_ports_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        std::fs::write(dir.path().join(PORTS_FILE), "version = [").unwrap();
        let parts = ContextParts {
            data: Some(DataDir::read(dir.path()).unwrap()),
            ..ContextParts::default()
        };
        let e = assemble(parts, 2026).err().unwrap().to_string();
        assert!(e.contains(PORTS_FILE), "{e}");
    }
}
