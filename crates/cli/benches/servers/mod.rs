//! Servers started by the tests/scale scripts for the benches that need them (NATS,
//! ClickHouse), stopped on drop.
#![allow(dead_code, clippy::unwrap_used)] // each bench uses what it needs; a bench may panic on a broken setup

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scale")
}

/// A directory of servers started by one of the tests/scale scripts; `stop` on drop.
pub struct Servers(&'static str, PathBuf);

impl Servers {
    pub fn start(script: &'static str, dir: &Path) -> (Servers, String) {
        let st = Command::new("bash")
            .arg(scripts().join(script))
            .arg("start")
            .arg(dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        let s = Servers(script, dir.to_path_buf());
        assert!(st.success(), "{script} start failed");
        (s, std::fs::read_to_string(dir.join("ports.env")).unwrap())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(scripts().join(self.0))
            .arg("stop")
            .arg(&self.1)
            .stdout(Stdio::null())
            .status();
    }
}

pub fn env_value(env: &str, key: &str) -> String {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} not in ports.env"))
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string()
}
