//! Following a log file like `tail -F`: reads complete new lines, survives rotation
//! by rename-and-create (the old file is read to its end first, and at every poll
//! after until it has been quiet for [`ROTATE_WAIT`]: the logger writes to it until
//! it reopens the path, at rsyslog's HUP after logrotate) and by
//! copy-truncate (the file shrinks: start again from 0), and reports a position —
//! file identity and byte offset of the last complete line — that can be saved and
//! resumed. A saved position whose file was rotated away while the sensor was
//! stopped is resumed in that file, found by its identity beside the path
//! (`fw.log.1`, `fw.log-20261207`; not a compressed one), which is read to its end
//! before the new one. (Rotated twice while stopped: the saved file is finished,
//! then the path's; the file rotated in between is not read.)

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn identity(m: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        m.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        0
    }
}

/// One followed file.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    id: u64,
    /// Offset just after the last complete line handed out.
    offset: u64,
    partial: Vec<u8>,
    /// Where to start when the file is first opened: a saved position, or the end
    /// (`None` with `from_start` false), or the beginning.
    resume: Option<(u64, u64)>,
    from_start: bool,
    /// Bytes of an unterminated last line dropped at rotation.
    pub dropped_partial_bytes: u64,
    /// (length, xxh3) of the file's first bytes (up to 256) when last read: a file
    /// truncated and refilled past the old offset between two polls is recognised
    /// by its changed head (as Vector's file source does with its fingerprint).
    head: Option<(usize, u64)>,
    /// The file renamed away, with its unterminated last line and when it last
    /// gave a byte: read to its end at every poll, before the new one, until it
    /// has been quiet for [`ROTATE_WAIT`].
    rotated: Option<(File, Vec<u8>, std::time::Instant)>,
}

/// How long a renamed file is still read after it last grew: the logger writes to
/// it until it reopens the path (rsyslog at the HUP of logrotate's `postrotate`,
/// usually within a second), as `tail -F` and Vector's file source (its
/// `rotate_wait`) do; one descriptor per rotation is held meanwhile.
pub const ROTATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bytes of the head fingerprint.
const HEAD_BYTES: usize = 256;

fn head_of(path: &Path, len: usize) -> Option<u64> {
    let mut f = File::open(path).ok()?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).ok()?;
    Some(xxhash_rust::xxh3::xxh3_64(&buf))
}

/// The file of identity `id` beside `path` (its rotated names start with the
/// path's file name), if it holds at least `offset` bytes.
fn rotated_sibling(path: &Path, id: u64, offset: u64) -> Option<File> {
    let name = path.file_name()?.to_str()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let n = entry.file_name();
        let n = n.to_str()?;
        // A compressed rotation is another file (and an inode number reused by
        // one would be read as text).
        let compressed = [".gz", ".bz2", ".xz", ".zst", ".lz4"]
            .iter()
            .any(|ext| n.ends_with(ext));
        if n == name || !n.starts_with(name) || compressed {
            return None;
        }
        // Looked at before it is opened: opening a FIFO would block.
        let m = entry.metadata().ok()?;
        if !(m.is_file() && identity(&m) == id && m.len() >= offset) {
            return None;
        }
        let f = File::open(entry.path()).ok()?;
        let m = f.metadata().ok()?;
        (identity(&m) == id).then_some(f)
    })
}

impl Follower {
    pub fn new(path: &Path, resume: Option<(u64, u64)>, from_start: bool) -> Follower {
        Follower {
            path: path.to_path_buf(),
            file: None,
            id: 0,
            offset: 0,
            partial: Vec::new(),
            resume,
            from_start,
            dropped_partial_bytes: 0,
            head: None,
            rotated: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (file identity, offset after the last complete line).
    pub fn position(&self) -> (u64, u64) {
        (self.id, self.offset)
    }

    fn open(&mut self) -> std::io::Result<bool> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let m = f.metadata()?;
        let id = identity(&m);
        let resume = self.resume.take();
        // Rotated away while stopped: the rest of the saved file first (the
        // poll that reaches its end goes on to the path's file, from 0).
        if let Some((rid, off)) = resume.filter(|(rid, _)| *rid != id) {
            if let Some(mut old) = rotated_sibling(&self.path, rid, off) {
                old.seek(SeekFrom::Start(off))?;
                self.file = Some(old);
                self.id = rid;
                self.offset = off;
                self.partial.clear();
                self.head = None;
                return Ok(true);
            }
        }
        let start = match resume {
            Some((rid, off)) if rid == id && off <= m.len() => off,
            Some(_) => 0, // a different file than the saved one: read all of it
            None if self.from_start => 0,
            None => m.len(),
        };
        let mut f = f;
        f.seek(SeekFrom::Start(start))?;
        self.file = Some(f);
        self.id = id;
        self.offset = start;
        self.partial.clear();
        self.head = None;
        Ok(true)
    }

    /// Appends up to `max_bytes` worth of new complete lines to `out`. Returns true
    /// when it stopped at the end of the file (nothing more to read right now).
    pub fn poll(&mut self, out: &mut Vec<String>, max_bytes: usize) -> std::io::Result<bool> {
        if self.file.is_none() && !self.open()? {
            return Ok(true);
        }
        // Copy-truncate refilled past where reading stopped (while the sensor was
        // held back by a full spool, say): from the start before reading on, not
        // from the old offset into the new content (a broken first line, then
        // every line again once its end showed the change).
        if let Some((len, h)) = self.head {
            let same = std::fs::metadata(&self.path).is_ok_and(|m| identity(&m) == self.id);
            if same && head_of(&self.path, len).is_some_and(|now| now != h) {
                if let Some(f) = self.file.as_mut() {
                    f.seek(SeekFrom::Start(0))?;
                }
                self.partial.clear();
                self.offset = 0;
                self.head = None;
            }
        }
        let mut buf = vec![0u8; 64 * 1024];
        if let Some((mut old, mut partial, mut active)) = self.rotated.take() {
            // What the logger wrote to the renamed file since the last poll.
            loop {
                let n = old.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                partial.extend_from_slice(&buf[..n]);
                active = std::time::Instant::now();
            }
            if let Some(end) = partial.iter().rposition(|&b| b == b'\n') {
                out.extend(
                    partial[..end]
                        .split(|&b| b == b'\n')
                        .map(|l| String::from_utf8_lossy(l).into_owned()),
                );
                partial.drain(..=end);
            }
            if active.elapsed() < ROTATE_WAIT {
                self.rotated = Some((old, partial, active));
            } else {
                self.dropped_partial_bytes += partial.len() as u64;
            }
        }
        let mut read_total = 0;
        loop {
            let Some(f) = self.file.as_mut() else {
                return Ok(true);
            };
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            read_total += n;
            self.partial.extend_from_slice(&buf[..n]);
            let mut consumed = 0;
            while let Some(i) = self.partial[consumed..].iter().position(|&b| b == b'\n') {
                let line = &self.partial[consumed..consumed + i];
                out.push(String::from_utf8_lossy(line).into_owned());
                consumed += i + 1;
            }
            self.partial.drain(..consumed);
            self.offset += consumed as u64;
            if read_total >= max_bytes {
                return Ok(false);
            }
        }
        // At the end: has the file been rotated or truncated?
        let head_len = (self.offset as usize).min(HEAD_BYTES);
        let head_changed = match self.head {
            Some((len, h)) => head_of(&self.path, len).is_some_and(|now| now != h),
            None => false,
        };
        match std::fs::metadata(&self.path) {
            Ok(m) if identity(&m) != self.id => {
                // Rename-and-create: the old file is read to its end (and at the
                // polls within ROTATE_WAIT after); go to the new one.
                if let Some((_, partial, _)) = self.rotated.take() {
                    // Rotated again within the wait: the older one is let go.
                    self.dropped_partial_bytes += partial.len() as u64;
                }
                self.rotated = self.file.take().map(|f| {
                    (
                        f,
                        std::mem::take(&mut self.partial),
                        std::time::Instant::now(),
                    )
                });
                self.from_start = true;
                self.resume = None;
                self.open()?;
                return Ok(false);
            }
            Ok(m) if m.len() < self.offset + self.partial.len() as u64 || head_changed => {
                // Copy-truncate: the file was emptied in place.
                self.partial.clear();
                if let Some(f) = self.file.as_mut() {
                    f.seek(SeekFrom::Start(0))?;
                }
                self.offset = 0;
                self.head = None;
                return Ok(false);
            }
            _ => {}
        }
        if head_len > 0 && self.head.is_none_or(|(len, _)| len < head_len) {
            self.head = head_of(&self.path, head_len).map(|h| (head_len, h));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_all(f: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..10 {
            if f.poll(&mut out, 1 << 20).unwrap() {
                break;
            }
        }
        out
    }

    #[test]
    fn follows_appends_rotation_and_truncation_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fw.log");
        std::fs::write(&p, "old\n").unwrap();
        // Without --from-start, existing lines are skipped (tail -F).
        let mut f = Follower::new(&p, None, false);
        assert!(poll_all(&mut f).is_empty());
        std::fs::write(&p, "old\na\nb").unwrap(); // "b" is not complete yet
        assert_eq!(poll_all(&mut f), vec!["a"]);
        let mut h = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut h, b"\nc\n").unwrap();
        assert_eq!(poll_all(&mut f), vec!["b", "c"]);
        // Rename and create: the rest of the old file, then the new one from 0.
        std::io::Write::write_all(&mut h, b"d\n").unwrap();
        std::fs::rename(&p, dir.path().join("fw.log.1")).unwrap();
        std::fs::write(&p, "e\n").unwrap();
        assert_eq!(poll_all(&mut f), vec!["d", "e"]);
        // Copy-truncate: emptied in place and refilled with less than before.
        let before = f.position();
        std::fs::write(&p, "").unwrap();
        std::fs::write(&p, "f\n").unwrap();
        assert_eq!(poll_all(&mut f), vec!["f"]);
        assert_eq!(f.position().0, before.0, "same file");
        // Resuming at a saved position sends nothing twice.
        let mut g = Follower::new(&p, Some(f.position()), false);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .map(|mut h| std::io::Write::write_all(&mut h, b"g\n"))
            .unwrap()
            .unwrap();
        assert_eq!(poll_all(&mut g), vec!["g"]);
    }

    /// A file copy-truncated and refilled past the offset reached, between two
    /// polls: its new lines once each, from the first.
    #[test]
    fn a_file_refilled_past_the_offset_is_read_from_its_start_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fw.log");
        std::fs::write(&p, "first line\nsecond\n").unwrap();
        let mut f = Follower::new(&p, None, true);
        assert_eq!(poll_all(&mut f), vec!["first line", "second"]);
        std::fs::write(&p, "").unwrap();
        std::fs::write(&p, "new one\nnew two\nnew three\nnew four\n").unwrap();
        assert_eq!(
            poll_all(&mut f),
            vec!["new one", "new two", "new three", "new four"]
        );
    }

    /// What the logger writes to the renamed file after the sensor moved to the
    /// new one (until the logger reopens the path) is read at the polls after.
    #[test]
    fn a_write_to_the_renamed_file_after_the_switch_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fw.log");
        std::fs::write(&p, "").unwrap();
        let mut f = Follower::new(&p, None, true);
        assert!(poll_all(&mut f).is_empty());
        let mut h = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut h, b"x\n").unwrap();
        std::fs::rename(&p, dir.path().join("fw.log.1")).unwrap();
        std::fs::write(&p, "y\n").unwrap();
        let mut out = Vec::new();
        assert!(!f.poll(&mut out, 1 << 20).unwrap(), "moved to the new file");
        assert_eq!(out, vec!["x"]);
        // The logger has not reopened the path yet.
        std::io::Write::write_all(&mut h, b"z\npart").unwrap();
        assert_eq!(poll_all(&mut f), vec!["z", "y"]);
        // Polls later (within ROTATE_WAIT), the rest of a line and another.
        assert!(poll_all(&mut f).is_empty());
        std::io::Write::write_all(&mut h, b"ial\nlate\n").unwrap();
        assert_eq!(poll_all(&mut f), vec!["partial", "late"]);
        assert_eq!(f.dropped_partial_bytes, 0);
    }

    /// A file rotated away while the sensor was stopped is read to its end from
    /// the saved position (found beside the path by its identity), then the new
    /// one from its start: the lines written between the stop and the rotation
    /// are not lost. With no such file (deleted, compressed), the new one from 0.
    #[test]
    fn a_rotation_while_stopped_resumes_in_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fw.log");
        std::fs::write(&p, "a\nb\n").unwrap();
        let mut f = Follower::new(&p, None, true);
        assert_eq!(poll_all(&mut f), vec!["a", "b"]);
        let saved = f.position();
        drop(f);
        let mut h = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut h, b"c\n").unwrap();
        std::fs::rename(&p, dir.path().join("fw.log.1")).unwrap();
        std::fs::write(&p, "d\n").unwrap();
        // A FIFO beside it is not opened (that would block).
        let fifo = std::process::Command::new("mkfifo")
            .arg(dir.path().join("fw.log.fifo"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let mut g = Follower::new(&p, Some(saved), false);
        assert_eq!(poll_all(&mut g), vec!["c", "d"]);
        // The rotated file gone: the new one from its start.
        let saved = (saved.0, 2);
        std::fs::remove_file(dir.path().join("fw.log.1")).unwrap();
        let mut k = Follower::new(&p, Some(saved), false);
        assert_eq!(poll_all(&mut k), vec!["d"]);
    }
}
