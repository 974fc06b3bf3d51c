//! Helpers shared by the integration tests: warnings, a fixed clock, stores, configs
//! and a guard that kills a child process however the test ends.
#![allow(dead_code)]

use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scanwatch_event::Timestamp;
use scanwatch_notify::notifier::{Clock, SharedStore};
use scanwatch_notify::NotifyConfig;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::SinkStore;
use serde_json::{json, Value};

/// Window end of the test warnings.
pub const WINDOW_END: &str = "2026-11-26T11:00:00Z";

/// A minute after the warnings' window ended.
pub fn clock() -> Clock {
    let end = scanwatch_event::parse_rfc3339(WINDOW_END).expect("time").0;
    Arc::new(move || Timestamp(end + 60_000))
}

/// A warning as the centre passes it to the hook.
pub fn warning(id: i64, port: u16, sources: u64, severity: &str) -> scanwatch_alert::Warning {
    serde_json::from_value(warning_json(id, port, sources, severity)).expect("a warning")
}

/// Its JSON as the centre stores it.
pub fn warning_json(id: i64, port: u16, sources: u64, severity: &str) -> Value {
    json!({
        "type": "alert", "alert_kind": "surge", "protocol": "tcp", "port": port, "score": 3.5,
        "severity": severity, "confidence": "likely",
        "headline": format!("tcp/{port}: {sources} sources, 9.5 times normal"),
        "summary": "Scanning of SMB from many sources.\nBlock it at the edge: a|b=c\\d.",
        "window_start": "2026-11-26T10:00:00Z", "window_end": WINDOW_END,
        "episode_start": "2026-11-26T09:00:00Z", "update": id > 1,
        "events": sources * 40, "sources": sources, "sensors": 7, "times_normal": 9.5,
        "top_sources": [{"ip": "192.0.2.1", "events": 50}],
        "advisories": [{"id": "CVE-2020-0796", "title": "SMBGhost"}],
        "mitigations": [{"platform": "nftables", "rule": format!("tcp dport {port} drop")}],
        "id": id
    })
}

pub fn sqlite(dir: &Path) -> SharedStore {
    let s: Box<dyn SinkStore> = Box::new(SqliteStore::open(dir).expect("open store"));
    Arc::new(Mutex::new(s))
}

pub fn config(toml_text: &str) -> NotifyConfig {
    let c: NotifyConfig = toml::from_str(toml_text).expect("config parses");
    c.validate().expect("config validates");
    c
}

/// A free loopback port (TCP or UDP): bound, read, released.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free tcp port")
        .port()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free udp port")
        .port()
}

/// Kills (and reaps) the child when dropped, also when a test fails.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on the TCP port, at most `timeout`.
pub fn wait_for_tcp(port: u16, child: &mut Child, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the receiver exited before listening on {port}: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
