//! House rules that hold the code, checked on the sources (ARCHITECTURE.md,
//! "Architecture Invariants"): no library crate prints (libraries emit `tracing`
//! events; the binary (`crates/cli`) sets the one subscriber and writes the user's
//! output); the centre uses the store for its role only.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_library_crate_prints() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let printing = [
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "dbg!(",
        "io::stdout()",
        "io::stderr()",
    ];
    let mut files = Vec::new();
    let mut libraries = 0;
    for e in std::fs::read_dir(&crates).unwrap() {
        let dir = e.unwrap().path();
        if dir.file_name().is_some_and(|n| n == "cli") || !dir.join("src").is_dir() {
            continue;
        }
        libraries += 1;
        rust_files(&dir.join("src"), &mut files);
    }
    assert!(libraries >= 10, "found {libraries} library crates");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(m) = printing.iter().find(|m| code.contains(*m)) {
                found.push(format!("{}:{}: {m}", f.display(), i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "library code prints (use tracing):\n{}",
        found.join("\n")
    );
}

/// The centre reaches the store it shares with the HTTP API through its role only
/// (`scanwatch_store::CentreStore`, by `centre::lock`): a direct lock of the shared
/// store in the centre's code would hand it every role (users, tokens, the sinks'
/// state).
#[test]
fn the_centre_locks_the_store_for_its_role_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../centre/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // The code before its unit tests, comments and blanks left out.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<String>()
            .split_whitespace()
            .collect();
        let n = code.matches("store.lock()").count();
        if n > 0 {
            found.push(format!("{}: {n}", f.display()));
        }
    }
    assert_eq!(
        found,
        vec![format!("{}: 1", src.join("centre.rs").display())],
        "only `centre::lock` locks the shared store"
    );
}
