//! Notifications through the real server process: `scanwatch server` with a
//! `[[sinks]]` webhook in its TOML config, sensors submitting a surge over HTTP, and
//! an HTTP receiver on loopback that checks the HMAC signature. The first window of
//! the surge arrives as `new`, later windows as `update`, each warning once; a
//! restart (which replays the stored events and re-raises the same warnings) sends
//! nothing again; the sink's counters are on `/metrics`.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use common::{bin, free_port, receiver, request, spawn_server, Server};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

fn start(config: &std::path::Path, port: u16) -> Server {
    let args = ["server".as_ref(), "--config".as_ref(), config.as_os_str()];
    spawn_server(&args, port, Duration::from_secs(30))
}

/// Hour `h` of sensor `s`: background on TCP/1025 (two sources), and from hour 40 a
/// surge of 40 + 20·(h−40) sources per sensor, so the surge grows every window.
fn hour_lines(s: usize, h: i64) -> String {
    let t0 = 1_795_000_000_000i64 - 1_795_000_000_000 % 3_600_000; // an hour boundary
    let mut out = String::new();
    let mut ev = |i: i64, src: String| {
        let t = scanwatch_event::Timestamp(t0 + h * 3_600_000 + i * 1000);
        out.push_str(&format!(
            "{{\"v\":1,\"time\":\"{}\",\"proto\":\"tcp\",\"src\":\"{src}\",\"src_port\":40000,\"dst\":\"198.18.0.{}\",\"dst_port\":1025,\"flags\":\"S\",\"direction\":\"in\",\"action\":\"drop\"}}\n",
            t.to_rfc3339(),
            s + 1
        ));
    };
    ev(0, format!("192.0.2.{}", 1 + h % 2));
    if h >= 40 {
        for i in 0..(40 + 20 * (h - 40)) {
            ev(1 + i, format!("203.0.{}.{}", i / 200, i % 200 + 1));
        }
    }
    out
}

#[test]
fn the_server_sends_each_warning_once_to_a_signed_webhook_new_then_updates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook_port, got) = receiver();
    let port = free_port();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[server]\ndata = \"{}\"\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[sinks]]\nkind = \"webhook\"\nname = \"soc\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
             secret = \"s3cret\"\nmax_age = \"none\"\ninitial_delay = \"10ms\"\n",
            data.display()
        ),
    )
    .unwrap();
    let mut tokens = Vec::new();
    for s in 0..4 {
        let out = bin()
            .args(["admin", "sensor", "add", &format!("fw-{s}"), "--data"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokens.push(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    let server = start(&config, port);
    // 44 hours per sensor, one batch each; hour 43 closes the surge's windows.
    for h in 0..45 {
        for (s, token) in tokens.iter().enumerate() {
            let auth = format!("Bearer {token}");
            let id = format!("b-{s}-{h}");
            let (status, body) = request(
                port,
                "POST",
                "/api/v1/events",
                &[("Authorization", &auth), ("X-Scanwatch-Batch", &id)],
                hour_lines(s, h).as_bytes(),
            )
            .unwrap();
            assert_eq!(status, 200, "{body}");
        }
    }
    // Bounded wait for the deliveries.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && got.lock().unwrap().len() < 4 {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let hooks = got.lock().unwrap().clone();
    let bodies: Vec<Value> = hooks
        .iter()
        .map(|h| serde_json::from_str(&h.body).unwrap())
        .collect();
    assert!(bodies.len() >= 2, "{bodies:?}");
    for h in &hooks {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(h.body.as_bytes());
        let want = format!(
            "sha256={}",
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        assert_eq!(h.signature, want, "signature of {}", h.body);
    }
    assert_eq!(bodies[0]["event"], "new", "{bodies:?}");
    assert_eq!(bodies[0]["port"], 1025);
    assert!(
        bodies[1..].iter().all(|b| b["event"] == "update"),
        "{bodies:?}"
    );
    let ids: std::collections::BTreeSet<i64> =
        bodies.iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids.len(),
        bodies.len(),
        "a warning was sent twice: {bodies:?}"
    );
    // The stored warnings are the ones sent: every one grows, so every one goes out.
    let (_, metrics) = request(port, "GET", "/metrics", &[], b"").unwrap();
    let sent = format!(
        "scanwatch_notify_sent_total{{sink=\"soc\",kind=\"webhook\"}} {}\n",
        bodies.len()
    );
    assert!(metrics.contains(&sent), "{metrics}");

    // A restart replays the stored events and re-raises the same warnings: the sink
    // remembers what it sent, so nothing goes out again.
    drop(server);
    let before = got.lock().unwrap().len();
    let _server = start(&config, port);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(got.lock().unwrap().len(), before, "resent after restart");
    let (_, metrics) = request(port, "GET", "/metrics", &[], b"").unwrap();
    let dup = metrics
        .lines()
        .find(|l| l.starts_with("scanwatch_notify_duplicate_total{sink=\"soc\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(dup.is_some_and(|n| n >= before as u64), "{metrics}");
}
