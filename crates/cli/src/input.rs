//! Reading inputs for `analyze`: files (plain or gzip) and stdin, format detection per
//! file, who the sensor of each line is, per-file error accounting, and a merge of
//! all inputs by event time so that several sensors' logs replay as they happened.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rustc_hash::FxHashMap;
use scanwatch_aggregate::{sensor_key, SensorKey};
use scanwatch_context::ids::{self, IdsHit, IdsLine};
use scanwatch_event::{Event, Timestamp};
use scanwatch_formats::{detect, FormatSpec, LineOutcome, LineParser, ParserOptions, SNIFF_LINES};

/// Who the sensor of a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SensorId {
    /// Each input file is one sensor, named by its file stem (`fw1.log.gz` → `fw1`).
    File,
    /// The host field of the line (syslog host, DShield user id, JSON `sensor`);
    /// lines without one fall back to the file stem.
    Host,
    /// The destination address: every protected address is its own sensor.
    Dst,
}

/// How many errors per file are shown on stderr (all are counted).
pub const SHOWN_ERRORS_PER_FILE: u64 = 5;

/// Per-file counters.
#[derive(Clone, Debug, Default)]
pub struct FileStats {
    pub name: String,
    pub format: &'static str,
    pub lines: u64,
    pub events: u64,
    pub errors: u64,
    pub skipped: u64,
}

/// One input being read.
pub struct Input {
    pub stats: FileStats,
    reader: Box<dyn BufRead>,
    pending: std::collections::VecDeque<Vec<u8>>,
    parser: Box<dyn LineParser>,
    sensor_mode: SensorId,
    file_sensor: (SensorKey, String),
    host_cache: FxHashMap<String, SensorKey>,
    dst_cache: FxHashMap<IpAddr, SensorKey>,
    buf: Vec<u8>,
    /// Sensors named while reading, for the report: (key, name).
    pub new_sensors: Vec<(SensorKey, String)>,
    /// For IDS formats (Suricata EVE, fast.log): the year for fast.log dates.
    ids_year: Option<i32>,
    /// IDS alerts read from this input (they can confirm an explanation).
    pub ids_hits: Vec<IdsHit>,
}

/// Formats whose lines can be IDS alerts naming CVEs.
const IDS_FORMATS: [&str; 2] = ["suricata", "fastlog"];

fn stem(path: &str) -> String {
    if path == "-" {
        return "stdin".to_string();
    }
    let name = Path::new(path)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or(path);
    let mut s = name;
    for ext in [".gz", ".log", ".jsonl", ".json", ".txt", ".tsv"] {
        s = s.strip_suffix(ext).unwrap_or(s);
    }
    if s.is_empty() {
        name.to_string()
    } else {
        s.to_string()
    }
}

pub(crate) fn open(path: &str) -> Result<(Box<dyn BufRead>, Option<Timestamp>)> {
    let (raw, mtime): (Box<dyn Read>, Option<Timestamp>) = if path == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = File::open(path).with_context(|| format!("cannot open {path}"))?;
        let mtime = f
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| Timestamp(d.as_millis() as i64));
        (Box::new(f), mtime)
    };
    let mut br = BufReader::with_capacity(1 << 16, raw);
    let gz = br
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .unwrap_or(false);
    let reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(br),
        ))
    } else {
        Box::new(br)
    };
    Ok((reader, mtime))
}

fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    if r.read_until(b'\n', buf)? == 0 {
        return Ok(false);
    }
    while buf.last().is_some_and(|&c| c == b'\n' || c == b'\r') {
        buf.pop();
    }
    Ok(true)
}

impl Input {
    /// Opens `path`, detects or takes its format, and prepares to read.
    pub fn open(
        path: &str,
        format: Option<&'static dyn FormatSpec>,
        sensor_mode: SensorId,
        reference: impl Fn(Option<Timestamp>) -> Timestamp,
    ) -> Result<Input> {
        let (mut reader, mtime) = open(path)?;
        let mut pending = std::collections::VecDeque::new();
        let spec = match format {
            Some(f) => f,
            None => {
                let mut buf = Vec::new();
                while pending.len() < SNIFF_LINES
                    && read_line(&mut *reader, &mut buf)
                        .with_context(|| format!("cannot read {path}"))?
                {
                    pending.push_back(std::mem::take(&mut buf));
                }
                let texts: Vec<&str> = pending
                    .iter()
                    .filter_map(|l| std::str::from_utf8(l).ok())
                    .collect();
                match detect(texts) {
                    Some(f) => f,
                    None if pending.is_empty() => scanwatch_formats::format_by_name("netfilter").unwrap_or_else(|| unreachable!()),
                    None => bail!(
                        "{path}: cannot tell the log format from its first {} lines; give one with --format ({})",
                        pending.len(),
                        scanwatch_formats::format_names().join(", ")
                    ),
                }
            }
        };
        let opts = ParserOptions {
            reference_time: reference(mtime),
        };
        let ids_year = IDS_FORMATS.contains(&spec.name()).then(|| {
            chrono::DateTime::from_timestamp_millis(opts.reference_time.0)
                .map_or(1970, |d| chrono::Datelike::year(&d))
        });
        let name = stem(path);
        Ok(Input {
            stats: FileStats {
                name: path.to_string(),
                format: spec.name(),
                ..Default::default()
            },
            reader,
            pending,
            parser: spec.parser(&opts),
            sensor_mode,
            file_sensor: (sensor_key(&name), name),
            host_cache: FxHashMap::default(),
            dst_cache: FxHashMap::default(),
            buf: Vec::with_capacity(512),
            new_sensors: Vec::new(),
            ids_year,
            ids_hits: Vec::new(),
        })
    }

    fn sensor_for(&mut self, host: Option<&str>, e: &Event) -> SensorKey {
        match (self.sensor_mode, host) {
            (SensorId::File, _) | (SensorId::Host, None) => self.file_sensor.0,
            (SensorId::Host, Some(h)) => {
                if let Some(k) = self.host_cache.get(h) {
                    return *k;
                }
                let k = sensor_key(h);
                self.host_cache.insert(h.to_string(), k);
                self.new_sensors.push((k, h.to_string()));
                k
            }
            (SensorId::Dst, _) => {
                if let Some(k) = self.dst_cache.get(&e.dst) {
                    return *k;
                }
                let name = e.dst.to_string();
                let k = sensor_key(&name);
                self.dst_cache.insert(e.dst, k);
                self.new_sensors.push((k, name));
                k
            }
        }
    }

    /// The file-level sensor (always named, even when lines name their own).
    pub fn file_sensor(&self) -> (SensorKey, &str) {
        (self.file_sensor.0, &self.file_sensor.1)
    }

    /// Reads until the next event; `report` gets (line number, message) of bad lines.
    pub fn next_event(
        &mut self,
        report: &mut dyn FnMut(&FileStats, u64, &str),
    ) -> Result<Option<(SensorKey, Event)>> {
        loop {
            let mut line = match self.pending.pop_front() {
                Some(l) => l,
                None => {
                    let mut buf = std::mem::take(&mut self.buf);
                    let more = read_line(&mut *self.reader, &mut buf)
                        .with_context(|| format!("cannot read {}", self.stats.name))?;
                    if !more {
                        self.buf = buf;
                        return Ok(None);
                    }
                    buf
                }
            };
            self.stats.lines += 1;
            let result: Result<Option<(SensorKey, Event)>, String> =
                match std::str::from_utf8(&line) {
                    Ok(text) => {
                        if let Some(year) = self.ids_year {
                            if let IdsLine::Hit(h) = ids::parse_line(text, year) {
                                self.ids_hits.push(h);
                            }
                        }
                        match self.parser.parse_line(text) {
                            LineOutcome::Event { event, host } => {
                                let k = self.sensor_for(host, &event);
                                Ok(Some((k, event)))
                            }
                            LineOutcome::Skip => Ok(None),
                            LineOutcome::Error(e) => Err(e.to_string()),
                        }
                    }
                    Err(_) => Err("invalid utf-8".to_string()),
                };
            line.clear();
            self.buf = line;
            match result {
                Ok(None) => self.stats.skipped += 1,
                Err(msg) => {
                    self.stats.errors += 1;
                    report(&self.stats, self.stats.lines, &msg);
                }
                Ok(Some(ev)) => {
                    self.stats.events += 1;
                    return Ok(Some(ev));
                }
            }
        }
    }
}

/// Merges several inputs by event time (a k-way merge; each input is assumed roughly
/// time-ordered, and the aggregator's lateness absorbs local disorder).
pub struct Merge {
    pub inputs: Vec<Input>,
    heap: BinaryHeap<Reverse<(Timestamp, usize)>>,
    heads: Vec<Option<(SensorKey, Event)>>,
}

impl Merge {
    pub fn new(
        mut inputs: Vec<Input>,
        report: &mut dyn FnMut(&FileStats, u64, &str),
    ) -> Result<Merge> {
        let mut heap = BinaryHeap::new();
        let mut heads = Vec::with_capacity(inputs.len());
        for (i, inp) in inputs.iter_mut().enumerate() {
            let head = inp.next_event(report)?;
            if let Some((_, e)) = &head {
                heap.push(Reverse((e.time, i)));
            }
            heads.push(head);
        }
        Ok(Merge {
            inputs,
            heap,
            heads,
        })
    }

    /// The next event across all inputs, earliest first (ties: input order).
    pub fn next(
        &mut self,
        report: &mut dyn FnMut(&FileStats, u64, &str),
    ) -> Result<Option<(SensorKey, Event)>> {
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let out = self.heads[i].take();
        let next = self.inputs[i].next_event(report)?;
        if let Some((_, e)) = &next {
            self.heap.push(Reverse((e.time, i)));
        }
        self.heads[i] = next;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(stem("/var/log/fw1.log.gz"), "fw1");
        assert_eq!(stem("sensor-03.jsonl"), "sensor-03");
        assert_eq!(stem("-"), "stdin");
        assert_eq!(stem(".log"), ".log");
    }
}
