//! The disk spool: one file per batch (`batch-<seq>.jsonl`), written to a temporary
//! name, synced and renamed into place, so a batch is either whole or absent. Each
//! file starts with a header line holding the batch's checksum (xxh3 of the body),
//! its event count and the log positions reached after it. Acknowledged sequence
//! numbers are recorded before their file is removed, so a crash in between never
//! causes a resend.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read random bytes for the spool id: {0}")]
    Random(String),
    #[error("batch {0} is not the oldest waiting batch; acknowledge in order")]
    OutOfOrder(u64),
    #[error("the sender thread panicked; the spool is kept as it is")]
    SenderPanicked,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where reading stopped in each followed file: path → (file identity, byte offset).
pub type Positions = BTreeMap<String, (u64, u64)>;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    v: u32,
    seq: u64,
    events: usize,
    xxh3: String,
    positions: Positions,
}

/// A batch waiting in the spool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpooledBatch {
    pub seq: u64,
    /// The batch id sent to the centre: `<spool id>-<seq>`, unique per spool.
    pub id: String,
    pub body: String,
    pub events: usize,
}

/// Counters a sensor reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Batch files that failed their checksum on open and were moved to `corrupt/`.
    pub corrupt: u64,
    /// Appends refused because the spool was full (the caller stops reading and
    /// retries later: backpressure, nothing dropped).
    pub full: u64,
}

/// The spool.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    id: String,
    max_bytes: u64,
    /// Sequence numbers of the batches on disk, with their file sizes.
    pending: BTreeMap<u64, u64>,
    next_seq: u64,
    acked: u64,
    positions: Positions,
    pub stats: SpoolStats,
}

fn batch_name(seq: u64) -> String {
    format!("batch-{seq:020}.jsonl")
}

fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), SpoolError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    // The owner's only: batches hold the network's observations.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &dst).map_err(io(&dst))?;
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn checksum(body: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(body.as_bytes()))
}

impl Spool {
    /// Opens (creating) a spool, checking every batch file; bad ones are moved to
    /// `corrupt/` and counted.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let id_path = dir.join("spool-id");
        let id = match fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let mut b = [0u8; 8];
                getrandom::fill(&mut b).map_err(|e| SpoolError::Random(e.to_string()))?;
                let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
                write_atomic(dir, "spool-id", id.as_bytes())?;
                id
            }
        };
        let acked = fs::read_to_string(dir.join("acked"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut positions: Positions = BTreeMap::new();
        let mut positions_seq = 0;
        if let Ok(text) = fs::read_to_string(dir.join("positions.json")) {
            if let Ok((seq, p)) = serde_json::from_str::<(u64, Positions)>(&text) {
                positions = p;
                positions_seq = seq;
            }
        }
        let mut s = Spool {
            dir: dir.to_path_buf(),
            id,
            max_bytes,
            pending: BTreeMap::new(),
            next_seq: acked + 1,
            acked,
            positions,
            stats: SpoolStats::default(),
        };
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for path in names {
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if name.starts_with('.') && name.ends_with(".tmp") {
                // A write the crash interrupted: never acknowledged, never counted.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name
                .strip_prefix("batch-")
                .and_then(|r| r.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if seq <= s.acked {
                // Acknowledged before a crash removed it: remove now, never resend.
                let _ = fs::remove_file(&path);
                continue;
            }
            match s.read(seq) {
                Some((header, _)) => {
                    let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    s.pending.insert(seq, size);
                    s.next_seq = s.next_seq.max(seq + 1);
                    if seq > positions_seq {
                        // The batch is newer than positions.json: its positions win,
                        // so its lines are not read (and sent) a second time.
                        s.positions = header.positions;
                        positions_seq = seq;
                    }
                }
                None => {
                    let bad = dir.join("corrupt");
                    let _ = fs::create_dir_all(&bad);
                    let _ = fs::rename(&path, bad.join(&name));
                    s.stats.corrupt += 1;
                }
            }
        }
        Ok(s)
    }

    fn read(&self, seq: u64) -> Option<(Header, String)> {
        let text = fs::read_to_string(self.dir.join(batch_name(seq))).ok()?;
        let (first, body) = text.split_once('\n')?;
        let header: Header = serde_json::from_str(first).ok()?;
        (header.v == 1 && header.seq == seq && header.xxh3 == checksum(body))
            .then(|| (header, body.to_string()))
    }

    /// The spool's id (the prefix of its batch ids).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Log positions reached by everything spooled so far.
    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Batches and bytes waiting.
    pub fn backlog(&self) -> (usize, u64) {
        (self.pending.len(), self.pending.values().sum())
    }

    /// Spools a batch durably with the positions reached after it. Returns its
    /// sequence number, or `None` when the spool is full (nothing written: the
    /// caller keeps its lines unread and tries again later).
    pub fn append(
        &mut self,
        body: &str,
        events: usize,
        positions: &Positions,
    ) -> Result<Option<u64>, SpoolError> {
        let (_, bytes) = self.backlog();
        if bytes + body.len() as u64 > self.max_bytes && !self.pending.is_empty() {
            self.stats.full += 1;
            return Ok(None);
        }
        let seq = self.next_seq;
        let header = Header {
            v: 1,
            seq,
            events,
            xxh3: checksum(body),
            positions: positions.clone(),
        };
        let mut data = serde_json::to_string(&header).unwrap_or_default();
        data.push('\n');
        data.push_str(body);
        write_atomic(&self.dir, &batch_name(seq), data.as_bytes())?;
        self.pending.insert(seq, data.len() as u64);
        self.next_seq = seq + 1;
        self.positions = positions.clone();
        let pos = serde_json::to_string(&(seq, positions)).unwrap_or_default();
        write_atomic(&self.dir, "positions.json", pos.as_bytes())?;
        Ok(Some(seq))
    }

    /// Records positions reached without a new batch (lines read that held no
    /// event to keep).
    pub fn set_positions(&mut self, positions: &Positions) -> Result<(), SpoolError> {
        self.positions = positions.clone();
        let pos = serde_json::to_string(&(self.next_seq - 1, positions)).unwrap_or_default();
        write_atomic(&self.dir, "positions.json", pos.as_bytes())
    }

    /// The oldest batch not yet acknowledged.
    pub fn oldest(&self) -> Option<SpooledBatch> {
        let (&seq, _) = self.pending.first_key_value()?;
        self.batch(seq)
    }

    /// The sequence number of the oldest batch not yet acknowledged.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.pending.first_key_value().map(|(&seq, _)| seq)
    }

    /// The first batch not yet acknowledged after `seq` (the sender prepares it
    /// while `seq` is in flight).
    pub fn after(&self, seq: u64) -> Option<SpooledBatch> {
        let (&next, _) = self.pending.range(seq.saturating_add(1)..).next()?;
        self.batch(next)
    }

    fn batch(&self, seq: u64) -> Option<SpooledBatch> {
        let (header, body) = self.read(seq)?;
        Some(SpooledBatch {
            seq,
            id: format!("{}-{seq}", self.id),
            body,
            events: header.events,
        })
    }

    /// Records that the centre refused batch `seq` for good (a malformed batch):
    /// it leaves the queue like an acknowledged one, but its file is kept under
    /// `rejected/` for the operator to look at (nothing is deleted).
    pub fn set_aside(&mut self, seq: u64) -> Result<(), SpoolError> {
        if self.pending.first_key_value().map(|(&k, _)| k) != Some(seq) {
            return Err(SpoolError::OutOfOrder(seq));
        }
        let path = self.dir.join(batch_name(seq));
        let aside = self.dir.join("rejected");
        if !aside.is_dir() {
            fs::create_dir_all(&aside).map_err(io(&aside))?;
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        // Durable before the acknowledgement removes the batch: a power cut in
        // between must not lose both.
        let data = fs::read(&path).map_err(io(&path))?;
        write_atomic(&aside, &batch_name(seq), &data)?;
        self.ack(seq)
    }

    /// Records that the centre acknowledged batch `seq`, then removes it.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        match self.pending.first_key_value() {
            None => return Ok(()),
            Some((&oldest, _)) if oldest != seq => return Err(SpoolError::OutOfOrder(seq)),
            Some(_) => {}
        }
        self.pending.remove(&seq);
        // Acknowledgements arrive in order (oldest first), so one number suffices.
        self.acked = self.acked.max(seq);
        write_atomic(&self.dir, "acked", self.acked.to_string().as_bytes())?;
        let path = self.dir.join(batch_name(seq));
        fs::remove_file(&path).map_err(io(&path))?;
        Ok(())
    }
}
