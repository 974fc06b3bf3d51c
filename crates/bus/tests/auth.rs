//! NATS authentication for every role (`[bus]`, docs/security.md; row 11 of the
//! trust issue): a real nats-server on loopback that requires TLS from a private CA
//! and a user/password or an NKey, and one that requires a token. Without the right
//! secret, or without trusting the CA, a role cannot connect (so it cannot publish
//! batches as any sensor); with it, it publishes.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scanwatch_bus::{BatchPublisher, BusConfig, NatsBus, OutgoingBatch};
use scanwatch_event::{Timestamp, WireEvent};

struct Nats(Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts nats-server with `conf` (JetStream in `dir`) and waits until it listens.
fn nats(dir: &Path, port: u16, conf: &str) -> Nats {
    let found = Command::new("nats-server").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "nats-server is not installed: apt-get install -y nats-server (Debian bookworm: 2.9.10)"
    );
    let file = dir.join("nats.conf");
    std::fs::write(
        &file,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{conf}\n",
            dir.join("js").display().to_string()
        ),
    )
    .unwrap();
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let n = Nats(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    n
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A private CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key).
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "scanwatch test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (
        write(dir, "ca.pem", &ca.pem()),
        write(dir, "server.pem", &cert.pem()),
        write(dir, "server-key.pem", &key.serialize_pem()),
    )
}

fn batch(n: u32) -> OutgoingBatch {
    let line = r#"{"time":"2026-11-26T10:00:00Z","proto":"tcp","src":"198.51.100.1","dst":"203.0.113.1","dst_port":445,"flags":"S"}"#;
    OutgoingBatch {
        sensor: "fw-1".into(),
        batch: format!("b{n}"),
        events: vec![WireEvent::parse_line(line).unwrap().to_event().unwrap()],
        ids: vec![],
        received: Timestamp(0),
    }
}

fn cfg(url: String) -> BusConfig {
    BusConfig {
        kind: scanwatch_bus::BusKind::Nats,
        url,
        // Refusals are final: fail within two seconds instead of retrying 30.
        publish_timeout: "2s".parse().unwrap(),
        ..BusConfig::default()
    }
}

#[test]
fn roles_need_the_bus_secret_and_the_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path());
    let nkey = nkeys::KeyPair::new_user();
    let port = free_port();
    let _server = nats(
        dir.path(),
        port,
        &format!(
            "tls {{ cert_file: {:?}, key_file: {:?} }}\nauthorization {{ users = [ {{ user: scanwatch, password: \"s3cret-bus\" }}, {{ nkey: {} }} ] }}",
            cert.display().to_string(),
            key.display().to_string(),
            nkey.public_key()
        ),
    );
    let url = format!("tls://127.0.0.1:{port}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let password = write(dir.path(), "password", "s3cret-bus\n");
    let wrong = write(dir.path(), "wrong", "guess\n");
    let seed = write(dir.path(), "seed", &nkey.seed().unwrap());
    let connect = |c: BusConfig| rt.block_on(NatsBus::connect(&c));

    // (what, config, connects)
    let cases: Vec<(&str, BusConfig, bool)> = vec![
        (
            "no secret",
            BusConfig {
                tls_ca_file: Some(ca.clone()),
                ..cfg(url.clone())
            },
            false,
        ),
        (
            "wrong password",
            BusConfig {
                user: Some("scanwatch".into()),
                password_file: Some(wrong),
                tls_ca_file: Some(ca.clone()),
                ..cfg(url.clone())
            },
            false,
        ),
        (
            "right password, CA not trusted",
            BusConfig {
                user: Some("scanwatch".into()),
                password_file: Some(password.clone()),
                ..cfg(url.clone())
            },
            false,
        ),
        (
            "right password and CA",
            BusConfig {
                user: Some("scanwatch".into()),
                password_file: Some(password),
                tls_ca_file: Some(ca.clone()),
                ..cfg(url.clone())
            },
            true,
        ),
        (
            "nkey and CA",
            BusConfig {
                nkey_seed_file: Some(seed),
                tls_ca_file: Some(ca.clone()),
                ..cfg(url.clone())
            },
            true,
        ),
    ];
    for (i, (what, c, ok)) in cases.into_iter().enumerate() {
        c.validate().unwrap();
        match connect(c) {
            Ok(bus) => {
                assert!(ok, "{what}: connected");
                let r = rt.block_on(bus.publish(&batch(i as u32))).unwrap();
                assert_eq!(r.stored, 1, "{what}");
            }
            Err(e) => assert!(!ok, "{what}: {e}"),
        }
    }
}

#[test]
fn a_token_protected_bus_refuses_roles_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = nats(
        dir.path(),
        port,
        "authorization { token: \"t0ken-of-the-bus\" }",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    assert!(rt.block_on(NatsBus::connect(&cfg(url.clone()))).is_err());
    let token = write(dir.path(), "token", "t0ken-of-the-bus\n");
    let bus = rt
        .block_on(NatsBus::connect(&BusConfig {
            token_file: Some(token),
            ..cfg(url)
        }))
        .unwrap();
    assert_eq!(rt.block_on(bus.publish(&batch(1))).unwrap().stored, 1);
}

#[test]
fn bus_auth_settings_are_checked_without_io() {
    let base = cfg("nats://127.0.0.1:4222".into());
    let bad = [
        BusConfig {
            user: Some("u".into()),
            ..base.clone()
        },
        BusConfig {
            password_file: Some("p".into()),
            ..base.clone()
        },
        BusConfig {
            token_file: Some("t".into()),
            nkey_seed_file: Some("s".into()),
            ..base.clone()
        },
        BusConfig {
            tls_cert_file: Some("c".into()),
            ..base.clone()
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
    }
    let missing = BusConfig {
        token_file: Some("/nonexistent/token".into()),
        ..base
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(NatsBus::connect(&missing))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("bus.token_file /nonexistent/token"), "{e}");
}
