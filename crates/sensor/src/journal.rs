//! A journald source: a host whose firewall logs to the systemd journal (no
//! rsyslog writing `/var/log/kern.log`) is followed through `journalctl --follow
//! --output=json`, as Vector's journald source does: the journal's file format is
//! systemd's own, and `journalctl` is the reader systemd keeps compatible with it
//! (no kept Rust crate reads journal files without linking libsystemd).
//!
//! Each entry becomes a syslog-style line, `REALTIME HOST IDENTIFIER: MESSAGE`
//! (RFC 3339 time with microseconds, UTC), for the source's format parser
//! (netfilter for kernel messages). The position saved with each spooled batch is
//! the last entry's (realtime µs, sequence number), both from its cursor: after a
//! restart the source asks `journalctl` for entries since that time and skips
//! those at or before the position, so nothing spooled is read twice and nothing
//! is skipped (entries read but not yet spooled are read again, as for files).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};

pub use crate::journal_entry::{cursor_position, entry_line, Entry};

/// Entries waiting between `journalctl` and the parser.
const QUEUE: usize = 65_536;

/// What to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSpec {
    /// A journal directory (`journalctl --directory`); the system journal when
    /// none.
    pub directory: Option<PathBuf>,
    /// `journalctl` matches, e.g. `_TRANSPORT=kernel` (the default).
    pub matches: Vec<String>,
    /// The `journalctl` program.
    pub journalctl: PathBuf,
}

impl JournalSpec {
    /// The system journal's kernel messages.
    pub fn kernel() -> JournalSpec {
        JournalSpec {
            directory: None,
            matches: vec!["_TRANSPORT=kernel".into()],
            journalctl: PathBuf::from("journalctl"),
        }
    }

    /// `journald` or `journald:DIR`: the key of its position in the spool.
    pub fn name(&self) -> String {
        match &self.directory {
            Some(d) => format!("journald:{}", d.display()),
            None => "journald".to_string(),
        }
    }
}

/// A running `journalctl --follow`; killed when dropped.
pub struct Journal {
    name: String,
    child: Child,
    rx: Receiver<Entry>,
    last: Option<(u64, u64)>,
    ended: bool,
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Journal {
    /// Starts `journalctl --follow`: after `resume` (a saved position), else from
    /// the journal's start (`from_start`) or its end.
    pub fn start(
        spec: &JournalSpec,
        resume: Option<(u64, u64)>,
        from_start: bool,
    ) -> std::io::Result<Journal> {
        let mut c = Command::new(&spec.journalctl);
        c.args(["--follow", "--output=json", "--no-pager", "--quiet"]);
        if let Some(d) = &spec.directory {
            c.arg("--directory").arg(d);
        }
        match resume {
            Some((t, _)) => {
                c.arg(format!("--since=@{}.{:06}", t / 1_000_000, t % 1_000_000));
                c.arg("--lines=all");
            }
            None if from_start => {
                c.arg("--lines=all");
            }
            None => {
                c.arg("--lines=0");
            }
        }
        c.args(&spec.matches);
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("journalctl has no output"))?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let Some(entry) = entry_line(&line) else {
                    continue;
                };
                // Already spooled before a restart.
                if resume.is_some_and(|r| entry.1 <= r) {
                    continue;
                }
                if tx.send(entry).is_err() {
                    break;
                }
            }
        });
        Ok(Journal {
            name: spec.name(),
            child,
            rx,
            last: resume,
            ended: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes up to `max` lines; true when nothing more is waiting.
    pub fn poll(&mut self, out: &mut Vec<String>, max: usize) -> bool {
        for _ in 0..max {
            match self.rx.try_recv() {
                Ok((line, pos)) => {
                    out.push(line);
                    self.last = Some(pos);
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => {
                    if !self.ended {
                        self.ended = true;
                        tracing::error!(source = %self.name, "journalctl ended; no more entries from {}", self.name);
                    }
                    return true;
                }
            }
        }
        false
    }

    /// The position of the last entry taken (saved with the batch holding it).
    pub fn position(&self) -> Option<(u64, u64)> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(JournalSpec::kernel().name(), "journald");
        let mut s = JournalSpec::kernel();
        s.directory = Some("/var/log/journal".into());
        assert_eq!(s.name(), "journald:/var/log/journal");
    }
}
