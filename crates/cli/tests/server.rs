//! The real server process on loopback: ingest over HTTP, `kill -9` right after an
//! acknowledgement loses nothing, a resend after restart is not counted twice, and
//! SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use common::{bin, free_port, request, spawn_server, Server};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start(data: &std::path::Path, port: u16) -> Server {
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "server".as_ref(),
        "--listen".as_ref(),
        listen.as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ];
    spawn_server(&args, port, Duration::from_secs(10))
}

fn post(port: u16, token: &str, batch: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    request(
        port,
        "POST",
        "/api/v1/events",
        &[("Authorization", &auth), ("X-Scanwatch-Batch", batch)],
        body.as_bytes(),
    )
    .unwrap()
}

const LINE: &str = r#"{"v":1,"time":"2026-11-26T10:40:00Z","sensor":"fw-1","proto":"tcp","src":"192.0.2.1","dst":"198.18.0.1","dst_port":1025,"flags":"S"}"#;

#[test]
fn acknowledged_batches_survive_kill_9_and_resends_count_once() {
    let dir = std::env::temp_dir().join(format!("scanwatch-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = bin()
        .args(["admin", "sensor", "add", "fw-1", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let port = free_port();

    let mut server = start(&dir, port);
    let body = format!("{LINE}\n{LINE}\n{LINE}\n");
    let (status, reply) = post(port, &token, "batch-1", &body);
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"accepted\":3"), "{reply}");
    // kill -9 right after the acknowledgement.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    // The server drew the deployment's sample seed at start and keeps it.
    let seed = || -> i64 {
        rusqlite::Connection::open(dir.join("scanwatch.db"))
            .unwrap()
            .query_row("SELECT sample_seed FROM deployment", [], |r| r.get(0))
            .unwrap()
    };
    let first_seed = seed();

    let list = bin()
        .args(["admin", "sensor", "list", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    let row = text.lines().find(|l| l.starts_with("fw-1")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        (cols[2], cols[3]),
        ("1", "3"),
        "one batch of three events is on disk: {row}"
    );

    let mut server = start(&dir, port);
    let (status, reply) = post(port, &token, "batch-1", &body);
    assert_eq!(status, 200);
    assert!(
        reply.contains("\"duplicate\":true"),
        "a resend after restart is not counted again: {reply}"
    );
    let (status, reply) = post(port, &token, "batch-2", LINE);
    assert_eq!(status, 200, "{reply}");
    let (status, _) = post(port, "swt_wrong", "batch-3", LINE);
    assert_eq!(status, 401);

    // SIGTERM: a clean stop.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
    assert_eq!(seed(), first_seed, "the sample seed outlives a restart");
    let list = bin()
        .args(["admin", "sensor", "list", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("fw-1") && l.split_whitespace().nth(3) == Some("4")),
        "{text}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_file_and_flag_overrides() {
    let dir = scratch("config");
    let port = free_port();
    let cfg = dir.join("server.toml");
    std::fs::write(
        &cfg,
        format!("version = 1\n[server]\ndata = \"{}\"\nlisten = \"127.0.0.1:1\"\n[detection]\nwindow = \"10m\"\n", dir.join("data").display()),
    )
    .unwrap();
    // The flag overrides the file's (unusable) port.
    let child = bin()
        .args(["server", "--config"])
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(port, "GET", "/healthz", &[], b"").is_none() {
        assert!(
            Instant::now() < deadline,
            "server with --config did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        dir.join("data").join("scanwatch.db").exists(),
        "data dir from the file"
    );

    std::fs::write(&cfg, "version = 1\n[server]\nlisten_on = \"x\"\n").unwrap();
    let out = bin()
        .args(["server", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unknown field `listen_on`") && err.contains("server.toml"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn syn_lines(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| {
            format!(
                "Nov 26 10:{:02}:{:02} fw1 kernel: DROP IN=eth0 OUT= MAC=00 SRC=192.0.2.{} DST=198.18.0.1 LEN=40 PROTO=TCP SPT=4000 DPT=1025 WINDOW=1024 RES=0x00 SYN URGP=0\n",
                (i / 60) % 60,
                i % 60,
                i % 250 + 1
            )
        })
        .collect()
}

/// A fresh scratch directory for one test (removed by the test when it passes).
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("scanwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Registers sensor `fw-1` in `data` and writes its token to `dir/token`.
fn add_sensor(data: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    let out = bin()
        .args(["admin", "sensor", "add", "fw-1", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = dir.join("token");
    common::write_token(&token_file, out.stdout);
    token_file
}

/// `scanwatch sensor run` against the server on `port`, with one source.
fn sensor_cmd(
    port: u16,
    token_file: &std::path::Path,
    spool: &std::path::Path,
    source: impl AsRef<std::ffi::OsStr>,
) -> Command {
    sensor_cmd_url(
        &format!("http://127.0.0.1:{port}"),
        token_file,
        spool,
        source,
    )
}

/// `scanwatch sensor run` against the centre at `url`, with one source.
fn sensor_cmd_url(
    url: &str,
    token_file: &std::path::Path,
    spool: &std::path::Path,
    source: impl AsRef<std::ffi::OsStr>,
) -> Command {
    let mut c = bin();
    c.args(["sensor", "run", "--server", url, "--token-file"])
        .arg(token_file)
        .arg("--spool")
        .arg(spool)
        .arg("--source")
        .arg(source);
    c
}

fn stored_events(data: &std::path::Path) -> u64 {
    let list = bin()
        .args(["admin", "sensor", "list", "--data"])
        .arg(data)
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("fw-1"))
        .unwrap_or_else(|| panic!("{text}"));
    row.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn sensor_delivers_every_event_once_across_rotation_truncation_and_outage() {
    let dir = scratch("sensor");
    let data = dir.join("data");
    let token_file = add_sensor(&data, &dir);
    let port = free_port();
    let log = dir.join("fw.log");
    let spool = dir.join("spool");
    let run_sensor = |extra: &[&str]| {
        let out = sensor_cmd(
            port,
            &token_file,
            &spool,
            format!("{}:netfilter", log.display()),
        )
        .arg("--once")
        .args(extra)
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    };

    let server = start(&data, port);
    // 50 scans and 10 replies (replies are not sent).
    let mut text = syn_lines(0, 50);
    text.push_str(&syn_lines(50, 10).replace(" SYN ", " ACK SYN "));
    std::fs::write(&log, &text).unwrap();
    let msg = run_sensor(&["--from-start"]);
    assert!(msg.contains("50 events kept, 10 ignored"), "{msg}");
    assert_eq!(stored_events(&data), 50);

    // Appended lines: only they are sent (the position was saved).
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, syn_lines(100, 20).as_bytes()).unwrap();
    drop(f);
    run_sensor(&[]);
    assert_eq!(stored_events(&data), 70);

    // Rotation by rename and create.
    std::fs::rename(&log, dir.join("fw.log.1")).unwrap();
    std::fs::write(&log, syn_lines(200, 30)).unwrap();
    run_sensor(&[]);
    assert_eq!(stored_events(&data), 100);

    // Copy-truncate: the same file, emptied and refilled.
    std::fs::write(&log, syn_lines(300, 10)).unwrap();
    run_sensor(&[]);
    assert_eq!(stored_events(&data), 110);

    // The centre is down: the sensor spools and retries until it is back.
    drop(server);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, syn_lines(400, 15).as_bytes()).unwrap();
    drop(f);
    let child = sensor_cmd(
        port,
        &token_file,
        &spool,
        format!("{}:netfilter", log.display()),
    )
    .arg("--once")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut sensor = Server(child);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        sensor.0.try_wait().unwrap().is_none(),
        "the sensor waits for the centre"
    );
    let _server = start(&data, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = sensor.0.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the spool did not drain after the centre came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stored_events(&data), 125, "every event once, nothing lost");
    // The sensor's last heartbeat reports an empty spool.
    let out = bin()
        .args([
            "admin", "token", "add", "ops", "--role", "analyst", "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let api = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let auth = format!("Bearer {api}");
    let (st, body) = request(
        port,
        "GET",
        "/api/v1/sensors",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let sensors: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sensors[0]["heartbeat"]["spool_batches"], 0, "{sensors}");
    assert_eq!(sensors[0]["heartbeat"]["events_kept"], 15, "{sensors}");
    let leftover: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("batch-"))
        .collect();
    assert!(leftover.is_empty(), "the spool drained completely");
    drop(sensor);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sensor_local_rules_and_target_anonymisation() {
    let dir = scratch("rules");
    let data = dir.join("data");
    let token_file = add_sensor(&data, &dir);
    let out = bin()
        .args([
            "admin", "token", "add", "ops", "--role", "analyst", "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let auth = format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim());
    let port = free_port();
    let _server = start(&data, port);
    let log = dir.join("fw.log");
    // 20 scans from 192.0.2.1..20 to 198.18.0.1 on port 1025; the sources .5 and the
    // port 22 line are to be left out by the rules.
    let mut text = syn_lines(0, 20);
    text.push_str(&syn_lines(0, 1).replace("DPT=1025", "DPT=22"));
    std::fs::write(&log, text).unwrap();
    let out = sensor_cmd(port, &token_file, &dir.join("spool"), &log)
        .args([
            "--once",
            "--from-start",
            "--exclude-source",
            "192.0.2.5/32",
            "--exclude-ports",
            "22",
            "--anonymize-targets",
            "drop",
        ])
        .output()
        .unwrap();
    let msg = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{msg}");
    assert!(
        msg.contains("19 events kept") && msg.contains("2 excluded by local rules"),
        "{msg}"
    );
    let (st, body) = request(
        port,
        "GET",
        "/api/v1/topports",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let top: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(top.as_array().unwrap().len(), 1, "{top}");
    assert_eq!(
        (
            top[0]["port"].as_u64(),
            top[0]["events"].as_u64(),
            top[0]["targets"].as_u64()
        ),
        (Some(1025), Some(19), Some(1))
    );
    let (_, body) = request(
        port,
        "GET",
        "/api/v1/sources/192.0.2.5",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert!(
        body.contains("\"events\":0"),
        "an excluded source never reaches the centre: {body}"
    );
    // A keyed anonymisation without a key is refused before anything is read.
    let out = bin()
        .args([
            "sensor",
            "run",
            "--server",
            "http://127.0.0.1:1",
            "--token-file",
        ])
        .arg(&token_file)
        .arg("--spool")
        .arg(dir.join("spool2"))
        .arg("--source")
        .arg(&log)
        .args(["--once", "--anonymize-targets", "keyed"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("needs --anonymize-key-file"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_of_the_centre_during_ingest_loses_nothing_and_counts_nothing_twice() {
    let dir = scratch("kill");
    let data = dir.join("data");
    let token_file = add_sensor(&data, &dir);
    let port = free_port();
    let log = dir.join("fw.log");
    // 40 chunks of new lines arrive while the centre is killed and restarted.
    std::fs::write(&log, syn_lines(0, 3000)).unwrap();
    let mut server = start(&data, port);
    let child = sensor_cmd(
        port,
        &token_file,
        &dir.join("spool"),
        format!("{}:netfilter", log.display()),
    )
    .arg("--from-start")
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let _sensor = Server(child);
    let mut written = 3000;
    for round in 0..40 {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, syn_lines(written, 500).as_bytes()).unwrap();
        written += 500;
        std::thread::sleep(Duration::from_millis(25));
        if round % 10 == 5 {
            // kill -9 in the middle of ingest, then back.
            server.0.kill().unwrap();
            server.0.wait().unwrap();
            std::thread::sleep(Duration::from_millis(200));
            server = start(&data, port);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = stored_events(&data);
        if got == written as u64 {
            break;
        }
        assert!(got < written as u64, "counted twice: {got} > {written}");
        assert!(
            Instant::now() < deadline,
            "only {got} of {written} events arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_centre_accepts_a_sensor_that_trusts_its_certificate_only() {
    let dir = scratch("tls");
    let data = dir.join("data");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let token_file = add_sensor(&data, &dir);
    let port = free_port();
    let child = bin()
        .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "TLS server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert_eq!(request(port, "GET", "/healthz", &[], b""), None);

    let log = dir.join("fw.log");
    std::fs::write(&log, syn_lines(0, 50)).unwrap();
    let url = format!("https://127.0.0.1:{port}");
    // A sensor that does not trust the certificate delivers nothing; its spool keeps
    // the events.
    let mut untrusting = sensor_cmd_url(&url, &token_file, &dir.join("spool"), &log)
        .arg("--from-start")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    untrusting.kill().unwrap();
    untrusting.wait().unwrap();
    assert_eq!(stored_events(&data), 0);
    // Trusting it (--ca-file), the same sensor delivers all 50, once.
    let out = sensor_cmd_url(&url, &token_file, &dir.join("spool"), &log)
        .arg("--once")
        .arg("--ca-file")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored_events(&data), 50);
    // `scanwatch block` reads the blocklist from the same centre only when it
    // trusts the certificate too (--ca-file); a failed sync fails a dry run.
    let tok = bin()
        .args([
            "admin", "token", "add", "bouncer", "--role", "analyst", "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(tok.status.success());
    let api_token = dir.join("api-token");
    common::write_token(&api_token, tok.stdout);
    let block = |trust: bool| {
        let mut c = bin();
        c.args(["block", "--source", &url, "--token-file"])
            .arg(&api_token)
            .arg("--dry-run");
        if trust {
            c.arg("--ca-file").arg(&cert);
        }
        c.output().unwrap()
    };
    let trusted = block(true);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("table inet scanwatch"));
    let untrusted = block(false);
    assert!(
        !untrusted.status.success(),
        "a dry run whose fetch failed exits non-zero"
    );
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("cannot read the blocklist"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sensor_following_suricata_alerts_sends_their_cves_to_the_centre() {
    let dir = scratch("ids");
    let data = dir.join("data");
    let token_file = add_sensor(&data, &dir);
    let port = free_port();
    let _server = start(&data, port);
    let eve = dir.join("eve.json");
    let mut lines = String::new();
    for i in 0..3 {
        lines.push_str(&format!(
            r#"{{"timestamp":"2026-11-26T10:0{i}:00.000000+0000","flow_id":{i},"event_type":"alert","src_ip":"203.0.113.{i}","src_port":40000,"dest_ip":"198.18.0.5","dest_port":445,"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":2024218,"rev":1,"signature":"ET EXPLOIT Possible ETERNALBLUE MS17-010","category":"x","severity":1,"metadata":{{"cve":["CVE_2017_0144"]}}}}}}"#
        ));
        lines.push('\n');
    }
    std::fs::write(&eve, lines).unwrap();
    let out = sensor_cmd(
        port,
        &token_file,
        &dir.join("spool"),
        format!("{}:suricata", eve.display()),
    )
    .args(["--once", "--from-start"])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored_events(&data), 3);
    let list = bin()
        .args(["intel", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(text.contains("IDS alerts from sensors: 3"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_tls_certificate_or_key_is_refused_at_start() {
    let dir = scratch("badtls");
    let data = dir.join("data");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, other_key) = (dir.join("cert.pem"), dir.join("other.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    for (c, k, want) in [
        (&junk, &other_key, "no certificate found"),
        (&cert, &junk, "invalid private key"),
        (&cert, &other_key, "do not fit together"),
    ] {
        let out = bin()
            .args(["server", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--tls-cert")
            .arg(c)
            .arg("--tls-key")
            .arg(k)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{want}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Files and secrets (docs/security.md): the data directory is created 0700 and
/// the database 0600; the server warns at start about a wider database; the sensor
/// refuses a token file others can read (unless told otherwise) and creates its
/// spool 0700 with 0600 batches.
#[test]
fn files_are_private_and_an_open_token_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = scratch("files");
    let data = dir.join("data");
    let token_file = add_sensor(&data, &dir);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("scanwatch.db")), 0o600);

    // A database made readable by others is warned about at start.
    std::fs::set_permissions(
        data.join("scanwatch.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let port = free_port();
    let mut child = bin()
        .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut warned = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.starts_with("warning: ") {
            warned.push(line.clone());
        }
        if line.starts_with("listening on") {
            break;
        }
    }
    let _server = Server(child);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("scanwatch.db is mode 0644") && w.contains("chmod 0600")),
        "{warned:?}"
    );

    // An open token file is refused with the reason, before anything is read.
    let log = dir.join("fw.log");
    std::fs::write(&log, syn_lines(0, 5)).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let spool = dir.join("spool");
    let out = sensor_cmd(port, &token_file, &spool, &log)
        .args(["--once", "--from-start"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is mode 0644") && err.contains("chmod 600"),
        "{err}"
    );
    // Told otherwise, it runs; its spool and batches are the owner's only.
    let out = sensor_cmd(port, &token_file, &spool, &log)
        .args(["--once", "--from-start", "--allow-open-token-file"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&spool), 0o700);
    for e in std::fs::read_dir(&spool).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

/// A sensor as a syslog receiver, fed by a real sender (util-linux `logger`): RFC
/// 3164 over UDP, RFC 5424 over TCP with octet counting, and RFC 3164 over TCP a
/// line per message; every message becomes one stored event, once. A second
/// receiver cannot take a port already bound (a clear error). SIGTERM stops it.
#[test]
fn a_sensor_receives_syslog_from_logger_over_udp_and_tcp() {
    let dir = scratch("syslog");
    let data = dir.join("data");
    let token = add_sensor(&data, &dir);
    let port = free_port();
    let _server = start(&data, port);
    let (udp, tcp) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let syslog_sensor = |spool: &str, args: &[&str]| {
        let mut c = bin();
        c.args(["sensor", "run", "--server", &url, "--token-file"])
            .arg(&token)
            .arg("--spool")
            .arg(dir.join(spool))
            .args(args);
        c
    };
    let (udp_addr, tcp_addr) = (format!("127.0.0.1:{udp}"), format!("127.0.0.1:{tcp}"));
    let mut sensor = syslog_sensor(
        "spool",
        &[
            "--syslog-udp",
            &format!("{udp_addr}:netfilter"),
            "--syslog-tcp",
            &tcp_addr,
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", tcp)).is_err() {
        assert!(Instant::now() < deadline, "the sensor did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let msg = |i: usize, port: u16| {
        format!("[12.5] DROP IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=192.0.2.{i} DST=198.18.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID={i} PROTO=TCP SPT=61000 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0")
    };
    let logger = |args: &[&str], text: &str| {
        let st = Command::new("logger")
            .args(["--server", "127.0.0.1", "-t", "kernel"])
            .args(args)
            .arg(text)
            .status()
            .expect("util-linux logger (bsdutils)");
        assert!(st.success());
    };
    let (u, t) = (udp.to_string(), tcp.to_string());
    for i in 0..40 {
        logger(&["--port", &u, "--udp", "--rfc3164"], &msg(i, 1025));
        // UDP has no backpressure: the receiver is not flooded here.
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..30 {
        logger(
            &["--port", &t, "--tcp", "--octet-count", "--rfc5424"],
            &msg(i, 445),
        );
    }
    for i in 0..30 {
        logger(&["--port", &t, "--tcp", "--rfc3164"], &msg(i, 139));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_events(&data) < 100 {
        assert!(
            Instant::now() < deadline,
            "stored {} of 100",
            stored_events(&data)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500)); // one more batch, if any
    assert_eq!(stored_events(&data), 100, "every message once");

    // The UDP port is taken: a second sensor says so and stops.
    let out = syslog_sensor("spool2", &["--syslog-udp", &udp_addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot receive syslog on 127.0.0.1:"), "{err}");

    // Ten more, then SIGTERM at once, as each logger has returned: what reached the
    // host (connections not yet accepted, bytes not yet read) is taken in and
    // spooled before the sensor exits, and delivered by the next start.
    for i in 0..10 {
        logger(&["--port", &t, "--tcp", "--rfc3164"], &msg(i, 3389));
    }
    let pid = sensor.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let st = sensor.wait().unwrap();
    assert!(st.success(), "{st:?}");
    let again = syslog_sensor("spool", &["--once", "--syslog-tcp", &tcp_addr])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        stored_events(&data),
        110,
        "nothing received was lost or doubled"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refused_token_keeps_the_batches_until_a_valid_one_delivers_them_once() {
    let dir = scratch("badtoken");
    let data = dir.join("data");
    let token = add_sensor(&data, &dir);
    let port = free_port();
    let _server = start(&data, port);
    let log = dir.join("fw.log");
    std::fs::write(&log, syn_lines(0, 300)).unwrap();
    // A token the centre does not know (mistyped, or revoked): 401.
    let wrong = dir.join("wrong-token");
    common::write_token(&wrong, format!("swt_{}", "0".repeat(64)));
    let spool = dir.join("spool");
    let mut sensor = sensor_cmd(port, &wrong, &spool, &log)
        .arg("--from-start")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The sensor reads the file into its spool and is refused: give it time to
    // try (bounded), then stop it (killed at the deadline so no process is left).
    let deadline = Instant::now() + Duration::from_secs(20);
    let spooled = || {
        std::fs::read_dir(&spool)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("batch-"))
                    .count()
            })
            .unwrap_or(0)
    };
    while spooled() == 0 {
        if Instant::now() > deadline {
            let _ = sensor.kill();
            panic!("nothing was spooled");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    common::sigterm(&sensor);
    let out = sensor.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the centre refused the sensor's token (401)"),
        "{err}"
    );
    assert_eq!(stored_events(&data), 0);
    assert!(spooled() > 0, "the refused batches were thrown away");
    assert!(
        !spool.join("rejected").exists(),
        "a refused token is not a bad batch"
    );
    // With the right token, the same spool delivers every event, once.
    let again = sensor_cmd(port, &token, &spool, &log)
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(stored_events(&data), 300);
    assert_eq!(spooled(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A centre whose counting into the aggregates is held up (here: another
/// process holds the aggregates' file's write lock) refuses batches with 503 once
/// `limits.max_uncounted_events` stored events wait; the real sensor keeps them in
/// its spool, waits the centre's `Retry-After` and sends them again, and once the
/// counting goes on every event is stored, once.
#[test]
fn a_counting_backlog_holds_the_sensor_back_and_loses_nothing() {
    let dir = scratch("backlog");
    let data = dir.join("data");
    let token = add_sensor(&data, &dir);
    let port = free_port();
    let cfg = dir.join("server.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[limits]\nmax_uncounted_events = 40000\n",
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "server".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--listen".as_ref(),
        listen.as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ];
    let _server = spawn_server(&args, port, Duration::from_secs(10));
    // The counting that starts once 20,000 events wait waits for this lock
    // (SQLite's busy timeout, 10 s): released as soon as a refusal is seen.
    let lock = rusqlite::Connection::open(data.join("counts.db")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let log = dir.join("fw.log");
    std::fs::write(&log, syn_lines(0, 60_000)).unwrap();
    let spool = dir.join("spool");
    let sensor = sensor_cmd(port, &token, &spool, &log)
        .args(["--from-start", "--once"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let refused = || -> u64 {
        let (_, text) = request(port, "GET", "/metrics", &[], b"").unwrap_or_default();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("scanwatch_requests_refused_total{reason=\"backlog\"}")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(8);
    while refused() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = refused();
    lock.execute_batch("COMMIT").unwrap();
    let out = sensor.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(seen > 0, "no batch was refused for the backlog: {err}");
    assert!(out.status.success(), "{err}");
    assert!(err.contains("the centre is busy (503)"), "{err}");
    assert_eq!(stored_events(&data), 60_000);
    let _ = std::fs::remove_dir_all(&dir);
}
