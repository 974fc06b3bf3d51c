//! The journald source with real journal files: `systemd-journal-remote` writes the
//! entries a firewall's kernel logs (and some that are not the kernel's) into a
//! journal directory, `scanwatch sensor run --journald --journal-dir DIR` follows it
//! with `journalctl` into a real centre; entries appended later follow; after a
//! restart (and after a `kill -9`) the sensor resumes at the saved position: no
//! entry is delivered twice and none is skipped.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, stored_events_and_sources, wait_for, Server};

fn journal_remote() -> PathBuf {
    [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("systemd-journal-remote not found: apt-get install systemd-journal-remote")
}

/// Writes entries `from..from + n` (kernel netfilter lines, one second apart from
/// `t0`, plus one sshd entry each) into journal file `name` of `dir`, in the
/// journal export format through systemd-journal-remote.
fn write_entries(dir: &Path, name: &str, t0_us: u64, from: u32, n: u32) {
    let mut export = String::new();
    for i in from..from + n {
        let t = t0_us + u64::from(i) * 1_000_000;
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _TRANSPORT=kernel\nSYSLOG_IDENTIFIER=kernel\n_HOSTNAME=fw1\nPRIORITY=4\n\
             MESSAGE=[12.5] DROP IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=10.0.{}.{} DST=198.18.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID={i} PROTO=TCP SPT=61000 DPT=1025 WINDOW=1024 RES=0x00 SYN URGP=0\n\n",
            u64::from(i) + 1,
            i / 250,
            i % 250 + 1
        ));
        // Not the kernel's: left out by the default match.
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _TRANSPORT=syslog\nSYSLOG_IDENTIFIER=sshd\n_HOSTNAME=fw1\nPRIORITY=6\n\
             MESSAGE=Accepted publickey for admin from 192.0.2.99 port 4000\n\n",
            t + 1,
            u64::from(i) + 1
        ));
    }
    let input = dir.join(format!("{name}.export"));
    std::fs::write(&input, export).unwrap();
    let out = Command::new(journal_remote())
        .arg(format!(
            "--output={}",
            dir.join(format!("{name}.journal")).display()
        ))
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&input).unwrap();
}

#[test]
fn a_sensor_follows_the_journal_and_resumes_where_it_stopped() {
    let dir = std::env::temp_dir().join(format!("scanwatch-journald-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal = dir.join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let centre = common::centre_with_sensor(&dir);
    let (listen, token_file, db) = (
        centre.listen.clone(),
        centre.token_file.clone(),
        centre.db.clone(),
    );
    // A minute ago, so the centre takes the events as on time.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
        - 60_000_000;
    write_entries(&journal, "a", t0, 0, 40);
    let spool = dir.join("spool");
    let sensor = |from_start: bool| {
        let mut c = bin();
        c.args([
            "sensor",
            "run",
            "--server",
            &format!("http://{listen}"),
            "--token-file",
        ])
        .arg(&token_file)
        .arg("--spool")
        .arg(&spool)
        .arg("--journald")
        .arg("--journal-dir")
        .arg(&journal)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if from_start {
            c.arg("--from-start");
        }
        Server(c.spawn().unwrap())
    };
    // The journal from its start: the 40 kernel entries, not the sshd ones.
    let mut s = sensor(true);
    wait_for("40 events", 30, || stored_events_and_sources(&db).0 >= 40);
    // Entries written while it runs follow.
    write_entries(&journal, "b", t0, 40, 20);
    wait_for("60 events", 30, || stored_events_and_sources(&db).0 >= 60);
    // Stopped (SIGTERM) and started again: it resumes at its position, even
    // without --from-start; new entries come through once.
    common::sigterm(&s.0);
    let _ = s.0.wait();
    write_entries(&journal, "c", t0, 60, 10);
    s = sensor(false);
    wait_for("70 events", 30, || stored_events_and_sources(&db).0 >= 70);
    // kill -9, more entries, restart: still each once.
    s.0.kill().unwrap();
    s.0.wait().unwrap();
    write_entries(&journal, "d", t0, 70, 10);
    s = sensor(false);
    wait_for("80 events", 30, || stored_events_and_sources(&db).0 >= 80);
    std::thread::sleep(Duration::from_secs(2));
    drop(s);
    assert_eq!(
        stored_events_and_sources(&db),
        (80, 80),
        "every kernel entry once, none twice"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
