//! Helpers shared by the tests that run the real binary: the command, a guard that
//! kills a server, free loopback ports, a minimal HTTP client and a webhook receiver.
#![allow(dead_code)] // each test file uses its own subset

pub mod twelve;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

/// Kills the server when the test ends, however it ends.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `scanwatch ARGS` and waits (bounded: `wait`) until it answers `/healthz` on
/// `port`; the guard kills it when the test ends.
pub fn spawn_server(args: &[&std::ffi::OsStr], port: u16, wait: Duration) -> Server {
    let child = bin()
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let s = Server(child);
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if request(port, "GET", "/healthz", &[], b"").is_some() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not answer on port {port}");
}

/// `scanwatch admin ARGS --data DATA`: its standard output, trimmed.
pub fn admin(data: &std::path::Path, args: &[&str]) -> String {
    let out = bin()
        .arg("admin")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Writes a sensor token file readable by its owner only (the sensor refuses
/// others).
pub fn write_token(path: &std::path::Path, token: impl AsRef<[u8]>) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(token.as_ref()).unwrap();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 request over loopback; returns (status, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// One received webhook: its signature header and body.
#[derive(Clone, Debug)]
pub struct Hook {
    pub signature: String,
    pub body: String,
}

/// A minimal HTTP/1.1 receiver: records each POST and answers 200.
pub fn receiver() -> (u16, Arc<Mutex<Vec<Hook>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let mut r = BufReader::new(c.try_clone().unwrap());
            let (mut len, mut signature) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-scanwatch-signature:") {
                    signature = line["x-scanwatch-signature:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_ok() {
                g.lock().unwrap().push(Hook {
                    signature,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
            }
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

/// Runs `cmd` with `stdin` written to its standard input; its output (stdout and
/// stderr captured).
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command may refuse its arguments and exit before it reads its input:
    // then the pipe is closed under the write, and its output says why.
    match child.stdin.take().unwrap().write_all(stdin) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("writing to the command's input: {e}"),
    }
    child.wait_with_output().unwrap()
}

/// Events stored by the centre in `db` (its SQLite file) and the distinct
/// sources among them: equal when every event has a source of its own and none
/// was stored twice.
pub fn stored_events_and_sources(db: &std::path::Path) -> (u64, u64) {
    use scanwatch_store::prelude::*;
    let dir = db.parent().unwrap();
    let s = scanwatch_store::sqlite::SqliteStore::open(dir).unwrap();
    let events = s
        .events_between(
            scanwatch_event::Timestamp(i64::MIN),
            scanwatch_event::Timestamp(i64::MAX),
        )
        .unwrap();
    let total: u64 = events.iter().map(|(_, e)| u64::from(e.count)).sum();
    let sources: std::collections::HashSet<_> = events.iter().map(|(_, e)| e.src).collect();
    (total, sources.len() as u64)
}

/// Waits until `done` (checked every 100 ms), failing after `secs` seconds.
pub fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends SIGTERM to `child` (the clean stop a service manager asks for).
pub fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -TERM {} failed", child.id());
}

/// A centre on loopback over a fresh data directory `dir/data`, with sensor
/// `fw-1` registered and its token in `dir/token`.
pub struct Centre {
    pub server: Server,
    /// `127.0.0.1:PORT`.
    pub listen: String,
    pub token_file: std::path::PathBuf,
    /// The centre's SQLite file.
    pub db: std::path::PathBuf,
}

pub fn centre_with_sensor(dir: &std::path::Path) -> Centre {
    let data = dir.join("data");
    let token = admin(&data, &["sensor", "add", "fw-1"]);
    let token_file = dir.join("token");
    write_token(&token_file, token.trim());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = spawn_server(
        &[
            "server".as_ref(),
            "--listen".as_ref(),
            listen.as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
        port,
        Duration::from_secs(10),
    );
    Centre {
        server,
        listen,
        token_file,
        db: data.join("scanwatch.db"),
    }
}
