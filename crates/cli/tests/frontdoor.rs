//! The front door of a real server (`[limits]`, docs/security.md), rows 7 and 8 of
//! the trust issue: strangers without a token cannot exhaust the centre.
//! - 100 connections without a token announcing 8 MB bodies: the first ones are
//!   answered 401 with nothing read, the ones over the per-client limit are closed
//!   at once, and the server's memory stays within a bound;
//! - headers dribbled in: the connection is cut off after the header timeout;
//! - a body dribbled in after a valid token: 408 after the body timeout;
//! - more requests at once than allowed: 503 with `Retry-After`.
//!
//! All on loopback, bounded in count and time.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{admin, free_port, spawn_server, Server};

const LIMITS: &str = "[limits]\nheader_timeout = \"2s\"\nbody_timeout = \"2s\"\nmax_connections = 64\nmax_connections_per_client = 16\nmax_requests_in_flight = 4\n";

/// The config of a server on `dir` with the test limits (and `extra` in `[server]`).
fn config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("server.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[server]\ndata = \"{}\"\nlisten = \"127.0.0.1:{port}\"\n{extra}{LIMITS}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

/// A server on a fresh data directory with the test limits, and a sensor token.
fn start(dir: &std::path::Path) -> (Server, u16, String) {
    let token = admin(&dir.join("data"), &["sensor", "add", "fw-1"]);
    let port = free_port();
    let cfg = config(dir, port, "");
    let server = spawn_server(
        &["server".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        port,
        Duration::from_secs(20),
    );
    (server, port, token)
}

/// Resident memory of a process now (VmRSS), in bytes.
fn rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads what the server sends until it closes (or 10 s pass).
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn strangers_cannot_exhaust_the_centre() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port, token) = start(dir.path());
    let pid = server.0.id();
    let before = rss(pid);

    // Row 7: 100 connections announcing 8 MB bodies without a token, each sending
    // 64 KiB of it: each is answered 401 with the body unread, or (over the
    // per-client limit while earlier ones are open) closed at once.
    let chunk = vec![b'x'; 64 * 1024];
    let mut conns: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = connect(port);
            let head = "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\nX-Scanwatch-Batch: b1\r\n\r\n";
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&chunk);
            s
        })
        .collect();
    let (mut unauthorized, mut closed, mut shed) = (0, 0, 0);
    for s in &mut conns {
        let text = read_all(s);
        if text.starts_with("HTTP/1.1 401") {
            unauthorized += 1;
        } else if text.starts_with("HTTP/1.1 503") {
            // Over the in-flight limit of this test (4) while others are answered.
            shed += 1;
        } else if text.is_empty() {
            closed += 1;
        } else {
            panic!("unexpected answer: {text}");
        }
    }
    drop(conns);
    let after = rss(pid);
    eprintln!(
        "100 unauthenticated 8 MB requests: {unauthorized} answered 401, {shed} shed (503), {closed} closed; RSS {} → {} MiB",
        before >> 20,
        after >> 20
    );
    assert_eq!(unauthorized + shed + closed, 100);
    assert!(
        after < before + (32 << 20),
        "RSS grew from {before} to {after} bytes"
    );

    // The per-client limit: 16 connections that send nothing hold every slot of
    // this client; a 17th is closed at once, long before the header timeout.
    // The slots of the connections above are given back when the server sees them
    // end, which under load can come after some of the 16 were refused: those are
    // opened again until the server holds all 16 (bounded).
    let still_open = |s: &TcpStream| {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let open = matches!(
            (&*s).read(&mut [0u8; 1]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        );
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        open
    };
    // A connection the server refused looks open until its close arrives, which
    // under load can take longer than the check: a 17th that is served means the
    // server did not hold 16 yet, so the 16 are made up again and the 17th tried
    // again (bounded; a server without the limit serves every 17th and fails).
    let mut silent: Vec<TcpStream> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while silent.len() < 16 {
            assert!(
                Instant::now() < deadline,
                "the server did not give back the slots of closed connections"
            );
            while silent.len() < 16 {
                silent.push(connect(port));
            }
            std::thread::sleep(Duration::from_millis(200));
            silent.retain(|s| still_open(s));
        }
        let mut s = connect(port);
        let started = Instant::now();
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let text = read_all(&mut s);
        if text.is_empty() {
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "{:?}",
                started.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a 17th connection of one client was served while it held 16: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
        silent.retain(|s| still_open(s));
    }
    // The silent ones are cut off by the header timeout, and the slots come back.
    for mut c in silent {
        assert_eq!(read_all(&mut c), "");
    }
    let (status, _) = common::request(port, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200);

    // Row 8: headers dribbled a byte every half second are cut off after the 2 s header
    // timeout (well before the 80 s the dribble would take).
    let mut s = connect(port);
    let started = Instant::now();
    let mut cut = false;
    for b in b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: 1234567890\r\n"
        .iter()
        .take(20)
    {
        if s.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut probe = [0u8; 1];
        s.set_nonblocking(true).unwrap();
        let r = s.read(&mut probe);
        s.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) || matches!(r, Ok(n) if n > 0) {
            cut = true;
            break;
        }
    }
    let took = started.elapsed();
    eprintln!("dribbled headers cut off after {took:?}");
    assert!(
        cut,
        "a client dribbling its headers was still served after {took:?}"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");

    // A body dribbled in after a valid token: 408 once the 2 s body timeout passes.
    let mut s = connect(port);
    let head = format!("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nX-Scanwatch-Batch: slow-1\r\nContent-Length: 1000\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(b"{").unwrap();
    let started = Instant::now();
    let text = read_all(&mut s);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(6));

    // Requests in flight: four bodies held open (valid token) take every slot; a
    // fifth request is answered 503 with Retry-After at once, then all is well again.
    let held: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut s = connect(port);
            let head = format!("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nX-Scanwatch-Batch: held-{i}\r\nContent-Length: 1000\r\n\r\n{{");
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = common::request(port, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 503);
    let mut s = connect(port);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = read_all(&mut s);
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(2500));
    let (status, _) = common::request(port, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200);

    // What the door refused is counted.
    let (status, metrics) = common::request(port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(status, 200, "{metrics}");
    let value = |needle: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        value("scanwatch_connections_total{outcome=\"refused\"}") >= 1,
        "{metrics}"
    );
    assert!(
        value("scanwatch_requests_refused_total{reason=\"unauthorized\"}") >= 1,
        "{metrics}"
    );
    assert!(value("scanwatch_requests_shed_total") >= 2, "{metrics}");
    assert!(
        value("scanwatch_requests_refused_total{reason=\"timeout\"}") >= 1,
        "{metrics}"
    );
}

/// TLS keeps the same limits: a handshake that never comes is cut off after the
/// header timeout, and a client over its connection limit is closed at once.
#[test]
fn tls_keeps_the_same_limits() {
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    admin(&dir.path().join("data"), &["sensor", "add", "fw-1"]);
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let _server = Server(
        common::bin()
            .args(["server", "--config"])
            .arg(&cfg)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "TLS server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let silent: Vec<TcpStream> = (0..16).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = connect(port);
    let started = Instant::now();
    assert_eq!(read_all(&mut over), "");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    for mut c in silent {
        assert_eq!(read_all(&mut c), "");
    }
    let took = started.elapsed();
    eprintln!("silent TLS connections cut off after {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}
