//! How the sensor delivers, seen from the wire: a recording HTTP endpoint on
//! loopback (the real centre's answers to these requests are tested end to end in
//! `crates/cli/tests/server.rs`). A backfill of several read chunks must:
//! - arrive compressed (gzip) and decompress to exactly the events read;
//! - arrive in order, one batch in flight at a time (the centre's time model
//!   measures a sensor's progress by what it delivered);
//! - survive a refused attempt (503) with every event once;
//! - not pause between read chunks while behind: the poll pause here is a minute,
//!   and the file takes more than eight read chunks.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scanwatch_event::Timestamp;
use scanwatch_sensor::rules::{Anonymize, Rules};
use scanwatch_sensor::run::{run, SensorConfig, Source};

#[derive(Default)]
struct Recorded {
    /// (batch id, decompressed body) of every accepted /events request, in order.
    accepted: Vec<(String, String)>,
    refused: usize,
    encodings: Vec<String>,
}

struct Recorder {
    rec: Mutex<Recorded>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// How many /events requests to refuse (503) before accepting.
    refuse: AtomicUsize,
}

fn serve(conn: TcpStream, r: &Recorder) {
    let mut rd = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    loop {
        let mut first = String::new();
        if rd.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let (mut len, mut id, mut enc) = (0usize, String::new(), String::new());
        loop {
            let mut h = String::new();
            rd.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "x-scanwatch-batch" => id = v.trim().to_string(),
                "content-encoding" => enc = v.trim().to_string(),
                _ => {}
            }
        }
        let events = first.starts_with("POST /api/v1/events ");
        let now = r.in_flight.fetch_add(usize::from(events), Ordering::SeqCst) + 1;
        if events {
            r.max_in_flight.fetch_max(now, Ordering::SeqCst);
        }
        let mut body = vec![0u8; len];
        rd.read_exact(&mut body).unwrap();
        let refuse = events
            && r.refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let status = if refuse {
            r.rec.lock().unwrap().refused += 1;
            "503 Service Unavailable"
        } else {
            if events {
                // Hold the answer a little, as a commit would: a second batch sent
                // meanwhile would show as two in flight.
                std::thread::sleep(Duration::from_millis(30));
                let mut text = String::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_string(&mut text)
                    .unwrap();
                let mut rec = r.rec.lock().unwrap();
                rec.encodings.push(enc);
                rec.accepted.push((id, text));
            }
            "200 OK"
        };
        r.in_flight.fetch_sub(usize::from(events), Ordering::SeqCst);
        write!(w, "HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\n{{}}").unwrap();
        w.flush().unwrap();
    }
}

fn line(i: usize) -> String {
    format!(
        "Nov 16 00:{:02}:{:02} fw kernel: [1.0] DROP IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=192.0.2.{} DST=198.18.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID={i} PROTO=TCP SPT=61000 DPT={} WINDOW=1024 RES=0x00 SYN URGP=0\n",
        (i / 60) % 60,
        i % 60,
        i % 250,
        1 + i % 60000
    )
}

/// A recording endpoint on loopback that refuses the first `refusals` batches.
fn recorder(refusals: usize) -> (Arc<Recorder>, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let recorder = Arc::new(Recorder {
        rec: Mutex::new(Recorded::default()),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        refuse: AtomicUsize::new(refusals),
    });
    let r = recorder.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().take(64) {
            let r = r.clone();
            std::thread::spawn(move || serve(c.unwrap(), &r));
        }
    });
    (recorder, port)
}

/// A `once` run over `log` from its start, to the recorder on `port`.
fn config(
    dir: &std::path::Path,
    log: &std::path::Path,
    port: u16,
    max_spool_bytes: u64,
) -> SensorConfig {
    SensorConfig {
        server: format!("http://127.0.0.1:{port}"),
        token: "t".into(),
        spool_dir: dir.join("spool"),
        sources: vec![Source {
            path: log.to_path_buf(),
            format: scanwatch_formats::format_by_name("netfilter"),
        }],
        from_start: true,
        max_spool_bytes,
        once: true,
        poll: Duration::from_secs(60),
        reference_time: Timestamp(1_796_000_000_000),
        rules: Rules::new(
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Anonymize::None,
        ),
        ca_pem: None,
        capture: None,
        listen: Vec::new(),
        journal: None,
    }
}

/// The destination ports of every accepted event, in the order accepted (each
/// log line has its own: `line`).
fn accepted_ports(rec: &Recorded) -> Vec<u64> {
    rec.accepted
        .iter()
        .flat_map(|(_, body)| body.lines().map(str::to_string).collect::<Vec<_>>())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            v["dst_port"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_backfill_goes_compressed_in_order_one_batch_at_a_time_without_pausing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fw.log");
    // About 10 MiB of log: several batches (each cut at 2 MiB of wire events).
    let n = 45_000;
    let text: String = (0..n).map(line).collect();
    assert!(text.len() > 8 << 20, "{} bytes", text.len());
    std::fs::write(&log, &text).unwrap();
    let (recorder, port) = recorder(1);
    let cfg = config(dir.path(), &log, port, 256 << 20);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let stats = run(&cfg, &stop).unwrap();
    let took = started.elapsed();

    let rec = recorder.rec.lock().unwrap();
    assert_eq!(stats.events_kept, n as u64);
    assert_eq!(rec.refused, 1, "the first attempt was refused");
    assert!(rec.accepted.len() >= 3, "{} batches", rec.accepted.len());
    assert_eq!(stats.batches_sent, rec.accepted.len() as u64);
    assert!(
        rec.encodings.iter().all(|e| e == "gzip"),
        "{:?}",
        rec.encodings
    );
    // In order: the batch ids' sequence numbers rise by one; every event once.
    let seqs: Vec<u64> = rec
        .accepted
        .iter()
        .map(|(id, _)| id.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let ids = accepted_ports(&rec);
    assert_eq!(ids.len(), n, "every event once");
    let expected: Vec<u64> = (0..n).map(|i| 1 + (i % 60000) as u64).collect();
    assert_eq!(ids, expected, "in the order read");
    assert_eq!(recorder.max_in_flight.load(Ordering::SeqCst), 1);
    assert!(stats.wire_bytes * 4 < stats.body_bytes, "{stats:?}");
    // The one pause allowed is the back-off after the 503 (200 ms).
    assert!(
        took < Duration::from_secs(45),
        "the reader paused while behind: {took:?}"
    );
}

/// A spool with room for less than two batches while the centre refuses: the
/// second batch does not fit although the spool is not full; it waits in memory
/// with its lines' position unsaved, and reading pauses, until the first is
/// delivered. Every line arrives once, in order (a first version dropped the
/// batch that did not fit, and the next one saved a position past its lines).
#[test]
fn a_batch_that_does_not_fit_in_the_spool_waits_and_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fw.log");
    let n = 45_000;
    let text: String = (0..n).map(line).collect();
    std::fs::write(&log, &text).unwrap();
    // Batches are cut at 2 MiB of wire events: one fits in 3 MiB, two do not.
    let (recorder, port) = recorder(3);
    let stop = AtomicBool::new(false);
    let stats = run(&config(dir.path(), &log, port, 3 << 20), &stop).unwrap();
    let rec = recorder.rec.lock().unwrap();
    assert_eq!(rec.refused, 3);
    assert!(rec.accepted.len() >= 4, "{} batches", rec.accepted.len());
    let ids = accepted_ports(&rec);
    let expected: Vec<u64> = (0..n).map(|i| 1 + (i % 60000) as u64).collect();
    assert_eq!(ids.len(), n, "every event once");
    assert_eq!(ids, expected, "in the order read");
    assert_eq!(stats.events_kept, n as u64);
}
