//! The syslog sink against a real rsyslog daemon (Debian's `rsyslog`), started with
//! its own config in a temporary directory: imudp and imtcp on free loopback ports,
//! no privilege drop, and every message it parsed written back out with the RFC 5424
//! template and with its parsed properties. A missing rsyslogd fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    clock, config, free_tcp_port, free_udp_port, sqlite, wait_for_tcp, warning, KillOnDrop,
};
use scanwatch_notify::Notifier;

fn rsyslogd() -> PathBuf {
    for p in ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("rsyslogd not found: install it with `apt-get install -y rsyslog`");
}

struct Rsyslog {
    _child: KillOnDrop,
    parsed: PathBuf,
    full: PathBuf,
    udp: u16,
    tcp: u16,
}

fn start(dir: &Path) -> Rsyslog {
    let (udp, tcp) = (free_udp_port(), free_tcp_port());
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let parsed = dir.join("parsed.log");
    let full = dir.join("full.log");
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
template(name="parsed" type="string" string="%syslogfacility%|%syslogseverity%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
action(type="omfile" file="{parsed}" template="parsed")
action(type="omfile" file="{full}" template="RSYSLOG_SyslogProtocol23Format")
"#,
            work = work.display(),
            parsed = parsed.display(),
            full = full.display(),
        ),
    )
    .expect("write config");
    let mut child = Command::new(rsyslogd())
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rsyslogd");
    wait_for_tcp(tcp, &mut child, Duration::from_secs(15));
    let r = Rsyslog {
        _child: KillOnDrop(child),
        parsed,
        full,
        udp,
        tcp,
    };
    // imudp is up too once imtcp listens, but a datagram sent a moment too early is
    // lost silently: probe until one arrives.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        sock.send_to(b"<134>1 - - probe - - - ready", ("127.0.0.1", udp))
            .expect("send probe");
        std::thread::sleep(Duration::from_millis(100));
        if lines(&r.parsed).iter().any(|l| l.contains("|probe|")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rsyslog never received a UDP probe"
        );
    }
    r
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Splits a CEF record into its 7 header fields and the extension, undoing the
/// header escapes (`\|`, `\\`).
fn cef_parts(s: &str) -> (Vec<String>, String) {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if fields.len() == 7 {
            cur.push(c);
            cur.extend(chars.by_ref());
            break;
        }
        match c {
            '\\' => cur.push(chars.next().expect("escape")),
            '|' => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    (fields, cur)
}

/// The extension's key=value pairs, values unescaped (`\=`, `\\`, `\n`, `\r`).
fn cef_ext(ext: &str) -> Vec<(String, String)> {
    // A key starts where an unescaped `=` is preceded by ` key`.
    let mut out: Vec<(String, String)> = Vec::new();
    let mut key = String::new();
    let mut val = String::new();
    let mut in_key = true;
    let mut chars = ext.chars().peekable();
    while let Some(c) = chars.next() {
        if in_key {
            if c == '=' {
                in_key = false;
            } else {
                key.push(c);
            }
            continue;
        }
        match c {
            '\\' => match chars.next().expect("escape") {
                'n' => val.push('\n'),
                'r' => val.push('\r'),
                e => val.push(e),
            },
            ' ' => {
                // A space followed by `word=` starts the next pair.
                let rest: String = chars.clone().collect();
                let next_is_key = rest.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric())
                });
                if next_is_key {
                    out.push((std::mem::take(&mut key), std::mem::take(&mut val)));
                    in_key = true;
                } else {
                    val.push(' ');
                }
            }
            c => val.push(c),
        }
    }
    out.push((key, val));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_rfc5424_over_udp_and_tcp_as_text_and_cef() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rs = start(dir.path());
    let mut text = String::new();
    for (transport, port) in [("udp", rs.udp), ("tcp", rs.tcp)] {
        for format in ["text", "cef"] {
            text.push_str(&format!(
                "[[sinks]]\nkind = \"syslog\"\nname = \"{transport}-{format}\"\nhost = \"127.0.0.1\"\n\
                 port = {port}\ntransport = \"{transport}\"\nformat = \"{format}\"\nfacility = \"local3\"\n\
                 app_name = \"sw-{transport}-{format}\"\nhostname = \"centre.test\"\n\
                 initial_delay = \"10ms\"\nmax_delay = \"50ms\"\n\n"
            ));
        }
    }
    let cfg = config(&text);
    let store_dir = tempfile::tempdir().expect("tempdir");
    let n = Notifier::spawn(
        &cfg,
        sqlite(store_dir.path()),
        clock(),
        &tokio::runtime::Handle::current(),
    )
    .expect("spawn");
    (n.hook())(1, &warning(1, 445, 100, "high"));
    (n.hook())(2, &warning(2, 445, 150, "critical"));
    assert!(n.wait_idle(Duration::from_secs(20)).await);
    let snap = n.counters().snapshot();
    assert!(
        snap.iter().all(|s| s.sent == 2 && s.failed == 0),
        "{snap:?}"
    );
    n.close().await;

    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        let l: Vec<String> = lines(&rs.parsed)
            .into_iter()
            .filter(|l| !l.contains("|probe|"))
            .collect();
        if l.len() >= 8 || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(got.len(), 8, "{got:#?}");
    let pid = std::process::id().to_string();
    for transport in ["udp", "tcp"] {
        for format in ["text", "cef"] {
            let app = format!("sw-{transport}-{format}");
            let mine: Vec<Vec<&str>> = got
                .iter()
                .map(|l| l.splitn(8, '|').collect::<Vec<_>>())
                .filter(|f| f.get(3) == Some(&app.as_str()))
                .collect();
            assert_eq!(mine.len(), 2, "{app}: {got:#?}");
            for (f, (id, sev, event, sources)) in mine
                .iter()
                .zip([(1, "3", "new", 100), (2, "2", "update", 150)])
            {
                // facility local3 = 19; high → err (3), critical → crit (2).
                assert_eq!(
                    &f[..6],
                    &["19", sev, "centre.test", app.as_str(), pid.as_str(), event],
                    "{f:?}"
                );
                let sd = f[6];
                assert!(sd.starts_with("[scanwatch@32473 "), "{sd}");
                for want in [
                    format!("id=\"{id}\""),
                    format!("event=\"{event}\""),
                    "port=\"445\"".to_string(),
                    format!("sources=\"{sources}\""),
                    "advisories=\"CVE-2020-0796\"".to_string(),
                ] {
                    assert!(sd.contains(&want), "{want} not in {sd}");
                }
                let msg = f[7].trim_start();
                if format == "text" {
                    assert_eq!(msg, format!("tcp/445: {sources} sources, 9.5 times normal"));
                } else {
                    let (h, ext) = cef_parts(msg);
                    assert_eq!(h.len(), 7, "{msg}");
                    assert_eq!(h[0], "CEF:0");
                    assert_eq!(
                        (h[1].as_str(), h[4].as_str()),
                        ("scanwatch", format!("surge-{event}").as_str())
                    );
                    assert_eq!(
                        h[5],
                        format!("tcp/445: {sources} sources, 9.5 times normal")
                    );
                    assert_eq!(h[6], if id == 1 { "8" } else { "10" });
                    let ext = cef_ext(&ext);
                    let get = |k: &str| {
                        ext.iter()
                            .find(|(key, _)| key == k)
                            .map(|(_, v)| v.as_str())
                    };
                    assert_eq!(get("dpt"), Some("445"));
                    assert_eq!(get("proto"), Some("TCP"));
                    assert_eq!(get("cn1"), Some(sources.to_string().as_str()));
                    assert_eq!(get("externalId"), Some(id.to_string().as_str()));
                    assert_eq!(
                        get("msg"),
                        Some("Scanning of SMB from many sources.\nBlock it at the edge: a|b=c\\d.")
                    );
                }
            }
        }
    }
    // rsyslog re-renders what it parsed as RFC 5424: same header fields.
    let full = lines(&rs.full);
    assert!(
        full.iter()
            .any(|l| l.starts_with("<155>1 2026-11-26T11:01:00")
                && l.contains(" centre.test sw-tcp-text ")),
        "{full:#?}"
    );
}
