//! A live centre for the sensor benches: a real `scanwatch server` on loopback with
//! one sensor's token, CPU times from /proc, and a child killed on drop. Linux only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// user + system CPU seconds of a process, from /proc/PID/stat (None once reaped).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses): utime is the 14th
    // field of the line, stime the 15th, in USER_HZ (100 on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// A child process killed and reaped when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running centre with the embedded store in `dir/data`.
pub struct Centre {
    /// Held: dropping the centre stops the server.
    #[allow(dead_code)] // read by one bench (its CPU), only held by the other
    pub server: Kill,
    pub url: String,
    /// The token file of sensor `fw-1` (0600: the sensor refuses an open one).
    pub token: PathBuf,
}

pub fn start(bin: &str, dir: &Path) -> Centre {
    use std::os::unix::fs::PermissionsExt;
    let data = dir.join("data");
    let out = Command::new(bin)
        .args(["admin", "sensor", "add", "fw-1", "--data"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .expect("admin sensor add");
    let token = dir.join("token");
    std::fs::write(&token, &out.stdout).expect("token file");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("local addr").port()
    };
    let server = Kill(
        Command::new(bin)
            .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Centre {
        server,
        url: format!("http://127.0.0.1:{port}"),
        token,
    }
}
