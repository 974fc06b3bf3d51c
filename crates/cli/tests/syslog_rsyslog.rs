//! rsyslog as the real sender of a sensor's syslog receivers, as a Linux host or an
//! appliance forwards its firewall log: rsyslogd takes messages on its own TCP
//! input and forwards them (`omfwd`) over UDP, over TCP with octet counting, and
//! over TLS (rsyslog's GnuTLS driver, checking the sensor's certificate against a
//! CA and its name) to `scanwatch sensor run --syslog-udp … --syslog-tcp …
//! --syslog-tls …`, which spools them for a real centre. Then the sensor is killed with `kill -9` while rsyslog keeps
//! forwarding, and restarted: every event that was in the sensor's spool (or
//! already delivered) at the kill is stored exactly once, no event is stored twice,
//! and what was lost in between (received, not yet spooled: at most about one
//! second of messages, docs/server.md) is measured and printed.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, free_port, stored_events_and_sources, wait_for, Server};

fn rsyslogd() -> PathBuf {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("rsyslogd not found: install it with `apt-get install -y rsyslog`")
}

fn wait_tcp(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, made with the
/// openssl command: (ca.pem, server.pem, server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=scanwatch test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// rsyslogd with a TCP input on `input`, forwarding messages from host `fwu` over
/// UDP to `udp`, from host `fwt` over TCP (octet counting) to `tcp` and from host
/// `fws` over TLS to `tls` (the peer's certificate checked against `ca` and the
/// name `localhost`), each with a disk-less queue that holds messages while the
/// receiver is down and retries.
fn start_rsyslog(dir: &Path, input: u16, udp: u16, tcp: u16, tls: u16, ca: &Path) -> Server {
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k" DefaultNetstreamDriverCAFile="{ca}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{input}")
if $hostname == "fwu" then {{
  action(type="omfwd" target="127.0.0.1" port="{udp}" protocol="udp"
         queue.type="LinkedList" queue.size="100000"
         action.resumeRetryCount="-1" action.resumeInterval="1")
  stop
}}
if $hostname == "fwt" then {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="octet-counted"
         queue.type="LinkedList" queue.size="100000" queue.dequeueBatchSize="1"
         action.resumeRetryCount="-1" action.resumeInterval="1")
  stop
}}
if $hostname == "fws" then {{
  action(type="omfwd" target="127.0.0.1" port="{tls}" protocol="tcp" TCP_Framing="octet-counted"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost"
         queue.type="LinkedList" queue.size="100000"
         action.resumeRetryCount="-1" action.resumeInterval="1")
  stop
}}
"#,
            work = work.display(),
            ca = ca.display()
        ),
    )
    .unwrap();
    let child = Command::new(rsyslogd())
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rsyslogd");
    let k = Server(child);
    wait_tcp(input, "rsyslogd");
    k
}

/// A netfilter log line as a host's kernel logs it, from host `host`; message `i`
/// has a source address of its own, so duplicates show.
fn message(host: &str, i: u32) -> String {
    let src = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    format!(
        "<4>Dec  4 10:00:00 {host} kernel: [12.5] DROP IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={src} DST=198.18.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID={} PROTO=TCP SPT=61000 DPT=1025 WINDOW=1024 RES=0x00 SYN URGP=0\n",
        i & 0xffff
    )
}

/// Events waiting in the sensor's spool (its batch files).
fn spooled(spool: &Path) -> u64 {
    std::fs::read_dir(spool)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("batch-"))
                .map(|e| {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    text.lines().skip(1).filter(|l| !l.is_empty()).count() as u64
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn rsyslog_forwards_over_udp_tcp_and_tls_and_a_kill_9_loses_only_what_was_not_spooled() {
    let dir = std::env::temp_dir().join(format!("scanwatch-rsyslog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let centre = common::centre_with_sensor(&dir);
    let (listen, token_file, db) = (
        centre.listen.clone(),
        centre.token_file.clone(),
        centre.db.clone(),
    );
    let (udp, tcp, tls, input) = (free_port(), free_port(), free_port(), free_port());
    let (ca, cert, key) = certificates(&dir);
    let spool = dir.join("spool");
    let sensor = || {
        let c = bin()
            .args([
                "sensor",
                "run",
                "--server",
                &format!("http://{listen}"),
                "--token-file",
            ])
            .arg(&token_file)
            .arg("--spool")
            .arg(&spool)
            .args(["--syslog-udp", &format!("127.0.0.1:{udp}:netfilter")])
            .args(["--syslog-tcp", &format!("127.0.0.1:{tcp}:netfilter")])
            .args(["--syslog-tls", &format!("127.0.0.1:{tls}:netfilter")])
            .arg("--syslog-tls-cert")
            .arg(&cert)
            .arg("--syslog-tls-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let k = Server(c);
        wait_tcp(tcp, "the sensor's TCP receiver");
        k
    };
    let mut s = sensor();
    let _rsyslog = start_rsyslog(&dir, input, udp, tcp, tls, &ca);
    let to_rsyslog = std::sync::Mutex::new(TcpStream::connect(("127.0.0.1", input)).unwrap());
    let send = |host: &str, from: u32, n: u32| {
        let mut buf = String::new();
        for i in from..from + n {
            buf.push_str(&message(host, i));
        }
        to_rsyslog
            .lock()
            .unwrap()
            .write_all(buf.as_bytes())
            .unwrap();
    };

    // 1. Over UDP (paced: UDP has no backpressure), TCP and TLS, all arrive, once.
    for k in 0..10 {
        send("fwu", k * 20, 20);
        std::thread::sleep(Duration::from_millis(20));
    }
    send("fwt", 1_000, 300);
    send("fws", 2_000, 300);
    wait_for("800 events stored", 30, || {
        stored_events_and_sources(&db).0 >= 800
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        stored_events_and_sources(&db),
        (800, 800),
        "rsyslog's 200 UDP, 300 TCP and 300 TLS messages, once each"
    );
    // A sender that does not speak TLS gets nothing into the TLS receiver.
    let mut plain = TcpStream::connect(("127.0.0.1", tls)).unwrap();
    plain.write_all(message("fwx", 9_999).as_bytes()).unwrap();
    drop(plain);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        stored_events_and_sources(&db).0,
        800,
        "a plain-text message on the TLS port was taken"
    );

    // 2. kill -9 while rsyslog keeps forwarding over TCP: a sender thread streams
    // 6,000 messages (100 every 50 ms, for 3 s) while the sensor is killed mid-stream, once
    // it has taken in a third of them, and restarted a second later.
    const STREAM: u32 = 6_000;
    let base = 100_000;
    let killed = std::sync::atomic::AtomicU32::new(0);
    let sent = std::sync::atomic::AtomicU32::new(0);
    let (delivered, distinct, in_spool) = std::thread::scope(|sc| {
        sc.spawn(|| {
            let mut n = 0;
            while n < STREAM {
                send("fwt", base + n, 100);
                n += 100;
                sent.store(n, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        wait_for("the sensor to take in a third of the stream", 30, || {
            stored_events_and_sources(&db).0 + spooled(&spool) >= 800 + u64::from(STREAM) / 3
        });
        s.0.kill().unwrap();
        s.0.wait().unwrap();
        killed.store(
            sent.load(std::sync::atomic::Ordering::SeqCst),
            std::sync::atomic::Ordering::SeqCst,
        );
        let (delivered, distinct) = stored_events_and_sources(&db);
        let in_spool = spooled(&spool);
        std::thread::sleep(Duration::from_secs(1));
        s = sensor();
        (delivered, distinct, in_spool)
    });
    let killed_at = killed.into_inner();
    let total = 800 + u64::from(STREAM);
    // Wait until everything rsyslog still had has come through (bounded).
    let mut last = (0, Instant::now());
    wait_for(
        "the restarted sensor to deliver and rsyslog to drain",
        60,
        || {
            let now = stored_events_and_sources(&db).0;
            if now != last.0 {
                last = (now, Instant::now());
            }
            now >= total || (now > delivered && last.1.elapsed() > Duration::from_secs(8))
        },
    );
    drop(s);
    let (after, after_distinct) = stored_events_and_sources(&db);
    println!("at the kill: {delivered} stored ({distinct} distinct), {in_spool} spooled; after: {after} stored ({after_distinct} distinct)");
    assert_eq!(
        distinct, delivered,
        "no event was stored twice before the kill"
    );
    assert_eq!(
        after_distinct, after,
        "no event was stored twice after the restart"
    );
    assert!(
        after >= delivered + in_spool,
        "every spooled event is delivered: {after} stored, {delivered} delivered and {in_spool} spooled at the kill"
    );
    let lost = total - after;
    // The loss window: what the dead sensor had received but not yet spooled, and
    // what rsyslog had written into the socket buffers before it saw the reset.
    println!(
        "rsyslog kill -9: {total} sent ({killed_at} TCP before the kill), {delivered} stored and {in_spool} spooled at the kill, {after} stored after the restart, {lost} lost"
    );
    assert!(
        lost <= u64::from(STREAM) / 2,
        "more was lost ({lost}) than had been sent before the kill"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
