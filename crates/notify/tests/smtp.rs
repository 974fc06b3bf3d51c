//! The email sink against a real SMTP server: Python's aiosmtpd running
//! `tests/smtp_server.py`, plain and with STARTTLS required (a self-signed
//! certificate made by the test, trusted through `ca_file`). A missing Python or
//! aiosmtpd fails the test.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{clock, config, free_tcp_port, sqlite, wait_for_tcp, warning, KillOnDrop};
use scanwatch_notify::Notifier;

/// A Python 3 that has aiosmtpd: `SCANWATCH_PYTHON`, Debian's, or the first on PATH.
fn python() -> String {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("SCANWATCH_PYTHON") {
        candidates.push(p);
    }
    candidates.extend(["/usr/bin/python3".to_string(), "python3".to_string()]);
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.clone();
        }
    }
    panic!(
        "no python3 with aiosmtpd among {candidates:?}: install `python3-aiosmtpd` (Debian) or `pip install aiosmtpd`"
    );
}

fn start(outdir: &Path, tls: Option<(&Path, &Path)>) -> (KillOnDrop, u16) {
    let port = free_tcp_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(port.to_string()).arg(outdir);
    if let Some((c, k)) = tls {
        cmd.arg(c).arg(k);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the SMTP server");
    let stdout = child.stdout.take().expect("stdout");
    let mut guard = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read READY");
    assert_eq!(line.trim(), "READY", "the SMTP server did not start");
    wait_for_tcp(port, &mut guard.0, Duration::from_secs(15));
    (guard, port)
}

/// Waits for `n` messages; returns (envelope, message) pairs in order.
fn messages(dir: &Path, n: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut emls: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        if emls.len() >= n || Instant::now() > deadline {
            emls.sort();
            return emls
                .iter()
                .map(|p| {
                    (
                        std::fs::read_to_string(p.with_extension("env")).expect("env"),
                        std::fs::read_to_string(p).expect("eml"),
                    )
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An unfolded header's value.
fn header(msg: &str, name: &str) -> Option<String> {
    // Unfolding (RFC 5322 2.2.3): a line break before white space goes.
    let head = msg.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t");
    unfolded
        .split("\r\n")
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .map(str::to_string)
}

/// The body, quoted-printable decoded when it is so encoded.
fn body(msg: &str) -> String {
    let b = msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let b = b.replace("\r\n", "\n");
    if header(msg, "Content-Transfer-Encoding").as_deref() != Some("quoted-printable") {
        return b;
    }
    let b = b.replace("=\n", "");
    let bytes = b.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8 body")
}

fn email_sink(port: u16, tls: &str, extra: &str) -> String {
    format!(
        "[[sinks]]\nkind = \"email\"\nname = \"mail\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\n\
         from = \"scanwatch <sw@example.net>\"\nto = [\"oncall@example.net\", \"soc@example.net\"]\n\
         dashboard_url = \"https://sw.example.net\"\ntimeout = \"10s\"\n\
         attempts = 2\ninitial_delay = \"10ms\"\nmax_delay = \"50ms\"\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_smtp_delivers_new_and_update() {
    let out = tempfile::tempdir().expect("tempdir");
    let (_server, port) = start(out.path(), None);
    let store = tempfile::tempdir().expect("tempdir");
    let cfg = config(&email_sink(port, "none", ""));
    let n = Notifier::spawn(
        &cfg,
        sqlite(store.path()),
        clock(),
        &tokio::runtime::Handle::current(),
    )
    .expect("spawn");
    (n.hook())(1, &warning(1, 445, 100, "high"));
    (n.hook())(2, &warning(2, 445, 150, "high"));
    assert!(n.wait_idle(Duration::from_secs(30)).await);
    let snap = n.counters().snapshot();
    assert_eq!((snap[0].sent, snap[0].dead_lettered), (2, 0), "{snap:?}");
    n.close().await;
    let got = messages(out.path(), 2);
    assert_eq!(got.len(), 2);
    let (env, msg) = &got[0];
    assert_eq!(
        env,
        "sw@example.net\noncall@example.net\nsoc@example.net\ntls=no\n"
    );
    assert_eq!(
        header(msg, "From").as_deref(),
        Some("scanwatch <sw@example.net>")
    );
    assert_eq!(
        header(msg, "To").as_deref(),
        Some("oncall@example.net, soc@example.net")
    );
    assert_eq!(
        header(msg, "Subject").as_deref(),
        Some("[scanwatch] HIGH tcp/445: tcp/445: 100 sources, 9.5 times normal")
    );
    assert!(header(msg, "Content-Type").is_some_and(|c| c.starts_with("text/plain")));
    let b = body(msg);
    assert!(
        b.contains("Scanning of SMB from many sources.\nBlock it at the edge: a|b=c\\d."),
        "{b}"
    );
    assert!(
        b.contains("Mitigations:\n\n[nftables]\ntcp dport 445 drop"),
        "{b}"
    );
    assert!(
        b.contains("Dashboard: https://sw.example.net/alerts/1"),
        "{b}"
    );
    let (_, msg2) = &got[1];
    assert_eq!(
        header(msg2, "Subject").as_deref(),
        Some("[scanwatch] update: HIGH tcp/445: tcp/445: 150 sources, 9.5 times normal")
    );
    assert!(body(msg2).contains("grew to 150 sources"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_starttls_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let (_server, port) = start(&out, Some((&cert_path, &key_path)));
    let store = tempfile::tempdir().expect("tempdir");
    let cfg = config(&email_sink(
        port,
        "starttls",
        &format!("ca_file = \"{}\"", cert_path.display()),
    ));
    let n = Notifier::spawn(
        &cfg,
        sqlite(store.path()),
        clock(),
        &tokio::runtime::Handle::current(),
    )
    .expect("spawn");
    (n.hook())(1, &warning(1, 445, 100, "critical"));
    assert!(n.wait_idle(Duration::from_secs(30)).await);
    let snap = n.counters().snapshot();
    assert_eq!((snap[0].sent, snap[0].failed), (1, 0), "{snap:?}");
    n.close().await;
    let got = messages(&out, 1);
    assert_eq!(got.len(), 1);
    assert!(got[0].0.ends_with("tls=yes\n"), "{}", got[0].0);
    assert!(header(&got[0].1, "Subject").is_some_and(|s| s.contains("CRITICAL tcp/445")));

    // Without the CA the certificate is not trusted: nothing is sent in clear, and
    // the notification ends as a dead letter.
    let store2 = tempfile::tempdir().expect("tempdir");
    let shared = sqlite(store2.path());
    let cfg = config(&email_sink(port, "starttls", ""));
    let n = Notifier::spawn(
        &cfg,
        shared.clone(),
        clock(),
        &tokio::runtime::Handle::current(),
    )
    .expect("spawn");
    (n.hook())(1, &warning(1, 445, 100, "critical"));
    assert!(n.wait_idle(Duration::from_secs(30)).await);
    n.close().await;
    assert_eq!(messages(&out, 1).len(), 1);
    let dead = shared
        .lock()
        .expect("lock")
        .dead_letters()
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].payload.contains("Subject: [scanwatch] CRITICAL"),
        "{}",
        dead[0].payload
    );
}
