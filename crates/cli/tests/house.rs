//! House rules that hold the code, checked on the sources (ARCHITECTURE.md,
//! "Architecture Invariants"): no library crate prints. Libraries emit `tracing`
//! events; the binary (`crates/cli`) sets the one subscriber and writes the user's
//! output.
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
