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

/// What reading an input yields, in the order of its lines.
enum Item {
    Event(SensorKey, Event),
    /// A sensor first named by the line of the next event.
    Sensor(SensorKey, String),
    /// A line that could not be parsed: (line number, message).
    Error(u64, String),
    /// The end of the input: lines read and skipped, IDS alerts found.
    Done {
        lines: u64,
        skipped: u64,
        ids_hits: Vec<IdsHit>,
    },
    /// Reading failed (the message names the file).
    Failed(String),
}

/// Events per block handed from a reading thread to the merge.
const BLOCK_EVENTS: usize = 4096;

/// Blocks a reading thread may be ahead of the merge (bounds its memory).
const BLOCKS_AHEAD: usize = 2;

/// The reading and parsing of one input: what can run on its own thread.
struct Reader {
    name: String,
    reader: Box<dyn BufRead + Send>,
    pending: std::collections::VecDeque<Vec<u8>>,
    parser: Box<dyn LineParser>,
    sensor_mode: SensorId,
    file_sensor: SensorKey,
    host_cache: FxHashMap<String, SensorKey>,
    dst_cache: FxHashMap<IpAddr, SensorKey>,
    buf: Vec<u8>,
    /// For IDS formats (Suricata EVE, fast.log): the year for fast.log dates.
    ids_year: Option<i32>,
    ids_hits: Vec<IdsHit>,
    lines: u64,
    skipped: u64,
}

/// Where an input's items come from: read here, or from its reading thread.
enum Source {
    Inline(Box<Reader>),
    Thread(std::sync::mpsc::Receiver<Vec<Item>>),
    Ended,
}

/// One input being read.
pub struct Input {
    pub stats: FileStats,
    file_sensor: (SensorKey, String),
    source: Source,
    block: std::vec::IntoIter<Item>,
    /// Sensors named while reading, for the report: (key, name).
    pub new_sensors: Vec<(SensorKey, String)>,
    /// IDS alerts read from this input (they can confirm an explanation); complete
    /// once the input is read to its end.
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

pub(crate) fn open(path: &str) -> Result<(Box<dyn BufRead + Send>, Option<Timestamp>)> {
    let (raw, mtime): (Box<dyn Read + Send>, Option<Timestamp>) = if path == "-" {
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
    if !gz && path.ends_with(".gz") {
        bail!("{path}: not a gzip file (it does not start with the gzip magic bytes 1f 8b)");
    }
    let reader: Box<dyn BufRead + Send> = if gz {
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
        let file_sensor = sensor_key(&name);
        Ok(Input {
            stats: FileStats {
                name: path.to_string(),
                format: spec.name(),
                ..Default::default()
            },
            source: Source::Inline(Box::new(Reader {
                name: path.to_string(),
                reader,
                pending,
                parser: spec.parser(&opts),
                sensor_mode,
                file_sensor,
                host_cache: FxHashMap::default(),
                dst_cache: FxHashMap::default(),
                buf: Vec::with_capacity(512),
                ids_year,
                ids_hits: Vec::new(),
                lines: 0,
                skipped: 0,
            })),
            file_sensor: (file_sensor, name),
            block: Vec::new().into_iter(),
            new_sensors: Vec::new(),
            ids_hits: Vec::new(),
        })
    }

    /// The file-level sensor (always named, even when lines name their own).
    pub fn file_sensor(&self) -> (SensorKey, &str) {
        (self.file_sensor.0, &self.file_sensor.1)
    }

    /// Moves the reading and parsing of this input to a thread of its own, a few
    /// blocks ahead of the merge. What the merge sees is the same, item for item.
    pub fn read_ahead(&mut self) {
        let Source::Inline(mut reader) = std::mem::replace(&mut self.source, Source::Ended) else {
            return;
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(BLOCKS_AHEAD);
        std::thread::spawn(move || loop {
            let mut block = Vec::with_capacity(BLOCK_EVENTS + 16);
            let more = reader.fill(&mut block, BLOCK_EVENTS);
            // The merge gone (an error ended the run): stop reading.
            if tx.send(block).is_err() || !more {
                return;
            }
        });
        self.source = Source::Thread(rx);
    }

    /// Reads until the next event; `report` gets (line number, message) of bad lines.
    pub fn next_event(
        &mut self,
        report: &mut dyn FnMut(&FileStats, u64, &str),
    ) -> Result<Option<(SensorKey, Event)>> {
        loop {
            let Some(item) = self.block.next() else {
                let block = match &mut self.source {
                    Source::Ended => return Ok(None),
                    Source::Inline(r) => {
                        let mut block = Vec::with_capacity(BLOCK_EVENTS + 16);
                        r.fill(&mut block, BLOCK_EVENTS);
                        block
                    }
                    Source::Thread(rx) => rx.recv().unwrap_or_else(|_| {
                        vec![Item::Failed(format!(
                            "cannot read {}: its reading thread ended early",
                            self.stats.name
                        ))]
                    }),
                };
                self.block = block.into_iter();
                continue;
            };
            match item {
                Item::Event(k, e) => {
                    self.stats.events += 1;
                    return Ok(Some((k, e)));
                }
                Item::Sensor(k, name) => self.new_sensors.push((k, name)),
                Item::Error(line, msg) => {
                    self.stats.errors += 1;
                    report(&self.stats, line, &msg);
                }
                Item::Done {
                    lines,
                    skipped,
                    ids_hits,
                } => {
                    self.stats.lines = lines;
                    self.stats.skipped = skipped;
                    self.ids_hits = ids_hits;
                    self.source = Source::Ended;
                }
                Item::Failed(msg) => {
                    self.source = Source::Ended;
                    bail!(msg);
                }
            }
        }
    }
}

impl Reader {
    /// The sensor of a line, and its name when this is the first line naming it.
    fn sensor_for(&mut self, host: Option<&str>, e: &Event) -> (SensorKey, Option<String>) {
        match (self.sensor_mode, host) {
            (SensorId::File, _) | (SensorId::Host, None) => (self.file_sensor, None),
            (SensorId::Host, Some(h)) => {
                if let Some(k) = self.host_cache.get(h) {
                    return (*k, None);
                }
                let k = sensor_key(h);
                self.host_cache.insert(h.to_string(), k);
                (k, Some(h.to_string()))
            }
            (SensorId::Dst, _) => {
                if let Some(k) = self.dst_cache.get(&e.dst) {
                    return (*k, None);
                }
                let name = e.dst.to_string();
                let k = sensor_key(&name);
                self.dst_cache.insert(e.dst, k);
                (k, Some(name))
            }
        }
    }

    /// Reads and parses lines into `out` until it holds `max_events` events or the
    /// input ends (then the last item is `Done` or `Failed`, and false is returned).
    fn fill(&mut self, out: &mut Vec<Item>, max_events: usize) -> bool {
        let mut events = 0;
        while events < max_events {
            let mut line = match self.pending.pop_front() {
                Some(l) => l,
                None => {
                    let mut buf = std::mem::take(&mut self.buf);
                    match read_line(&mut *self.reader, &mut buf) {
                        Ok(true) => buf,
                        Ok(false) => {
                            out.push(Item::Done {
                                lines: self.lines,
                                skipped: self.skipped,
                                ids_hits: std::mem::take(&mut self.ids_hits),
                            });
                            return false;
                        }
                        Err(e) => {
                            out.push(Item::Failed(format!("cannot read {}: {e}", self.name)));
                            return false;
                        }
                    }
                }
            };
            self.lines += 1;
            match std::str::from_utf8(&line) {
                Ok(text) => {
                    if let Some(year) = self.ids_year {
                        if let IdsLine::Hit(h) = ids::parse_line(text, year) {
                            self.ids_hits.push(h);
                        }
                    }
                    match self.parser.parse_line(text) {
                        LineOutcome::Event { event, host } => {
                            let (k, named) = self.sensor_for(host, &event);
                            if let Some(name) = named {
                                out.push(Item::Sensor(k, name));
                            }
                            out.push(Item::Event(k, event));
                            events += 1;
                        }
                        LineOutcome::Skip => self.skipped += 1,
                        LineOutcome::Error(e) => out.push(Item::Error(self.lines, e.to_string())),
                    }
                }
                Err(_) => out.push(Item::Error(self.lines, "invalid utf-8".to_string())),
            }
            line.clear();
            self.buf = line;
        }
        true
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
        if let [input] = self.inputs.as_mut_slice() {
            // One input is its own order: its events as they come, without the
            // heap (7 % of `analyze`'s main thread on one file, in moves). Unlike
            // the heap, which reads an event ahead, an input's bad lines are
            // reported as they are reached and a failed read after an event
            // comes after that event, not in its place.
            if let Some(head) = self.heads[0].take() {
                self.heap.clear();
                return Ok(Some(head));
            }
            return input.next_event(report);
        }
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
