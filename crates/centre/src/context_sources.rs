//! The threat context a run explains its warnings with, assembled from where it is
//! kept: the store (imported advisories, assets, benign scanners, IDS alerts,
//! trusted sensors: [`StoredContext`]), the data directory's own files (`ports.toml`,
//! `patchdays.toml`), the system's services database, and the files the user names
//! for one run (benign lists, IDS logs). `analyze`, `demo`, `exposure` and every
//! server role take it from here, so they explain alike.
//!
//! It reads the data directory (its store, `ports.toml`, `patchdays.toml`); the
//! caller reads the files the user names (it knows stdin and compressed inputs)
//! and hands their bytes over one at a time; what does not parse is returned as
//! notices for the caller to show, never printed here.

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

/// Where the kept context comes from.
#[derive(Clone, Debug, Default)]
pub enum Kept {
    /// A data directory: its store and its files.
    DataDir(DataDir),
    /// The shared store of the scale-out roles (no files).
    Shared(StoredContext),
    /// Nothing kept: built-in knowledge and what the user gives.
    #[default]
    Nothing,
}

/// Puts the context together: the kept part when made, then each file the user
/// gives as it is read (one at a time: an IDS log may be large), then
/// [`Assembler::finish`].
pub struct Assembler {
    ports: PortKnowledge,
    patch_days: PatchDays,
    stored: StoredContext,
    confirm_min_sensors: usize,
    year: i32,
}

impl Assembler {
    /// From the services database's text (`/etc/services`, when there is one), the
    /// kept context, and the number of sensors whose IDS alerts must name a CVE
    /// before it is confirmed; `year` dates the IDS lines that carry none
    /// (fast.log). A `ports.toml` or `patchdays.toml` that does not parse is an
    /// error naming it.
    pub fn new(
        services: Option<&str>,
        kept: Kept,
        confirm_min_sensors: usize,
        year: i32,
    ) -> Result<Assembler, CentreError> {
        let mut ports = PortKnowledge::builtin();
        if let Some(text) = services {
            ports = ports.with_services(&services::parse_services(text));
        }
        let mut patch_days = PatchDays::builtin();
        let stored = match kept {
            Kept::DataDir(dir) => {
                let named = |f: &str| dir.path.join(f).display().to_string();
                if let Some(text) = &dir.ports {
                    let o = knowledge::parse_overrides(text)
                        .map_err(|e| CentreError::Context(format!("{}: {e}", named(PORTS_FILE))))?;
                    ports = ports.with_overrides(&o);
                }
                if let Some(text) = &dir.patch_days {
                    let user = PatchDays::parse(text).map_err(|e| {
                        CentreError::Context(format!("{}: {e}", named(PATCH_DAYS_FILE)))
                    })?;
                    patch_days = patch_days.with_overrides(user);
                }
                dir.stored
            }
            Kept::Shared(stored) => stored,
            Kept::Nothing => StoredContext::default(),
        };
        Ok(Assembler {
            ports,
            patch_days,
            stored,
            confirm_min_sensors,
            year,
        })
    }

    /// A benign-scanner list (IP/CIDR per line) named `name`: its networks are
    /// added; what does not parse comes back as notices (bounded).
    pub fn add_benign(&mut self, name: &str, bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let label = Path::new(name)
            .file_name()
            .map_or("benign".into(), |n| n.to_string_lossy().into_owned());
        let (nets, errors) = benign::parse_list(&text, &label);
        self.stored.benign.extend(nets);
        errors
            .iter()
            .take(SHOWN_ERRORS)
            .map(|e| format!("{name}: {e}"))
            .collect()
    }

    /// An IDS alert log (EVE JSON or fast.log) named `name`: its alerts are added;
    /// the lines that are not alerts come back as notices (bounded, and counted).
    pub fn add_ids(&mut self, name: &str, bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let mut notices = Vec::new();
        let mut bad = 0usize;
        for (i, line) in text.lines().enumerate() {
            match ids::parse_line(line, self.year) {
                IdsLine::Hit(h) => self.stored.ids.push(h),
                IdsLine::Skip => {}
                IdsLine::Error(e) => {
                    bad += 1;
                    if bad <= SHOWN_ERRORS {
                        notices.push(format!("{name}:{}: {e}", i + 1));
                    }
                }
            }
        }
        if bad > 0 {
            notices.push(format!(
                "{name}: {bad} lines are not IDS alerts and were skipped"
            ));
        }
        notices
    }

    /// The context for the alert stage and the benign set for the pipeline.
    pub fn finish(self) -> (ContextData, BenignSet) {
        let stored = self.stored;
        let context = ContextData {
            ports: self.ports,
            intel: Intel::new(&stored.advisories),
            ids: stored.ids,
            assets: stored.assets,
            explain: ExplainConfig {
                confirm_min_sensors: self.confirm_min_sensors,
                trusted_sensors: stored.trusted,
                patch_days: self.patch_days,
                ..ExplainConfig::default()
            },
        };
        (context, BenignSet::new(&stored.benign))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scanwatch_store::{ContextItem, ContextKind, ContextStore};

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
        let kept = Kept::DataDir(DataDir::read(dir.path()).unwrap());
        let mut a = Assembler::new(Some("domain 53/tcp\n"), kept, 3, 2026).unwrap();
        let benign = a.add_benign("lists/research.txt", b"198.51.100.0/24\nnot-a-net\n");
        assert_eq!(benign.len(), 1, "{benign:?}");
        assert!(benign[0].starts_with("lists/research.txt: "), "{benign:?}");
        let ids = a.add_ids("fast.log", b"garbage line\n");
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids[0].starts_with("fast.log:1: "), "{ids:?}");
        assert_eq!(
            ids[1],
            "fast.log: 1 lines are not IDS alerts and were skipped"
        );
        let (context, benign) = a.finish();
        assert_eq!(context.assets.len(), 1);
        assert_eq!(context.explain.confirm_min_sensors, 3);
        assert!(benign.contains("198.51.100.7".parse().unwrap()));
        assert!(!benign.contains("203.0.113.7".parse().unwrap()));
        let name = context.ports.name(scanwatch_event::Protocol::Tcp, 40404);
        assert_eq!(name, "our-app", "ports.toml is read");
    }

    #[test]
    fn a_bad_ports_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        std::fs::write(dir.path().join(PORTS_FILE), "version = [").unwrap();
        let kept = Kept::DataDir(DataDir::read(dir.path()).unwrap());
        let e = Assembler::new(None, kept, 2, 2026)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(PORTS_FILE), "{e}");
    }
}
